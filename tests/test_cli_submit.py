"""``azml submit``: the run is created, the script attached to it, its output kept as
driver_log.txt, outputs/ uploaded once, status and exit code from the script."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_support import AZML, cli, empty_db, one_line_error, sqlite_cli  # noqa: F401 - fixtures
from conftest import MlflowServer, Store

FAILING = """
import os, sys
from azureml.logging import get_azureml_logger
logger = get_azureml_logger()
logger.log("Accuracy", 0.25)
logger.log("loss", [0.9, 0.8])
print("line to stdout", flush=True)
print("line to stderr", file=sys.stderr, flush=True)
os.makedirs("outputs", exist_ok=True)
open("outputs/partial.txt", "w").write("kept")
sys.exit(3)
"""


def test_failing_script(cli):
    cli.store.write_script(FAILING, "fail.py")
    proc = cli.run("submit", "fail.py", "--lr", "0.1", "-o", "ignored-by-azml")
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == b"line to stdout\n"  # the script's stdout, untouched
    assert b"line to stderr" in proc.stderr
    run = cli.store.only_run()  # the script attached to the submitted run: one run
    info = cli.json("history", "info", "-r", run.info.run_id)
    assert info["status"] == "Failed" and info["script_name"] == "fail.py"
    assert info["properties"]["arguments"] == ["--lr", "0.1", "-o", "ignored-by-azml"]
    assert info["Accuracy"] == 0.25 and info["series"]["loss"] == [0.9, 0.8]
    assert info["attachments"] == "driver_log.txt, outputs/partial.txt"
    log = cli("history", "info", "-r", run.info.run_id, "-a", "driver_log").stdout
    assert "line to stdout" in log and "line to stderr" in log
    assert cli.store.artifact_bytes(run.info.run_id, "outputs/partial.txt") == b"kept"


def test_submit_leaves_outputs_of_earlier_runs_alone(sqlite_cli):
    import os
    import time

    outputs = sqlite_cli.store.workdir / "outputs"
    outputs.mkdir()
    (outputs / "model.pkl").write_bytes(b"stale")
    os.utime(outputs / "model.pkl", (time.time() - 3600,) * 2)
    sqlite_cli.store.write_script("import sys\nsys.exit(1)\n", "fails.py")
    proc = sqlite_cli.run("submit", "fails.py")
    assert proc.returncode == 1
    run = sqlite_cli.store.only_run()
    assert sqlite_cli.store.artifact_paths(run.info.run_id) == {"driver_log.txt"}
    assert proc.stderr.decode().count("before this run started") == 1, proc.stderr


def test_workbench_form_with_output(cli):
    cli.store.write_script("print('hello', 41 + 1)\n", "ok.py")
    proc = cli.run("ml", "experiment", "submit", "-c", "local", "-o", "json", "ok.py")
    assert proc.returncode == 0, proc.stderr
    head, _, tail = proc.stdout.decode().partition("hello 42\n")
    assert head == ""
    run = json.loads(tail)
    assert run["status"] == "Completed" and run["attachments"] == "driver_log.txt"
    assert cli.store.artifact_bytes(run["run_id"], "driver_log.txt") == b"hello 42\n"


def test_killed_script_in_process(sqlite_cli):
    sqlite_cli.store.write_script("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "k.py")
    result = sqlite_cli("submit", "--query", "status", "-o", "tsv", "k.py", code=137)
    assert result.stdout.strip() == "Canceled"
    assert sqlite_cli.store.only_run().info.status == "KILLED"


def test_errors(sqlite_cli):
    one_line_error(sqlite_cli("submit", "missing.py", code=1), "missing.py", "not found")
    result = sqlite_cli("ml", "experiment", "submit", "-c", "docker", "x.py", code=2)
    assert "local" in result.stderr
    assert sqlite_cli.store.runs() == []


def test_exit_code_is_the_scripts(sqlite_cli):
    sqlite_cli.store.write_script(f"import sys\nsys.exit({sys.maxsize % 100 + 5})\n", "c.py")
    result = sqlite_cli("submit", "c.py", code=None)
    assert result.exit_code == sys.maxsize % 100 + 5
    assert sqlite_cli.store.only_run().info.status == "FAILED"


# -- the end of a submitted run goes through the journal ------------------------------------------
WAITS_FOR_GO = """
import os, time
print("started", flush=True)
while not os.path.exists("go"):  # the test stops the server, then lets the script finish
    time.sleep(0.05)
os.makedirs("outputs", exist_ok=True)
open("outputs/model.txt", "w").write("model")
print("finished training", flush=True)
"""


@pytest.fixture
def own_server(tmp_path):
    """A server of this test's own, which the test may stop and start again on the same port."""
    server = MlflowServer(tmp_path / "own-server")
    yield server
    server.stop()


def _submit(store, tmp_path, *args, **env) -> subprocess.Popen:
    return subprocess.Popen([AZML, "submit", *args], cwd=store.workdir,
                            env=store.env(HOME=str(tmp_path), **env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float):
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()  # not left behind by a failing test
        proc.communicate()
        raise


def test_server_gone_at_the_end_keeps_driver_log_and_outputs_for_sync(own_server, tmp_path):
    own_server.start()
    workdir = tmp_path / "project"
    workdir.mkdir()
    store = Store("server", own_server.url, workdir, "submit-durability")
    store.write_script(WAITS_FOR_GO)
    proc = _submit(store, tmp_path, "-o", "json", "train.py", AZML_FLUSH_TIMEOUT=3)
    assert proc.stdout.readline() == "started\n"
    own_server.stop()
    (workdir / "go").touch()
    # Before, submit spent ~260 s in MLflow's own retries and exited 1: the guard is generous.
    out, err = _finish(proc, 150)
    assert proc.returncode == 0, err
    assert out == "finished training\n"  # the run cannot be shown (-o json), and says so:
    assert "ERROR: cannot show run" in err
    (journal,) = store.journals()
    (line,) = [line for line in err.splitlines() if "not delivered" in line]
    assert str(journal) in line and "azml sync" in line

    own_server.start()
    synced = subprocess.run([AZML, "sync"], cwd=workdir, env=store.env(HOME=str(tmp_path)),
                            capture_output=True, text=True, timeout=300)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    run = store.only_run()
    assert run.info.status == "FINISHED"
    log = store.artifact_bytes(run.info.run_id, "driver_log.txt")
    assert log == b"started\nfinished training\n"
    assert store.artifact_bytes(run.info.run_id, "outputs/model.txt") == b"model"
    assert store.journals() == []
    assert list((store.home / "journal").iterdir()) == []  # the log's kept copy went with it


def test_run_not_created_fails_before_the_script_starts(own_server, tmp_path):
    workdir = tmp_path / "project"  # the server is never started
    workdir.mkdir()
    store = Store("server", own_server.url, workdir, "submit-durability")
    store.write_script("open('ran', 'w').write('yes')\n")
    proc = subprocess.run([AZML, "submit", "train.py"], cwd=workdir, capture_output=True,
                          text=True, timeout=150, env=store.env(HOME=str(tmp_path),
                                                                AZML_FLUSH_TIMEOUT=2))
    assert proc.returncode == 1
    one_line_error(proc, "ERROR:", "cannot reach", own_server.url,
                   "AZML_FLUSH_TIMEOUT", "not started")
    assert not (workdir / "ran").exists()
    assert store.journals() == []  # nothing ran, so nothing is kept
