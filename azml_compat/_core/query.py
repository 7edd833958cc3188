"""Run history for the ``azml`` CLI: queries against one tracking store.

The CLI formats; this module fetches, returning plain JSON-ready data (shaped by ``_runs``).
"""
from __future__ import annotations

import contextlib
import json
import os
import posixpath
import re
import shutil
import tempfile
from contextlib import contextmanager
from types import SimpleNamespace
from urllib.parse import quote

from .._config import Settings, tracking_uri
from .._exceptions import HistoryError
from .records import PARENT_TAG
from .._redact import redact
from .paths import clean_artifact_path
from .progress import shown, watching
from .runs import (DRIVER_LOG, Page, _document_value, _number, _run_from_json, fields,
                   original_name, rows, values)
from .stores.base import StoreError
from .stores.mlflow_client import bounded_mlflow_http

DEFAULT_MAX = 100
PAGE = 1000  # runs per search request
ORDER = ["attributes.start_time DESC"]
ALIASES = {"driver_log": DRIVER_LOG}  # Workbench's attachment names
PREFIX_CANDIDATES = 100  # runs an ambiguous run-id prefix is counted up to
DOCUMENT_READ_MAX = 1024 * 1024  # documents past this many bytes are not downloaded at all


def unreachable(uri: str, detail: str) -> str:
    """The one line for a server that does not answer, with the OS's reason if ``detail`` has it."""
    reason = re.search(r"\[Errno (-?\d+)\] ([^\"')]+)", detail)
    if reason is None:
        return f"cannot reach the tracking server {redact(uri)}: no answer"
    # The OS's own words for a known errno: a message cut short upstream keeps them whole.
    number = int(reason.group(1))
    text = os.strerror(number) if number > 0 else reason.group(2)
    return f"cannot reach the tracking server {redact(uri)}: {text}"


def default_experiment() -> str:
    """The library's choice: ``MLFLOW_EXPERIMENT_NAME``, else the working directory's name."""
    return Settings.from_env(("MLFLOW_EXPERIMENT_NAME",), strict=True).experiment_name


