"""Run search on the embedded SQLite store without importing MLflow: its tables read directly.

``azml history list`` on the SQLite default took ~3 s even for one run, nearly all of it
``import mlflow`` (1.1-1.7 s) and SQLAlchemy's store set-up; the rows themselves are a few
queries. This reader answers the two calls ``_query.History`` makes of a searcher
(``get_experiment_by_name``, ``search_runs``) with the same results as MLflow's
``SqlAlchemyStore``: experiments found by name in any lifecycle stage, active runs ordered by
``start_time DESC, run_uuid`` (MLflow's tie-breaker), each with its latest metrics (NaN from
``is_nan``), params and tags, and the run name taken from ``mlflow.runName`` when the column is
empty. Page tokens are MLflow's own (base64 JSON ``{"offset": N}``), so a search can go on
through MLflow part-way.

It reads only schema revisions it was written and tested against (``PINNED_REVISIONS``), and
only when that revision is the installed MLflow's head (else MLflow would refuse or migrate
the file, and ``list`` must not answer where ``info`` fails). The file is opened read-only
(``mode=ro``): nothing is ever created or migrated here. On any other revision, on
workspaces (``MLFLOW_ENABLE_WORKSPACES``), and on any SQLite error the caller's fallback,
MLflow's store, answers instead.
"""
from __future__ import annotations

import base64
import importlib.util
import json
import os
import sqlite3
from types import SimpleNamespace
from urllib.parse import quote

from ..runs import Page
from .sqlite import sqlite_path

# alembic_version.version_num of the schemas read here. dc11669786a5: MLflow 3.17's head,
# tested in tests/test_cli_list_sqlite.py. Add a revision only with a test run against it.
PINNED_REVISIONS = frozenset({"dc11669786a5"})
MIGRATIONS = os.path.join("store", "db_migrations", "versions")
CHUNK = 500  # run ids per IN (...) query: under SQLite's oldest variable limit (999)


class Unsupported(Exception):
    """This reader cannot answer for this store: MLflow's store must."""


def installed_head_is(revision: str) -> bool:
    """True when ``revision`` is the newest migration of the installed MLflow: its script is
    there and no other script names it (as ``down_revision``). Reads ~70 small files (a few
    ms) and never imports MLflow."""
    spec = importlib.util.find_spec("mlflow")  # locates the package, runs none of it
    if spec is None or not spec.origin:
        return False
    folder = os.path.join(os.path.dirname(spec.origin), MIGRATIONS)
    try:
        names = [n for n in os.listdir(folder) if n.endswith(".py")]
    except OSError:
        return False
    own = [n for n in names if n.startswith(revision + "_")]
    if len(own) != 1:
        return False
    for name in names:
        if name != own[0]:
            with open(os.path.join(folder, name), encoding="utf-8") as fh:
                if revision in fh.read():
                    return False
    return True


def _offset(page_token) -> int:
    if not page_token:
        return 0
    return int(json.loads(base64.b64decode(page_token))["offset"])


def _token(offset: int) -> bytes:
    return base64.b64encode(json.dumps({"offset": offset}).encode("utf-8"))


