"""The process's session, the faces bound to it, and the hooks that end its run: exit, uncaught
exception, SIGTERM, fork. The exit hooks are registered at import; the others with the session.

One process, one session (one run, one dispatcher, one journal) whichever API a script uses:
the Workbench logger and SDK v1's ``Run`` are faces, thin objects holding the session's
hot-path callables (``_face.Face``). After ``os.fork`` every face is rebound to the child's
session, so objects the script already holds (module globals, class attributes) follow it."""
from __future__ import annotations

import atexit
# MLflow imports concurrent.futures.thread, which registers a threading exit hook itself and
# fails if that import happens once shutdown has begun (a script that logs one value and ends
# at once, while the worker is still importing MLflow): imported here, on the caller's thread.
import concurrent.futures.thread  # noqa: F401
import os
import signal
import sys
import threading
import time

from . import environment as _workbench_env
from .._config import Settings, pass_on
from .._consts import FORK_QUIESCE_WAIT
from .face import Face
from .records import FAILED, KILLED
from .session import Session, WorkerSession, run_spec

_session_lock = threading.Lock()
_lock = threading.Lock()
_current: Session | None = None  # the process's session, every face's
_faces: list[Face] = []  # every face bound to it (``_bind(session)``): rebound after a fork
_hooks_installed = False
_owner_pid = os.getpid()  # the process whose SIGTERM handler we installed
_previous_sigterm = None  # what SIGTERM did before we installed ours
_forking = False  # between our before-fork and after-fork hooks


def session() -> Session:
    """The session every face of this process logs through, made on first use (with the
    hooks). A process started by a logging script (its ``AZML_PARENT_RUN``) is that run's
    worker, unless ``MLFLOW_RUN_ID`` names another run; any other gets its own run and tells
    the processes it starts about it. Making it does not import MLflow or touch the network.
    """
    global _current
    current = _current
    if current is not None:
        return current
    with _session_lock:
        if _current is None:
            settings = Settings.from_env(cwd=_workbench_env.start_folder())
            parent = settings.parent_run
            # A run named explicitly (MLFLOW_RUN_ID other than the parent's) wins: a driver
            # script can still start scripts that log elsewhere.
            if parent is not None and settings.run_id in (None, parent.get("run_id")):
                current = WorkerSession(settings, settings.parent_run)
            else:
                current = Session(settings, run_spec(settings))
                pass_on("AZML_PARENT_RUN", current.worker_env())
            _current = current
            _install_hooks(current.main)
        return _current


def bind(face: Face) -> Face:
    """Bind ``face`` to the process's session and keep it bound across forks."""
    current = session()
    with _lock:
        face._bind(current)
        _faces.append(face)
    return face


def _session() -> Session | None:
    """The session made so far (None before any face asked for one)."""
    return _current


def _install_hooks(main: bool) -> None:
    """``main``: this process delivers its run, so SIGTERM ends the run KILLED; a worker keeps
    the default (``Pool.terminate()`` must end it at once, and its records are on disk)."""
    global _hooks_installed, _owner_pid, _previous_sigterm
    if _hooks_installed:
        return
    _hooks_installed = True
    previous_hook = sys.excepthook

    def excepthook(kind, value, traceback):
        session = _session()
        if session is not None:
            session.status = KILLED if issubclass(kind, KeyboardInterrupt) else FAILED
        previous_hook(kind, value, traceback)

    sys.excepthook = excepthook
    if main and threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            _owner_pid, _previous_sigterm = os.getpid(), signal.SIG_DFL
            signal.signal(signal.SIGTERM, _on_sigterm)
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)


