"""Legacy scripts run as real processes: run resolution, statuses, outputs/, fork, exit."""
import os
import signal
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEADER = "from azureml.logging import get_azureml_logger\n"


def legacy(body: str) -> str:
    """A script body (indented in the test) behind the Workbench import line."""
    return HEADER + textwrap.dedent(body)


def test_the_example_script_runs_unchanged(store):
    source = (REPO / "examples" / "iris" / "train.py").read_text()
    proc = store.run_script(source, "0.01")
    assert "Accuracy is" in proc.stdout
    run = store.only_run()
    assert run.info.status == "FINISHED"
    assert run.data.metrics["Regularization Rate"] == 0.01
    assert len(store.history(run.info.run_id, "Loss curve")) == 50
    assert run.data.tags["Model"] == "logistic regression"
    assert run.data.tags["mlflow.azml.script_name"] == "train.py"
    assert run.data.tags["mlflow.azml.arguments"] == '["0.01"]'
    assert run.data.tags["mlflow.source.name"].endswith("train.py")
    assert {"outputs/model.pkl", "reports/summary.txt"} <= store.artifact_paths(run.info.run_id)


def test_default_store_is_sqlite_in_the_working_directory_and_project_experiment(sqlite_store):
    env = sqlite_store.env()
    del env["MLFLOW_EXPERIMENT_NAME"]
    sqlite_store.write_script(HEADER + "get_azureml_logger().log('x', 1)\n")
    subprocess.run([sys.executable, "train.py"], cwd=sqlite_store.workdir, env=env, check=True,
                   capture_output=True, timeout=120)
    assert (sqlite_store.workdir / "mlflow.db").exists()
    runs = sqlite_store.runs(experiment=sqlite_store.workdir.name)  # named after the project folder
    assert len(runs) == 1 and runs[0].data.metrics == {"x": 1.0}
    experiment = sqlite_store.client.get_experiment_by_name(sqlite_store.workdir.name)
    location = experiment.artifact_location.removeprefix("file://")
    assert location.startswith(f"{sqlite_store.workdir}/mlruns")


def test_logger_is_idempotent_across_modules_and_classes(store):
    store.write_script(HEADER + "logger = get_azureml_logger()\n", name="helper.py")
    store.run_script(legacy("""
        import helper
        class Model:
            def __init__(self):
                self.logger = get_azureml_logger()
        a, b = Model(), Model()
        assert a.logger is b.logger is helper.logger is get_azureml_logger()
        helper.logger.log("m", 1)
        a.logger.log("m", 2)
        b.logger.log("m", 3)
    """))
    run = store.only_run()
    assert [m.value for m in store.history(run.info.run_id, "m")] == [1.0, 2.0, 3.0]


