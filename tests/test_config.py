"""One declaration of every setting (``azml_compat._config.SETTINGS``): read and checked in one
place, a bad value is one line naming it (never a traceback at import), a typo names the
closest setting, the CLI reads only what a command uses, docs/settings.md's table is the
declaration."""
from __future__ import annotations

import ast
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from azml_compat import _config
from azml_compat._config import SETTINGS, ConfigError, Settings

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "azml_compat"
SCRIPT = "from azureml.logging import get_azureml_logger\nget_azureml_logger().log('m', 1).wait()\n"


def _warnings(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


# -- a training script is never crashed by a tuning setting -------------------------------------
def test_a_bad_tuning_value_warns_one_line_and_logging_goes_on(store):
    proc = store.run_script(SCRIPT, AZML_MAX_IN_FLIGHT="four", HOME=str(store.home))
    lines = _warnings(proc)
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "AZML_MAX_IN_FLIGHT='four'" in lines[0] and "default" in lines[0]
    run = store.only_run()
    assert run.data.metrics == {"m": 1.0}


def test_a_bad_value_at_import_does_not_raise(tmp_path):
    from conftest import clean_env

    proc = subprocess.run([sys.executable, "-c", "import azureml.logging"], cwd=tmp_path,
                          env=clean_env(AZML_MAX_IN_FLIGHT="four", AZML_HOME=str(tmp_path / "h"),
                                        HOME=str(tmp_path)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name, bad", [("AZML_FLUSH_TIMEOUT", "abc"), ("AZML_WAIT_TIMEOUT", "-1"),
                                       ("AZML_MAX_OUTPUT_BYTES", "1.5e9"),
                                       ("AZML_MAX_JOURNAL_BYTES", "lots"),
                                       ("AZML_HTTP_TIMEOUT", "0"), ("AZML_UPLOAD_OUTPUTS", "maybe"),
                                       ("AZML_GC_FREEZE", "nope"), ("AZML_MAX_IN_FLIGHT", "0")])
def test_the_library_warns_once_and_uses_the_default(name, bad, azml_log, tmp_path):
    setting = _config.BY_NAME[name]
    environ = {name: bad}
    _config._warned.clear()
    first = Settings.from_env(environ=environ, cwd=str(tmp_path))
    again = Settings.from_env(environ=environ, cwd=str(tmp_path))
    assert getattr(first, setting.field) == getattr(again, setting.field) == setting.default
    lines = [r.getMessage() for r in azml_log if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and f"{name}={bad!r}" in lines[0], lines
    with pytest.raises(ConfigError, match=re.escape(f"{name}={bad!r}")):
        Settings.from_env(environ=environ, cwd=str(tmp_path), strict=True)


def test_good_values_are_read(tmp_path):
    environ = {"AZML_FLUSH_TIMEOUT": "2.5", "AZML_MAX_IN_FLIGHT": "8", "AZML_UPLOAD_OUTPUTS": "0",
               "AZML_GC_FREEZE": "false", "AZML_HTTP_TIMEOUT": "7", "AZML_HOME": str(tmp_path),
               "AZML_SHARE_DIRECTORY": "/data/share", "MLFLOW_EXPERIMENT_NAME": "e",
               "MLFLOW_RUN_ID": "abc", "AZML_WAIT_TIMEOUT": "0"}
    got = Settings.from_env(environ=environ, cwd=str(tmp_path), strict=True)
    assert (got.flush_timeout, got.max_in_flight, got.upload_outputs, got.gc_freeze,
            got.http_timeout, got.share_directory, got.experiment_name, got.run_id,
            got.wait_timeout) == (2.5, 8, False, False, 7.0, "/data/share", "e", "abc", 0.0)
    assert got.journal_dir == str(tmp_path / "journal")
    assert got.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_a_malformed_tracking_uri_still_fails_the_script_at_once(tmp_path):
    assert issubclass(ConfigError, ValueError)  # what callers caught before
    with pytest.raises(ConfigError, match="MLFLOW_TRACKING_URI='htp://x'"):
        Settings.from_env(environ={"MLFLOW_TRACKING_URI": "htp://x"}, cwd=str(tmp_path))


def test_a_typo_warns_once_with_the_closest_name(azml_log, tmp_path):
    _config._warned.clear()
    Settings.from_env(environ={"AZML_FLUSH_TIMOUT": "5"}, cwd=str(tmp_path))
    Settings.from_env(environ={"AZML_FLUSH_TIMOUT": "5"}, cwd=str(tmp_path))
    lines = [r.getMessage() for r in azml_log if r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines
    assert "AZML_FLUSH_TIMOUT" in lines[0] and "did you mean AZML_FLUSH_TIMEOUT?" in lines[0]


def test_a_typo_in_a_script_is_one_line(sqlite_store):
    store = sqlite_store
    proc = store.run_script(SCRIPT, AZML_FLUSH_TIMOUT="5", HOME=str(store.home))
    lines = _warnings(proc)
    assert len(lines) == 1 and "did you mean AZML_FLUSH_TIMEOUT?" in lines[0], proc.stderr


# -- the CLI checks only what a command uses ------------------------------------------------------
def test_history_list_ignores_a_setting_it_does_not_use(sqlite_store):
    store = sqlite_store
    store.run_script(SCRIPT, HOME=str(store.home))
    proc = subprocess.run(["azml", "history", "list", "-o", "json"], cwd=store.workdir,
                          env=store.env(AZML_FLUSH_TIMEOUT="abc", HOME=str(store.home)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(__import__("json").loads(proc.stdout)) == 1


def test_a_bad_value_a_command_uses_is_one_error_line(sqlite_store):
    from cli_support import one_line_error

    store = sqlite_store
    proc = subprocess.run(["azml", "sync"], cwd=store.workdir,
                          env=store.env(AZML_HTTP_TIMEOUT="soon", HOME=str(store.home)),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert one_line_error(proc, "AZML_HTTP_TIMEOUT='soon'").startswith("ERROR: ")


# -- one place reads the environment ------------------------------------------------------------
# Where a module outside _config may touch os.environ, and why.
ALLOWED_ENVIRON = {
    ("_redact.py", "redact_text"): "credential values, looked up at each redaction, never kept",
    ("_core/stores/mlflow_client.py", "bounded_mlflow_http"): "sets MLflow's own variables for "
                                                           "MLflow, around one call",
    ("_core/environment.py", "prepare_process"): "sets AZUREML_NATIVE_SHARE_DIRECTORY for the script",
    ("_core/environment.py", "notebook_path"): "JPY_SESSION_NAME: Jupyter's, names the notebook",
    ("_azml/submit.py", "submit"): "the script's environment: ours plus its run",
    ("cli/_output.py", "terminal_width"): "COLUMNS: the terminal's width",
    ("cli/__init__.py", "main"): "MLflow's own progress bar off by default in a command "
                                 "(it draws when piped; ours only on a terminal)",
    ("_core/stores/sqlite_read.py", "open"): "MLFLOW_ENABLE_WORKSPACES: MLflow's own switch, which "
                                        "changes what its SQLite store answers",
    ("_core/stores/sqlite_write.py", "options_understood"): "MLflow's own switches that change what "
                                                        "its SQLite store writes: MLflow's "
                                                        "store then writes",
    ("_core/http.py", "__init__"): "MLflow's own client variables (credentials, TLS), read as its "
                              "client reads them, when a client is made",
    ("_core/http.py", "_truthy"): "the same, for MLflow's yes/no variables (MLFLOW_TRACKING_INSECURE_TLS)",
    ("_core/http.py", "mlflow_request_reason"): "MLflow's variables that only its request code "
                                           "implements (MLFLOW_TRACKING_AUTH, ...)",
}


def _environ_reads():
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(PACKAGE))
        if where == "_config.py":
            continue
        tree = ast.parse(path.read_text())
        scopes = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    scopes.setdefault(id(inner), node.name)  # outermost function wins
        for node in ast.walk(tree):
            hit = ((isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os")
                   or (isinstance(node, ast.Name) and node.id in ("environ", "getenv")))
            if hit:
                yield where, scopes.get(id(node), "<module>"), node.lineno


def test_only_config_reads_the_environment():
    found = {(where, scope) for where, scope, _ in _environ_reads()}
    unexpected = sorted(f"{where}:{line} in {scope}" for where, scope, line in _environ_reads()
                        if (where, scope) not in ALLOWED_ENVIRON)
    assert not unexpected, f"os.environ read outside _config.py: {unexpected}"
    assert found, "the scan found nothing: it no longer sees os.environ"


def test_every_variable_named_in_the_code_is_declared():
    names = set()
    for path in PACKAGE.rglob("*.py"):
        names |= set(re.findall(r"\bAZML_[A-Z_]+[A-Z]\b", path.read_text()))
    assert names - set(_config.BY_NAME) == set()


# -- docs/settings.md's table is the declaration ------------------------------------------------
def _documented_rows() -> list[tuple[str, str, str]]:
    text = (REPO / "docs" / "settings.md").read_text()
    section = text.split("# Settings", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [tuple(cell.strip() for cell in line.strip().strip("|").split("|")) for line in rows]


def test_settings_doc_table_is_the_declaration():
    declared = [(f"`{s.name}`", s.shown_default, s.doc) for s in SETTINGS]
    assert _documented_rows() == declared


def test_the_tests_scrub_every_declared_variable():
    import conftest

    kept = {"AZML_SHARE_DIRECTORY"}  # the autouse fixture points it into tmp for every child
    assert {s.name for s in SETTINGS} - kept <= set(conftest._SCRUBBED)


@pytest.mark.parametrize("uri, expected", [
    ("sqlite:///rel.db", "sqlite:////proj/rel.db"),
    ("sqlite:///sub/rel.db?timeout=20", "sqlite:////proj/sub/rel.db?timeout=20"),
    ("sqlite:////abs/m.db", "sqlite:////abs/m.db"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("file:mlruns", "file:///proj/mlruns"),
    ("file:///abs/mlruns", "file:///abs/mlruns"),
    ("./mlruns", "/proj/mlruns"),
    ("http://user:pw@host:5000", "http://user:pw@host:5000"),
    ("postgresql://u@db/x", "postgresql://u@db/x"),
])
def test_a_relative_local_store_is_made_absolute_before_it_is_used(uri, expected):
    from azml_compat._config import Settings, absolute_uri

    assert absolute_uri(uri, "/proj") == expected
    settings = Settings.from_env(["MLFLOW_TRACKING_URI"], environ={"MLFLOW_TRACKING_URI": uri},
                                 cwd="/proj")
    assert settings.tracking_uri == expected
