"""Tracking stores that plugins register through MLflow's ``mlflow.tracking_store`` entry points
(as ``azureml-mlflow`` registers ``azureml://``): accepted by the library and every ``azml``
command, end to end. The plugin is installed the way pip would leave it, without pip: a
``NAME-0.1.dist-info`` folder with ``entry_points.txt`` next to its module, on PYTHONPATH."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import AZML
from conftest import clean_env

PLUGIN = textwrap.dedent('''
    """A tracking-store plugin: azmltest:///FOLDER is MLflow's SQL store on FOLDER/store.db."""
    import os
    from urllib.parse import urlsplit


    def _folder(store_uri):
        return urlsplit(store_uri).path


    def tracking_store(store_uri, artifact_uri=None):
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        folder = _folder(store_uri)
        os.makedirs(folder, exist_ok=True)
        return SqlAlchemyStore(f"sqlite:///{folder}/store.db", f"{folder}/artifacts")


    def registry_store(store_uri, **_):
        from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

        return SqlAlchemyStore(f"sqlite:///{_folder(store_uri)}/store.db")
''')
ENTRY_POINTS = textwrap.dedent("""
    [mlflow.tracking_store]
    azmltest = azmltest_plugin:tracking_store

    [mlflow.model_registry_store]
    azmltest = azmltest_plugin:registry_store
""")
LEGACY = textwrap.dedent("""
    import os
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    logger.log("alpha", 0.5)
    logger.log("accuracy", [0.7, 0.8, 0.9])
    logger.log("Trained model", "logistic regression")
    for loss in (3.0, 2.0, 1.0):
        logger.log("loss", loss)
    os.makedirs("outputs", exist_ok=True)
    with open("outputs/model.pkl", "wb") as fh:
        fh.write(b"weights")
""")


@pytest.fixture
def plugin(tmp_path) -> Path:
    """The folder to put on PYTHONPATH: the plugin module and its dist-info."""
    site = tmp_path / "site"
    info = site / "azmltest_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "azmltest_plugin.py").write_text(PLUGIN)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: azmltest-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


def plugin_env(plugin: Path, tmp_path: Path, uri: str, **extra) -> dict:
    return clean_env(PYTHONPATH=plugin, MLFLOW_TRACKING_URI=uri, MLFLOW_EXPERIMENT_NAME="plug",
                     AZML_HOME=tmp_path / "home", HOME=tmp_path / "home", **extra)


def test_a_plugin_scheme_works_end_to_end(plugin, tmp_path):
    project, backend = tmp_path / "project", tmp_path / "backend"
    project.mkdir()
    (project / "train.py").write_text(LEGACY)
    env = plugin_env(plugin, tmp_path, f"azmltest://{backend}")

    def azml(*args):
        proc = subprocess.run([AZML, *args], cwd=project, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    script = subprocess.run([sys.executable, "train.py"], cwd=project, env=env,
                            capture_output=True, text=True, timeout=300)
    assert script.returncode == 0, script.stderr
    assert not (project / "mlflow.db").exists()  # it went to the plugin's store, not the default

    rows = json.loads(azml("history", "list", "-o", "json"))
    assert len(rows) == 1 and rows[0]["status"] == "Completed"
    assert rows[0]["alpha"] == 0.5 and rows[0]["loss"] == 1.0
    assert rows[0]["Trained model"] == "logistic regression"
    run_id = rows[0]["run_id"]

    info = json.loads(azml("history", "info", "-r", run_id, "-o", "json"))
    assert info["series"]["accuracy"] == [0.7, 0.8, 0.9]
    assert info["series"]["loss"] == [3.0, 2.0, 1.0]
    assert "outputs/model.pkl" in info["attachments"].split(", ")
    assert info["properties"]["artifact_uri"].startswith(str(backend / "artifacts"))

    promoted = json.loads(azml("history", "promote", "-r", run_id, "-ap", "outputs/model.pkl",
                               "-n", "model.pkl", "-o", "json"))
    link = json.loads((project / "assets" / "model.pkl.link").read_text())
    assert link["version"] == promoted["version"] == "1" and link["runId"] == run_id

    # Everything physically lives in the plugin's own store.
    from mlflow.tracking import MlflowClient

    direct = MlflowClient(f"sqlite:///{backend / 'store.db'}")
    assert direct.get_run(run_id).data.metrics["loss"] == 1.0
    assert direct.get_model_version("model.pkl", "1").run_id == run_id
    assert (backend / "artifacts").is_dir()


def test_plugin_schemes_are_read_without_importing_mlflow(plugin, tmp_path):
    code = ("import sys; from azml_compat._config import check_tracking_uri; "
            "print(check_tracking_uri('azmltest:///x')); print('mlflow' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], env=plugin_env(plugin, tmp_path, ""),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["azmltest:///x", "False"]


def test_an_unknown_scheme_names_it_and_what_is_available(plugin, tmp_path):
    env = plugin_env(plugin, tmp_path, "nosuch://host/x")
    script = subprocess.run([sys.executable, "-c", "from azureml.logging import get_azureml_logger;"
                             " get_azureml_logger()"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    cli = subprocess.run([AZML, "history", "list"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    for proc in (script, cli):
        assert proc.returncode == 1
        assert "unknown scheme 'nosuch'" in proc.stderr and "azmltest" in proc.stderr
        assert "azureml" in proc.stderr  # how to get the managed backends' schemes
    assert len(cli.stderr.strip().splitlines()) == 1
