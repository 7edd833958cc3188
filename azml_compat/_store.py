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

    CONCURRENCY = 1  # requests in flight: a local database takes one writer at a time

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
        """Find or create the experiment; if another process creates it in between, look again."""
        for attempt in range(2):
            found = self._find_experiment(name)
            if found is not None:
                experiment_id, stage = found
                if stage == "deleted":
                    raise ValueError(
                        f"experiment {name!r} is deleted; restore it (mlflow experiments restore "
                        f"--experiment-id {experiment_id}) or set MLFLOW_EXPERIMENT_NAME")
                return experiment_id
            try:
                return self._create_experiment(name)
            except Exception as exc:  # noqa: BLE001 - only "already exists" is looked at again
                if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS" or attempt:
                    raise
        raise AssertionError("unreachable")

    def _find_experiment(self, name: str) -> tuple[str, str] | None:
        """``(experiment id, lifecycle stage)``, or None if there is none by that name."""
        experiment = self.client.get_experiment_by_name(name)
        return None if experiment is None else (experiment.experiment_id, experiment.lifecycle_stage)

    def _create_experiment(self, name: str) -> str:
        return self.client.create_experiment(name)

    def last_steps(self, run_id: str) -> dict:
        """``{key: highest step}`` of every metric the run has."""
        metrics = self.client.get_run(run_id).data._metric_objs  # the latest point of each key
        return {m.key: m.step for m in metrics}

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


class StoreError(Exception):
    """A tracking server's refusal, with what the retry policy needs to know."""

    def __init__(self, message: str, status: int, error_code: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.retry_after = retry_after

    def get_http_status_code(self) -> int:
        return self.status

    @classmethod
    def from_response(cls, response, endpoint: str) -> "StoreError":
        try:
            body = response.json()
            code, message = body.get("error_code"), body.get("message") or response.text
        except ValueError:
            code, message = None, response.text.strip()[:500]
        retry_after = None
        try:
            retry_after = float(response.headers.get("Retry-After", ""))
        except ValueError:
            pass
        return cls(f"{endpoint}: HTTP {response.status_code} {code or ''} {message}".strip(),
                   response.status_code, code, retry_after)


def _json_number(value: float):
    """Protobuf's JSON form of a double: non-finite values travel as strings."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class RestStore(MlflowStore):
    """An ``http(s)://`` tracking server, spoken to directly for the hot calls.

    MLflow's client retries each request itself for minutes (urllib3, 7 retries); here every
    request is tried once and the sender's policy decides (backoff, ``Retry-After``, giving up
    at exit), while MLflow's own credential handling (basic auth, token, TLS) is reused.
    Artifacts still go through ``MlflowClient``, which knows every artifact store.
    """

    TIMEOUT = 30
    # Requests in flight. MLflow's server runs several workers, and on uvicorn a kept-alive
    # request stalls ~40 ms between headers and body: overlapping requests hides that.
    CONCURRENCY = int(os.environ.get("AZML_MAX_IN_FLIGHT", "4"))

    def __init__(self, tracking_uri: str) -> None:
        super().__init__(tracking_uri)
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        self._creds = get_default_host_creds(tracking_uri)
        self._http = http_request

    def _call(self, endpoint: str, method: str = "POST", body: dict | None = None) -> dict:
        kwargs = {"json": body} if method == "POST" else {"params": body}
        response = self._http(self._creds, endpoint, method, max_retries=0, backoff_factor=0,
                              backoff_jitter=0, raise_on_status=False, timeout=self.TIMEOUT,
                              **kwargs)
        if response.status_code != 200:
            raise StoreError.from_response(response, endpoint)
        return response.json() if response.content else {}

    def open_run(self, spec: RunSpec) -> str:
        if spec.run_id:
            self._call("/api/2.0/mlflow/runs/get", "GET", {"run_id": spec.run_id})
            return spec.run_id
        from mlflow.tracking.context.registry import resolve_tags

        experiment_id = self._experiment_id(spec.experiment_name)
        tags = [{"key": k, "value": str(v)} for k, v in resolve_tags(spec.tags).items()]
        body = {"experiment_id": experiment_id, "start_time": spec.start_time_ms, "tags": tags}
        return self._call("/api/2.0/mlflow/runs/create", body=body)["run"]["info"]["run_id"]

    def _find_experiment(self, name: str) -> tuple[str, str] | None:
        try:
            found = self._call("/api/2.0/mlflow/experiments/get-by-name", "GET",
                               {"experiment_name": name})["experiment"]
        except StoreError as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            return None
        return found["experiment_id"], found.get("lifecycle_stage", "active")

    def _create_experiment(self, name: str) -> str:
        return self._call("/api/2.0/mlflow/experiments/create", body={"name": name})["experiment_id"]

    def last_steps(self, run_id: str) -> dict:
        run = self._call("/api/2.0/mlflow/runs/get", "GET", {"run_id": run_id})["run"]
        return {m["key"]: int(m.get("step", 0)) for m in run.get("data", {}).get("metrics", [])}

    def log_batch(self, run_id: str, metrics: list, tags: list) -> None:
        body = {
            "run_id": run_id,
            "metrics": [{"key": key, "value": _json_number(value), "timestamp": ts, "step": step}
                        for _, key, value, ts, step in metrics],
            "tags": [{"key": key, "value": value} for _, key, value in tags],
        }
        self._call("/api/2.0/mlflow/runs/log-batch", body=body)

    def end_run(self, run_id: str, status: str, end_time_ms: int) -> None:
        self._call("/api/2.0/mlflow/runs/update",
                   body={"run_id": run_id, "status": status, "end_time": end_time_ms})


def connect(tracking_uri: str) -> MlflowStore:
    """The store for a URI: direct REST for servers, MlflowClient for everything else."""
    if tracking_uri.startswith(("http://", "https://")):
        return RestStore(tracking_uri)
    return MlflowStore(tracking_uri)
