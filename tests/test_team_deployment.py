"""The team deployment (docker/compose.yaml) run natively: legacy scripts and ``azml`` against
``mlflow server`` on PostgreSQL with 4 workers and proxied artifacts (a local folder, or S3 with
moto standing in for MinIO), with and without basic auth. See tests/team_support.py."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from cli_support import _cli
from conftest import REPO, clean_env
from team_support import (auth_server, moto_s3, pg_cluster, team_s3_server,  # noqa: F401
                          team_server, team_store)

EXAMPLE = (REPO / "examples" / "iris" / "train.py").read_text()
# What examples/iris/train.py logs: metric key -> number of points.
EXAMPLE_POINTS = {"Regularization Rate": 1, "Loss per epoch": 50, "Accuracy": 1, "Loss curve": 50,
                  "my metric 1": 1}


@pytest.fixture(params=["local", "s3"])
def deployed(request):
    """The team server with artifacts in a local folder, then in S3 (moto standing in for MinIO)."""
    return request.getfixturevalue({"local": "team_server", "s3": "team_s3_server"}[request.param])


def points_in_postgres(server, run_id: str) -> dict:
    """{key: (points, distinct steps)} read straight from the server's PostgreSQL database."""
    rows = server.query("SELECT key, count(*), count(DISTINCT step) FROM metrics "
                        "WHERE run_uuid = %s GROUP BY key", run_id)
    return {key: (n, steps) for key, n, steps in rows}


def check_example_run(store, server) -> str:
    """The example's run as a Workbench user expects it, stored in PostgreSQL; returns its id."""
    run = store.only_run()
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.metrics["Regularization Rate"] == 0.01
    assert 0.5 < run.data.metrics["Accuracy"] <= 1.0
    assert run.data.tags["Model"] == "logistic regression"
    for key in ("Loss curve", "Loss per epoch"):
        assert [m.step for m in store.history(run_id, key)] == list(range(50)), key
    assert points_in_postgres(server, run_id) == {k: (n, n) for k, n in EXAMPLE_POINTS.items()}
    assert {"outputs/model.pkl", "reports/summary.txt"} <= store.artifact_paths(run_id)
    assert (store.artifact_bytes(run_id, "outputs/model.pkl")
            == (store.workdir / "outputs" / "model.pkl").read_bytes())
    return run_id


def test_example_script_lands_in_postgres_and_artifact_store(deployed, tmp_path):
    store = team_store(deployed, tmp_path)
    proc = store.run_script(EXAMPLE, "0.01")
    assert "Accuracy is" in proc.stdout
    run_id = check_example_run(store, deployed)
    assert store.journals() == []  # all delivered, nothing left for `azml sync`
    local = [p for p in (deployed.root / "artifacts").rglob("*") if p.is_file()]
    if hasattr(deployed, "s3"):
        # The bytes read back above came through the server from the bucket, not a local folder.
        assert local == []
        keys = deployed.s3.keys("mlflow/")
        assert any(k.endswith(f"/{run_id}/artifacts/outputs/model.pkl") for k in keys), keys
    else:
        assert any(p.as_posix().endswith(f"{run_id}/artifacts/outputs/model.pkl") for p in local)


def test_azml_history_promote_and_asset_download(deployed, tmp_path, monkeypatch):
    store = team_store(deployed, tmp_path)
    store.run_script(EXAMPLE, "0.01")
    run = store.only_run()
    cli = _cli(store, None, monkeypatch)

    [listed] = cli.json("history", "list")
    assert listed["run_id"] == run.info.run_id
    assert listed["status"] == "Completed"
    assert listed["Accuracy"] == run.data.metrics["Accuracy"]
    info = cli.json("history", "info", "-r", run.info.run_id)
    assert len(info["series"]["Loss curve"]) == 50
    assert "outputs/model.pkl" in info["attachments"]

    name = f"iris-{uuid.uuid4().hex[:8]}"
    cli("history", "promote", "-r", run.info.run_id, "-ap", "outputs/model.pkl", "-n", name)
    assert (store.workdir / "assets" / f"{name}.link").is_file()
    cli("asset", "download", "-l", f"assets/{name}.link", "-d", "deploy")
    assert ((store.workdir / "deploy" / "model.pkl").read_bytes()
            == (store.workdir / "outputs" / "model.pkl").read_bytes())


# -- basic auth ------------------------------------------------------------------------------------
def outputs_of(*procs) -> str:
    text = []
    for proc in procs:
        for stream in (proc.stdout, proc.stderr):
            text.append(stream.decode() if isinstance(stream, bytes) else stream or "")
    return "\n".join(text)


def test_basic_auth_is_enforced(auth_server):
    search = f"{auth_server.url}/api/2.0/mlflow/experiments/search"
    assert requests.get(search, params={"max_results": 1}, timeout=30).status_code == 401
    assert requests.get(search, params={"max_results": 1}, auth=auth_server.member,
                        timeout=30).status_code == 200


