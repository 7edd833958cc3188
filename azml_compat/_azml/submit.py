"""``azml submit``: Workbench's local run. Creates the run, runs the script attached to it,
keeps its output as ``driver_log.txt``, uploads ``outputs/`` and sets the status from the exit
code (the script's own logger cannot see ``sys.exit(n)``), all through the library's journal."""
from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import NamedTuple
import uuid

from .._config import Settings
from .._consts import STARTUP_ALLOWANCE
from .._exceptions import RunNotCreated
from .._core.query import unreachable
from .._redact import redact
from .._core.http import request_timeout
from .._core.runs import DRIVER_LOG, STATUS
from .._core.session import Session, now_ms, script_tags
from .._core.sender import _describe
from .._core.records import FAILED, FILE, FINISHED, KILLED, RunSpec
from .._core.environment import prepare

# Exit codes a shell gives a process ended by SIGINT, SIGKILL or SIGTERM.
KILLED_CODES = {128 + signal.SIGINT, 128 + signal.SIGKILL, 128 + signal.SIGTERM}
# MLflow's words for a server that did not answer at all (said as `unreachable` says it).
_UNREACHABLE = re.compile(r"Max retries exceeded|Failed to establish a new connection|"
                          r"^connection failed: ")


def command(script: str, args) -> list[str]:
    """Python scripts run with this interpreter; anything else must be executable."""
    if script.endswith(".py"):
        return [sys.executable, script, *args]
    return [os.path.abspath(script), *args]


def status_of(code: int) -> str:
    if code == 0:
        return FINISHED
    return KILLED if code < 0 or code in KILLED_CODES else FAILED


def exit_code(code: int) -> int:
    """A signal death as the shell reports it (128 + signal)."""
    return 128 - code if code < 0 else code


class Submitted(NamedTuple):
    run_id: str
    exit_code: int
    delivered: bool  # False: some records (at least the end) wait in the journal for sync


def submit(script: str, args, out=None, err=None) -> Submitted:
    """Run ``script`` as a new run; ``(run_id, exit code, delivered)``. Output is teed to
    ``out``/``err`` (binary streams, default this process's) and into ``driver_log.txt``.

    The run is the library's: a ``Session`` that journals every record and delivers it in the
    background. ``driver_log.txt``, ``outputs/`` and the end of the run are journaled records,
    so a store that goes away while the script runs costs a bounded wait at the end
    (``AZML_FLUSH_TIMEOUT`` of no progress) and ``azml sync`` delivers the rest later. The exit
    code is always the script's.
    """
    out = out or sys.stdout.buffer
    err = err or sys.stderr.buffer
    if not os.path.isfile(script):
        raise FileNotFoundError(f"script {script!r} not found")
    settings = Settings.from_env(strict=True)  # a bad value is the command's one error line
    session = Session(settings, RunSpec(settings.tracking_uri, settings.experiment_name,
                                        start_time_ms=now_ms(),
                                        tags=script_tags(script, args, settings.cwd),
                                        run_key=uuid.uuid4().hex, new_key=True))
    run_id = _wait_for_run(session)
    _say(err, f"azml: run {run_id} in experiment {settings.experiment_name!r} "
              f"({redact(settings.tracking_uri)})")
    # What Workbench had ready before the script started: ./outputs and the share directory.
    env = {**os.environ, **prepare(settings.cwd, settings.share_directory), "MLFLOW_RUN_ID": run_id,
           "MLFLOW_TRACKING_URI": settings.tracking_uri, "AZML_UPLOAD_OUTPUTS": "0",
           # the run is this script's: its logger keeps the run's description up to date
           "AZML_SUBMITTED_RUN": run_id,
           "PYTHONUNBUFFERED": "1"}
    code = 1  # if the script cannot even start: Failed
    with tempfile.TemporaryDirectory(prefix="azml-submit-") as tmp:
        log_path = os.path.join(tmp, DRIVER_LOG)
        try:
            code = _run_teed(command(script, args), env, log_path, out, err)
        finally:
            # The log first, then outputs/ and the end (Session.close): one ordered journal.
            # A log not delivered by then is copied into the journal when it closes (like any
            # file record), so the temporary one can go.
            session.dispatcher.put(FILE, "", log_path)
            session.status = status_of(code)
            delivered = session.close()
    _say(err, f"azml: run {run_id} ended {STATUS[status_of(code)]} (exit code {exit_code(code)})")
    return Submitted(run_id, exit_code(code), delivered)


