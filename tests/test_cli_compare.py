"""``azml history compare``: runs side by side (metrics, params, duration)."""
from __future__ import annotations

import re

import pytest
from cli_support import DURATION, cli, empty_db, one_line_error  # noqa: F401 - fixtures


@pytest.fixture
def runs(cli):
    a = cli.seed({"Accuracy": 0.8, "loss": [1.0, 0.5]}, params={"lr": 0.1})
    b = cli.seed({"Accuracy": 0.9, "f1 (macro)": 0.7}, params={"lr": 0.01, "depth": 3})
    return a, b


def test_compare_json(cli, runs):
    rows = cli.json("history", "compare", "-r", runs[0], "-r", runs[1])
    assert [r["run_id"] for r in rows] == list(runs)
    assert [r["Accuracy"] for r in rows] == [0.8, 0.9]
    assert rows[0]["f1 (macro)"] is None and rows[1]["loss"] is None
    assert [r["properties"]["params"] for r in rows] == [{"lr": "0.1"}, {"depth": "3", "lr": "0.01"}]
    assert all(re.match(DURATION, r["duration"]) for r in rows)


def test_compare_table_has_a_column_per_run(cli, runs):
    lines = cli("history", "compare", "--run", runs[0], "--run", runs[1], "-o", "table").stdout.splitlines()
    assert lines[0].split() == ["Field", "Run_1", "Run_2"]
    rows = {line.split("  ")[0].strip(): line.split() for line in lines[2:]}
    assert rows["Run_id"][-2:] == list(runs)  # whole and as they are (a header would be capitalized)
    assert rows["Accuracy"][-2:] == ["0.8", "0.9"]
    assert rows["param lr"][-2:] == ["0.1", "0.01"] and rows["param depth"][-1] == "3"
    assert "Duration" in rows and "Status" in rows


def test_compare_tsv_and_query(cli, runs):
    lines = cli("history", "compare", "-r", runs[0], "-r", runs[1], "-o", "tsv").stdout.splitlines()
    assert [runs[i] in line for i, line in enumerate(lines)] == [True, True]
    best = cli("history", "compare", "-r", runs[0], "-r", runs[1], "-o", "tsv",
               "--query", "max_by(@, &Accuracy).run_id").stdout.strip()
    assert best == runs[1]


def test_compare_unknown_run(cli, runs):
    one_line_error(cli("history", "compare", "-r", runs[0], "-r", "e" * 32, code=1), "e" * 32)


def test_compare_by_prefixes(cli, runs):
    rows = cli.json("history", "compare", "-r", runs[0][:10], "-r", runs[1][:10])
    assert [r["run_id"] for r in rows] == list(runs)
