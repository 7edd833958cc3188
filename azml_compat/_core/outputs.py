"""``./outputs``: Workbench uploaded every file written there when the run ended. SDK v1 did
too, and uploaded ``./logs`` as well (``livelogs``): both folders follow the same rules."""
from __future__ import annotations

import logging
import os
import stat

from .._config import raw
from .environment import SHARE_VARIABLE, share_directory

ARTIFACT_DIR = "outputs"
LOGS_DIR = "logs"
log = logging.getLogger("azml")


def _older(mtime_ns: int, since_ms: int | None) -> bool:
    """True if a file last modified at ``mtime_ns`` predates a run started at ``since_ms``.

    A file system that keeps whole seconds (FAT, HFS+, some network mounts) stores a file
    written just after the start as the start's second, rounded down: compared by seconds.
    """
    if since_ms is None:
        return False
    if mtime_ns % 1_000_000_000 == 0:
        return mtime_ns // 1_000_000_000 < since_ms // 1000
    return mtime_ns < since_ms * 1_000_000


def link_roots(project: str, folder: str = ARTIFACT_DIR) -> list[str]:
    """The folders a link in ``<project>/outputs`` (or ``folder``: ``logs``) may lead into,
    resolved: the project, its share directory (``AZUREML_NATIVE_SHARE_DIRECTORY``: large
    data and models often live there) and wherever the folder itself resolves to (a folder
    the user linked on purpose, such as scratch space)."""
    share = raw(SHARE_VARIABLE) or share_directory(project)
    return [os.path.realpath(path) for path in (project, share, os.path.join(project, folder))]


def _inside(real: str, roots) -> bool:
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def escaping_target(fd: int, local_path: str, artifact_dir: str) -> str | None:
    """The real path of the open file ``fd`` (a FILE record's source) if it lies outside the
    roots of the ``outputs/`` (or ``logs/``) folder the record came from; else None.

    Checked on the opened file, not the path, so a link swapped after the scan (or between
    a check and the open) cannot lead out. A record whose source is not under a folder named
    ``outputs`` or ``logs`` at its artifact's depth is our own private copy
    (``<journal>.files/``)."""
    folder = os.path.dirname(local_path)
    for _ in range(artifact_dir.count("/")):
        folder = os.path.dirname(folder)
    if os.path.basename(folder) not in (ARTIFACT_DIR, LOGS_DIR):
        return None
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")  # Linux: what was opened, whatever the path
    except OSError:
        real = os.path.realpath(local_path)
    roots = link_roots(os.path.dirname(folder), os.path.basename(folder))
    return None if _inside(real, roots) else real


