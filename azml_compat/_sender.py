"""Delivers what the dispatcher took from its queue: connects, packs, retries, isolates.

Transient failures (connection refused, 5xx, 429, auth) are retried with exponential backoff
and jitter for as long as the process lives: the dispatcher's bounded flush at exit is what
stops waiting, never a dropped record. A request the store rejects as invalid is split in
halves until the offending record is found; only that record's handle fails.
"""
from __future__ import annotations

import collections
import gc
import logging
import os
import queue
import random
import socket
import threading
import time
from concurrent.futures import Future

from ._batching import ARTIFACT, END, FILE, Batch, pack
from ._config import redact, redact_text
from ._records import RUN_KEY_TAG, RunSpec
from ._stores import connect
from ._stores.base import http_status, is_run_level, is_transient

log = logging.getLogger("azml")

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0


class GaveUp(Exception):
    """The store stayed unreachable past ``give_up_after``: the records stay where they are
    (a give-up is never a rejection; the next ``azml sync`` tries again)."""


DESCRIBE_MAX = 300


def _root_os_error(exc: BaseException) -> OSError | None:
    """The OS's own connection error under the wrappers (MlflowException -> requests -> urllib3's
    MaxRetryError.reason -> NewConnectionError -> ConnectionRefusedError), if there is one."""
    found, seen, todo = None, set(), [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if (isinstance(current, (ConnectionError, socket.gaierror, TimeoutError))
                and current.errno is not None and current.strerror):
            found = current  # the deepest one wins: it is the cause of the others
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None),
                 *(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))]
    return found


def _describe(exc: BaseException) -> str:
    """One short, whole line for a warning: the OS's reason for a connection that failed
    ("connection failed: [Errno 111] Connection refused"), else the error's first line, cut
    at a word and marked "…" past ``DESCRIBE_MAX`` characters (MLflow's messages for a refused
    connection run past 400 characters of nested reprs)."""
    root = _root_os_error(exc)
    if root is not None:
        return redact_text(f"connection failed: [Errno {root.errno}] {root.strerror}")
    text = str(exc).strip().splitlines()
    line = redact_text(f"{type(exc).__name__}: {text[0] if text else ''}")
    if len(line) > DESCRIBE_MAX:
        line = line[: DESCRIBE_MAX - 1].rsplit(" ", 1)[0] + " …"
    return line


def freeze_heap() -> None:
    """Exempt the objects alive now (mostly MLflow's, just imported) from future collections.

    Importing MLflow adds several hundred thousand objects to the training process; without
    this, every full collection of the script's garbage walks them all (~120 ms here: measured
    as stalls of the caller's ``log()`` in bench case 1). ``AZML_GC_FREEZE=0`` turns it off.
    """
    if os.environ.get("AZML_GC_FREEZE", "1") != "0":
        gc.freeze()


