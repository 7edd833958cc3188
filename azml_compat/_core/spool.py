"""Worker processes' records: written by the worker, delivered by the process that owns the run.

A worker (a forked child, a ``spawn``/``forkserver`` child, a subprocess started with the
parent's environment) never talks to the store. ``log()`` appends each record to the worker's
spool file with one ``os.write`` (``O_APPEND``, a 4-byte length and the record's ``marshal``
form), so the record is in the page cache, which outlives the process, when ``log()`` returns:
``os._exit()``, ``Pool.terminate()``'s SIGTERM and SIGKILL lose nothing (a machine crash may:
no fsync, as for the journal). The worker holds an ``flock`` on its spool for as long as it
lives, which is how the parent tells a live worker from a dead one.

    <journal dir>/<parent's local id>.workers/<pid>-<random>.spool   records, the first a header
                                                  ...spool.ack      "<delivered seq> <run id>"

The parent (``Intake``) reads the spools of its folder every commit interval, on its journal
thread, and appends what it reads to its own journal in one transaction together with how far
each spool was read (meta ``workers``), so a record is journaled exactly once whatever kills
whom. Its dispatcher then gives the records their final steps (``_steps``: the run is shared)
and delivers them. It publishes in ``.ack`` how far each spool's records were delivered, which
is what a worker's ``wait()`` and ``flush()`` wait for, and the run id. At its exit it reads
the spools a last time, before it ends the run, and deletes those of workers that are gone and
whose records are delivered. ``azml sync`` (``adopt``) turns the spools of a parent that died
into journals of their own, from where the parent's journal says it stopped.
"""
from __future__ import annotations

import collections
import fcntl
import json
import logging
import marshal
import os
import sqlite3
import struct
import threading
import time
import uuid

from .._consts import TAKE_LIMIT
from .._exceptions import DeliveryTimeout, JournalLocked

log = logging.getLogger("azml")

_LENGTH = struct.Struct("<I")
_dumps, _pack = marshal.dumps, _LENGTH.pack  # the hot path's calls, bound once
SUFFIX = ".spool"
ACK = ".ack"
PARTIAL = ".partial"  # an .ack being rewritten: renamed over it once whole
FOLDER = ".workers"
_POLL = 0.02  # seconds between a waiting worker's reads of its .ack (the parent writes it at 50 ms)


def folder(journal_dir: str, parent_id: str) -> str:
    """Where the workers of the process with journal ``parent_id`` write their spools."""
    return os.path.join(journal_dir, parent_id + FOLDER)


def _frame(obj) -> bytes:
    data = marshal.dumps(obj)
    return _LENGTH.pack(len(data)) + data


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    if written < len(data):  # a regular file takes it whole; a signal can cut a huge one short
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view):]


def _frames(data: bytes, base: int) -> list[tuple[object, int]]:
    """The whole records at the start of ``data`` (read at offset ``base``), each with the
    offset just after it."""
    out, pos, end = [], 0, len(data)
    while pos + 4 <= end:
        (size,) = _LENGTH.unpack_from(data, pos)
        if pos + 4 + size > end:
            break
        out.append((marshal.loads(data[pos + 4:pos + 4 + size]), base + pos + 4 + size))
        pos += 4 + size
    return out


def read_ack(path: str) -> tuple[int, str | None]:
    try:
        with open(path + ACK, encoding="ascii") as fh:
            done, _, run_id = fh.read().partition(" ")
        return int(done), run_id.strip() or None
    except (OSError, ValueError):
        return 0, None


