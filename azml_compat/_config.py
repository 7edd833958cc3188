"""Settings read from the environment, in one place, without importing MLflow."""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

DEFAULT_FLUSH_TIMEOUT = 30.0
DEFAULT_MAX_OUTPUT_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_JOURNAL_BYTES = 1024 * 1024 * 1024
DEFAULT_WAIT_TIMEOUT = 300.0  # seconds without delivery before a bare wait() gives up

# Tracking URI schemes MLflow ships a store for (plus a bare path, which MLflow treats as file:).
_SCHEMES = {"http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks",
            "databricks-uc", "uc"}
# The entry-point group MLflow's tracking-store registry loads plugins from.
_PLUGIN_GROUP = "mlflow.tracking_store"


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


def tracking_uri(cwd: str | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set (and well formed), else the embedded default for ``cwd``."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return check_tracking_uri(uri) if uri else default_tracking_uri(cwd)


# Variables whose values are secrets MLflow sends with every request.
CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN")
# A value shorter than this is not searched for: hiding every "ab" would garble every message.
_MIN_SECRET_LENGTH = 4
# ``scheme://userinfo@``: the userinfo runs to the authority's last "@" (a raw "@" in a
# password is still part of it), never past a "/", "?", "#" or a space.
_USERINFO = re.compile(r"\b([A-Za-z][\w+.-]*://)([^/\s?#]+)@")


def redact_text(text: str) -> str:
    """``text`` fit to print or store: the one place credentials are taken out.

    In every ``scheme://user:password@`` the password becomes ``***``; a user with no password
    (``http://TOKEN@host``, how tokens are often passed) becomes ``***`` itself; and the values
    of MLFLOW_TRACKING_PASSWORD/TOKEN become ``***`` wherever they appear.
    """
    text = _USERINFO.sub(_hide_userinfo, text)
    for name in CREDENTIAL_VARIABLES:
        secret = os.environ.get(name)
        if secret and len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, "***")
    return text


def _hide_userinfo(match: re.Match) -> str:
    user, colon, _ = match.group(2).partition(":")
    return f"{match.group(1)}{user + ':***' if colon else '***'}@"


def redact(uri: str) -> str:
    """``uri`` fit to print or store (see ``redact_text``)."""
    return redact_text(uri)


class RedactingFilter(logging.Filter):
    """Every record of the ``azml`` logger goes out through ``redact_text``: its messages
    carry URIs and store errors (MLflow's name the request's URL, credentials included)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):  # kept as arguments, for filters after this one
            record.msg = redact_text(str(record.msg))
            record.args = tuple(a if isinstance(a, (int, float)) else redact_text(str(a))
                                for a in record.args)
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is logging's to report
            return True
        record.msg, record.args = redact_text(message), None
        return True


logging.getLogger("azml").addFilter(RedactingFilter())


def plugin_schemes() -> set[str]:
    """Schemes that installed plugins register as MLflow tracking stores (``azureml`` from
    azureml-mlflow, ...), read from package metadata: MLflow itself is not imported."""
    from importlib.metadata import entry_points

    try:
        return {ep.name for ep in entry_points(group=_PLUGIN_GROUP)}
    except Exception:  # noqa: BLE001 - a broken package's metadata must not stop the check
        return set()


def check_tracking_uri(uri: str) -> str:
    """``uri``, or a ValueError naming it when no MLflow store could ever open it.

    Checked when the logger is created, so a typo fails the script at once instead of
    leaving every record stranded in the journal.
    """
    shown = redact(uri)  # the error names the URI, never its credentials
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise ValueError(f"MLFLOW_TRACKING_URI={shown!r} is not a valid URI: "
                         f"{redact_text(str(exc))}") from None
    scheme = parts.scheme.split("+", 1)[0]
    if not parts.scheme or (len(parts.scheme) == 1 and uri[1:2] == ":"):
        return uri  # a local path (MLflow treats it as a file store)
    if scheme not in _SCHEMES:
        plugins = plugin_schemes()
        if parts.scheme in plugins:
            return uri  # the plugin's store judges the rest of the URI
        installed = f"; plugins installed: {', '.join(sorted(plugins))}" if plugins else ""
        raise ValueError(
            f"MLFLOW_TRACKING_URI={shown!r}: unknown scheme {parts.scheme!r} (MLflow's own: "
            f"{', '.join(sorted(_SCHEMES))}{installed}; a plugin adds more, e.g. "
            "`pip install azureml-mlflow` for azureml://)")
    if scheme in ("http", "https") and not parts.hostname:
        raise ValueError(f"MLFLOW_TRACKING_URI={shown!r} names no host")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"MLFLOW_TRACKING_URI={shown!r} has an invalid port") from None
    return uri


def journal_dir() -> str:
    """``$AZML_HOME/journal``; ``AZML_HOME`` defaults to ``~/.azml``."""
    home = os.environ.get("AZML_HOME") or os.path.join(os.path.expanduser("~"), ".azml")
    return os.path.join(home, "journal")


def _env_number(name: str, default: float, cast=float):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must not be negative")
    return value


def http_timeout(default: float) -> float:
    """``AZML_HTTP_TIMEOUT``: seconds a request to a tracking server may take (else ``default``)."""
    return _env_number("AZML_HTTP_TIMEOUT", default) or default


@dataclass(frozen=True)
class Settings:
    """Everything a session needs from the environment, captured once at logger creation."""

    cwd: str = field(default_factory=lambda: os.path.abspath(os.getcwd()))
    tracking_uri: str = ""
    experiment_name: str = ""
    run_id: str | None = None
    flush_timeout: float = DEFAULT_FLUSH_TIMEOUT
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    journal_dir: str = field(default_factory=lambda: journal_dir())
    max_journal_bytes: int = DEFAULT_MAX_JOURNAL_BYTES
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT

    @classmethod
    def from_env(cls) -> "Settings":
        cwd = os.path.abspath(os.getcwd())
        return cls(
            cwd=cwd,
            tracking_uri=tracking_uri(cwd),
            # Workbench kept run history per project folder: default to its name.
            experiment_name=os.environ.get("MLFLOW_EXPERIMENT_NAME")
            or os.path.basename(cwd)
            or "Default",
            run_id=os.environ.get("MLFLOW_RUN_ID") or None,
            flush_timeout=_env_number("AZML_FLUSH_TIMEOUT", DEFAULT_FLUSH_TIMEOUT),
            max_output_bytes=_env_number("AZML_MAX_OUTPUT_BYTES", DEFAULT_MAX_OUTPUT_BYTES, int),
            journal_dir=journal_dir(),
            max_journal_bytes=_env_number("AZML_MAX_JOURNAL_BYTES", DEFAULT_MAX_JOURNAL_BYTES, int),
            wait_timeout=_env_number("AZML_WAIT_TIMEOUT", DEFAULT_WAIT_TIMEOUT),
        )

    @property
    def outputs_dir(self) -> str:
        return os.path.join(self.cwd, "outputs")
