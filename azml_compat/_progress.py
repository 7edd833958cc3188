"""Progress a person can watch: one tqdm bar on stderr (bytes or records, with rate and ETA),
drawn only when stderr is a terminal and the ``azml`` logger shows warnings (so never when
piped, redirected to a file, or under an ``azml`` command's ``--only-show-errors``).

Every long transfer (``./outputs`` at exit, ``azml history download``, ``azml asset download``,
``azml sync``) goes through :class:`Progress`, so they all look and behave the same.
"""
from __future__ import annotations

import logging
import os
import sys

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
