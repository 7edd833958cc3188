"""What the MLflow UI shows of a Workbench run: the experiment's kind, the run's name, its
arguments as parameters, its description, bookkeeping tags hidden; and where the run is."""
from __future__ import annotations

import json
import re
import shlex
import textwrap
from types import SimpleNamespace

import requests
from cli_support import empty_db, sqlite_cli  # noqa: F401 - fixtures
from localserver import LocalServer

from azml_compat._core.presentation import params_from_args, run_note
from azml_compat._core.records import RUN_KEY_TAG
from azml_compat._core.runs import fields, values

SCRIPT = textwrap.dedent("""
    import sys
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    logger.log("accuracy (%)", 93.5)
    logger.log("Model", "logistic regression")
    logger.log("loss", 0.25)
""")


def test_run_is_named_after_its_script_with_arguments_as_params_and_a_description(store):
    store.run_script(SCRIPT, "0.01", "--epochs", "3", "--fast")
    run = store.only_run()
    assert run.info.run_name == "train.py 0.01 --epochs 3 --fast"
    assert run.data.params == {"arg0": "0.01", "epochs": "3", "fast": "true"}
    note = run.data.tags["mlflow.note.content"]
    assert "`train.py`" in note and "`0.01 --epochs 3 --fast`" in note
    assert str(store.workdir) in note
    assert "| `accuracy (%)` | → | `accuracy _pct_` |" in note
    # The UI lists every tag not starting with "mlflow.": only the script's own strings.
    assert {k for k in run.data.tags if not k.startswith("mlflow.")} == {"Model"}
    assert run.data.tags[RUN_KEY_TAG]  # the run key is there for the CLI and `azml sync`
    # The CLI still reads everything it showed before.
    assert values(run) == {"Model": "logistic regression", "accuracy (%)": 93.5, "loss": 0.25}
    shaped = fields(run)
    assert shaped["script_name"] == "train.py" and shaped["name"] == run.info.run_name
    assert shaped["properties"]["arguments"] == ["0.01", "--epochs", "3", "--fast"]
    assert shaped["properties"]["working_dir"] == str(store.workdir)
    experiment = store.client.get_experiment(run.info.experiment_id)
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"


def test_runs_written_under_the_old_tag_names_read_as_before():
    tags = {"azml.script_name": "train.py", "azml.arguments": '["0.01"]',
            "azml.working_dir": "/p", "azml.name.accuracy ___": "accuracy (%)", "Model": "lr",
            "azml.run_key": "k"}
    run = SimpleNamespace(
        info=SimpleNamespace(run_id="r", run_name="brave-fox-1", status="FINISHED", start_time=1,
                             end_time=2, experiment_id="0", user_id="u", artifact_uri="a"),
        data=SimpleNamespace(metrics={"accuracy ___": 93.5}, params={}, tags=tags))
    assert values(run) == {"Model": "lr", "accuracy (%)": 93.5}
    shaped = fields(run)
    assert shaped["script_name"] == "train.py"
    assert shaped["properties"]["arguments"] == ["0.01"]
    assert shaped["properties"]["working_dir"] == "/p"


def test_a_journal_written_under_the_old_run_key_tag_finds_its_run(store):
    """A journal of a killed process from before the run key moved under ``mlflow.``: `azml
    sync` must find the run that process made (by the old tag), not create a second one."""
    from azml_compat._core.records import LEGACY_RUN_KEY_TAG, RunSpec
    from azml_compat._core.stores import connect

    client = store.client
    experiment_id = client.create_experiment("old")
    made = client.create_run(experiment_id, tags={LEGACY_RUN_KEY_TAG: "0ld5ca1e"}).info.run_id
    old = RunSpec(store.uri, "old", tags={LEGACY_RUN_KEY_TAG: "0ld5ca1e"}, run_key="0ld5ca1e")
    new = RunSpec(store.uri, "old", run_key="0ld5ca1e")  # same key, the current tag
    backend = connect(store.uri)
    assert backend.open_run(old) == made
    assert RUN_KEY_TAG not in old.tags  # a run made from an old journal gets the old tag only
    created = backend.open_run(new)
    assert created != made  # a current journal's key is looked up under the current tag only
    assert client.get_run(created).data.tags[RUN_KEY_TAG] == "0ld5ca1e"
    assert LEGACY_RUN_KEY_TAG not in client.get_run(created).data.tags
    assert len(client.search_runs([experiment_id])) == 2


