"""``azml history info``: one run with its series, or one artifact's bytes; error paths."""
from __future__ import annotations

import json
import re

import pytest

from azml_compat._core.query import PREFIX_CANDIDATES
from cli_support import DURATION, cli, empty_db, one_line_error, sqlite_cli  # noqa: F401 - fixtures
from conftest import free_port

BLOB = bytes(range(256)) * 4


@pytest.fixture
def run_id(cli):
    return cli.seed({"Accuracy": 0.9, "Loss curve": [0.9, 0.5, 0.3, 0.2], "acc (%)": 91},
                    strings={"note": "hello"}, params={"lr": 0.01},
                    artifacts={"driver_log.txt": b"epoch 1\nepoch 2\n", "outputs/model.pkl": BLOB,
                               "outputs/deep/w.bin": b"w"})


def test_info_json(cli, run_id):
    info = cli.json("history", "info", "-r", run_id)
    assert info["run_id"] == run_id and info["status"] == "Completed"
    assert info["Loss curve"] == 0.2 and info["acc (%)"] == 91 and info["note"] == "hello"
    assert info["series"] == {"Accuracy": [0.9], "Loss curve": [0.9, 0.5, 0.3, 0.2], "acc (%)": [91.0]}
    assert info["attachments"] == "driver_log.txt, outputs/deep/w.bin, outputs/model.pkl"
    assert info["properties"]["params"] == {"lr": "0.01"}
    assert re.match(DURATION, info["duration"]) and info["duration"] == "0:00:00.500000"
    assert info["start_time_utc"] < info["end_time_utc"]


def test_info_table_draws_series(cli, run_id):
    out = cli("history", "info", "-r", run_id, "-o", "table").stdout
    line = next(text for text in out.splitlines() if text.startswith("Loss curve") and "█" in text)
    assert "█▄▂▁" in line and line.split()[-4:] == ["4", "0.2", "0.9", "0.2"]


def test_info_tsv(cli, run_id):
    fields = cli("history", "info", "-r", run_id, "-o", "tsv").stdout.rstrip("\n").split("\t")
    assert run_id in fields and "Completed" in fields


def test_info_query(cli, run_id):
    out = cli("history", "info", "-r", run_id, "-o", "json", "--query", "series.\"Loss curve\"[-1]")
    assert json.loads(out.stdout) == 0.2


def test_artifact_bytes_as_is(cli, run_id):
    assert cli("history", "info", "-r", run_id, "-a", "outputs/model.pkl").stdout_bytes == BLOB
    # Workbench's attachment name for the captured output
    assert cli("history", "info", "-r", run_id, "-a", "driver_log").stdout == "epoch 1\nepoch 2\n"


def test_artifact_through_the_installed_command(cli, run_id):
    proc = cli.run("history", "info", "-r", run_id, "-a", "outputs/model.pkl")
    assert proc.returncode == 0 and proc.stdout == BLOB


@pytest.mark.parametrize("path, words", [
    ("outputs/missing.pkl", ["no artifact", "outputs/missing.pkl"]),
    ("../../mlflow.db", ["'..'"]),
    ("outputs/../../x", ["'..'"]),
    ("/etc/passwd", ["absolute"]),
    ("outputs", ["folder"]),
])
def test_artifact_errors(cli, run_id, path, words):
    result = cli("history", "info", "-r", run_id, "-a", path, code=1)
    one_line_error(result, *words)
    assert result.stdout == ""


def test_unknown_run(cli, run_id):
    one_line_error(cli("history", "info", "-r", "0" * 32, code=1), "0" * 32, "not found")


def test_bad_query(cli, run_id):
    # a usage error, as az's: exit 2
    one_line_error(cli("history", "info", "-r", run_id, "--query", "[?", code=2), "--query", "[?")


def test_debug_shows_the_traceback(cli, run_id):
    result = cli("--debug", "history", "info", "-r", "0" * 32, code=1)
    assert "Traceback" in result.stderr and "not found" in result.stderr  # not one line
    proc = cli.run("history", "info", "-r", "0" * 32, "--debug")
    assert proc.returncode == 1 and b"Traceback" in proc.stderr


def test_unreachable_server_fails_fast_in_one_line(sqlite_cli):
    url = f"http://127.0.0.1:{free_port()}"
    proc = sqlite_cli.run("history", "info", "-r", "0" * 32, MLFLOW_TRACKING_URI=url,
                   MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", timeout=60)
    assert proc.returncode == 1 and proc.stdout == b""
    one_line_error(proc, "cannot reach", url, "Connection refused")


def test_no_store_in_this_folder(sqlite_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(sqlite_cli("history", "list", code=1), "mlflow.db", "does not exist")
    assert not (tmp_path / "mlflow.db").exists()  # a read leaves no empty store behind


def test_any_unique_prefix_of_a_run_id(cli, run_id):
    for prefix in (run_id[:6], run_id[:12], run_id.upper()[:8]):
        assert cli.json("history", "info", "-r", prefix)["run_id"] == run_id
    out = cli("history", "info", "-r", run_id[:8], "-a", "driver_log").stdout
    assert out == "epoch 1\nepoch 2\n"


def test_unknown_and_ambiguous_prefixes_are_one_line(cli, run_id):
    others = [cli.seed({"x": i}) for i in range(16)]  # 17 runs: two share a first hex digit
    firsts = [r[0] for r in [run_id, *others]]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    line = one_line_error(cli("history", "info", "-r", shared, code=1), repr(shared), "ambiguous")
    # The prefix is looked up in every experiment of the store (a server's is shared by tests)
    from mlflow.entities import ViewType

    client = cli.store.client
    every = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    ids = [r.info.run_id for r in client.search_runs(every, run_view_type=ViewType.ALL,
                                                     max_results=50000)]
    count = sum(r.startswith(shared) for r in ids)
    assert (f" {count} runs" if count <= PREFIX_CANDIDATES else f"more than {PREFIX_CANDIDATES}") in line
    unused = next(p for p in (f"{i:04x}" for i in range(65536))
                  if not any(r.startswith(p) for r in ids))
    one_line_error(cli("history", "info", "-r", unused, code=1), repr(unused), "not found")
    one_line_error(cli("history", "info", "-r", "5f0c%", code=1), "5f0c%", "not found")
