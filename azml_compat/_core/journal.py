"""The on-disk journal: every accepted record is committed here before it is sent, so a dead
server, a full exit timeout or a SIGKILL loses nothing. ``azml sync`` replays what is left.

One SQLite file (WAL mode) per process and run, ``$AZML_HOME/journal/<local id>.db``:

* ``meta``: where the records go (tracking URI, experiment, run id once known, run tags,
  start time, owner pid and host);
* ``records``: undelivered records in sequence order; a delivered record is deleted;
* ``rejected``: records the store refused, with its message, never sent again;
* ``progress``: how many points of a series record the store already has (a record of
  millions of points is delivered over minutes: a sender stopped half-way, and ``azml sync``
  after it, go on from there instead of sending it all again).

``synchronous=NORMAL``: a commit survives the process being killed (not a power cut) and costs
no fsync. The live process holds an exclusive ``flock`` on ``<id>.lock`` so ``azml sync`` never
replays a journal that is still being written. ``JournalLike`` is what the dispatcher (and
``SharedSteps``) use of a journal; ``Journal`` (the file), ``MemoryJournal`` (RAM, when the
folder is unwritable) and ``SpilledJournal`` (a file that stopped taking records, and the RAM
after it) provide it. ``azml sync`` opens files only, and uses ``Journal``'s extra readers
(``meta``, ``counts``, ``has_end``, ``mtime``).
"""
from __future__ import annotations

import array
import collections
import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
from typing import Protocol, runtime_checkable

from .records import ARTIFACT, END, FILE, METRIC, PARAM, SERIES, TAG
from .._exceptions import JournalLocked
from .._redact import redact_text

log = logging.getLogger("azml")

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT, num REAL, ts INTEGER, step INTEGER,
    text TEXT, data BLOB);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT, error TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS progress (seq INTEGER PRIMARY KEY, done INTEGER NOT NULL);
"""
# A series record as ``pending`` gives it: the points the store does not have yet (its blob
# from ``done`` on, 8 bytes a point) and the step of the first of them. Made in SQL, so a
# 16 MB blob is cut without being read into Python twice.
_PENDING = f"""
SELECT r.seq, r.kind, r.key, r.num, r.ts, r.step + COALESCE(p.done, 0), r.text,
       CASE WHEN p.done IS NULL THEN r.data ELSE substr(r.data, p.done * 8 + 1) END
FROM records r LEFT JOIN progress p ON p.seq = r.seq AND r.kind = '{SERIES}'
WHERE r.seq > ? ORDER BY r.seq LIMIT ?
"""


def _encode(record: tuple) -> tuple:
    """A record as a row: ``(seq, kind, key, num, ts, step, text, data)``."""
    seq, kind = record[0], record[1]
    if kind == METRIC:
        return (seq, kind, record[2], record[3], record[4], record[5], None, None)
    if kind == SERIES:
        return (seq, kind, record[2], None, record[4], record[5], None,
                array.array("d", record[3]).tobytes())
    if kind == TAG or kind == PARAM:
        return (seq, kind, record[2], None, None, None, record[3], None)
    if kind == ARTIFACT:
        return (seq, kind, record[2], None, None, None, None, record[3])
    if kind == FILE:
        return (seq, kind, record[2], None, None, None, record[3], None)
    if kind == END:
        return (seq, kind, None, None, record[3], None, record[2], None)
    raise ValueError(f"unknown record kind {kind!r}")


def escape_text(text: str) -> str:
    """``text`` as UTF-8 can carry it: a lone surrogate (``os.listdir`` and ``sys.argv`` give
    them for undecodable bytes) becomes its ``\\udcXX`` escape, visibly, instead of failing."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _escape_row(row: tuple) -> tuple:
    return tuple(escape_text(v) if isinstance(v, str) else v for v in row)


def _decode(row) -> tuple:
    seq, kind, key, num, ts, step, text, data = row
    if kind == METRIC:  # SQLite stores NaN as NULL
        return row[:6] if num is not None else (seq, kind, key, float("nan"), ts, step)
    if kind == SERIES:
        values = array.array("d")
        values.frombytes(data)
        return (seq, kind, key, values.tolist(), ts, step)
    if kind == TAG or kind == PARAM:
        return (seq, kind, key, text)
    if kind == ARTIFACT:
        return (seq, kind, key, bytes(data))
    if kind == FILE:
        return (seq, kind, key, text)
    if kind == END:
        return (seq, kind, text, ts)
    raise ValueError(f"unknown record kind {kind!r} at seq {seq}")


