"""``azml sync``: deliver what journals left behind (server down at exit, process killed).

Each journal says where its records go (tracking URI, experiment, run id or none yet). A run
that was never created gets created now with its original start time, and the journal records
the id it was given, so a second sync continues the same run. A journal whose process is alive
holds its lock and is left alone; two syncs at once skip each other's journals the same way.
A run whose process died without ending it (no end record journaled) is ended KILLED at the
time of its last record.
"""
from __future__ import annotations

import fcntl
import glob
import json
import logging
import os
import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

from .._config import Settings, journal_dir, raw
from .._consts import SEND_WINDOW
from .._exceptions import GaveUp, JournalLocked, RunGone, UnreadableJournal
from .journal import Journal
from .._redact import redact, redact_text
from .sender import Sender
from .spool import adopt
from .stores import connect
from .steps import SharedSteps
from .records import KILLED, LEGACY_RUN_KEY_TAG, PARENT_TAG, RUN_KEY_TAG, RunSpec
from .stores.base import is_run_level

log = logging.getLogger("azml")


@dataclass
class SyncResult:
    """What happened to one journal."""

    journal: str
    tracking_uri: str = ""
    run_id: str | None = None
    pending: dict = field(default_factory=dict)  # undelivered records by kind, before the sync
    delivered: int = 0
    points: int = 0  # metric points sent (a series resumed sends only what the store lacked)
    rejected: int = 0
    ended: str | None = None  # status set on a run its process never ended
    skipped: str | None = None  # why the journal was not replayed
    error: str | None = None  # why the replay stopped (the journal is kept)

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.error is None


@dataclass
class Progress:
    """Where the replay of one journal stands, for a progress line (``azml sync`` on a
    terminal): ``note`` says why nothing moves (connecting, a store that does not answer)."""

    journal: str
    records: int = 0  # records to deliver, when the replay began
    records_done: int = 0
    points: int = 0  # metric points to deliver (a series resumed counts what is left of it)
    points_done: int = 0
    started: float = field(default_factory=time.monotonic)
    note: str | None = None

    @property
    def rate(self) -> float:
        """Points per second since the replay began."""
        elapsed = time.monotonic() - self.started
        return self.points_done / elapsed if elapsed > 0 else 0.0


def journals(directory: str | None = None) -> list[str]:
    return sorted(glob.glob(os.path.join(directory or journal_dir(), "*.db")))


# What delivering a journal reads from the environment (the store's tuning); nothing else is
# checked, so a bad value of a setting sync does not use never fails it.
SYNC_SETTINGS = ("AZML_HTTP_TIMEOUT", "AZML_MAX_IN_FLIGHT")


