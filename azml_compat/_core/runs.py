"""MLflow runs shaped as Workbench's run dicts (``az ml history info -o json``).

A run dict holds each metric's latest value (and each user tag, i.e. a string the script logged)
under its original Workbench name, then the fields in ``RUN_FIELDS``. ``run_number`` is the
run's start time in milliseconds: it grows with every run of an experiment like Workbench's
counter did, and costs nothing (MLflow cannot count runs without fetching them all). Pure
functions over MLflow ``Run`` objects or their REST JSON: no I/O.
"""
from __future__ import annotations

import json
import math
import posixpath
import time
from datetime import datetime, timezone
from types import SimpleNamespace

from .records import (ARGUMENTS_TAG, LEGACY_NAME_TAG_PREFIX, LEGACY_TAGS, NAME_TAG_PREFIX,
                      PARENT_TAG, PROPERTY_PARAM_PREFIX, SCRIPT_TAG, WORKDIR_TAG)
from .tables import table_paths

RUN_FIELDS = ("run_id", "run_number", "name", "script_name", "status", "created_utc",
              "start_time_utc", "end_time_utc", "duration", "experiment_id", "target", "user_id",
              "properties", "attachments", "parent_run_id", "children")
STATUS = {"RUNNING": "Running", "SCHEDULED": "Queued", "FINISHED": "Completed",
          "FAILED": "Failed", "KILLED": "Canceled"}
DRIVER_LOG = "driver_log.txt"
# Documents (dict, DataFrame, list of str) in `info`/`last`: shown whole up to this many
# characters of JSON, else as a preview of DOCUMENT_PREVIEW characters and the artifact's path.
DOCUMENT_INLINE = 1000
VALUE_FOLDER = "metrics/"  # where a logged value that is not a metric or tag is stored
DOCUMENT_PREVIEW = 100


def _number(value):
    return None if isinstance(value, float) and math.isnan(value) else value


def _utc(ms):
    return None if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat()


def duration(start_ms, end_ms) -> str | None:
    """``H:MM:SS.ffffff`` like Workbench (hours may exceed 24)."""
    if start_ms is None:
        return None
    ms = max(0, (end_ms if end_ms is not None else int(time.time() * 1000)) - start_ms)
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000 * 1000:06d}"


def _user_tag(key: str) -> bool:
    return not key.startswith(("mlflow.", "azml."))


def original_name(tags: dict, key: str) -> str:
    """The name the script logged under ``key`` (runs written by earlier versions keep it in
    the ``azml.name.`` tag)."""
    return tags.get(NAME_TAG_PREFIX + key) or tags.get(LEGACY_NAME_TAG_PREFIX + key, key)


def our_tag(tags: dict, name: str):
    """One of our bookkeeping tags, under its name or the one earlier versions wrote."""
    value = tags.get(name)
    return value if value is not None else tags.get(LEGACY_TAGS[name])


def values(run) -> dict:
    """Latest metric values and logged strings, by original name, sorted by name; a table
    (SDK v1's ``log_table``/``log_row``) as its artifact's name."""
    tags = run.data.tags
    found = {**{k: v for k, v in tags.items() if _user_tag(k)},
             **{k: _number(v) for k, v in run.data.metrics.items()}}
    named = {original_name(tags, key): value for key, value in found.items()}
    for name, path in table_names(tags).items():
        if not path.startswith(VALUE_FOLDER):  # a logged value's table is read as a document
            named.setdefault(name, path)
    return dict(sorted(named.items()))


def split_params(run) -> tuple[dict, dict]:
    """``(params, properties)``: the run's params (its arguments', the script's own MLflow
    params), and SDK v1's properties (the ``properties/`` params) by their original names."""
    tags, params, properties = run.data.tags, {}, {}
    for key, value in run.data.params.items():
        if key.startswith(PROPERTY_PARAM_PREFIX):
            properties[original_name(tags, key[len(PROPERTY_PARAM_PREFIX):])] = value
        else:
            params[key] = value
    return dict(sorted(params.items())), dict(sorted(properties.items()))


def table_names(tags: dict) -> dict:
    """``{name: artifact path}`` of the run's tables: SDK v1's by their path without
    ``.json``, a value logged as a table (``metrics/<key>.json``) by its original name."""
    out = {}
    for path in table_paths(tags):
        stem = path[:-len(".json")] if path.endswith(".json") else path
        if stem.startswith(VALUE_FOLDER):
            stem = original_name(tags, stem[len(VALUE_FOLDER):])
        out.setdefault(stem, path)
    return out


def fields(run, attachments=None) -> dict:
    info, tags = run.info, run.data.tags
    raw = our_tag(tags, ARGUMENTS_TAG)
    try:
        arguments = json.loads(raw) if raw is not None else None
    except ValueError:
        arguments = raw
    script = our_tag(tags, SCRIPT_TAG) or posixpath.basename(
        tags.get("mlflow.source.name", "").replace("\\", "/")) or None
    end = info.end_time if info.status != "RUNNING" else None
    # A nested run (SDK v1's child runs) names its parent; other runs carry no such field.
    parent = {"parent_run_id": tags[PARENT_TAG]} if tags.get(PARENT_TAG) else {}
    params, properties = split_params(run)
    return {
        "run_id": info.run_id,
        "run_number": info.start_time,
        "name": info.run_name,
        "script_name": script,
        "status": STATUS.get(info.status, str(info.status).title()),
        "created_utc": _utc(info.start_time),
        "start_time_utc": _utc(info.start_time),
        "end_time_utc": _utc(end),
        "duration": duration(info.start_time, end),
        "experiment_id": info.experiment_id,
        "target": "local",
        "user_id": tags.get("mlflow.user") or info.user_id,
        "properties": {"params": params, "arguments": arguments,
                       # SDK v1's run.add_properties(), on the runs that added any
                       **({"run_properties": properties} if properties else {}),
                       "working_dir": our_tag(tags, WORKDIR_TAG),
                       "artifact_uri": info.artifact_uri},
        "attachments": attachments,
        **parent,
    }


def rows(runs) -> list[dict]:
    """Flattened runs; a run lacking another run's metric carries ``None`` for it."""
    found = [values(run) for run in runs]
    names = sorted({name for row in found for name in row})
    return [{**{n: row.get(n) for n in names}, **fields(run)} for run, row in zip(runs, found)]


class Page(list):
    """One page of runs and the token of the next (MLflow's PagedList, without MLflow)."""

    token = None


def _run_from_json(doc: dict):
    """A REST run document as the attributes ``values``/``fields`` read from an MLflow Run."""
    info, data = doc["info"], doc.get("data", {})
    pairs = lambda kind: {i["key"]: i.get("value", "") for i in data.get(kind, [])}  # noqa: E731
    as_int = lambda value: None if value is None else int(value)  # noqa: E731
    return SimpleNamespace(
        info=SimpleNamespace(
            run_id=info["run_id"], run_name=info.get("run_name"), status=info.get("status"),
            start_time=as_int(info.get("start_time")), end_time=as_int(info.get("end_time")),
            experiment_id=info.get("experiment_id"), user_id=info.get("user_id"),
            artifact_uri=info.get("artifact_uri")),
        data=SimpleNamespace(metrics={k: float(v) for k, v in pairs("metrics").items()},
                             params=pairs("params"), tags=pairs("tags")))


def _document_value(value, kind: str, size: int, path: str):
    """The value itself if small, else a preview of its JSON naming the artifact."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(text) <= DOCUMENT_INLINE:
        return value
    return f"{kind} {text[:DOCUMENT_PREVIEW]}… ({size:,} bytes: artifact {path})"
