"""``azml asset download``: promote, then get the same bytes back (file and folder)."""
from __future__ import annotations

import json
import uuid

import pytest
from cli_support import cli, empty_db, one_line_error, tree  # noqa: F401 - fixtures

MODEL = bytes(range(256)) * 64
FOLDER = {"MLmodel": b"flavors: {}\n", "data/weights.bin": b"\x01" * 5000, "conf.json": b"{}"}


@pytest.fixture
def run_id(cli):
    return cli.seed({"a": 1}, artifacts={"outputs/model.pkl": MODEL,
                                         **{f"outputs/net/{k}": v for k, v in FOLDER.items()}})


def test_round_trip_of_a_file(cli, run_id, tmp_path):
    model = f"model-{uuid.uuid4().hex[:8]}.pkl"
    cli("history", "promote", "-r", run_id, "-ap", "outputs/model.pkl", "-n", model)
    written = cli.json("asset", "download", "-l", f"assets/{model}.link", "-d", tmp_path / "a")
    assert tree(tmp_path / "a") == {"model.pkl": MODEL}
    assert written == [str(tmp_path / "a" / "model.pkl")]


def test_round_trip_of_a_folder_through_the_installed_alias(cli, run_id, tmp_path):
    model = f"net-{uuid.uuid4().hex[:8]}"
    proc = cli.run("ml", "history", "promote", "-r", run_id, "-ap", "outputs/net", "-n", model,
                   "-o", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["version"] == "1"
    proc = cli.run("ml", "asset", "download", "-l", f"assets/{model}.link", "-d", tmp_path / "b")
    assert proc.returncode == 0, proc.stderr
    assert tree(tmp_path / "b") == {f"net/{k}": v for k, v in FOLDER.items()}


def test_by_name_and_version(cli, run_id, tmp_path):
    model = f"m-{uuid.uuid4().hex[:8]}"
    cli("history", "promote", "-r", run_id, "-ap", "outputs/model.pkl", "-n", model)
    cli("history", "promote", "-r", run_id, "-ap", "outputs/net", "-n", model)
    cli("asset", "download", "-n", model, "-d", tmp_path / "latest")
    assert set(tree(tmp_path / "latest")) == {f"net/{k}" for k in FOLDER}
    out = cli("asset", "download", "--name", model, "--version", "1", "--directory", tmp_path / "v1",
              "-o", "tsv").stdout
    assert tree(tmp_path / "v1") == {"model.pkl": MODEL} and out.strip() == str(tmp_path / "v1" / "model.pkl")
    one_line_error(cli("asset", "download", "-n", model, "-v", "1", "-d", tmp_path / "v1", code=1),
                   "--overwrite")
    cli("asset", "download", "-n", model, "-v", "1", "-d", tmp_path / "v1", "--overwrite")


def test_errors(cli, run_id, tmp_path):
    one_line_error(cli("asset", "download", "-l", tmp_path / "none.link", "-d", tmp_path, code=1),
                   "none.link")
    one_line_error(cli("asset", "download", "-n", f"absent-{uuid.uuid4().hex[:6]}", "-d", tmp_path,
                       code=1), "absent-")
    assert cli("asset", "download", "-d", tmp_path, code=2).exit_code == 2  # neither -l nor -n
