"""Every setting the library and ``azml`` read, declared once; read and checked only here.

``SETTINGS`` is the declaration (name, type, default, one line of doc), modelled on MLflow's
``mlflow/environment_variables.py``; docs/settings.md's table and the tests' scrub list come
from it. ``Settings.from_env`` reads it when a logger is made (and ``azml`` reads the few a
command uses); modules take their values from the ``Settings`` passed down to them, never from
``os.environ``. Defaults and tuning constants live in ``_consts``, credential redaction in
``_redact``. Nothing here imports MLflow or reads the environment at import time.

A bad value: a training script must not crash over a logging tuning setting, so the library
warns once on the ``azml`` logger (one line naming the variable and its value) and uses the
default; ``azml`` commands (``strict``) fail with that line instead. A malformed
``MLFLOW_TRACKING_URI`` fails at once in both: every record would be stranded otherwise. An
unknown ``AZML_*`` name (a typo) warns once with the closest known name.
"""
from __future__ import annotations

import difflib
import json
import logging
import math
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ._consts import (OUTPUT_FORMATS, DEFAULT_FLUSH_TIMEOUT, DEFAULT_HANDOFF_AFTER,
                      DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_JOURNAL_BYTES, DEFAULT_MAX_OUTPUT_BYTES,
                      DEFAULT_WAIT_TIMEOUT)
from ._exceptions import ConfigError
from ._redact import redact, redact_text

log = logging.getLogger("azml")

# Tracking URI schemes MLflow ships a store for (plus a bare path, which MLflow treats as file:).
_SCHEMES = {"http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks",
            "databricks-uc", "uc"}
# The entry-point group MLflow's tracking-store registry loads plugins from.
_PLUGIN_GROUP = "mlflow.tracking_store"


class _Bad(ValueError):
    """What is wrong with a value (``is not a number``), said after ``NAME='value'``."""


# -- value types -----------------------------------------------------------------------------------
def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Bad("is not a number") from None
    if math.isnan(value) or value < 0:
        raise _Bad("must not be negative")
    return value


def seconds(text: str) -> float:
    """A number of seconds, 0 or more."""
    return _number(text)


def positive_seconds(text: str) -> float:
    """A number of seconds, more than 0."""
    value = _number(text)
    if value == 0:
        raise _Bad("must be more than 0")
    return value


