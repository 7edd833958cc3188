"""One process's link to one MLflow run: the dispatcher, the key map, step counters, and the
end of the run (``outputs/``, status, bounded flush)."""
from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import sys
import time
import uuid

from ._batching import END, FILE, TAG
from ._config import Settings, redact, redact_text
from ._dispatcher import Dispatcher
from ._journal import Journal, MemoryJournal, SpilledJournal
from ._keys import NAME_TAG_PREFIX, KeyMap
from ._outputs import ProgressBar, scan, warn_skipped
from ._sender import RunReady, Sender
from ._store import RunSpec

FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"
MAX_TAG_VALUE = 8000
log = logging.getLogger("azml")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def script_tags(script: str, args, cwd: str) -> dict:
    """The tags a run gets for the script that made it (the library's and `azml submit`'s)."""
    return {
        "azml.script_name": os.path.basename(script),
        "azml.arguments": json.dumps(list(args))[:MAX_TAG_VALUE],
        "azml.working_dir": cwd[:MAX_TAG_VALUE],
        "mlflow.source.name": os.path.abspath(script) if script != "<console>" else script,
        "mlflow.source.type": "LOCAL",
    }


def run_spec(settings: Settings) -> RunSpec:
    """Which run this process logs to: an active MLflow run, ``MLFLOW_RUN_ID``, or a new one."""
    script = sys.argv[0] if sys.argv and sys.argv[0] else "<console>"
    spec = RunSpec(
        tracking_uri=settings.tracking_uri,
        experiment_name=settings.experiment_name,
        run_id=settings.run_id,
        start_time_ms=now_ms(),
        tags=script_tags(script, sys.argv[1:], settings.cwd),
    )
    mlflow = sys.modules.get("mlflow")  # only if the script uses MLflow itself: never import it
    active = getattr(mlflow, "active_run", lambda: None)() if mlflow else None
    if active is not None:
        spec.run_id = active.info.run_id
        spec.tracking_uri = mlflow.get_tracking_uri()
    return spec


