"""Delivers what the dispatcher took from its queue: connects, packs, retries, isolates.

Transient failures (connection refused, 5xx, 429, auth) are retried with exponential backoff
and jitter (``backoff_delay``) for as long as the process lives: the dispatcher's bounded flush
at exit is what stops waiting, never a dropped record; ``stop()`` ends the waiting at once and
leaves the records where they are. A request the store rejects as invalid is split in halves
until the offending record is found; only that record's handle fails.

The store (``_stores.base.Store``), the clock, the sleep and the jitter are given to
``Sender``, so the retry policy runs in the unit tests against a fake store without a wait.
"""
from __future__ import annotations

import collections
import contextlib
import gc
import json
import logging
import os
import queue
import random
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Callable, NamedTuple

from .batching import ARTIFACT, END, FILE, PARAM, Batch, pack
from .inflight import InFlight, memory_path, recall, remember
from .._config import Settings
from .._consts import BACKOFF_MAX, BACKOFF_START, VIEW_CHECKS, VIEW_INTERVAL
from .._exceptions import GaveUp, Stopped
from .._redact import redact, redact_text
from .records import RunSpec
from .stores import connect
from .tables import LOGGED_ARTIFACTS_TAG
from .view import VIEW_TAG, merged
from .stores.base import Store, http_status, is_run_level, is_transient

log = logging.getLogger("azml")


