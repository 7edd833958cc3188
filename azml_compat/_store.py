"""The only module that talks to MLflow. Imported by the worker thread, never by ``log()``."""
from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import re
import stat
import tempfile
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from ._config import http_timeout

# MLflow error codes that mean "this request is wrong", as opposed to "try again later".
_RUN_GONE = {"RESOURCE_DOES_NOT_EXIST", "INVALID_STATE"}
RUN_KEY_TAG = "azml.run_key"  # a client-made id: finds a run whether or not we saw it created


@dataclass
class RunSpec:
    """Which run to log to: an existing one (``run_id``), or the one made for ``run_key`` in
    ``experiment_name`` (created by its owner; looked up by everyone, the owner first)."""

    tracking_uri: str
    experiment_name: str
    run_id: str | None = None
    start_time_ms: int = 0
    tags: dict = field(default_factory=dict)
    run_key: str | None = None
    # True when this process creates the run, and so ends it. False for an attached run and for
    # a forked child, which waits for its parent's run (found by key) instead of making one.
    owned: bool | None = None

    def __post_init__(self) -> None:
        if self.owned is None:
            self.owned = self.run_id is None
        if self.run_key:
            self.tags = {**self.tags, RUN_KEY_TAG: self.run_key}


def _key_filter(run_key: str) -> str:
    if not run_key.isalnum():  # made by uuid4().hex; never quoted into a filter otherwise
        raise ValueError(f"run key {run_key!r} is not alphanumeric")
    return f"tags.`{RUN_KEY_TAG}` = '{run_key}'"


def _first_run(found: list) -> str | None:
    """One run for a key even if a store somehow holds two: the earliest, then the lowest id,
    so every process that looks picks the same one."""
    return min(found)[1] if found else None


def http_status(exc: BaseException) -> int | None:
    get = getattr(exc, "get_http_status_code", None)
    if get is None:
        return None
    try:
        return int(get())
    except Exception:  # noqa: BLE001
        return None


class PermanentError(Exception):
    """A record no retry can deliver (its local file, its name): set it aside, go on."""


# Local errors that no retry fixes: the record itself is undeliverable (a name too long for the
# file system, a source file gone, unreadable, or a folder; a file where a folder must go).
_PERMANENT_ERRNOS = {errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.ENOENT,
                     errno.ENOTDIR, errno.EISDIR, errno.EEXIST}
NAME_MAX = 255  # bytes in one path component on every common file system (ext4, xfs, APFS)


def _is_network_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] in ("requests", "urllib3", "http", "socket", "ssl")


def is_transient(exc: BaseException) -> bool:
    """True when retrying later may succeed: network or disk trouble, 429, 5xx, auth (fixable).

    A 4xx is permanent only when it carries MLflow's error body: a proxy or load balancer in
    front of the server answers its own HTML 404/400 pages while the server is being moved,
    and rejecting on those would drop records a retry delivers.
    """
    if isinstance(exc, PermanentError):
        return False
    status = http_status(exc)
    if status is not None:
        if isinstance(exc, StoreError) and 400 <= status < 500 and exc.error_code is None:
            return True
        return status >= 500 or status in (401, 403, 408, 429)
    if isinstance(exc, OSError) and exc.errno in _PERMANENT_ERRNOS and not _is_network_error(exc):
        return False
    if isinstance(exc, (OSError, TimeoutError)):  # includes requests' and urllib3's errors
        return True
    kind = type(exc)
    return kind.__module__.startswith("sqlalchemy") and kind.__name__ in (
        "OperationalError", "TimeoutError", "DisconnectionError")


def is_run_level(exc: BaseException) -> bool:
    """True when the store refused the whole run (deleted, finished), not one record."""
    return getattr(exc, "error_code", None) in _RUN_GONE


def check_artifact_name(artifact_path: str) -> None:
    """PermanentError if no file system could store a component of ``artifact_path``."""
    for part in artifact_path.split("/"):
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise PermanentError(
                f"artifact path {artifact_path!r}: the name {part[:40]!r}... is "
                f"{len(part.encode('utf-8', 'surrogateescape'))} bytes, more than a file "
                f"system allows ({NAME_MAX})")


