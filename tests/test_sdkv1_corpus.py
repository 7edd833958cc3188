"""The SDK v1 corpus (tests/sdkv1_corpus/): real scripts from Azure/MachineLearningNotebooks, run
unchanged but for their training lines, each as a real process in a fresh folder, on the SQLite
default and on a real ``mlflow server``; each must land as SDK v1 showed it (its manifest),
read back through MLflow's own client and ``mlflow.load_table``.

Every script runs on both stores by default, with no `slow` split: 78 processes, two at a time
(each in its own folder and experiment, so they share nothing but the server). Measured with
`time python -m pytest tests/test_sdkv1_corpus.py -q`: 4 min 27 s of CPU in all (3:55 user,
0:32 sys, every child included), i.e. about 2.3 minutes of wall time on two idle cores; 10 min
49 s of wall time while other jobs kept the load average at 16-25.
"""
from __future__ import annotations

import ast
import json
import math
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Store
from sdkv1_corpus.manifest import CASES, Floats, Missing, NotCovered, Rows

CORPUS = Path(__file__).resolve().parent / "sdkv1_corpus"
BY_FOLDER = {case.folder: case for case in CASES}
PARALLEL = 2  # processes at a time: the machine's cores
TIMEOUT = 300  # seconds for one script; the slowest takes ~15 s on a loaded machine


@dataclass
class Ran:
    case: object
    store: Store
    proc: subprocess.CompletedProcess
    folder: Path  # where it ran: its outputs, uploads and downloads are there


def _run_case(case, store: Store) -> Ran:
    folder = store.workdir
    shutil.copytree(CORPUS / case.folder, folder, dirs_exist_ok=True)
    if case.prepare is not None:
        case.prepare(folder)
    # The corpus checks what lands, not the bound on exit (tests/test_durability.py does): on a
    # machine loaded by other work (load ~20 on 2 cores here), a fresh folder's SQLite store
    # (MLflow's import and 68 migrations) took over the default 30 s, and the records waited in
    # the journal for `azml sync`.
    env = store.env(HOME=str(folder.parent / "home"), JUPYTER_RUNTIME_DIR=str(folder.parent / "jupyter"),
                    AZML_FLUSH_TIMEOUT="600")
    if case.notebook:
        # nbclient's `jupyter execute`: a real kernel in the notebook's folder, every cell run
        # even after one fails, so each readback cell is checked on its own
        command = [sys.executable, "-c", "from nbclient.cli import main; main()",
                   "--allow-errors", "--inplace", "--timeout=600", case.script]
    else:
        command = [sys.executable, case.script, *case.args]
    proc = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    (folder.parent / "stdout.txt").write_text(proc.stdout)  # next to the folder, not in ./logs
    (folder.parent / "stderr.txt").write_text(proc.stderr)
    return Ran(case, store, proc, folder)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory, request):
    """The cases this session selected on one store kind, all run at the first test of that
    kind, ``PARALLEL`` at a time."""
    done: dict[str, dict[str, Ran]] = {}

    def selected(kind: str) -> set:
        return {item.callspec.params["folder"] for item in request.session.items
                if getattr(item, "callspec", None) and item.callspec.params.get("kind") == kind
                and "folder" in item.callspec.params}

    # The server is started here, while the fixture is set up: one started inside a test is
    # ended with that test (conftest ends what a test started), and the next server test of
    # the sweep found it dead.
    server = request.getfixturevalue("mlflow_server") if selected("server") else None

    def sweep(kind: str) -> dict[str, Ran]:
        if kind not in done:
            uri = server.url if kind == "server" else None
            selected_here = selected(kind)
            cases = [case for case in CASES if case.folder in selected_here]
            stores = {}
            for case in cases:
                root = tmp_path_factory.mktemp(f"{kind}-{case.folder}")
                workdir = root / "project"
                workdir.mkdir()
                (root / "home").mkdir()
                stores[case.folder] = Store(kind, uri or f"sqlite:///{workdir / 'mlflow.db'}", workdir,
                                            f"corpus-{case.folder}-{uuid.uuid4().hex[:6]}")
            with ThreadPoolExecutor(PARALLEL) as pool:
                futures = {case.folder: pool.submit(_run_case, case, stores[case.folder]) for case in cases}
                done[kind] = {folder: future.result() for folder, future in futures.items()}
        return done[kind]

    return sweep