def _alive(fd: int) -> bool:
    """True while the worker that writes the spool open as ``fd`` holds its lock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


class Spool:
    """A worker's side: what its session's ``dispatcher`` is (``put``, ``put_stepped``,
    ``flush``, and what a ``Handle`` asks). No thread; the file is made at the first record,
    so a pool worker that never logs leaves nothing."""

    def __init__(self, directory: str, header: dict, steps: dict, wait_timeout: float) -> None:
        from .dispatcher import Handle

        self._handle = Handle
        self.directory = directory
        self.header = header
        self.steps = steps  # the journaled step is local order: the parent gives the final one
        self.wait_timeout = wait_timeout
        self.path: str | None = None
        self._fd: int | None = None
        self._failed: OSError | None = None
        self._seq = 0
        self._acked = 0
        self._lock = threading.Lock()

    def _open(self) -> None:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        path = os.path.join(self.directory, f"{os.getpid()}-{uuid.uuid4().hex[:12]}{SUFFIX}")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until this process ends, however it ends
        _write_all(fd, _frame({**self.header, "pid": os.getpid()}))
        self.path, self._fd = path, fd

    def _write(self, record: tuple) -> None:
        if self._fd is None and self._failed is None:
            try:
                self._open()
            except OSError as exc:
                self._failed = exc
                log.warning("cannot write this worker's records to %s (%s); they are lost",
                            self.directory, exc)
        if self._fd is not None:
            data = _dumps(record)
            _write_all(self._fd, _pack(len(data)) + data)

    def put(self, *record):
        with self._lock:
            self._seq = seq = self._seq + 1
            self._write((seq, *record))
        return self._handle(self, seq)

    def put_stepped(self, kind: str, key: str, value, timestamp: int, count: int = 1):
        with self._lock:
            step = self.steps.get(key, 0)
            self.steps[key] = step + count
            self._seq = seq = self._seq + 1
            self._write((seq, kind, key, value, timestamp, step))
        return self._handle(self, seq)

    def abandon(self) -> None:
        """In a child forked from this worker: its records go to a spool of its own."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- what the parent delivered ---------------------------------------------------------
    def run_id(self) -> str | None:
        return read_ack(self.path)[1] if self.path else self.header.get("run_id")

    def completed(self, seq: int) -> bool:
        if self._acked < seq and self.path is not None:
            self._acked = max(self._acked, read_ack(self.path)[0])
        return self._acked >= seq or self._failed is not None

    def wait_for(self, seq: int, timeout: float | None = None) -> None:
        """As ``Dispatcher.wait_for``: until the parent has delivered record ``seq``."""
        bound = timeout if timeout is not None else self.wait_timeout or None
        if not self._wait(seq, bound, stall=timeout is None):
            if timeout is not None:
                raise TimeoutError(f"record #{seq} not persisted within {timeout} s")
            raise DeliveryTimeout(
                f"record #{seq} not delivered: the process that owns the run delivered none of "
                f"this worker's records for {self.wait_timeout:g} s (AZML_WAIT_TIMEOUT); it "
                f"stays in {self.path} for that process or `azml sync`")

    def flush(self, timeout: float | None = None, *, stall_timeout: bool = False) -> bool:
        return self._wait(self._seq, timeout, stall=stall_timeout)

    def _wait(self, seq: int, timeout: float | None, stall: bool) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        progress = self._acked
        while not self.completed(seq):
            now = time.monotonic()
            if stall and self._acked > progress and timeout is not None:
                progress, deadline = self._acked, now + timeout
            if deadline is not None and now >= deadline:
                return False
            time.sleep(_POLL)
        return True


