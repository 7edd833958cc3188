"""The only module that talks to MLflow. Imported by the worker thread, never by ``log()``."""
from __future__ import annotations

import os
import posixpath
import tempfile
from dataclasses import dataclass, field

# MLflow error codes that mean "this request is wrong", as opposed to "try again later".
_RUN_GONE = {"RESOURCE_DOES_NOT_EXIST", "INVALID_STATE"}


@dataclass
class RunSpec:
    """Which run to log to: an existing one (``run_id``) or a new one in ``experiment_name``."""

    tracking_uri: str
    experiment_name: str
    run_id: str | None = None
    start_time_ms: int = 0
    tags: dict = field(default_factory=dict)

    @property
    def owned(self) -> bool:
        """True when this process creates the run, and so ends it."""
        return self.run_id is None


def http_status(exc: BaseException) -> int | None:
    get = getattr(exc, "get_http_status_code", None)
    if get is None:
        return None
    try:
        return int(get())
    except Exception:  # noqa: BLE001
        return None


def is_transient(exc: BaseException) -> bool:
    """True when retrying later may succeed: network or disk trouble, 429, 5xx, auth (fixable)."""
    status = http_status(exc)
    if status is not None:
        return status >= 500 or status in (401, 403, 408, 429)
    if isinstance(exc, (OSError, TimeoutError)):  # includes requests' and urllib3's errors
        return True
    kind = type(exc)
    return kind.__module__.startswith("sqlalchemy") and kind.__name__ in (
        "OperationalError", "TimeoutError", "DisconnectionError")


def is_run_level(exc: BaseException) -> bool:
    """True when the store refused the whole run (deleted, finished), not one record."""
    return getattr(exc, "error_code", None) in _RUN_GONE


class MlflowStore:
    """Run lifecycle, batches and artifacts through ``MlflowClient``."""

    def __init__(self, tracking_uri: str) -> None:
        from mlflow.tracking import MlflowClient

        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri)

    def open_run(self, spec: RunSpec) -> str:
        if spec.run_id:
            self.client.get_run(spec.run_id)  # fail early and clearly on an unknown id
            return spec.run_id
        from mlflow.tracking.context.registry import resolve_tags

        experiment_id = self._experiment_id(spec.experiment_name)
        run = self.client.create_run(
            experiment_id, start_time=spec.start_time_ms, tags=resolve_tags(spec.tags)
        )
        return run.info.run_id

    def _experiment_id(self, name: str) -> str:
        from mlflow.exceptions import MlflowException

        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return self.client.create_experiment(name)
            except MlflowException as exc:  # another process created it first
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                experiment = self.client.get_experiment_by_name(name)
        if experiment.lifecycle_stage == "deleted":
            raise ValueError(
                f"experiment {name!r} is deleted; restore it (mlflow experiments restore "
                f"--experiment-id {experiment.experiment_id}) or set MLFLOW_EXPERIMENT_NAME"
            )
        return experiment.experiment_id

    def log_batch(self, run_id: str, metrics: list, tags: list) -> None:
        from mlflow.entities import Metric, RunTag

        self.client.log_batch(
            run_id,
            metrics=[Metric(key, value, ts, step) for _, key, value, ts, step in metrics],
            tags=[RunTag(key, value) for _, key, value in tags],
        )

    def upload_bytes(self, run_id: str, artifact_path: str, data: bytes) -> None:
        directory, filename = posixpath.split(artifact_path)
        with tempfile.TemporaryDirectory(prefix="azml-upload-") as tmp:
            local = os.path.join(tmp, filename)
            with open(local, "wb") as fh:
                fh.write(data)
            self.client.log_artifact(run_id, local, directory or None)

    def upload_file(self, run_id: str, artifact_dir: str, local_path: str) -> None:
        self.client.log_artifact(run_id, local_path, artifact_dir or None)

    def end_run(self, run_id: str, status: str, end_time_ms: int) -> None:
        self.client.set_terminated(run_id, status, end_time=end_time_ms)
