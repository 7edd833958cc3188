"""``./logs`` uploaded while the run runs, as SDK v1 did ("files written to ./logs are uploaded
in near real time"): a user watching the run sees its log grow.

A thread of its own looks at the folder every ``POLL_INTERVAL`` s (``outputs.scan``: the same
rules as ``./outputs``: links never lead out of the project, files an earlier run left are not
this run's, files over ``AZML_MAX_OUTPUT_BYTES`` wait for the end's one line). A file whose
size or mtime changed since it was last queued is queued again as ``logs/<path>`` once it has
been quiet for ``QUIET`` s, or once its change has waited ``MAX_DELAY`` s (a log written every
second is never quiet). The training thread does none of this.

What is queued is a private copy in the journal's folder (``<journal>.files/logs-<n>/``), not
the file: a process killed now leaves its log's last state for ``azml sync``, and the next run
of the script, which rewrites ``logs/train.log``, cannot replace it. A file has at most one
record on its way: while the store is down, a newer state rewrites that record's copy instead
of queuing another, so the journal holds one copy per file, however long the outage. At the
end (``finish``) every file whose last content is not already stored or on its way is queued
as it is then, with ``./outputs`` (``Journal.close`` copies what is still undelivered).

Measured on a run with nothing in ``./logs`` (``python -m bench.livelogs``, a loaded 2-core
machine): one look at a missing folder costs ~2-3 µs, at an empty one ~90 µs (the link roots
resolved again: a folder linked meanwhile is followed by the same rules); once a second, and
the thread's CPU over a 10 s run was 1.7 ms: nothing a run can notice.
"""
from __future__ import annotations

import itertools
import logging
import os
import shutil
import threading
import time

from .._exceptions import PermanentError, RecordRejected
from .outputs import LOGS_DIR, scan, warn_skipped
from .records import FILE
from .stores.base import open_source  # no MLflow: a plain file helper

log = logging.getLogger("azml")

POLL_INTERVAL = 1.0  # s between looks at ./logs
QUIET = 1.0  # s a changed file must rest before it is sent: not mid-write of a burst
MAX_DELAY = 5.0  # s a change waits at most, however busy the file
# A large log is sent again no sooner than its size at this rate: live uploads of one file
# cost at most ~1 MB/s of disk and network (a 100 MB log: once every 100 s), the end sends
# the last content whatever its size.
LIVE_BYTES_PER_S = 1024 * 1024


class _File:
    """One file of ``./logs``: what was sent, and the record on its way."""

    __slots__ = ("artifact_dir", "sent", "queued", "handle", "copy", "refreshed",
                 "queued_at", "changed_at")

    def __init__(self, artifact_dir: str) -> None:
        self.artifact_dir = artifact_dir
        self.sent = None  # (size, mtime_ns) the store holds, None if unknown
        self.queued = None  # the state of the record on its way (or last sent)
        self.handle = None  # that record's handle while it is on its way
        self.copy: str | None = None  # its private copy, None if it names the file itself
        self.refreshed = False  # the content it will send changed after it was queued
        self.queued_at = float("-inf")
        self.changed_at: float | None = None  # when a change not yet queued was first seen

    def settle(self) -> None:
        """Its record, if delivered: the store holds ``queued`` (unless the copy changed
        meanwhile, or the store refused it: then what it holds is unknown, sent again)."""
        handle = self.handle
        if handle is None or not handle.done():
            return
        try:
            handle.wait(0)
            ok = True
        except RecordRejected:
            ok = False
        self.sent = self.queued if ok and not self.refreshed else None
        self.handle = self.copy = None
        self.refreshed = False

    def on_its_way(self, state) -> bool:
        """True when ``state`` is what the store holds or surely will once its record
        arrives (a copy rewritten meanwhile may have been read before: not sure)."""
        return state == self.sent or (self.handle is not None and state == self.queued
                                      and not self.refreshed)