@runtime_checkable
class JournalLike(Protocol):
    """Where accepted records wait until the store has them, in sequence order.

    Records are the tuples of ``_records``; ``seq`` increases. The dispatcher's journal thread
    appends, its sender thread reads and settles, the exit counts and closes: every method is
    thread-safe. ``sqlite_lock`` is held around every SQLite call (the fork hook takes it so
    that a child never inherits it held); ``path`` is the file, None when only in RAM.
    """

    path: str | None
    sqlite_lock: threading.Lock

    def append(self, records, meta: dict | None = None) -> None:
        """All of ``records`` or none of them (one transaction, with ``meta`` if given: how
        far a worker's spool was read, ``_spool``); raises if it cannot."""

    def pending(self, after: int, limit: int) -> list:
        """Up to ``limit`` records with ``seq > after``, in order."""

    def settle(self, upto: int, errors: dict | None = None):
        """Records with ``seq <= upto`` are done: delivered, or rejected with ``errors[seq]``."""

    def advance(self, seq: int, next_step: int) -> None:
        """The series record ``seq`` is delivered up to (not including) step ``next_step``:
        ``pending`` gives only the rest of it from now on."""

    def update_steps(self, updates, final_upto: int) -> None:
        """Final steps ``[(step, seq)]`` of a shared run (``_steps``)."""

    def set_meta(self, **values) -> None:
        """Where the records go (run id once known, shared steps): what ``azml sync`` reads."""

    def size(self) -> int:
        """Bytes on disk (checked against ``AZML_MAX_JOURNAL_BYTES``)."""

    def undelivered(self, done: int = 0) -> tuple[int, int, int]:
        """``(pending on disk, rejected, delivered but still on disk up to done)``."""

    def in_memory(self) -> int:
        """Records held only in RAM (lost if the process ends)."""

    def close(self, prune: bool = False) -> None:
        """Close; with ``prune``, delete the files when nothing is left to deliver."""

    def abandon(self) -> None:
        """In a forked child: let go of the parent's handles without touching the files."""