class _Reader:
    """The parent's view of one spool: how far it is read and delivered."""

    def __init__(self, path: str, offset: int) -> None:
        self.path = path
        self.name = os.path.basename(path)
        self.fd = os.open(path, os.O_RDONLY)
        self.offset = offset
        self.header: dict | None = None
        self.unacked: collections.deque = collections.deque()  # (parent seq, worker seq)
        self.acked = 0

    def read(self) -> list[tuple[tuple, int]]:
        """Whole records written since the last read, each with the offset just after it
        (the header, always the first record, is kept aside)."""
        size = os.fstat(self.fd).st_size
        if size <= self.offset:
            return []
        frames = _frames(os.pread(self.fd, size - self.offset, self.offset), self.offset)
        if frames:
            self.offset = frames[-1][1]
        if frames and isinstance(frames[0][0], dict):
            self.header = frames.pop(0)[0]
        return frames

    def read_header(self) -> dict:
        """The first record (where the records go), and reading resumes after it."""
        head = os.pread(self.fd, 4, 0)
        if len(head) < 4:
            return {}
        (size,) = _LENGTH.unpack(head)
        data = os.pread(self.fd, size, 4)
        if len(data) < size:
            return {}
        self.header = marshal.loads(data)
        self.offset = max(self.offset, 4 + size)
        return self.header

    def torn(self) -> int:
        """Bytes after the last whole record (a worker killed inside a write)."""
        return os.fstat(self.fd).st_size - self.offset

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class Intake:
    """The parent's side: its workers' spools into its journal, and their deliveries back."""

    def __init__(self, directory: str, dispatcher, before_first, offsets: dict | None = None
                 ) -> None:
        self.directory = directory
        self._dispatcher = dispatcher
        self._before_first = before_first  # the run becomes shared before a worker's record
        self._readers: dict[str, _Reader] = {}
        self.offsets: dict[str, int] = dict(offsets or {})  # what the journal's meta says
        self._lock = threading.Lock()
        self.run_id: str | None = None

    def poll(self) -> None:
        """Take in what the workers wrote since the last call; publish what was delivered."""
        try:
            names = [n for n in os.listdir(self.directory) if n.endswith(SUFFIX)]
        except OSError:  # no worker yet (or no journal folder at all: no spool either)
            return
        with self._lock:
            for name in names:
                reader = self._readers.get(name)
                if reader is None:
                    try:
                        reader = _Reader(os.path.join(self.directory, name),
                                         self.offsets.get(name, 0))
                    except FileNotFoundError:
                        continue
                    self._readers[name] = reader
                self._take(reader)
            self._publish()

    def _take(self, reader: _Reader) -> None:
        frames = reader.read()
        if not frames:
            return
        self._before_first()
        for start in range(0, len(frames), TAKE_LIMIT):
            chunk = frames[start:start + TAKE_LIMIT]
            # Each chunk with how far it reaches, in its own transaction: journaled once.
            self.offsets[reader.name] = chunk[-1][1]
            last = self._dispatcher.ingest([record[1:] for record, _ in chunk],
                                           {"workers": dict(self.offsets)})
            reader.unacked.append((last, chunk[-1][0][0]))

    def _publish(self) -> None:
        done = self._dispatcher.done
        run_id = self.run_id or ""
        for reader in self._readers.values():
            acked = reader.acked
            while reader.unacked and reader.unacked[0][0] <= done:
                acked = reader.unacked.popleft()[1]
            if acked != reader.acked or (run_id and not reader.__dict__.get("told_run")):
                reader.acked = acked
                reader.told_run = bool(run_id)
                _write_ack(reader.path, acked, run_id)

    def finish(self) -> int:
        """At the parent's exit, after its last delivery: delete the spools of workers that
        are gone and fully delivered (the others stay for ``azml sync``, which reads them from
        where the journal's meta says). Returns how many workers still run."""
        running = 0
        with self._lock:
            self._publish()
            for name, reader in list(self._readers.items()):
                if _alive(reader.fd):
                    running += 1
                    continue
                if reader.unacked:
                    continue  # in the journal, not delivered: kept until it is
                if reader.torn():
                    _drop_torn(reader)
                reader.close()
                _remove(reader.path)
                del self._readers[name]
            try:
                os.rmdir(self.directory)
            except OSError:
                pass
        return running


def _drop_torn(reader: _Reader) -> None:
    log.warning("a worker was killed while writing a record to %s: its last %d byte(s) are "
                "not a whole record and were dropped", reader.path, reader.torn())


def _remove(path: str) -> None:
    """The spool of a worker that is gone, once its records are delivered or adopted into a
    journal; its ``.ack``; and an ``.ack.partial`` left by a parent killed between writing and
    renaming it (one was left once in a run of the workers' tests, and kept the folder)."""
    for stale in (path, path + ACK, path + ACK + PARTIAL):
        try:
            os.unlink(stale)
        except OSError:
            pass


