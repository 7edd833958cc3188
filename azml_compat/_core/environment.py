"""What a Workbench run found around it before its first line ran: ``./outputs``, the share
directory, a run covering the whole process, and (in a Jupyter kernel) the notebook's name.

Everything here is cheap (no MLflow, no network): ``import azureml.logging`` calls
``prepare()`` as the first thing a legacy script does.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
import time

from .._config import raw, value

SHARE_VARIABLE = "AZUREML_NATIVE_SHARE_DIRECTORY"
SHARE_SETTING = "AZML_SHARE_DIRECTORY"
NOTEBOOK_FALLBACK = "notebook.ipynb"
# When the process's own start time cannot be read: the import of this module, which
# ``import azureml.logging`` (or ``azml_compat``) brings in as the script begins.
IMPORT_TIME_MS = time.time_ns() // 1_000_000

log = logging.getLogger("azml")


# -- ./outputs and the share directory -------------------------------------------------------
def share_directory(cwd: str, chosen: str | None = None) -> str:
    """The persistent folder of the project in ``cwd``, with a trailing separator.

    ``chosen`` or ``AZML_SHARE_DIRECTORY`` if set, else ``~/.azureml/share/<folder name>-<8 hex digits of the
    SHA-1 of its absolute path>/`` (Workbench's base folder; the hash keeps two projects that
    share a folder name apart).
    """
    # Read here, not from a logger's settings: the folder exists before the script's first
    # line (``import azureml.logging``), as Workbench had it, logger or not.
    chosen = chosen or value(SHARE_SETTING)
    if chosen:
        path = os.path.abspath(os.path.expanduser(chosen))
    else:
        cwd = os.path.abspath(cwd)
        digest = hashlib.sha1(cwd.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        name = f"{os.path.basename(cwd) or 'root'}-{digest}"
        path = os.path.join(os.path.expanduser("~"), ".azureml", "share", name)
    return os.path.join(path, "")  # scripts write os.environ[...] + "file.txt"


def prepare(cwd: str | None = None, share: str | None = None) -> dict:
    """Make ``<cwd>/outputs`` and the share directory; returns the environment a Workbench run
    has that this one lacks (``AZUREML_NATIVE_SHARE_DIRECTORY``, unless already set).

    Never raises: a folder that cannot be made is one warning, and the script's own open()
    then names the path.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    _makedirs(os.path.join(cwd, "outputs"), "the outputs folder")
    if raw(SHARE_VARIABLE):
        return {}
    share = share_directory(cwd, share)
    _makedirs(share, f"the share directory ({SHARE_VARIABLE})")
    return {SHARE_VARIABLE: share}


_start_folder: str | None = None  # where ``prepare_process()`` made ./outputs


def prepare_process() -> None:
    """``prepare()`` for this process: sets the share variable in ``os.environ``, and fixes
    the process's working folder (``start_folder``) as the one the script started in."""
    global _start_folder
    if _start_folder is None:
        _start_folder = os.path.abspath(os.getcwd())
    os.environ.update(prepare(_start_folder))


def start_folder() -> str | None:
    """The folder the script started in (``import azureml.logging``, its first line), or None
    if that import did not happen: the process's logger takes its ``./outputs``, experiment
    name and default store from here, whatever ``os.chdir`` came between."""
    return _start_folder


def _makedirs(path: str, what: str) -> None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        log.warning("cannot create %s %s: %s", what, path, exc.strerror or exc)


# -- the run covers the whole process ----------------------------------------------------------
def process_start_ms() -> int:
    """When this process started (ms since the epoch), from the kernel's own record.

    Linux: ``/proc/self/stat`` field 22 counts clock ticks from boot (on the boot-time clock,
    which includes suspend); the boot moment is ``time() - CLOCK_BOOTTIME``, precise to well
    under a millisecond (``/proc/stat``'s ``btime`` is rounded to a second: the fallback).
    Elsewhere, or if anything looks wrong, the time this module was imported.
    """
    try:
        with open("/proc/self/stat", "rb") as fh:
            stat = fh.read()
        # The command name (field 2) may hold spaces and parentheses: count from its end.
        ticks = int(stat[stat.rindex(b")") + 2:].split()[19])
        started = _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return IMPORT_TIME_MS
    ms = int(started * 1000)
    # A start in the future means clock trouble. (Not compared with IMPORT_TIME_MS: a child
    # forked after the import starts later than it.)
    return ms if 0 < ms <= time.time_ns() // 1_000_000 else IMPORT_TIME_MS


def _boot_time() -> float:
    clock = getattr(time, "CLOCK_BOOTTIME", None)
    if clock is not None:
        return time.time() - time.clock_gettime(clock)
    with open("/proc/stat", "rb") as fh:
        for line in fh:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise ValueError("no btime in /proc/stat")


# -- notebooks ---------------------------------------------------------------------------------
def notebook_path() -> str | None:
    """The notebook this process runs, if it is a Jupyter kernel; else None.

    A kernel is told its notebook only by its front end: VS Code sets ``__vsc_ipynb_file__`` in
    the user namespace, jupyter-server sets ``JPY_SESSION_NAME`` in the kernel's environment
    (ipykernel copies it to ``__session__``). nbclient and papermill set neither: then the
    notebook is ``notebook.ipynb``.
    """
    if "ipykernel" not in sys.modules:
        return None
    shell = None
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        try:
            shell = ipython.get_ipython()
        except Exception:  # noqa: BLE001 - a kernel without a shell still gets a name
            shell = None
    if shell is None or type(shell).__module__.split(".")[0] != "ipykernel":
        return None  # imported, but this process is not a kernel (e.g. a test runner)
    user_ns = getattr(shell, "user_ns", {}) or {}
    for candidate in (user_ns.get("__vsc_ipynb_file__"), os.environ.get("JPY_SESSION_NAME"),
                      user_ns.get("__session__")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return NOTEBOOK_FALLBACK


def script_identity(cwd: str) -> tuple[str, list, bool]:
    """``(script path, arguments, is a notebook)`` of the run this process makes."""
    notebook = notebook_path()
    if notebook is not None:
        if not os.path.isabs(notebook):
            # jupyter-server gives the path from its root and starts the kernel in the
            # notebook's folder: the name is what is known to be right.
            notebook = os.path.join(cwd, os.path.basename(notebook))
        return notebook, [], True
    script = sys.argv[0] if sys.argv and sys.argv[0] else "<console>"
    return script, sys.argv[1:], False


# -- MLflow's console output -------------------------------------------------------------------
def import_mlflow_quietly() -> None:
    """Import MLflow for our worker without its INFO lines on the user's console.

    ``import mlflow`` attaches a stderr handler at INFO to the ``mlflow`` logger, so a first run
    in a fresh folder prints "Creating initial MLflow database tables..." and "Updating database
    tables" in the middle of the script's output. When our worker is the first to import MLflow
    it raises the ``mlflow`` and ``alembic`` loggers to WARNING. It leaves them alone when the
    script imported MLflow itself (its output is the script's) or set ``MLFLOW_LOGGING_LEVEL``.
    Neither the root logger nor any other logger is touched.
    """
    first = "mlflow" not in sys.modules
    import mlflow  # noqa: F401 - this import is what configures MLflow's loggers

    if first and not raw("MLFLOW_LOGGING_LEVEL"):
        for name in ("mlflow", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