class Sender:
    """One run's connection to the tracking store, created in the worker thread."""

    def __init__(self, spec: RunSpec, on_run=None, store_factory=connect,
                 give_up_after: float | None = None, on_blocked=None, quiet: bool = False,
                 gate: "ForkGate | None" = None) -> None:
        self.spec = spec
        # told of a 401/403 (and of the recovery, with None): waiters should not wait on it
        self._on_blocked = on_blocked or (lambda exc: None)
        # A forked child's store is its parent's: the parent already tells the user when the
        # store is unreachable, and a pool of N workers must not say it N more times.
        self._quiet = quiet
        self._failing = False
        self._give_up_after = give_up_after  # None: retry while the process lives
        self.gate = gate or ForkGate()  # every call into MLflow passes it
        self.store = self._retry(lambda: store_factory(spec.tracking_uri), "connect")
        if not getattr(self.store, "FORK_GATED", True):
            self.gate.exempt()
        freeze_heap()
        self.run_id = self._open_run(spec)
        self._pool = _Pool(self.store.CONCURRENCY) if self.store.CONCURRENCY > 1 else None
        if on_run is not None:
            on_run(self.run_id)

    def _open_run(self, spec: RunSpec) -> str:
        """The run's id; a run made by another process (a forked child's parent) is looked up
        by its key with the usual backoff until that process has created it."""
        delay = BACKOFF_START
        started = time.monotonic()
        while True:
            run_id = self._retry(lambda: self.store.open_run(spec), "open the run")
            if run_id is not None:
                return run_id
            if self._give_up_after is not None and time.monotonic() - started > self._give_up_after:
                raise LookupError(f"run with {RUN_KEY_TAG}={spec.run_key} not created yet in "
                                  f"experiment {spec.experiment_name!r}")
            time.sleep(min(delay * random.uniform(0.5, 1.0), BACKOFF_MAX))
            delay = min(delay * 2, BACKOFF_MAX)

    # -- retry policy ------------------------------------------------------------------------
    def _retry(self, call, what: str):
        delay = BACKOFF_START
        first_failure = None
        while True:
            try:
                with self.gate:
                    result = call()
            except Exception as exc:  # noqa: BLE001 - classified below
                if not is_transient(exc):
                    raise
                if http_status(exc) in (401, 403):
                    self._on_blocked(exc)
                now = time.monotonic()
                first_failure = first_failure or now
                if self._give_up_after is not None and now - first_failure > self._give_up_after:
                    raise GaveUp(f"cannot {what} at {redact(self.spec.tracking_uri)} "
                                 f"({_describe(exc)})") from exc
                if not self._failing:
                    self._failing = True
                    if not self._quiet:
                        log.warning(
                            "azml: cannot %s at %s (%s); retrying in the background, "
                            "nothing is dropped",
                            what,
                            redact(self.spec.tracking_uri),
                            _describe(exc),
                        )
                # Honour the server's Retry-After (429/503), else back off with jitter.
                wait = max(delay * random.uniform(0.5, 1.0), getattr(exc, "retry_after", 0) or 0)
                time.sleep(min(wait, BACKOFF_MAX))
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            if self._failing:
                self._failing = False
                if not self._quiet:
                    log.warning("azml: tracking store %s reachable again",
                                redact(self.spec.tracking_uri))
                self._on_blocked(None)
            return result

    # -- delivery ----------------------------------------------------------------------------
    def deliver(self, records):
        """Yield ``(upto_seq, {seq: error})`` as requests complete, in order.

        Where the store takes concurrent requests (a server with several workers), batches of
        metrics are pipelined: metric points carry their own step and timestamp, so the order
        they land in does not matter. Tags (latest wins) and uploads wait for everything before
        them, and completions are reported in order, so the watermark stays a true prefix.
        """
        in_flight: collections.deque = collections.deque()
        for request in pack(records):
            if self._pool is not None and isinstance(request, Batch) and not request.tags:
                in_flight.append((request.upto, self._pool.submit(self._send_batch, request)))
                while in_flight and (len(in_flight) >= self._pool.size or in_flight[0][1].done()):
                    upto, future = in_flight.popleft()
                    yield upto, future.result()
                continue
            while in_flight:
                upto, future = in_flight.popleft()
                yield upto, future.result()
            if isinstance(request, Batch):
                yield request.upto, self._send_batch(request)
            else:
                error = self._send_single(request.record)
                yield request.upto, ({request.record[0]: error} if error else None)
        while in_flight:
            upto, future = in_flight.popleft()
            yield upto, future.result()

    def _send_batch(self, batch: Batch) -> dict:
        try:
            self._retry(
                lambda: self.store.log_batch(self.run_id, batch.metrics, batch.tags), "log"
            )
            return {}
        except GaveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - a permanent rejection
            if len(batch) == 1 or is_run_level(exc):
                log.warning("azml: the tracking store rejected %d record(s): %s",
                            len(batch), _describe(exc))
                return {seq: exc for seq in batch.seqs()}
            first, second = batch.split()
            return {**self._send_batch(first), **self._send_batch(second)}

    def last_steps(self) -> dict:
        return self._retry(lambda: self.store.last_steps(self.run_id), "read the run's steps")

    def end_run(self, status: str, end_time_ms: int) -> None:
        self._retry(lambda: self.store.end_run(self.run_id, status, end_time_ms), "end the run")

    def _send_single(self, record: tuple) -> BaseException | None:
        kind = record[1]
        try:
            if kind == ARTIFACT:
                self._retry(lambda: self.store.upload_bytes(self.run_id, record[2], record[3]),
                            "upload")
            elif kind == FILE:
                self._retry(lambda: self.store.upload_file(self.run_id, record[2], record[3]),
                            "upload")
            elif kind == END:
                self.end_run(record[2], record[3])
            else:
                raise ValueError(f"unknown record kind {kind!r}")
        except GaveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - reported through the record's handle
            log.warning("azml: the tracking store rejected %s %r: %s", kind, record[2],
                        _describe(exc))
            return exc
        return None


class ForkGate:
    """Lets a fork wait until no thread of ours is inside SQLite or an import of MLflow.

    A child inherits every lock as it was at the fork, held or not, with no thread left to
    release it. SQLite's mutexes (the journal's, and the SQLite/SQLAlchemy stores') and a
    half-done import of MLflow cannot be repaired in the child, so a fork waits for those
    calls: local work, milliseconds (the MLflow import, once, ~1-1.5 s). HTTP calls are not
    waited for (a fork never waits for the network): a child makes its own connections (MLflow
    keys its HTTP session by pid), and the per-module import locks MLflow takes on every
    request (it retries imports that fail: ``dbruntime``, ``pyspark``) are reset in the child
    (``_process._reset_import_locks``). Calls share the gate; a fork closes it and waits
    (bounded) for the calls inside to finish.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._inside = 0
        self._closed = False
        self._exempt = False

    def exempt(self) -> None:
        """The store's calls need no fork exclusion (HTTP): calls and forks never wait."""
        self._exempt = True

    def __enter__(self) -> None:
        if self._exempt:
            return
        with self._cond:
            self._cond.wait_for(lambda: not self._closed)
            self._inside += 1

    def __exit__(self, *exc) -> None:
        if self._exempt:
            return
        with self._cond:
            self._inside -= 1
            self._cond.notify_all()

    def close(self, timeout: float) -> bool:
        """Hold new calls back and wait for those inside; False if one is still inside."""
        with self._cond:
            self._closed = True
            return self._cond.wait_for(lambda: self._inside == 0, timeout)

    def open(self) -> None:
        with self._cond:
            self._closed = False
            self._cond.notify_all()


class _Pool:
    """A few daemon threads for pipelined requests. Not ThreadPoolExecutor: its threads are
    joined at interpreter exit, and one stuck retrying a dead server would hang the process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(size):
            threading.Thread(target=self._work, name=f"azml-request-{i}", daemon=True).start()

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        self._tasks.put((future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            future, fn, args = self._tasks.get()
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting sender
                future.set_exception(exc)


class RunReady:
    """Lets the session learn the run id once the worker has it (fork and CLI need it)."""

    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id
        self._event = threading.Event()
        if run_id:
            self._event.set()

    def __call__(self, run_id: str) -> None:
        self.run_id = run_id
        self._event.set()

    def wait(self, timeout: float | None = None) -> str | None:
        self._event.wait(timeout)
        return self.run_id
