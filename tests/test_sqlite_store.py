"""The SQLite default written with ``sqlite3`` alone (``_stores.sqlite_write``) leaves exactly
what MLflow's own store leaves: the same schema, the same rows for the same operations, read
the same by MLflow's client and by ``azml history``; where it is not exact, MLflow writes."""
from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from azml_compat._exceptions import IncompleteDatabase
from azml_compat._core.records import RunSpec
from azml_compat._core.stores import connect
from azml_compat._core.stores import sqlite as sqlite_build
from azml_compat._core.stores.base import is_transient
from azml_compat._core.stores.gen_schema import SCHEMA_FILE, dump, migrated_database
from azml_compat._core.stores.mlflow_client import MlflowStore
from azml_compat._core.stores.sqlite_write import SqliteStore, build
from cli_support import AZML
from conftest import clean_env

# Columns that hold the time of the write itself (not given by the caller): left out.
CLOCK_COLUMNS = {"creation_time", "last_update_time"}


_CONSTRAINT = ("CONSTRAINT ", "CHECK ", "CHECK(", "FOREIGN KEY", "PRIMARY KEY", "UNIQUE ")


def top_level_items(body: str) -> list[str]:
    """``body`` split at the commas outside parentheses and quotes."""
    items, depth, quote, start = [], 0, None, 0
    for i, char in enumerate(body):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(body[start:i].strip())
            start = i + 1
    return [*items, body[start:].strip()]


def normalized(sql: str | None):
    """A CREATE TABLE with its table constraints as a set: alembic's batch migrations write
    them in an order that changes from one run of the same migrations to the next (measured:
    two builds by MLflow itself differ), while the columns keep theirs."""
    if not sql or not sql.startswith("CREATE TABLE"):
        return sql
    head, body = sql[:sql.index("(")], sql[sql.index("(") + 1:sql.rindex(")")]
    items = top_level_items(body)
    columns = [i for i in items if not i.upper().startswith(_CONSTRAINT)]
    return head.strip(), tuple(columns), frozenset(set(items) - set(columns))


