"""What a Workbench run had around it, for scripts that rely on it: ``./outputs`` before the
first line, ``AZUREML_NATIVE_SHARE_DIRECTORY``, a run covering the whole process, a quiet
console, and documents (dict, DataFrame, list of str) shown by ``azml history info``."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from azml_compat._core import environment as _workbench_env
from cli_support import cli, empty_db, sqlite_cli  # noqa: F401 - fixtures
from conftest import free_port


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- ./outputs ---------------------------------------------------------------------------------
def test_outputs_exists_at_import(sqlite_store):
    """Scripts open ./outputs/... before (or without) making a logger: Workbench had made it."""
    proc = sqlite_store.run_script("""
        import pickle, sys
        from azureml.logging import get_azureml_logger
        assert "mlflow" not in sys.modules  # the import stays cheap
        with open("./outputs/model.pkl", "wb") as fh:
            pickle.dump({"w": [1, 2]}, fh)
        """, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (sqlite_store.workdir / "outputs" / "model.pkl").is_file()


def test_submit_uploads_outputs_of_script_without_logger(cli):
    cli.store.write_script("open('outputs/result.csv', 'w').write('a,b\\n1,2\\n')\n", "plain.py")
    proc = cli.run("submit", "plain.py")
    assert proc.returncode == 0, proc.stderr
    run = cli.store.only_run()
    assert run.info.status == "FINISHED"
    assert cli.store.artifact_bytes(run.info.run_id, "outputs/result.csv") == b"a,b\n1,2\n"


# -- AZUREML_NATIVE_SHARE_DIRECTORY ----------------------------------------------------------------
WRITE_SHARE = """
    import os
    from azureml.logging import get_azureml_logger
    share = os.environ['AZUREML_NATIVE_SHARE_DIRECTORY']
    print(share)
    open(share + 'test.txt', 'w').write('kept between runs')
    """
READ_SHARE = """
    import os
    from azureml.logging import get_azureml_logger
    print(open(os.environ['AZUREML_NATIVE_SHARE_DIRECTORY'] + 'test.txt').read())
    """


def test_share_directory_default_persists_between_runs(sqlite_store, tmp_path, monkeypatch):
    monkeypatch.delenv("AZML_SHARE_DIRECTORY")
    home = tmp_path / "home"
    first = sqlite_store.run_script(WRITE_SHARE, HOME=home)
    share = first.stdout.strip()
    base = str(home / ".azureml" / "share") + os.sep
    assert share.startswith(base) and share.endswith(os.sep), share
    assert re.fullmatch(r"project-[0-9a-f]{8}", share[len(base):-1]), share
    second = sqlite_store.run_script(READ_SHARE, name="read.py", HOME=home)
    assert second.stdout.strip() == "kept between runs"


def test_share_directory_setting_and_existing_variable(sqlite_store, tmp_path, monkeypatch):
    chosen = tmp_path / "team" / "share"  # does not exist yet: made on first use
    monkeypatch.setenv("AZML_SHARE_DIRECTORY", str(chosen))
    proc = sqlite_store.run_script(WRITE_SHARE, HOME=tmp_path / "home")
    assert proc.stdout.strip() == str(chosen) + os.sep
    assert (chosen / "test.txt").read_text() == "kept between runs"
    # A variable the user set is left exactly as it is.
    given = tmp_path / "mine"
    given.mkdir()
    proc = sqlite_store.run_script(WRITE_SHARE, HOME=tmp_path / "home",
                                   AZUREML_NATIVE_SHARE_DIRECTORY=f"{given}{os.sep}x-")
    assert proc.stdout.strip() == f"{given}{os.sep}x-"
    assert (given / "x-test.txt").is_file()
    assert not (tmp_path / "home").exists()


def test_submit_child_gets_share_directory(sqlite_cli, tmp_path):
    """Not only Python scripts: whatever `azml submit` starts sees the variable and ./outputs."""
    script = sqlite_cli.store.write_script(
        '#!/bin/sh\nprintf %s "$AZUREML_NATIVE_SHARE_DIRECTORY" > outputs/share.txt\n', "run.sh")
    script.chmod(0o755)
    proc = sqlite_cli.run("submit", "run.sh")
    assert proc.returncode == 0, proc.stderr
    run = sqlite_cli.store.only_run()
    share = sqlite_cli.store.artifact_bytes(run.info.run_id, "outputs/share.txt").decode()
    assert share == os.environ["AZML_SHARE_DIRECTORY"] + os.sep
    assert os.path.isdir(share)


# -- the run covers the whole process --------------------------------------------------------------
def test_run_starts_with_the_process(sqlite_store):
    """A script that trains first and logs at the end: the run starts when the process did."""
    launched = now_ms()
    proc = sqlite_store.run_script("""
        import time
        from azureml.logging import get_azureml_logger
        time.sleep(2)  # training, before any logger exists
        print(time.time_ns() // 1_000_000)
        get_azureml_logger().log("accuracy", 0.9)
        """)
    logger_made = int(proc.stdout.strip())
    run = sqlite_store.only_run()
    # The kernel counts process start in clock ticks (10 ms): allow one tick and rounding.
    assert launched - 20 <= run.info.start_time <= logger_made - 2000
    assert run.info.end_time >= logger_made
    assert run.info.status == "FINISHED"


def test_forked_child_run_starts_at_the_fork(sqlite_store):
    """A child forked long after the import, making the process's first logger."""
    proc = sqlite_store.run_script("""
        import os, time
        from azureml.logging import get_azureml_logger
        time.sleep(1.5)
        forked = time.time_ns() // 1_000_000
        pid = os.fork()
        if pid == 0:
            get_azureml_logger().log("child", 1)
            raise SystemExit(0)  # a normal exit: the child's run ends
        os.waitpid(pid, 0)
        print(forked)
        """)
    forked = int(proc.stdout.strip())
    run = sqlite_store.only_run()
    assert run.info.start_time >= forked - 20  # one clock tick (10 ms) and rounding
    assert run.info.status == "FINISHED" and run.data.metrics["child"] == 1


def test_process_start_in_a_child():
    before = now_ms()
    proc = subprocess.run([sys.executable, "-c",
                           "from azml_compat._core import environment as w, session as s\n"
                           "print(w.process_start_ms(), w.IMPORT_TIME_MS)"],
                          capture_output=True, text=True, timeout=120, check=True)
    start, imported = map(int, proc.stdout.split())
    assert before - 20 <= start <= imported


def test_process_start_falls_back_to_import_time(monkeypatch):
    def no_boot_time():
        raise OSError("no /proc here")

    monkeypatch.setattr(_workbench_env, "_boot_time", no_boot_time)
    assert _workbench_env.process_start_ms() == _workbench_env.IMPORT_TIME_MS


# -- a quiet console -------------------------------------------------------------------------------
QUIET = """
    import logging
    logging.basicConfig(level=logging.INFO, format="script %(name)s: %(message)s")
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    logger.log("accuracy", 0.9)
    assert logger.flush(300)
    logging.getLogger("train").info("done")
    print(logging.getLogger().level, logging.getLogger().handlers[0].formatter._fmt)
    """


def test_mlflow_info_lines_stay_off_the_console(sqlite_store):
    """A first run in a fresh folder: MLflow creates its database without a word, while the
    script's own logging configuration is left as the script made it."""
    assert not (sqlite_store.workdir / "mlflow.db").exists()
    proc = sqlite_store.run_script(QUIET)
    assert "Creating initial MLflow database tables" not in proc.stderr, proc.stderr
    assert "Context impl" not in proc.stderr and " INFO mlflow" not in proc.stderr, proc.stderr
    assert "script train: done" in proc.stderr
    assert proc.stdout.strip() == "20 script %(name)s: %(message)s"
    assert sqlite_store.only_run().data.metrics["accuracy"] == 0.9


def test_mlflow_logging_level_still_honoured(sqlite_store):
    """Asking MLflow for its INFO lines still shows them (and proves they are produced), where
    MLflow's own store writes: the sqlite3 store leaves it an option it does not reproduce."""
    proc = sqlite_store.run_script(QUIET, MLFLOW_LOGGING_LEVEL="INFO",
                                   MLFLOW_TRUNCATE_LONG_VALUES="false")
    assert "Creating initial MLflow database tables" in proc.stderr, proc.stderr


def test_one_warning_for_a_server_that_is_down(sqlite_store):
    """Our warnings stay: one line each, not one per retry."""
    proc = sqlite_store.run_script("""
        from azureml.logging import get_azureml_logger
        logger = get_azureml_logger()
        for i in range(5):
            logger.log("loss", 1.0 / (i + 1))
        assert logger.wait_for_run(8) is None  # several connection attempts fail meanwhile
        """, MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}", AZML_FLUSH_TIMEOUT=3)
    lines = proc.stderr.strip().splitlines()
    assert lines, "expected a warning"
    assert len(lines) == len(set(lines)), proc.stderr
    assert sum("retrying in the background" in line for line in lines) == 1, proc.stderr
    assert all(line.startswith("azml: ") for line in lines), proc.stderr


# -- documents in `azml history info` / `last` ---------------------------------------------------
DOCUMENTS = """
    import pandas as pd
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    logger.log("params", {"lr": 0.01, "layers": [64, 32]})
    logger.log("labels (predicted)", ["cat", "dog", "cat"])
    logger.log("confusion", pd.DataFrame({"cat": [5, 1], "dog": [2, 7]}, index=["cat", "dog"]))
    logger.log("big", pd.DataFrame({"x": list(range(2000))}))
    logger.log("accuracy", 0.75)
    """


def test_documents_in_history_info(cli):
    cli.store.run_script(DOCUMENTS)
    run_id = cli.store.only_run().info.run_id
    for info in (cli.json("history", "info", "-r", run_id), cli.json("history", "last")):
        assert info["params"] == {"lr": 0.01, "layers": [64, 32]}
        assert info["labels (predicted)"] == ["cat", "dog", "cat"]
        # A DataFrame is an MLflow table: shown as its file, the row labels a column.
        assert info["confusion"] == {"columns": ["index", "cat", "dog"],
                                     "data": [["cat", 5, 2], ["dog", 1, 7]]}
        assert info["accuracy"] == 0.75
        big = info["big"]
        assert isinstance(big, str) and big.startswith('table {"columns":["x"]'), big
        assert "artifact metrics/big.json" in big and len(big) < 200
        assert "metrics/big.json" in info["attachments"].split(", ")
    table = cli("history", "info", "-r", run_id, "-o", "table").stdout
    assert re.search(r"^params +\{\"lr\":0.01,\"layers\":\[64,32\]\}$", table, re.M), table