class ServerQueries:
    """What the CLI asks a tracking server, through the one REST client (``_rest``).

    No MLflow import (1-1.7 s) and no MLflow retries (7 tries, minutes on a dead server): each
    request is tried once with the CLI's timeout, and a server that refuses or does not answer
    is one ``HistoryError`` naming it. Objects come back in the shapes ``_runs`` reads from
    MLflow's (``_run_from_json``, entries with ``path``/``is_dir``/``file_size``).
    """

    def __init__(self, uri: str) -> None:
        from .http import RestClient, request_timeout

        self.uri = uri.rstrip("/")
        self.rest = RestClient(self.uri, timeout=request_timeout(cli=True))

    def call(self, endpoint: str, method: str = "GET", body: dict | None = None,
             rest=None) -> dict:
        try:
            return (rest or self.rest).call(endpoint, method, body)
        except StoreError:
            raise
        except OSError as exc:  # requests' errors: refused, reset, timed out
            raise self.unreachable(exc, rest) from exc

    def unreachable(self, exc: BaseException, rest=None) -> HistoryError:
        rest = rest or self.rest
        if "timed out" in str(exc) or "Timeout" in type(exc).__name__:
            return HistoryError(f"cannot reach the tracking server {redact(rest.uri)}: no answer "
                                f"within {rest.timeout:g} s (AZML_HTTP_TIMEOUT)")
        return HistoryError(unreachable(rest.uri, str(exc)))

    def get_experiment_by_name(self, name: str):
        try:
            found = self.call("experiments/get-by-name", body={"experiment_name": name})
        except StoreError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return SimpleNamespace(experiment_id=found["experiment"]["experiment_id"])

    def search_runs(self, experiment_ids, order_by, max_results, page_token=None):
        body = {"experiment_ids": experiment_ids, "order_by": order_by,
                "max_results": max_results, "run_view_type": "ACTIVE_ONLY"}
        if page_token:
            body["page_token"] = page_token
        found = self.call("runs/search", "POST", body)
        page = Page(_run_from_json(doc) for doc in found.get("runs", []))
        page.token = found.get("next_page_token") or None
        return page

    def get_run(self, run_id: str):
        return _run_from_json(self.call("runs/get", body={"run_id": run_id})["run"])

    def experiment_ids(self) -> list[str]:
        """Every experiment's id, deleted ones included."""
        ids, token = [], None
        while True:
            body = {"max_results": PAGE, "view_type": "ALL"}
            if token:
                body["page_token"] = token
            found = self.call("experiments/search", "POST", body)
            ids += [e["experiment_id"] for e in found.get("experiments", [])]
            token = found.get("next_page_token")
            if not token:
                return ids

    def run_ids(self, experiment_ids: list, filter_string: str, max_results: int) -> set[str]:
        body = {"experiment_ids": experiment_ids, "filter": filter_string,
                "run_view_type": "ALL", "max_results": max_results}
        return {doc["info"]["run_id"] for doc in self.call("runs/search", "POST", body).get("runs", [])}

    def get_metric_history(self, run_id: str, key: str) -> list:
        points, token = [], None
        while True:
            body = {"run_id": run_id, "metric_key": key, "max_results": 25000}
            if token:
                body["page_token"] = token
            found = self.call("metrics/get-history", body=body)
            points += [SimpleNamespace(value=float(m["value"]), step=int(m.get("step", 0)),
                                       timestamp=int(m.get("timestamp", 0)))
                       for m in found.get("metrics", [])]
            token = found.get("next_page_token")
            if not token:
                return points

    # -- artifacts the server proxies (``mlflow-artifacts:``): plain HTTP ----------------------
    def proxied(self, artifact_uri: str):
        """``(client, root)`` when the server proxies ``artifact_uri``, else None (MLflow's)."""
        from .http import proxied_root

        return proxied_root(self.rest, artifact_uri)

    def list_proxied(self, target, path: str | None) -> list:
        rest, root = target
        folder = posixpath.join(root, path) if path else root
        found = self.call(ARTIFACTS_API, body={"path": folder}, rest=rest).get("files", [])
        entries = [SimpleNamespace(path=posixpath.join(path, f["path"]) if path else f["path"],
                                   is_dir=bool(f.get("is_dir")),
                                   file_size=int(f["file_size"]) if "file_size" in f else None)
                   for f in found]
        # Listing a file answers the file itself; MLflow's clients answer nothing.
        if path and len(entries) == 1 and not entries[0].is_dir and \
                entries[0].path == posixpath.join(path, posixpath.basename(path)):
            return []
        return entries

    def download_proxied(self, target, path: str, local: str) -> None:
        """One artifact file (``path`` under the root) into ``local``, streamed."""
        rest, root = target
        endpoint = f"{ARTIFACTS_API}/{quote(posixpath.join(root, path).strip('/'), safe='/')}"
        try:
            with rest.streamed("GET", endpoint) as (response, chunks):
                if response.status_code != 200:
                    raise StoreError.from_response(response, endpoint)
                os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
                with open(local, "wb") as fh:
                    for chunk in chunks():
                        fh.write(chunk)
        except StoreError:
            raise
        except OSError as exc:
            if getattr(exc, "filename", None):  # a local file we cannot write
                raise
            raise self.unreachable(exc, rest) from exc

    def download_tree(self, target, path: str | None, is_dir: bool, directory: str) -> None:
        """``path`` (a file or folder; None for all) into ``directory`` as MLflow lays it out:
        all of a run keeps its paths; a given file or folder lands as its last component."""
        base = posixpath.dirname(path) if path else ""
        if path and not is_dir:
            self.download_proxied(target, path, _local(directory, path, base))
            return
        folders = [path]
        while folders:
            for entry in self.list_proxied(target, folders.pop()):
                if entry.is_dir:
                    folders.append(entry.path)
                else:
                    self.download_proxied(target, entry.path, _local(directory, entry.path, base))

    # -- the model registry --------------------------------------------------------------------
    def create_registered_model(self, name: str) -> None:
        self.call("registered-models/create", "POST", {"name": name})

    def create_model_version(self, name: str, source: str, run_id: str) -> str:
        found = self.call("model-versions/create", "POST",
                          {"name": name, "source": source, "run_id": run_id})
        return str(found["model_version"]["version"])

    def model_versions(self, name: str) -> list[str]:
        versions, token = [], None
        while True:
            body = {"filter": f"name='{name}'", "max_results": 1000}
            if token:
                body["page_token"] = token
            found = self.call("model-versions/search", body=body)
            versions += [str(v["version"]) for v in found.get("model_versions", [])]
            token = found.get("next_page_token")
            if not token:
                return versions

    def download_uri(self, name: str, version: str) -> str:
        return self.call("model-versions/get-download-uri",
                         body={"name": name, "version": version})["artifact_uri"]


ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


