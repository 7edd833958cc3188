"""The Workbench logger: ``log``, ``upload``, ``flush``. Validates and stamps on the caller's
thread, then hands a record to the dispatcher; it never does I/O and never imports MLflow."""
from __future__ import annotations

import json
import threading
import time

from ._records import ARTIFACT, MAX_TAG_VALUE, METRIC, SERIES, TAG
from ._redact import redact
from ._dispatcher import DoneHandle, Handle
from . import _process
from ._face import Face
from ._paths import clean_artifact_path
from ._session import Session
from ._values import DOCUMENT, NOTHING, POINT, SERIES as SERIES_VALUE, TEXT, classify, encode_text, to_float

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
        return self._log_other(name, key, value)

    def _log_other(self, name: str, key: str, value) -> Handle:
        timestamp = _time_ns() // 1_000_000  # taken before the (possibly slow) conversion
        kind, payload = classify(name, value)
        if kind == POINT:
            return self._put_stepped(METRIC, key, payload, timestamp)
        if kind == SERIES_VALUE:
            return self._put_stepped(SERIES, key, payload, timestamp, len(payload))
        if kind == TEXT:
            if len(payload) > MAX_TAG_VALUE:
                # MLflow caps tag values at 8,000 characters: keep the whole text as a file.
                path = f"metrics/{key}.txt"
                self._put(ARTIFACT, path, encode_text(payload))
                note = f"... [truncated; full text in artifact {path}]"
                payload = payload[: MAX_TAG_VALUE - len(note)] + note
            return self._put(TAG, key, payload)
        if kind == DOCUMENT:
            type_name, content = payload
            document = {"name": name, "type": type_name, "timestamp": timestamp, "value": content}
            data = encode_text(json.dumps(document, ensure_ascii=False, allow_nan=False))
            return self._put(ARTIFACT, f"metrics/{key}.json", data)
        if kind == NOTHING:
            return DoneHandle()
        raise AssertionError(kind)

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
