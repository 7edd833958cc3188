"""Settings read from the environment, in one place, without importing MLflow."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

DEFAULT_FLUSH_TIMEOUT = 30.0
DEFAULT_MAX_OUTPUT_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_JOURNAL_BYTES = 1024 * 1024 * 1024

# Tracking URI schemes MLflow ships a store for (plus a bare path, which MLflow treats as file:).
_SCHEMES = {"http", "https", "file", "sqlite", "postgresql", "mysql", "mssql", "databricks",
            "databricks-uc", "uc"}


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


def redact(uri: str) -> str:
    """``uri`` fit to print or store: a password in it (``http://user:pw@host``) becomes ``***``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    if parts.password is None:
        return uri
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def redact_text(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the password as ``***``."""
    return re.sub(r"(\w[\w+.-]*://[^/\s:@]+):[^@\s/]+@", r"\1:***@", text)


def check_tracking_uri(uri: str) -> str:
    """``uri``, or a ValueError naming it when no MLflow store could ever open it.

    Checked when the logger is created, so a typo fails the script at once instead of
    leaving every record stranded in the journal.
    """
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise ValueError(f"MLFLOW_TRACKING_URI={uri!r} is not a valid URI: {exc}") from None
    scheme = parts.scheme.split("+", 1)[0]
    if not parts.scheme or (len(parts.scheme) == 1 and uri[1:2] == ":"):
        return uri  # a local path (MLflow treats it as a file store)
    if scheme not in _SCHEMES:
        raise ValueError(
            f"MLFLOW_TRACKING_URI={uri!r}: unknown scheme {parts.scheme!r} "
            f"(expected one of {', '.join(sorted(_SCHEMES))})")
    if scheme in ("http", "https") and not parts.hostname:
        raise ValueError(f"MLFLOW_TRACKING_URI={uri!r} names no host")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValueError(f"MLFLOW_TRACKING_URI={uri!r} has an invalid port") from None
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
        )

    @property
    def outputs_dir(self) -> str:
        return os.path.join(self.cwd, "outputs")
