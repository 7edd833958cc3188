"""The model registry side of the CLI: ``promote`` and ``asset download``, and the
``assets/<name>.link`` files that tie a project to a registered model version."""
from __future__ import annotations

import json
import os

from .._redact import redact
from .._core.query import History, HistoryError, _fetch_into


def promote(history: History, run_id: str, prefix: str, name: str, link_dir: str = "assets") -> dict:
    """Register the artifact ``prefix`` (file or folder) as a new version of model ``name``
    and write ``<link_dir>/<name>.link``. A missing prefix is an error, before any write."""
    if not name or os.path.basename(name) != name or name in (".", "..") or "\\" in name:
        raise HistoryError(f"model name {name!r} must be a plain file name (no folders)")
    entry = history.artifact(run_id, prefix, what="artifact path")
    source = history.run(run_id).info.artifact_uri.rstrip("/") + "/" + entry.path
    version = _register(history, name, source, run_id)
    link = {"assetSource": "mlflow", "name": name, "version": version,
            "modelUri": f"models:/{name}/{version}", "runId": run_id,
            "artifactPath": entry.path, "source": source}
    os.makedirs(link_dir, exist_ok=True)
    link_file = os.path.join(link_dir, name + ".link")
    with open(link_file, "w", encoding="utf-8") as fh:
        json.dump(link, fh, indent=2)
        fh.write("\n")
    return {**link, "linkFile": link_file}

def _register(history: History, name: str, source: str, run_id: str) -> str:
    """A new version of ``name`` (made if missing) for ``source``; its number."""
    registry = history.server or history.client  # a server: the REST client, no MLflow import
    try:
        registry.create_registered_model(name)
    except Exception as exc:  # noqa: BLE001 - StoreError or MlflowException alike
        if getattr(exc, "error_code", None) != "RESOURCE_ALREADY_EXISTS":
            raise
    if history.server is not None:
        return history.server.create_model_version(name, source, run_id)
    created = history.client.create_model_version(name, source=source, run_id=run_id,
                                                  await_creation_for=0)  # ready at once
    return str(created.version)


def download_asset(history: History, name: str, version: str | None, directory: str,
                   overwrite: bool = False) -> list[str]:
    """Model version files into ``directory``: ``<directory>/<basename of the artifact>``."""
    server = history.server
    if version is None:
        found = (server.model_versions(name) if server is not None else
                 [v.version for v in history.client.search_model_versions(f"name='{name}'")])
        if not found:
            raise HistoryError(f"registered model {name!r} has no versions in {redact(history.uri)}")
        version = str(max(int(v) for v in found))
    if server is not None:
        return history.fetch_uri(server.download_uri(name, version), directory, overwrite)
    uri = history.client.get_model_version_download_uri(name, version)
    return _fetch_into(directory, overwrite, artifact_uri=uri, tracking_uri=history.uri)


def read_link(path: str) -> tuple[str, str | None]:
    """``(name, version)`` from an ``assets/<name>.link`` file written by promote (or Workbench)."""
    try:
        with open(path, encoding="utf-8") as fh:
            link = json.load(fh)
        return link["name"], (str(link["version"]) if link.get("version") is not None else None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HistoryError(f"cannot read link file {path!r}: {exc}") from exc
