"""One process's link to one MLflow run: the dispatcher, the key map, step counters, and the
end of the run (``outputs/``, status, bounded flush)."""
from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid

from .._config import Settings, absolute_uri
from .._consts import CLOSE_TIMEOUT, HANDOFF_MEASURE, NOTE_INTERVAL
from .dispatcher import Dispatcher, exit_message
from .._redact import redact, redact_text
from .journal import Journal, MemoryJournal, SpilledJournal
from .keys import KeyMap
from .livelogs import LiveLogs
from .outputs import LOGS_DIR, UPLOAD_BAR_BYTES, scan, uploaded, warn_moved, warn_skipped
from .progress import Progress, shown
from .sender import ForkGate, RunReady, Sender
from .tables import Tables
from .records import (ARGUMENTS_TAG, END, FILE, FINISHED, MAX_TAG_VALUE, NAME_TAG_PREFIX,
                      PARENT_TAG, SCRIPT_TAG, TAG, WORKDIR_TAG, RunSpec)
from . import spool as _spool
from .presentation import NOTE_TAG, RUN_NAME_TAG, run_name, run_note, where_line
from .environment import process_start_ms, script_identity

log = logging.getLogger("azml")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def script_tags(script: str, args, cwd: str) -> dict:
    """The tags a run gets for the script that made it (the library's and `azml submit`'s):
    ours (hidden by the UI: ``mlflow.``), the run's name and its description."""
    args = [redact_text(arg) for arg in args]
    source = os.path.abspath(script) if script != "<console>" else script
    return {
        SCRIPT_TAG: os.path.basename(script),
        ARGUMENTS_TAG: json.dumps(args)[:MAX_TAG_VALUE],
        WORKDIR_TAG: cwd[:MAX_TAG_VALUE],
        "mlflow.source.name": source,
        "mlflow.source.type": "LOCAL",
        RUN_NAME_TAG: run_name(script, args),
        NOTE_TAG: run_note(source, args, cwd, {}),
    }