def sync(directory: str | None = None, dry_run: bool = False,
         give_up_after: float = 30.0, settings: Settings | None = None,
         progress=None) -> list[SyncResult]:
    """Replay every journal in ``directory`` (default ``$AZML_HOME/journal``); ``progress``,
    if given, is called with a ``Progress`` as each journal's replay moves (or waits).

    Journals of the processes that create their run come first; then those of forked children
    that log to a run their parent was to create (found by the parent's key). A child's run
    still missing then (its parent's journal is gone) is created from the child's journal, so
    nothing is lost; but while the parent's journal is in use or could not be delivered, its
    children wait for the next sync rather than race their parent to create the run.
    Nested runs (SDK v1's child runs) come last: each is created under its parent's run,
    found by the parent's key, and waits for the next sync while that run is not there.
    """
    settings = settings or Settings.from_env(SYNC_SETTINGS, strict=True)
    if not dry_run:
        _remove_partials(directory or journal_dir())
        adopt(directory or journal_dir())  # workers' spools of a parent that died: journals
    owners, members, nested = [], [], []
    for path in journals(directory):
        meta = _peek(path)
        if meta.get("parent_key"):
            nested.append((path, meta))
            continue
        is_member = meta.get("owned") is False and not meta.get("run_id") and meta.get("run_key")
        (members if is_member else owners).append((path, meta.get("run_key")))
    results, waiting, gave_up = [], set(), {}
    for path, key in owners:
        uri = _peek(path).get("tracking_uri")
        if uri in gave_up:  # one unreachable store costs one give-up bound, not one per journal
            results.append(SyncResult(journal=path, tracking_uri=uri, error=gave_up[uri]))
            if key:
                waiting.add(key)
            continue
        result = sync_one(path, dry_run, give_up_after, settings, progress)
        if result.error and result.error.startswith("GaveUp:"):
            gave_up[result.tracking_uri] = result.error
        if not result.ok and key:
            waiting.add(key)
        results.append(result)
    for path, key in members:
        if key in waiting:
            results.append(SyncResult(journal=path, skipped=(
                "waiting for the journal of the process that creates its run")))
        else:
            results.append(sync_one(path, dry_run, give_up_after, settings, progress))
    made = {key: r.run_id for (_, key), r in zip(owners, results) if key and r.run_id}
    # Oldest first: a run nested under a nested run comes after its parent.
    for path, meta in sorted(nested, key=lambda item: item[1].get("start_time_ms") or 0):
        parent = meta["parent_key"]
        if parent in waiting:
            results.append(SyncResult(journal=path, skipped=(
                "waiting for the journal of the run it is nested under")))
            continue
        parent_id = made.get(parent) if not dry_run else None
        if parent_id is None and not dry_run and PARENT_TAG not in (meta.get("tags") or {}):
            parent_id = _find_run(meta, parent, settings)
            if parent_id is None:
                results.append(SyncResult(journal=path, skipped=(
                    "the run it is nested under is not in the store yet")))
                continue
        result = sync_one(path, dry_run, give_up_after, settings, progress, parent_id=parent_id)
        if result.run_id:
            made[meta.get("run_key")] = result.run_id
        elif not result.ok:
            waiting.add(meta.get("run_key"))
        results.append(result)
    return results


def _find_run(meta: dict, run_key: str, settings: Settings | None) -> str | None:
    """The id of the run made for ``run_key`` in the journal's store and experiment, or None."""
    spec = RunSpec(tracking_uri=meta.get("tracking_uri", ""),
                   experiment_name=meta.get("experiment_name", ""), run_key=run_key, owned=False)
    try:
        return _command_store(spec.tracking_uri, settings).open_run(spec)
    except Exception as exc:  # noqa: BLE001 - the nested journal waits for the next sync
        log.warning("cannot look up the parent run of a nested run: %s", exc)
        return None


