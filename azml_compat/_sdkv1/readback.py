"""What SDK v1's ``get_metrics``/``get_tags``/``get_properties``/``get_details`` return, read
back from the store in SDK v1's shapes, through the ``azml`` CLI's queries (``_query.History``:
a tracking server over plain REST, no MLflow import, bounded on a dead server; other stores
through MLflow's client). Only called after the session has delivered what this process logged."""
from __future__ import annotations

import json

from .._core.records import LEGACY_NAME_TAG_PREFIX, NAME_TAG_PREFIX, TEXT_METRIC_TAG_PREFIX
from .._core.runs import table_names

# MLflow's run statuses as SDK v1 named them (``run.get_status()``).
STATUS = {"RUNNING": "Running", "SCHEDULED": "NotStarted", "FINISHED": "Completed",
          "FAILED": "Failed", "KILLED": "Canceled"}


def client(tracking_uri: str):
    """The queries for the store at ``tracking_uri`` (the unredacted one the session uses)."""
    from .._core.query import History

    return History(tracking_uri)


def _names(tags: dict) -> dict:
    """MLflow key -> the name the script logged (keys we had to map carry it in a tag)."""
    out = {}
    for tag, value in tags.items():
        for prefix in (NAME_TAG_PREFIX, LEGACY_NAME_TAG_PREFIX):
            if tag.startswith(prefix):
                out[tag[len(prefix):]] = value
    return out


def _load_table(history, run_id: str, path: str) -> dict:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        local = history.fetch_file(run_id, path, folder)
        with open(local, encoding="utf-8") as stream:
            doc = json.load(stream)
    columns, rows = doc.get("columns", []), doc.get("data", [])
    return {c: [row[i] if i < len(row) else None for row in rows] for i, c in enumerate(columns)}


def metrics(history, run_id: str, name: str | None = None, known=None) -> dict:
    """``{name: value}`` for a name logged once, ``{name: [values]}`` for a series (in step
    order), ``{table: {column: [cells]}}`` for a table; a table's ``<table>.<column>`` metrics
    (ours, for charts) are not listed again. ``known(table)``: the rows of a table this
    process wrote (and has just delivered), else None: read from the store."""
    run = history.run(run_id)
    tags = run.data.tags
    points = (history.server or history.client).get_metric_history
    names = _names(tags)
    tables = table_names(tags)
    out: dict = {}
    for key in run.data.metrics:
        shown = names.get(key, key)
        if name is not None and shown != name:
            continue
        table, _, column = shown.rpartition(".")
        if table in tables and column:
            continue
        values = [m.value for m in sorted(points(run_id, key), key=lambda m: (m.step, m.timestamp))]
        out[shown] = values[0] if len(values) == 1 else values
    for tag in tags:
        if tag.startswith(TEXT_METRIC_TAG_PREFIX):  # run.log(name, "text"): the tag's value
            key = tag[len(TEXT_METRIC_TAG_PREFIX):]
            shown = names.get(key, key)
            if key in tags and (name is None or shown == name):
                out[shown] = tags[key]
    for table, path in tables.items():
        if name is None or table == name:
            rows = known(table) if known is not None else None
            out[table] = (_plain(rows) if rows is not None
                          else _load_table(history, run_id, path))
    return out


def _plain(columns: dict) -> dict:
    """Rows as SDK v1's service gave them back: JSON's plain numbers, not the numpy scalars a
    script logged (``np.float64(0.5)`` prints, and compares with ``is``, differently)."""
    return {column: [cell.item() if hasattr(cell, "item") and not isinstance(cell, (str, bytes))
                     else cell for cell in cells] for column, cells in columns.items()}


def children(history, run) -> list:
    """The runs nested directly under ``run`` (MLflow's ``mlflow.parentRunId``)."""
    return [history.run(run_id) for run_id in history.children(run)]


def delete_tag(history, run_id: str, key: str) -> None:
    if history.server is not None:
        history.server.call("runs/delete-tag", "POST", {"run_id": run_id, "key": key})
    else:
        history.client.delete_tag(run_id, key)


def user_tags(tags: dict) -> dict:
    """The run's tags a script set (MLflow's and ours, under ``mlflow.``, left out)."""
    names = _names(tags)
    # MLflow keeps no None: a tag given no value (``run.tag("best")``) is stored empty, and
    # reads back as SDK v1 showed it, None.
    return {names.get(k, k): (v if v != "" else None) for k, v in tags.items()
            if not k.startswith("mlflow.")}


def properties(run) -> dict:
    """``get_properties()``: the properties added, by the names the script gave."""
    from .._core.runs import split_params

    return split_params(run)[1]


def details(run, properties: dict) -> dict:
    """``get_details()``: the fields SDK v1 gave that have a meaning here."""
    from .._core.runs import _utc

    info = run.info
    return {
        "runId": info.run_id,
        "target": "local",
        "status": STATUS.get(info.status, info.status),
        "startTimeUtc": _utc(info.start_time),
        "endTimeUtc": _utc(info.end_time) if info.end_time else None,
        "properties": properties,
        "inputDatasets": [],
        "outputDatasets": [],
        "runDefinition": {},
        "logFiles": {},
    }
