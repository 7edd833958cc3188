"""The Workbench logger: ``log``, ``upload``, ``flush``. Validates and stamps on the caller's
thread, then hands a record to the dispatcher; it never does I/O and never imports MLflow."""
from __future__ import annotations

import threading
import time

from .._core.records import ARTIFACT, METRIC
from .._redact import redact
from .._core.dispatcher import Handle
from .._core import process as _process
from .._core.face import Face
from .._core.paths import clean_artifact_path
from .._core.session import Session
from .._core.values import encode_text, to_float

_time_ns = time.time_ns
_lock = threading.Lock()
_logger: "AzureMLLogger | None" = None


def get_azureml_logger() -> "AzureMLLogger":
    """The logger for this process's run; every call returns the same one.

    The first call decides the run (the parent's, for a worker process; an active MLflow run,
    ``MLFLOW_RUN_ID``, else a new run in ``MLFLOW_EXPERIMENT_NAME`` or the project folder's
    experiment) unless SDK v1's ``Run`` already did (``_process.session()``), and starts the
    background worker that creates it. It does not import MLflow or touch the network.
    """
    global _logger
    logger = _logger
    if logger is not None:
        return logger
    with _lock:
        if _logger is None:
            _logger = _process.bind(AzureMLLogger(_process.session()))
        return _logger


class AzureMLLogger(Face):
    """What ``get_azureml_logger()`` returns. Every method is safe to call from any thread."""

    def __init__(self, session: Session) -> None:
        self._bind(session)

    @property
    def run_id(self) -> str | None:
        """The MLflow run id, once the background worker has created or found the run."""
        return self._session.run.run_id

    def wait_for_run(self, timeout: float | None = None) -> str | None:
        """Block until the run exists at the tracking store (or ``timeout``); its id or None."""
        return self._session.run.wait(timeout)

    def log(self, name: str, value) -> Handle:
        """Record ``value`` under ``name``: a metric point, a chart, a tag or a JSON artifact.

        Returns at once with a handle; ``handle.wait()`` blocks until the store has it.
        """
        key = self._key_of(name) if type(name) is str else None
        if key is None:
            key = self._session.new_key(name)
        kind = type(value)
        if kind is float or kind is int:
            point = value if kind is float else to_float(name, value)
            return self._put_stepped(METRIC, key, point, _time_ns() // 1_000_000)
        return self._record(name, key, value)

    def upload(self, artifact_path: str, content) -> Handle:
        """Store ``content`` (str or bytes) as the artifact at exactly ``artifact_path``."""
        path = clean_artifact_path(artifact_path)
        if isinstance(content, str):
            data = encode_text(content)
        elif isinstance(content, (bytes, bytearray, memoryview)):
            data = bytes(content)
        else:
            raise TypeError(
                f"upload({artifact_path!r}, ...): content must be str or bytes, "
                f"got {type(content).__name__}"
            )
        return self._put(ARTIFACT, path, data)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every record logged so far is persisted; False if ``timeout`` ran out."""
        return self._session.dispatcher.flush(timeout)

    def __repr__(self) -> str:
        spec = self._session.spec
        return f"<AzureMLLogger run={self.run_id or 'pending'} store={redact(spec.tracking_uri)}>"