def test_arguments_become_params_by_position_and_by_option_name():
    assert params_from_args(["0.01", "--epochs", "3", "--fast", "--lr=0.1", "-v", "data.csv"]) == {
        "arg0": "0.01", "epochs": "3", "fast": "true", "lr": "0.1", "v": "data.csv"}
    # A negative number is a value, not an option; "--" ends the options.
    assert params_from_args(["--shift", "-1", "--", "--not-an-option"]) == {
        "shift": "-1", "arg0": "--not-an-option"}
    # A name MLflow refuses as a key stays a positional parameter, whole.
    assert params_from_args(["--a(b)", "1"]) == {"arg0": "--a(b)", "arg1": "1"}
    # The same option twice: the last value, as argparse keeps it.
    assert params_from_args(["--x", "1", "--x", "2"]) == {"x": "2"}


def test_note_lists_renamed_names_and_survives_markdown_in_them():
    note = run_note("train.py", ["a|b"], "/w", {"x_y": "x|y", "p_q": "p*q`"})
    assert "| `x\\|y` | → | `x_y` |" in note  # in a code span only "|" is escaped
    assert "| p\\*q\\` | → | `p_q` |" in note  # plain (it has a backquote): all escaped
    assert json.dumps(note)  # plain text, one tag value


def test_at_exit_a_server_run_says_where_it_is_in_one_line(server_store):
    proc = server_store.run_script(SCRIPT, "0.01", AZML_QUIET="0")
    run = server_store.only_run()
    link = f"{server_store.uri}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
    said = [line for line in proc.stderr.splitlines() if link in line]
    assert len(said) == 1, proc.stderr
    quiet = server_store.run_script(SCRIPT, "0.02", AZML_QUIET="1")
    assert "/#/experiments/" not in quiet.stderr


def test_at_exit_the_embedded_default_says_how_to_open_the_run(sqlite_store, tmp_path):
    proc = sqlite_store.run_script(SCRIPT, AZML_QUIET="0")
    run = sqlite_store.only_run()
    (line,) = [line for line in proc.stderr.splitlines() if "mlflow ui" in line]
    command = re.search(r"`([^`]+)`", line).group(1)
    db = sqlite_store.workdir / "mlflow.db"
    assert command == f"python -m mlflow ui --backend-store-uri sqlite:///{db}"
    assert f"/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}" in line
    # The command works as printed (from another folder, `python` found on PATH as a shell
    # finds it): the UI it serves answers for the run (only host and port added, to stay on
    # 127.0.0.1 and not clash with other tests).
    server = LocalServer(tmp_path / "ui")
    server.args = [*shlex.split(command), "--host", "127.0.0.1", "--port", str(server.port)]
    with server:
        found = requests.post(f"{server.url}/ajax-api/2.0/mlflow/runs/search", timeout=30,
                              json={"experiment_ids": [run.info.experiment_id]}).json()
        assert [r["info"]["run_id"] for r in found["runs"]] == [run.info.run_id]
        assert requests.get(server.url + "/", timeout=30).status_code == 200


def test_retry_warnings_quote_the_root_reason_whole():
    import socket

    from azml_compat._core.sender import _describe
    from azml_compat._core.stores.rest import RestStore

    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        store = RestStore(f"http://127.0.0.1:{sock.getsockname()[1]}")
        try:
            store._find_experiment("x")
        except Exception as exc:  # noqa: BLE001 - what the sender would describe
            described = _describe(exc)
    assert described.endswith("[Errno 111] Connection refused"), described
    assert "HTTPConnection" not in described and len(described) < 80
    long = _describe(ValueError("word " * 200))
    assert len(long) <= 300 and long.endswith("word …")


def test_a_submitted_run_is_named_described_and_says_where_it_is(sqlite_cli):
    sqlite_cli.store.write_script(SCRIPT, "train.py")
    proc = sqlite_cli.run("submit", "train.py", "--lr", "0.1", AZML_QUIET="0")
    assert proc.returncode == 0, proc.stderr
    run = sqlite_cli.store.only_run()
    assert run.info.run_name == "train.py --lr 0.1" and run.data.params == {"lr": "0.1"}
    # the script's own logger (attached to the submitted run) adds its renamed names
    assert "| `accuracy (%)` | → | `accuracy _pct_` |" in run.data.tags["mlflow.note.content"]
    assert proc.stderr.decode().count(f"/runs/{run.info.run_id}?") == 1, proc.stderr


def test_the_description_stops_growing_once_its_table_is_full():
    renamed = {f"name_{i:04d}": f"name ({i:04d})" for i in range(1000)}
    note = run_note("train.py", [], "/w", renamed)
    assert len(note) <= 8000 and note.rstrip().endswith("more (`azml history info`).")


VIEW_SCRIPT = textwrap.dedent("""
    import sys
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    for name in sys.argv[1:]:
        logger.log(name, 1.0)
    logger.log("Model", "text, not a column")
""")