def open_source(local_path: str):
    """The FILE record's source opened for reading, or PermanentError naming why it cannot be.

    Opened non-blocking and checked with ``fstat``: a FIFO in ``outputs/`` would otherwise
    block the upload (and every record after it) until someone writes to it.
    """
    try:
        fd = os.open(local_path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in _PERMANENT_ERRNOS or exc.errno == errno.ENXIO:
            raise PermanentError(f"cannot read {local_path!r}: {exc.strerror}") from None
        raise
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise PermanentError(f"{local_path!r} is not a regular file; not uploaded")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


@contextlib.contextmanager
def bounded_mlflow_http():
    """MLflow's own HTTP retries off for the duration of one upload attempt.

    MLflow's artifact clients retry each request inside one call (urllib3, 7 tries with backoff:
    496 s measured against a hung server), which made ``azml sync --give-up-after`` meaningless.
    The sender's retry policy decides instead. Settings the user made are left alone.
    """
    names = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
    added = [name for name in names if name not in os.environ]
    for name in added:
        os.environ[name] = names[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


class MlflowStore:
    """Run lifecycle, batches and artifacts through ``MlflowClient``."""

    CONCURRENCY = 1  # requests in flight: a local database takes one writer at a time
    FORK_GATED = True  # a fork waits for calls into SQLite/SQLAlchemy to finish (see ForkGate)

    def __init__(self, tracking_uri: str) -> None:
        from ._workbench_env import import_mlflow_quietly
        import_mlflow_quietly()  # MLflow's INFO lines stay off the script's console
        from mlflow.tracking import MlflowClient

        from ._sqlite import prepare

        prepare(tracking_uri)  # a SQLite file is made whole, once, before MLflow touches it
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri)

    def open_run(self, spec: RunSpec) -> str | None:
        """The run's id: checked if given, else found by key, else created if ``spec.owned``.

        None when the run is not there yet and this process does not own it (a forked child
        whose parent has not created it yet): the caller asks again later.
        """
        if spec.run_id:
            self._get_run(spec.run_id)  # fail early and clearly on an unknown id
            return spec.run_id
        if not spec.owned:
            found = self._find_experiment(spec.experiment_name)
            if found is None or not spec.run_key:
                return None
            return self._find_run_by_key(found[0], spec.run_key)
        experiment_id = self._experiment_id(spec.experiment_name)
        if spec.run_key:
            # Creating is made idempotent by looking first: an earlier attempt whose answer
            # was lost (a timeout) may have created it, or a killed process before `azml sync`.
            found = self._find_run_by_key(experiment_id, spec.run_key)
            if found is not None:
                return found
        return self._create_run(experiment_id, spec)

    def _get_run(self, run_id: str) -> None:
        self.client.get_run(run_id)

    def _find_run_by_key(self, experiment_id: str, run_key: str) -> str | None:
        from mlflow.entities import ViewType

        runs = self.client.search_runs([experiment_id], _key_filter(run_key),
                                       run_view_type=ViewType.ALL, max_results=50)
        return _first_run([(r.info.start_time, r.info.run_id) for r in runs])

    def _create_run(self, experiment_id: str, spec: RunSpec) -> str:
        from mlflow.tracking.context.registry import resolve_tags

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
        check_artifact_name(artifact_path)
        directory, filename = posixpath.split(artifact_path)
        with tempfile.TemporaryDirectory(prefix="azml-upload-") as tmp:
            local = os.path.join(tmp, filename)
            with open(local, "wb") as fh:
                fh.write(data)
            with bounded_mlflow_http():
                self.client.log_artifact(run_id, local, directory or None)

    def upload_file(self, run_id: str, artifact_dir: str, local_path: str) -> None:
        check_artifact_name(posixpath.join(artifact_dir, os.path.basename(local_path)))
        open_source(local_path).close()  # a FIFO, a folder or a vanished file: set aside
        with bounded_mlflow_http():
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

    TIMEOUT = 30  # seconds per request; AZML_HTTP_TIMEOUT overrides it
    # Requests in flight. MLflow's server runs several workers, and on uvicorn a kept-alive
    # request stalls ~40 ms between headers and body: overlapping requests hides that.
    CONCURRENCY = int(os.environ.get("AZML_MAX_IN_FLIGHT", "4"))
    CREATE_LANDING = 4  # request timeouts a lost runs/create may take to land on the server
    FORK_GATED = False  # HTTP calls leave nothing a forked child could hang on (see ForkGate)

    def __init__(self, tracking_uri: str) -> None:
        super().__init__(tracking_uri)
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request

        self._creds = get_default_host_creds(tracking_uri)
        self._http = http_request
        self.TIMEOUT = http_timeout(self.TIMEOUT)
        self._unanswered_create = None  # monotonic time a runs/create went out unanswered

    def _call(self, endpoint: str, method: str = "POST", body: dict | None = None) -> dict:
        kwargs = {"json": body} if method == "POST" else {"params": body}
        response = self._http(self._creds, endpoint, method, max_retries=0, backoff_factor=0,
                              backoff_jitter=0, raise_on_status=False, timeout=self.TIMEOUT,
                              **kwargs)
        if response.status_code != 200:
            raise StoreError.from_response(response, endpoint)
        return response.json() if response.content else {}

    def _get_run(self, run_id: str) -> None:
        self._call("/api/2.0/mlflow/runs/get", "GET", {"run_id": run_id})

    def _find_run_by_key(self, experiment_id: str, run_key: str) -> str | None:
        body = {"experiment_ids": [experiment_id], "filter": _key_filter(run_key),
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
        from mlflow.tracking.context.registry import resolve_tags

        sent = self._unanswered_create
        if sent is not None and time.monotonic() - sent < self.CREATE_LANDING * self.TIMEOUT:
            raise TimeoutError(f"runs/create went unanswered {time.monotonic() - sent:.0f} s "
                               "ago; waiting for it to land before creating again")
        tags = [{"key": k, "value": str(v)} for k, v in resolve_tags(spec.tags).items()]
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
        parts = urlsplit(artifact_uri)
        if parts.scheme == "mlflow-artifacts":
            if parts.netloc and parts.netloc != urlsplit(self.tracking_uri).netloc:
                return None  # another host: let MLflow resolve it
            return self._creds, parts.path.strip("/")
        if parts.scheme in ("http", "https") and self.ARTIFACTS_API in parts.path:
            from mlflow.utils.credentials import get_default_host_creds

            base, root = artifact_uri.split(self.ARTIFACTS_API, 1)
            return get_default_host_creds(base), root.strip("/")
        return None

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
            response = self._http(creds, endpoint, "PUT", data=body, max_retries=0,
                                  backoff_factor=0, backoff_jitter=0, raise_on_status=False,
                                  timeout=self.TIMEOUT,
                                  extra_headers={"Content-Type": "application/octet-stream"})
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
                response = self._http(creds, self.ARTIFACTS_API, "GET", params={"path": folder},
                                      max_retries=0, backoff_factor=0, backoff_jitter=0,
                                      raise_on_status=False, timeout=self.TIMEOUT)
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
        if not self._put_artifact(run_id, path, lambda: open_source(local_path)):
            super().upload_file(run_id, artifact_dir, local_path)


def _never_sent(exc: BaseException) -> bool:
    """True for a connection that was never made (refused, unreachable): no request went out."""
    import requests

    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    return isinstance(exc, requests.exceptions.ConnectionError) and (
        "NewConnectionError" in repr(exc) or "Connection refused" in str(exc))


def connect(tracking_uri: str) -> MlflowStore:
    """The store for a URI: direct REST for servers, MlflowClient for everything else."""
    if tracking_uri.startswith(("http://", "https://")):
        return RestStore(tracking_uri)
    return MlflowStore(tracking_uri)
