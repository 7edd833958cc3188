"""``./outputs``: Workbench uploaded every file written there when the run ended."""
from __future__ import annotations

import logging
import os
import stat
import sys

ARTIFACT_DIR = "outputs"
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


def scan(outputs_dir: str, max_bytes: int, since_ms: int | None = None,
         root: str = ARTIFACT_DIR):
    """``(uploads, skipped)``: ``(artifact_dir, local_path, size)`` to upload, ``(path, size)`` too big.

    Symlinked folders are not followed (they could lead anywhere); symlinked files are
    uploaded by content. Artifact paths come from the walk, so they stay under ``outputs/``.
    With ``since_ms`` (the run's start), files last modified before it are left alone with one
    line: Workbench ran each run in a fresh copy of the project, so ``outputs/`` only held that
    run's files, while here they stay from one run to the next. ``root``: the artifact folder
    they go to (``logs`` for SDK v1's ``./logs``).
    """
    uploads, skipped, special, stale = [], [], [], 0
    if not os.path.isdir(outputs_dir):
        return uploads, skipped
    for folder, dirs, files in os.walk(outputs_dir):
        dirs.sort()
        rel = os.path.relpath(folder, outputs_dir)
        artifact_dir = root if rel == "." else f"{root}/{rel.replace(os.sep, '/')}"
        for name in sorted(files):
            local = os.path.join(folder, name)
            try:
                info = os.stat(local)  # never opened here: opening a FIFO blocks
            except OSError:
                continue  # a dangling link or a file removed meanwhile
            if not stat.S_ISREG(info.st_mode):
                special.append(local)  # a FIFO, socket or device: reading it may never end
            elif _older(info.st_mtime_ns, since_ms):
                stale += 1
            elif info.st_size > max_bytes:
                skipped.append((local, info.st_size))
            else:
                uploads.append((artifact_dir, local, info.st_size))
    if special:
        log.warning("not uploading %d entr%s in %s/ that %s not a regular file (FIFO, "
                    "socket or device): %s", len(special), "y" if len(special) == 1 else "ies",
                    root, "is" if len(special) == 1 else "are", ", ".join(special))
    if stale:
        log.warning("not uploading %d file(s) in %s/ last modified before this run started "
                    "(%s): they are an earlier run's; a file this run writes again is uploaded",
                    root, stale, _clock(since_ms))
    return uploads, skipped


def _clock(ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def warn_skipped(skipped, max_bytes: int) -> None:
    if not skipped:
        return
    listed = ", ".join(f"{path} ({size:,} bytes)" for path, size in skipped)
    log.warning("not uploading %d file(s) in outputs/ larger than %s bytes "
                "(AZML_MAX_OUTPUT_BYTES): %s", len(skipped), f"{max_bytes:,}", listed)


class ProgressBar:
    """A one-line bar on stderr, drawn only for a TTY and a large upload."""

    MIN_BYTES = 50 * 1024 * 1024
    WIDTH = 30

    def __init__(self, total_bytes: int, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.total = total_bytes
        self.enabled = total_bytes >= self.MIN_BYTES and getattr(self.stream, "isatty", bool)()

    def draw(self, done_bytes: int) -> None:
        if not self.enabled:
            return
        frac = min(1.0, done_bytes / self.total) if self.total else 1.0
        filled = int(frac * self.WIDTH)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(
            f"\razml: uploading outputs/ [{bar}] {done_bytes / 2**20:,.0f}/{self.total / 2**20:,.0f} MB"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
