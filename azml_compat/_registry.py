"""The model registry side of the CLI: ``promote`` and ``asset download``, and the
``assets/<name>.link`` files that tie a project to a registered model version."""
from __future__ import annotations

import json
import os

from ._redact import redact
from ._query import History, HistoryError, _fetch_into


def promote(history: History, run_id: str, prefix: str, name: str, link_dir: str = "assets") -> dict:
    """Register the artifact ``prefix`` (file or folder) as a new version of model ``name``
    and write ``<link_dir>/<name>.link``. A missing prefix is an error, before any write."""
    from mlflow.exceptions import MlflowException

    if not name or os.path.basename(name) != name or name in (".", "..") or "\\" in name:
        raise HistoryError(f"model name {name!r} must be a plain file name (no folders)")
    entry = history.artifact(run_id, prefix, what="artifact path")
    source = history.run(run_id).info.artifact_uri.rstrip("/") + "/" + entry.path
    try:
        history.client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    created = history.client.create_model_version(name, source=source, run_id=run_id,
                                               await_creation_for=0)  # ready at once
    version = str(created.version)
    link = {"assetSource": "mlflow", "name": name, "version": version,
            "modelUri": f"models:/{name}/{version}", "runId": run_id,
            "artifactPath": entry.path, "source": source}
    os.makedirs(link_dir, exist_ok=True)
    link_file = os.path.join(link_dir, name + ".link")
    with open(link_file, "w", encoding="utf-8") as fh:
        json.dump(link, fh, indent=2)
        fh.write("\n")
    return {**link, "linkFile": link_file}

def download_asset(history: History, name: str, version: str | None, directory: str,
                   overwrite: bool = False) -> list[str]:
    """Model version files into ``directory``: ``<directory>/<basename of the artifact>``."""
    if version is None:
        found = history.client.search_model_versions(f"name='{name}'")
        if not found:
            raise HistoryError(f"registered model {name!r} has no versions in {redact(history.uri)}")
        version = str(max(int(v.version) for v in found))
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
