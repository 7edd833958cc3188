"""The background worker between ``log()`` and the tracking store.

Modelled on sentry-python's worker, with a journal in the middle:

    put() ──> queue (RAM) ──writer thread──> journal (disk) ──sender thread──> tracking store

* ``put`` appends to an in-memory queue under a lock and returns: no I/O, no event to set.
* The writer wakes every ``COMMIT_INTERVAL`` and moves the whole queue into the journal in one
  transaction (a group commit), so RAM holds at most a fraction of a second of records.
* The sender reads the journal in order, packs and sends (``_sender``), and settles what was
  delivered. It can block on a dead server for as long as it likes: the writer goes on.

Completion is a watermark over sequence numbers, so a handle is two fields and ``wait()`` is a
condition wait, never a per-record event.

``close()`` stops both threads and the sender's request threads; what was not delivered stays
in the journal. The journal (``_journal.JournalLike``) and the sender (``_sender.Sender``, with
its store behind ``_stores.base.Store``) are given, so the unit tests run all of this on
``MemoryJournal`` and a fake store.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import os
import posixpath
import threading
import time
from typing import TYPE_CHECKING, Callable

from .._consts import (CLOSE_TIMEOUT, COMMIT_INTERVAL, DEFAULT_WAIT_TIMEOUT, HIGH_WATER, LOW_WATER,
                       PACE_TIMEOUT, SEND_WINDOW, TAKE_LIMIT)
from .._exceptions import DeliveryTimeout, RecordRejected, Stopped
from .records import END, FILE
from .._redact import redact_text
from .steps import SharedSteps
from .stores.base import is_run_level

if TYPE_CHECKING:
    from .journal import JournalLike
    from .sender import Sender

log = logging.getLogger("azml")


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
        """Block until the record is persisted; raise ``RecordRejected`` if it never will be
        (the store refused it, it cannot be delivered, the run cannot be opened), with the
        store's error as its cause.

        Records complete in the order they were logged, so once this returns every record
        logged before it has completed too. The one exception: if the store refuses our
        credentials, this warns once and returns (the record stays in the journal).
        Without ``timeout``, a store that takes no record for ``AZML_WAIT_TIMEOUT`` seconds
        (default 300) raises ``DeliveryTimeout`` naming it and the journal; the record stays
        journaled for ``azml sync``.
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
    """A FIFO of records, the journal behind it, and the threads that deliver them in order."""

    def __init__(self, journal: "JournalLike", sender_factory: Callable[[], "Sender"],
                 fallback=None, max_journal_bytes: int = 0,
                 steps: dict | None = None, wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
                 store: str = "the tracking store") -> None:
        self.journal = journal
        self.wait_timeout = wait_timeout  # bound of a wait() without a timeout (0: none)
        self.store = store  # redacted, for messages
        self._unsettled: tuple[int, dict] | None = None  # delivered, not yet deleted from disk
        self._told_failure: set = set()
        self.steps: dict[str, int] = steps if steps is not None else {}  # next step per key
        self._fallback = fallback  # called with the error when the journal cannot be written
        self._max_journal_bytes = max_journal_bytes
        self._sender_factory = sender_factory  # makes the Sender; start() runs on our thread
        self._sender: Sender | None = None
        self._stop = threading.Event()  # close(): the threads end
        self._threads: list[threading.Thread] = []
        self._queue: collections.deque = collections.deque()
        self._lock = threading.Lock()  # orders seq numbers (and steps) with queue appends
        self._write_lock = threading.Lock()  # one journal writer: the thread or the exit commit
        self._cond = threading.Condition(threading.Lock())  # watermarks change
        self._wake = threading.Event()  # hurries the writer (flush, wait, exit, a lone record)
        self._committed_at = 0.0  # monotonic time the writer last took records
        self._drained = threading.Condition(threading.Lock())  # the writer took a batch
        self._seq = 0
        self._journaled = 0  # every record with seq <= _journaled is in the journal
        self._done = 0  # every record with seq <= _done has been delivered or rejected
        # Only failed records: seq -> (the store's error, kind, key or path, kept for sync).
        self._errors: dict[int, tuple] = {}
        self._last_progress = time.monotonic()
        self.delivered_points = 0  # metric points the store took (the exit's rate measure)
        self.fatal: BaseException | None = None  # why the sender could not even start
        # The store lost the run (deleted, or its database wiped) while we logged: what it
        # refused and everything after stays in the journal for `azml sync --to-new-run`.
        self.vanished: BaseException | None = None
        self.blocked: BaseException | None = None  # credentials refused: waiting cannot help
        self._told_blocked = False
        # Steps of a run shared with other processes (``_steps``); None while this process
        # has its run to itself and the step taken at the log() call is final.
        self.shared: SharedSteps | None = None
        # Called by the journal thread before each commit: takes in the records of this
        # process's workers (``_spool.Intake.poll``), through ``ingest``.
        self.intake: Callable[[], None] | None = None

    def share(self, directory: str, floors: dict | None = None, from_store: bool = False) -> None:
        """From the next record on, steps come from the run's machine-wide allocator (a fork
        happened, or the run was attached). ``floors``: the first step each name may take;
        default, the steps this process has given so far."""
        with self._lock:
            if self.shared is not None:
                return
            shared = SharedSteps(directory, self._seq + 1,
                                 dict(self.steps) if floors is None else floors,
                                 from_store=from_store)
            self.shared = shared
        self.journal.set_meta(**shared.meta())

    def start(self) -> "Dispatcher":
        """Start the journal and sender threads (after the owner holds on to this object)."""
        for target, name in ((self._write_loop, "azml-journal"), (self._send_loop, "azml-sender")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            self._threads.append(thread)
            thread.start()
        return self

    def close(self, timeout: float = CLOSE_TIMEOUT) -> bool:
        """Stop the journal and sender threads and the sender's request threads; True if all
        of them ended within ``timeout``.

        Whatever is still queued is committed to the journal first; what was not delivered
        stays there for ``azml sync`` (or ``whereabouts()`` counts it). A sender waiting to
        retry a dead store wakes at once; one inside a request is not waited for past
        ``timeout`` (a daemon thread: it ends when the request returns, sending nothing more).
        Safe to call twice. Records put after this are not sent: close the session last.
        """
        self._stop.set()
        sender = self._sender
        if sender is not None:
            sender.stop()
        self._wake.set()
        with self._cond:
            self._cond.notify_all()  # the sender thread and every waiter look again
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        try:
            self._write_pending()  # records put while the writer stopped: on disk, not lost
        except Exception as exc:  # noqa: BLE001 - a broken journal: the exit counts what is left
            self._tell_once("journal", "journal thread error (%s); going on", exc)
        ended = not any(thread.is_alive() for thread in self._threads)
        sender = self._sender  # the sender thread may have made it meanwhile
        if sender is not None:
            ended = sender.close(max(0.0, deadline - time.monotonic())) and ended
        return ended

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    # -- caller side: no I/O, no MLflow ----------------------------------------------------
    def put(self, *record) -> Handle:
        with self._lock:
            self._seq = seq = self._seq + 1
            self._queue.append((seq, *record))
        queued = len(self._queue)
        if queued > HIGH_WATER:
            self._pace()
        elif queued == 1:
            self._first_after_quiet()
        return Handle(self, seq)

    def put_stepped(self, kind: str, key: str, value, timestamp: int, count: int = 1) -> Handle:
        """Put a metric or series, taking its step(s) under the same lock as its place in the
        queue: one lock per call, and a key's steps always increase in queue order."""
        with self._lock:
            step = self.steps.get(key, 0)
            self.steps[key] = step + count
            self._seq = seq = self._seq + 1
            self._queue.append((seq, kind, key, value, timestamp, step))
        queued = len(self._queue)
        if queued > HIGH_WATER:
            self._pace()
        elif queued == 1:
            self._first_after_quiet()
        return Handle(self, seq)

    def _first_after_quiet(self) -> None:
        """The only record queued: if the writer has taken no record for ``COMMIT_INTERVAL``
        it is idle, and it commits this record now instead of at its next tick (up to 50 ms
        on, and a SIGKILL in between lost it: 1-2 of 4 scripts killed 20 ms after a lone
        point). A busy loop finds the queue at one record right after each take, when the
        last take is recent: it still commits in groups, every ``COMMIT_INTERVAL``."""
        if time.monotonic() - self._committed_at > COMMIT_INTERVAL:
            self._wake.set()

    def _pace(self) -> None:
        """Let the journal catch up with a caller logging faster than it can commit.

        A pure-Python loop can call ``log()`` ~800,000 times a second, more than a thread
        sharing its GIL can journal, and RAM would fill. Past ``HIGH_WATER`` queued records
        the caller waits (no I/O on its thread) until the writer is below ``LOW_WATER``:
        at any sane logging rate this never happens. The timeout keeps a stuck writer from
        ever freezing training.
        """
        self._wake.set()
        with self._drained:
            self._drained.wait_for(lambda: len(self._queue) < LOW_WATER, timeout=PACE_TIMEOUT)

    def completed(self, seq: int) -> bool:
        return self._done >= seq

    @property
    def done(self) -> int:
        """Every record with a seq up to this one was delivered or rejected."""
        return self._done

    def ingest(self, records: list, meta: dict | None = None) -> int:
        """Journal ``records`` (without seq numbers: a worker's, ``_spool``) after everything
        queued so far, in one transaction with ``meta``; the seq number of the last."""
        with self._write_lock:
            with self._lock:
                first = self._seq + 1
                self._seq += len(records)
                taken = list(self._queue)
                self._queue.clear()
            self._append_all(taken)
            batch = [(first + i, *record) for i, record in enumerate(records)]
            self._append(batch, meta)
            with self._cond:
                self._journaled = batch[-1][0]
                self._cond.notify_all()
        return batch[-1][0]

    @property
    def pending(self) -> int:
        return self._seq - self._done

    @property
    def last_progress(self) -> float:
        """``time.monotonic()`` when a record last completed."""
        return self._last_progress

    def block(self, exc: BaseException | None) -> None:
        """The store refuses our credentials (or, with None, accepts them again)."""
        with self._cond:
            self.blocked = exc
            self._cond.notify_all()

    def wait_for(self, seq: int, timeout: float | None = None) -> None:
        self._wake.set()
        with self._cond:
            if timeout is None and self.wait_timeout:
                self._wait_stalled(seq)
            elif not self._cond.wait_for(
                    lambda: self._done >= seq or self.blocked or self._stop.is_set(), timeout):
                raise TimeoutError(
                    f"record #{seq} not persisted within {timeout} s "
                    f"({self._seq - self._done} records pending)"
                )
            if self._done < seq and self.blocked is None:
                raise DeliveryTimeout(f"azml: record #{seq} not delivered before the logger "
                                      f"was closed; {self._kept()}")
            if self._done < seq:
                # Credentials do not fix themselves: waiting would hang the script and raising
                # would crash its training over logging. Say it once and let it go on; the
                # record is safe in the journal for `azml sync`.
                if not self._told_blocked:
                    self._told_blocked = True
                    log.warning(
                        "the tracking store refused the credentials (%s); records are kept "
                        "in the journal %s: fix MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN and run "
                        "`azml sync`", redact_text(str(self.blocked)), self.journal.path)
                return
        failed = self._errors.get(seq)
        if failed is not None:
            # A new exception for every wait(): the records of one refused request share the
            # store's error, and one object raised in several threads would have its traceback
            # rewritten under the others' feet. The store's error is the cause, unchanged.
            cause, kind, key, kept = failed
            raise RecordRejected.for_record(seq, kind, key, cause, self.store, kept,
                                            getattr(self.journal, "path", None)) from cause

    def _wait_stalled(self, seq: int) -> None:
        """Wait (holding ``_cond``) until ``seq`` completes, while records keep completing.

        A store that keeps failing (a broken database, a server that is down) must not hang a
        training script in ``wait()`` for good: once nothing completed for ``wait_timeout`` s,
        raise. The clock restarts on progress, so a long but moving backlog is waited out.
        """
        started = time.monotonic()
        while self._done < seq and not self.blocked and not self._stop.is_set():
            remaining = max(started, self._last_progress) + self.wait_timeout - time.monotonic()
            if remaining <= 0:
                raise DeliveryTimeout(
                    f"record #{seq} not delivered: {self.store} took no record for "
                    f"{self.wait_timeout:g} s (AZML_WAIT_TIMEOUT); {self._kept()}")
            self._cond.wait(remaining)

    def _kept(self) -> str:
        path = getattr(self.journal, "path", None)
        return (f"it stays in the journal {path}: run `azml sync` once the store works"
                if path else "it is kept in memory only (the journal could not be "
                "written) and is lost if the process ends before the store answers")

    def whereabouts(self) -> dict:
        """What is really where, from the journal's content (call after ``commit()``)."""
        try:
            # Only records whose deletion failed are delivered-but-still-there; records the
            # sender could not even try (no run) completed without leaving the journal.
            unsettled = self._unsettled[0] if self._unsettled is not None else 0
            on_disk, rejected, stale = self.journal.undelivered(unsettled)
        except Exception:  # noqa: BLE001 - a journal that cannot be read: count nothing
            on_disk, rejected, stale = 0, 0, 0
        return {"journal": on_disk, "memory": self.journal.in_memory() + len(self._queue),
                "rejected": rejected, "stale": stale}

    def flush(self, timeout: float | None = None, *, stall_timeout: bool = False) -> bool:
        """Wait until everything logged so far has completed; False if time ran out.

        With ``stall_timeout`` the clock restarts whenever a record completes, so a slow but
        moving upload is not cut off while a store that stopped answering still is.
        """
        target = self._seq
        self._wake.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._done < target:
                if self.blocked is not None or self._stop.is_set():
                    # credentials a person must fix, or closed: waiting cannot help
                    return False
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

    def commit(self) -> None:
        """Move everything queued into the journal now (used at exit, on the caller's thread)."""
        self._write_pending()

    # -- writer thread ---------------------------------------------------------------------------
    def _write_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(COMMIT_INTERVAL)
            self._wake.clear()
            if self.intake is not None:
                try:
                    self.intake()
                except Exception as exc:  # noqa: BLE001 - the workers' records wait in their spools
                    self._tell_once("intake", "cannot take in worker records (%s); going on", exc)
            try:
                self._write_pending()
            except Exception as exc:  # noqa: BLE001 - never let the journal thread die
                self._tell_once("journal", "journal thread error (%s); going on", exc)
                self._stop.wait(COMMIT_INTERVAL)

    def _tell_once(self, what: str, message: str, exc: BaseException) -> None:
        if what not in self._told_failure:
            self._told_failure.add(what)
            log.warning(message, redact_text(str(exc)))

    def _write_pending(self) -> None:
        with self._write_lock:
            with self._lock:  # C-speed copy and clear: no per-record Python under the lock
                taken = list(self._queue)
                self._queue.clear()
            if taken:
                self._committed_at = time.monotonic()
            self._append_all(taken)

    def _append_all(self, taken: list) -> None:
        for start in range(0, len(taken), TAKE_LIMIT):
            batch = taken[start:start + TAKE_LIMIT]
            self._append(batch)
            with self._cond:
                self._journaled = batch[-1][0]
                self._cond.notify_all()
        with self._drained:
            self._drained.notify_all()

    def _append(self, batch: list, meta: dict | None = None) -> None:
        try:
            self.journal.append(batch, meta)  # one transaction: all of the batch or none of it
        except Exception as exc:  # noqa: BLE001 - the disk failed us: keep going in RAM
            if self._fallback is None:
                from .journal import MemoryJournal, SpilledJournal

                self._tell_once("append", "the journal failed (%s); records go on in memory",
                                exc)
                if not isinstance(self.journal, (MemoryJournal, SpilledJournal)):
                    self.journal = SpilledJournal(self.journal)
                self.journal.append(batch)
                return
            self.journal = self._fallback(self.journal, exc)
            self._fallback = None
            self.journal.append(batch)
            return
        if self._max_journal_bytes and self._fallback is not None:
            if self.journal.size() > self._max_journal_bytes:
                self.journal = self._fallback(self.journal, OSError(
                    f"it reached AZML_MAX_JOURNAL_BYTES={self._max_journal_bytes:,} bytes"))
                self._fallback = None

    # -- sender thread ---------------------------------------------------------------------------
    def _send_loop(self) -> None:
        try:
            sender = self._sender = self._sender_factory()
            if self._stop.is_set():  # close() came before it could see the sender
                sender.stop()
            sender.start()
        except Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 - reported through every handle instead
            self.fatal = exc
            log.warning("cannot log to this run: %s", exc)
            sender = None
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._journaled > self._done or self._stop.is_set())
                after = self._done
            if self._stop.is_set():
                return
            try:
                self._send_some(sender, after)
            except Stopped:
                return  # close(): what was not delivered stays in the journal
            except Exception as exc:  # noqa: BLE001 - the sender thread must outlive any error
                self._tell_once("send", "delivery error (%s); retrying", exc)
                self._stop.wait(1.0)

    def _send_some(self, sender, after: int) -> None:
        records = self.journal.pending(after, SEND_WINDOW)
        if not records:  # cannot happen while the journal keeps what it was given
            self._stop.wait(COMMIT_INTERVAL)
            return
        if sender is None or self.vanished is not None:
            # Keep the records for `azml sync`; only the handles learn of the failure.
            error = self.vanished if self.vanished is not None else self.fatal
            self._complete(records[-1][0], {r[0]: error for r in records}, settle=False,
                           records=records)
            return
        # The reads the requests in flight came from, to name a refused record. At most
        # 2 x AZML_MAX_IN_FLIGHT requests are held, and a full read of metrics makes 5: three
        # reads at the default of 4. A record past them is named only "record".
        recent: collections.deque = collections.deque(maxlen=3)

        def reads(records):
            """This read, then the next ones while they come back full (a backlog), each
            taken as the sender has sent the last one's requests (``Sender.deliver``)."""
            while True:
                shared = self.shared
                if shared is not None:
                    if shared.from_store:
                        shared.raise_floors(sender.last_steps())
                    with sender.gate:  # the allocator is SQLite: a fork must not split a call
                        records = shared.apply(self.journal, records, sender.run_id)
                recent.append(records)
                yield records
                if (len(records) < SEND_WINDOW or self._stop.is_set()
                        or self.vanished is not None):
                    return
                records = self.journal.pending(records[-1][0], SEND_WINDOW)
                if not records:
                    return

        for done in sender.deliver(reads(records)):
            named = [r for read in recent for r in read] if done.errors else ()
            if done.partial is not None:
                self._advance(*done.partial)
            gone = next((e for e in (done.errors or {}).values() if is_run_level(e)), None)
            if gone is not None:
                self._run_vanished(sender.run_id, gone)
                # Kept, not set aside: a new run can still take them. The rest of this
                # window is sent no more (the next round keeps it the same way).
                self._complete(done.upto, done.errors, settle=False, records=named,
                               points=done.points)
                return
            self._complete(done.upto, done.errors, records=named, points=done.points)

    def _advance(self, seq: int, next_step: int) -> None:
        """A series record is delivered up to ``next_step``: the journal says so (a stopped
        sender, and `azml sync` after it, go on from there), and it is progress."""
        try:
            self.journal.advance(seq, next_step)
        except Exception as exc:  # noqa: BLE001 - a full disk: the rest is only sent again
            self._tell_once("settle", "cannot update the journal (%s); delivered records "
                            "stay in it until it can be written", exc)
        with self._cond:
            self._last_progress = time.monotonic()

    def _run_vanished(self, run_id: str, exc: BaseException) -> None:
        """Said once, not once per batch: the store no longer has the run."""
        self.vanished = exc
        path = getattr(self.journal, "path", None)
        with contextlib.suppress(Exception):  # a journal that cannot be written: said below
            self.journal.set_meta(vanished=redact_text(str(exc))[:500])
        kept = (f"its records stay in {path} and are not sent to it again: `azml sync "
                f"--to-new-run {os.path.basename(path)}` sends them to a new run" if path
                else "its records are kept in memory only and are lost at exit")
        log.warning("the run %s is no longer on %s (deleted, or its database wiped: %s); %s",
                    run_id, self.store, redact_text(str(exc)).splitlines()[0][:300], kept)

    def _settle(self, upto: int, errors: dict | None) -> None:
        """Delete delivered records from the journal; on a journal error (a full disk) keep
        them and try again with the next completion: they are resent only by `azml sync`,
        and a resend is idempotent."""
        if self._unsettled is not None:
            errors = {**self._unsettled[1], **(errors or {})}
        try:
            self.journal.settle(upto, errors)
            self._unsettled = None
        except Exception as exc:  # noqa: BLE001 - sqlite3.OperationalError, OSError
            self._unsettled = (upto, errors or {})
            self._tell_once("settle", "cannot update the journal (%s); delivered records "
                            "stay in it until it can be written", exc)

    def _complete(self, upto: int, errors: dict | None = None, settle: bool = True,
                  records=(), points: int = 0) -> None:
        self.delivered_points += points
        if settle:
            self._settle(upto, errors)
        if errors:
            named = {r[0]: _record_name(r) for r in records if r[0] in errors}
            self._errors.update((seq, (exc, *named.get(seq, ("record", None)), not settle))
                                for seq, exc in errors.items())
        with self._cond:
            if upto > self._done:
                self._done = upto
                self._last_progress = time.monotonic()
            self._cond.notify_all()


