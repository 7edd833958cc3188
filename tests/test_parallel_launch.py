"""Side-by-side launches and early kills on the embedded SQLite default, in fresh project folders.

MLflow creates a new SQLite store with ~68 migrations over ~2 s and no lock across processes:
scripts started together raced them, and a kill in that window left a half-migrated file that
broke every later run and ``azml sync``. Real processes, real signals, a fresh folder each time.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from azml_compat._core.batching import METRIC, TAG
from cli_support import AZML
from conftest import clean_env

POINTS = 50
TRAIN = textwrap.dedent(f"""
    import sys
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    logger.log("worker", sys.argv[1])
    for i in range({POINTS}):
        logger.log("loss", float(i))
""")
# Logs a point every 10 ms for ~4 s after start-up, so a kill in its first 4 s lands while
# MLflow creates the database (the first ~1.5-3 s after the worker imports MLflow), during
# run creation, or while points flow.
SLOW = textwrap.dedent("""
    import time
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    logger.log("note", "started")
    for i in range(600):
        logger.log("loss", float(i))
        time.sleep(0.01)
""")
AFTER = textwrap.dedent("""
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    for i in range(5):
        logger.log("after", float(i))
""")


def env_for(folder: Path, home: Path, experiment: str, **extra) -> dict:
    return clean_env(AZML_HOME=home, HOME=home, MLFLOW_EXPERIMENT_NAME=experiment, **extra)


def client(folder: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")


def runs_of(folder: Path, experiment: str) -> list:
    c = client(folder)
    found = c.get_experiment_by_name(experiment)
    return [] if found is None else c.search_runs([found.experiment_id])


def series(folder: Path, run_id: str, key: str) -> list[float]:
    history = client(folder).get_metric_history(run_id, key)
    return [m.value for m in sorted(history, key=lambda m: m.step)]


def test_eight_scripts_started_together_in_a_fresh_folder_all_land(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "train.py").write_text(TRAIN)
    procs = [subprocess.Popen([sys.executable, "train.py", str(n)], cwd=folder,
                              # This machine may be loaded: give the exit flush room.
                              env=env_for(folder, tmp_path / f"home{n}", "sweep",
                                          AZML_FLUSH_TIMEOUT=600),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(8)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outputs):
        assert p.returncode == 0, err
        assert "OperationalError" not in err and "already exists" not in err, err

    runs = runs_of(folder, "sweep")
    assert sorted(r.data.tags.get("worker") for r in runs) == [str(n) for n in range(8)]
    for run in runs:
        assert run.info.status == "FINISHED"
        assert series(folder, run.info.run_id, "loss") == [float(i) for i in range(POINTS)]
    # Nothing of the build is left beside the database, and artifacts go where MLflow puts
    # them for this folder (the database was built under another name).
    assert sorted(p.name for p in folder.iterdir() if "mlflow.db" in p.name) == [
        ".mlflow.db.lock", "mlflow.db"]
    # What plain MLflow gives a new database in this folder: ./mlruns/<id> as an absolute path.
    c = client(folder)
    assert c.get_experiment("0").artifact_location == str(folder / "mlruns" / "0")
    sweep = c.get_experiment_by_name("sweep")
    assert sweep.artifact_location == str(folder / "mlruns" / sweep.experiment_id)


def journal_content(home: Path) -> dict:
    """What a dead process left in its journal: undelivered metric values and tags."""
    found = {"loss": set(), "tags": {}, "run_id": None, "journals": 0}
    for path in sorted((home / "journal").glob("*.db")):
        found["journals"] += 1
        with contextlib.closing(sqlite3.connect(path)) as db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name='records'").fetchone():
                continue  # killed before it wrote its schema: it holds nothing
            meta = dict(db.execute("SELECT key, value FROM meta"))
            found["run_id"] = json.loads(meta.get("run_id", "null"))
            for kind, key, num, text in db.execute("SELECT kind, key, num, text FROM records"):
                if kind == METRIC and key == "loss":
                    found["loss"].add(num)
                elif kind == TAG:
                    found["tags"][key] = text
    return found


def stored_loss(folder: Path) -> set[float]:
    """The ``loss`` values the killed run had stored when it died, read with ``sqlite3`` so
    that nothing (no MLflow store, no migration) changes the database before the checks do.
    Not ``mode=ro``: a killed writer leaves a WAL that any reader first replays, as SQLite's
    own recovery does for every later opener (read-only, that fails)."""
    if not (folder / "mlflow.db").exists():
        return set()
    with contextlib.closing(sqlite3.connect(folder / "mlflow.db")) as db:
        if not db.execute("SELECT 1 FROM sqlite_master WHERE name='metrics'").fetchone():
            return set()
        return {v for (v,) in db.execute("SELECT value FROM metrics WHERE key='loss'")}


def database_appears(folder: Path, proc: subprocess.Popen) -> bool:
    """Wait until the first sign of the database in ``folder`` (the file MLflow migrates in
    place, or the one being built under another name); False if the process ended first."""
    while proc.poll() is None:
        if (folder / "mlflow.db").exists() or list(folder.glob(".mlflow.db.azml-build-*")):
            return True
        time.sleep(0.005)
    return False


def kill_at(base: Path, anchor: str, instant: float) -> dict:
    try:
        return _kill_at(base, anchor, instant)
    except Exception as exc:  # noqa: BLE001 - reading the folder failed: that instant broke it
        line = (str(exc).strip().splitlines() or [""])[0][:200]
        return {"instant": f"{instant:.2f} s after {anchor}", "phase": "?", "journaled": -1,
                "logged": -1, "problems": [f"reading the folder: {type(exc).__name__}: {line}"]}


def _kill_at(base: Path, anchor: str, instant: float) -> dict:
    """Start a first run in a fresh folder, SIGKILL it ``instant`` s after its launch or after
    the database first appears (``anchor``), then check that the folder still works and that
    ``azml sync`` delivers what the dead process had journaled."""
    folder, home, after_home = base / "project", base / "home", base / "home-after"
    folder.mkdir(parents=True)
    (folder / "slow.py").write_text(SLOW)
    (folder / "after.py").write_text(AFTER)
    outcome = {"instant": f"{instant:.2f} s after {anchor}", "problems": []}
    proc = subprocess.Popen([sys.executable, "slow.py"], cwd=folder,
                            env=env_for(folder, home, "killed"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    if anchor == "launch" or database_appears(folder, proc):
        time.sleep(instant)  # the instant itself is what is being varied
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    journaled = journal_content(home)
    outcome["journaled"] = len(journaled["loss"])
    outcome["logged"] = len(journaled["loss"] | stored_loss(folder))
    outcome["phase"] = ("database being built" if list(folder.glob(".mlflow.db.azml-build-*"))
                        else "database made" if (folder / "mlflow.db").exists()
                        else "logging, no database yet" if journaled["journals"]
                        else "starting up")

    after = subprocess.run([sys.executable, "after.py"], cwd=folder, capture_output=True,
                           text=True, timeout=300,
                           env=env_for(folder, after_home, "after", AZML_FLUSH_TIMEOUT=60))
    runs = runs_of(folder, "after") if (folder / "mlflow.db").exists() else []
    if (after.returncode != 0 or len(runs) != 1 or runs[0].info.status != "FINISHED"
            or series(folder, runs[0].info.run_id, "after") != [0.0, 1.0, 2.0, 3.0, 4.0]):
        outcome["problems"].append(f"new run: exit {after.returncode}, {len(runs)} run(s), "
                                   f"{after.stderr.strip().splitlines()[-1:]}")

    synced = subprocess.run([AZML, "sync", "--give-up-after", "10", "-o", "json"], cwd=folder,
                            capture_output=True, text=True, timeout=300,
                            env=env_for(folder, home, "killed"))
    if synced.returncode != 0:
        outcome["problems"].append(f"sync: exit {synced.returncode}, "
                                   f"{synced.stderr.strip().splitlines()[-1:]}")
        return outcome
    if not journaled["loss"] and not journaled["tags"]:
        return outcome  # killed before anything reached the journal: nothing to deliver
    results = json.loads(synced.stdout)
    run_id = results[0]["run_id"] if results else journaled["run_id"]
    if run_id is None:
        outcome["problems"].append(f"sync left no run: {results}")
        return outcome
    got = series(folder, run_id, "loss")
    run = client(folder).get_run(run_id)
    # Points are journaled in order, so the run must hold an unbroken prefix 0..n-1 that
    # includes every point the journal still held (the rest were delivered before the kill).
    if got != [float(i) for i in range(len(got))] or not journaled["loss"] <= set(got):
        outcome["problems"].append(f"points: journal {sorted(journaled['loss'])[:3]}... "
                                   f"({len(journaled['loss'])}), run has {len(got)}")
    for key, value in journaled["tags"].items():
        if run.data.tags.get(key) != value:
            outcome["problems"].append(f"tag {key!r} not delivered")
    if run.info.status == "RUNNING":
        outcome["problems"].append("the killed run was not ended")
    return outcome


# One kill at once, before the interpreter is up: a script starts fast enough that on a quiet
# machine its journal already existed 0.10 s after launch, and the sweep then missed the phase
# before anything is journaled. Then 11 instants across the first 4 s after launch, and, as a
# loaded machine can push the database's creation past those 4 s, 12 across the ~2-3 s it
# takes once the file appears.
INSTANTS = ([("launch", 0.0)] + [("launch", round(0.1 + i * 3.9 / 10, 2)) for i in range(11)]
            + [("database appeared", round(i * 0.25, 2)) for i in range(12)])
GROUP = 4  # instants run side by side: the sweep takes ~2 min instead of ~6 on 2 cores


def test_a_kill_at_any_instant_of_a_first_run_leaves_a_working_folder(tmp_path):
    with ThreadPoolExecutor(GROUP) as pool:
        outcomes = list(pool.map(lambda n: kill_at(tmp_path / f"k{n:02d}", *INSTANTS[n]),
                                 range(len(INSTANTS))))
    broken = [o for o in outcomes if o["problems"]]
    print("kill instant, phase it landed in, points stored or journaled, of them journaled, problems:")
    for o in outcomes:
        print(f"  {o['instant']:30}  {o['phase']:26}  {o['logged']:4}  {o['journaled']:4}  "
              f"{o['problems']}")
    summary = "\n".join(f"  {o['instant']} ({o['phase']}, journal held {o['journaled']}): "
                        f"{'; '.join(o['problems'])}" for o in broken)
    assert not broken, f"{len(broken)} of {len(outcomes)} kill instants broke the folder:\n{summary}"
    # The sweep must actually have hit every phase: before anything was journaled, in the
    # middle of the database's creation, and while points flowed. The embedded default delivers
    # within milliseconds, so the journal is mostly empty at the kill: a kill while points
    # flowed is one after which the run holds some of them (stored or still journaled).
    phases = {o["phase"] for o in outcomes}
    assert "starting up" in phases and "database being built" in phases, phases
    assert any(0 < o["logged"] < 600 for o in outcomes), [o["logged"] for o in outcomes]


def half_made(path: Path, how: str) -> None:
    """A database as others leave it: ``interrupted`` = MLflow's initial tables made, then the
    process died before its migrations ran; ``older`` = complete at an older MLflow's revision."""
    import sqlalchemy
    from alembic import command
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import InitialBase, _get_alembic_config

    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    InitialBase.metadata.create_all(engine)
    if how == "older":
        config = _get_alembic_config(str(engine.url))
        revisions = [r.revision for r in ScriptDirectory.from_config(config).walk_revisions()]
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revisions[len(revisions) // 2])
    engine.dispose()


@pytest.mark.parametrize("how, advice", [("interrupted", "mv "), ("older", "mlflow db upgrade")])
def test_a_half_made_database_gets_one_clear_error_and_nothing_is_lost(tmp_path, how, advice):
    folder, home = tmp_path / "project", tmp_path / "home"
    folder.mkdir()
    db = folder / "mlflow.db"
    half_made(db, how)
    before = db.read_bytes()
    (folder / "train.py").write_text(TRAIN)
    env = env_for(folder, home, "sweep")

    script = subprocess.run([sys.executable, "train.py", "0"], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=300)
    assert script.returncode == 0, script.stderr  # logging trouble never fails the training
    # Said once, when the store is opened (the exit line then repeats it as the reason the
    # records stay in the journal).
    said = [line for line in script.stderr.splitlines() if "cannot log to this run" in line]
    assert len(said) == 1 and str(db) in said[0] and advice in said[0], script.stderr
    assert "OperationalError" not in script.stderr and "Traceback" not in script.stderr
    assert db.read_bytes() == before  # not migrated in place, half-way or otherwise
    assert journal_content(home)["loss"] == {float(i) for i in range(POINTS)}

    for command in (["history", "list"], ["history", "last"], ["history", "info", "-r", "x"],
                    ["sync"]):
        proc = subprocess.run([AZML, *command], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 1, (command, proc.stdout, proc.stderr)
        # (sync prints its journals as its result first, then the one error line)
        errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
        assert len(errors) == 1 and str(db) in errors[0] and advice in errors[0], proc.stderr
    assert db.read_bytes() == before

    # Done as the message says (move it aside): a new database is made and sync delivers all.
    db.rename(folder / "mlflow.db.broken")
    proc = subprocess.run([AZML, "sync", "-o", "json"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run,) = runs_of(folder, "sweep")
    assert run.data.tags["worker"] == "0"
    assert series(folder, run.info.run_id, "loss") == [float(i) for i in range(POINTS)]


def test_an_empty_database_file_is_replaced_by_a_complete_one(tmp_path, monkeypatch):
    from azml_compat._core.stores.sqlite import check, prepare

    monkeypatch.chdir(tmp_path)  # MLflow puts the Default experiment's artifacts in ./mlruns
    db = tmp_path / "mlflow.db"
    db.touch()  # what `sqlite3 mlflow.db` or a process killed at its first statement leaves
    prepare(f"sqlite:///{db}")
    check(str(db))
    assert client(tmp_path).get_experiment("0").artifact_location == str(tmp_path / "mlruns" / "0")
    assert not list(tmp_path.glob(".mlflow.db.azml-build-*"))


def test_a_file_that_is_not_a_database_is_named(tmp_path):
    from azml_compat._core.stores.sqlite import IncompleteDatabase, prepare

    db = tmp_path / "mlflow.db"
    db.write_bytes(b"not a database " * 100)
    with pytest.raises(IncompleteDatabase, match=f"{db} is not a usable SQLite database"):
        prepare(f"sqlite:///{db}")
    assert db.read_bytes() == b"not a database " * 100
