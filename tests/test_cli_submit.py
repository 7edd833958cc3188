"""``azml submit``: the run is created, the script attached to it, its output kept as
driver_log.txt, outputs/ uploaded once, status and exit code from the script."""
from __future__ import annotations

import json
import sys

from cli_support import cli, empty_db, one_line_error, sqlite_cli  # noqa: F401 - fixtures

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