def _on_sigterm(signum, frame):
    """Unwind like Ctrl-C does, so ``finally`` blocks and the exit flush run; status KILLED."""
    if os.getpid() != _owner_pid:
        # A forked child that got here before its at-fork hook restored the default (pool
        # workers are terminated with SIGTERM, maybe while still starting): die as it would
        # have without us. An exception raised inside an at-fork hook is swallowed, and
        # Pool.terminate() then waits forever for a worker that went on running.
        signal.signal(signal.SIGTERM, _previous_sigterm or signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    session = _session()
    if session is not None:
        session.status = KILLED
    if _forking or _inside_fork_hook(frame):
        # Raised inside an at-fork hook (ours, or logging's, which runs in the same window)
        # it would be swallowed by os.fork's hook runner and the script would go on: deliver
        # it again once the fork is done.
        threading.Thread(target=_redeliver, args=(signum,), daemon=True).start()
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends us at once
    raise SystemExit(128 + signum)


def _inside_fork_hook(frame) -> bool:
    hooks = (_before_fork.__code__, _after_fork_in_parent.__code__)
    while frame is not None:
        if frame.f_code in hooks:
            return True
        frame = frame.f_back
    return False


def _redeliver(signum: int) -> None:
    import _thread

    while _forking:
        time.sleep(0.005)
    time.sleep(0.01)  # at-fork hooks registered after ours are short: the fork is done by now
    _thread.interrupt_main(signum)  # runs _on_sigterm again, in the main thread


def _other_live_threads() -> bool:
    """True while a non-daemon thread other than this one still runs (it may still log)."""
    me = threading.current_thread()
    return any(t is not me and t is not threading.main_thread() and not t.daemon and t.is_alive()
               for t in threading.enumerate())


def _at_threading_exit() -> None:
    """The main thread has returned; non-daemon threads are not joined yet.

    If none is left, flush and end the run now, while ``concurrent.futures`` still accepts
    work (artifact clients upload through thread pools; Python shuts those down next). The
    journal stays open: whatever a user ``atexit`` handler logs later is delivered to the
    same run by ``_at_exit``. If other threads still run, everything waits for ``_at_exit``,
    which Python calls after joining them.
    """
    if not _other_live_threads() and not _live_workers():
        _close(final=False)


def _live_workers() -> bool:
    """True while a ``multiprocessing`` child runs (it may still log): Python joins them, and
    terminates the daemonic ones, in multiprocessing's own exit hook, after this one."""
    mp = sys.modules.get("multiprocessing")
    try:
        return bool(mp and mp.active_children())
    except Exception:  # noqa: BLE001 - multiprocessing's state at exit: go on without it
        return False


def _end_workers() -> None:
    """Let ``multiprocessing`` end its children now if its exit hook is still to come (it
    was imported before us: last in, first out), so the run ends after what they logged.
    Its hook does nothing when called a second time."""
    util = sys.modules.get("multiprocessing.util")
    if util is None or getattr(util, "_exiting", True) or not _live_workers():
        return
    try:
        util._exit_function()
    except Exception:  # noqa: BLE001 - their records stay in the spools for `azml sync`
        pass


def _at_exit() -> None:
    """The end of the run: after every non-daemon thread was joined and after the ``atexit``
    handlers registered after ``import azureml.logging`` (they run first: last in, first out)."""
    session = _session()
    if session is not None and session.main:
        _end_workers()
    _close(final=True)


def _close(final: bool) -> None:
    """Ctrl-C or SIGTERM while the exit waits for the store exits 130/143, the journal kept
    (an exception raised in an exit hook would print a traceback and leave the status 0)."""
    session = _session()
    if session is None:
        return
    try:
        session.close(final=final)
    except (KeyboardInterrupt, SystemExit) as exc:
        code = 130 if isinstance(exc, KeyboardInterrupt) else exc.code
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - closed or broken: nothing more to say
                pass
        os._exit(code if isinstance(code, int) else 1)


def _before_fork() -> None:
    global _forking
    _forking = True  # ours runs first of the hooks registered before it (last in, first out)
    session = _session()
    if session is None:
        return
    session.share()  # parent and child now log to one run: steps from a shared allocator
    # The child never calls MLflow or our SQLite, but its own code may import or use SQLite:
    # a child forked while one of our threads is inside SQLite or an import inherits that lock
    # held for good (seen: in sqlite3.connect; "partially initialized module" for an import).
    # Local work only, bounded; HTTP calls are not waited for.
    _wait_for_imports(FORK_QUIESCE_WAIT)
    session.quiesce(FORK_QUIESCE_WAIT)


def _after_fork_in_parent() -> None:
    global _forking
    session = _session()
    if session is not None:
        session.resume()
    _forking = False  # ours runs last of the hooks registered before it


def _after_fork_in_child() -> None:
    """Short, and nothing in it can be interrupted by a signal into a swallowed exception:
    dict copies and attribute stores, no file, no thread."""
    global _lock, _session_lock, _forking, _current
    _forking = False
    if _owner_pid != os.getpid() and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        try:
            signal.signal(signal.SIGTERM, _previous_sigterm or signal.SIG_DFL)
        except ValueError:  # not the main thread: _on_sigterm defers to the default itself
            pass
    _lock, _session_lock = threading.Lock(), threading.Lock()
    parent = _session()
    if parent is None:
        return
    _reset_import_locks()
    parent.abandon()  # the parent's lock on its journal, a worker's spool
    _current = child = parent.forked()
    for face in _faces:
        face._bind(child)


def _imports_of_other_threads() -> list:
    """Names of modules another thread is importing now (it holds their import lock)."""
    try:
        from importlib import _bootstrap

        me = threading.get_ident()
        names = []
        for name, ref in list(_bootstrap._module_locks.items()):
            lock = ref()
            if lock is not None and getattr(lock, "owner", None) not in (None, me):
                names.append(name)
        return names
    except Exception:  # noqa: BLE001 - another Python's internals: nothing known to wait for
        return []


def _wait_for_imports(timeout: float) -> bool:
    """Let imports under way in other threads finish before forking (local work: MLflow
    imports modules lazily on its first request of each kind). A child forked mid-import gets
    that module half-initialised for good: "cannot import name ... from partially initialized
    module", seen in pool workers forked during the parent's first HTTP request."""
    deadline = time.monotonic() + timeout
    while _imports_of_other_threads():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def _reset_import_locks() -> None:
    """Forget per-module import locks another thread held at the fork.

    MLflow retries failing imports (``dbruntime``, ``pyspark``) on every HTTP request; a child
    forked during one inherits that module's lock held by a thread that does not exist in it,
    and its own first request would wait on it for ever. Python re-creates a module's lock on
    demand, so dropping the dead ones is enough; the forking thread keeps its own.
    """
    try:
        from importlib import _bootstrap

        me = threading.get_ident()
        for name, ref in list(_bootstrap._module_locks.items()):
            lock = ref()
            if lock is None:
                continue
            inner = getattr(lock, "lock", None)
            if getattr(lock, "owner", None) not in (None, me) or (
                    inner is not None and getattr(inner, "locked", lambda: False)()):
                _bootstrap._module_locks.pop(name, None)
    except Exception:  # noqa: BLE001 - another Python's internals: nothing to reset there
        pass


# Registered at import, so Python calls them after the handlers a script registers later.
if hasattr(threading, "_register_atexit"):
    threading._register_atexit(_at_threading_exit)
atexit.register(_at_exit)
