"""azml-compat next to the real SDK v1 packages, each in a throwaway venv with our wheel.

* ``azureml-core`` present: its own ``Run`` wins and ours stays out of the way; installed in
  either order; uninstalling either leaves the other working.
* ``azureml-mlflow`` present (an MLflow plugin under ``azureml/``): ours still serves
  ``azureml.core``; either order; uninstalling either leaves the other working.
* The signature test: our ``Run``'s public methods take what the real ``Run``'s take.

The venvs reuse this interpreter's packages (``--system-site-packages``: MLflow and most of
azureml-core's dependencies are already there) and are made once per test session. Measured
here: a venv ~3 s, our wheel ~5 s, azureml-core 1.61 ~35 s the first time (pip's cache makes
the next installs ~10 s), azureml-mlflow ~10 s.
"""
import inspect
import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from conftest import clean_env

REPO = Path(__file__).resolve().parent.parent
CORE = "azureml-core==1.61.0.post4"
AZML_MLFLOW = "azureml-mlflow"
# Every method of the SDK v1 calls we map (docs/migration-sdkv1.md): the signature test's scope.
METHODS = ("get_context", "log", "log_list", "log_row", "log_table", "log_image",
           "log_confusion_matrix", "log_accuracy_table", "log_predictions", "log_residuals",
           "upload_file", "upload_files", "upload_folder", "tag", "set_tags", "get_tags",
           "remove_tags", "add_properties", "get_properties", "child_run", "create_children",
           "complete", "fail", "cancel", "flush", "get_metrics", "get_details", "get_status",
           "register_model", "get_secret", "get_secrets", "get_children")
PROPERTIES = ("parent", "experiment", "id", "name", "display_name", "input_datasets")

WHICH = r'''
import json, sys, warnings
warnings.simplefilter("ignore")
from azureml.core import Run
import azureml.core
from azureml.core.run import Run as Run2
print(json.dumps({"ours": bool(getattr(azureml.core, "__azml_compat__", False)),
                  "module": Run.__module__, "same": Run is Run2,
                  "file": getattr(azureml.core, "__file__", None)}))
'''


class Venv:
    def __init__(self, root: Path) -> None:
        self.root = root
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(root)],
                       check=True, capture_output=True, timeout=300)
        self.python = str(root / "bin" / "python")

    def env(self, **extra) -> dict:
        env = clean_env()
        env.pop("PYTHONPATH", None)  # the venv's packages, not the checkout (unless given)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def pip(self, *args) -> None:
        proc = subprocess.run([self.python, "-m", "pip", "--disable-pip-version-check", "-q",
                               *args], capture_output=True, text=True, env=self.env(),
                              timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def run(self, code: str, cwd: Path, **env) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.python, "-c", code], capture_output=True, text=True,
                              cwd=cwd, env=self.env(**env), timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        return proc

    def which(self, cwd: Path) -> dict:
        return json.loads(self.run(WHICH, cwd).stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "mlruns"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out), str(source)], check=True, capture_output=True,
                   timeout=300)
    (built,) = out.glob("azml_compat-*.whl")
    return str(built)


@pytest.fixture(scope="session")
def core_venv(tmp_path_factory, wheel) -> Venv:
    """Ours first, then azureml-core: the real one must win. Shared by the signature test."""
    venv = Venv(tmp_path_factory.mktemp("venv-core") / "v")
    venv.pip("install", "--no-deps", wheel)
    venv.pip("install", CORE)
    return venv


def _project(tmp_path: Path) -> Path:
    project = tmp_path / f"p-{uuid.uuid4().hex[:6]}"
    project.mkdir()
    return project


LOGS_ANYWHERE = r'''
from azureml.core import Run
run = Run.get_context()
run.log("acc", 0.5)
run.log_row("tbl", a=1)
run.flush()
print("RUN", run.id)
'''
# ... and with the venv's wheel, not the checkout or the machine's editable install
LOGS = ("import azml_compat, sys\nassert azml_compat.__file__.startswith(sys.prefix), "
        "azml_compat.__file__\n" + LOGS_ANYWHERE)


def _logs_to_server(venv: Venv, project: Path, server) -> None:
    experiment = f"coexist-{uuid.uuid4().hex[:8]}"
    proc = venv.run(LOGS, project, MLFLOW_TRACKING_URI=server.url,
                    MLFLOW_EXPERIMENT_NAME=experiment, AZML_HOME=project / "home")
    run_id = proc.stdout.split("RUN ")[1].split()[0]
    from mlflow.tracking import MlflowClient

    run = MlflowClient(server.url).get_run(run_id)
    assert run.data.metrics["acc"] == 0.5 and "tbl.json" in run.data.tags["mlflow.loggedArtifacts"]


def test_ours_alone_serves_azureml_core_from_a_fresh_interpreter(tmp_path, wheel, mlflow_server):
    venv = Venv(tmp_path / "v")
    venv.pip("install", "--no-deps", wheel)
    project = _project(tmp_path)
    assert venv.which(project)["ours"] is True
    _logs_to_server(venv, project, mlflow_server)
    # The hook is a .pth line: it needs no import of ours before the script's own.
    assert (Path(venv.run("import site; print(site.getsitepackages()[0])", project)
                 .stdout.strip()) / "azml_compat.pth").is_file()


