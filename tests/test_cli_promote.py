"""``azml history promote``: an artifact becomes a registered model version plus assets/NAME.link."""
from __future__ import annotations

import json
import uuid

import pytest
from cli_support import cli, empty_db, one_line_error  # noqa: F401 - fixtures


@pytest.fixture
def run_id(cli):
    return cli.seed({"a": 1}, artifacts={"outputs/model.pkl": b"\x80pickle", "outputs/m/w.bin": b"w"})


def name() -> str:
    return f"model-{uuid.uuid4().hex[:8]}.pkl"  # the server's registry outlives a test


def test_promote_file_writes_link_and_registers(cli, run_id):
    model = name()
    result = cli.json("history", "promote", "-r", run_id, "-ap", "outputs/model.pkl", "-n", model)
    link = json.loads((cli.store.workdir / "assets" / f"{model}.link").read_text())
    assert link["name"] == model and link["version"] == "1" and link["modelUri"] == f"models:/{model}/1"
    assert link["assetSource"] == "mlflow" and result["linkFile"] == f"assets/{model}.link"
    version = cli.store.client.get_model_version(model, "1")
    assert version.run_id == run_id and version.source.endswith("/outputs/model.pkl")


def test_promote_again_makes_version_two(cli, run_id):
    model = name()
    cli("history", "promote", "-r", run_id, "--artifact-path", "outputs/m", "--name", model)
    promoted = cli.json("history", "promote", "-r", run_id, "-ap", "outputs/m", "-n", model)
    assert promoted["name"] == model and promoted["version"] == "2"
    out = cli("history", "promote", "-r", run_id, "-ap", "outputs/m", "-n", model, "-o", "tsv").stdout
    # az's tsv: the values in the order of the sorted keys
    assert out.rstrip("\n").split("\t")[sorted(promoted).index("version")] == "3"
    table = cli("history", "promote", "-r", run_id, "-ap", "outputs/m", "-n", model, "-o", "table").stdout
    assert "Version" in table and " 4" in table


@pytest.mark.parametrize("prefix, words", [
    ("outputs/missing", ["no artifact path", "outputs/missing"]),
    ("../outputs", ["'..'"]),
    ("/outputs/model.pkl", ["absolute"]),
])
def test_bad_prefix_registers_nothing(cli, run_id, prefix, words):
    from mlflow.exceptions import MlflowException

    model = name()
    one_line_error(cli("history", "promote", "-r", run_id, "-ap", prefix, "-n", model, code=1), *words)
    with pytest.raises(MlflowException):
        cli.store.client.get_registered_model(model)
    assert not (cli.store.workdir / "assets").exists()


def test_bad_name_and_unknown_run(cli, run_id):
    one_line_error(cli("history", "promote", "-r", run_id, "-ap", "outputs", "-n", "a/b", code=1),
                   "a/b")
    one_line_error(cli("history", "promote", "-r", "d" * 32, "-ap", "outputs", "-n", name(), code=1),
                   "not found")


def test_promote_by_prefix(cli, run_id):
    link = cli.json("history", "promote", "-r", run_id[:9], "-ap", "outputs/m", "-n", name())
    assert link["runId"] == run_id
