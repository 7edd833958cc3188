"""``azml history list``: runs newest first in Workbench's shapes, on both stores."""
from __future__ import annotations

import json
import re

from cli_support import DURATION, cli, empty_db, one_line_error, sqlite_cli  # noqa: F401 - fixtures
from conftest import free_port

import azml_compat._core.query as history

EXAMPLE = "@[?Accuracy != null] | max_by(@, &Accuracy).Accuracy"


def seed_three(cli):
    a = cli.seed({"Accuracy": 0.5, "loss": [0.9, 0.4]}, args=["0.5"])
    b = cli.seed({"Accuracy": 0.75, "accuracy (%)": 75}, strings={"note": "best"})
    c = cli.seed({"loss": 0.3}, script="other.py", status="FAILED")
    return a, b, c


def test_json_is_workbench_flattened_newest_first(cli):
    a, b, c = seed_three(cli)
    rows = cli.json("history", "list")
    assert [r["run_id"] for r in rows] == [c, b, a]
    newest, middle, oldest = rows
    assert newest["Accuracy"] is None and newest["accuracy (%)"] is None  # null, not missing
    assert middle["accuracy (%)"] == 75 and "accuracy ___" not in middle  # original name
    assert middle["note"] == "best" and oldest["loss"] == 0.4  # latest value of the series
    assert [r["status"] for r in rows] == ["Failed", "Completed", "Completed"]
    assert newest["script_name"] == "other.py" and oldest["properties"]["arguments"] == ["0.5"]
    assert all(re.match(DURATION, r["duration"]) for r in rows)
    assert oldest["run_number"] < middle["run_number"] < newest["run_number"]
    assert all(r["target"] == "local" and r["user_id"] == "tester" for r in rows)


def test_table_columns_are_metrics_then_workbench_fields(cli):
    ids = seed_three(cli)
    lines = cli("history", "list", "-o", "table").stdout.splitlines()
    header = lines[0].split()
    assert header[-5:] == ["Duration", "Run_id", "Script_name", "Start_time_utc", "Status"]
    assert header.index("Accuracy") < header.index("Duration")
    assert [line.split()[-4] for line in lines[2:]] == list(reversed(ids))


def test_table_fits_the_terminal(cli):
    ids = seed_three(cli)
    result = cli("history", "list", "-o", "table", env={"COLUMNS": "72"})
    assert max(len(line) for line in result.stdout.splitlines()) <= 72
    assert all(run_id in result.stdout for run_id in ids)  # other columns give way, not these
    assert "Start_time_utc" in result.stderr  # named as left out


def test_tsv_one_line_per_run(cli):
    ids = seed_three(cli)
    lines = cli("history", "list", "-o", "tsv").stdout.splitlines()
    assert len(lines) == 3 and len({line.count("\t") for line in lines}) == 1
    assert [next(f for f in line.split("\t") if f in ids) for line in lines] == list(reversed(ids))


def test_jmespath_example_from_the_workbench_docs(cli):
    seed_three(cli)
    assert json.loads(cli("history", "list", "-o", "json", "--query", EXAMPLE).stdout) == 0.75
    assert cli("history", "list", "-o", "tsv", "--query", EXAMPLE).stdout.strip() == "0.75"


def test_max_limits_and_pages(cli, monkeypatch):
    ids = [cli.seed({"i": i}) for i in range(5)]
    monkeypatch.setattr(history, "PAGE", 2)  # several server-side pages
    assert [r["i"] for r in cli.json("history", "list", "--max", "3")] == [4, 3, 2]
    assert [r["run_id"] for r in cli.json("history", "list", "--max", "0")] == ids[::-1]


def test_experiment_option(cli):
    other = cli.seed({"x": 1}, experiment=cli.store.experiment + "-other")
    cli.seed({"y": 2})
    rows = cli.json("history", "list", "-e", cli.store.experiment + "-other")
    assert [r["run_id"] for r in rows] == [other] and "y" not in rows[0]


def test_unknown_experiment_is_one_line(cli):
    cli.seed({"x": 1})
    result = cli("history", "list", "-e", "no-such-experiment", code=1)
    one_line_error(result, "no-such-experiment", "not found")


def test_installed_command_and_alias_form(cli):
    ids = seed_three(cli)
    proc = cli.run("ml", "history", "list", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert [r["run_id"] for r in json.loads(proc.stdout)] == list(reversed(ids))


def test_unreachable_server(sqlite_cli, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = sqlite_cli("history", "list", code=1)
    one_line_error(result, "cannot reach", url, "Connection refused")


def test_tsv_of_a_list_query_is_one_line_per_row(sqlite_cli):
    ids = seed_three(sqlite_cli)
    out = sqlite_cli("history", "list", "-o", "tsv", "--query", "[].[run_id, status]").stdout
    assert out.splitlines() == [f"{run_id}\t{status}" for run_id, status in
                                zip(reversed(ids), ["Failed", "Completed", "Completed"])]
    # a list of scalars stays one value per line, as in az
    ids_only = sqlite_cli("history", "list", "-o", "tsv", "--query", "[].run_id").stdout
    assert ids_only.splitlines() == list(reversed(ids))