def _view(store, experiment_id):
    from azml_compat._core.view import VIEW_TAG

    value = store.client.get_experiment(experiment_id).tags.get(VIEW_TAG)
    return None if value is None else (json.loads(value), json.loads(json.loads(value)["state"]))


def test_the_experiment_gets_a_runs_view_with_the_metrics_as_columns(store):
    """MLflow's saved view of the runs table (the UI's "Views" menu, opened by the exit line's
    link): a column per metric, sorted, first; each run adds its own, text values are none;
    a view of someone else's is never touched."""
    proc = store.run_script(VIEW_SCRIPT, "loss", "accuracy (%)", AZML_QUIET="0")
    experiment_id = store.only_run().info.experiment_id
    envelope, state = _view(store, experiment_id)
    assert envelope["name"] == "Workbench: metrics first" and envelope["writtenBy"] == "azml-compat"
    assert state["columnOrder"] == ["metrics.`accuracy _pct_`", "metrics.`loss`"]
    assert state["selectedColumns"] == state["columnOrder"]
    line = next(line for line in proc.stderr.splitlines() if "all runs: " in line)
    assert line.endswith(f"/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
                         "&viewStateShareKey=azml-workbench"), line

    mine = json.dumps({"name": "mine", "createdAt": 1, "state": '{"selectedColumns": []}'})
    store.client.set_experiment_tag(experiment_id, "mlflow.sharedViewState.mine", mine)
    store.run_script(VIEW_SCRIPT, "val loss", "loss")
    _, state = _view(store, experiment_id)
    assert state["columnOrder"] == ["metrics.`accuracy _pct_`", "metrics.`loss`",
                                    "metrics.`val loss`"]
    tags = store.client.get_experiment(experiment_id).tags
    assert tags["mlflow.sharedViewState.mine"] == mine

    # Saved by a person in the UI (it writes only the envelope's own fields): theirs now.
    theirs = json.dumps({"name": "edited", "createdAt": 1, "updatedAt": 2,
                         "state": '{"selectedColumns": ["metrics.`loss`"]}'})
    store.client.set_experiment_tag(experiment_id, "mlflow.sharedViewState.azml-workbench",
                                    theirs)
    store.run_script(VIEW_SCRIPT, "f1")
    assert store.client.get_experiment(experiment_id).tags[
        "mlflow.sharedViewState.azml-workbench"] == theirs


def test_runs_ending_together_all_get_their_columns_in_the_view(store):
    """A sweep: processes side by side, each with its own metrics, write the one view; none
    loses another's columns (SQLite: one transaction; a server: written, read back, again)."""
    import subprocess
    import sys

    store.run_script(VIEW_SCRIPT)  # the store and experiment made; no metric, no view yet
    experiment_id = store.only_run().info.experiment_id
    assert _view(store, experiment_id) is None
    names = [f"metric {i}" for i in range(4)]
    script = store.write_script(VIEW_SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), name], cwd=store.workdir,
                              env=store.env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for name in names]
    for proc in procs:
        assert proc.wait(timeout=180) == 0
    _, state = _view(store, experiment_id)
    assert state["columnOrder"] == [f"metrics.`{name}`" for name in names]


def test_the_description_shows_logged_lists_and_dicts_within_its_room():
    labels = [f"label {i}" for i in range(100_000)]
    note = run_note("train.py", [], "/w", {}, {
        "labels": ("list", labels, "metrics/labels.json"),
        "params": ("dict", {"lr": 0.01, "a|b": "x`y"}, "metrics/params.json")})
    assert "| `labels` | `label 0`, `label 1`, " in note
    assert "99,9" not in note and " more: all in artifact `metrics/labels.json` |" in note
    assert r'| `params` | `lr`: `0.01`, `a\|b`: \"x\`y\" |' in note
    many = {f"list {i:03d}": ("list", ["x" * 500], f"metrics/list {i:03d}.json")
            for i in range(100)}
    note = run_note("train.py", [], "/w", {}, many)
    assert len(note) <= 8000 and note.endswith("more (artifacts under `metrics/`, "
                                               "`azml history info`).")


def test_a_logged_list_of_str_and_dict_are_in_the_runs_description(store):
    store.run_script("""
        from azureml.logging import get_azureml_logger
        logger = get_azureml_logger()
        logger.log("labels", ["old"])
        logger.log("labels", ["cat", "dog"])  # latest wins, as its artifact
        logger.log("params", {"lr": 0.01})
    """)
    note = store.only_run().data.tags["mlflow.note.content"]
    assert "| `labels` | `cat`, `dog` |" in note and "`old`" not in note
    assert "| `params` | `lr`: `0.01` |" in note
