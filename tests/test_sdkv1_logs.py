"""SDK v1 uploaded ``./logs`` while the run ran: a user watching the run saw its log grow.
Checked from outside the process, through MLflow's own client, while the script still runs."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from conftest import clean_env

# Writes one line, then waits for the test's word (the file `go`) before writing the next.
LIVE = r'''
import os, sys, time
from azureml.core import Run
run = Run.get_context()
os.makedirs("logs/tb", exist_ok=True)
with open("logs/train.log", "w") as f:
    f.write("epoch 1 loss 0.50\n")
with open("logs/tb/events.txt", "w") as f:
    f.write("step 1\n")
os.symlink(sys.argv[1], "logs/leak.txt")  # leads out of the project: never uploaded
print(run.id, flush=True)
while not os.path.exists("go"):
    time.sleep(0.05)
with open("logs/train.log", "a") as f:
    f.write("epoch 2 loss 0.25\n")
'''


def _wait_for(predicate, what: str, proc, bound: float = 180.0):
    """Poll ``predicate`` until it gives a value; fail (not time anything) after ``bound`` s."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        assert proc.poll() is None, f"the script ended before {what}: {proc.stderr.read()}"
        time.sleep(0.2)
    raise AssertionError(f"{what}: not seen in {bound:g} s")


def test_logs_are_uploaded_while_the_script_runs_then_as_they_end(store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("token")
    script = store.write_script(LIVE)
    proc = subprocess.Popen([sys.executable, str(script), str(secret)], cwd=store.workdir,
                            env=store.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        run_id = proc.stdout.readline().strip()
        assert run_id, proc.stderr.read()
        client = store.client

        def listed():
            try:
                return {a.path for a in client.list_artifacts(run_id, "logs")} >= {"logs/train.log",
                                                                                   "logs/tb"}
            except Exception:  # noqa: BLE001 - the run may not hold the folder yet
                return False

        _wait_for(listed, "logs/ listed by MLflow while the script runs", proc)
        # The script is still running (it waits for `go`): what MLflow has is the first line.
        assert proc.poll() is None
        assert store.artifact_bytes(run_id, "logs/train.log") == b"epoch 1 loss 0.50\n"
        assert store.artifact_bytes(run_id, "logs/tb/events.txt") == b"step 1\n"
        (store.workdir / "go").write_text("")
        assert proc.wait(180) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        proc.stdout.close()
        proc.stderr.close()
    # The end of the run uploads the last content.
    assert store.artifact_bytes(run_id, "logs/train.log") == \
        b"epoch 1 loss 0.50\nepoch 2 loss 0.25\n"
    paths = store.artifact_paths(run_id)
    assert "logs/leak.txt" not in paths and "logs/tb/events.txt" in paths
    assert client.get_run(run_id).info.status == "FINISHED"


# The store never answers; the script waits until its journal holds the second content of
# the log (the copy the background side keeps for `azml sync`), then is killed.
KILLED = r'''
import glob, os, signal, time
from azureml.core import Run
run = Run.get_context()
os.makedirs("logs", exist_ok=True)

def journaled(text):
    while not any(open(p).read() == text
                  for p in glob.glob(os.path.join(os.environ["AZML_HOME"], "journal", "*.files",
                                                  "*", "train.log"))):
        time.sleep(0.05)

with open("logs/train.log", "w") as f:
    f.write("v1\n")
journaled("v1\n")
with open("logs/train.log", "a") as f:
    f.write("v2\n")
journaled("v1\nv2\n")
with open("logs/train.log", "w") as f:
    f.write("the next run's log\n")  # what the folder holds by the time `azml sync` runs
os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_killed_runs_last_log_is_in_the_journal_for_azml_sync(tmp_path):
    workdir, home = tmp_path / "project", tmp_path / "home"
    workdir.mkdir()
    (workdir / "train.py").write_text(KILLED)
    env = clean_env(MLFLOW_TRACKING_URI="http://127.0.0.1:9", MLFLOW_EXPERIMENT_NAME="killed",
                    AZML_HOME=home)
    proc = subprocess.run([sys.executable, "train.py"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (journal,) = sorted((home / "journal").glob("*.db"))
    # One copy of the log however many times it changed while the store was down.
    assert [p.read_text() for p in Path(str(journal)[:-3] + ".files").glob("*/train.log")] == \
        ["v1\nv2\n"]
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    with sqlite3.connect(journal) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'tracking_uri'", (json.dumps(uri),))
    sync = subprocess.run(["azml", "sync"], cwd=workdir, env=clean_env(AZML_HOME=home),
                          capture_output=True, text=True, timeout=300)
    assert sync.returncode == 0, sync.stderr
    from mlflow.artifacts import download_artifacts
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("killed").experiment_id])
    local = download_artifacts(run_id=run.info.run_id, artifact_path="logs/train.log",
                               tracking_uri=uri, dst_path=str(tmp_path / "dl"))
    assert Path(local).read_text() == "v1\nv2\n"


def test_a_workbench_run_leaves_its_logs_folder_alone(sqlite_store):
    # Workbench never uploaded ./logs: only an SDK v1 run (Run.get_context()) does.
    sqlite_store.run_script(
        "import os\nfrom azureml.logging import get_azureml_logger\n"
        "logger = get_azureml_logger()\nos.makedirs('logs', exist_ok=True)\n"
        "open('logs/tensorboard.bin', 'wb').write(b'x' * 1000)\nlogger.log('a', 1)\n")
    run = sqlite_store.only_run()
    assert not any(p.startswith("logs/") for p in sqlite_store.artifact_paths(run.info.run_id))
    assert os.path.exists(sqlite_store.workdir / "logs" / "tensorboard.bin")