def _parent_and_children(store: Store):
    runs = store.runs()
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def _values(store: Store, run_id: str, key: str) -> list[float]:
    history = store.history(run_id, key)
    steps = [m.step for m in history]
    assert steps == list(range(len(history))), f"{key!r}: steps {steps}, SDK v1 kept call order 0, 1, 2..."
    return [m.value for m in history]


def _same(actual, expected, what: str) -> None:
    assert len(actual) == len(expected), f"{what}: {len(actual)} values, SDK v1 had {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert math.isclose(a, e, rel_tol=1e-9, abs_tol=1e-12), f"{what}[{i}]: {a} != {e}"


def _floats_fit(values, spec: Floats, what: str) -> None:
    assert len(values) == spec.n, f"{what}: {len(values)} values, the script logged {spec.n}"
    assert all(spec.lo <= v <= spec.hi for v in values), f"{what}: {values} outside [{spec.lo}, {spec.hi}]"
    if spec.nondecreasing:
        assert values == sorted(values), f"{what}: a running best went down: {values}"


def _table_from_mlflow(store: Store, run, name: str):
    """``mlflow.load_table`` as a user calls it: it reads the current tracking URI and
    experiment (even through MlflowClient.load_table, which searches with the fluent API),
    which the test sets in the environment for itself (the test's first lines)."""
    import mlflow

    assert mlflow.get_tracking_uri() == store.uri, "a process-wide tracking URI hides the store"
    return mlflow.load_table(f"{name}.json", run_ids=[run.info.run_id])


def _check_table(store: Store, run, name: str, expected) -> set[str]:
    """The table artifact (rows in order, through mlflow.load_table) and a stepped metric per
    numeric column; returns those metric keys."""
    run_id = run.info.run_id
    frame = _table_from_mlflow(store, run, name)
    columns = expected.columns if isinstance(expected, Rows) else tuple(expected)
    got = [c for c in frame.columns if c != "run_id"]
    assert sorted(got) == sorted(columns), f"table {name!r}: columns {got}, SDK v1 had {list(columns)}"
    for column in columns:
        values = [float(v) for v in frame[column]]
        key = f"{name}.{column}"
        charted = _values(store, run_id, key)
        if isinstance(expected, Rows):
            assert len(values) == expected.n, f"table {name!r}: {len(values)} rows, logged {expected.n}"
            assert all(0 <= v <= i for i, v in enumerate(values)), f"{name}.{column}: a value above its step"
        else:
            _same(values, expected[column], f"table {name!r} column {column!r}")
        _same(charted, values, f"metric {key!r} (the chart of the table's column)")
    return {f"{name}.{column}" for column in columns}


def _check_metrics(store: Store, run, expected: dict, what: str) -> None:
    """Each name as SDK v1's get_metrics gave it, on MLflow: numbers a metric series, strings a
    tag, tables a table artifact plus a series per column; and no other metric."""
    run_id = run.info.run_id
    keys = set()
    for name, value in expected.items():
        if isinstance(value, str):
            assert run.data.tags.get(name) == value, f"{what}: tag {name!r} = {run.data.tags.get(name)!r}, " \
                                                     f"SDK v1 showed the string {value!r}"
            assert name not in run.data.metrics, f"{what}: the string {name!r} is also a metric"
        elif isinstance(value, (dict, Rows)):
            keys |= _check_table(store, run, name, value)
        else:
            keys.add(name)
            values = _values(store, run_id, name)
            if isinstance(value, Floats):
                _floats_fit(values, value, f"{what}: {name!r}")
            else:
                _same(values, value if isinstance(value, list) else [value], f"{what}: {name!r}")
    assert set(run.data.metrics) == keys, \
        f"{what}: metrics {sorted(run.data.metrics)}, SDK v1 had {sorted(keys)}"


def _user_tags(run) -> dict:
    return {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}


