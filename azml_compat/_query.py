"""Run history for the ``azml`` CLI: queries against one tracking store.

The CLI formats; this module fetches, returning plain JSON-ready data (shaped by ``_runs``).
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
import tempfile
from contextlib import contextmanager
from types import SimpleNamespace

from ._config import Settings, redact, tracking_uri
from ._paths import clean_artifact_path
from ._runs import (DRIVER_LOG, Page, _document_value, _number, _run_from_json, fields,
                    original_name, rows, values)

DEFAULT_MAX = 100
PAGE = 1000  # runs per search request
ORDER = ["attributes.start_time DESC"]
ALIASES = {"driver_log": DRIVER_LOG}  # Workbench's attachment names
DOCUMENT_READ_MAX = 1024 * 1024  # documents past this many bytes are not downloaded at all


class HistoryError(Exception):
    """Something the user can fix, said in one line."""


def unreachable(uri: str, detail: str) -> str:
    """The one line for a server that does not answer, with the OS's reason if ``detail`` has it."""
    reason = re.search(r"\[Errno -?\d+\] ([^\"')]+)", detail)
    return f"cannot reach the tracking server {redact(uri)}: {reason.group(1) if reason else 'no answer'}"


def default_experiment() -> str:
    """The library's choice: ``MLFLOW_EXPERIMENT_NAME``, else the working directory's name."""
    return Settings.from_env().experiment_name