def _peek(path: str) -> dict:
    """A journal's meta without locking it; {} if it cannot be read (sync_one reports why)."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            rows = db.execute("SELECT key, value FROM meta").fetchall()
        finally:
            db.close()
        return {k: json.loads(v) for k, v in rows}
    except (sqlite3.Error, ValueError, OSError):
        return {}


def _remove_partials(directory: str) -> None:
    """Delete journals a killed process left half-built (``.<id>.db.partial``): they hold no
    record yet (records are only written once the journal is in place)."""
    for partial in glob.glob(os.path.join(directory, ".*.db.partial")):
        lock = os.path.join(directory, os.path.basename(partial)[1:-len(".db.partial")] + ".lock")
        try:
            fd = os.open(lock, os.O_RDWR)
        except OSError:
            fd = None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # its creator is gone
            os.unlink(partial)
        except OSError:
            pass  # being built right now
        finally:
            if fd is not None:
                os.close(fd)


def to_new_run(target: str, give_up_after: float = 30.0, settings: Settings | None = None,
               directory: str | None = None) -> list[SyncResult]:
    """Send the records of the journals ``target`` names (``find_journals``) to a new run each,
    made with the journal's experiment, tags and start time: for a run the store no longer
    has (deleted, its database wiped), whose records a plain sync can only keep."""
    settings = settings or Settings.from_env(SYNC_SETTINGS, strict=True)
    return [sync_one(path, False, give_up_after, settings, new_run=True)
            for path in find_journals(target, directory)]


def sync_one(path: str, dry_run: bool = False, give_up_after: float = 30.0,
             settings: Settings | None = None, progress=None, parent_id: str | None = None,
             wait_lock: bool = False, claim: bool = False, new_run: bool = False) -> SyncResult:
    """Replay one journal; ``wait_lock``: wait for its lock (the process handing it over
    lets go of it as it exits) instead of skipping it while it is held; ``claim``: note this
    process's pid in its meta while it delivers (``_handoff``; `azml sync --list` shows it);
    ``new_run``: send its records to a new run (``--to-new-run``: its run was lost)."""
    result = SyncResult(journal=path)
    try:
        journal = Journal(path, wait_lock=wait_lock)
    except JournalLocked:
        pid = _peek(path).get("delivered_by")
        result.skipped = (f"being delivered in the background (pid {pid})" if pid and _alive(pid)
                          else "in use by a running process or another sync")
        return result
    except (sqlite3.Error, OSError) as exc:
        result.skipped = f"unreadable journal ({exc})"
        log.warning("skipping journal %s: %s", path, exc)
        return result
    try:
        if claim:
            journal.set_meta(delivered_by=os.getpid())
        if new_run:
            _point_at_a_new_run(journal)
        _replay(journal, result, dry_run, give_up_after, settings, progress, parent_id)
    except UnreadableJournal as exc:
        result.skipped = f"unreadable journal ({exc})"
        log.warning("skipping journal %s: %s", path, exc)
    except sqlite3.OperationalError as exc:
        # "database or disk is full", "disk I/O error": the file is sound, the disk is not.
        result.error = f"journal cannot be written ({exc}); free space and run `azml sync` again"
    except sqlite3.DatabaseError as exc:
        result.skipped = f"corrupted journal ({exc})"
        log.warning("skipping corrupted journal %s: %s", path, exc)
    except RunGone as exc:
        result.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - reported per journal; the others still sync
        result.error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, GaveUp) and exc.__cause__ is not None:  # the OS's reason, whole
            result.error += f" [{exc.__cause__}]"
    finally:
        if claim:
            try:
                journal.set_meta(delivered_by=None)  # kept for `azml sync`: no one delivers it
            except sqlite3.Error:
                pass
        journal.close(prune=not dry_run and result.ok)
    return result


def _command_store(tracking_uri: str, settings: Settings | None):
    """The store for a replay. ``azml sync`` is a command: until a server has answered once,
    its requests get the CLI's timeout (a hung server is given up on within the command's
    bound, not after 30 s); once it has, the logging path's."""
    if tracking_uri.startswith(("http://", "https://")):
        from .http import request_timeout
        from .stores.rest import RestStore

        return RestStore(tracking_uri, timeout=settings.http_timeout if settings else None,
                         concurrency=settings.max_in_flight if settings else None,
                         first_timeout=request_timeout(cli=True, settings=settings))
    return connect(tracking_uri, settings)


_REQUIRED_META = ("tracking_uri", "experiment_name")


def _point_at_a_new_run(journal: Journal) -> None:
    """The journal's records go to a run yet to be made, under a new key: written to its meta
    before anything is sent, so a sync stopped half-way continues the same new run."""
    meta = journal.meta()
    tags = {k: v for k, v in (meta.get("tags") or {}).items()
            if k not in (RUN_KEY_TAG, LEGACY_RUN_KEY_TAG)}
    key = uuid.uuid4().hex
    tags[RUN_KEY_TAG] = key
    journal.set_meta(run_id=None, run_key=key, owned=True, tags=tags, vanished=None, ended=None)


def _run_gone(journal: Journal, run_id: str, uri: str, cause: Exception) -> RunGone:
    """The store no longer has the journal's run: noted in the journal (``--list`` says so)
    and the error that names ``--to-new-run``."""
    journal.set_meta(vanished=redact_text(str(cause))[:500])
    return RunGone(f"run {run_id} is no longer on {redact(uri)}; `azml sync --to-new-run "
                   f"{os.path.basename(journal.path)}` sends its records to a new run")


