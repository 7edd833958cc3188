"""SDK v1's ``Run`` (``from azureml.core import Run``) on MLflow: every call a training script
makes, run as a script on the SQLite default, a real server and a plugin store, checked through
MLflow's own client and ``mlflow.load_table``."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import clean_env
from test_plugins import plugin, plugin_env  # noqa: F401 - the plugin fixture

REPO = Path(__file__).resolve().parent.parent

# One script calling every row of the table, as a real script would.
EVERY_CALL = r'''
import json, os, sys
import numpy as np
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from azureml.core import Run, Workspace, Experiment, Dataset
from azureml.core.run import _OfflineRun

run = Run.get_context()
assert run is Run.get_context(allow_offline=False)
assert type(run) != _OfflineRun and not run.id.startswith("OfflineRun")
for i in range(3):
    run.log("accuracy", 0.5 + i / 10)
run.log("alpha", np.float64(0.25))
run.log("converged", True)
run.log("stage", "warm-up")
run.log("stage", "done")
run.log("late", 5.0, step=7)
try:
    run.log("bad", [1, 2])
except TypeError as exc:
    print("LIST:", exc)
run.log_list("losses", [0.9, 0.5, 0.2])
run.log_list("labels", ["cat", "dog"])
for epoch in range(3):
    run.log_row("nrmse over α", epoch=epoch, nrmse=1.0 / (epoch + 1))
run.log_table("scores", {"fold": [1, 2], "score": [0.7, 0.8], "label": ["a", "b"]})
run.log_table("scores", {"fold": [3], "score": [0.9], "label": ["c"]})
fig = plt.figure()
plt.plot([1, 2, 3])
run.log_image("curve", plot=fig)
plt.savefig("saved.png")
run.log_image("from_file", path="saved.png")
try:
    run.log_image("neither")
except ValueError as exc:
    print("IMAGE:", exc)
cm = {"schema_type": "confusion_matrix", "schema_version": "v1",
      "data": {"class_labels": ["0", "1"], "matrix": [[5, 1], [2, 7]]}}
run.log_confusion_matrix("cm", cm)
run.log_accuracy_table("acc_table", json.dumps({"schema_type": "accuracy_table", "data": {}}))
run.log_predictions("preds", {"schema_type": "predictions", "data": {"bin_averages": [0.1]}})
run.log_residuals("resid", {"schema_type": "residuals", "data": {"bin_counts": [3]}})
with open("notes.bin", "wb") as f:
    f.write(bytes(range(256)))
run.upload_file("uploads/notes.bin", "notes.bin")
run.upload_file("uploads/renamed.bin", "notes.bin")
os.makedirs("folder/sub", exist_ok=True)
open("folder/a.txt", "w").write("A")
open("folder/sub/b.txt", "w").write("B")
run.upload_folder("tree", "folder")
run.upload_files(["many/x.txt"], ["folder/a.txt"])
run.tag("team", "vision")
run.tag("flagged")
run.set_tags({"k1": "v1", "k2": "v2"})
run.remove_tags(["k2"])
run.add_properties({"dataset": "v3"})
run.add_properties({"dataset": "v3"})
try:
    run.add_properties({"dataset": "v4"})
except ValueError as exc:
    print("PROPERTY:", exc)
with run.child_run("fold-1") as child:
    child.log("child_metric", 1.5)
    child.parent.log("from_child", 2.0)
kids = run.create_children(2)
for i, kid in enumerate(kids):
    kid.log("kid", float(i))
    kid.complete()
try:
    with run.child_run("broken"):
        raise RuntimeError("boom")
except RuntimeError:
    pass
metrics = run.get_metrics()
os.makedirs("logs", exist_ok=True)
with open("logs/train.log", "w") as f:
    f.write("epoch 1\n")
print("METRICS:", json.dumps(metrics, sort_keys=True, ensure_ascii=False))
print("TAGS:", json.dumps(run.get_tags(), sort_keys=True))
print("PROPERTIES:", json.dumps(run.get_properties(), sort_keys=True))
print("STATUS:", run.get_status(), "NAME:", run.name, "EXPERIMENT:", run.experiment.name)
print("DETAILS:", json.dumps(run.get_details(), sort_keys=True))
print("RECURSIVE:", len(run.get_metrics(recursive=True)))
try:
    Workspace.from_config()
except NotImplementedError as exc:
    print("NOT COVERED:", exc)
with open("outputs/model.txt", "w") as f:
    f.write("model")
print("ID:", run.id)
'''


def _lines(stdout: str) -> dict:
    out = {}
    for line in stdout.splitlines():
        head, _, rest = line.partition(": ")
        out.setdefault(head, rest)
    return out


def _check_every_call(client, run_id: str, lines: dict, download) -> None:
    import mlflow

    run = client.get_run(run_id)
    data, tags = run.data, run.data.tags
    assert run.info.status == "FINISHED"
    assert lines["ID"] == run_id
    history = sorted(client.get_metric_history(run_id, "accuracy"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 0.6), (2, 0.7)]
    assert data.metrics["alpha"] == 0.25 and data.metrics["converged"] == 1.0
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "late")] == [(7, 5.0)]
    assert tags["stage"] == "done"
    assert lines["LIST"] == "run.log does not support list type. Use run.log_list instead"
    assert "bad" not in data.metrics
    losses = sorted(client.get_metric_history(run_id, "losses"), key=lambda m: m.step)
    assert [(m.step, m.value) for m in losses] == [(0, 0.9), (1, 0.5), (2, 0.2)]
    assert json.loads(download("metrics/labels.json"))["value"] == ["cat", "dog"]
    # Tables: MLflow's format, the tag unescaped, load_table finds them, numbers also charted.
    listed = json.loads(tags["mlflow.loggedArtifacts"])
    assert {"path": "nrmse over α.json", "type": "table"} in listed
    assert {"path": "scores.json", "type": "table"} in listed
    experiment_id = run.info.experiment_id
    # load_table searches through the fluent API: its store and experiment from the
    # environment, for these calls only (mlflow.set_tracking_uri would stay set for the tests
    # after this one, as the resolved default of this test's folder).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", client.tracking_uri)
        patch.setenv("MLFLOW_EXPERIMENT_ID", experiment_id)
        with_alpha = mlflow.load_table("nrmse over α.json", run_ids=[run_id])
        scores = mlflow.load_table("scores.json", run_ids=[run_id])
    assert list(with_alpha["epoch"]) == [0, 1, 2]
    assert list(scores["fold"]) == [1, 2, 3] and list(scores["label"]) == ["a", "b", "c"]
    nrmse = sorted(client.get_metric_history(run_id, "nrmse over α.nrmse"), key=lambda m: m.step)
    assert [m.value for m in nrmse] == [1.0, 0.5, 1 / 3]
    assert [m.value for m in client.get_metric_history(run_id, "scores.score")] == [0.7, 0.8, 0.9]
    assert "scores.label" not in data.metrics
    # Images, documents, uploads.
    assert download("curve.png").startswith(b"\x89PNG")
    assert download("from_file.png") == (Path(lines["_workdir"]) / "saved.png").read_bytes()
    assert "exactly one" in lines["IMAGE"]
    cm = json.loads(download("cm.json"))
    assert cm["data"]["matrix"] == [[5, 1], [2, 7]]
    assert json.loads(download("acc_table.json"))["schema_type"] == "accuracy_table"
    assert json.loads(download("preds.json"))["data"]["bin_averages"] == [0.1]
    assert json.loads(download("resid.json"))["data"]["bin_counts"] == [3]
    assert download("uploads/notes.bin") == bytes(range(256))
    assert download("uploads/renamed.bin") == bytes(range(256))
    assert download("tree/a.txt") == b"A" and download("tree/sub/b.txt") == b"B"
    assert download("many/x.txt") == b"A"
    assert download("outputs/model.txt") == b"model"
    assert download("logs/train.log") == b"epoch 1\n"  # SDK v1 uploaded ./logs too
    # Tags and properties.
    assert tags["team"] == "vision" and tags["flagged"] == "" and tags["k1"] == "v1"
    assert "k2" not in tags
    assert data.params["properties/dataset"] == "v3"
    assert "already 'v3'" in lines["PROPERTY"]
    # Child runs: nested, named, ended.
    children = client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{run_id}'")
    by_name = {c.info.run_name: c for c in children}
    assert len(children) == 4 and set(by_name) >= {"fold-1", "broken"}
    assert by_name["fold-1"].info.status == "FINISHED"
    assert by_name["fold-1"].data.metrics == {"child_metric": 1.5}
    assert by_name["broken"].info.status == "FAILED"
    assert sorted(c.data.metrics.get("kid", -1) for c in children if "kid" in c.data.metrics) == [0, 1]
    assert data.metrics["from_child"] == 2.0  # run.parent.log from a child lands on the parent
    # Read back in SDK v1's shapes, in the same process, right after logging.
    metrics = json.loads(lines["METRICS"])
    assert metrics["accuracy"] == [0.5, 0.6, 0.7] and metrics["alpha"] == 0.25
    assert metrics["nrmse over α"] == {"epoch": [0, 1, 2], "nrmse": [1.0, 0.5, 1 / 3]}
    assert metrics["scores"]["label"] == ["a", "b", "c"]
    assert "scores.score" not in metrics
    assert json.loads(lines["TAGS"])["team"] == "vision"
    assert json.loads(lines["PROPERTIES"]) == {"dataset": "v3"}
    assert lines["STATUS"].startswith("Running NAME: train.py EXPERIMENT: ")
    assert json.loads(lines["DETAILS"])["runId"] == run_id
    assert lines["RECURSIVE"] == "5"
    assert "Workspace.from_config() is not covered" in lines["NOT COVERED"]


def test_every_call_lands_as_sdk_v1_showed_it(store):
    proc = store.run_script(EVERY_CALL, timeout=240)
    lines = {**_lines(proc.stdout), "_workdir": str(store.workdir)}
    main = [r for r in store.runs() if "mlflow.parentRunId" not in r.data.tags]
    assert len(main) == 1

    def download(path):
        return store.artifact_bytes(main[0].info.run_id, path)

    _check_every_call(store.client, main[0].info.run_id, lines, download)


def test_every_call_on_a_plugin_store(plugin, tmp_path):  # noqa: F811 - the fixture
    project, backend = tmp_path / "project", tmp_path / "backend"
    project.mkdir()
    (project / "train.py").write_text(EVERY_CALL)
    env = plugin_env(plugin, tmp_path, f"azmltest://{backend}")
    env["PYTHONPATH"] = os.pathsep.join([str(plugin), str(REPO)])
    proc = subprocess.run([sys.executable, "train.py"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert not (project / "mlflow.db").exists()
    from mlflow.artifacts import download_artifacts
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{backend / 'store.db'}")
    (experiment,) = [e for e in client.search_experiments() if e.name == "plug"]
    (main,) = [r for r in client.search_runs([experiment.experiment_id])
               if "mlflow.parentRunId" not in r.data.tags]
    run_id = main.info.run_id

    def download(path):
        target = tmp_path / f"dl-{len(list(tmp_path.iterdir()))}"
        return Path(download_artifacts(run_id=run_id, artifact_path=path,
                                       tracking_uri=client.tracking_uri,
                                       dst_path=str(target))).read_bytes()

    _check_every_call(client, run_id, {**_lines(proc.stdout), "_workdir": str(project)}, download)


BOTH_FACES = '''
import helper
from azureml.core import Run
from azureml.logging import get_azureml_logger
run = Run.get_context()
assert run is helper.RUN
get_azureml_logger().log("workbench", 1)
run.log("sdkv1", 2)
'''


def test_one_process_one_run_whichever_face(sqlite_store):
    (sqlite_store.workdir / "helper.py").write_text(
        "from azureml.core.run import Run\nRUN = Run.get_context()\n")
    sqlite_store.run_script(BOTH_FACES)
    run = sqlite_store.only_run()
    assert run.data.metrics == {"workbench": 1.0, "sdkv1": 2.0}
    assert len(sqlite_store.journals()) == 0  # one journal, delivered and pruned


def test_attaches_to_mlflow_run_id_and_leaves_it_running(store):
    # Through the client, not the fluent API: mlflow.set_tracking_uri() would stay set for the
    # tests after this one (mlflow.load_table reads it).
    client = store.client
    experiment = client.get_experiment_by_name(store.experiment)
    experiment_id = (experiment.experiment_id if experiment is not None
                     else client.create_experiment(store.experiment))
    run_id = client.create_run(experiment_id).info.run_id
    store.run_script("from azureml.core import Run\nr = Run.get_context()\nr.log('m', 3)\n"
                     "assert r.id == %r\n" % run_id, MLFLOW_RUN_ID=run_id)
    run = store.client.get_run(run_id)
    assert run.data.metrics == {"m": 3.0} and run.info.status == "RUNNING"


def test_an_uncaught_exception_fails_the_run_and_its_open_children(sqlite_store):
    proc = sqlite_store.run_script(
        "from azureml.core import Run\nrun = Run.get_context()\nchild = run.child_run('c')\n"
        "child.log('x', 1)\nrun.log('y', 2)\nraise SystemError('crash')\n", check=False)
    assert proc.returncode == 1 and "crash" in proc.stderr
    runs = {r.info.run_name: r for r in sqlite_store.runs()}
    assert runs["train.py"].info.status == "FAILED" and runs["train.py"].data.metrics == {"y": 2.0}
    assert runs["c"].info.status == "FAILED" and runs["c"].data.metrics == {"x": 1.0}


def test_complete_ends_the_run_and_later_records_still_arrive(sqlite_store):
    sqlite_store.run_script("from azureml.core import Run\nrun = Run.get_context()\n"
                            "run.log('a', 1)\nrun.complete()\nrun.log('b', 2)\n")
    run = sqlite_store.only_run()
    assert run.info.status == "FINISHED" and run.data.metrics == {"a": 1.0, "b": 2.0}


NO_IO = r'''
import sys, threading
import numpy as np
from azureml.core import Run
run = Run.get_context()
run.log("warm", 1.0); run.log_row("warm", a=1); run.tag("warm", "x")  # first-use set-up
me = threading.get_ident()
seen = []
IO = ("open", "os.", "socket.", "sqlite3.", "shutil.", "subprocess.", "import")
def hook(event, args):
    if threading.get_ident() == me and event.startswith(IO):
        seen.append((event, str(args)[:80]))
sys.addaudithook(hook)
active = True
for i in range(200):
    run.log("loss", 1.0 / (i + 1))
    run.log("np", np.float32(i))
    run.log("flag", i % 2 == 0)
    run.log("text", f"epoch {i}")
    run.log("stepped", float(i), step=i)
    run.log_list("series", [1.0, 2.0])
    run.log_row("table", epoch=i, loss=0.5)
    run.log_table("table2", {"a": [i], "b": ["x"]})
    run.tag("t", i)
    run.add_properties({"p": "1"})
    run.log_confusion_matrix("cm", {"data": {"matrix": [[i]]}})
n = len(seen)
print("IO:", n, seen[:5])
open(__file__).close()  # the hook sees I/O on this thread: the zero above means something
print("CONTROL:", len(seen) > n)
'''


def test_log_calls_do_no_io_on_the_callers_thread(sqlite_store):
    proc = sqlite_store.run_script(NO_IO)
    assert "IO: 0 []" in proc.stdout and "CONTROL: True" in proc.stdout, proc.stdout
    run = [r for r in sqlite_store.runs()][0]
    assert len(sqlite_store.client.get_metric_history(run.info.run_id, "loss")) == 200


KILLED = '''
import os, signal, sys
from azureml.core import Run
run = Run.get_context()
run.log("before_kill", 1.0)
child = run.child_run("kid")
child.log("kid_metric", 2.0)
run.log_row("tbl", a=1)
run.flush(timeout_seconds=0.5) if False else None
import time; time.sleep(0.5)
os.kill(os.getpid(), signal.SIGKILL)
'''


def test_a_killed_processs_records_are_synced_by_azml_sync(tmp_path):
    # A server that never answers: everything stays in the journals; then azml sync delivers
    # them to the real store, the child nested under its parent.
    workdir = tmp_path / "project"
    workdir.mkdir()
    home = tmp_path / "home"
    (workdir / "train.py").write_text(KILLED)
    dead = "http://127.0.0.1:9"  # discard port: refused
    env = clean_env(MLFLOW_TRACKING_URI=dead, MLFLOW_EXPERIMENT_NAME="killed", AZML_HOME=home)
    proc = subprocess.run([sys.executable, "train.py"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    journals = sorted((home / "journal").glob("*.db"))
    assert len(journals) == 2
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    for journal in journals:  # the journals point at the dead server: point them at the store
        with sqlite3.connect(journal) as db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'tracking_uri'", (json.dumps(uri),))
    sync = subprocess.run(["azml", "sync"], cwd=workdir, env=clean_env(AZML_HOME=home),
                          capture_output=True, text=True, timeout=300)
    assert sync.returncode == 0, sync.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("killed")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert runs["train.py"].data.metrics["before_kill"] == 1.0
    assert runs["kid"].data.metrics == {"kid_metric": 2.0}
    assert runs["kid"].data.tags["mlflow.parentRunId"] == runs["train.py"].info.run_id
    assert runs["train.py"].info.status == runs["kid"].info.status == "KILLED"


def test_a_dead_server_at_exit_is_a_bounded_exit(tmp_path):
    workdir = tmp_path / "project"
    workdir.mkdir()
    (workdir / "train.py").write_text(
        "from azureml.core import Run\nrun = Run.get_context()\nrun.log('m', 1)\n"
        "c = run.child_run('c')\nc.log('n', 2)\nrun.log_row('t', a=1)\nprint('done')\n")
    env = clean_env(MLFLOW_TRACKING_URI="http://127.0.0.1:9", MLFLOW_EXPERIMENT_NAME="dead",
                    AZML_HOME=tmp_path / "home", AZML_FLUSH_TIMEOUT="2")
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "train.py"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "done" in proc.stdout
    assert "not delivered" in proc.stderr
    assert len(list((tmp_path / "home" / "journal").glob("*.db"))) == 2
    assert time.monotonic() - began < 60  # two bounded waits (parent, child), not a hang


def test_large_tables_and_images_are_whole_artifacts(sqlite_store):
    sqlite_store.run_script(
        "import os\nfrom azureml.core import Run\nrun = Run.get_context()\n"
        "run.log_table('big', {'i': list(range(20000)), 's': ['x' * 50] * 20000})\n"
        "open('big.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + os.urandom(3_000_000))\n"
        "run.log_image('huge', path='big.png')\nrun.log('long', 'y' * 20000)\n")
    run = sqlite_store.only_run()
    doc = json.loads(sqlite_store.artifact_bytes(run.info.run_id, "big.json"))
    assert len(doc["data"]) == 20000 and doc["data"][-1] == [19999, "x" * 50]
    image = sqlite_store.artifact_bytes(run.info.run_id, "huge.png")
    assert image == (sqlite_store.workdir / "big.png").read_bytes()
    assert sqlite_store.artifact_bytes(run.info.run_id, "metrics/long.txt") == b"y" * 20000


def test_the_served_azureml_core_is_ours_and_not_covered_names_fail_clearly(sqlite_store):
    proc = sqlite_store.run_script(
        "import azureml.core\nfrom azureml.core import Run, Workspace, Experiment, Dataset, "
        "Datastore, Environment, ScriptRunConfig, Model\nfrom azureml.core.run import Run as R, "
        "_OfflineRun\nfrom azureml.core.model import Model as M\n"
        "print(azureml.core.__azml_compat__, Run is R)\nrun = Run.get_context()\n"
        "for call in (lambda: Experiment(None, 'x'), lambda: Dataset.get_by_name(None, 'd'),\n"
        "             lambda: run.register_model('m'), lambda: run.get_secret('s'),\n"
        "             lambda: run.input_datasets, lambda: run.submit_child(None)):\n"
        "    try:\n        call()\n    except NotImplementedError as exc:\n"
        "        print('NC', str(exc).split(' is not covered')[0])\n")
    assert proc.stdout.splitlines() == [
        "True True", "NC azureml.core: Experiment()", "NC azureml.core: Dataset.get_by_name()",
        "NC azureml.core: run.register_model()", "NC azureml.core: run.get_secret()",
        "NC azureml.core: run.input_datasets", "NC azureml.core: run.submit_child"]


FAMILY = '''
from azureml.core import Run
run = Run.get_context()
run.log("acc", 0.9)
run.tag("team", "vision")
run.add_properties({"dataset": "v3"})
run.log_table("scores", {"fold": [1, 2], "score": [0.7, 0.8]})
with run.child_run("fold-1") as child:
    child.log("child_acc", 0.8)
'''


def test_azml_history_shows_sdk_v1_runs_with_children_properties_and_tables(sqlite_store):
    sqlite_store.run_script(FAMILY)
    env = sqlite_store.env()

    def azml(*args):
        proc = subprocess.run(["azml", "history", *args], cwd=sqlite_store.workdir, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    rows = json.loads(azml("list", "-o", "json"))
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"train.py", "fold-1"}, rows
    parent, child = by_name["train.py"], by_name["fold-1"]
    assert child["parent_run_id"] == parent["run_id"] and "parent_run_id" not in parent
    assert parent["acc"] == 0.9 and parent["team"] == "vision" and parent["scores"] == "scores.json"
    assert parent["properties"]["params"] == {}
    assert parent["properties"]["run_properties"] == {"dataset": "v3"}
    assert "Parent_run_id" in azml("list", "-o", "table").splitlines()[0]
    info = json.loads(azml("info", "-r", parent["run_id"], "-o", "json"))
    assert info["children"] == [child["run_id"]]
    assert "scores.json" in info["attachments"].split(", ")
    assert info["series"]["scores.score"] == [0.7, 0.8]
    compared = azml("compare", "-r", parent["run_id"], "-r", child["run_id"], "-o", "table")
    assert "Parent_run_id" in compared and "property dataset" in compared


ARGUMENTS_AND_PROPERTIES = '''
import json, sys
from azureml.core import Run
run = Run.get_context()
run.add_properties({"kernel": "rbf", "dataset": "v3"})  # the script also got --kernel linear
run.add_properties({"split (%)": 20})  # a name MLflow does not take as a key: mapped
run.add_properties({"kernel": "rbf"})
try:
    run.add_properties({"kernel": "poly"})
except ValueError as exc:
    print("PROPERTY:", exc)
print("PROPERTIES:", json.dumps(run.get_properties(), sort_keys=True))
print("DETAILS:", json.dumps(run.get_details()["properties"], sort_keys=True))
'''


def test_properties_never_meet_the_scripts_arguments(store):
    # A script started with `--kernel linear` has the param kernel (every run gets its
    # arguments as params); the property kernel it adds is another thing and must not clash.
    proc = store.run_script(ARGUMENTS_AND_PROPERTIES, "--kernel", "linear", "0.5")
    lines = _lines(proc.stdout)
    assert "rejected" not in proc.stderr, proc.stderr
    run = store.only_run()
    assert run.info.status == "FINISHED"
    assert run.data.params == {"kernel": "linear", "arg0": "0.5", "properties/kernel": "rbf",
                               "properties/dataset": "v3", "properties/split _pct_": "20"}
    # SDK v1's add-only rule still holds for the property itself.
    assert "property 'kernel' is already 'rbf'" in lines["PROPERTY"], proc.stdout
    added = {"kernel": "rbf", "dataset": "v3", "split (%)": "20"}  # by the names given
    assert json.loads(lines["PROPERTIES"]) == added
    assert json.loads(lines["DETAILS"]) == added
    info = subprocess.run(["azml", "history", "info", "-r", run.info.run_id, "-o", "json"],
                          cwd=store.workdir, env=store.env(), capture_output=True, text=True,
                          timeout=300)
    assert info.returncode == 0, info.stderr
    properties = json.loads(info.stdout)["properties"]
    assert properties["params"] == {"kernel": "linear", "arg0": "0.5"}
    assert properties["run_properties"] == added


def test_the_sdkv1_example_runs_unchanged(sqlite_store):
    source = (REPO / "examples" / "sdkv1-diabetes" / "train.py").read_text()
    proc = sqlite_store.run_script(source, "--alphas", "0.1", "1.0", timeout=240)
    assert "alpha is 0.10" in proc.stdout and "Running offline" not in proc.stdout
    runs = {r.info.run_name: r for r in sqlite_store.runs()}
    parent = runs["train.py --alphas 0.1 1.0"]  # the run is named after script and arguments
    assert set(runs) == {"train.py --alphas 0.1 1.0", "alpha 0.10", "alpha 1.00"}
    assert all(runs[n].data.tags["mlflow.parentRunId"] == parent.info.run_id
               for n in ("alpha 0.10", "alpha 1.00"))
    assert len(sqlite_store.history(parent.info.run_id, "mse")) == 2
    # the properties, next to the script's arguments (params of every run this library makes)
    assert parent.data.params == {"alphas": "0.1", "arg0": "1.0",
                                  "properties/dataset": "sklearn diabetes",
                                  "properties/test_size": "0.2"}
    paths = sqlite_store.artifact_paths(parent.info.run_id)
    assert {"mse by alpha.json", "mse_vs_alpha.png", "outputs/ridge_0.10.pkl"} <= paths
    assert "Metrics: ['best_alpha', 'mse', 'mse by alpha', 'mse_per_alpha']" in proc.stdout


POOL = '''
import multiprocessing as mp
from azureml.core import Run
from azureml.logging import get_azureml_logger
run = Run.get_context()
logger = get_azureml_logger()
run.log("parent", 1)

def work(i):
    assert Run.get_context() is run  # the object the script holds, rebound in the worker
    run.log("worker", float(i))
    logger.log("worker_wb", float(i))
    run.log_row("rows", i=i)
    run.flush(60)
    return i

if __name__ == "__main__":
    with mp.get_context("fork").Pool(2) as pool:
        assert sorted(pool.map(work, range(4))) == [0, 1, 2, 3]
    run.log("parent", 2)
'''


def test_forked_workers_log_to_the_same_run_through_both_faces(sqlite_store):
    sqlite_store.run_script(POOL)
    run = sqlite_store.only_run()
    assert run.info.status == "FINISHED"
    assert sorted(m.value for m in sqlite_store.history(run.info.run_id, "worker")) == [0, 1, 2, 3]
    assert sorted(m.value for m in sqlite_store.history(run.info.run_id, "worker_wb")) == [0, 1, 2, 3]
    assert [m.value for m in sqlite_store.history(run.info.run_id, "parent")] == [1.0, 2.0]
