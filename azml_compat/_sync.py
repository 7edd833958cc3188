"""``azml sync``: deliver what journals left behind (server down at exit, process killed).

Each journal says where its records go (tracking URI, experiment, run id or none yet). A run
that was never created gets created now with its original start time, and the journal records
the id it was given, so a second sync continues the same run. A journal whose process is alive
holds its lock and is left alone; two syncs at once skip each other's journals the same way.
A run whose process died without ending it (no end record journaled) is ended KILLED at the
time of its last record.
"""
from __future__ import annotations

import glob
import logging
import os
import sqlite3
from dataclasses import dataclass, field

from ._config import journal_dir, redact
from ._dispatcher import SEND_WINDOW
from ._journal import Journal, JournalLocked
from ._sender import Sender
from ._session import KILLED
from ._steps import SharedSteps
from ._store import RunSpec

log = logging.getLogger("azml")


@dataclass
class SyncResult:
    """What happened to one journal."""

    journal: str
    tracking_uri: str = ""
    run_id: str | None = None
    pending: dict = field(default_factory=dict)  # undelivered records by kind, before the sync
    delivered: int = 0
    rejected: int = 0
    ended: str | None = None  # status set on a run its process never ended
    skipped: str | None = None  # why the journal was not replayed
    error: str | None = None  # why the replay stopped (the journal is kept)

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.error is None


def journals(directory: str | None = None) -> list[str]:
    return sorted(glob.glob(os.path.join(directory or journal_dir(), "*.db")))


def sync(directory: str | None = None, dry_run: bool = False,
         give_up_after: float = 30.0) -> list[SyncResult]:
    """Replay every journal in ``directory`` (default ``$AZML_HOME/journal``)."""
    return [sync_one(path, dry_run, give_up_after) for path in journals(directory)]


def sync_one(path: str, dry_run: bool = False, give_up_after: float = 30.0) -> SyncResult:
    result = SyncResult(journal=path)
    try:
        journal = Journal(path, wait_lock=False)
    except JournalLocked:
        result.skipped = "in use by a running process or another sync"
        return result
    except (sqlite3.Error, OSError) as exc:
        result.skipped = f"unreadable journal ({exc})"
        log.warning("azml: skipping journal %s: %s", path, exc)
        return result
    try:
        _replay(journal, result, dry_run, give_up_after)
    except sqlite3.DatabaseError as exc:
        result.skipped = f"corrupted journal ({exc})"
        log.warning("azml: skipping corrupted journal %s: %s", path, exc)
    except Exception as exc:  # noqa: BLE001 - reported per journal; the others still sync
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        journal.close(prune=not dry_run and result.ok)
    return result


def _replay(journal: Journal, result: SyncResult, dry_run: bool, give_up_after: float) -> None:
    meta = journal.meta()
    result.tracking_uri = uri = meta["tracking_uri"]  # as journaled: any password redacted
    current = os.environ.get("MLFLOW_TRACKING_URI")
    if current and redact(current) == uri:
        uri = current  # the same store, with the credentials the journal must not keep
    result.run_id = meta.get("run_id")
    result.pending = {k: v for k, v in journal.counts().items() if k != "rejected" and v}
    owned_and_abandoned = meta.get("owned") and not journal.has_end()
    last_write_ms = int(journal.mtime() * 1000)  # about when its process last logged
    if dry_run or (not result.pending and not (owned_and_abandoned and result.run_id)):
        return
    spec = RunSpec(tracking_uri=uri, experiment_name=meta["experiment_name"],
                   run_id=meta.get("run_id"), start_time_ms=meta.get("start_time_ms") or 0,
                   tags=meta.get("tags") or {})

    def remember(run_id: str) -> None:
        journal.set_meta(run_id=run_id)
        result.run_id = run_id

    sender = Sender(spec, on_run=remember, give_up_after=give_up_after)
    shared = SharedSteps.from_meta(os.path.join(os.path.dirname(os.path.dirname(journal.path)), "steps"), meta)
    if shared is not None and shared.from_store:
        shared.raise_floors(sender.last_steps())
    settled = 0
    while records := journal.pending(0, SEND_WINDOW):
        if shared is not None:
            records = shared.apply(journal, records, sender.run_id)
        for upto, errors in sender.deliver(records):
            journal.settle(upto, errors)
            result.rejected += len(errors or ())
        settled += len(records)
    result.delivered = settled - result.rejected
    if owned_and_abandoned:
        sender.end_run(KILLED, last_write_ms)
        journal.set_meta(ended=KILLED)
        result.ended = KILLED