def test_uncaught_exception_fails_the_run_and_keeps_metrics(store):
    proc = store.run_script(legacy("""
        logger = get_azureml_logger()
        logger.log("epoch", 1)
        logger.log("epoch", 2)
        raise RuntimeError("diverged")
    """), check=False)
    assert proc.returncode == 1 and "diverged" in proc.stderr
    run = store.only_run()
    assert run.info.status == "FAILED"
    assert [m.value for m in store.history(run.info.run_id, "epoch")] == [1.0, 2.0]
    assert run.info.end_time is not None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_kill_the_run_and_keep_metrics(store, sig):
    path = store.write_script(legacy("""
        import time
        logger = get_azureml_logger()
        logger.log("before", 1).wait(60)
        print("ready", flush=True)
        while True:
            time.sleep(0.1)
    """))
    proc = subprocess.Popen([sys.executable, str(path)], cwd=store.workdir, env=store.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(sig)
    proc.wait(60)
    assert proc.returncode != 0
    run = store.only_run()
    assert run.info.status == "KILLED"
    assert run.data.metrics == {"before": 1.0}


def test_outputs_are_uploaded_with_subfolders_and_created_if_missing(store):
    assert not (store.workdir / "outputs").exists()
    store.run_script(legacy("""
        import os, pickle
        logger = get_azureml_logger()
        with open("./outputs/model.pkl", "wb") as f:   # Workbench scripts do not mkdir
            pickle.dump({"w": 1}, f)
        os.makedirs("outputs/plots/deep", exist_ok=True)
        open("outputs/plots/deep/roc.png", "wb").write(b"png")
        os.makedirs("elsewhere")
        os.chdir("elsewhere")   # outputs/ stays relative to where the logger was created
        open("outputs.txt", "w").write("not an output")
    """))
    run = store.only_run()
    assert store.artifact_paths(run.info.run_id) == {"outputs/model.pkl", "outputs/plots/deep/roc.png"}
    assert store.artifact_bytes(run.info.run_id, "outputs/plots/deep/roc.png") == b"png"


def test_outputs_left_by_an_earlier_run_are_not_uploaded_again(sqlite_store):
    outputs = sqlite_store.workdir / "outputs"
    outputs.mkdir()
    (outputs / "model.pkl").write_bytes(b"the previous run's model")
    os.utime(outputs / "model.pkl", (time.time() - 3600,) * 2)
    proc = sqlite_store.run_script(legacy("""
        get_azureml_logger().log("failed", True)
        open("outputs/log.txt", "w").write("this run's")
    """))
    run = sqlite_store.only_run()
    assert sqlite_store.artifact_paths(run.info.run_id) == {"outputs/log.txt"}
    said = [line for line in proc.stderr.splitlines() if "before this run started" in line]
    assert len(said) == 1 and "1 file(s)" in said[0], proc.stderr
    assert (outputs / "model.pkl").read_bytes() == b"the previous run's model"  # left alone


def test_oversized_outputs_are_skipped_with_one_warning(store):
    proc = store.run_script(legacy("""
        logger = get_azureml_logger()
        open("outputs/small.txt", "wb").write(b"s" * 100)
        open("outputs/big1.bin", "wb").write(b"b" * 5000)
        open("outputs/big2.bin", "wb").write(b"b" * 6000)
    """), AZML_MAX_OUTPUT_BYTES=1000)
    warnings = [line for line in proc.stderr.splitlines() if "not uploading" in line]
    assert len(warnings) == 1
    assert "big1.bin" in warnings[0] and "big2.bin" in warnings[0] and "AZML_MAX_OUTPUT_BYTES" in warnings[0]
    run = store.only_run()
    assert store.artifact_paths(run.info.run_id) == {"outputs/small.txt"}


def test_attaching_to_mlflow_run_id_does_not_end_it(store):
    client = store.client
    experiment_id = client.create_experiment(store.experiment)
    run_id = client.create_run(experiment_id).info.run_id
    store.run_script(HEADER + "get_azureml_logger().log('attached', 5)\n", MLFLOW_RUN_ID=run_id)
    run = client.get_run(run_id)
    assert run.data.metrics == {"attached": 5.0}
    assert run.info.status == "RUNNING"
    assert len(store.runs()) == 1


def test_an_active_mlflow_run_is_used(store):
    store.run_script("""
        import mlflow
        from azureml.logging import get_azureml_logger
        with mlflow.start_run() as run:
            get_azureml_logger().log("inside", 1).wait(60)
            assert get_azureml_logger().run_id == run.info.run_id
            print(run.info.run_id)
    """)
    run = store.only_run()
    assert run.data.metrics == {"inside": 1.0}
    assert run.info.status == "FINISHED"


def test_forked_child_logs_to_the_same_run(store):
    store.run_script(legacy("""
        import os
        logger = get_azureml_logger()
        logger.log("parent", 1)
        pid = os.fork()
        if pid == 0:
            child = get_azureml_logger()
            assert child is logger  # the object the script holds, now logging from the child
            child.log("child", 2)
            child.log("child", 3)
            child.flush(60)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert status == 0
        logger.log("parent", 4)
    """))
    run = store.only_run()
    assert run.info.status == "FINISHED"
    assert [m.value for m in store.history(run.info.run_id, "child")] == [2.0, 3.0]
    assert [m.value for m in store.history(run.info.run_id, "parent")] == [1.0, 4.0]


def test_multiprocessing_workers_flush_before_exit(store):
    store.run_script(legacy("""
        import multiprocessing as mp
        logger = get_azureml_logger()
        logger.log("main", 1)

        def work(i):
            get_azureml_logger().log("worker", i)
            return i

        if __name__ == "__main__":
            with mp.get_context("fork").Pool(2) as pool:
                assert pool.map(work, range(6)) == list(range(6))
                pool.close()
                pool.join()
    """))
    run = store.only_run()
    assert sorted(m.value for m in store.history(run.info.run_id, "worker")) == [0, 1, 2, 3, 4, 5]


def test_exit_never_hangs_on_an_unreachable_store(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(HEADER + "get_azureml_logger().log('x', 1)\nprint('done', flush=True)\n")
    from conftest import clean_env, free_port

    env = clean_env(MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}", AZML_FLUSH_TIMEOUT=3,
                    MLFLOW_HTTP_REQUEST_MAX_RETRIES=0)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0 and "done" in proc.stdout
    assert "not delivered" in proc.stderr and "AZML_FLUSH_TIMEOUT" in proc.stderr
    assert elapsed < 3 + 15  # the flush timeout plus interpreter and MLflow start-up


def test_console_script_and_namespace_package():
    out = subprocess.run(["azml", "--help"], capture_output=True, text=True, check=True).stdout
    assert "Usage: azml" in out
    # azureml-core's, azureml-mlflow's and ours are written to one path: its first line is
    # theirs, and the rest only installs our azureml.core hook (harmless if theirs wins).
    shim = (REPO / "azureml" / "__init__.py").read_text().splitlines()
    assert shim[0] == "__path__ = __import__('pkgutil').extend_path(__path__, __name__)"
    code = [line for line in shim[1:] if line.strip() and not line.lstrip().startswith("#")]
    assert code == ["try:", '    __import__("_azml_compat_hook").install()', "except ImportError:",
                    "    pass"]
    import azureml.logging
    import azml_compat

    assert azureml.logging.get_azureml_logger is azml_compat.get_azureml_logger


def test_wheel_installs_cli_inside_azml_compat(tmp_path):
    # Built from a copy: setuptools writes build/ (and egg-info) into the tree it builds.
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "mlruns"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(source)], check=True, capture_output=True, timeout=300)
    import zipfile

    (wheel,) = tmp_path.glob("azml_compat-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "azml_compat/cli/__init__.py" in names
    assert "azureml/logging/__init__.py" in names
    assert not any(n.startswith("cli/") for n in names)
    assert "azml_compat/_core/stores/rest.py" in names  # the backends subpackage is shipped
    assert "azml_compat/_core/stores/sqlite_schema.sql" in names  # the schema new databases get
    assert not any("localserver" in n for n in names)  # test tooling stays out of the wheel
    assert "azml_compat.pth" in names and "_azml_compat_hook.py" in names  # azureml.core hook
    assert not any(n.startswith("azureml/core") for n in names)  # never over azureml-core's


def test_import_does_not_import_mlflow():
    code = ("import sys; from azureml.logging import get_azureml_logger; "
            "assert 'mlflow' not in sys.modules, 'mlflow imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_a_deleted_experiment_is_named_in_one_clear_line(store):
    client = store.client
    client.delete_experiment(client.create_experiment(store.experiment))
    proc = store.run_script(legacy("get_azureml_logger().log('x', 1)\n"))
    assert f"experiment {store.experiment!r} is deleted; restore it" in proc.stderr
    assert "azml sync" in proc.stderr  # the record is kept for when it is restored
