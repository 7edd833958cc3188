"""A Workbench notebook in a real Jupyter kernel (nbclient): the run is named after the
notebook, its points reach the store while the kernel is alive, and it ends FINISHED when the
kernel shuts down."""
from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from cli_support import AZML, empty_db  # noqa: F401 - fixture

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

CELLS = [
    "from azureml.logging import get_azureml_logger\n"
    "logger = get_azureml_logger()\n"
    "logger.log('Cell', 'Cell 1: data loaded')\n"
    "logger.log('accuracy', 0.5)",
    "logger.log('Cell', 'Cell 2: trained')\nlogger.log('accuracy', 0.6)",
    "logger.log('Cell', 'Cell 3: evaluated')\nlogger.log('accuracy', 0.7)",
]
POLL = 180  # seconds: the bound of each wait below; it returns as soon as the store has it


@pytest.fixture(autouse=True)
def jupyter_runtime(tmp_path, monkeypatch):
    """Connection files and other Jupyter runtime state stay in the test's folder."""
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))


def poll(check, what: str, timeout: float = POLL):
    """``check()``'s first truthy result, asking again until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def run_notebook(store, tmp_path, empty_db, between_cells=None, before=(), **env):
    """Execute ``before`` then ``CELLS`` in a fresh kernel started in the store's project
    folder; calls ``between_cells(index)`` after each of ``CELLS``, while the kernel runs."""
    # A migrated store: the test reads it while the kernel writes, and two first users of a
    # fresh SQLite file would both migrate it.
    shutil.copy(empty_db, store.workdir / "mlflow.db")
    (tmp_path / "home").mkdir(exist_ok=True)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (*before, *CELLS)]
    client = nbclient.NotebookClient(notebook, kernel_name="python3", timeout=600,
                                     resources={"metadata": {"path": str(store.workdir)}})
    kernel_env = store.env(HOME=str(tmp_path / "home"), **env)
    with client.setup_kernel(env=kernel_env):
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
            if between_cells is not None and index >= len(before):
                between_cells(index - len(before))
    return notebook


def _run(store):
    runs = store.runs()
    return runs[0] if runs else None


def test_notebook_run(sqlite_store, tmp_path, empty_db):
    """As under jupyter-server, which gives the kernel its notebook in ``JPY_SESSION_NAME``."""
    seen = []

    def between_cells(index):
        # Nothing flushes: the background sender delivers while the kernel sits idle.
        run = poll(lambda: _run(sqlite_store), "the run")
        points = poll(lambda: len(sqlite_store.history(run.info.run_id, "accuracy")) > index
                      and sqlite_store.history(run.info.run_id, "accuracy"),
                      f"the point of cell {index + 1}")
        assert run.info.status == "RUNNING"
        seen.append([p.value for p in points])

    run_notebook(sqlite_store, tmp_path, empty_db, between_cells,
                 JPY_SESSION_NAME=str(sqlite_store.workdir / "Iris Training.ipynb"))
    assert seen == [[0.5], [0.5, 0.6], [0.5, 0.6, 0.7]]
    run = poll(lambda: (r := _run(sqlite_store)) and r.info.status != "RUNNING" and r,
               "the end of the run")
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["mlflow.azml.script_name"] == "Iris Training.ipynb"
    assert tags["mlflow.source.name"] == str(sqlite_store.workdir / "Iris Training.ipynb")
    assert tags["mlflow.source.type"] == "NOTEBOOK"
    assert tags["mlflow.azml.arguments"] == "[]"  # not the kernel's connection file
    assert tags["Cell"] == "Cell 3: evaluated"


@pytest.mark.parametrize("before, name", [
    ((), "notebook.ipynb"),  # nbclient and papermill tell the kernel nothing
    (("__vsc_ipynb_file__ = '/home/me/proj/Explore.ipynb'",), "Explore.ipynb"),  # as VS Code does
])
def test_notebook_shut_down_at_once(sqlite_store, tmp_path, empty_db, before, name):
    """Shut down right after its last cell, the kernel may be killed (Jupyter waits 5 s) before
    the worker has even connected: what it journaled is delivered by `azml sync`, and the run
    ends FINISHED."""
    run_notebook(sqlite_store, tmp_path, empty_db, before=before)
    sync = subprocess.run([AZML, "sync"], cwd=sqlite_store.workdir, capture_output=True,
                          text=True, timeout=300, env=sqlite_store.env(HOME=str(tmp_path / "home")))
    assert sync.returncode == 0, sync.stderr
    run = sqlite_store.only_run()
    assert run.info.status == "FINISHED"
    assert run.data.tags["mlflow.azml.script_name"] == name
    assert [p.value for p in sqlite_store.history(run.info.run_id, "accuracy")] == [0.5, 0.6, 0.7]
