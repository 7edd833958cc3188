"""``azml history list`` on the SQLite default reads MLflow's tables itself (no MLflow import)
and answers exactly what MLflow's store answers; anything else falls back to MLflow."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest
from cli_support import empty_db, sqlite_cli  # noqa: F401 - fixtures

import azml_compat._core.query as history
from azml_compat._core.stores import sqlite_read
from azml_compat._core.stores.sqlite_read import SqliteSearch

FORMATS = (("-o", "json"), ("-o", "tsv"), ())


def seed_varied(cli) -> dict:
    """Runs with everything ``list`` shows, plus what it must leave out."""
    client = cli.store.client
    ids = {
        "plain": cli.seed({"Accuracy": 0.5, "loss": [0.9, 0.4]}, args=["0.5"],
                          params={"alpha": 0.5, "solver": "lbfgs"}),
        "mapped": cli.seed({"accuracy (%)": 75, "nan": float("nan"), "inf": float("inf")},
                           strings={"note": "best", "a#b": "mapped string"}),
        "failed": cli.seed({"loss": 0.3}, script="other.py", status="FAILED"),
        "deleted": cli.seed({"gone": 1}),
        "renamed": cli.seed({"Accuracy": 0.9}),
        "other": cli.seed({"elsewhere": 1}, experiment=cli.store.experiment + "-other"),
    }
    client.delete_run(ids["deleted"])
    client.update_run(ids["renamed"], name="renamed by hand")
    # Two runs starting in the same millisecond: MLflow orders them by run id.
    experiment_id = client.get_experiment_by_name(cli.store.experiment).experiment_id
    for tag in ("tie-a", "tie-b"):
        run = client.create_run(experiment_id, start_time=cli._clock + 5000, tags={"t": tag})
        client.log_metric(run.info.run_id, "Accuracy", 0.1)
        client.set_terminated(run.info.run_id, "KILLED", end_time=cli._clock + 6000)
        ids[tag] = run.info.run_id
    return ids


def no_mlflow(monkeypatch):
    """The fast path alone: any use of MLflow's client fails the test."""
    def refuse(self):
        raise AssertionError("MLflow's client was used")

    monkeypatch.setattr(history.History, "client", property(refuse))


def through_mlflow(monkeypatch):
    """Today's path: MLflow's store answers every search."""
    monkeypatch.setattr(SqliteSearch, "open", classmethod(lambda cls, uri, fallback: None))


def outputs(cli, *args) -> list[str]:
    return [cli("history", "list", *args, *fmt).stdout for fmt in FORMATS]


@pytest.mark.parametrize("args", [(), ("--max", "3"), ("--max", "0"), ("--max", "1"),
                                  ("-e", "OTHER")], ids=["default", "max3", "all", "max1", "other"])
def test_output_identical_to_mlflow(sqlite_cli, monkeypatch, args):
    ids = seed_varied(sqlite_cli)
    args = tuple(sqlite_cli.store.experiment + "-other" if a == "OTHER" else a for a in args)
    monkeypatch.setattr(history, "PAGE", 2)  # several pages, tokens included
    with monkeypatch.context() as patch:
        no_mlflow(patch)
        fast = outputs(sqlite_cli, *args)
    with monkeypatch.context() as patch:
        through_mlflow(patch)
        slow = outputs(sqlite_cli, *args)
    assert fast == slow
    rows = json.loads(fast[0])
    if not args:  # what the comparison covered
        listed = [r["run_id"] for r in rows]
        assert ids["deleted"] not in listed and ids["other"] not in listed
        assert listed[:2] == sorted([ids["tie-a"], ids["tie-b"]])
        assert listed[2:] == [ids[k] for k in ("renamed", "failed", "mapped", "plain")]
        by_id = {r["run_id"]: r for r in rows}
        assert by_id[ids["renamed"]]["name"] == "renamed by hand"
        mapped = by_id[ids["mapped"]]
        assert mapped["accuracy (%)"] == 75 and mapped["a#b"] == "mapped string"
        assert mapped["nan"] is None and mapped["inf"] > 1e308
        assert by_id[ids["plain"]]["properties"]["params"] == {"alpha": "0.5", "solver": "lbfgs"}
        assert by_id[ids["plain"]]["loss"] == 0.4


def test_unknown_revision_falls_back_and_answers(sqlite_cli, monkeypatch):
    seed_varied(sqlite_cli)
    expected = sqlite_cli("history", "list", "-o", "json").stdout
    used = []
    real_client = history.History.client

    def spy(self):
        used.append(True)
        return real_client.fget(self)

    monkeypatch.setattr(sqlite_read, "PINNED_REVISIONS", frozenset({"0123456789ab"}))
    monkeypatch.setattr(history.History, "client", property(spy))
    assert sqlite_cli("history", "list", "-o", "json").stdout == expected
    assert used  # MLflow's store answered


def test_sqlite_error_midway_falls_back(sqlite_cli, monkeypatch):
    seed_varied(sqlite_cli)
    monkeypatch.setattr(history, "PAGE", 2)
    expected = sqlite_cli("history", "list", "-o", "json", "--max", "0").stdout
    pages = []
    real = SqliteSearch._search_runs

    def second_page_fails(self, *args, **kwargs):
        pages.append(kwargs.get("page_token"))
        if len(pages) == 2:
            raise sqlite3.OperationalError("database is locked")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SqliteSearch, "_search_runs", second_page_fails)
    assert sqlite_cli("history", "list", "-o", "json", "--max", "0").stdout == expected
    assert len(pages) == 2  # MLflow took over from the second page on, with our token


def test_pinned_revision_is_the_installed_head():
    from mlflow.store.db.utils import _get_latest_schema_revision

    head = _get_latest_schema_revision()
    assert head in sqlite_read.PINNED_REVISIONS, (
        f"MLflow's head schema is {head}: check the tables sqlite_read reads, test, then pin it")
    assert sqlite_read.installed_head_is(head)
    assert not sqlite_read.installed_head_is("0c779009ac13")  # an older revision


def test_never_creates_or_changes_a_file(sqlite_cli, tmp_path, monkeypatch):
    seed_varied(sqlite_cli)
    db = sqlite_cli.store.workdir / "mlflow.db"
    before = db.read_bytes()
    sqlite_cli("history", "list")
    assert db.read_bytes() == before
    monkeypatch.chdir(tmp_path)
    result = sqlite_cli("history", "list", code=1)
    assert "does not exist" in result.stderr
    assert not (tmp_path / "mlflow.db").exists()


def test_mlflow_not_imported(sqlite_cli):
    ids = seed_varied(sqlite_cli)
    code = ("import json, sys\nfrom azml_compat.cli import main\n"
            "try:\n    main(['history', 'list', '-o', 'json'])\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('mlflow', 'sqlalchemy', 'alembic'))), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=sqlite_cli.store.workdir, check=False,
                          env=sqlite_cli.store.env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []
    assert [r["run_id"] for r in json.loads(proc.stdout)][-1] == ids["plain"]


def test_database_of_another_revision_gets_the_mlflow_paths_answer(sqlite_cli):
    """A file at a revision nobody pinned (here: a newer MLflow's) is not read by us: the
    command says what MLflow's path says about it, as ``info`` would."""
    sqlite_cli.seed({"x": 1})
    with sqlite3.connect(sqlite_cli.store.workdir / "mlflow.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    result = sqlite_cli("history", "list", code=1)
    assert "ffffffffffff" in result.stderr and "unknown to this MLflow" in result.stderr
