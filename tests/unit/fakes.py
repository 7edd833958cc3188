"""Stand-ins for the delivery core's neighbours: a store behind the ``Store`` protocol that
records what it was sent and fails or holds on cue, a disk journal that fills up, and a clock
whose sleeps take no time. With ``MemoryJournal`` they let the unit tests run the real
dispatcher and sender threads without a server, a file or a wait."""
from __future__ import annotations

import collections
import sqlite3
import threading

from azml_compat._core.dispatcher import Dispatcher
from azml_compat._core.journal import MemoryJournal
from azml_compat._core.records import RunSpec
from azml_compat._core.sender import Sender
from azml_compat._core.stores.base import StoreError

SPEC = RunSpec(tracking_uri="fake://store", experiment_name="unit", run_key="0123abcd")


def rejected() -> StoreError:
    """What a tracking server answers for a record it will never take."""
    return StoreError("log-batch: HTTP 400 INVALID_PARAMETER_VALUE metric 'bad' is invalid",
                      400, "INVALID_PARAMETER_VALUE")


def unavailable(retry_after: float | None = None) -> StoreError:
    return StoreError("HTTP 503 Service Unavailable", 503, None, retry_after)


def unauthorized() -> StoreError:
    return StoreError("HTTP 401 Unauthorized", 401)


def run_gone(run_id: str = "run-1") -> StoreError:
    """What a tracking server answers once the run was deleted (or its database wiped)."""
    return StoreError(f"Run with id={run_id} not found", 404, "RESOURCE_DOES_NOT_EXIST")


class FakeStore:
    """A tracking store in memory. ``events`` is what it stored, in arrival order; ``calls``
    every call (failed ones too); ``refuse(op, args)`` returns the error a call raises;
    ``held[op]`` is an Event the call waits for; ``arrived[op]`` is set at a call's arrival."""

    CONCURRENCY = 1
    FORK_GATED = False

    def __init__(self, concurrency: int = 1, run_id: str = "run-1") -> None:
        self.CONCURRENCY = concurrency
        self.run_id = run_id
        self.events: list = []
        self.calls: list = []
        self.refuse = None
        self.held: dict = {}
        self._lock = threading.Lock()
        self._arrived: dict = collections.defaultdict(threading.Event)

    def arrived(self, op: str) -> threading.Event:
        with self._lock:
            return self._arrived[op]

    def _call(self, op: str, *args) -> None:
        with self._lock:
            self.calls.append((op, *args))
            arrived = self._arrived[op]
        arrived.set()
        gate = self.held.get(op)
        if gate is not None:
            gate.wait()
        error = self.refuse(op, args) if self.refuse is not None else None
        if error is not None:
            raise error

    def _store(self, *events) -> None:
        with self._lock:
            self.events.extend(events)

    def values(self, key: str) -> list:
        with self._lock:
            return [e[1] for e in self.events if e[0] == key]

    # -- the Store protocol ----------------------------------------------------------------
    def open_run(self, spec: RunSpec) -> str | None:
        self._call("open_run", spec)
        return self.run_id

    def last_steps(self, run_id: str) -> dict:
        self._call("last_steps", run_id)
        return {}

    def run_tag(self, run_id: str, key: str) -> str | None:
        self._call("run_tag", run_id, key)
        with self._lock:
            return next((e[2] for e in reversed(self.events)
                         if e[0] == "tag" and e[1] == key), None)

    def log_batch(self, run_id: str, metrics: list, tags: list) -> None:
        self._call("log_batch", list(metrics), list(tags))
        self._store(*[(key, value, step) for _, key, value, _, step in metrics],
                    *[("tag", key, value) for _, key, value in tags])

    def upload_bytes(self, run_id: str, artifact_path: str, data: bytes) -> None:
        self._call("upload_bytes", artifact_path, data)
        self._store(("artifact", artifact_path, data))

    def upload_file(self, run_id: str, artifact_dir: str, local_path: str) -> None:
        self._call("upload_file", artifact_dir, local_path)
        self._store(("file", artifact_dir, local_path))

    def log_params(self, run_id: str, params: dict) -> None:
        self._call("log_params", dict(params))
        self._store(*[("param", key, value) for key, value in params.items()])

    def end_run(self, run_id: str, status: str, end_time_ms: int) -> None:
        self._call("end_run", status, end_time_ms)
        self._store(("end", status, end_time_ms))

    experiment_id = "1"  # the run's experiment, known once the run is open

    ATOMIC_TAG_UPDATE = True

    def update_experiment_tag(self, experiment_id: str, key: str, update) -> bool:
        self._call("update_experiment_tag", experiment_id, key)
        tags = self.__dict__.setdefault("experiment_tags", {})  # apart from a run's events
        value = update(tags.get(key))
        if value is not None:
            tags[key] = value
        return value is not None


class FakeClock:
    """``clock`` and ``sleep`` for a Sender: a sleep is recorded and moves the clock at once."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FullDiskJournal:
    """A disk journal that takes ``accept`` appends, then fails each like a full disk; with
    ``full_settles`` its deletions fail too (SQLite's WAL needs room to record one)."""

    path = "/nowhere/journal.db"

    def __init__(self, accept: int, full_settles: bool = False) -> None:
        self._records = MemoryJournal()
        self.sqlite_lock = self._records.sqlite_lock
        self.accept = accept
        self.appends = 0
        self.full_settles = full_settles

    def append(self, records, meta=None) -> None:
        if self.appends >= self.accept:
            raise sqlite3.OperationalError("database or disk is full")
        self.appends += 1
        self._records.append(records)

    def pending(self, after: int, limit: int) -> list:
        return self._records.pending(after, limit)

    def settle(self, upto: int, errors: dict | None = None) -> None:
        if self.full_settles:
            raise sqlite3.OperationalError("database or disk is full")
        self._records.settle(upto, errors)

    def advance(self, seq: int, next_step: int) -> None:
        self._records.advance(seq, next_step)

    def update_steps(self, updates, final_upto: int) -> None:
        self._records.update_steps(updates, final_upto)

    def set_meta(self, **values) -> None:
        pass

    def size(self) -> int:
        return 0

    def undelivered(self, done: int = 0) -> tuple[int, int, int]:
        seqs = [record[0] for record in self._records.pending(0, 1 << 30)]  # "on disk"
        return sum(seq > done for seq in seqs), 0, sum(seq <= done for seq in seqs)

    def in_memory(self) -> int:
        return 0

    def close(self, prune: bool = False) -> None:
        pass

    def abandon(self) -> None:
        pass


def start_core(store: FakeStore | None = None, journal=None, *, store_factory=None,
               clock=None, sleep=None, uniform=lambda low, high: high, **options) -> Dispatcher:
    """A started dispatcher on ``journal`` (default a MemoryJournal) whose sender talks to
    ``store``; ``clock``/``sleep`` default to the Sender's own (a stop-aware real wait)."""
    timing = {"uniform": uniform}
    if clock is not None:
        timing["clock"] = clock
    if sleep is not None:
        timing["sleep"] = sleep
    factory = store_factory or (lambda uri: store)

    def make_sender() -> Sender:
        return Sender(SPEC, store_factory=factory, on_blocked=dispatcher.block, **timing)

    dispatcher = Dispatcher(journal if journal is not None else MemoryJournal(), make_sender,
                            **options)
    return dispatcher.start()
