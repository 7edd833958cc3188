"""A SQLite tracking store that is either complete or absent, whatever runs at once or dies.

MLflow makes a new SQLite store in place: ~68 alembic migrations over ~2 s, mostly outside any
transaction (pysqlite commits DDL as it goes), with no lock across processes. Scripts started
side by side raced them (``table _alembic_tmp_tags already exists``, ``duplicate column name:
step``), and a process killed in that window left a half-migrated file that broke every later
run. Here the first user of a missing database takes an ``flock`` beside it, builds it under a
temporary name in the same folder (a name nothing else opens), lets MLflow migrate it fully,
and ``os.replace``-s it into place: the real name only ever holds a complete database. Others
wait on the lock, then open the finished file. A database that exists but is not at MLflow's
head revision is not migrated blindly: it gets one error saying what to do.

Called from the worker thread (library) and the CLI, never from ``log()``. The default build
(MLflow's migrations) and check (its head revision) import MLflow; ``sqlite_write`` passes its
own, which replay the pinned schema and read the revision with ``sqlite3`` alone.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import glob
import os
import sqlite3
from urllib.parse import quote, unquote

from ..._exceptions import IncompleteDatabase

# SQLite's side files: a rollback journal (MLflow's mode) or WAL and its index (other tools).
SIDE_FILES = ("-journal", "-wal", "-shm")
BUILD_TAG = ".azml-build-"


def sqlite_path(uri: str) -> str | None:
    """The file a ``sqlite:///`` URI names (absolute), or None for other stores and memory."""
    scheme, sep, rest = uri.partition(":///")
    if not sep or scheme.split("+", 1)[0].lower() != "sqlite":
        return None
    path = unquote(rest.split("?", 1)[0])
    if not path or path == ":memory:":
        return None
    return os.path.abspath(path)


def lock_path(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.lock")


def prepare(uri: str, make=None, verify=None) -> None:
    """Make sure the SQLite database ``uri`` names exists complete before MLflow opens it.

    Nothing to do for other stores. ``make(path)`` creates a new database at ``path`` (by
    default MLflow's migrations; ``sqlite_write`` replays its pinned schema instead) and
    ``verify(path)`` checks the one found (by default ``check``). Raises IncompleteDatabase for
    a database MLflow would try to migrate in place (half made, older or newer schema).
    """
    path = sqlite_path(uri)
    if path is None:
        return
    if not _has_tables(path):  # absent (or left empty): make it, one process at a time
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if this process dies
            if not _has_tables(path):
                _build(path, make or _migrate)
        finally:
            os.close(fd)
    (verify or check)(path)


def _has_tables(path: str) -> bool:
    """True when ``path`` is a database with at least one table (the check MLflow makes with
    ``_is_empty_database``). A missing or zero-length file has none."""
    try:
        if os.path.getsize(path) == 0:
            return False
    except FileNotFoundError:
        return False
    return bool(_tables(path))


def _tables(path: str) -> set[str]:
    try:
        with _read(path) as db:
            return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError as exc:
        raise IncompleteDatabase(
            f"{path} is not a usable SQLite database ({exc}): move it aside and run again; "
            "nothing journaled is lost, `azml sync` delivers it afterwards") from None


@contextlib.contextmanager
def _read(path: str):
    # Never creates the file. Not read-only: a hot journal left by a process killed mid-write
    # must be rolled back by whoever opens the database next, which read-only cannot do.
    db = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=30)
    try:
        yield db
    finally:
        db.close()


def _build(path: str, make) -> None:
    """Create a complete new database (``make``) as ``.<name>.azml-build-<pid>``, then move it
    to ``path`` atomically. Runs under the lock, so any older build file is a dead process's."""
    folder, name = os.path.split(path)
    for stale in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}{BUILD_TAG}*")):
        _remove(stale)
    temp = os.path.join(folder, f".{name}{BUILD_TAG}{os.getpid()}")
    try:
        make(temp)
        for suffix in SIDE_FILES:
            if os.path.exists(temp + suffix):  # would hold committed pages the file lacks
                raise IncompleteDatabase(f"building {path}: SQLite left {temp + suffix} behind")
        with open(temp, "rb+") as fh:
            os.fsync(fh.fileno())
        # A side file of an earlier database at the real name would be applied to this new one
        # when SQLite opens it (a hot journal is rolled back into it): remove them first.
        for suffix in SIDE_FILES:
            _remove(path + suffix)
        os.replace(temp, path)
        _fsync_dir(folder)
    finally:
        _remove(temp)


def _migrate(path: str) -> None:
    """Let MLflow create and migrate the database at ``path``, exactly as opening it would.

    The store is built the way ``MlflowClient`` builds it, so the Default experiment gets the
    artifact location MLflow would give it (``./mlruns`` of this process, or the server's root).
    """
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from mlflow.tracking._tracking_service.utils import _get_sqlalchemy_store

    uri = "sqlite:///" + path
    store = _get_sqlalchemy_store(uri, None)
    # Close every connection (the rollback journal goes with the last one) and forget the
    # engine MLflow cached for this name, which is about to disappear.
    store.engine.dispose()
    SqlAlchemyStore._engine_map.pop(uri, None)


def check(path: str) -> None:
    """IncompleteDatabase unless ``path`` is at the schema revision this MLflow expects.

    The same comparison as MLflow's ``_verify_schema`` (``alembic_version`` against the head
    of its migration scripts), made before MLflow's ``_initialize_tables`` would try to
    migrate a half-made file in place and fail part-way.
    """
    tables = _tables(path)
    revision = None
    if "alembic_version" in tables:
        with _read(path) as db:
            row = db.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    head, known = _revisions()
    if revision == head and not any(t.startswith("_alembic_tmp_") for t in tables):
        return
    journal = "nothing journaled is lost: `azml sync` delivers it once the database is fixed"
    name = os.path.basename(path)
    aside = f"move it aside (`mv {name} {name}.broken` in its folder) and run again to start anew"
    if revision is None or any(t.startswith("_alembic_tmp_") for t in tables):
        raise IncompleteDatabase(
            f"{path} is a half-made MLflow database (its creation was interrupted, or another "
            f"tool made it): {aside}; {journal}")
    if revision in known:
        raise IncompleteDatabase(
            f"{path} has MLflow schema revision {revision}, this MLflow needs {head}: if an "
            f"older MLflow made it, back it up and run `mlflow db upgrade sqlite:///{path}`; "
            f"if its creation was interrupted, {aside}; {journal}")
    raise IncompleteDatabase(
        f"{path} has MLflow schema revision {revision}, unknown to this MLflow (it needs "
        f"{head}): a newer MLflow made it; upgrade mlflow, or {aside}; {journal}")


@functools.lru_cache(maxsize=1)
def _revisions() -> tuple[str, frozenset]:
    """MLflow's head schema revision and every revision its migrations know (~30 ms)."""
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config, _get_latest_schema_revision

    script = ScriptDirectory.from_config(_get_alembic_config(db_url=""))
    return _get_latest_schema_revision(), frozenset(r.revision for r in script.walk_revisions())


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