def backoff_delay(attempt: int, retry_after: float | None = None,
                  uniform: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait before retry ``attempt`` (0 for the first): ``BACKOFF_START`` doubling
    to ``BACKOFF_MAX``, times a jitter between half and all of it (processes that failed
    together do not retry together), at least the server's ``Retry-After`` (429/503), never
    more than ``BACKOFF_MAX``."""
    base = min(BACKOFF_START * 2.0 ** min(attempt, 16), BACKOFF_MAX)
    return min(max(base * uniform(0.5, 1.0), retry_after or 0.0), BACKOFF_MAX)


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


def freeze_heap(enabled: bool = True) -> None:
    """Exempt the objects alive now (mostly MLflow's, just imported) from future collections.

    Importing MLflow adds several hundred thousand objects to the training process; without
    this, every full collection of the script's garbage walks them all (~120 ms here: measured
    as stalls of the caller's ``log()`` in bench case 1). ``AZML_GC_FREEZE=0`` (``enabled``
    False) turns it off.
    """
    if enabled:
        gc.freeze()


class Sender:
    """One run's connection to the tracking store: made anywhere, connected by ``start()``.

    ``clock``, ``sleep`` and ``uniform`` drive the retry policy: the defaults are
    ``time.monotonic``, a sleep that ``stop()`` cuts short, and ``random.uniform``. Whatever
    sleep is given, a retry loop ends with ``Stopped`` once ``stop()`` was called.
    """

    def __init__(self, spec: RunSpec, on_run=None,
                 store_factory: Callable[[str], Store] | None = None,
                 give_up_after: float | None = None, on_blocked=None, quiet: bool = False,
                 gate: "ForkGate | None" = None, *, on_retry=None, before_open=None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], object] | None = None,
                 uniform: Callable[[float, float], float] = random.uniform,
                 settings: Settings | None = None) -> None:
        self.spec = spec
        # The store's tuning (timeout, requests in flight) and ours, as read at logger creation.
        self.settings = settings or Settings()
        if store_factory is None:
            def store_factory(uri):
                return connect(uri, self.settings)
        # told of a 401/403 (and of the recovery, with None): waiters should not wait on it
        self._on_blocked = on_blocked or (lambda exc: None)
        # A forked child's store is its parent's: the parent already tells the user when the
        # store is unreachable, and a pool of N workers must not say it N more times.
        self._quiet = quiet
        # told, before each wait to retry, why and for how long (``azml sync``'s progress line)
        self._on_retry = on_retry or (lambda why: None)
        self._failing = False
        self._give_up_after = give_up_after  # None: retry while the process lives
        self.gate = gate or ForkGate()  # every call into MLflow passes it
        self._stop = threading.Event()
        self._clock = clock
        self._sleep = sleep or self._stop.wait
        self._uniform = uniform
        self._store_factory = store_factory
        self._on_run = on_run
        # Called on the sender thread before it connects (a nested run waits there for its
        # parent's id); it may wait, and ends with ``Stopped`` once ``stop()`` is called.
        self._before_open = before_open
        self.store: Store | None = None  # set by start()
        self.run_id: str | None = None
        self._pool: _Pool | None = None
        self._window: InFlight | None = None  # with the pool: how many requests at once
        self._memory: str | None = None  # where the window's level is kept for the next process
        # The experiment's runs view (``_view``): metric keys sent, and those it has.
        self._view_keys: set[str] = set()
        self._view_has: set[str] = set()
        self._view_at: float | None = None  # when it was last written (or tried)
        self._view_off = False  # not ours to write, or the store cannot
        self._view_look: threading.Thread | None = None  # looking again after a write
        self._listed: list | None = None  # mlflow.loggedArtifacts entries sent (``_listing_all``)

    def start(self) -> "Sender":
        """Connect (importing MLflow for most stores) and find or create the run, retrying
        transient failures; ``Stopped`` if ``stop()`` comes first. Call it on the thread that
        will send: it can wait for a store that is down for as long as the process lives."""
        if self._before_open is not None:
            # Before connecting: a nested run's store is its parent's, which its parent's
            # sender is making (importing MLflow, building a new SQLite store): not twice at once.
            self._before_open(self._pause)
        self.store = self._retry(lambda: self._store_factory(self.spec.tracking_uri), "connect")
        if not getattr(self.store, "FORK_GATED", True):
            self.gate.exempt()
        freeze_heap(self.settings.gc_freeze)
        self.run_id = self._open_run(self.spec)
        if self.store.CONCURRENCY > 1:
            self._pool = _Pool(self.store.CONCURRENCY)
            home = os.path.dirname(self.settings.journal_dir)  # $AZML_HOME
            self._memory = memory_path(home, self.spec.tracking_uri)
            self._window = InFlight(self.store.CONCURRENCY, recall(self._memory))
        if self._on_run is not None:
            self._on_run(self.run_id)
        return self

    def stop(self) -> None:
        """Cut every retry wait short (now and later): waiting calls raise ``Stopped``."""
        self._stop.set()

    def close(self, timeout: float) -> bool:
        """``stop()``, then end the request threads; False if one is still in a request after
        ``timeout`` (it ends when its request does: a daemon thread that sends nothing more)."""
        self.stop()
        if self._window is not None:
            remember(self._memory, self._window)
        return self._pool.close(timeout) if self._pool is not None else True

    def _pause(self, seconds: float) -> None:
        self._sleep(seconds)
        if self._stop.is_set():
            raise Stopped("stopped while waiting to retry; the records stay in the journal")

    def _open_run(self, spec: RunSpec) -> str:
        """The run's id; a run made by another process (a forked child's parent) is looked up
        by its key with the usual backoff until that process has created it."""
        attempt = 0
        started = self._clock()
        while True:
            run_id = self._retry(lambda: self.store.open_run(spec), "open the run")
            if run_id is not None:
                return run_id
            if self._give_up_after is not None and self._clock() - started > self._give_up_after:
                raise LookupError(f"run with {spec.key_tag}={spec.run_key} not created yet in "
                                  f"experiment {spec.experiment_name!r}")
            self._pause(backoff_delay(attempt, uniform=self._uniform))
            attempt += 1

    # -- retry policy ------------------------------------------------------------------------
    def _retry(self, call, what: str):
        attempt = 0
        first_failure = None
        while True:
            if self._stop.is_set():
                raise Stopped(f"stopped before it could {what}; the records stay in the journal")
            began = self._clock()
            try:
                with self.gate:
                    result = call()
            except Exception as exc:  # noqa: BLE001 - classified below
                if not is_transient(exc):
                    raise
                if http_status(exc) in (401, 403):
                    self._on_blocked(exc)
                now = self._clock()
                # Unreachable since the failed attempt began: one that hung for its whole
                # timeout counts, so a give-up bound holds on a server that never answers.
                first_failure = began if first_failure is None else first_failure
                if self._give_up_after is not None and now - first_failure > self._give_up_after:
                    raise GaveUp(f"cannot {what} at {redact(self.spec.tracking_uri)} "
                                 f"({_describe(exc)})") from exc
                if not self._failing:
                    self._failing = True
                    if not self._quiet:
                        log.warning(
                            "cannot %s at %s (%s); retrying in the background, "
                            "nothing is dropped",
                            what,
                            redact(self.spec.tracking_uri),
                            _describe(exc),
                        )
                # Honour the server's Retry-After (429/503), else back off with jitter.
                wait = backoff_delay(attempt, getattr(exc, "retry_after", None), self._uniform)
                if self._give_up_after is not None:  # one last try at the bound, not a backoff past it
                    wait = min(wait, max(0.0, first_failure + self._give_up_after - now) + 0.05)
                self._on_retry(f"cannot {what} ({_describe(exc)}); retrying in {wait:.0f} s")
                self._pause(wait)
                attempt += 1
                continue
            if self._failing:
                self._failing = False
                if not self._quiet:
                    log.warning("tracking store %s reachable again",
                                redact(self.spec.tracking_uri))
                self._on_blocked(None)
            return result

    # -- delivery ----------------------------------------------------------------------------
    def deliver(self, reads):
        """Yield a ``Delivered`` per request as requests complete, in order, for the records
        of each list ``reads`` yields (the journal read a window at a time, in order).

        Where the store takes concurrent requests (a tracking server), batches of metrics are
        pipelined, as many at once as ``InFlight`` finds the server absorbs fastest: metric
        points carry their own step and timestamp (MLflow's history sorts by them, not by
        arrival), so the order they land in changes nothing a reader sees. Tags (latest wins)
        and uploads wait for everything before them, and completions are reported in order,
        so the watermark (and a series' progress) stays a true prefix. The next read is taken
        once this one's last request is sent, not done: waiting for it emptied the pipeline
        at every read (20,000 points, 4 reads, to MLflow's default server: the whole script
        took 1.83 s, now 1.57 s; medians of 7 alternating runs, MLflow's own 4.28 s).
        """
        in_flight: collections.deque = collections.deque()
        window = self._window
        if window is not None:
            window.resume(self._clock())
        try:
            for request in self._requests(reads):
                if isinstance(request, Batch) and request.metrics:
                    self._view_keys.update({m[1] for m in request.metrics})
                if isinstance(request, Batch) and request.tags:
                    request.tags = [self._listing_all(tag) for tag in request.tags]
                if window is not None and isinstance(request, Batch) and not request.tags:
                    in_flight.append((request, self._pool.submit(self._send_batch, request)))
                    yield from self._reap(in_flight, window.limit)
                    continue
                while in_flight:
                    yield self._finished(*in_flight.popleft())
                if isinstance(request, Batch):
                    yield Delivered(request.upto, self._send_batch(request),
                                    len(request.metrics), request.partial)
                else:
                    error = self._send_single(request.record)
                    yield Delivered(request.upto, {request.record[0]: error} if error else None)
            while in_flight:
                yield self._finished(*in_flight.popleft())
            self._update_view()
        finally:
            if window is not None:
                window.pause(self._clock())

    def _requests(self, reads):
        for i, records in enumerate(reads):
            if i:  # a long backlog: the runs view need not wait for all of it
                self._update_view()
            yield from pack(records)

    def _listing_all(self, tag: tuple) -> tuple:
        """A ``mlflow.loggedArtifacts`` tag lists what the run's other processes listed too.
        Each process writes the tables it knows of, and the tag's latest value wins: a worker
        logging one table after the parent's left the UI and ``mlflow.load_table`` finding
        only the worker's. So the list sent is the union of what this sender has sent and what
        the store held when it first sent one (read once: the journal of a killed parent and
        its workers' are delivered by separate senders). Another value (not a JSON list) is
        passed on as it is."""
        seq, key, value = tag
        if key != LOGGED_ARTIFACTS_TAG:
            return tag
        try:
            entries = json.loads(value)
        except ValueError:
            return tag
        if not isinstance(entries, list):
            return tag
        if self._listed is None:
            try:
                held = self._retry(lambda: self.store.run_tag(self.run_id, key),
                                   "read the run's tables")
            except (GaveUp, Stopped):
                raise
            except Exception:  # noqa: BLE001 - the batch meets it too and is handled there
                held = None  # (a run gone: said once; a refusal: that record set aside)
            self._listed = []
            with contextlib.suppress(ValueError, TypeError):
                self._listed = [e for e in json.loads(held or "[]") if isinstance(e, dict)]
        for entry in entries:
            if entry not in self._listed:
                self._listed.append(entry)
        return seq, key, json.dumps(self._listed, ensure_ascii=False)

    def _reap(self, in_flight: collections.deque, limit: int):
        """Report the finished head of ``in_flight`` (completions go out in order), then wait
        only while ``limit`` requests are still running: a slot freed behind a slow head is
        filled at once. Waiting on the head alone left slots idle: on MLflow's default server
        (4 workers, 2 cores) the first of three requests often finished last, and 20,000
        points took 1.55 s of requests where a bare client's three threads take 1.2 s; the
        whole script went from 1.98 s to 1.71 s (medians of 7 alternating runs, MLflow's own
        4.32 s). At most ``2 * limit`` are held, finished or not: a stuck head bounds the
        memory, and as a finished one leaves the journal only once reported, a stop (SIGTERM)
        has ``azml sync`` send at most that many batches again (MLflow's store keeps one copy
        of an identical point). Held to 4 the gain was gone (1.94 s, waiting on the head 1.88)."""
        while in_flight:
            if in_flight[0][1].done():
                yield self._finished(*in_flight.popleft())
                continue
            running = [future for _, future in in_flight if not future.done()]
            if len(running) < limit and len(in_flight) < 2 * limit:
                return
            wait(running, return_when=FIRST_COMPLETED)

    @property
    def view_saved(self) -> bool:
        """True once the experiment's runs view holds this run's metrics."""
        return bool(self._view_has)

    def _update_view(self, final: bool = False) -> None:
        """The experiment's runs view gets a column for each metric this run sent that it
        lacks (``_view.merged``): after the first metrics arrive, then at most every
        ``VIEW_INTERVAL`` seconds while new keys appear, and before the run ends. Tried once
        each time, on this thread (looked at again on a thread of its own), never in the way
        of a record: a store that cannot (an attached run of unknown experiment, a refusal)
        is told once and left alone."""
        if final and self._view_look is not None:
            self._view_look.join()  # the look under way ends before the run does
        if self._view_off or not (self._view_keys - self._view_has):
            return
        if self._view_look is not None and self._view_look.is_alive():
            return  # what it finds missing it writes; new keys wait for the next interval
        now = self._clock()
        if not final and self._view_at is not None and now - self._view_at < VIEW_INTERVAL:
            return
        self._view_at = now
        experiment_id = getattr(self.store, "experiment_id", None)
        update = getattr(self.store, "update_experiment_tag", None)
        if experiment_id is None or update is None:
            self._view_off = True
            return
        keys = set(self._view_keys)

        def write() -> bool:
            with self.gate:
                return update(experiment_id, VIEW_TAG,
                              lambda current: merged(current, keys, time.time_ns() // 1_000_000))

        try:
            wrote = write()
        except Stopped:
            raise
        except Exception as exc:  # noqa: BLE001 - a view is never worth a record
            self._view_failed(exc)
            return
        self._view_has |= keys
        if wrote and not getattr(self.store, "ATOMIC_TAG_UPDATE", False):
            # Without a transaction another run's write may have come between our read and
            # write (a sweep's runs start together) and dropped our columns: look again a
            # moment later, until nothing is missing (measured: 4 processes side by side on
            # a server lost a column without this). On a thread of its own: done here, the
            # 0.1-0.5 s waits held every batch behind them (a 470 ms hole in the 20 requests
            # of 20,000 points to `mlflow server --workers 1`).
            if final:  # the run ends with its view looked at again
                self._look_again(write)
                return
            self._view_look = threading.Thread(target=self._look_again, args=(write,),
                                               name="azml-view", daemon=True)
            self._view_look.start()

    def _look_again(self, write) -> None:
        try:
            for _ in range(VIEW_CHECKS):
                self._pause(self._uniform(0.1, 0.5))
                if not write():
                    return
        except Stopped:
            return
        except Exception as exc:  # noqa: BLE001 - a view is never worth a record
            self._view_failed(exc)

    def _view_failed(self, exc: BaseException) -> None:
        if not is_transient(exc):
            self._view_off = True
            if not self._quiet:
                log.warning("the experiment's runs view (metrics as columns) was not saved: "
                            "%s", _describe(exc))

    def _finished(self, request: Batch, future: Future) -> "Delivered":
        errors = future.result()
        self._window.completed(len(request.metrics), self._clock())
        return Delivered(request.upto, errors, len(request.metrics), request.partial)

    def _send_batch(self, batch: Batch) -> dict:
        try:
            self._retry(
                lambda: self.store.log_batch(self.run_id, batch.metrics, batch.tags), "log"
            )
            return {}
        except GaveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - a permanent rejection
            if is_run_level(exc):  # the run is gone: the dispatcher says so, once
                return {seq: exc for seq in batch.seqs()}
            if len(batch) == 1:
                log.warning("the tracking store rejected %d record(s): %s",
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
                self._update_view(final=True)
                self.end_run(record[2], record[3])
            elif kind == PARAM:
                self._retry(lambda: self.store.log_params(self.run_id, {record[2]: record[3]}),
                            "log a param")
            else:
                raise ValueError(f"unknown record kind {kind!r}")
        except GaveUp:
            raise
        except Exception as exc:  # noqa: BLE001 - reported through the record's handle
            if not is_run_level(exc):  # the run is gone: the dispatcher says so, once
                log.warning("the tracking store rejected %s %r: %s", kind, record[2],
                            _describe(exc))
            return exc
        return None


class Delivered(NamedTuple):
    """One completed request: every record with ``seq <= upto`` is done (``errors``: the
    refused ones); ``points`` metric points it carried; ``partial``: ``(seq, next step)`` of
    a series record it delivered only part of (``JournalLike.advance``)."""

    upto: int
    errors: dict | None
    points: int = 0
    partial: tuple[int, int] | None = None


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
        self._threads = [threading.Thread(target=self._work, name=f"azml-request-{i}",
                                          daemon=True) for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn, *args) -> Future:
        future: Future = Future()
        self._tasks.put((future, fn, args))
        return future

    def close(self, timeout: float) -> bool:
        """Each thread ends after the tasks queued before this (which end at once with
        ``Stopped`` once the sender is stopped); False if one is still busy after ``timeout``."""
        for _ in self._threads:
            self._tasks.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            future, fn, args = task
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
