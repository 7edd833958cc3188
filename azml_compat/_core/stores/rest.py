"""An ``http(s)://`` tracking server, spoken to directly with one request per call."""
from __future__ import annotations

import contextlib
import os
import posixpath
import re
import time
from urllib.parse import quote

from ... import _consts
from ..context import context_tags
from ..progress import metered
from ..records import RunSpec
from ..http import LOGGING_TIMEOUT, RestClient, proxied_root
from .base import (PermanentError, StoreError, _first_run, _key_filter, _never_sent,
                   check_artifact_name, experiment_tags, open_source)
from .mlflow_client import LazyClient, MlflowStore


def _json_number(value: float):
    """Protobuf's JSON form of a double: non-finite values travel as strings."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class RestStore(LazyClient, MlflowStore):
    """An ``http(s)://`` tracking server, spoken to through ``RestClient``: no MLflow import.

    MLflow's client retries each request itself for minutes (urllib3, 7 retries); here every
    request is tried once and the sender's policy decides (backoff, ``Retry-After``, giving up
    at exit). Artifacts the server proxies (``mlflow-artifacts:``) are plain HTTP too; only a
    run whose artifacts live elsewhere (S3, Azure Blob, ...) imports MLflow, for its uploads,
    through ``MlflowClient`` which knows every artifact store. The class shares
    ``MlflowStore``'s run lifecycle logic, never its ``__init__`` (which imports MLflow).
    """

    TIMEOUT = _consts.DEFAULT_HTTP_TIMEOUT  # seconds per request (AZML_HTTP_TIMEOUT)
    CONCURRENCY = _consts.DEFAULT_MAX_IN_FLIGHT  # requests in flight (AZML_MAX_IN_FLIGHT)
    CREATE_LANDING = _consts.CREATE_LANDING
    FORK_GATED = False  # HTTP calls leave nothing a forked child could hang on (see ForkGate)

    def __init__(self, tracking_uri: str, timeout: float | None = None,
                 concurrency: int | None = None,
                 first_timeout: float | None = None) -> None:  # not MlflowStore.__init__: no MLflow
        self.tracking_uri = tracking_uri
        self.TIMEOUT = self._answered_timeout = timeout or LOGGING_TIMEOUT
        # Until the server first answers, a shorter timeout if given (`azml sync` must give up
        # on a hung server within a command's bound); once it has, the full one, so a big
        # batch answered slowly by a busy server is still delivered.
        if first_timeout:
            self.TIMEOUT = min(self.TIMEOUT, first_timeout)
        self.CONCURRENCY = concurrency or self.CONCURRENCY
        self.http = RestClient(tracking_uri, timeout=self.TIMEOUT)  # every request goes through it
        self.http.warm_up()  # made while a fork waits for it (the sender's connect is gated)
        self._unanswered_create = None  # monotonic time a runs/create went out unanswered

    def _call(self, endpoint: str, method: str = "POST", body: dict | None = None) -> dict:
        answer = self.http.call(endpoint, method, body, timeout=self.TIMEOUT)
        self.TIMEOUT = self._answered_timeout
        return answer

    def _get_run(self, run_id: str) -> str:
        run = self._call("/api/2.0/mlflow/runs/get", "GET", {"run_id": run_id})["run"]
        return run["info"]["experiment_id"]

    def _experiment_tag(self, experiment_id: str, key: str) -> str | None:
        found = self._call("/api/2.0/mlflow/experiments/get", "GET",
                           {"experiment_id": experiment_id})["experiment"]
        return next((t.get("value", "") for t in found.get("tags", []) if t.get("key") == key),
                    None)

    def _set_experiment_tag(self, experiment_id: str, key: str, value: str) -> None:
        self._call("/api/2.0/mlflow/experiments/set-experiment-tag",
                   body={"experiment_id": experiment_id, "key": key, "value": value})

    def _find_run_by_key(self, experiment_id: str, spec: RunSpec) -> str | None:
        body = {"experiment_ids": [experiment_id], "filter": _key_filter(spec),
                "run_view_type": "ALL", "max_results": 50}
        runs = self._call("/api/2.0/mlflow/runs/search", body=body).get("runs", [])
        return _first_run([(int(r["info"].get("start_time") or 0), r["info"]["run_id"])
                           for r in runs])

    def _create_run(self, experiment_id: str, spec: RunSpec) -> str:
        """Create, unless an earlier ``runs/create`` went unanswered recently.

        A request that timed out may still be processed by a slow server: creating again at
        once would leave a second, empty run. The key lookup before this call finds the first
        one as soon as it lands; until then (up to ``CREATE_LANDING`` timeouts after it was
        sent) we only look. A request that never got through (connection refused) is no such
        risk and is retried at once.
        """
        sent = self._unanswered_create
        if sent is not None and time.monotonic() - sent < self.CREATE_LANDING * self.TIMEOUT:
            raise TimeoutError(f"runs/create went unanswered {time.monotonic() - sent:.0f} s "
                               "ago; waiting for it to land before creating again")
        tags = [{"key": k, "value": str(v)} for k, v in context_tags(spec.tags).items()]
        body = {"experiment_id": experiment_id, "start_time": spec.start_time_ms, "tags": tags}
        sent = time.monotonic()
        try:
            return self._call("/api/2.0/mlflow/runs/create", body=body)["run"]["info"]["run_id"]
        except Exception as exc:
            if not _never_sent(exc):
                self._unanswered_create = sent
            raise

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
        tags = [{"key": k, "value": v} for k, v in experiment_tags().items()]
        return self._call("/api/2.0/mlflow/experiments/create",
                          body={"name": name, "tags": tags})["experiment_id"]

    def log_params(self, run_id: str, params: dict) -> None:
        items = [{"key": k, "value": v} for k, v in params.items()]
        for start in range(0, len(items), 100):  # log-batch takes 100 params+tags a request
            self._call("/api/2.0/mlflow/runs/log-batch",
                       body={"run_id": run_id, "params": items[start:start + 100]})

    def last_steps(self, run_id: str) -> dict:
        run = self._call("/api/2.0/mlflow/runs/get", "GET", {"run_id": run_id})["run"]
        return {m["key"]: int(m.get("step", 0)) for m in run.get("data", {}).get("metrics", [])}

    def run_tag(self, run_id: str, key: str) -> str | None:
        run = self._call("/api/2.0/mlflow/runs/get", "GET", {"run_id": run_id})["run"]
        return next((t.get("value") for t in run.get("data", {}).get("tags", [])
                     if t.get("key") == key), None)

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

    # -- artifacts -----------------------------------------------------------------------------
    # A server with proxied artifacts (``mlflow server``'s default, ``mlflow-artifacts:`` URIs)
    # is sent one PUT per artifact, tried once: MLflow's HttpArtifactRepository retries inside
    # the call for minutes and joins the path into the URL unquoted (``q?x=1`` was stored as
    # ``q``). Other artifact stores (S3, Azure Blob, ...) still go through MlflowClient.
    ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"

    def _artifact_root(self, run_id: str):
        """``(creds, root)`` for a run whose artifacts this server proxies, else None."""
        cache = self.__dict__.setdefault("_roots", {})
        if run_id not in cache:
            info = self._call("/api/2.0/mlflow/runs/get", "GET", {"run_id": run_id})["run"]["info"]
            cache[run_id] = self._proxied(info.get("artifact_uri") or "")
        return cache[run_id]

    def _proxied(self, artifact_uri: str):
        return proxied_root(self.http, artifact_uri)

    @staticmethod
    def _check_proxied_name(artifact_path: str) -> None:
        # The server decodes %XX escapes until none is left and refuses '#' (MLflow's
        # validate_path_is_safe): 'pct%41' would be stored as 'pctA', silently renamed.
        if "#" in artifact_path or re.search(r"%[0-9A-Fa-f]{2}", artifact_path):
            raise PermanentError(
                f"artifact path {artifact_path!r}: an MLflow server with proxied artifacts "
                "cannot store a name with '#' or a %XX escape under that exact name")

    def _put_artifact(self, run_id: str, artifact_path: str, opener) -> bool:
        """PUT one artifact; False if this run's artifacts are not proxied by this server."""
        target = self._artifact_root(run_id)
        if target is None:
            return False
        creds, root = target
        self._check_proxied_name(artifact_path)
        endpoint = f"{self.ARTIFACTS_API}/{quote(posixpath.join(root, artifact_path), safe='/')}"
        with opener() as body:
            response = creds.request("PUT", endpoint, data=body, timeout=self.TIMEOUT,
                                     headers={"Content-Type": "application/octet-stream"})
        if response.status_code == 200:
            return True
        error = StoreError.from_response(response, f"PUT {artifact_path}")
        if response.status_code == 500 and self._blocked_by_file(creds, root, artifact_path):
            raise PermanentError(
                f"artifact path {artifact_path!r}: a file and a folder of this run would share "
                "a name") from error
        raise error

    def _blocked_by_file(self, creds, root: str, artifact_path: str) -> bool:
        """True if a parent of ``artifact_path`` is an artifact file, or the path a folder.

        The server answers a bare 500 when it cannot write the file for that reason, the same
        as when it is broken: asked only after a 500, a few listings tell the two apart.
        """
        parts = artifact_path.split("/")
        for depth in range(len(parts)):
            folder = posixpath.join(root, *parts[:depth])
            try:
                response = creds.request("GET", self.ARTIFACTS_API, params={"path": folder},
                                         timeout=self.TIMEOUT)
                files = response.json().get("files", []) if response.status_code == 200 else []
            except Exception:  # noqa: BLE001 - the server is down: a transient 500 after all
                return False
            name = parts[depth]
            for entry in files:
                if posixpath.basename(entry.get("path", "")) == name:
                    last = depth == len(parts) - 1
                    if bool(entry.get("is_dir")) == last:  # a file on the way, a folder at the end
                        return True
        return False

    def upload_bytes(self, run_id: str, artifact_path: str, data: bytes) -> None:
        check_artifact_name(artifact_path)
        if not self._put_artifact(run_id, artifact_path, lambda: contextlib.nullcontext(data)):
            super().upload_bytes(run_id, artifact_path, data)

    def upload_file(self, run_id: str, artifact_dir: str, local_path: str) -> None:
        path = posixpath.join(artifact_dir, os.path.basename(local_path))
        check_artifact_name(path)
        # Read through the meter: a bar on a terminal shows the bytes sent (_progress).
        if not self._put_artifact(run_id, path, lambda: metered(open_source(local_path, artifact_dir),
                                                                local_path)):
            super().upload_file(run_id, artifact_dir, local_path)