def _replay(journal: Journal, result: SyncResult, dry_run: bool, give_up_after: float,
            settings: Settings | None = None, progress=None,
            parent_id: str | None = None) -> None:
    meta = journal.meta()
    if parent_id and not dry_run and PARENT_TAG not in (meta.get("tags") or {}):
        # A nested run whose process died before its parent's run existed: link it now.
        meta["tags"] = {**(meta.get("tags") or {}), PARENT_TAG: parent_id}
        journal.set_meta(tags=meta["tags"])
    missing = [key for key in _REQUIRED_META if key not in meta]
    if missing:
        raise UnreadableJournal(f"no {', '.join(missing)} in its meta: its process was probably "
                                "killed while creating it")
    result.tracking_uri = uri = meta["tracking_uri"]  # as journaled: any password redacted
    current = raw("MLFLOW_TRACKING_URI")
    if current and redact(current) == uri:
        uri = current  # the same store, with the credentials the journal must not keep
    result.run_id = meta.get("run_id")
    result.pending = {k: v for k, v in journal.counts().items() if k != "rejected" and v}
    owned_and_abandoned = meta.get("owned") and not journal.has_end() and not meta.get("ended")
    last_write_ms = int(journal.mtime() * 1000)  # about when its process last logged
    if dry_run or (not result.pending and not (owned_and_abandoned and result.run_id)):
        return
    # With no run id journaled, the run is looked up by its key and created if missing: by
    # an owner's journal, or by a forked child's once its parent's journal was replayed.
    spec = RunSpec(tracking_uri=uri, experiment_name=meta["experiment_name"],
                   run_id=meta.get("run_id"), start_time_ms=meta.get("start_time_ms") or 0,
                   tags=meta.get("tags") or {}, run_key=meta.get("run_key"),
                   owned=not meta.get("run_id"))

    def remember(run_id: str) -> None:
        journal.set_meta(run_id=run_id)
        result.run_id = run_id

    state = Progress(journal.path, records=sum(result.pending.values()), points=journal.points())

    def tell(note: str | None = None) -> None:
        state.note = note
        if progress is not None:
            progress(state)

    tell(f"connecting to {result.tracking_uri}")
    # quiet: "retrying in the background" is not what a sync does; its result says it all,
    # and the progress line says why it waits meanwhile
    sender = Sender(spec, on_run=remember, give_up_after=give_up_after, settings=settings,
                    store_factory=lambda uri: _command_store(uri, settings), quiet=True,
                    on_retry=lambda why: tell(why))
    try:
        sender.start()
    except Exception as exc:
        if spec.run_id and is_run_level(exc):  # deleted, or its database wiped
            raise _run_gone(journal, spec.run_id, uri, exc) from exc
        raise
    tell()
    steps_dir = os.path.join(os.path.dirname(os.path.dirname(journal.path)), "steps")
    shared = SharedSteps.from_meta(steps_dir, meta)
    if shared is not None and shared.from_store:
        shared.raise_floors(sender.last_steps())
    # Counted as the journal confirms it: records deleted after delivery. On a full disk the
    # delete can fail; those records stay (sent again by the next sync, harmlessly) and are
    # not counted, so the counts of successive syncs add up to what the journal held.
    unsettled, waiting = None, {}

    def reads():
        """The journal a window at a time, each read as the last one's requests are sent."""
        after = 0
        while records := journal.pending(after, SEND_WINDOW):
            if shared is not None:
                records = shared.apply(journal, records, sender.run_id)
            yield records
            after = records[-1][0]

    for done in sender.deliver(reads()):
        gone = next((e for e in (done.errors or {}).values() if is_run_level(e)), None)
        if gone is not None:  # lost while we send: what is left stays for a new run
            raise _run_gone(journal, sender.run_id, uri, gone) from gone
        result.points += done.points
        waiting.update(done.errors or {})
        try:
            if done.partial is not None:
                journal.advance(*done.partial)
            deleted = journal.settle(done.upto, waiting)
        except sqlite3.OperationalError as exc:  # a full disk: delivered, not yet deleted
            unsettled = exc
            deleted = None
        if deleted is not None:
            result.rejected += len(waiting)
            result.delivered += deleted - len(waiting)
            waiting = {}
        state.records_done, state.points_done = result.delivered + result.rejected, result.points
        tell()
    if unsettled is not None:
        raise unsettled
    if owned_and_abandoned:
        sender.end_run(KILLED, last_write_ms)
        journal.set_meta(ended=KILLED)
        result.ended = KILLED


