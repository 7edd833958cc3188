"""``azml history list|last|info|download|compare|promote``: Workbench's ``az ml history``."""
from __future__ import annotations

import shutil
import sys
from collections import OrderedDict

import click

from .._core.query import DEFAULT_MAX, History, HistoryError
from .._azml.registry import promote as register
from .._core.runs import RUN_FIELDS

from ._output import Tables, cell as _cell, rendered, series_rows

LIST_COLUMNS = ("duration", "run_id", "script_name", "start_time_utc", "status")

def resolve_run_ids(ctx, param, value):
    """`-r` takes a whole run id or any unique prefix of one (as a table may show it)."""
    if value is None or ctx.resilient_parsing:
        return value
    history = History()
    if isinstance(value, tuple):
        return tuple(history.resolve_run_id(v) for v in value)
    return history.resolve_run_id(value)


run_option = click.option("-r", "--run", "run_id", required=True, metavar="RUNID",
                          callback=resolve_run_ids, help="Run id, or any unique prefix of it.")
experiment_option = click.option("-e", "--experiment", metavar="NAME",
                                 help="Experiment (default: MLFLOW_EXPERIMENT_NAME or this folder's name).")


def metric_names(rows: list[dict]) -> list[str]:
    return [k for k in (rows[0] if rows else {}) if k not in RUN_FIELDS]


def list_table(rows: list[dict]) -> list:
    """Workbench's table transformer: the metrics, then Duration, Run_id, Script_name,
    Start_time_utc, Status."""
    names = metric_names(rows)
    # SDK v1's child runs: a Parent_run_id column, only when a listed run has a parent.
    columns = list(LIST_COLUMNS) + (["parent_run_id"] if any(r.get("parent_run_id") for r in rows)
                                    else [])
    return [OrderedDict([(n, _cell(r.get(n))) for n in names] +
                        [(c.capitalize(), _cell(r.get(c))) for c in columns]) for r in rows]


def _list_droppable(headers: list) -> list:
    """Too narrow a terminal loses these first (the run id never): the start time, script
    and duration, then the metrics from the last; Status and Run_id stay."""
    names = [h for h in headers if h not in {c.capitalize() for c in LIST_COLUMNS}]
    return ["Start_time_utc", "Script_name", "Duration"] + names[::-1]


list_table.droppable = _list_droppable


def run_table(run: dict) -> Tables:
    """Field/Value lines, then one line per metric series with a sparkline."""
    fields = [OrderedDict([("Field", k), ("Value", _cell(v))])
              for k, v in run.items() if k != "series"]
    return Tables([fields, series_rows(run["series"])] if run.get("series") else [fields])


def compare_table(rows: list[dict]) -> list:
    """One column per run (Run_1, Run_2, ...: knack capitalizes a header, which would change
    a run id): its id, metrics, params, SDK v1's properties, then duration and status."""
    names = metric_names(rows)
    params = sorted({p for r in rows for p in r["properties"]["params"]})
    properties = sorted({p for r in rows for p in r["properties"].get("run_properties", {})})

    def line(label, values):
        return OrderedDict([("Field", label)] +
                           [(f"Run_{i + 1}", _cell(v)) for i, v in enumerate(values)])

    body = [line("Run_id", [r["run_id"] for r in rows])]
    body += [line(n, [r.get(n) for r in rows]) for n in names]
    body += [line(f"param {p}", [r["properties"]["params"].get(p) for r in rows]) for p in params]
    body += [line(f"property {p}", [r["properties"].get("run_properties", {}).get(p) for r in rows])
             for p in properties]
    shown = ("duration", "status", "script_name", "start_time_utc") + (
        ("parent_run_id",) if any(r.get("parent_run_id") for r in rows) else ())
    body += [line(k.capitalize(), [r.get(k) for r in rows]) for k in shown]
    return body


@click.group()
def history() -> None:
    """Run history: list, inspect, download, compare and promote runs."""


@history.command("list")
@experiment_option
@click.option("--max", "max_runs", type=int, default=DEFAULT_MAX, show_default=True,
              help="Newest runs to show; 0 for all.")
@rendered(table=list_table)
def list_(experiment, max_runs):
    """Runs of an experiment, newest first."""
    return History().list_runs(experiment, max_runs)


@history.command()
@experiment_option
@rendered(table=run_table)
def last(experiment):
    """The newest run, in the same shape as `info`."""
    return History().last(experiment)


@history.command()
@run_option
@click.option("-a", "--artifact", metavar="PATH",
              help="Print this artifact instead (`driver_log`: the run's captured output).")
@rendered(table=run_table)
def info(run_id, artifact):
    """One run: metrics, fields, attachments and every series."""
    if artifact is None:
        return History().info(run_id)
    with History().artifact_file(run_id, artifact) as local:
        print_file(local, artifact)
    return None


def print_file(local: str, name: str) -> None:
    """Bytes as they are when piped; on a terminal text only (binary would garble it)."""
    out = sys.stdout.buffer  # click.get_binary_stream is deprecated (Click 9)
    with open(local, "rb") as fh:
        if out.isatty():
            head = fh.read(8192)
            if b"\x00" in head:
                raise HistoryError(f"{name} is binary; redirect stdout or use "
                                   "`azml history download`")
            fh.seek(0)
        shutil.copyfileobj(fh, out)
    out.flush()


@history.command()
@run_option
@click.option("-a", "--artifact", metavar="PATH", help="Only this file or folder.")
@click.option("-d", "--directory", required=True, type=click.Path(file_okay=False), help="Target folder.")
@click.option("--overwrite", is_flag=True, help="Replace files that exist.")
@rendered()
def download(run_id, artifact, directory, overwrite):
    """Download a run's artifacts, keeping their paths under DIRECTORY."""
    return History().download(run_id, artifact, directory, overwrite)


@history.command()
@click.option("-r", "--run", "run_ids", required=True, multiple=True, metavar="RUNID",
              callback=resolve_run_ids, help="Run id or a unique prefix; give two or more.")
@rendered(table=compare_table)
def compare(run_ids):
    """Runs side by side: metrics, params, duration."""
    return History().compare(run_ids)


@history.command()
@run_option
@click.option("-ap", "--artifact-path", "prefix", required=True, metavar="PREFIX",
              help="Artifact file or folder to register.")
@click.option("-n", "--name", required=True, help="Registered model name.")
@rendered()
def promote(run_id, prefix, name):
    """Register an artifact as a new model version; writes assets/NAME.link."""
    return register(History(), run_id, prefix, name)

