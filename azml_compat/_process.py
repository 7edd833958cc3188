"""The process-wide logger and the hooks that end its run: exit, uncaught exception, SIGTERM,
fork. Everything here is installed once, on the first ``get_azureml_logger()``."""
from __future__ import annotations

import atexit
import concurrent.futures.thread  # noqa: F401 - see _install_hooks
import os
import signal
import sys
import threading

from ._config import Settings
from ._logger import AzureMLLogger
from ._session import FAILED, KILLED, Session, run_spec

_lock = threading.Lock()
_logger: AzureMLLogger | None = None
_hooks_installed = False
FORK_RUN_WAIT = 10.0  # seconds a fork may wait for the parent's run to exist


def get_azureml_logger() -> AzureMLLogger:
    """The logger for this process's run; every call returns the same one.

    The first call decides the run (an active MLflow run, ``MLFLOW_RUN_ID``, else a new run
    in ``MLFLOW_EXPERIMENT_NAME`` or the project folder's experiment) and starts the
    background worker that creates it. It does not import MLflow or touch the network.
    """
    global _logger
    logger = _logger
    if logger is not None:
        return logger
    with _lock:
        if _logger is None:
            settings = Settings.from_env()
            _logger = AzureMLLogger(Session(settings, run_spec(settings)))
            _install_hooks()
        return _logger


def _session() -> Session | None:
    return _logger._session if _logger is not None else None


def _install_hooks() -> None:
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    # threading's exit hooks run while the interpreter is still whole (before atexit), so the
    # worker can still import MLflow if the script ends before it finished doing so. MLflow
    # imports concurrent.futures.thread, which registers such a hook itself and would fail
    # once shutdown has begun: it is imported above, on the caller's thread, for that reason.
    register = getattr(threading, "_register_atexit", atexit.register)
    register(_at_exit)
    previous_hook = sys.excepthook

    def excepthook(kind, value, traceback):
        session = _session()
        if session is not None:
            session.status = KILLED if issubclass(kind, KeyboardInterrupt) else FAILED
        previous_hook(kind, value, traceback)

    sys.excepthook = excepthook
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, _on_sigterm)
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


def _on_sigterm(signum, frame):
    """Unwind like Ctrl-C does, so ``finally`` blocks and the exit flush run; status KILLED."""
    session = _session()
    if session is not None:
        session.status = KILLED
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us at once
    raise SystemExit(128 + signum)


def _at_exit() -> None:
    session = _session()
    if session is not None:
        session.close()


def _before_fork() -> None:
    session = _session()
    if session is None:
        return
    session.share()  # parent and child now log to one run: steps from a shared allocator
    if session.run.run_id is None:
        session.run.wait(FORK_RUN_WAIT)
    # A child forked while one of our threads is inside SQLite or MLflow can hang on a lock
    # it inherits held (seen: in sqlite3.connect, and on an import lock mid-request).
    session.quiesce(FORK_RUN_WAIT)


def _after_fork_in_parent() -> None:
    session = _session()
    if session is not None:
        session.resume()


def _after_fork_in_child() -> None:
    global _logger, _lock
    _lock = threading.Lock()
    session = _session()
    if session is None:
        return
    child = session.forked()
    _logger = AzureMLLogger(child)
    util = sys.modules.get("multiprocessing.util")
    if util is not None:
        # multiprocessing children leave through os._exit, which skips atexit.
        util.Finalize(None, _at_exit, exitpriority=100)