def describe(path: str) -> dict:
    """One journal as ``azml sync --list`` shows it, read without taking it from its owner."""
    row = {"journal": path, "run_id": None, "tracking_uri": None, "pending": None,
           "rejected": None, "age_s": None, "state": "ok"}
    try:
        row["age_s"] = round(time.time() - max(
            os.path.getmtime(p) for p in (path, path + "-wal") if os.path.exists(p)), 1)
        try:
            meta, row["pending"], row["rejected"] = _read_journal(path, "ro")
        except sqlite3.Error:
            # A process killed while writing can leave its WAL and shared-memory files to be
            # recovered (or made) on the next open, which a read-only connection cannot do. No
            # process holds it: open it as `azml sync` would, which recovers it, harmlessly.
            if _in_use(path):
                raise
            meta, row["pending"], row["rejected"] = _read_journal(path, "rw")
    except (sqlite3.Error, OSError, ValueError) as exc:
        row["state"] = f"unreadable ({exc})"
        return row
    row["run_id"], row["tracking_uri"] = meta.get("run_id"), meta.get("tracking_uri")
    missing = [key for key in _REQUIRED_META if key not in meta]
    if missing:
        row["state"] = f"unreadable (no {', '.join(missing)} in its meta)"
    elif meta.get("delivered_by") and _alive(meta["delivered_by"]):
        # Noted by the exiting script as it starts that process, so true before the process
        # holds the lock too; cleared when it stops (a killed one's pid is no longer alive).
        row["state"] = f"delivering in the background (pid {meta['delivered_by']})"
    elif _in_use(path):
        row["state"] = "in use"
    elif meta.get("vanished"):
        row["state"] = "run deleted from its store: --to-new-run sends its records to a new run"
    return row


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's: alive
        return True
    return True


def _read_journal(path: str, mode: str) -> tuple[dict, int, int]:
    """``(meta, pending, rejected)`` of the journal file, opened with SQLite's ``mode``."""
    db = sqlite3.connect(f"file:{quote(path)}?mode={mode}", uri=True)
    try:
        meta = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM meta")}
        pending = db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        rejected = db.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]
    finally:
        db.close()
    return meta, pending, rejected


def _in_use(path: str) -> bool:
    try:
        fd = os.open(path[:-3] + ".lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def list_journals(directory: str | None = None) -> list[dict]:
    return [describe(path) for path in journals(directory)]


class DiscardError(Exception):
    """Why a journal cannot be discarded, in one line naming it."""


def find_journals(target: str, directory: str | None = None) -> list[str]:
    """The journals ``target`` names: a journal's file name (with or without ``.db``), else
    every journal of the run whose id it is or uniquely begins (a forked child journals the
    same run beside its parent)."""
    paths = journals(directory)
    name = os.path.basename(target)
    named = [p for p in paths if os.path.basename(p) in (name, name + ".db")]
    if named:
        return named
    runs: dict[str, list[str]] = {}
    for path in paths:
        run_id = _peek(path).get("run_id")
        if run_id and run_id.startswith(target):
            runs.setdefault(run_id, []).append(path)
    if len(runs) > 1:
        raise DiscardError(f"run id prefix '{target}' matches the journals of {len(runs)} "
                           "runs; give more of it or a journal's name (`azml sync --list`)")
    if not runs:
        raise DiscardError(f"no journal named '{target}' or of a run '{target}' in "
                           f"{directory or journal_dir()} (`azml sync --list` shows them)")
    return next(iter(runs.values()))


def discard(path: str) -> dict:
    """Delete one journal on purpose, with its lock, WAL and kept file copies; its row as
    ``azml sync --list`` showed it just before. A journal a live process (or a sync) holds is
    refused: its owner is still writing or delivering it."""
    row = describe(path)
    lock = path[:-3] + ".lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DiscardError(f"journal {os.path.basename(path)} is in use by a running "
                               "process or a sync; stop it first") from None
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass
        shutil.rmtree(path[:-3] + ".files", ignore_errors=True)
        os.unlink(lock)  # last, while held: no one takes a lock of a journal half deleted
    finally:
        os.close(fd)
    row["state"] = "discarded"
    return row