def _write_ack(path: str, done: int, run_id: str) -> None:
    partial = path + ACK + PARTIAL
    try:
        with open(partial, "w", encoding="ascii") as fh:
            fh.write(f"{done} {run_id}")
        os.replace(partial, path + ACK)
    except OSError:
        pass  # the worker's wait() then runs into its own bound; nothing is lost


# -- `azml sync`: the spools of a parent that died ------------------------------------------
def adopt(journal_dir: str) -> list[str]:
    """Turn the spools of every parent that is gone into journals of their own (a worker's:
    ``owned`` false, steps after the store's last), from where the parent's journal says it
    stopped reading; delete the spools of workers that are gone too. Returns the journals
    written. A parent still running holds its journal's lock: its folder is left alone."""
    from .journal import Journal

    written = []
    try:
        folders = [n for n in os.listdir(journal_dir) if n.endswith(FOLDER)]
    except FileNotFoundError:
        return written
    for name in folders:
        parent_id = name[:-len(FOLDER)]
        lock = _parent_lock(journal_dir, parent_id)
        if lock is None:
            continue
        try:
            offsets = _journal_meta(os.path.join(journal_dir, parent_id + ".db")).get("workers") or {}
            directory = os.path.join(journal_dir, name)
            for spool in sorted(n for n in os.listdir(directory) if n.endswith(SUFFIX)):
                path = _adopt_one(Journal, journal_dir, parent_id, os.path.join(directory, spool),
                                  offsets.get(spool, 0))
                if path:
                    written.append(path)
            try:
                os.rmdir(directory)
            except OSError:
                pass
        finally:
            if not os.path.exists(os.path.join(journal_dir, parent_id + ".db")):
                os.unlink(os.path.join(journal_dir, parent_id + ".lock"))  # made just now
            os.close(lock)
    return written


def _parent_lock(journal_dir: str, parent_id: str) -> int | None:
    """The parent journal's lock, taken (so the parent is gone), or None if it is held."""
    fd = os.open(os.path.join(journal_dir, parent_id + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _journal_meta(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
        finally:
            db.close()
    except (sqlite3.Error, ValueError):
        return {}


def _adopt_one(journal_cls, journal_dir: str, parent_id: str, path: str, offset: int):
    """One spool's records past ``offset`` (and past an earlier adoption's) into the journal
    ``<parent id>-<spool>.db``; the spool is deleted once its worker is gone."""
    local_id = f"{parent_id}-{os.path.basename(path)[:-len(SUFFIX)]}"
    target = os.path.join(journal_dir, local_id + ".db")
    reader = _Reader(path, 0)
    try:
        header = reader.read_header()
        earlier = _journal_meta(target)
        reader.offset = max(offset, earlier.get("spool_offset") or 0, reader.offset)
        gone = not _alive(reader.fd)  # before reading: a live worker's later records wait
        frames = reader.read()
        if frames:
            _, run_id = read_ack(path)
            meta = {"tracking_uri": header.get("tracking_uri"),
                    "experiment_name": header.get("experiment_name"),
                    "run_id": header.get("run_id") or run_id, "owned": False,
                    "start_time_ms": header.get("start_time_ms") or 0,
                    "run_key": header.get("run_key"), "tags": header.get("tags") or {},
                    "pid": header.get("pid"), "host": header.get("host"),
                    "shared_from": 1, "step_floors": {}, "steps_from_store": True}
            try:
                journal = journal_cls.create(journal_dir, local_id, meta, wait_lock=False)
            except JournalLocked:  # another `azml sync` is on it
                return None
            try:
                seq = journal.meta().get("last_seq") or 0
                for start in range(0, len(frames), TAKE_LIMIT):
                    chunk = frames[start:start + TAKE_LIMIT]
                    batch = [(seq + i + 1, *record[1:]) for i, (record, _) in enumerate(chunk)]
                    seq += len(batch)
                    journal.append(batch, {"spool_offset": chunk[-1][1], "last_seq": seq})
            finally:
                journal.close()
        if gone:
            if reader.torn():
                _drop_torn(reader)
            _remove(path)
        return target if frames else None
    finally:
        reader.close()