def test_real_azureml_core_wins_installed_after_ours_and_uninstalling_it_brings_ours_back(
        core_venv, tmp_path, mlflow_server):
    project = _project(tmp_path)
    found = core_venv.which(project)
    assert found == {**found, "ours": False, "module": "azureml.core.run", "same": True}
    offline = core_venv.run("from azureml.core import Run; r = Run.get_context(); "
                            "print(type(r).__name__, r.id)", project).stdout
    assert offline.startswith("_OfflineRun OfflineRun_")
    # Our Workbench face is untouched by it.
    core_venv.run("from azureml.logging import get_azureml_logger; get_azureml_logger()",
                  project, AZML_HOME=project / "home", MLFLOW_TRACKING_URI=mlflow_server.url)
    core_venv.pip("uninstall", "-y", "azureml-core")
    try:
        assert core_venv.which(project)["ours"] is True
        _logs_to_server(core_venv, project, mlflow_server)
    finally:
        core_venv.pip("install", CORE)  # the session's venv keeps the real package
    assert core_venv.which(project)["ours"] is False


def test_real_azureml_core_wins_installed_before_ours_and_survives_our_uninstall(
        tmp_path, wheel):
    venv = Venv(tmp_path / "v")
    venv.pip("install", CORE)
    venv.pip("install", "--no-deps", wheel)
    project = _project(tmp_path)
    found = venv.which(project)
    assert found["ours"] is False and found["module"] == "azureml.core.run"
    venv.pip("uninstall", "-y", "azml-compat")
    found = venv.which(project)
    assert found["ours"] is False and found["module"] == "azureml.core.run"


@pytest.mark.parametrize("order", ["ours-first", "azureml-mlflow-first"])
def test_azureml_mlflow_next_to_ours_either_order(order, tmp_path, wheel, mlflow_server):
    venv = Venv(tmp_path / "v")
    steps = [("install", "--no-deps", wheel), ("install", AZML_MLFLOW)]
    for step in steps if order == "ours-first" else steps[::-1]:
        venv.pip(*step)
    project = _project(tmp_path)
    plugin = "import azureml.mlflow; from importlib.metadata import entry_points; " \
             "print(sorted(e.name for e in entry_points(group='mlflow.tracking_store')))"
    assert "azureml" in venv.run(plugin, project).stdout
    assert venv.which(project)["ours"] is True
    _logs_to_server(venv, project, mlflow_server)
    if order == "ours-first":
        venv.pip("uninstall", "-y", AZML_MLFLOW)
        assert venv.which(project)["ours"] is True
        _logs_to_server(venv, project, mlflow_server)
    else:
        venv.pip("uninstall", "-y", "azml-compat")
        assert "azureml" in venv.run(plugin, project).stdout


SIGNATURES = r'''
import inspect, json, warnings
warnings.simplefilter("ignore")
from azureml.core import Run
out = {}
for name in json.loads(input()):
    out[name] = str(inspect.signature(getattr(Run, name)))
print(json.dumps(out))
'''


def test_our_run_takes_what_the_real_run_takes(core_venv, tmp_path):
    from azml_compat._sdkv1.run import Run

    proc = subprocess.run([core_venv.python, "-c", SIGNATURES], input=json.dumps(METHODS),
                          capture_output=True, text=True, cwd=tmp_path, env=core_venv.env(),
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    real = json.loads(proc.stdout.strip().splitlines()[-1])
    # Parameters, kinds and defaults as the real package has them (ours also say what they return).
    ours = {name: str(inspect.signature(getattr(Run, name)).replace(
        return_annotation=inspect.Signature.empty)) for name in METHODS}
    assert ours == real
    for name in PROPERTIES:  # attributes the real Run has as properties: ours too
        assert isinstance(inspect.getattr_static(Run, name), property), name


def _interpreter(version: str) -> str | None:
    """A Python ``version`` on this machine (PATH or pyenv's versions), or None."""
    found = [shutil.which(f"python{version}")] + sorted(
        str(p) for p in (Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python"))
    for candidate in filter(None, found):
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == str(tuple(map(int, version.split(".")))):
            return candidate
    return None


@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
def test_the_face_imports_and_logs_on_other_pythons(version, tmp_path, mlflow_server):
    # 3.13 is where the real package's submitted-run path stops importing (imghdr is gone).
    # Without MLflow in that interpreter: a tracking server is reached through requests alone.
    python = _interpreter(version)
    if python is None:
        pytest.skip(f"no Python {version} on this machine")
    root = tmp_path / "v"
    subprocess.run([python, "-m", "venv", str(root)], check=True, capture_output=True, timeout=300)
    venv = Venv.__new__(Venv)
    venv.root, venv.python = root, str(root / "bin" / "python")
    venv.pip("install", "requests>=2.28", "click>=8.1", "tabulate>=0.9", "jmespath>=1.0")
    project = _project(tmp_path)
    experiment = f"py{version}-{uuid.uuid4().hex[:6]}"
    proc = venv.run(LOGS_ANYWHERE, project,
                    PYTHONPATH=REPO, MLFLOW_TRACKING_URI=mlflow_server.url,
                    MLFLOW_EXPERIMENT_NAME=experiment, AZML_HOME=project / "home")
    run_id = proc.stdout.split("RUN ")[1].split()[0]
    from mlflow.tracking import MlflowClient

    run = MlflowClient(mlflow_server.url).get_run(run_id)
    assert run.data.metrics["acc"] == 0.5 and run.data.metrics["tbl.a"] == 1.0