def _default_on_second_ctrl_c() -> None:
    """After one Ctrl-C has stopped the exit's wait, a second one ends the process at once."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_spec(settings: Settings) -> RunSpec:
    """Which run this process logs to: an active MLflow run, ``MLFLOW_RUN_ID``, or a new one."""
    script, args, notebook = script_identity(settings.cwd)
    spec = RunSpec(
        tracking_uri=settings.tracking_uri,
        experiment_name=settings.experiment_name,
        run_id=settings.run_id,
        start_time_ms=process_start_ms(),  # a Workbench run covered the whole script
        tags=script_tags(script, args, settings.cwd),
    )
    if notebook:
        spec.tags["mlflow.source.type"] = "NOTEBOOK"
    mlflow = sys.modules.get("mlflow")  # only if the script uses MLflow itself: never import it
    active = getattr(mlflow, "active_run", lambda: None)() if mlflow else None
    if active is not None:
        spec.run_id = active.info.run_id
        spec.tracking_uri = absolute_uri(mlflow.get_tracking_uri(), settings.cwd)
        spec.owned = False
    if spec.owned:
        # Known before the run exists: a forked child (and `azml sync`) finds the run by it,
        # and creating it again after a lost answer finds it instead of making a second one.
        spec.run_key = uuid.uuid4().hex
        spec.tags[spec.key_tag] = spec.run_key
        spec.new_key = True
    return spec


class Session:
    """Everything a logger needs; shared by every logger (every face) of the process."""

    main = True  # this process delivers (a worker, ``WorkerSession``, leaves it to its parent)
    live_logs: LiveLogs | None = None  # ``./logs`` sent while the run runs (``watch_logs``)

    def __init__(self, settings: Settings, spec: RunSpec, parent: "Session | None" = None) -> None:
        self.settings = settings
        self.spec = spec
        # A nested run's (SDK v1's child runs): made and ended by this process through its own
        # session and journal, linked to the parent's run once the parent's id is known.
        self.parent = parent
        self.before_close: list = []  # called first in end(): faces' buffers go out
        self.tables = Tables(self.dispatcher_put)  # the run's tables (``_tables``)
        self.before_close.append(self.tables.close)
        self.before_close.append(self._flush_note)
        self.nested_runs: list[Session] = []  # ended with this run, closed after it
        self._close_lock = threading.Lock()
        self.status = FINISHED
        self.keys = KeyMap()
        self.run = RunReady(spec.run_id)
        self.gate = ForkGate()  # before the sender exists: it covers the MLflow import too
        self._sender: Sender | None = None
        self._held = None  # the journal's lock, during a fork
        self.local_id = uuid.uuid4().hex
        self.dispatcher = Dispatcher(
            self._open_journal(),
            self._make_sender,
            fallback=self._spill,
            max_journal_bytes=settings.max_journal_bytes,
            wait_timeout=settings.wait_timeout, store=redact(spec.tracking_uri))
        if not spec.owned:
            # Attached to a run others may log to: continue after the steps it already has.
            self.dispatcher.share(self.steps_dir, floors={}, from_store=True)
        # This process's workers (forked, spawned, subprocesses) write spools; we deliver them.
        self.workers = _spool.Intake(_spool.folder(settings.journal_dir, self.local_id),
                                     self.dispatcher, self.share)
        self.dispatcher.intake = self.workers.poll
        self.dispatcher.start()  # its sender thread calls back into self.dispatcher
        self._closed = False
        self._ended = False  # outputs/ and the end record are queued
        self._handoff: tuple[int, float] | None = None  # (points left, rate) to hand over
        if parent is None:
            os.makedirs(settings.outputs_dir, exist_ok=True)

    def nested(self, name: str | None, tags: dict | None = None) -> "Session":
        """A new run under this one (``mlflow.parentRunId``), logged by this process."""
        spec = RunSpec(tracking_uri=self.spec.tracking_uri,
                       experiment_name=self.spec.experiment_name, start_time_ms=now_ms(),
                       tags={**(tags or {}), **({RUN_NAME_TAG: name} if name else {})},
                       run_key=uuid.uuid4().hex, owned=True, new_key=True)
        child = Session(self.settings, spec, parent=self)
        self.nested_runs.append(child)
        return child

    def _link_parent(self, pause) -> None:
        """On the nested run's sender thread: wait for the parent's run, then name it in the
        tags the run is created with (and in the journal, for `azml sync`)."""
        attempt = 0
        while self.parent.run.wait(0) is None:
            pause(min(0.05 * 2 ** attempt, 1.0))
            attempt += 1
        self.spec.tags[PARENT_TAG] = self.parent.run.run_id
        self.dispatcher.journal.set_meta(tags=self.spec.tags)

    def watch_logs(self) -> None:
        """Upload ``./logs`` as ``logs/...`` while the run runs, and at its end (SDK v1 did;
        Workbench did not, so only the SDK v1 face asks for it). Once, by the process's run."""
        if self.live_logs is None and self.main and self.parent is None \
                and self.settings.upload_outputs:
            self.live_logs = LiveLogs(os.path.join(self.settings.cwd, LOGS_DIR), self.dispatcher,
                                      self.settings.max_output_bytes,
                                      self.spec.start_time_ms or process_start_ms()).start()

    def dispatcher_put(self, *record):
        """``dispatcher.put``, for parts made before the dispatcher (the tables)."""
        return self.dispatcher.put(*record)

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
                "run_key": spec.run_key,
                "parent_key": self.parent.spec.run_key if self.parent else None,
                "tags": spec.tags, "pid": os.getpid(), "host": socket.gethostname()}
        try:
            return Journal.create(self.settings.journal_dir, self.local_id, meta)
        except (OSError, sqlite3.Error) as exc:
            log.warning("cannot write the journal in %s (%s); logging goes on in memory, "
                        "so records not yet sent are lost if the process dies",
                        self.settings.journal_dir, exc)
            return MemoryJournal()

    def _spill(self, journal, exc):
        log.warning("the journal %s stopped taking records (%s); new records are kept in "
                    "memory until sent", journal.path, exc)
        return SpilledJournal(journal) if isinstance(journal, Journal) else MemoryJournal()

    def _make_sender(self) -> Sender:
        self._sender = Sender(self.spec, on_run=self._on_run, on_blocked=self.dispatcher.block,
                              gate=self.gate, settings=self.settings,
                              before_open=self._link_parent if self.parent else None)
        return self._sender

    def quiesce(self, timeout: float) -> bool:
        """Before a fork: wait until none of our threads is inside SQLite (or importing
        MLflow), and keep it so until ``resume()`` (see ``ForkGate``). Never waits for the
        network: HTTP calls go on during the fork. False if a call was still inside after
        ``timeout``: the child must then not call MLflow (it may hold a lock the child would
        wait on for ever)."""
        quiet = self.gate.close(timeout)
        self._held = self.dispatcher.journal.sqlite_lock
        self._held.acquire()
        return quiet

    def resume(self) -> None:
        if self._held is not None:
            self._held.release()
            self._held = None
        self.gate.open()

    def _on_run(self, run_id: str) -> None:
        self.dispatcher.journal.set_meta(run_id=run_id)  # what `azml sync` maps the run to
        self.workers.run_id = run_id  # what the workers' handles learn with their deliveries
        self.run(run_id)

    def worker_header(self) -> dict:
        """Where this process's workers' records go: the first record of each spool, what
        ``azml sync`` makes a worker's journal from if this process dies first."""
        spec = self.spec
        return {"tracking_uri": redact(spec.tracking_uri), "experiment_name": spec.experiment_name,
                "run_id": self.run.run_id, "run_key": spec.run_key,
                "start_time_ms": spec.start_time_ms, "host": socket.gethostname(),
                "spools": self.workers.directory}

    def worker_env(self) -> str:
        """``AZML_PARENT_RUN`` for the processes this one starts (``spawn``, ``forkserver``,
        subprocesses): they log to this run through a spool. No tags: a header stays small."""
        return json.dumps(self.worker_header())

    def forked(self) -> "WorkerSession":
        """The session of a child just forked: the same run, through a spool. Copies only
        dicts (the at-fork hook stays short); the key map's lock may be held by a thread that
        does not exist in the child, so the map is a new one."""
        header = {**self.worker_header(), "tags": self.spec.tags}
        return WorkerSession(self.settings, header, self._copied_keys(),
                             dict(self.dispatcher.steps))

    def _copied_keys(self) -> KeyMap:
        keys = KeyMap()
        keys.known, keys._owners = dict(self.keys.known), dict(self.keys._owners)
        return keys

    def abandon(self) -> None:
        """In a child just forked: let go of this (the parent's) session's files."""
        self.dispatcher.journal.abandon()

    # -- helpers for the logger's hot path -------------------------------------------------
    def new_key(self, name: str) -> str:
        key, mapped = self.keys.add(name)
        if mapped:
            self.dispatcher.put(TAG, NAME_TAG_PREFIX + key, name[:MAX_TAG_VALUE])
            self._update_note()
        return key

    def note_value(self, name: str, kind: str, content, path: str) -> None:
        """A list of str or a dict was logged as ``path``: the description shows its items
        (latest wins), for a run we describe. Sent at most every ``NOTE_INTERVAL`` seconds
        (a script logging a list in a loop would send an 8 KB tag a call), and at the end."""
        self.__dict__.setdefault("_logged", {})[name] = (kind, content, path)
        now = time.monotonic()
        if now - self.__dict__.get("_noted_at", -NOTE_INTERVAL) < NOTE_INTERVAL:
            self._note_pending = True
            return
        self._noted_at = now
        self._note_pending = False
        self._update_note()

    def _flush_note(self) -> None:
        if self.__dict__.get("_note_pending"):
            self._note_pending = False
            self._update_note()

    def _update_note(self) -> None:
        """The run's description, with the table of renamed names as it stands now. Only for
        a run we describe (ours, or the one `azml submit` made for this script); a forked
        child leaves it to its parent, whose table has the names mapped before the fork."""
        spec = self.spec
        ours = spec.owned or (spec.run_id and spec.run_id == self.settings.submitted_run)
        if not (self.main and ours and NOTE_TAG in spec.tags) or self.__dict__.get("_note_full"):
            return
        try:
            args = json.loads(spec.tags.get(ARGUMENTS_TAG, "[]"))
        except ValueError:
            args = []
        renamed = {key: name for name, key in self.keys.known.items() if key != name}
        note = run_note(spec.tags.get("mlflow.source.name", spec.tags.get(SCRIPT_TAG, "")),
                        args, spec.tags.get(WORKDIR_TAG, ""), renamed,
                        self.__dict__.get("_logged"))
        # Once the table fills the tag (~150 rows), it says "... and N more" and is not sent
        # again: a script with thousands of renamed names sends ~150 notes, not thousands.
        self._note_full = "more (`azml history info`)" in note
        self.dispatcher.put(TAG, NOTE_TAG, note)

    # -- end of run ----------------------------------------------------------------------------
    def end(self) -> list:
        """Queue the end of the run without waiting: the faces' buffers, ``logs/`` (if
        watched), ``outputs/``, the end record (if we started the run), and the end of nested
        runs still open (with this run's status). Once; ``close()`` calls it too. The
        ``(handle, path, size)`` of each ``outputs/`` file queued."""
        if self._ended:
            return []
        for flush in self.before_close:
            flush()
        if self.live_logs is not None:
            self.live_logs.finish()
        self._ended = True
        for child in self.nested_runs:
            if not child._ended:
                child.status = self.status
                child.end()
        files = []
        if self.main and self.parent is None and self.settings.upload_outputs:
            # Only what this run wrote: files left by earlier runs are not its own.
            since_ms = self.spec.start_time_ms or process_start_ms()
            files, skipped = scan(self.settings.outputs_dir, self.settings.max_output_bytes,
                                  since_ms=since_ms)
            warn_skipped(skipped, self.settings.max_output_bytes)
            warn_moved(self.settings.outputs_dir, since_ms)
            files = [(self.dispatcher.put(FILE, d, p), p, size) for d, p, size in files]
        if self.main and self.spec.owned:
            self.dispatcher.put(END, self.status, now_ms())
        return files

    def close(self, final: bool = True, patience: float | None = None) -> bool:
        """Upload ``outputs/``, end the run if we started it, flush; True if all delivered.

        With ``final=False`` (exit hooks that run while the process may still log, from a user
        ``atexit`` handler) the journal stays open if everything was delivered, and a later
        ``close()`` delivers what came after to the same run. ``patience``: seconds without
        progress to wait (default ``AZML_FLUSH_TIMEOUT``). One caller at a time (a nested run
        is closed by its own finisher or by its parent's exit, whichever comes first).
        """
        with self._close_lock:
            return self._close(final, patience)

    def _close(self, final: bool, patience: float | None) -> bool:
        if self._closed:
            return True
        files = []
        interrupted = None
        try:
            # What the workers logged goes in before the end record (they are gone by now,
            # or still running: what they log later is delivered by the next close or sync).
            self.workers.poll()
            files = self.end()
            delivered = self._wait(files, patience)
            if delivered:  # and what a worker still running logged meanwhile
                self.workers.poll()
                delivered = self.dispatcher.flush(self.settings.flush_timeout, stall_timeout=True)
            for child in self.nested_runs:
                # Their records went out alongside ours: waiting again only if ours arrived
                # (a store that took nothing for the bound is not waited for once per child).
                delivered = child.close(final=True, patience=None if delivered else 0.0) and delivered
        except (KeyboardInterrupt, SystemExit) as exc:
            # Ctrl-C or SIGTERM anywhere in the exit (while outputs/ is scanned or while it
            # waits for a slow store): stop, keep everything in the journal and say so; the
            # caller exits 130/143. Without an end record, `azml sync` ends the run KILLED.
            interrupted, delivered = exc, False
            _default_on_second_ctrl_c()
        lost = self.dispatcher.fatal or self.dispatcher.vanished  # nothing more reaches it
        if not final and delivered and interrupted is None and lost is None:
            return True
        self._closed = True
        self.dispatcher.commit()  # whatever is still queued goes to disk before we leave
        # Its threads end here, before the journal is counted and closed: what they did not
        # deliver stays in it. Interrupted, the exit does not wait for a request in flight.
        self.dispatcher.close(0.0 if interrupted is not None else CLOSE_TIMEOUT)
        running = self.workers.finish()
        journal = self.dispatcher.journal
        handed = (self._hand_off(journal) if self._handoff is not None and interrupted is None
                  else None)
        if handed is not None:
            log.warning("%s", handed)
            journal.close(prune=True)  # lets go of the lock: the detached process takes it
            self._say_where()
            return False
        reason = ("interrupted by " + ("Ctrl-C" if isinstance(interrupted, KeyboardInterrupt)
                                       else "SIGTERM") if interrupted is not None
                  else f"could not log ({self.dispatcher.fatal})" if self.dispatcher.fatal
                  else "its run is gone from the store" if self.dispatcher.vanished
                  else f"credentials refused ({redact_text(str(self.dispatcher.blocked))})"
                  if self.dispatcher.blocked
                  else "too many to wait for, and no background delivery could start"
                  if self._handoff is not None
                  else f"no progress for {self.settings.flush_timeout:g} s (AZML_FLUSH_TIMEOUT)"
                  if not delivered else "")
        message = exit_message(self.dispatcher.whereabouts(), journal.path,
                               redact(self.spec.tracking_uri), reason,
                               run_gone=self.dispatcher.vanished is not None)
        if message:
            log.warning("%s", message)
        if running:
            log.warning("%d worker process(es) still running: what they log from now on is "
                        "kept in %s for `azml sync`", running, self.workers.directory)
        journal.close(prune=True)  # deletes the file only if nothing is left in it
        if interrupted is not None:
            raise interrupted
        lost = self.dispatcher.fatal or self.dispatcher.vanished
        if delivered and lost is None:
            self._say_where()  # never a link to a run the store no longer has
        return delivered and lost is None

    def _say_where(self) -> None:
        """One line on stderr with the run's page (as MLflow prints for its own runs), by the
        process that made the run; ``AZML_QUIET=1`` keeps it quiet."""
        if not (self.parent is None and self.spec.owned and self.run.run_id):
            return
        if self.settings.quiet:
            return
        store = getattr(self._sender, "store", None)
        # At WARNING, the level `azml` commands show by default (as az): `azml submit` says it
        # too; --only-show-errors or the azml logger at ERROR hide it. Redacted by the filter.
        log.warning("%s", where_line(self.spec.tracking_uri,
                                     getattr(store, "experiment_id", None), self.run.run_id,
                                     view=self._sender is not None and self._sender.view_saved))

    def _wait(self, files, patience: float | None = None) -> bool:
        """Wait until everything is delivered; False when the store made no progress for
        ``patience`` s (default ``AZML_FLUSH_TIMEOUT``), or when the rest is for a detached
        delivery (``_handoff`` then says how much and at what rate)."""
        dispatcher = self.dispatcher
        timeout = self.settings.flush_timeout if patience is None else patience
        total = sum(size for _, _, size in files)
        # A large outputs/ shows a byte-level bar on a terminal.
        bar = Progress(total, "azml: uploading outputs/") if total >= UPLOAD_BAR_BYTES and shown() else None
        started, points_before, left = time.monotonic(), dispatcher.delivered_points, None
        try:
            while not dispatcher.flush(0.5):
                if dispatcher.blocked is not None or dispatcher.closed:
                    return False  # credentials a person must fix, or closed: waiting cannot help
                if bar is not None:
                    bar.set(max(bar.done, uploaded(files)))  # a retry reads a file again
                now = time.monotonic()
                # The bound runs from the exit's start at the earliest: a sender still busy
                # starting (MLflow's import, a new store's migrations) gets its full time.
                if now - max(started, dispatcher.last_progress) > timeout:
                    return False
                if not self._may_hand_off() or now - started < HANDOFF_MEASURE:
                    continue
                if dispatcher.last_progress <= started:
                    continue  # nothing moved yet: the stall bound decides
                delivered = dispatcher.delivered_points - points_before
                if left is None:  # read once: the journal then counts down by what is sent
                    left = (dispatcher.journal.points(), delivered)
                remaining = left[0] - (delivered - left[1])
                rate = delivered / (now - started)
                bound = self.settings.handoff_after
                if now - started >= bound or (rate > 0 and remaining / rate > bound - (now - started)):
                    self._handoff = (remaining, rate)
                    return False
            if bar is not None:
                bar.set(total)
            return True
        finally:
            if bar is not None:
                bar.close()

    def _may_hand_off(self) -> bool:
        """A detached process can take this run's backlog: a main process's disk journal
        (none of it only in RAM), and ``AZML_HANDOFF_AFTER`` not 0."""
        return (self.main and self.settings.handoff_after > 0 and self.dispatcher.fatal is None
                and type(self.dispatcher.journal) is Journal)

    def _hand_off(self, journal) -> str | None:
        """Start the detached delivery of ``journal`` (still locked by us); the line saying so,
        or None if it could not start (the usual "run `azml sync`" line is said instead)."""
        from . import handoff as _handoff

        remaining, rate = self._handoff
        try:
            pid = _handoff.start(journal.path, self.settings.flush_timeout)
        except OSError as exc:
            log.warning("could not start a background delivery (%s)", exc)
            return None
        try:
            # Noted now, not only once that process holds the lock: between this exit and
            # its claim (its imports, ~0.2-0.5 s) `azml sync --list` said "ok" with the
            # records pending, as if no one would deliver them.
            journal.set_meta(delivered_by=pid)
        except Exception as exc:  # noqa: BLE001 - the delivery goes on; only --list is vaguer
            log.debug("cannot note the background delivery in the journal: %s", exc)
        return (f"{remaining:,} points still to deliver (~{remaining / rate:,.0f} s at "
                f"{rate:,.0f} points/s, longer than AZML_HANDOFF_AFTER="
                f"{self.settings.handoff_after:g} s): a background process (pid {pid}) "
                f"delivers them after this script exits; `azml sync --list` shows it, its "
                f"log is {_handoff.log_path(journal.path)}")


