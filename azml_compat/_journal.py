"""The on-disk journal: every accepted record is committed here before it is sent, so a dead
server, a full exit timeout or a SIGKILL loses nothing. ``azml sync`` replays what is left.

One SQLite file (WAL mode) per process and run, ``$AZML_HOME/journal/<local id>.db``:

* ``meta``: where the records go (tracking URI, experiment, run id once known, run tags,
  start time, owner pid and host);
* ``records``: undelivered records in sequence order; a delivered record is deleted;
* ``rejected``: records the store refused, with its message, never sent again.

``synchronous=NORMAL``: a commit survives the process being killed (not a power cut) and costs
no fsync. The live process holds an exclusive ``flock`` on ``<id>.lock`` so ``azml sync`` never
replays a journal that is still being written. ``MemoryJournal`` has the same interface for
when the folder is unwritable or full: logging goes on, in RAM, with a warning.
"""
from __future__ import annotations

import array
import collections
import fcntl
import json
import os
import sqlite3
import threading

from ._batching import ARTIFACT, END, FILE, METRIC, SERIES, TAG

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT, num REAL, ts INTEGER, step INTEGER,
    text TEXT, data BLOB);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT, error TEXT NOT NULL);
"""


def _encode(record: tuple) -> tuple:
    """A record as a row: ``(seq, kind, key, num, ts, step, text, data)``."""
    seq, kind = record[0], record[1]
    if kind == METRIC:
        return (seq, kind, record[2], record[3], record[4], record[5], None, None)
    if kind == SERIES:
        return (seq, kind, record[2], None, record[4], record[5], None,
                array.array("d", record[3]).tobytes())
    if kind == TAG:
        return (seq, kind, record[2], None, None, None, record[3], None)
    if kind == ARTIFACT:
        return (seq, kind, record[2], None, None, None, None, record[3])
    if kind == FILE:
        return (seq, kind, record[2], None, None, None, record[3], None)
    if kind == END:
        return (seq, kind, None, None, record[3], None, record[2], None)
    raise ValueError(f"unknown record kind {kind!r}")


def _decode(row) -> tuple:
    seq, kind, key, num, ts, step, text, data = row
    if kind == METRIC:  # SQLite stores NaN as NULL
        return row[:6] if num is not None else (seq, kind, key, float("nan"), ts, step)
    if kind == SERIES:
        values = array.array("d")
        values.frombytes(data)
        return (seq, kind, key, values.tolist(), ts, step)
    if kind == TAG:
        return (seq, kind, key, text)
    if kind == ARTIFACT:
        return (seq, kind, key, bytes(data))
    if kind == FILE:
        return (seq, kind, key, text)
    if kind == END:
        return (seq, kind, text, ts)
    raise ValueError(f"unknown record kind {kind!r} at seq {seq}")


class JournalLocked(Exception):
    """Another live process (or ``azml sync``) holds this journal."""


class Journal:
    """A journal file. Thread-safe: one connection behind one lock."""

    def __init__(self, path: str, create: bool = False, wait_lock: bool = True) -> None:
        self.path = path
        self._lock = self.sqlite_lock = threading.Lock()  # held around every SQLite call
        self._lock_fd = os.open(path[:-3] + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | (0 if wait_lock else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self._lock_fd)
            raise JournalLocked(path) from None
        if not create and not os.path.exists(path):
            self._release()
            raise FileNotFoundError(path)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except BaseException:
            self._release()
            raise

    @classmethod
    def create(cls, directory: str, local_id: str, meta: dict) -> "Journal":
        os.makedirs(directory, mode=0o700, exist_ok=True)
        journal = cls(os.path.join(directory, local_id + ".db"), create=True)
        journal.set_meta(version=SCHEMA_VERSION, local_id=local_id, **meta)
        return journal

    # -- meta ------------------------------------------------------------------------------------
    def set_meta(self, **values) -> None:
        rows = [(k, json.dumps(v)) for k, v in values.items()]
        with self._lock:
            if self._db is None:
                return
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", rows)

    def meta(self) -> dict:
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        return {k: json.loads(v) for k, v in rows}

    # -- records ---------------------------------------------------------------------------------
    def append(self, records) -> None:
        # A metric record already is the first six columns of its row: no per-record Python.
        metrics = [r for r in records if r[1] == METRIC]
        others = [_encode(r) for r in records if r[1] != METRIC] if len(metrics) < len(
            records) else ()
        with self._lock:
            if self._db is None:
                raise sqlite3.ProgrammingError(f"journal {self.path} is closed")
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO records (seq, kind, key, num, ts, step) VALUES (?, ?, ?, ?, ?, ?)",
                    metrics)
                self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", others)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def pending(self, after: int, limit: int) -> list:
        with self._lock:
            if self._db is None:
                return []
            rows = self._db.execute(
                "SELECT * FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [_decode(row) for row in rows]

    def settle(self, upto: int, errors: dict | None = None) -> None:
        """Records up to ``upto`` are done: delivered, or rejected with ``errors[seq]``."""
        with self._lock:
            if self._db is None:
                return  # closed at exit: a replay by `azml sync` is idempotent
            self._db.execute("BEGIN")
            try:
                for seq, error in (errors or {}).items():
                    self._db.execute(
                        "INSERT OR REPLACE INTO rejected SELECT seq, kind, key, ? FROM records "
                        "WHERE seq = ?", (str(error)[:2000], seq))
                self._db.execute("DELETE FROM records WHERE seq <= ?", (upto,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def update_steps(self, updates, final_upto: int) -> None:
        """Final steps ``[(step, seq)]`` of a shared run, and how far they now reach."""
        with self._lock:
            if self._db is None:
                return
            self._db.execute("BEGIN")
            try:
                self._db.executemany("UPDATE records SET step = ? WHERE seq = ?", updates)
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('final_upto', ?)",
                                 (json.dumps(final_upto),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def counts(self) -> dict:
        """Undelivered records by kind, and the number rejected."""
        with self._lock:
            rows = self._db.execute("SELECT kind, COUNT(*) FROM records GROUP BY kind").fetchall()
            rejected = self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
        counts = dict(rows)
        counts["rejected"] = rejected
        return counts

    def has_end(self) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM records WHERE kind = ? LIMIT 1", (END,))
            return row.fetchone() is not None

    def mtime(self) -> float:
        """When the journal was last written (its WAL, else the file itself)."""
        times = []
        for suffix in ("", "-wal"):
            try:
                times.append(os.path.getmtime(self.path + suffix))
            except OSError:
                pass
        return max(times, default=0.0)

    def size(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            try:
                total += os.path.getsize(self.path + suffix)
            except OSError:
                pass
        return total

    # -- end -------------------------------------------------------------------------------------
    def close(self, prune: bool = False) -> None:
        """Close; with ``prune``, delete the files if nothing is left to deliver."""
        with self._lock:
            if self._db is None:
                return
            empty = self._db.execute("SELECT 1 FROM records LIMIT 1").fetchone() is None
            self._db.close()
            self._db = None
        if prune and empty:
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(self.path + suffix)
                except OSError:
                    pass
            try:
                os.unlink(self.path[:-3] + ".lock")
            except OSError:
                pass
        self._release()

    def abandon(self) -> None:
        """In a forked child: drop the parent's handles without touching the files."""
        try:
            os.close(self._lock_fd)
        except OSError:
            pass

    def _release(self) -> None:
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
        except OSError:
            pass