class Journal:
    """A journal file. Thread-safe: one connection behind one lock."""

    def __init__(self, path: str, create: bool = False, wait_lock: bool = True,
                 initial_meta: dict | None = None) -> None:
        self.path = path
        self.files_dir = path[:-3] + ".files"  # private copies of files awaiting delivery
        self._live = create  # the process writing it (not `azml sync`) keeps copies at exit
        self._lock = self.sqlite_lock = threading.Lock()  # held around every SQLite call
        self._lock_fd = os.open(path[:-3] + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | (0 if wait_lock else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self._lock_fd)
            raise JournalLocked(path) from None
        try:
            if create and not os.path.exists(path):
                self._build(path, initial_meta or {})
        except BaseException:
            self._release()
            raise
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

    @staticmethod
    def _build(path: str, meta: dict) -> None:
        """Make the journal with its tables and meta under a temporary name, then rename it in.

        A process killed while creating its journal used to leave a ``.db`` without meta that
        every ``azml sync`` failed on. The file is 0600 from its first byte, whatever the
        folder's mode or the umask (an uploaded secret sits in it); SQLite gives its WAL and
        shared-memory files the database's mode.
        """
        folder, name = os.path.split(path)
        partial = os.path.join(folder, f".{name}.partial")
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        try:
            db = sqlite3.connect(partial, isolation_level=None)
            try:
                # One transaction: in autocommit each CREATE and each meta row was a commit of
                # its own, each an fsync, on the script's thread at every run's start: 10.3 ms
                # against 1.8 ms in one (median of 15 new journals on this machine's disk).
                db.executescript("BEGIN;" + _SCHEMA)
                db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                               [(k, json.dumps(v)) for k, v in meta.items()])
                db.execute("COMMIT")
            finally:
                db.close()
            os.replace(partial, path)
        except BaseException:
            try:
                os.unlink(partial)
            except OSError:
                pass
            raise

    @classmethod
    def create(cls, directory: str, local_id: str, meta: dict,
               wait_lock: bool = True) -> "Journal":
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return cls(os.path.join(directory, local_id + ".db"), create=True, wait_lock=wait_lock,
                   initial_meta={"version": SCHEMA_VERSION, "local_id": local_id, **meta})

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
    def append(self, records, meta: dict | None = None) -> None:
        # A metric record already is the first six columns of its row: metrics go to
        # executemany as they are (one C-speed filter pass); only other kinds are encoded.
        metrics = [r for r in records if r[1] == METRIC]
        others = [_encode(r) for r in records if r[1] != METRIC] if len(metrics) < len(
            records) else ()
        with self._lock:
            if self._db is None:
                raise sqlite3.ProgrammingError(f"journal {self.path} is closed")
            rows = [(k, json.dumps(v)) for k, v in (meta or {}).items()]
            try:
                self._insert(metrics, others, rows)
            except UnicodeEncodeError:  # rare: escape and store, never leave the journal for it
                self._insert([_escape_row(r) for r in metrics], [_escape_row(r) for r in others],
                             rows)

    def _insert(self, metrics, others, meta=()) -> None:
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO records (seq, kind, key, num, ts, step) VALUES (?, ?, ?, ?, ?, ?)",
                metrics)
            self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?)", others)
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta)
            self._db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        # SQLite already rolled back on some errors (SQLITE_FULL): a second ROLLBACK would
        # replace "database or disk is full" with "no transaction is active".
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def pending(self, after: int, limit: int) -> list:
        with self._lock:
            if self._db is None:
                return []
            rows = self._db.execute(_PENDING, (after, limit)).fetchall()
        return [_decode(row) for row in rows]

    def advance(self, seq: int, next_step: int) -> None:
        # Counted from the record's own first step: absolute, whatever part of it was read.
        with self._lock:
            if self._db is None:
                return
            self._db.execute(
                "INSERT OR REPLACE INTO progress SELECT seq, ? - step FROM records "
                "WHERE seq = ? AND kind = ?", (next_step, seq, SERIES))

    def settle(self, upto: int, errors: dict | None = None) -> int:
        """Records up to ``upto`` are done: delivered, or rejected with ``errors[seq]``.
        Returns how many records left the journal."""
        with self._lock:
            if self._db is None:
                return 0  # closed at exit: a replay by `azml sync` is idempotent
            prefix = self.files_dir + os.sep
            copies = [row[0] for row in self._db.execute(
                "SELECT text FROM records WHERE kind = ? AND seq <= ? AND substr(text, 1, ?) = ?",
                (FILE, upto, len(prefix), prefix))]
            self._db.execute("BEGIN")
            try:
                for seq, error in (errors or {}).items():
                    self._db.execute(
                        "INSERT OR REPLACE INTO rejected SELECT seq, kind, key, ? FROM records "
                        "WHERE seq = ?", (escape_text(redact_text(str(error))[:2000]), seq))
                # A journal kept for its rejected records must not look abandoned to `azml
                # sync` (which ends such runs KILLED) once its end record is delivered.
                self._db.execute(
                    "INSERT OR REPLACE INTO meta SELECT 'ended', json_quote(text) FROM records "
                    "WHERE kind = ? AND seq <= ?", (END, upto))
                deleted = self._db.execute("DELETE FROM records WHERE seq <= ?", (upto,)).rowcount
                self._db.execute("DELETE FROM progress WHERE seq <= ?", (upto,))
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        for copy in copies:  # delivered or set aside: the private copy has done its job
            shutil.rmtree(os.path.dirname(copy), ignore_errors=True)
        return deleted

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

    def undelivered(self, done: int = 0) -> tuple[int, int, int]:
        """``(records after seq done still in the file, rejected records, records up to done
        still in the file)``: ``done`` is the last delivered record a full disk kept us from
        deleting."""
        with self._lock:
            if self._db is None:
                return 0, 0, 0
            pending, stale = self._db.execute(
                "SELECT COUNT(*) FILTER (WHERE seq > ?), COUNT(*) FILTER (WHERE seq <= ?) "
                "FROM records", (done, done)).fetchone()
            rejected = self._db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
        return pending, rejected, stale

    def in_memory(self) -> int:
        return 0

    def points(self) -> int:
        """Metric points still to deliver: one a metric record, a series' points the store
        does not have yet."""
        with self._lock:
            if self._db is None:
                return 0
            return self._db.execute(
                "SELECT COALESCE(SUM(CASE r.kind WHEN ? THEN 1 "
                "ELSE length(r.data) / 8 - COALESCE(p.done, 0) END), 0) "
                "FROM records r LEFT JOIN progress p ON p.seq = r.seq WHERE r.kind IN (?, ?)",
                (METRIC, METRIC, SERIES)).fetchone()[0]

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
            try:
                empty = self._db.execute(
                    "SELECT NOT EXISTS (SELECT 1 FROM records) AND NOT EXISTS "
                    "(SELECT 1 FROM rejected)").fetchone()[0]
                if not empty and self._live:
                    self._keep_files()
            except sqlite3.Error as exc:  # a full disk: what the file holds stays, unpruned
                log.warning("journal %s: %s", self.path, exc)
                empty = False
            self._db.close()
            self._db = None
        if prune and empty:
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(self.path + suffix)
                except OSError:
                    pass
            shutil.rmtree(self.files_dir, ignore_errors=True)
            try:
                os.unlink(self.path[:-3] + ".lock")
            except OSError:
                pass
        self._release()

    def _keep_files(self) -> None:
        """Copy every ``outputs/`` file still to deliver into the journal's own folder.

        A file record names a path, and the next run of the script overwrites that path: the
        run still waiting for `azml sync` would upload the next run's file. Each copy is
        ``<journal>.files/<seq>/<name>`` (the name is the artifact's). A hard link would not do:
        ``open(path, "w")`` truncates the same inode. Called with the lock held.
        """
        from .stores.base import open_source  # no MLflow: a plain file helper

        rows = self._db.execute("SELECT seq, key, text FROM records WHERE kind = ?",
                                (FILE,)).fetchall()
        for seq, artifact_dir, source in rows:
            if source.startswith(self.files_dir + os.sep):
                continue
            folder = os.path.join(self.files_dir, str(seq))
            copy = os.path.join(folder, os.path.basename(source))
            try:
                os.makedirs(folder, mode=0o700, exist_ok=True)
                with open_source(source, artifact_dir) as src, open(
                        os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                self._db.execute("UPDATE records SET text = ? WHERE seq = ?", (copy, seq))
            except Exception as exc:  # noqa: BLE001 - the original path is kept
                shutil.rmtree(folder, ignore_errors=True)
                log.warning("could not keep a copy of %s for `azml sync` (%s); it will "
                            "upload the file as it is then", source, exc)

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
    """A ``JournalLike`` in RAM: the fallback when the disk journal cannot be written (and the
    unit tests' journal). Nothing is persisted and ``azml sync`` never sees it."""

    path = None

    def __init__(self) -> None:
        self._records: collections.deque = collections.deque()
        self._done: dict[int, int] = {}  # seq -> points of that series already delivered
        self._lock = self.sqlite_lock = threading.Lock()  # no SQLite; the fork hook takes it anyway

    def append(self, records, meta: dict | None = None) -> None:
        with self._lock:
            self._records.extend(records)

    def pending(self, after: int, limit: int) -> list:
        with self._lock:
            out = []
            for record in self._records:
                if record[0] > after:
                    done = self._done.get(record[0])
                    if done:
                        seq, kind, key, values, ts, step = record
                        record = (seq, kind, key, values[done:], ts, step + done)
                    out.append(record)
                    if len(out) >= limit:
                        break
            return out

    def advance(self, seq: int, next_step: int) -> None:
        with self._lock:
            for record in self._records:
                if record[0] == seq and record[1] == SERIES:
                    self._done[seq] = next_step - record[5]
                    return

    def settle(self, upto: int, errors: dict | None = None) -> None:
        with self._lock:
            while self._records and self._records[0][0] <= upto:
                self._done.pop(self._records.popleft()[0], None)

    def update_steps(self, updates, final_upto: int) -> None:
        steps = dict((seq, step) for step, seq in updates)
        with self._lock:
            self._records = collections.deque(
                (*r[:5], steps[r[0]]) if r[0] in steps else r for r in self._records)

    def size(self) -> int:
        return 0

    def undelivered(self, done: int = 0) -> tuple[int, int, int]:
        return 0, 0, 0  # nothing on disk: what it holds is counted by ``in_memory``

    def in_memory(self) -> int:
        with self._lock:
            return len(self._records)

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

    def append(self, records, meta: dict | None = None) -> None:
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
        # A failed deletion on disk is raised, not swallowed: the dispatcher then counts what
        # it kept as delivered and still there, and tries again. Swallowed, a full disk had
        # the exit report those records undelivered (4,010 of 60,000 once, all delivered).
        self.memory.settle(upto, errors)
        self.disk.settle(upto, errors)

    def advance(self, seq: int, next_step: int) -> None:
        try:
            self.disk.advance(seq, next_step)
        except sqlite3.Error:
            pass
        self.memory.advance(seq, next_step)

    def update_steps(self, updates, final_upto: int) -> None:
        try:
            self.disk.update_steps(updates, final_upto)
        except sqlite3.Error:
            pass
        self.memory.update_steps(updates, final_upto)

    def size(self) -> int:
        return self.disk.size()

    def undelivered(self, done: int = 0) -> tuple[int, int, int]:
        try:
            return self.disk.undelivered(done)
        except sqlite3.Error:
            return 0, 0, 0

    def in_memory(self) -> int:
        return self.memory.in_memory()

    def set_meta(self, **values) -> None:
        try:
            self.disk.set_meta(**values)
        except sqlite3.Error:
            pass

    def close(self, prune: bool = False) -> None:
        self.disk.close(prune)

    def abandon(self) -> None:
        self.disk.abandon()
