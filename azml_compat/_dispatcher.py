"""The background worker between ``log()`` and the tracking store.

Modelled on sentry-python's worker: callers append a record to an in-memory queue and return
at once; one daemon thread drains the queue and hands what it took to a *sender* (connecting
to MLflow, packing batches, retrying: see ``_sender``). Completion is tracked as a watermark
over sequence numbers, so a handle is two fields and ``wait()`` never needs a per-record event.

The seam for durability is ``Dispatcher._take``: records leave the queue there and are what
the sender must deliver; a journal slots in at that point without changing callers or sender.
"""
from __future__ import annotations

import collections
import os
import threading
import time


class Handle:
    """What ``log()`` and ``upload()`` return: Workbench's request object, with ``wait()``."""

    __slots__ = ("_dispatcher", "_seq")

    def __init__(self, dispatcher: "Dispatcher", seq: int) -> None:
        self._dispatcher = dispatcher
        self._seq = seq

    def done(self) -> bool:
        """True once the record reached the store (or was rejected by it)."""
        return self._dispatcher.completed(self._seq)

    def wait(self, timeout: float | None = None) -> None:
        """Block until the record is persisted; raise the store's error if it was rejected.

        Records complete in the order they were logged, so once this returns every record
        logged before it has completed too.
        """
        self._dispatcher.wait_for(self._seq, timeout)

    def __repr__(self) -> str:
        state = "done" if self.done() else "pending"
        return f"<azml record #{self._seq} {state}>"


class DoneHandle(Handle):
    """A handle for a call that had nothing to send (an empty list)."""

    __slots__ = ()

    def __init__(self) -> None:
        pass

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> None:
        return None

    def __repr__(self) -> str:
        return "<azml record (nothing to send) done>"


class Dispatcher:
    """A FIFO of records and the one thread that delivers them, in order."""

    MAX_TAKE = 10_000  # records taken from the queue per round

    def __init__(self, sender_factory, name: str = "azml-dispatcher") -> None:
        self._sender_factory = sender_factory
        self._queue: collections.deque = collections.deque()
        self._lock = threading.Lock()  # orders seq numbers with queue appends
        self._cond = threading.Condition(threading.Lock())  # completion watermark changes
        self._wake = threading.Event()
        self._seq = 0
        self._done = 0  # every record with seq <= _done has completed
        self._errors: dict[int, BaseException] = {}
        self._last_progress = time.monotonic()
        self.fatal: BaseException | None = None  # why the sender could not even start
        self.pid = os.getpid()
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    # -- caller side: no I/O, no MLflow ----------------------------------------------------
    def put(self, *record) -> Handle:
        with self._lock:
            self._seq = seq = self._seq + 1
            self._queue.append((seq, *record))
        if not self._wake.is_set():
            self._wake.set()
        return Handle(self, seq)

    def completed(self, seq: int) -> bool:
        return self._done >= seq

    @property
    def last_progress(self) -> float:
        """``time.monotonic()`` when a record last completed."""
        return self._last_progress

    @property
    def pending(self) -> int:
        return self._seq - self._done

    def wait_for(self, seq: int, timeout: float | None = None) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._done >= seq, timeout):
                raise TimeoutError(
                    f"record #{seq} not persisted within {timeout} s "
                    f"({self._seq - self._done} records pending)"
                )
        error = self._errors.get(seq)
        if error is not None:
            raise error

    def flush(self, timeout: float | None = None, *, stall_timeout: bool = False) -> bool:
        """Wait until everything logged so far has completed; False if time ran out.

        With ``stall_timeout`` the clock restarts whenever a record completes, so a slow but
        moving upload is not cut off while a store that stopped answering still is.
        """
        target = self._seq
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._done < target:
                if deadline is None:
                    self._cond.wait()
                    continue
                if stall_timeout:
                    deadline = max(deadline, self._last_progress + timeout)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    # -- worker side -------------------------------------------------------------------------
    def _take(self) -> list:
        records = []
        queue = self._queue
        while queue and len(records) < self.MAX_TAKE:
            records.append(queue.popleft())
        return records

    def _complete(self, upto: int, errors: dict[int, BaseException] | None = None) -> None:
        if errors:
            self._errors.update(errors)
        with self._cond:
            if upto > self._done:
                self._done = upto
                self._last_progress = time.monotonic()
            self._cond.notify_all()

    def _work(self) -> None:
        try:
            sender = self._sender_factory()
        except BaseException as exc:  # noqa: BLE001 - reported through every handle instead
            self.fatal = exc
            sender = None
        while True:
            self._wake.wait()
            self._wake.clear()
            while True:
                records = self._take()
                if not records:
                    break
                if sender is None:
                    self._complete(records[-1][0], {r[0]: self.fatal for r in records})
                    continue
                for upto, errors in sender.deliver(records):
                    self._complete(upto, errors)