def _wait_for_run(session: Session) -> str:
    """The run's id, once the session's sender has created it with the usual retry policy.

    The script needs the id (``MLFLOW_RUN_ID``) before it starts, so this is bounded: once the
    store has been failing for ``AZML_FLUSH_TIMEOUT`` seconds (the exit flush's bound), or
    nothing at all came back within that plus ``STARTUP_ALLOWANCE``, the submission fails
    before anything ran. The sender's "retrying in the background" warnings are held back
    meanwhile: the script will not be started, so the one line to say is why.
    """
    bound = flush_bound = session.settings.flush_timeout
    total = bound + STARTUP_ALLOWANCE
    if session.spec.tracking_uri.startswith(("http://", "https://")):
        # A server needs no MLflow import and no migrations: the run is one request away,
        # and a command must answer within 15 s on a server that is down or never answers.
        bound = min(bound, request_timeout(cli=True))
        total = request_timeout(cli=True)
    held = _HoldWarnings()
    logging.getLogger("azml").addFilter(held)
    started = time.monotonic()
    try:
        while session.run.wait(0.1) is None and session.dispatcher.fatal is None:
            now = time.monotonic()
            if held.first_failure is not None and now - held.first_failure >= bound:
                break
            if now - started >= total:
                break
    finally:
        logging.getLogger("azml").removeFilter(held)
    if session.run.run_id is not None:
        return session.run.run_id
    session.dispatcher.close()  # its sender stops retrying: nothing is left running
    session.dispatcher.journal.close(prune=True)  # holds no record: deleted
    uri = session.spec.tracking_uri
    if session.dispatcher.fatal is not None:
        what = f"cannot create the run at {redact(uri)} ({_describe(session.dispatcher.fatal)})"
    elif held.last is not None and _UNREACHABLE.search(held.last):
        setting = " (AZML_FLUSH_TIMEOUT)" if bound == flush_bound else ""
        what = f"{unreachable(uri, held.last)}, still after {bound:g} s{setting}"
    elif held.last is not None:
        what = (f"cannot create the run at {redact(uri)} (still failing after {bound:g} s, "
                f"AZML_FLUSH_TIMEOUT: {held.last})")
    else:
        what = f"cannot create the run at {redact(uri)} (no answer within {total:g} s)"
    raise RunNotCreated(f"{what}; the run was not created and the script was not started")


class _HoldWarnings(logging.Filter):
    """Swallows the ``azml`` logger's records, remembering when the first came (the sender
    warns at its first failed attempt) and the last one's cause (its last argument: the
    sender's warnings end with the error)."""

    first_failure: float | None = None
    last: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if self.first_failure is None:
            self.first_failure = time.monotonic()
        args = record.args if isinstance(record.args, tuple) else ()
        self.last = str(args[-1]) if args else record.getMessage()
        return False


def _say(stream, line: str) -> None:
    stream.write((line + "\n").encode())
    stream.flush()


def _run_teed(cmd, env, log_path: str, out, err) -> int:
    """Run ``cmd``, copying its stdout/stderr live to ``out``/``err`` and both, in arrival
    order, to ``log_path``. SIGTERM is passed on; Ctrl-C reaches the child from the terminal."""
    lock = threading.Lock()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                bufsize=0)

        def pump(source, sink):
            while chunk := source.read(65536):
                sink.write(chunk)
                sink.flush()
                with lock:
                    log.write(chunk)

        pumps = [threading.Thread(target=pump, args=pair, daemon=True)
                 for pair in ((proc.stdout, out), (proc.stderr, err))]
        for thread in pumps:
            thread.start()
        restore = _forward_signals(proc)
        try:
            code = proc.wait()
            for thread in pumps:
                thread.join()
        finally:
            restore()
    return code


def _forward_signals(proc):
    """While the child runs: SIGTERM goes on to it, SIGINT is left to it. Returns an undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {
        signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM)),
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
    }
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]