class LiveLogs:
    """``./logs`` of one run, sent while it runs (``start``) and at its end (``finish``)."""

    def __init__(self, folder: str, dispatcher, max_bytes: int, since_ms: int | None) -> None:
        self.folder = folder
        self._dispatcher = dispatcher
        self._max_bytes = max_bytes
        self._since_ms = since_ms
        self._files: dict[str, _File] = {}
        self._lock = threading.Lock()  # one pass at a time: the thread's or the end's
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._copies = itertools.count(1)
        self._told: set = set()

    def start(self) -> "LiveLogs":
        self._thread = threading.Thread(target=self._loop, name="azml-logs", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(POLL_INTERVAL):
            try:
                with self._lock:
                    if not self._stop.is_set():
                        self._pass()
            except Exception as exc:  # noqa: BLE001 - the end sends ./logs whatever happens here
                self._tell("pass", "cannot look at %s (%s); it is uploaded at the end", exc)

    def _tell(self, what: str, message: str, exc: BaseException) -> None:
        if what not in self._told:
            self._told.add(what)
            log.warning(message, self.folder, exc)

    def _pass(self) -> None:
        uploads, _ = scan(self.folder, self._max_bytes, since_ms=self._since_ms, root=LOGS_DIR,
                          warn=False)
        now = time.monotonic()
        for artifact_dir, path, _ in uploads:
            try:
                info = os.stat(path)
            except OSError:
                continue  # removed meanwhile
            state = (info.st_size, info.st_mtime_ns)
            entry = self._files.get(path)
            if entry is None:
                entry = self._files[path] = _File(artifact_dir)
            entry.settle()
            if state == entry.sent or (entry.handle is not None and state == entry.queued):
                entry.changed_at = None  # stored, or what its record on the way holds
                continue
            if entry.changed_at is None:
                entry.changed_at = now
            quiet = time.time_ns() - info.st_mtime_ns >= QUIET * 1e9
            if not quiet and now - entry.changed_at < MAX_DELAY:
                continue
            if now - entry.queued_at < info.st_size / LIVE_BYTES_PER_S:
                continue
            self._send(entry, path, state, now)

    def _send(self, entry: _File, path: str, state, now: float) -> None:
        if entry.handle is not None:
            # Its record is still on its way (a slow or unreachable store): it sends the newer
            # content instead of a second record (and copy) queuing behind it.
            if entry.copy is not None:
                try:
                    self._copy(path, entry.artifact_dir, entry.copy, make_folder=False)
                except (OSError, PermanentError):
                    return  # delivered meanwhile (its copy is gone): queued anew next time
            entry.queued, entry.refreshed, entry.changed_at = state, True, None
            entry.queued_at = now  # a copy again is I/O too: at the same bounded rate
            return
        files_dir = getattr(self._dispatcher.journal, "files_dir", None)
        copy = None
        if files_dir is not None:
            copy = os.path.join(files_dir, f"logs-{next(self._copies)}", os.path.basename(path))
            try:
                self._copy(path, entry.artifact_dir, copy)
            except PermanentError as exc:  # a link swapped to lead out, a FIFO: never sent
                shutil.rmtree(os.path.dirname(copy), ignore_errors=True)
                self._tell("refused", "not uploading a file of %s: %s", exc)
                return
            except OSError as exc:
                shutil.rmtree(os.path.dirname(copy), ignore_errors=True)
                if not os.path.isfile(path):
                    return  # removed meanwhile
                # A full disk, say: the record names the file itself, read when it is sent.
                self._tell("copy", "cannot copy a file of %s into the journal (%s); sending "
                                   "it as it is when sent", exc)
                copy = None
        entry.handle = self._dispatcher.put(FILE, entry.artifact_dir, copy or path)
        entry.copy, entry.queued, entry.refreshed = copy, state, False
        entry.queued_at, entry.changed_at = now, None

    @staticmethod
    def _copy(path: str, artifact_dir: str, copy: str, make_folder: bool = True) -> None:
        """``path``'s content into ``copy``, whole or not at all (written aside, then renamed:
        the sender may be reading the previous one). Opened as a FILE record's source is, so
        a link swapped after the scan cannot lead out of the project (``PermanentError``).
        ``make_folder`` False: the copy's folder must exist (once its record is delivered,
        the journal deletes it, and a refresh must not bring it back)."""
        if make_folder:
            os.makedirs(os.path.dirname(copy), mode=0o700, exist_ok=True)
        part = copy + ".part"
        try:
            with open_source(path, artifact_dir) as src, open(
                    os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(part, copy)
        finally:
            try:
                os.unlink(part)
            except OSError:
                pass

    def finish(self) -> list:
        """At the end of the run: stop looking, and queue every file whose last content the
        store does not hold or get already, as it is now. ``(handle, path, size)`` of each."""
        self._stop.set()
        queued = []
        with self._lock:  # a pass in progress ends first (its copy is the file's last one)
            uploads, skipped = scan(self.folder, self._max_bytes, since_ms=self._since_ms,
                                    root=LOGS_DIR)
            warn_skipped(skipped, self._max_bytes, LOGS_DIR)
            for artifact_dir, path, size in uploads:
                entry = self._files.get(path)
                if entry is not None:
                    entry.settle()
                    try:
                        info = os.stat(path)
                    except OSError:
                        continue
                    if entry.on_its_way((info.st_size, info.st_mtime_ns)):
                        continue
                queued.append((self._dispatcher.put(FILE, artifact_dir, path), path, size))
        return queued