def scan(outputs_dir: str, max_bytes: int, since_ms: int | None = None, roots=None,
         root: str = ARTIFACT_DIR, warn: bool = True):
    """``(uploads, skipped)``: ``(artifact_dir, local_path, size)`` to upload, ``(path, size)`` too big.

    Links are followed only into ``roots`` (default ``link_roots`` of the project holding
    ``outputs_dir``): a link inside is uploaded as the file or folder it names, under the
    link's own name (checkpoints are often linked that way); one leading out of the project
    (``outputs/x -> ~/.secret_token``) is not followed, and one line names it. A folder link
    back into a folder already walked (a loop) is not followed either; links that lead nowhere
    (dangling, or a loop of links) are named in one line. Artifact paths come from the walk,
    so they stay under ``outputs/``. With ``since_ms`` (the run's start), files last modified
    before it are left alone with one line: Workbench ran each run in a fresh copy of the
    project, so ``outputs/`` only held that run's files, while here they stay from one run
    to the next. ``root``: the artifact folder they go to (``logs`` for SDK v1's ``./logs``).
    ``warn`` False: the lines are left to a later scan (``./logs`` is scanned every second
    while the run runs, and named once, at its end).
    """
    uploads, skipped, special, stale = [], [], [], 0
    outside, nowhere, loops = [], [], []
    if not os.path.isdir(outputs_dir):
        return uploads, skipped
    if roots is None:
        folder = os.path.abspath(outputs_dir)
        roots = link_roots(os.path.dirname(folder), os.path.basename(folder))  # resolved
    else:
        roots = [os.path.realpath(folder) for folder in roots]
    walked = {os.path.realpath(outputs_dir)}
    for folder, dirs, files in os.walk(outputs_dir, followlinks=True):
        here = os.path.realpath(folder)
        followed = []
        for name in sorted(dirs):
            path = os.path.join(folder, name)
            real = os.path.realpath(path)
            if os.path.islink(path) and not _inside(real, roots):
                outside.append(f"{path} -> {real}")
            elif real in walked or here == real or here.startswith(real + os.sep):
                loops.append(path)  # leads back into a folder already walked (or above it)
            else:
                walked.add(real)
                followed.append(name)
        dirs[:] = followed
        rel = os.path.relpath(folder, outputs_dir)
        artifact_dir = root if rel == "." else f"{root}/{rel.replace(os.sep, '/')}"
        for name in sorted(files):
            local = os.path.join(folder, name)
            try:
                info = os.stat(local)  # never opened here: opening a FIFO blocks
            except OSError:
                if os.path.islink(local):
                    nowhere.append(local)
                continue  # a file removed meanwhile
            if os.path.islink(local) and not _inside(os.path.realpath(local), roots):
                outside.append(f"{local} -> {os.path.realpath(local)}")
            elif not stat.S_ISREG(info.st_mode):
                special.append(local)  # a FIFO, socket or device: reading it may never end
            elif _older(info.st_mtime_ns, since_ms):
                stale += 1
            elif info.st_size > max_bytes:
                skipped.append((local, info.st_size))
            else:
                uploads.append((artifact_dir, local, info.st_size))
    if not warn:
        return uploads, skipped
    if outside:
        log.warning("not uploading %d link(s) in %s/ leading outside the project folder "
                    "and the share directory (not followed): %s", len(outside), root,
                    ", ".join(outside))
    if loops:
        log.warning("not following %d folder link(s) in %s/ that lead back into a folder "
                    "already uploaded (a loop): %s", len(loops), root, ", ".join(loops))
    if nowhere:
        log.warning("not uploading %d link(s) in %s/ that lead nowhere (dangling, or a "
                    "loop of links): %s", len(nowhere), root, ", ".join(nowhere))
    if special:
        log.warning("not uploading %d entr%s in %s/ that %s not a regular file (FIFO, "
                    "socket or device): %s", len(special), "y" if len(special) == 1 else "ies",
                    root, "is" if len(special) == 1 else "are", ", ".join(special))
    if stale:
        log.warning("not uploading %d file(s) in %s/ last modified before this run started "
                    "(%s): they are an earlier run's; a file this run writes again is uploaded",
                    stale, root, _clock(since_ms))
    return uploads, skipped


def warn_moved(outputs_dir: str, since_ms: int | None) -> None:
    """One line naming the files this run wrote to ``./outputs`` of another folder than the
    start folder's ``outputs_dir`` (the script called ``os.chdir``): they are not uploaded,
    and would otherwise be left behind without a word."""
    try:
        here = os.path.join(os.getcwd(), ARTIFACT_DIR)
    except OSError:  # the current folder was deleted
        return
    if not os.path.isdir(here) or os.path.realpath(here) == os.path.realpath(outputs_dir):
        return
    written = []
    for folder, _, files in os.walk(here):
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                if not _older(os.lstat(path).st_mtime_ns, since_ms):
                    written.append(path)
            except OSError:
                continue
    if written:
        log.warning("not uploading %d file(s) in %s: the script changed folder (os.chdir) after "
                    "it started, and ./outputs is the start folder's, %s (write there, by its "
                    "absolute path, to upload them): %s", len(written), here, outputs_dir,
                    ", ".join(written))


def _clock(ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def warn_skipped(skipped, max_bytes: int, root: str = ARTIFACT_DIR) -> None:
    if not skipped:
        return
    listed = ", ".join(f"{path} ({size:,} bytes)" for path, size in skipped)
    log.warning("not uploading %d file(s) in %s/ larger than %s bytes "
                "(AZML_MAX_OUTPUT_BYTES): %s", len(skipped), root, f"{max_bytes:,}", listed)


# Smaller uploads end before a bar would tell anything (a local store copies 50 MB in well
# under a second).
UPLOAD_BAR_BYTES = 50 * 1024 * 1024


def uploaded(files) -> int:
    """Bytes of ``files`` (``(handle, local_path, size)``) uploaded so far: whole files whose
    record is delivered, and what an upload in progress has read of the others."""
    from .progress import read_so_far

    return sum(size if handle.done() else min(size, read_so_far(path))
               for handle, path, size in files)