def _local(directory: str, path: str, base: str) -> str:
    """Where artifact ``path`` goes under ``directory``: relative to ``base``, confined."""
    rel = posixpath.relpath(path, base) if base else path
    clean = posixpath.normpath(rel)
    if clean.startswith("../") or clean == ".." or posixpath.isabs(clean):
        raise HistoryError(f"artifact path {path!r} would leave {directory}")
    return os.path.join(directory, *clean.split("/"))


class _ClientSearch:
    """``ServerQueries.experiment_ids``/``run_ids`` through ``MlflowClient`` (other stores)."""

    def __init__(self, client) -> None:
        self.client = client

    def experiment_ids(self) -> list[str]:
        from mlflow.entities import ViewType

        ids, token = [], None
        while True:
            page = self.client.search_experiments(view_type=ViewType.ALL, max_results=PAGE,
                                                  page_token=token)
            ids += [e.experiment_id for e in page]
            token = page.token
            if not token:
                return ids

    def run_ids(self, experiment_ids: list, filter_string: str, max_results: int) -> set[str]:
        from mlflow.entities import ViewType

        return {run.info.run_id for run in self.client.search_runs(
            experiment_ids, filter_string, run_view_type=ViewType.ALL, max_results=max_results)}


class History:
    """Queries against one tracking store (``MLFLOW_TRACKING_URI`` or the embedded default)."""

    def __init__(self, uri: str | None = None) -> None:
        self.uri = uri or tracking_uri()
        self._client = None
        self._runs = {}  # run id -> run, fetched once per command
        # A server is asked through the REST client; MLflow only for what it alone reaches.
        self.server = ServerQueries(self.uri) if self.uri.startswith(("http://", "https://")) else None
        self._search = self.server

    @property
    def searcher(self):
        """Who runs experiment lookups and run searches: plain REST for servers; for a SQLite
        store at a schema revision we read, its tables read directly (``list`` takes ~0.25 s
        of CPU and 27 MB instead of ~3.7 s and 220 MB with MLflow's import); else MLflow's."""
        if self._search is None and self._client is None:
            from .stores.sqlite_read import SqliteSearch

            self._search = SqliteSearch.open(self.uri, fallback=lambda: self.client) or False
        return self._search or self.client

    @property
    def client(self):
        if self._client is None:
            if self.uri.startswith("sqlite:///") and not os.path.exists(self.uri[len("sqlite:///"):]):
                # MLflow would create an empty store; a read must not leave one behind.
                raise HistoryError(f"no run history here: {self.uri[10:]} does not exist "
                                   "(cd to the project folder or set MLFLOW_TRACKING_URI)")
            from mlflow.tracking import MlflowClient

            from .._exceptions import IncompleteDatabase
            from .stores.sqlite import prepare

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

    def resolve_run_id(self, given: str) -> str:
        """The run whose id starts with ``given`` (any unique prefix, as git takes a commit's),
        searched in every experiment of the store with ``attributes.run_id LIKE 'abc%'``, which
        MLflow's SQL store and its server both answer. A whole id is returned as it is."""
        prefix = given.strip().lower()
        if re.fullmatch(r"[0-9a-f]{32}", prefix):
            return prefix
        # A server is asked through the REST client (bounded on a dead server); a store that
        # cannot be read says so first, whatever was given.
        searcher = self.server or _ClientSearch(self.client)
        if not re.fullmatch(r"[0-9a-f]+", prefix):  # also keeps LIKE's % and _ out
            raise HistoryError(f"run {given!r} not found in {redact(self.uri)}: a run id is "
                               "32 hex digits (or a unique prefix of one)")
        experiments, found = searcher.experiment_ids(), set()
        for start in range(0, len(experiments), 100):  # a search takes a bounded id list
            found |= searcher.run_ids(experiments[start:start + 100],
                                      f"attributes.run_id LIKE '{prefix}%'", PREFIX_CANDIDATES + 1)
        ids = sorted(found)
        if len(ids) == 1:
            return ids[0]
        if not ids:
            raise HistoryError(f"run {given!r} not found in {redact(self.uri)}: no run id "
                               "starts with it")
        count = f"{len(ids)}" if len(ids) <= PREFIX_CANDIDATES else f"more than {PREFIX_CANDIDATES}"
        raise HistoryError(f"run id prefix {given!r} is ambiguous: {count} runs start with it; "
                           "give more characters")

    def run(self, run_id: str):
        try:
            if self.server is not None:
                return self.server.get_run(run_id)
            return self.client.get_run(run_id)
        except Exception as exc:  # noqa: BLE001 - StoreError or MlflowException: both have a code
            if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST",
                                                    "INVALID_PARAMETER_VALUE"):
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
            history = sorted((self.server or self.client).get_metric_history(run_id, key),
                             key=lambda m: (m.step, m.timestamp))
            series[original_name(tags, key)] = [_number(m.value) for m in history]
        self._runs[run_id] = run
        paths = sorted(self.artifact_paths(run_id))
        # A name logged both as a number or string and as a document shows the former.
        found = {**self.documents(run, paths), **values(run)}
        children = self.children(run)
        return {**dict(sorted(found.items())), **fields(run, ", ".join(paths)),
                **({"children": children} if children else {}),
                "series": dict(sorted(series.items()))}

    def children(self, run) -> list[str]:
        """Ids of the runs nested under ``run`` (``mlflow.parentRunId``: SDK v1's child runs)."""
        searcher = self.server or _ClientSearch(self.client)
        found = searcher.run_ids([run.info.experiment_id],
                                 f"tags.`{PARENT_TAG}` = '{run.info.run_id}'", PAGE)
        return sorted(found)

    def documents(self, run, paths) -> dict:
        """Values logged as dict, DataFrame, Series or list of str (artifact
        ``metrics/<key>.json``: a document, or a table as MLflow writes one) by original name:
        the value itself when its JSON is at most ``DOCUMENT_INLINE`` characters, else a
        one-line preview naming the artifact."""
        wanted = [p for p in paths if re.fullmatch(r"metrics/[^/]+\.json", p)]
        if not wanted:
            return {}
        run_id = run.info.run_id
        sizes = {e.path: e.file_size for e in self.list_artifacts(run_id, "metrics")}
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
                    local = self.fetch_file(run_id, path, tmp)
                    with open(local, encoding="utf-8") as fh:
                        document = json.load(fh)
                    if "value" not in document and "columns" in document:  # a table
                        kind, value = "table", {"columns": document["columns"],
                                                "data": document["data"]}
                    else:
                        kind = document.get("type", "value")
                        name, value = document.get("name", name), document["value"]
                except (OSError, ValueError, KeyError, TypeError, AttributeError):
                    found[name] = f"(unreadable document: artifact {path})"
                    continue
                found[name] = _document_value(value, kind, size, path)
        return found

    def compare(self, run_ids) -> list[dict]:
        """Runs side by side: latest metrics, params (under properties) and durations."""
        return rows([self.run(run_id) for run_id in run_ids])

    # -- artifacts --------------------------------------------------------------------------
    def _proxied(self, run_id: str):
        """``(client, root)`` if the server proxies this run's artifacts, else None."""
        if self.server is None:
            return None
        run = self._runs.get(run_id) or self.run(run_id)
        self._runs[run_id] = run
        return self.server.proxied(run.info.artifact_uri or "")

    def list_artifacts(self, run_id: str, folder: str | None = None) -> list:
        target = self._proxied(run_id)
        if target is not None:
            return self.server.list_proxied(target, folder)
        with self._bounded():
            return self.client.list_artifacts(run_id, folder)

    def _bounded(self):
        """Around calls only MLflow can make on a server (artifacts it alone reaches)."""
        if self.server is None:
            return contextlib.nullcontext()
        return bounded_mlflow_http(self.server.rest.timeout)

    def fetch_file(self, run_id: str, path: str, tmp: str) -> str:
        """One artifact file downloaded into the folder ``tmp``; its local path."""
        target = self._proxied(run_id)
        if target is not None:
            local = os.path.join(tmp, *path.split("/"))
            self.server.download_proxied(target, path, local)
            return local
        from mlflow.artifacts import download_artifacts

        with self._bounded():
            return download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp,
                                      tracking_uri=self.uri)

    def artifact_paths(self, run_id: str, folder: str | None = None):
        for entry in self.list_artifacts(run_id, folder):
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
            for entry in self.list_artifacts(run_id, parent):
                if entry.path == candidate:
                    return entry
        raise HistoryError(f"run {run_id} has no {what} {path!r}")

    @contextmanager
    def artifact_file(self, run_id: str, path: str):
        """A local copy of one artifact file, removed afterwards."""
        entry = self.artifact(run_id, path)
        if entry.is_dir:
            raise HistoryError(f"{path!r} of run {run_id} is a folder; use "
                               f"`azml history download -r {run_id} -a {entry.path} -d DIR`")
        with tempfile.TemporaryDirectory(prefix="azml-") as tmp:
            yield self.fetch_file(run_id, entry.path, tmp)

    def download(self, run_id: str, path: str | None, directory: str,
                 overwrite: bool = False) -> list[str]:
        """All the run's artifacts into ``directory`` keeping their paths, or only ``path``
        (file or folder) as ``directory/<its last component>``, as MLflow downloads it."""
        if path:
            entry = self.artifact(run_id, path)
            rel, is_dir = entry.path, entry.is_dir
        else:
            self.run(run_id)
            rel, is_dir = None, True
        # The bar's total costs a listing of each folder: only when a bar is drawn
        total = self._bytes(run_id, rel, is_dir) if shown() else None
        target = self._proxied(run_id)
        if target is not None:
            return _fetch_into(directory, overwrite, fetch=lambda tmp: self.server.download_tree(
                target, rel, is_dir, tmp), total=total)
        with self._bounded():
            return _fetch_into(directory, overwrite, run_id=run_id, artifact_path=rel,
                               tracking_uri=self.uri, total=total)

    def _bytes(self, run_id: str, path: str | None, is_dir: bool) -> int | None:
        """Bytes of the artifact file or folder ``path`` (None: all), or None if a store
        does not say a file's size."""
        if not is_dir:
            entry = self.artifact(run_id, path)
            return entry.file_size
        total, folders = 0, [path]
        while folders:
            for entry in self.list_artifacts(run_id, folders.pop()):
                if entry.is_dir:
                    folders.append(entry.path)
                elif entry.file_size is None:
                    return None
                else:
                    total += entry.file_size
        return total

    def fetch_uri(self, artifact_uri: str, directory: str, overwrite: bool = False) -> list[str]:
        """Everything under ``artifact_uri`` (a model version's) into ``directory``, as
        ``directory/<its last component>``."""
        target = self.server.proxied(artifact_uri) if self.server is not None else None
        if target is None:
            with self._bounded():
                return _fetch_into(directory, overwrite, artifact_uri=artifact_uri,
                                   tracking_uri=self.uri)
        rest, root = target
        parent, name = posixpath.split(root.rstrip("/"))
        parent_target = (rest, parent)
        entries = self.server.list_proxied(parent_target, None)
        entry = next((e for e in entries if e.path == name), None)
        if entry is None:
            raise HistoryError(f"{redact(artifact_uri)} holds no artifacts")
        return _fetch_into(directory, overwrite, fetch=lambda tmp: self.server.download_tree(
            parent_target, name, entry.is_dir, tmp))


def _fetch_into(directory: str, overwrite: bool, fetch=None, total: int | None = None,
                **download) -> list[str]:
    """Download into a scratch folder inside ``directory`` (with ``fetch(folder)``, else
    MLflow's ``download_artifacts(**download)``), then move the files into place, refusing to
    replace existing files unless ``overwrite``. Returns the files written. On a terminal a
    bar shows the bytes arrived (of ``total``, when known)."""
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".azml-download-", dir=directory) as tmp:
        with watching(tmp, total, "azml: downloading"):
            if fetch is not None:
                fetch(tmp)
            else:
                from mlflow.artifacts import download_artifacts

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