def count(text: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(text.strip())
    except ValueError:
        raise _Bad("is not a whole number") from None
    if value < 0:
        raise _Bad("must not be negative")
    return value


def positive_count(text: str) -> int:
    """A whole number, 1 or more."""
    value = count(text)
    if value == 0:
        raise _Bad("must be at least 1")
    return value


def switch(text: str) -> bool:
    """1/0 (also true/false, yes/no, on/off)."""
    word = text.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise _Bad("is not 1 or 0")


def output_format(text: str) -> str:
    """One of az's ``--output`` formats, any case."""
    word = text.strip().lower()
    if word not in OUTPUT_FORMATS:
        raise _Bad(f"is not an output format ({', '.join(OUTPUT_FORMATS)})")
    return word


def text(value: str) -> str:
    """Any text (a name, an id, a path)."""
    return value


def uri(value: str) -> str:
    """A tracking URI some MLflow store can open (``check_tracking_uri``)."""
    return check_tracking_uri(value)


def parent_run(value: str) -> dict:
    """What a process's logger tells the processes it starts (``Session.worker_env``)."""
    try:
        found = json.loads(value)
    except ValueError:
        found = None
    if not isinstance(found, dict) or not isinstance(found.get("spools"), str):
        raise _Bad("is not what a parent script sets (a JSON object naming its spools)")
    return found


# -- the declaration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One environment variable we read: its type (a function from its text to its value),
    default, one line of doc (docs/settings.md's "what" column), and the ``Settings`` field it fills.

    ``shown`` is the default as docs/settings.md says it (for defaults that depend on the folder).
    ``fatal``: a bad value fails even in a training script (the tracking URI).
    """

    name: str
    type: object
    default: object
    doc: str
    field: str | None = None
    shown: str | None = None
    fatal: bool = False

    @property
    def shown_default(self) -> str:
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return ""
        if isinstance(self.default, bool):
            return "1" if self.default else "0"
        return f"{self.default:g}" if isinstance(self.default, float) else str(self.default)

    def raw(self, environ=None) -> str | None:
        """The variable's text; None when unset or blank (the default applies)."""
        value = (os.environ if environ is None else environ).get(self.name)
        return None if value is None or value.strip() == "" else value

    def get(self, environ=None, strict: bool = True):
        """The value, checked: the default when unset. A bad value raises ``ConfigError``
        (``strict``, and always when ``fatal``) or warns once and gives the default."""
        raw = self.raw(environ)
        if raw is None:
            return self.default
        try:
            return self.type(raw)
        except ConfigError:
            raise  # already the whole line (the tracking URI's own check)
        except _Bad as exc:
            message = f"{self.name}={raw!r} {exc}"
        if strict or self.fatal:
            raise ConfigError(message)
        _warn_once(f"{self.name}={raw!r}",
                   f"{message}; using the default ({self.shown_default or 'unset'})")
        return self.default


SETTINGS: tuple[Setting, ...] = (
    Setting("MLFLOW_TRACKING_URI", uri, None,
            "where runs go (a relative local path, `sqlite:///rel.db`, is made absolute against "
            "the start folder); a malformed one is an error at `get_azureml_logger()`",
            field="tracking_uri", shown="`sqlite:///mlflow.db` in the working directory",
            fatal=True),
    Setting("MLFLOW_EXPERIMENT_NAME", text, None, "experiment of new runs",
            field="experiment_name", shown="the working directory's name"),
    Setting("MLFLOW_RUN_ID", text, None, "attach to this run (never ended by us)",
            field="run_id"),
    Setting("MLFLOW_TRACKING_USERNAME", text, None,
            "user for a server's basic auth (also `~/.mlflow/credentials`), MLflow's rules"),
    Setting("MLFLOW_TRACKING_PASSWORD", text, None,
            "password for a server's basic auth; never printed"),
    Setting("MLFLOW_TRACKING_TOKEN", text, None, "bearer token for a server; never printed"),
    Setting("MLFLOW_LOGGING_LEVEL", text, None,
            "MLflow's own; when set, MLflow's INFO lines are left as MLflow configures them"),
    Setting("AZUREML_NATIVE_SHARE_DIRECTORY", text, None,
            "Workbench's folder for data kept between runs; set for the script when unset "
            "(see `docs/api.md`)", shown="`AZML_SHARE_DIRECTORY`"),
    Setting("AZML_FLUSH_TIMEOUT", seconds, DEFAULT_FLUSH_TIMEOUT,
            "seconds without progress before the exit stops waiting for the store",
            field="flush_timeout"),
    Setting("AZML_HANDOFF_AFTER", seconds, DEFAULT_HANDOFF_AFTER,
            "seconds of moving delivery the exit waits for; a backlog that would take longer "
            "is delivered by a detached process after the script exits (`azml sync --list` "
            "shows it); 0: the exit waits while delivery moves", field="handoff_after"),
    Setting("AZML_MAX_OUTPUT_BYTES", count, DEFAULT_MAX_OUTPUT_BYTES,
            "larger files in `outputs/` are skipped with a warning",
            field="max_output_bytes", shown="536870912 (512 MB)"),
    Setting("AZML_UPLOAD_OUTPUTS", switch, True,
            "0: do not upload `outputs/` at exit (`azml submit` does it)",
            field="upload_outputs"),
    Setting("AZML_HOME", text, None, "the journal lives in `$AZML_HOME/journal`",
            shown="`~/.azml`"),
    Setting("AZML_SHARE_DIRECTORY", text, None,
            "the folder `AZUREML_NATIVE_SHARE_DIRECTORY` points to when it is unset (see `docs/api.md`)",
            field="share_directory", shown="`~/.azureml/share/<project>-<hash>/`"),
    Setting("AZML_MAX_JOURNAL_BYTES", count, DEFAULT_MAX_JOURNAL_BYTES,
            "past it, new records wait in memory (warning)",
            field="max_journal_bytes", shown="1073741824 (1 GiB)"),
    Setting("AZML_WAIT_TIMEOUT", seconds, DEFAULT_WAIT_TIMEOUT,
            "seconds without any record delivered before `handle.wait()` (no timeout given) "
            "raises; 0: wait for ever", field="wait_timeout"),
    Setting("AZML_MAX_IN_FLIGHT", positive_count, DEFAULT_MAX_IN_FLIGHT,
            "most concurrent metric batches to a tracking server (fewer when the server takes "
            "them faster so: measured while sending)", field="max_in_flight"),
    Setting("AZML_HTTP_TIMEOUT", positive_seconds, None,
            "seconds one whole request to a tracking server may take (connect, headers, body; "
            "plus a body's size at 256 KiB/s) before it is retried",
            field="http_timeout", shown="30 (a script), 10 (`azml` commands)"),
    Setting("AZML_GC_FREEZE", switch, True,
            "0: do not `gc.freeze()` after importing MLflow (see `bench/README.md`)",
            field="gc_freeze"),
    Setting("AZML_QUIET", switch, False,
            "1: no line at exit saying where the run is (its UI page, or the `python -m mlflow ui` command)",
            field="quiet"),
    Setting("AZML_PARENT_RUN", parent_run, None,
            "set by a script's logger for the processes it starts (`spawn`/`forkserver` "
            "workers, subprocesses): they log to its run through it; not for users to set",
            field="parent_run"),
    Setting("AZML_SUBMITTED_RUN", text, None,
            "set by `azml submit` for its script: the run it made, which the script describes",
            field="submitted_run"),
    Setting("AZML_OUTPUT", output_format, None,
            "default `-o` of every `azml` command (`json`, `jsonc`, `yaml`, `yamlc`, `table`, "
            "`tsv`, `none`); if unset, az's own `AZURE_CORE_OUTPUT` is used",
            field="output", shown="table on a terminal, json when piped"),
    Setting("AZURE_CORE_OUTPUT", output_format, None,
            "az's own default output format, honoured when `AZML_OUTPUT` is unset",
            field="az_output"),
    Setting("AZURE_CORE_NO_COLOR", switch, False,
            "az's own: 1 turns off the colour of `-o jsonc`/`yamlc` (and of nothing else) "
            "even on a terminal", field="no_color"),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
_PREFIX = "AZML_"


def pass_on(name: str, value: str) -> None:
    """Set the declared variable ``name`` for the processes this one starts (they inherit
    ``os.environ``): how a script's workers learn its run (``AZML_PARENT_RUN``)."""
    os.environ[BY_NAME[name].name] = value


def raw(name: str) -> str | None:
    """The text of the declared variable ``name`` (None when unset or blank), for the few
    reads that cannot wait for a ``Settings`` (see each caller) and for MLflow's own
    variables, which MLflow itself judges."""
    return BY_NAME[name].raw()


def value(name: str):
    """The declared setting ``name``, read now the library's way (a bad value warns once and
    gives the default): for the share directory, which must exist before a script's first
    line, before any logger."""
    return BY_NAME[name].get(strict=False)


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("%s", message)


def warn_unknown(environ=None) -> None:
    """One warning per ``AZML_*`` variable we do not know (a typo), with the closest name."""
    environ = os.environ if environ is None else environ
    known = [name for name in BY_NAME if name.startswith(_PREFIX)]
    for name in sorted(environ):
        if name.startswith(_PREFIX) and name not in BY_NAME:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}?" if close else "see docs/settings.md"
            _warn_once(name, f"{name} is not a setting ({hint}); it is ignored")


def default_tracking_uri(cwd: str | None = None) -> str:
    """MLflow 3's own default, pinned to an absolute path so a later ``chdir`` cannot move it.

    Like MLflow: ``sqlite:///mlflow.db`` in the working directory, unless ``./mlruns`` already
    holds file-store experiments (``mlruns/<n>/meta.yaml``), in which case that store is kept.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    mlruns = os.path.join(cwd, "mlruns")
    try:
        with os.scandir(mlruns) as entries:
            for entry in entries:
                if entry.is_dir() and entry.name.isdigit() and os.path.lexists(
                    os.path.join(entry.path, "meta.yaml")
                ):
                    return "file://" + mlruns
    except OSError:
        pass
    return "sqlite:///" + os.path.join(cwd, "mlflow.db")


def plugin_schemes() -> set[str]:
    """Schemes that installed plugins register as MLflow tracking stores (``azureml`` from
    azureml-mlflow, ...), read from package metadata: MLflow itself is not imported.

    The ``entry_points.txt`` of every ``*.dist-info``/``*.egg-info`` on ``sys.path`` is read
    directly: ``importlib.metadata.entry_points`` (imported, then parsing every distribution's
    metadata) took 103-212 ms against 2-35 ms for this, timed alone on a loaded machine, and
    the SQLite default asks on every run whether a plugin claims ``sqlite``.
    """
    import sys

    found = set()
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                found |= _entry_point_names(os.path.join(folder or ".", name, "entry_points.txt"))
    return found


def _entry_point_names(path: str) -> set[str]:
    """The names under ``[mlflow.tracking_store]`` in one ``entry_points.txt`` (INI-style)."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):  # none, or a broken package's: it registers nothing
        return set()
    names, inside = set(), False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            inside = line == f"[{_PLUGIN_GROUP}]"
        elif inside and "=" in line and not line.startswith(("#", ";")):
            names.add(line.split("=", 1)[0].strip())
    return names


def check_tracking_uri(uri: str) -> str:
    """``uri``, or a ``ConfigError`` naming it when no MLflow store could ever open it.

    Checked when the logger is created, so a typo fails the script at once instead of
    leaving every record stranded in the journal.
    """
    shown = redact(uri)  # the error names the URI, never its credentials
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise ConfigError(f"MLFLOW_TRACKING_URI={shown!r} is not a valid URI: "
                         f"{redact_text(str(exc))}") from None
    scheme = parts.scheme.split("+", 1)[0]
    if not parts.scheme or (len(parts.scheme) == 1 and uri[1:2] == ":"):
        return uri  # a local path (MLflow treats it as a file store)
    if scheme not in _SCHEMES:
        plugins = plugin_schemes()
        if parts.scheme in plugins:
            return uri  # the plugin's store judges the rest of the URI
        installed = f"; plugins installed: {', '.join(sorted(plugins))}" if plugins else ""
        raise ConfigError(
            f"MLFLOW_TRACKING_URI={shown!r}: unknown scheme {parts.scheme!r} (MLflow's own: "
            f"{', '.join(sorted(_SCHEMES))}{installed}; a plugin adds more, e.g. "
            "`pip install azureml-mlflow` for azureml://)")
    if scheme in ("http", "https") and not parts.hostname:
        raise ConfigError(f"MLFLOW_TRACKING_URI={shown!r} names no host")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ConfigError(f"MLFLOW_TRACKING_URI={shown!r} has an invalid port") from None
    return uri


def absolute_uri(uri: str, cwd: str) -> str:
    """``uri`` with a relative local path made absolute against ``cwd``: ``sqlite:///rel.db``,
    ``file:rel`` and a bare path. Journaled as written, a relative one named another file
    after a ``chdir``, or for `azml sync` run from another folder (which made a stray, empty
    ``rel.db`` there and failed with "Run ... not found"). Other URIs are returned unchanged."""
    scheme, _, rest = uri.partition(":")
    if scheme.split("+", 1)[0] == "sqlite" and rest.startswith("///"):
        path, mark, query = rest[3:].partition("?")
        if path and path != ":memory:" and not os.path.isabs(path):
            return f"{scheme}:///{os.path.normpath(os.path.join(cwd, path))}{mark}{query}"
        return uri
    if scheme == "file" and rest and not rest.startswith("/"):
        return "file://" + os.path.normpath(os.path.join(cwd, rest))
    if not urlsplit(uri).scheme and not os.path.isabs(uri):
        return os.path.normpath(os.path.join(cwd, uri))
    return uri


def tracking_uri(cwd: str | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set (and well formed; a relative local path made absolute),
    else the embedded default for ``cwd``."""
    cwd = os.path.abspath(cwd or os.getcwd())
    chosen = BY_NAME["MLFLOW_TRACKING_URI"].get()
    return absolute_uri(chosen, cwd) if chosen else default_tracking_uri(cwd)


def journal_dir(home: str | None = None) -> str:
    """``$AZML_HOME/journal``; ``AZML_HOME`` defaults to ``~/.azml``."""
    home = home or raw("AZML_HOME") or os.path.join(os.path.expanduser("~"), ".azml")
    return os.path.join(home, "journal")


@dataclass(frozen=True)
class Settings:
    """Everything the library needs from the environment, read and checked once when the
    logger is made (``from_env``) and passed down: session, dispatcher, sender, store."""

    cwd: str = field(default_factory=lambda: os.path.abspath(os.getcwd()))
    tracking_uri: str = ""
    experiment_name: str = ""
    run_id: str | None = None
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT
    handoff_after: float = DEFAULT_HANDOFF_AFTER
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    journal_dir: str = field(default_factory=lambda: journal_dir())
    max_journal_bytes: int = DEFAULT_MAX_JOURNAL_BYTES
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT
    upload_outputs: bool = True
    share_directory: str | None = None  # None: Workbench's default folder for the project
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    http_timeout: float | None = None  # None: the path's own (_rest.request_timeout)
    gc_freeze: bool = True
    quiet: bool = False
    submitted_run: str | None = None
    parent_run: dict | None = None  # set: this process is a worker of that run (``_spool``)
    output: str | None = None  # the `azml` commands' default -o (None: by the terminal)
    az_output: str | None = None
    no_color: bool = False

    @classmethod
    def from_env(cls, names=None, *, strict: bool = False, environ=None,
                 cwd: str | None = None) -> "Settings":
        """The settings ``names`` (default: all) from ``environ``; the others keep their
        defaults, so a command that reads only what it uses is never failed by the rest.
        ``strict`` (the ``azml`` commands): a bad value raises ``ConfigError``; else (a
        training script) it warns once and the default is used."""
        environ = os.environ if environ is None else environ
        warn_unknown(environ)
        cwd = os.path.abspath(cwd or os.getcwd())
        chosen = SETTINGS if names is None else [BY_NAME[name] for name in names]
        read = {s.name: s.get(environ, strict=strict) for s in chosen}
        values = {s.field: read[s.name] for s in chosen if s.field and read[s.name] is not None}
        chosen = values.get("tracking_uri")
        values["tracking_uri"] = absolute_uri(chosen, cwd) if chosen else default_tracking_uri(cwd)
        # Workbench kept run history per project folder: default to its name.
        values["experiment_name"] = (values.get("experiment_name") or os.path.basename(cwd)
                                     or "Default")
        home = read.get("AZML_HOME") or BY_NAME["AZML_HOME"].raw(environ)
        return cls(cwd=cwd, journal_dir=journal_dir(home), **values)

    @property
    def outputs_dir(self) -> str:
        return os.path.join(self.cwd, "outputs")