def master(path: Path) -> set:
    db = sqlite3.connect(path)
    try:
        return {(kind, name, table, normalized(sql)) for kind, name, table, sql
                in db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")}
    finally:
        db.close()


def structure(path: Path) -> dict:
    """Every table's columns, indexes (with their columns) and foreign keys, as PRAGMAs say."""
    db = sqlite3.connect(path)
    try:
        found = {}
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            indexes = {}
            for _, name, unique, origin, partial in db.execute(f'PRAGMA index_list("{table}")'):
                columns = [row[2] for row in db.execute(f'PRAGMA index_info("{name}")')]
                indexes[name] = (unique, origin, partial, columns)
            found[table] = (db.execute(f'PRAGMA table_info("{table}")').fetchall(), indexes,
                            sorted(db.execute(f'PRAGMA foreign_key_list("{table}")').fetchall()))
        return found
    finally:
        db.close()


def tables(path: Path, root: str) -> dict:
    """Every row of every table, run ids numbered in order of start, ``root`` (the folder the
    store was opened from) as ``<root>``, write-time columns left out: what two stores given
    the same operations must hold alike."""
    db = sqlite3.connect(path)
    try:
        run_ids = [r[0] for r in db.execute("SELECT run_uuid FROM runs ORDER BY start_time, name")]
        names = {run_id: f"<run{i}>" for i, run_id in enumerate(run_ids)}

        def norm(value):
            if isinstance(value, str):
                for run_id, name in names.items():
                    value = value.replace(run_id, name)
                # The runs view's envelope holds the time it was written, a write-time column.
                value = re.sub(r'"(createdAt|updatedAt)": \d+', r'"\1": <time>', value)
                return value.replace(root, "<root>")
            return value

        found = {}
        for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            cursor = db.execute(f'SELECT * FROM "{table}"')
            columns = [c[0] for c in cursor.description]
            keep = [i for i, c in enumerate(columns) if c not in CLOCK_COLUMNS]
            found[table] = sorted((tuple(norm(row[i]) for i in keep) for row in cursor), key=repr)
        return found
    finally:
        db.close()


@pytest.fixture(scope="module")
def mlflow_made(tmp_path_factory) -> Path:
    """A database made by MLflow's migrations alone (~2 s, once for the module)."""
    path = tmp_path_factory.mktemp("migrated") / "mlflow.db"
    migrated_database(str(path))
    return path


def test_the_packaged_schema_is_what_mlflows_migrations_make(mlflow_made):
    def statements(text: str) -> set:
        return {normalized(line.rstrip(";")) for line in text.split(";\n")}

    assert statements(Path(SCHEMA_FILE).read_text()) == statements(dump(str(mlflow_made))), (
        "sqlite_schema.sql is stale: run `python -m azml_compat._core.stores.gen_schema`")


def test_a_new_database_is_the_one_mlflow_makes(tmp_path, monkeypatch):
    ours, theirs = tmp_path / "ours" / "mlflow.db", tmp_path / "theirs" / "mlflow.db"
    for path, make in ((ours, build), (theirs, sqlite_build._migrate)):
        path.parent.mkdir()
        monkeypatch.chdir(path.parent)  # the Default experiment's artifacts: ./mlruns here
        make(str(path))
    assert master(ours) == master(theirs)
    assert structure(ours) == structure(theirs)
    assert tables(ours, str(ours.parent)) == tables(theirs, str(theirs.parent))
    assert "alembic_version" in structure(ours)

    # MLflow opens ours as its own: no migration, and the store works.
    from mlflow.tracking import MlflowClient

    before = ours.read_bytes()
    client = MlflowClient(f"sqlite:///{ours}")
    assert client.get_experiment("0").artifact_location == str(ours.parent / "mlruns" / "0")
    assert master(ours) == master(theirs) and len(before) == ours.stat().st_size
    run = client.create_run("0")
    client.log_metric(run.info.run_id, "m", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"m": 1.0}


# -- the same operations through both stores ------------------------------------------------------
LONG = "x" * 9000  # cut to MLflow's 8,000 characters by both
START = 1_700_000_000_000


def spec(uri: str, key: str, **tags) -> RunSpec:
    base = {"mlflow.runName": "train.py", "mlflow.source.name": "/src/train.py",
            "mlflow.source.type": "LOCAL", "mlflow.azml.arguments": '["--alpha", "0.5"]'}
    return RunSpec(uri, "diff", start_time_ms=START, tags={**base, **tags}, run_key=key,
                   new_key=True)


def operations(store, uri: str, files: Path) -> list:
    """The logging path's calls with the Workbench mapping's edge cases; what each refusal
    said (error code and message with the run ids left out) is returned for comparison."""
    said = []

    def refused(call, *args):
        with pytest.raises(Exception) as raised:
            call(*args)
        exc = raised.value
        said.append((getattr(exc, "error_code", None), str(exc).split(":")[0][:60]))

    run = store.open_run(spec(uri, "a" * 32, note=LONG))
    seq = iter(range(10**6))
    nan, inf = float("nan"), float("inf")
    store.log_batch(run, [
        (next(seq), "loss", 0.5, START + 1, 0), (next(seq), "loss", nan, START + 2, 1),
        (next(seq), "loss", inf, START + 3, 2), (next(seq), "loss", -inf, START + 4, 2),
        (next(seq), "flag", 1.0, START + 1, 0), (next(seq), "flag", 0.0, START + 1, 0),
        (next(seq), "nan_only", nan, START, 0), (next(seq), "nan_only", nan, START, 0),
        (next(seq), "accuracy_pct", 75.0, START, 0),  # a renamed key and its name tag
    ], [(next(seq), "mlflow.azml.name.accuracy_pct", "accuracy (%)"),
        (next(seq), "long", LONG), (next(seq), "note", "first"), (next(seq), "note", "second")])
    # Repeated steps, older points after newer ones, the identical point again (ignored).
    store.log_batch(run, [
        (next(seq), "loss", 0.1, START + 1, 0), (next(seq), "loss", 9.0, START + 3, 2),
        (next(seq), "loss", 0.5, START + 1, 0), (next(seq), "flag", 1.0, START + 1, 0),
        (next(seq), "late", 3.0, START + 50, 1), (next(seq), "late", 2.0, START + 60, 0),
        (next(seq), "tie", 0.0, START, 0), (next(seq), "tie", nan, START, 0),
    ], [(next(seq), "note", "third"), (next(seq), "mlflow.runName", "renamed")])
    for chunk in range(3):  # 1,000-point batches, one key's steps continuing across them
        store.log_batch(run, [(next(seq), "series", float(i) / 7, START + i, i)
                              for i in range(chunk * 1000, chunk * 1000 + 1000)], [])
    said.append(sorted(store.last_steps(run).items()))

    # Opened again from a journal (the key looked up): the same run, its params accepted again.
    again = spec(uri, "a" * 32, note=LONG)
    again.new_key = False
    assert store.open_run(again) == run
    refused(store.log_params, run, {"alpha": "0.9"})  # params never change value
    refused(store.log_batch, run, [(next(seq), "bad key#", 1.0, START, 0)], [])
    store.log_batch(run, [(next(seq), "b", True, START, 0)], [])  # MLflow's client takes it
    refused(store.log_batch, "f" * 32, [(next(seq), "m", 1.0, START, 0)], [])
    (files / "model.pkl").write_bytes(b"\x00model")
    store.upload_file(run, "outputs", str(files / "model.pkl"))
    store.upload_bytes(run, "driver_log.txt", b"log text\n")
    store.end_run(run, "FINISHED", START + 10_000)

    second = store.open_run(spec(uri, "b" * 32, **{"mlflow.runName": "second.py"}))
    store.log_batch(second, [(next(seq), "loss", 1.0, START + 5, 0)], [])
    store.end_run(second, "KILLED", START + 20_000)
    return said


def artifacts(folder: Path) -> dict:
    return {str(p.relative_to(folder)).split("/", 2)[-1]: p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_same_operations_leave_the_same_rows_as_mlflows_store(tmp_path, monkeypatch):
    results = {}
    for name, make in (("mlflow", MlflowStore), ("ours", None)):
        folder = tmp_path / name
        folder.mkdir()
        monkeypatch.chdir(folder)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        store = make(uri) if make else SqliteStore.open(uri)
        assert type(store) is (MlflowStore if make else SqliteStore)
        said = operations(store, uri, tmp_path)
        results[name] = (said, tables(folder / "mlflow.db", str(folder)),
                         artifacts(folder / "mlruns"), folder)
    (said_m, rows_m, files_m, folder_m), (said_o, rows_o, files_o, folder_o) = results.values()
    assert said_o == said_m
    for table in rows_m:
        assert rows_o[table] == rows_m[table], table
    assert files_o == files_m and len(files_o) == 2

    # MLflow's own client reads ours as it reads its own.
    from mlflow.tracking import MlflowClient

    def seen(folder):
        client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
        experiment = client.get_experiment_by_name("diff")
        out = []
        for run in client.search_runs([experiment.experiment_id], order_by=["start_time"]):
            history = {key: sorted((m.step, m.timestamp, repr(m.value))
                                   for m in client.get_metric_history(run.info.run_id, key))
                       for key in run.data.metrics}
            out.append((run.info.run_name, run.info.status, run.info.end_time,
                        {k: repr(v) for k, v in run.data.metrics.items()}, run.data.params,
                        {k: v for k, v in run.data.tags.items() if k != "mlflow.azml.run_key"},
                        history, sorted(a.path for a in client.list_artifacts(run.info.run_id))))
        return sorted(out, key=repr)  # both runs start in the same millisecond

    assert seen(folder_o) == seen(folder_m)
    # ... and so does `azml history`.
    assert azml_history(folder_o) == azml_history(folder_m)


def azml_history(folder: Path) -> list:
    proc = subprocess.run([AZML, "history", "list", "-o", "json"], cwd=folder,
                          env=clean_env(MLFLOW_EXPERIMENT_NAME="diff", HOME=str(folder)),
                          capture_output=True, text=True, timeout=120, check=True)
    runs = json.loads(re.sub("[0-9a-f]{32}", "<id>", proc.stdout.replace(str(folder), "<root>")))
    drop = ("run_id", "Run_id", "created_utc", "start_time_utc", "end_time_utc")
    return sorted(({k: v for k, v in run.items() if k not in drop} for run in runs), key=repr)


# -- two processes at once, through each store --------------------------------------------------------
TWO = textwrap.dedent("""
    import atexit, sys
    atexit.register(lambda: print("MLFLOW", "mlflow" in sys.modules))  # runs after the run ends
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    logger.log("worker", sys.argv[1])
    for i in range(1500):
        logger.log("loss", i / 3)
    logger.log("flag", True)
    logger.log("inf", float("inf"))
""")


def test_two_processes_at_once_leave_what_mlflows_store_leaves(tmp_path):
    found = {}
    for name, extra in (("mlflow", {"_MLFLOW_SERVER_ARTIFACT_ROOT": None}), ("ours", {})):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "train.py").write_text(TWO)
        if extra:  # MLflow's store, with the artifact root it would use anyway
            extra = {"_MLFLOW_SERVER_ARTIFACT_ROOT": str(folder / "mlruns")}
        # The exit waits for delivery however long MLflow's migrations take on a loaded machine.
        env = clean_env(AZML_HOME=tmp_path / f"home-{name}", HOME=tmp_path / f"home-{name}",
                        MLFLOW_EXPERIMENT_NAME="two", AZML_FLUSH_TIMEOUT=300, **extra)
        procs = [subprocess.Popen([sys.executable, "train.py", str(n)], cwd=folder, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in range(2)]
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            assert proc.returncode == 0 and "Traceback" not in err, err
            assert f"MLFLOW {name == 'mlflow'}" in out, err  # which store wrote, proven
            assert "journal" not in err, err  # everything delivered, nothing left for sync
        rows = tables(folder / "mlflow.db", str(folder))
        # Which process started first is a race: compare each run's rows as a set of runs.
        found[name] = {table: sorted(map(repr, rows[table])) for table in rows
                       if table not in ("runs", "tags", "metrics", "latest_metrics", "params")}
        db = sqlite3.connect(folder / "mlflow.db")
        per_run = []
        for run_id, *columns in db.execute(
                "SELECT run_uuid, name, source_type, source_name, entry_point_name, user_id, "
                "status, source_version, lifecycle_stage, artifact_uri, experiment_id FROM runs"):
            columns[8] = columns[8].replace(str(folder), "<root>").replace(run_id, "<run>")
            per_run.append(repr([columns, *[
                sorted(db.execute(f"SELECT key, value, step, is_nan FROM {t} WHERE run_uuid = ?",
                                  (run_id,)).fetchall())
                if t in ("metrics", "latest_metrics") else
                sorted((k, v.replace(str(folder), "<root>").replace(run_id, "<run>"))
                       for k, v in db.execute(f"SELECT key, value FROM {t} WHERE run_uuid = ? "
                                              "AND key NOT IN ('mlflow.azml.run_key')", (run_id,)))
                for t in ("metrics", "latest_metrics", "tags", "params")]]))
        db.close()
        found[name]["per run"] = sorted(per_run)
        assert len(per_run) == 2
    assert found["ours"] == found["mlflow"]


# -- which store, and falling back --------------------------------------------------------------------
def test_the_default_is_written_without_mlflow_after_the_run_ends(tmp_path):
    """Checked in an exit hook registered before the library's: it runs after the run ended."""
    script = textwrap.dedent("""
        import atexit, sys
        def check():
            loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("mlflow", "sqlalchemy",
                                                                          "alembic"))
            print("LOADED", loaded)
        atexit.register(check)
        from azureml.logging import get_azureml_logger
        logger = get_azureml_logger()
        logger.log("a", 1)
        logger.upload("notes.txt", "some text")
    """)
    (tmp_path / "train.py").write_text(script)
    proc = subprocess.run([sys.executable, "train.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120,
                          env=clean_env(AZML_HOME=tmp_path / "home", HOME=tmp_path / "home"))
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stdout, proc.stdout + proc.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name(tmp_path.name).experiment_id])
    assert run.data.metrics == {"a": 1.0} and run.info.status == "FINISHED"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["notes.txt"]


def revision_changed(path: Path, revision: str) -> None:
    db = sqlite3.connect(path)
    with db:
        db.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    db.close()


@pytest.mark.parametrize("revision", ["0584bdc529eb", "ffffffffffff"])
def test_a_database_at_another_revision_is_left_to_mlflows_store(tmp_path, monkeypatch, revision):
    """An MLflow upgrade that moves the schema head, or an older file: MLflow's store decides
    (here: its clear error), ours never writes a schema it was not pinned to."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mlflow.db"
    build(str(path))
    revision_changed(path, revision)
    before = path.read_bytes()
    assert SqliteStore.open(f"sqlite:///{path}") is None
    with pytest.raises(IncompleteDatabase, match=f"revision {revision}"):
        connect(f"sqlite:///{path}")  # MlflowStore: prepare() refuses it as before
    assert path.read_bytes() == before


def test_an_installed_mlflow_with_another_head_gets_its_own_store(tmp_path, monkeypatch):
    from azml_compat._core.stores import sqlite_write

    monkeypatch.chdir(tmp_path)
    sqlite_write.pinned.cache_clear()
    monkeypatch.setattr(sqlite_write, "installed_head_is", lambda revision: False)
    try:
        store = connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
        assert type(store) is MlflowStore  # MLflow made the new database with its migrations
    finally:
        sqlite_write.pinned.cache_clear()


@pytest.mark.parametrize("variable, value", [("MLFLOW_ENABLE_WORKSPACES", "true"),
                                             ("MLFLOW_TRUNCATE_LONG_VALUES", "false"),
                                             ("_MLFLOW_SERVER_ARTIFACT_ROOT", "/srv/artifacts")])
def test_mlflow_options_it_does_not_reproduce_go_to_mlflows_store(tmp_path, monkeypatch,
                                                                  variable, value):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert type(connect(uri)) is SqliteStore
    monkeypatch.setenv(variable, value)
    assert SqliteStore.open(uri) is None


def test_other_workspaces_in_the_database_go_to_mlflows_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mlflow.db"
    build(str(path))
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO workspaces (name) VALUES ('team')")
        db.execute("INSERT INTO experiments (name, workspace) VALUES ('x', 'team')")
    db.close()
    assert SqliteStore.open(f"sqlite:///{path}") is None


# -- concurrency -----------------------------------------------------------------------------------
def test_a_locked_database_is_retried_until_the_lock_goes(tmp_path, monkeypatch):
    """SQLITE_BUSY past the busy timeout is transient: the sender's retry delivers it."""
    from azml_compat._core.sender import Sender

    monkeypatch.chdir(tmp_path)
    from azml_compat._core.batching import Batch
    from azml_compat._core.stores import sqlite_write

    monkeypatch.setattr(sqlite_write, "BUSY_TIMEOUT", 0.05)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    waits = []

    def sleep(seconds):  # the retry's wait: the other writer finishes meanwhile
        waits.append(seconds)
        if len(waits) == 2:
            holder.execute("COMMIT")

    sender = Sender(RunSpec(uri, "busy", start_time_ms=START, run_key="c" * 32, new_key=True),
                    sleep=sleep, quiet=True)
    sender.start()  # makes the database (a connection opened before would hold the old file)
    holder = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError) as raised:
        sender.store.log_batch(sender.run_id, [(1, "m", 1.0, START, 0)], [])
    assert is_transient(raised.value)
    assert sender._send_batch(Batch([(1, "m", 1.0, START, 0)], [], upto=1)) == {}
    assert len(waits) == 2
    rows = sqlite3.connect(tmp_path / "mlflow.db").execute("SELECT key, value FROM metrics")
    assert rows.fetchall() == [("m", 1.0)]