def _check_finished(ran: Ran) -> None:
    case, store = ran.case, ran.store
    output = f"stdout:\n{ran.proc.stdout[-3000:]}\nstderr:\n{ran.proc.stderr[-3000:]}"
    assert ran.proc.returncode == 0, f"{case.script} exited {ran.proc.returncode}\n{output}"
    for line in case.stdout:
        assert line in ran.proc.stdout, f"{case.script} did not print {line!r}\n{output}"
    parents, children = _parent_and_children(store)
    assert len(parents) == 1, f"{len(parents)} top-level runs, one script is one run"
    run = parents[0]
    assert run.info.status == "FINISHED", f"run {run.info.status}\n{output}"
    run_id = run.info.run_id

    _check_metrics(store, run, case.metrics, "run")
    strings = {k for k, v in case.metrics.items() if isinstance(v, str)}
    tags = {k: v for k, v in _user_tags(run).items() if k not in strings}
    expected_tags = {k: "" if v is None else v for k, v in case.tags.items()}
    assert tags == expected_tags, f"tags {tags}, SDK v1 had {case.tags} (a tag without a value: '')"
    # MLflow params hold the script's arguments (this project's choice, as for Workbench scripts:
    # `--kernel linear` is the param kernel); the properties it adds would be `properties/<name>`
    # params (none in the corpus)
    arguments = {name.lstrip("-"): value for name, value in zip(case.args[::2], case.args[1::2])}
    assert run.data.params == arguments, f"params {run.data.params}: the arguments are {arguments}"

    artifacts = store.artifact_paths(run_id)
    tables = {f"{k}.json" for k, v in case.metrics.items() if isinstance(v, (dict, Rows))}
    images = {p for p in artifacts if any(p.rsplit(".", 1)[0] == name for name in case.images)}
    assert len(images) == len(case.images), \
        f"images {sorted(images)} for {case.images} in {sorted(artifacts)}"
    for path in images:
        assert store.artifact_bytes(run_id, path)[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    logs = {p for p in artifacts if p.startswith("logs/")}
    assert case.logs <= logs, f"./logs: {sorted(logs)}, the script wrote {sorted(case.logs)}"
    expected = tables | images | set(case.uploads) | set(case.outputs)
    assert artifacts - logs == expected, \
        f"artifacts {sorted(artifacts - logs)}, SDK v1 had {sorted(expected)}"
    for name, local in {**case.uploads, **{p: p for p in case.outputs | case.logs}}.items():
        assert store.artifact_bytes(run_id, name) == (ran.folder / local).read_bytes(), \
            f"{name}: bytes differ"

    assert len(children) == len(case.children), \
        f"{len(children)} child runs, the script made {len(case.children)}"
    unmatched = list(children)
    for index, spec in enumerate(case.children):
        assert all(child.data.tags["mlflow.parentRunId"] == run_id for child in children)
        want = {k: v[-1] if isinstance(v, list) else v for k, v in spec.metrics.items()}
        match = next((child for child in unmatched if child.data.metrics == want), None)
        assert match is not None, f"no child run with {want}: {[c.data.metrics for c in children]}"
        unmatched.remove(match)
        assert match.info.status == spec.status, f"child {index}: {match.info.status}"
        _check_metrics(store, match, spec.metrics, f"child {index}")


def _check_stops(ran: Ran) -> None:
    case, store = ran.case, ran.store
    stderr = ran.proc.stderr.strip()
    # the traceback's last line; azml's own lines (a journal notice) may follow it
    lines = [line for line in stderr.splitlines() if not line.startswith("azml: ")]
    last = lines[-1] if lines else ""
    output = f"stdout:\n{ran.proc.stdout[-2000:]}\nstderr:\n{stderr[-3000:]}"
    assert ran.proc.returncode != 0, f"{case.script} exited 0; it should stop\n{output}"
    assert "AttributeError" not in stderr, f"an AttributeError deep inside, not one clear error\n{output}"
    if isinstance(case.stops, NotCovered):
        assert "not covered" in last.lower() and case.stops.call in last, \
            f"the last line should say {case.stops.call!r} is not covered:\n{last!r}\n{output}"
    else:
        named = [f"ModuleNotFoundError: No module named '{m}'" for m in case.stops.modules]
        assert last in named, f"expected one of {named}\n{output}"
    parents, children = _parent_and_children(store)
    assert len(parents) <= 1 and not children
    for run in parents:  # a run the script started ends with it, never left RUNNING
        assert run.info.status == "FAILED", f"run {run.info.status} after the script stopped\n{output}"
        assert run.data.metrics == {}, run.data.metrics
    if isinstance(case.stops, NotCovered):
        assert len(parents) == 1, f"Run.get_context() ran before {case.stops.call}: its run should be there"


def _cell_results(folder: Path, name: str) -> list[tuple[str, object]]:
    """Each code cell's source with its result: the error it raised, or its displayed value."""
    import nbformat

    notebook = nbformat.read(folder / name, as_version=4)
    results = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        error = next((o for o in outputs if o.output_type == "error"), None)
        shown = next((o for o in outputs if o.output_type == "execute_result"), None)
        results.append((cell.source, error or (shown["data"]["text/plain"] if shown else None)))
    return results


def _sdk_v1_metrics(case) -> dict:
    return {name: value for name, value in case.metrics.items() if not isinstance(value, Rows)}


def _check_notebook_readback(ran: Ran) -> None:
    """The notebook reads its run back after ``run.complete()``: get_metrics (all, and one
    name), tag and get_tags, in SDK v1's shapes; the calls it makes that are not covered say so."""
    results = _cell_results(ran.folder, ran.case.script)
    errors = {source.strip().splitlines()[-1].strip(): f"{e['ename']}: {e['evalue']}" for source, e in results
              if isinstance(e, dict) and "ename" in e}
    for cell, call in ran.case.notebook_not_covered.items():
        error = errors.pop(cell, "")
        assert error.startswith("NotCovered") and "not covered" in error and call in error, \
            f"cell {cell!r} should say {call!r} is not covered: {error!r}"
    assert not errors, f"cells that raised: {errors}"
    shown = {source.strip().splitlines()[-1].strip(): value for source, value in results}

    text = shown["fetched_run.get_metrics()"]
    # SDK v1's values came back from its service as plain JSON numbers
    assert "np.float64(" not in text, f"get_metrics() returns numpy scalars, not plain floats: {text[:300]}"
    metrics = ast.literal_eval(text)
    extra = set(metrics) - set(ran.case.metrics) - set(ran.case.images)
    assert not extra, f"get_metrics() has names the notebook never logged: {sorted(extra)}"
    for name, value in ran.case.metrics.items():
        assert name in metrics, f"get_metrics() has no {name!r}: {sorted(metrics)}"
        got = metrics[name]
        if isinstance(value, Rows):
            assert sorted(got) == sorted(value.columns) and all(len(v) == value.n for v in got.values())
        elif isinstance(value, dict):
            assert sorted(got) == sorted(value), f"{name!r}: {sorted(got)}"
            for column in value:
                _same(got[column], value[column], f"get_metrics()[{name!r}][{column!r}]")
        elif isinstance(value, list):
            _same(got, value, f"get_metrics()[{name!r}]")
        else:
            assert got == value, f"get_metrics()[{name!r}] = {got!r}, SDK v1 gave {value!r}"
    for image in ran.case.images:  # SDK v1 listed an image by its artifact's address
        assert isinstance(metrics.get(image, ""), str), f"{image!r}: {metrics[image]!r}"
    assert ast.literal_eval(shown['fetched_run.get_metrics(name = "scale factor")']) == {"scale factor": 2}

    tags = ast.literal_eval(shown["fetched_run.get_tags()"])
    for key, value in ran.case.tags.items():
        assert key in tags and tags[key] == value, \
            f"get_tags()[{key!r}] = {tags.get(key)!r}, SDK v1: {value!r}"


# all of one store first: its sweep runs at its first test, and its results show before the next
@pytest.mark.parametrize("kind,folder", [(kind, folder) for kind in ("sqlite", "server")
                                         for folder in BY_FOLDER])
def test_script_lands_as_sdk_v1_showed_it(sweeps, kind, folder, monkeypatch):
    ran = sweeps(kind)[folder]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", ran.store.uri)
    experiment = ran.store.client.get_experiment_by_name(ran.store.experiment)
    if experiment is not None:
        monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment.experiment_id)
    if ran.case.stops is not None:
        _check_stops(ran)
        return
    _check_finished(ran)
    if ran.case.notebook:
        _check_notebook_readback(ran)


def test_every_script_calling_run_get_context_is_in_the_corpus():
    """38 files of the source repository call Run.get_context(); each has a folder and a case,
    and each reproduced file names where it came from and its licence."""
    sources = {case.source.split(" ")[0] for case in CASES}
    assert len([s for s in sources if s.endswith(".py")]) == 38
    licence = (CORPUS / "LICENSE-MachineLearningNotebooks.txt").read_text()
    assert "MIT License" in licence and "Copyright (c) Microsoft Corporation" in licence
    for case in CASES:
        folder = CORPUS / case.folder
        assert (folder / case.script).exists(), case.folder
        for path in folder.rglob("*.py"):
            head = path.read_text().splitlines()[:3]
            assert head[0].startswith("# corpus: how-to-use-azureml/") and "MIT licence" in head[1], path
        if case.notebook:
            first = json.loads((folder / case.script).read_text())["cells"][0]["source"]
            assert "MIT licence" in "".join(first)