class WorkerSession(Session):
    """The session of a worker process (forked, spawned, or a subprocess given
    ``AZML_PARENT_RUN``): it logs to its parent's run through a spool (``_spool``) and never
    creates, ends or talks to the run; no thread, no MLflow, no SQLite."""

    main = False

    def __init__(self, settings: Settings, header: dict, keys: KeyMap | None = None,
                 steps: dict | None = None) -> None:
        self.settings = settings
        self.header = header
        self.spec = RunSpec(tracking_uri=header.get("tracking_uri") or settings.tracking_uri,
                            experiment_name=header.get("experiment_name") or "",
                            run_id=header.get("run_id"), run_key=header.get("run_key"),
                            owned=False, tags=header.get("tags") or {})
        self.status = FINISHED
        self.keys = keys or KeyMap()
        self.dispatcher = _spool.Spool(header["spools"], header, steps or {},
                                       settings.wait_timeout)
        self.run = _WorkerRun(self.dispatcher)
        # What the SDK v1 face reads of any session; a worker's table rows go out through its
        # spool too, and it never ends the run (``main`` is False: no end record, no outputs/).
        self.parent = None
        self.tables = Tables(self.dispatcher.put)
        self.before_close = [self.tables.close]
        self.nested_runs: list[Session] = []
        self._ended = self._closed = False

    def share(self) -> None:
        pass  # the parent's run already is

    def quiesce(self, timeout: float) -> bool:
        return True  # nothing of ours runs in another thread of a worker

    def resume(self) -> None:
        pass

    def forked(self) -> "WorkerSession":
        """A worker's child: a worker of the same parent, with a spool of its own."""
        return WorkerSession(self.settings, self.header, self._copied_keys(),
                             dict(self.dispatcher.steps))

    def abandon(self) -> None:
        self.dispatcher.abandon()

    def close(self, final: bool = True) -> bool:
        """Nothing to do: every record is in the spool from the moment it was logged."""
        return True


class _WorkerRun:
    """A worker's ``RunReady``: the run id as its parent publishes it."""

    def __init__(self, spool) -> None:
        self._spool = spool

    @property
    def run_id(self) -> str | None:
        return self._spool.run_id()

    def wait(self, timeout: float | None = None) -> str | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (run_id := self.run_id) is None and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.02)
        return run_id
