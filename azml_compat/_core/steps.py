"""Steps for runs that several processes log to.

A run one process owns alone takes its steps at the ``log()`` call: 0, 1, 2, ... per name, no
I/O. A run shared by several processes (a forked child and its parent, scripts attached through
``MLFLOW_RUN_ID``) cannot: two counters in two processes hand out the same step, and an attached
run would restart at 0 under the points it already has. So from the moment a run is shared, the
step a process journals is only its local order, and the final step is given just before the
first send, from an allocator that every process of this machine shares for that run:

* ``StepAllocator``: one small SQLite file per run under ``$AZML_HOME/steps``; a transaction
  (``BEGIN IMMEDIATE``) per send window hands each name the next free block of steps;
* the floor of a name is the step after the last one the store had when this process attached
  (read once from the run) or the last one the process gave itself before the run was shared;
* ``finalize`` writes the steps into the journal in the same window, before anything is sent,
  so a resend or ``azml sync`` replays exactly the same points (the store ignores duplicates).

Processes on different machines attached to one run each start after the store's last step as
they found it; if they log at the same time, their points can share steps (timestamps still
order them).
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading

from .records import METRIC, SERIES

_SCHEMA = "CREATE TABLE IF NOT EXISTS steps (key TEXT PRIMARY KEY, next INTEGER NOT NULL)"


class StepAllocator:
    """The next free step of each name of one run, shared by this machine's processes."""

    def __init__(self, directory: str, run: str) -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        name = hashlib.sha1(run.encode("utf-8", "surrogatepass")).hexdigest()[:20]
        self.path = os.path.join(directory, name + ".db")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None,
                                   check_same_thread=False)
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()

    def take(self, wants: list) -> list[int]:
        """First step of a block for each ``(key, count, floor)``, in order, atomically."""
        starts = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                known = {}
                for key, count, floor in wants:
                    if key not in known:
                        row = self._db.execute("SELECT next FROM steps WHERE key = ?",
                                               (key,)).fetchone()
                        known[key] = row[0] if row else 0
                    start = max(known[key], floor)
                    known[key] = start + count
                    starts.append(start)
                self._db.executemany("INSERT OR REPLACE INTO steps VALUES (?, ?)", known.items())
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return starts

    def close(self) -> None:
        self._db.close()


class SharedSteps:
    """One process's view of a shared run's steps: where sharing began, the floors, and how far
    the journal already holds final steps. The dispatcher and ``azml sync`` both apply it."""

    def __init__(self, directory: str, shared_from: int, floors: dict, final_upto: int = 0,
                 from_store: bool = False) -> None:
        self.directory = directory
        self.shared_from = shared_from
        self.floors = dict(floors)
        self.final_upto = final_upto
        self.from_store = from_store  # floors still to be raised to the store's last steps
        self._allocator: StepAllocator | None = None

    @classmethod
    def from_meta(cls, directory: str, meta: dict) -> "SharedSteps | None":
        if not meta.get("shared_from"):
            return None
        return cls(directory, meta["shared_from"], meta.get("step_floors") or {},
                   meta.get("final_upto") or 0, bool(meta.get("steps_from_store")))

    def meta(self) -> dict:
        return {"shared_from": self.shared_from, "step_floors": self.floors,
                "steps_from_store": self.from_store}

    def raise_floors(self, last_steps: dict) -> None:
        """Start after the steps the store already has (``{key: last step}``)."""
        for key, step in last_steps.items():
            self.floors[key] = max(self.floors.get(key, 0), int(step) + 1)
        self.from_store = False

    def apply(self, journal, records: list, run_id: str) -> list:
        """``records`` with final steps, written to ``journal`` before anything is sent."""
        if self._allocator is None:
            self._allocator = StepAllocator(self.directory, run_id)
        records, updates = finalize(records, self.shared_from, self.final_upto,
                                    self._allocator, self.floors)
        if updates:
            journal.update_steps(updates, records[-1][0])
            self.final_upto = records[-1][0]
        return records


def finalize(records: list, shared_from: int, final_upto: int, allocator: StepAllocator,
             floors: dict) -> tuple[list, list]:
    """``(records with final steps, [(step, seq)] to write back)`` for a send window.

    Metric and series records with ``seq >= shared_from`` and ``seq > final_upto`` still carry
    their process-local order; they get blocks from ``allocator`` in journal order.
    """
    todo = [i for i, r in enumerate(records)
            if r[1] in (METRIC, SERIES) and r[0] >= shared_from and r[0] > final_upto]
    if not todo:
        return records, []
    wants = []
    for i in todo:
        record = records[i]
        count = 1 if record[1] == METRIC else len(record[3])
        wants.append((record[2], count, floors.get(record[2], 0)))
    starts = allocator.take(wants)
    out = list(records)
    updates = []
    for i, start in zip(todo, starts):
        out[i] = (*records[i][:5], start)
        updates.append((start, records[i][0]))
    return out, updates