class SqliteSearch:
    """``get_experiment_by_name`` and ``search_runs`` read from MLflow's tables; ``fallback()``
    gives the MLflow client that takes over on anything this reader does not handle."""

    def __init__(self, path: str, fallback) -> None:
        self.path = path
        self.fallback = fallback
        self.db = None

    @classmethod
    def open(cls, uri: str, fallback) -> SqliteSearch | None:
        """A reader for ``uri``, or None when MLflow's store must answer (not a SQLite file
        that exists, another schema revision, workspaces on, any SQLite error)."""
        path = sqlite_path(uri)
        if path is None or not os.path.isfile(path):
            return None  # the client path says "no run history here" and creates nothing
        if os.environ.get("MLFLOW_ENABLE_WORKSPACES", "").strip().lower() in ("true", "1"):
            return None
        reader = cls(path, fallback)
        try:
            reader.connect()
        except (sqlite3.Error, Unsupported):
            reader.close()
            return None
        return reader

    def connect(self) -> None:
        self.db = sqlite3.connect(f"file:{quote(self.path)}?mode=ro", uri=True, timeout=30)
        row = self.db.execute("SELECT version_num FROM alembic_version").fetchall()
        if len(row) != 1 or row[0][0] not in PINNED_REVISIONS:
            raise Unsupported(f"schema revision {row}")
        if not installed_head_is(row[0][0]):
            raise Unsupported(f"schema revision {row[0][0]} is not the installed MLflow's")

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None

    def _answer(self, name: str, *args, **kwargs):
        if self.db is not None:
            try:
                return getattr(self, "_" + name)(*args, **kwargs)
            except (sqlite3.Error, Unsupported):
                self.close()  # from now on MLflow answers, this search included
        return getattr(self.fallback(), name)(*args, **kwargs)

    def get_experiment_by_name(self, name: str):
        return self._answer("get_experiment_by_name", name)

    def search_runs(self, experiment_ids, order_by, max_results, page_token=None):
        return self._answer("search_runs", experiment_ids, order_by=order_by,
                            max_results=max_results, page_token=page_token)

    # -- the queries ----------------------------------------------------------------------------
    def _get_experiment_by_name(self, name: str):
        found = self.db.execute("SELECT experiment_id FROM experiments WHERE name = ?",
                                (name,)).fetchall()
        if len(found) > 1:  # the same name in two workspaces: MLflow's own error, not ours
            raise Unsupported(f"{len(found)} experiments named {name!r}")
        return SimpleNamespace(experiment_id=str(found[0][0])) if found else None

    def _search_runs(self, experiment_ids, order_by, max_results, page_token=None):
        if list(order_by) != ["attributes.start_time DESC"]:
            raise Unsupported(f"order {order_by!r}")
        ids = [int(i) for i in experiment_ids]
        offset = _offset(page_token)
        marks = ",".join("?" * len(ids))
        found = self.db.execute(
            "SELECT run_uuid, name, status, start_time, end_time, experiment_id, user_id, "
            f"artifact_uri FROM runs WHERE experiment_id IN ({marks}) AND lifecycle_stage = "
            "'active' ORDER BY start_time DESC, run_uuid LIMIT ? OFFSET ?",
            (*ids, max_results + 1, offset)).fetchall()
        more = len(found) > max_results
        found = found[:max_results]
        metrics, params, tags = ({row[0]: {} for row in found} for _ in range(3))
        run_ids = list(metrics)
        for start in range(0, len(run_ids), CHUNK):
            chunk = run_ids[start:start + CHUNK]
            marks = ",".join("?" * len(chunk))
            for run_id, key, value, is_nan in self.db.execute(
                    "SELECT run_uuid, key, value, is_nan FROM latest_metrics "
                    f"WHERE run_uuid IN ({marks})", chunk):
                metrics[run_id][key] = float("nan") if is_nan else float(value)
            for table, into in (("params", params), ("tags", tags)):
                for run_id, key, value in self.db.execute(
                        f"SELECT run_uuid, key, value FROM {table} WHERE run_uuid IN ({marks})", chunk):
                    into[run_id][key] = value
        page = Page(SimpleNamespace(
            info=SimpleNamespace(
                run_id=run_id, run_name=name or tags[run_id].get("mlflow.runName") or name,
                status=status, start_time=start_time, end_time=end_time,
                experiment_id=str(experiment_id), user_id=user_id, artifact_uri=artifact_uri),
            data=SimpleNamespace(metrics=metrics[run_id], params=params[run_id], tags=tags[run_id]))
            for run_id, name, status, start_time, end_time, experiment_id, user_id, artifact_uri
            in found)
        page.token = _token(offset + max_results) if more else None
        return page
