"""Progress a person can watch: one tqdm bar on stderr (bytes or records, with rate and ETA),
drawn only when stderr is a terminal and the ``azml`` logger shows warnings (so never when
piped, redirected to a file, or under an ``azml`` command's ``--only-show-errors``).

Every long transfer (``./outputs`` at exit, ``azml history download``, ``azml asset download``)
goes through :class:`Progress`, so they all look and behave the same. ``azml sync`` draws one
line per journal instead (``cli/sync.ProgressLine``: records and points, and why it waits,
which a bar has no room for), on the same condition, ``shown()``.
"""
from __future__ import annotations

import logging
import os
import sys
import threading

BYTES = "B"


def shown(stream=None) -> bool:
    """True if a bar would be drawn on ``stream`` (default stderr) now."""
    stream = stream or sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and logging.getLogger("azml").isEnabledFor(logging.WARNING)


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


class Progress:
    """A bar for ``total`` units (None: unknown, a counter with a rate). ``update(n)`` adds
    ``n`` done, ``set(done)`` sets it (for a poller), ``close()`` (or the end of a ``with``)
    ends the line. Bytes are shown as kB/MB/GB (1024-based, as ``ls -h``) with their rate and
    the time left. Off the terminal nothing is drawn and tqdm is never imported (47 ms cold:
    ``python -X importtime -c 'import tqdm'``)."""

    def __init__(self, total: float | None, description: str, unit: str = BYTES,
                 stream=None) -> None:
        stream = stream or sys.stderr
        self.done = 0
        self._bar = None
        if shown(stream):
            from tqdm import tqdm

            # A terminal that reports no size (a pty nobody sized) gets 80x24, not an empty
            # bar (tqdm hides a bar below the screen's last row); a sized one is followed.
            sized = _columns(stream) > 0
            self._bar = tqdm(total=total, desc=description, file=stream, dynamic_ncols=sized,
                             ncols=None if sized else 80, nrows=None if sized else 24,
                             unit=unit, unit_scale=unit == BYTES,
                             unit_divisor=1024 if unit == BYTES else 1000, mininterval=0.2)

    @property
    def drawn(self) -> bool:
        return self._bar is not None

    def update(self, n: float = 1) -> None:
        self.set(self.done + n)

    def set(self, done: float) -> None:
        if self._bar is not None and done != self.done:
            self._bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Meter:
    """Bytes read so far from each local file being uploaded, by any thread: a store's upload
    reads its file through :func:`metered`, the thread drawing a bar asks :func:`read_so_far`.
    A file's count is dropped when its reader closes (the upload is then done, or failed and
    counted again from 0 on its retry)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._read: dict[str, int] = {}

    def add(self, path: str, n: int) -> None:
        with self._lock:
            self._read[path] = self._read.get(path, 0) + n

    def drop(self, path: str) -> None:
        with self._lock:
            self._read.pop(path, None)

    def get(self, path: str) -> int:
        with self._lock:
            return self._read.get(path, 0)


_METER = _Meter()


class metered:
    """``fileobj`` (opened from ``path``) whose reads are counted for :func:`read_so_far`; a
    context manager like the file, closing it at the end."""

    def __init__(self, fileobj, path: str) -> None:
        self._file, self._path = fileobj, os.path.abspath(path)

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        _METER.add(self._path, len(data))
        return data

    def __getattr__(self, name):  # fileno, seek, tell, ...: the file's own (requests asks)
        return getattr(self._file, name)

    def close(self) -> None:
        _METER.drop(self._path)
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_so_far(path: str) -> int:
    """Bytes of ``path`` an upload in progress has read (0 if none is reading it)."""
    return _METER.get(os.path.abspath(path))


class watching:
    """A bar for files arriving in ``folder`` (a download MLflow or our client writes), polled
    every 0.2 s from a thread of its own, as a context manager around the download. ``total``
    bytes if known (else a counter with its rate). Off the terminal: no thread, nothing."""

    POLL = 0.2

    def __init__(self, folder: str, total: int | None, description: str) -> None:
        self.folder, self.total, self.description = folder, total, description
        self._stop = threading.Event()
        self._thread = None
        self._bar = None

    def __enter__(self) -> "watching":
        if shown():
            self._bar = Progress(self.total, self.description)
            self._thread = threading.Thread(target=self._poll, name="azml-progress", daemon=True)
            self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.POLL):
            self._bar.set(folder_bytes(self.folder))

    def __exit__(self, exc_type, *exc) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        if exc_type is None:
            self._bar.set(folder_bytes(self.folder))
        self._bar.close()


def folder_bytes(folder: str) -> int:
    """Bytes of the regular files under ``folder`` now (files vanishing meanwhile skipped)."""
    total = 0
    for parent, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                pass
    return total