def test_a_reader_holding_the_database_open_does_not_stop_the_writes(tmp_path):
    """``mlflow ui`` reading (MLflow's client polling, and a read transaction held) while a
    script logs: every point lands."""
    (tmp_path / "train.py").write_text(textwrap.dedent("""
        import time
        from azureml.logging import get_azureml_logger
        logger = get_azureml_logger()
        for i in range(300):
            logger.log("loss", float(i))
            if i % 50 == 0:
                logger.flush()
    """))
    env = clean_env(AZML_HOME=tmp_path / "home", HOME=tmp_path / "home",
                    MLFLOW_EXPERIMENT_NAME="read")
    build(str(tmp_path / "mlflow.db"))
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    stop = threading.Event()
    reads = []

    def read():
        held = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
        while not stop.is_set():
            held.execute("BEGIN")
            held.execute("SELECT COUNT(*) FROM metrics").fetchone()
            stop.wait(0.2)  # a read transaction held open, as a slow UI query does
            held.execute("COMMIT")
            reads.append(len(client.search_experiments()))
        held.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        proc = subprocess.run([sys.executable, "train.py"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        stop.set()
        reader.join(30)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert reads, "the reader never read"
    (run,) = client.search_runs([client.get_experiment_by_name("read").experiment_id])
    history = client.get_metric_history(run.info.run_id, "loss")
    assert sorted(m.value for m in history) == [float(i) for i in range(300)]


def test_a_kill_inside_a_write_leaves_a_database_mlflow_opens(tmp_path):
    """SIGKILL between a batch's metrics and its latest_metrics (the transaction half done,
    a hot journal on disk): MLflow's client and this store both open the file, roll the half
    batch back, and see the run as it was before it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    child = textwrap.dedent(f"""
        import os, signal
        from azml_compat._core.records import RunSpec
        from azml_compat._core.stores import sqlite_write
        store = sqlite_write.SqliteStore.open({uri!r})
        run = store.open_run(RunSpec({uri!r}, "killed", start_time_ms={START},
                                     run_key="d" * 32, new_key=True))
        store.log_batch(run, [(1, "m", 1.0, {START}, 0)], [])
        print(run, flush=True)
        sqlite_write._update_latest = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
        store.log_batch(run, [(2, "m", 2.0, {START} + 1, 1)], [])
    """)
    proc = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=clean_env())
    assert proc.returncode == -9, proc.stderr
    run_id = proc.stdout.split()[0]
    assert (tmp_path / "mlflow.db-journal").exists()  # killed with the write half done

    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "m")] == [(0, 1.0)]
    assert client.get_run(run_id).data.metrics == {"m": 1.0}
    store = SqliteStore.open(uri)
    store.log_batch(run_id, [(3, "m", 3.0, START + 2, 2)], [])
    assert store.last_steps(run_id) == {"m": 2}


@pytest.mark.parametrize("form", ["sqlite:///{db}?timeout=5", "sqlite+pysqlite:///{db}",
                                  "sqlite://", "sqlite:///:memory:"])
def test_sqlite_uri_forms_with_options_go_to_mlflows_store(tmp_path, form):
    """Options in the URI (SQLAlchemy's), another driver, memory: MLflow's store reads them."""
    assert SqliteStore.open(form.format(db=tmp_path / "mlflow.db")) is None
    assert not (tmp_path / "mlflow.db").exists()