def _record_name(record: tuple) -> tuple[str, str | None]:
    """``(kind, key or artifact path)`` of a record, as its failure names it."""
    kind = record[1]
    if kind == FILE:  # (seq, FILE, artifact_dir, local_path): the path it was to have
        return kind, posixpath.join(record[2], os.path.basename(record[3]))
    if kind == END:  # (seq, END, status, end_time_ms)
        return "end of the run", record[2]
    return kind, record[2]


def exit_message(where: dict, journal_path: str | None, store: str, reason: str,
                 run_gone: bool = False) -> str:
    """The one line the exit prints about what was not delivered, counted from the journal's
    content (``Dispatcher.whereabouts``), or "" when everything reached the store. With
    ``run_gone`` (the store lost the run) the way to deliver them is to a new run."""
    parts = []
    left = where["journal"] + where["memory"]
    if left:
        parts.append(f"{left} record(s) not delivered to {store}"
                     + (f" ({reason})" if reason else ""))
    if where["journal"] and run_gone:
        parts.append(f"{where['journal']} kept in {journal_path}: run `azml sync --to-new-run "
                     f"{os.path.basename(journal_path)}` to send them to a new run")
    elif where["journal"]:
        parts.append(f"{where['journal']} kept in {journal_path}: run `azml sync` to deliver them")
    if where["memory"]:
        parts.append(f"{where['memory']} only in memory, lost (the journal could not take them)")
    if where.get("stale"):
        parts.append(f"{where['stale']} delivered record(s) are "
                     f"still in {journal_path} (the journal could not be updated); `azml sync` "
                     "sends them again, harmlessly")
    if where["rejected"]:
        parts.append(f"{where['rejected']} record(s) refused by "
                     f"{store}, set aside in {journal_path} (see `azml sync --list`)")
    return "; ".join(parts)
