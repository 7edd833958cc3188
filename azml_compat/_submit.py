"""``azml submit``: Workbench's local run. Creates the run, runs the script attached to it,
keeps its output as ``driver_log.txt``, uploads ``outputs/`` and sets the status from the exit
code (the script's own logger cannot see ``sys.exit(n)``)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import uuid

from ._config import Settings, redact
from ._history import DRIVER_LOG, STATUS
from ._outputs import scan, warn_skipped
from ._session import FAILED, FINISHED, KILLED, now_ms, script_tags
from ._store import RunSpec, connect

# Exit codes a shell gives a process ended by SIGINT, SIGKILL or SIGTERM.
KILLED_CODES = {128 + signal.SIGINT, 128 + signal.SIGKILL, 128 + signal.SIGTERM}


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


def submit(script: str, args, out=None, err=None) -> tuple[str, int]:
    """Run ``script`` as a new run; ``(run_id, exit code)``. Output is teed to ``out``/``err``
    (binary streams, default this process's) and into the run's ``driver_log.txt``."""
    out = out or sys.stdout.buffer
    err = err or sys.stderr.buffer
    if not os.path.isfile(script):
        raise FileNotFoundError(f"script {script!r} not found")
    settings = Settings.from_env()
    store = connect(settings.tracking_uri)
    tags = script_tags(script, args, settings.cwd)
    run_id = store.open_run(RunSpec(settings.tracking_uri, settings.experiment_name,
                                    start_time_ms=now_ms(), tags=tags, run_key=uuid.uuid4().hex))
    _say(err, f"azml: run {run_id} in experiment {settings.experiment_name!r} ({redact(settings.tracking_uri)})")
    env = {**os.environ, "MLFLOW_RUN_ID": run_id, "MLFLOW_TRACKING_URI": settings.tracking_uri,
           "AZML_UPLOAD_OUTPUTS": "0", "PYTHONUNBUFFERED": "1"}
    code = 1  # if the script cannot even start: Failed
    try:
        with tempfile.TemporaryDirectory(prefix="azml-submit-") as tmp:
            log_path = os.path.join(tmp, DRIVER_LOG)
            try:
                code = _run_teed(command(script, args), env, log_path, out, err)
            finally:
                store.upload_file(run_id, "", log_path)
                uploads, skipped = scan(settings.outputs_dir, settings.max_output_bytes)
                warn_skipped(skipped, settings.max_output_bytes)
                for artifact_dir, local, _ in uploads:
                    store.upload_file(run_id, artifact_dir, local)
    finally:
        store.end_run(run_id, status_of(code), now_ms())
    _say(err, f"azml: run {run_id} ended {STATUS[status_of(code)]} (exit code {exit_code(code)})")
    return run_id, exit_code(code)


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