def test_basic_auth_right_credentials(auth_server, tmp_path, monkeypatch):
    member = auth_server.credentials(auth_server.member)
    store = team_store(auth_server, tmp_path, monkeypatch, **member)
    script = store.run_script(EXAMPLE, "0.01")
    check_example_run(store, auth_server)
    listed = _cli(store, None, monkeypatch).run("history", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert store.only_run().info.run_id.encode() in listed.stdout
    assert auth_server.member[1] not in outputs_of(script, listed)


def test_basic_auth_wrong_credentials_keep_the_journal_until_sync(auth_server, tmp_path,
                                                                  monkeypatch):
    right = auth_server.credentials(auth_server.member)
    wrong = {**right, "MLFLOW_TRACKING_PASSWORD": "not-" + auth_server.member[1][:6] + "-wrong"}
    store = team_store(auth_server, tmp_path, monkeypatch, **right)  # the test reads as alice
    cli = _cli(store, None, monkeypatch)

    # The example unchanged: its `.wait()` warns (credentials refused) instead of hanging, the
    # script finishes its training, and the exit does not wait for a fix that cannot come.
    flush_timeout = 30
    started = time.monotonic()
    script = store.run_script(EXAMPLE, "0.01", AZML_FLUSH_TIMEOUT=flush_timeout, timeout=60,
                              **wrong)
    elapsed = time.monotonic() - started
    assert elapsed < 15, elapsed  # well inside AZML_FLUSH_TIMEOUT: nothing to wait for
    assert "Accuracy is" in script.stdout
    assert "refused the credentials" in script.stderr and "azml sync" in script.stderr
    assert "401" in script.stderr, script.stderr
    assert len(store.journals()) == 1
    assert store.runs() == []  # nothing reached the server...

    denied = cli.run("history", "list", **wrong)
    assert denied.returncode == 1
    assert b"401" in denied.stderr or b"credentials" in denied.stderr.lower(), denied.stderr

    synced = cli.run("sync", "-o", "json")  # ...until `azml sync` runs with the right password
    assert synced.returncode == 0, synced.stderr
    run_id = check_example_run(store, auth_server)
    assert store.journals() == []
    assert store.only_run().info.run_id == run_id
    everything = outputs_of(script, denied, synced)
    assert right["MLFLOW_TRACKING_PASSWORD"] not in everything
    assert wrong["MLFLOW_TRACKING_PASSWORD"] not in everything


def test_a_password_in_the_uri_is_never_printed_or_journaled(auth_server, tmp_path):
    user, password = auth_server.member
    host = auth_server.url.split("://", 1)[1]
    wrong_uri, right_uri = f"http://{user}:x{password}@{host}", f"http://{user}:{password}@{host}"
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "train.py").write_text(
        "from azureml.logging import get_azureml_logger\n"
        "get_azureml_logger().log('m', [1, 2, 3])\n")
    env = {k: v for k, v in clean_env().items() if not k.startswith("MLFLOW_TRACKING_")}
    env.update(AZML_HOME=str(tmp_path / "home"), MLFLOW_EXPERIMENT_NAME="uri-credentials",
               AZML_FLUSH_TIMEOUT="5")
    script = subprocess.run([sys.executable, "train.py"], cwd=workdir, timeout=120, text=True,
                            capture_output=True, env={**env, "MLFLOW_TRACKING_URI": wrong_uri})
    assert "azml sync" in script.stderr and f"{user}:***@" in script.stderr
    (journal,) = (tmp_path / "home" / "journal").glob("*.db")
    assert password.encode() not in journal.read_bytes()
    synced = subprocess.run(["azml", "sync"], cwd=workdir, timeout=120, text=True,
                            capture_output=True, env={**env, "MLFLOW_TRACKING_URI": right_uri})
    assert synced.returncode == 0, synced.stderr
    everything = script.stdout + script.stderr + synced.stdout + synced.stderr
    assert password not in everything
    seen = requests.post(f"{auth_server.url}/api/2.0/mlflow/runs/search", timeout=30,
                         auth=auth_server.member, json={"experiment_ids": [], "max_results": 1000})
    assert seen.status_code in (200, 400)  # the run exists: read it through the client below
    from mlflow.tracking import MlflowClient

    client = MlflowClient(right_uri)
    experiment = client.get_experiment_by_name("uri-credentials")
    (run,) = client.search_runs([experiment.experiment_id])
    assert [m.value for m in client.get_metric_history(run.info.run_id, "m")] == [1.0, 2.0, 3.0]


# -- load ------------------------------------------------------------------------------------------
POINTS = 20_000
SCRIPTS = 8
LOAD_SCRIPT = """
import sys
from azureml.logging import get_azureml_logger

logger = get_azureml_logger()
for i in range(int(sys.argv[1])):
    logger.log("loss", i / 1000)
"""


def test_eight_concurrent_scripts_lose_no_point(team_server, tmp_path):
    store = team_store(team_server, tmp_path)
    script = store.write_script(LOAD_SCRIPT)
    env = store.env(AZML_FLUSH_TIMEOUT=300)
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, str(script), str(POINTS)], cwd=store.workdir,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(SCRIPTS)]
    results = [(p, *p.communicate(timeout=600)) for p in procs]
    wall = time.monotonic() - started
    for proc, _out, err in results:
        assert proc.returncode == 0, err
        assert "azml sync" not in err, err
    print(f"\n{SCRIPTS} scripts x {POINTS} points: {wall:.1f} s wall, "
          f"{SCRIPTS * POINTS / wall:,.0f} points/s")

    runs = store.runs()
    assert len(runs) == SCRIPTS
    expected_sum = sum(i / 1000 for i in range(POINTS))
    for run in runs:
        assert run.info.status == "FINISHED"
        [(n, steps, low, high, total)] = team_server.query(
            "SELECT count(*), count(DISTINCT step), min(step), max(step), sum(value) FROM metrics "
            "WHERE run_uuid = %s AND key = 'loss'", run.info.run_id)
        assert (n, steps, low, high) == (POINTS, POINTS, 0, POINTS - 1)
        assert total == pytest.approx(expected_sum)
    # And through the server, as a reader sees them.
    history = store.history(runs[0].info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(i, i / 1000) for i in range(POINTS)]
    assert store.journals() == []