class Session:
    """Everything a logger needs; shared by every logger of the process."""

    def __init__(self, settings: Settings, spec: RunSpec, steps: dict | None = None,
                 keys: KeyMap | None = None, main: bool = True) -> None:
        self.settings = settings
        self.spec = spec
        self.main = main  # False in a forked child: the parent ends the run
        self.status = FINISHED
        self.keys = keys or KeyMap()
        self.run = RunReady(spec.run_id)
        self._sender: Sender | None = None
        self._held = None  # the journal's lock, during a fork
        self.local_id = uuid.uuid4().hex
        self.dispatcher = Dispatcher(
            self._open_journal(),
            self._make_sender,
            fallback=self._spill,
            max_journal_bytes=settings.max_journal_bytes, steps=steps)
        if not spec.owned and main:
            # Attached to a run others may log to: continue after the steps it already has.
            self.dispatcher.share(self.steps_dir, floors={}, from_store=True)
        self.dispatcher.start()  # its sender thread calls back into self.dispatcher
        self._closed = False
        if main:
            os.makedirs(settings.outputs_dir, exist_ok=True)

    @property
    def steps_dir(self) -> str:
        """Where the step allocators of shared runs live: ``$AZML_HOME/steps``."""
        return os.path.join(os.path.dirname(self.settings.journal_dir), "steps")

    def share(self) -> None:
        """Before a fork: the run is shared from now on (see ``_steps``)."""
        self.dispatcher.share(self.steps_dir)

    # -- the journal ---------------------------------------------------------------------------
    def _open_journal(self):
        spec = self.spec
        meta = {"tracking_uri": redact(spec.tracking_uri),  # never a password on disk
                "experiment_name": spec.experiment_name,
                "run_id": spec.run_id, "owned": spec.owned, "start_time_ms": spec.start_time_ms,
                "tags": spec.tags, "pid": os.getpid(), "host": socket.gethostname()}
        try:
            return Journal.create(self.settings.journal_dir, self.local_id, meta)
        except (OSError, sqlite3.Error) as exc:
            log.warning("azml: cannot write the journal in %s (%s); logging goes on in memory, "
                        "so records not yet sent are lost if the process dies",
                        self.settings.journal_dir, exc)
            return MemoryJournal()

    def _spill(self, journal, exc):
        log.warning("azml: the journal %s stopped taking records (%s); new records are kept in "
                    "memory until sent", journal.path, exc)
        return SpilledJournal(journal) if isinstance(journal, Journal) else MemoryJournal()

    def _make_sender(self) -> Sender:
        self._sender = Sender(self.spec, on_run=self._on_run, on_blocked=self.dispatcher.block)
        return self._sender

    def quiesce(self, timeout: float) -> None:
        """Before a fork: wait until none of our threads is inside SQLite or MLflow, and keep
        it so until ``resume()`` (see ``ForkGate``)."""
        if self._sender is not None:
            self._sender.gate.close(timeout)
        self._held = self.dispatcher.journal.sqlite_lock
        self._held.acquire()

    def resume(self) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None
        if self._sender is not None:
            self._sender.gate.open()

    def _on_run(self, run_id: str) -> None:
        self.dispatcher.journal.set_meta(run_id=run_id)  # what `azml sync` maps the run to
        self.run(run_id)

    def forked(self) -> "Session":
        """A fresh session for a child after ``os.fork``, logging to the same run."""
        self.dispatcher.journal.abandon()  # the parent's; the child opens its own
        spec = RunSpec(**{**self.spec.__dict__, "run_id": self.run.run_id})
        keys = KeyMap()
        keys.known, keys._owners = dict(self.keys.known), dict(self.keys._owners)
        child = Session(self.settings, spec, steps=dict(self.dispatcher.steps), keys=keys, main=False)
        shared = self.dispatcher.shared
        child.dispatcher.share(self.steps_dir, floors=shared.floors if shared else dict(self.dispatcher.steps),
                               from_store=shared.from_store if shared else False)
        return child

    # -- helpers for the logger's hot path -------------------------------------------------
    def new_key(self, name: str) -> str:
        key, mapped = self.keys.add(name)
        if mapped:
            self.dispatcher.put(TAG, NAME_TAG_PREFIX + key, name[:MAX_TAG_VALUE])
        return key

    # -- end of run ----------------------------------------------------------------------------
    def close(self) -> bool:
        """Upload ``outputs/``, end the run if we started it, flush; True if all delivered."""
        if self._closed:
            return True
        self._closed = True
        upload_outputs = self.main and os.environ.get("AZML_UPLOAD_OUTPUTS", "1") != "0"
        files = []
        if upload_outputs:
            files, skipped = scan(self.settings.outputs_dir, self.settings.max_output_bytes)
            warn_skipped(skipped, self.settings.max_output_bytes)
            files = [(self.dispatcher.put(FILE, d, p), size) for d, p, size in files]
        if self.main and self.spec.owned:
            self.dispatcher.put(END, self.status, now_ms())
        delivered = self._wait(files)
        self.dispatcher.commit()  # whatever is still queued goes to disk before we leave
        journal = self.dispatcher.journal
        if not delivered or self.dispatcher.fatal is not None:
            reason = (f"could not log ({self.dispatcher.fatal})" if self.dispatcher.fatal
                      else f"credentials refused ({redact_text(str(self.dispatcher.blocked))})"
                      if self.dispatcher.blocked
                      else f"no progress for {self.settings.flush_timeout:g} s (AZML_FLUSH_TIMEOUT)")
            where = (f"kept in {journal.path}: run `azml sync` to deliver them" if journal.path
                     else "lost: the journal could not be written")
            print(f"azml: {self.dispatcher.pending} record(s) not delivered to "
                  f"{redact(self.spec.tracking_uri)} ({reason}); {where}", file=sys.stderr)
        journal.close(prune=True)  # deletes the file only if nothing is left in it
        return delivered and self.dispatcher.fatal is None

    def _wait(self, files) -> bool:
        timeout = self.settings.flush_timeout
        bar = ProgressBar(sum(size for _, size in files))
        if not bar.enabled:
            return self.dispatcher.flush(timeout, stall_timeout=True)
        while not self.dispatcher.flush(0.5, stall_timeout=True):
            bar.draw(sum(size for handle, size in files if handle.done()))
            if time.monotonic() - self.dispatcher.last_progress > timeout:
                bar.close()
                return False
        bar.draw(bar.total)
        bar.close()
        return True