class MemoryJournal:
    """The journal's interface, in RAM: the fallback when the disk journal cannot be written."""

    path = None

    def __init__(self) -> None:
        self._records: collections.deque = collections.deque()
        self._lock = self.sqlite_lock = threading.Lock()  # no SQLite; the fork hook takes it anyway

    def append(self, records) -> None:
        with self._lock:
            self._records.extend(records)

    def pending(self, after: int, limit: int) -> list:
        with self._lock:
            out = []
            for record in self._records:
                if record[0] > after:
                    out.append(record)
                    if len(out) >= limit:
                        break
            return out

    def settle(self, upto: int, errors: dict | None = None) -> None:
        with self._lock:
            while self._records and self._records[0][0] <= upto:
                self._records.popleft()

    def update_steps(self, updates, final_upto: int) -> None:
        steps = dict((seq, step) for step, seq in updates)
        with self._lock:
            self._records = collections.deque(
                (*r[:5], steps[r[0]]) if r[0] in steps else r for r in self._records)

    def size(self) -> int:
        return 0

    def set_meta(self, **values) -> None:
        pass

    def close(self, prune: bool = False) -> None:
        pass

    def abandon(self) -> None:
        pass


class SpilledJournal:
    """A disk journal that stopped taking records, and the RAM that took over from it.

    Records already on disk are older than any in RAM, so reading disk first keeps the order.
    """

    def __init__(self, disk: Journal, memory: MemoryJournal | None = None) -> None:
        self.disk = disk
        self.memory = memory or MemoryJournal()
        self.path = disk.path
        self.sqlite_lock = disk.sqlite_lock

    def append(self, records) -> None:
        self.memory.append(records)

    def pending(self, after: int, limit: int) -> list:
        try:
            records = self.disk.pending(after, limit)
        except sqlite3.Error:
            records = []
        if len(records) < limit:
            last = records[-1][0] if records else after
            records += self.memory.pending(last, limit - len(records))
        return records

    def settle(self, upto: int, errors: dict | None = None) -> None:
        try:
            self.disk.settle(upto, errors)
        except sqlite3.Error:
            pass
        self.memory.settle(upto, errors)

    def update_steps(self, updates, final_upto: int) -> None:
        try:
            self.disk.update_steps(updates, final_upto)
        except sqlite3.Error:
            pass
        self.memory.update_steps(updates, final_upto)

    def size(self) -> int:
        return self.disk.size()

    def set_meta(self, **values) -> None:
        try:
            self.disk.set_meta(**values)
        except sqlite3.Error:
            pass

    def close(self, prune: bool = False) -> None:
        self.disk.close(prune)

    def abandon(self) -> None:
        self.disk.abandon()