class RestSearch:
    """Experiment lookup and run search on a tracking server with plain ``requests``.

    ``list`` must answer in under 2 s and importing MLflow alone costs 1-1.7 s, so the list
    path does without it; it reads the same credential and TLS variables MLflow does.
    """

    def __init__(self, uri: str) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        self.uri = uri.rstrip("/")
        self.http = requests.Session()
        retries = Retry(total=int(os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") or 2),
                        backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                        allowed_methods=None)
        self.http.mount(self.uri, HTTPAdapter(max_retries=retries))
        env = os.environ.get
        if env("MLFLOW_TRACKING_TOKEN"):
            self.http.headers["Authorization"] = "Bearer " + env("MLFLOW_TRACKING_TOKEN")
        elif env("MLFLOW_TRACKING_USERNAME"):
            self.http.auth = (env("MLFLOW_TRACKING_USERNAME"), env("MLFLOW_TRACKING_PASSWORD", ""))
        insecure = env("MLFLOW_TRACKING_INSECURE_TLS", "").lower() == "true"
        self.http.verify = False if insecure else env("MLFLOW_TRACKING_SERVER_CERT_PATH") or True
        self.http.cert = env("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None
        self.timeout = float(env("MLFLOW_HTTP_REQUEST_TIMEOUT") or 120)

    def _call(self, method: str, endpoint: str, **kwargs) -> dict:
        import requests

        try:
            response = self.http.request(method, f"{self.uri}/api/2.0/mlflow/{endpoint}",
                                         timeout=self.timeout, **kwargs)
        except requests.ConnectionError as exc:
            raise HistoryError(unreachable(self.uri, str(exc))) from exc
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {}
        if response.status_code != 200:
            raise RestError(body.get("message") or f"HTTP {response.status_code} from {endpoint}",
                            body.get("error_code"))
        return body

    def get_experiment_by_name(self, name: str):
        try:
            found = self._call("GET", "experiments/get-by-name", params={"experiment_name": name})
        except RestError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return SimpleNamespace(experiment_id=found["experiment"]["experiment_id"])

    def search_runs(self, experiment_ids, order_by, max_results, page_token=None):
        body = {"experiment_ids": experiment_ids, "order_by": order_by,
                "max_results": max_results, "run_view_type": "ACTIVE_ONLY"}
        if page_token:
            body["page_token"] = page_token
        found = self._call("POST", "runs/search", json=body)
        page = Page(_run_from_json(doc) for doc in found.get("runs", []))
        page.token = found.get("next_page_token") or None
        return page


class RestError(Exception):
    def __init__(self, message: str, error_code: str | None) -> None:
        super().__init__(message)
        self.error_code = error_code


class History:
    """Queries against one tracking store (``MLFLOW_TRACKING_URI`` or the embedded default)."""

    def __init__(self, uri: str | None = None) -> None:
        self.uri = uri or tracking_uri()
        self._client = None
        self._search = RestSearch(self.uri) if self.uri.startswith(("http://", "https://")) else None

    @property
    def searcher(self):
        """Who runs experiment lookups and run searches: plain REST for servers."""
        return self._search or self.client

    @property
    def client(self):
        if self._client is None:
            if self.uri.startswith("sqlite:///") and not os.path.exists(self.uri[len("sqlite:///"):]):
                # MLflow would create an empty store; a read must not leave one behind.
                raise HistoryError(f"no run history here: {self.uri[10:]} does not exist "
                                   "(cd to the project folder or set MLFLOW_TRACKING_URI)")
            from mlflow.tracking import MlflowClient

            from ._stores.sqlite import IncompleteDatabase, prepare

            try:
                prepare(self.uri)  # never lets MLflow migrate a half-made file in place
            except IncompleteDatabase as exc:
                raise HistoryError(str(exc)) from None
            self._client = MlflowClient(self.uri)
        return self._client

    # -- runs -------------------------------------------------------------------------------
    def experiment_id(self, name: str | None) -> str:
        name = name or default_experiment()
        experiment = self.searcher.get_experiment_by_name(name)
        if experiment is None:
            raise HistoryError(f"experiment {name!r} not found in {redact(self.uri)} "
                               "(give -e NAME or set MLFLOW_EXPERIMENT_NAME)")
        return experiment.experiment_id

    def search(self, experiment: str | None, max_runs: int) -> list:
        """Newest first, paged on the server; ``max_runs`` <= 0 means all."""
        ids, found, token = [self.experiment_id(experiment)], [], None
        while max_runs <= 0 or len(found) < max_runs:
            want = PAGE if max_runs <= 0 else min(PAGE, max_runs - len(found))
            page = self.searcher.search_runs(ids, order_by=ORDER, max_results=want, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                break
        return found

    def list_runs(self, experiment: str | None = None, max_runs: int = DEFAULT_MAX) -> list[dict]:
        """``attachments`` stay ``None`` here: listing them costs a request per run."""
        return rows(self.search(experiment, max_runs))

    def run(self, run_id: str):
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise HistoryError(f"run {run_id!r} not found in {redact(self.uri)}") from exc
            raise

    def info(self, run_id: str) -> dict:
        """One run with its attachments and, under ``series``, every metric's full history."""
        return self.describe(self.run(run_id))

    def last(self, experiment: str | None = None) -> dict:
        newest = self.search(experiment, 1)
        if not newest:
            raise HistoryError(f"experiment {experiment or default_experiment()!r} has no runs")
        return self.describe(newest[0])

    def describe(self, run) -> dict:
        run_id, tags = run.info.run_id, run.data.tags
        series = {}
        for key in sorted(run.data.metrics):
            history = sorted(self.client.get_metric_history(run_id, key),
                             key=lambda m: (m.step, m.timestamp))
            series[original_name(tags, key)] = [_number(m.value) for m in history]
        paths = sorted(self.artifact_paths(run_id))
        # A name logged both as a number or string and as a document shows the former.
        found = {**self.documents(run, paths), **values(run)}
        return {**dict(sorted(found.items())), **fields(run, ", ".join(paths)),
                "series": dict(sorted(series.items()))}

    def documents(self, run, paths) -> dict:
        """Values logged as dict, DataFrame, Series or list of str (artifact
        ``metrics/<key>.json``) by original name: the value itself when its JSON is at most
        ``DOCUMENT_INLINE`` characters, else a one-line preview naming the artifact."""
        wanted = [p for p in paths if re.fullmatch(r"metrics/[^/]+\.json", p)]
        if not wanted:
            return {}
        from mlflow.artifacts import download_artifacts

        run_id = run.info.run_id
        sizes = {e.path: e.file_size for e in self.client.list_artifacts(run_id, "metrics")}
        found = {}
        with tempfile.TemporaryDirectory(prefix="azml-") as tmp:
            for path in wanted:
                key = path[len("metrics/"):-len(".json")]
                name = original_name(run.data.tags, key)
                size = sizes.get(path) or 0
                if size > DOCUMENT_READ_MAX:
                    found[name] = f"({size:,} bytes: artifact {path})"
                    continue
                try:
                    local = download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp,
                                               tracking_uri=self.uri)
                    with open(local, encoding="utf-8") as fh:
                        document = json.load(fh)
                    name, value = document.get("name", name), document["value"]
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    found[name] = f"(unreadable document: artifact {path})"
                    continue
                found[name] = _document_value(value, document.get("type", "value"), size, path)
        return found

    def compare(self, run_ids) -> list[dict]:
        """Runs side by side: latest metrics, params (under properties) and durations."""
        return rows([self.run(run_id) for run_id in run_ids])

    # -- artifacts --------------------------------------------------------------------------
    def artifact_paths(self, run_id: str, folder: str | None = None):
        for entry in self.client.list_artifacts(run_id, folder):
            if entry.is_dir:
                yield from self.artifact_paths(run_id, entry.path)
            else:
                yield entry.path

    def artifact(self, run_id: str, path: str, what: str = "artifact"):
        """The run's artifact entry at ``path`` (confined to the run), or HistoryError."""
        clean = clean_artifact_path(path, what=what)
        self.run(run_id)
        for candidate in (clean, ALIASES.get(clean)):
            if candidate is None:
                continue
            parent = posixpath.dirname(candidate) or None
            for entry in self.client.list_artifacts(run_id, parent):
                if entry.path == candidate:
                    return entry
        raise HistoryError(f"run {run_id} has no {what} {path!r}")

    @contextmanager
    def artifact_file(self, run_id: str, path: str):
        """A local copy of one artifact file, removed afterwards."""
        from mlflow.artifacts import download_artifacts

        entry = self.artifact(run_id, path)
        if entry.is_dir:
            raise HistoryError(f"{path!r} of run {run_id} is a folder; use "
                               f"`azml history download -r {run_id} -a {entry.path} -d DIR`")
        with tempfile.TemporaryDirectory(prefix="azml-") as tmp:
            yield download_artifacts(run_id=run_id, artifact_path=entry.path, dst_path=tmp,
                                     tracking_uri=self.uri)

    def download(self, run_id: str, path: str | None, directory: str,
                 overwrite: bool = False) -> list[str]:
        """All the run's artifacts into ``directory`` keeping their paths, or only ``path``
        (file or folder) as ``directory/<its last component>``, as MLflow downloads it."""
        if path:
            rel = self.artifact(run_id, path).path
        else:
            self.run(run_id)
            rel = None
        return _fetch_into(directory, overwrite, run_id=run_id, artifact_path=rel,
                           tracking_uri=self.uri)


def _fetch_into(directory: str, overwrite: bool, **download) -> list[str]:
    """Download into a scratch folder inside ``directory``, then move the files into place,
    refusing to replace existing files unless ``overwrite``. Returns the files written."""
    from mlflow.artifacts import download_artifacts

    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".azml-download-", dir=directory) as tmp:
        download_artifacts(dst_path=tmp, **download)
        files = sorted(os.path.relpath(os.path.join(folder, name), tmp)
                       for folder, _, names in os.walk(tmp) for name in names)
        for rel in files:
            link = _symlinked_folder(directory, rel)
            if link is not None:  # writing through it would put the run's files elsewhere
                raise HistoryError(f"{link} is a symbolic link to a folder; refusing to "
                                   "download through it")
        existing = [f for f in files if os.path.lexists(os.path.join(directory, f))]
        if existing and not overwrite:
            more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
            raise HistoryError(f"{os.path.join(directory, existing[0])} exists{more}; "
                               "pass --overwrite to replace")
        for rel in files:
            target = os.path.join(directory, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.move(os.path.join(tmp, rel), target)
    return [os.path.join(directory, f) for f in files]


def _symlinked_folder(directory: str, rel: str) -> str | None:
    """The first folder on ``rel``'s way down from ``directory`` that is a symbolic link."""
    path = directory
    for part in rel.split(os.sep)[:-1]:
        path = os.path.join(path, part)
        if os.path.islink(path):
            return path
    return None
