"""The embedded SQLite tracking store written with ``sqlite3`` alone: no MLflow, no SQLAlchemy.

A one-line legacy script on the SQLite default cost what MLflow costs (+2.7 s wall, +228 MB
measured in bench case 8): ``import mlflow`` and SQLAlchemy's store set-up, to write a few rows
into one file, and a new file took ~68 alembic migrations more. This store does, for the calls
the logging path makes (``_stores.base.Store``), exactly what MLflow's ``SqlAlchemyStore``
does, row for row (``tests/test_sqlite_store.py`` runs both and compares every table):

* experiments found by name, created with MLflow's artifact location (``<root>/<id>``, the
  root being ``./mlruns`` of the process that opens the store, as MLflow resolves it);
* runs created with every column and tag MLflow sets (``mlflow.runName``, ``user_id`` from
  ``mlflow.user``, ``source_*`` and ``entry_point_name`` empty, ``RUNNING``, ``active``);
* ``log_batch``: metrics with MLflow's value handling (NaN stored as 0 with ``is_nan``, +-inf
  as +-1.797e308), the identical point ignored, ``latest_metrics`` moved only by a point
  strictly later in (step, timestamp, value); tags upserted (``mlflow.runName`` also renames
  the run); params immutable, with MLflow's error text; values cut at MLflow's lengths;
* the run ended (status, end time), found by our key tag (earliest first);
* artifacts copied into the run's local artifact folder through a staged file and
  ``os.replace``, as MLflow's local artifact repository does.

A new database is made from the pinned schema (``sqlite_schema.sql``, written from MLflow's own
migrations by ``gen_schema``) under ``sqlite.prepare``'s lock, aside, then ``os.replace``-d.

It is used only where it is exact (``open``): a plain ``sqlite:///file`` URI no plugin claims,
a database (or the schema it would make) at a revision in ``sqlite_read.PINNED_REVISIONS``
that is also the installed MLflow's head, no workspaces, none of MLflow's options that change
what its store writes. Anywhere else ``MlflowStore`` takes over, as before. Writes take the
database with ``BEGIN IMMEDIATE`` (no deadlock between two readers turning writers) and wait up
to ``BUSY_TIMEOUT`` for a lock; past that, ``database is locked`` is transient and the sender's
retry policy tries again.
"""
from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import posixpath
import random
import sqlite3
import tempfile
import threading
import time
import uuid
from urllib.parse import quote, unquote, urlparse, urlunparse

from ..context import context_tags
from ..._exceptions import StoreError
from ..keys import _INVALID_CHAR, is_valid_key
from ..paths import clean_artifact_path
from ..records import RunSpec
from .base import PermanentError, _first_run, _key_filter, check_artifact_name, experiment_tags, open_source
from .gen_schema import REVISION_LINE, SCHEMA_FILE
from .mlflow_client import LazyClient, MlflowStore
from .sqlite import IncompleteDatabase, _read, prepare, sqlite_path
from .sqlite_read import PINNED_REVISIONS, installed_head_is

BUSY_TIMEOUT = 30.0  # seconds a write waits for another process's lock before it is retried
# MLflow's limits (mlflow/utils/validation.py), and what it stores for +-inf (a double's max).
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_EXPERIMENT_TAG_VALUE = 20000
MAX_METRICS = 1000
MAX_PARAMS_TAGS = 100
MAX_ENTITIES = 1000
DOUBLE_MAX = 1.7976931348623157e308
KEY_CHUNK = 500  # keys per IN (...) query, as MLflow chunks them
RUN_NAME_TAG = "mlflow.runName"
DEFAULT_WORKSPACE = "default"
STAGING_PREFIX = ".artifact.uploading."  # MLflow's: its listings hide a half-copied artifact
# MLflow's variables that change what its SQL store writes or where: a store that set them
# is MLflow's to open. Values are the ones that leave its behaviour as reproduced here.
_NEUTRAL = {
    "MLFLOW_ENABLE_WORKSPACES": ("", "false", "0"),
    "MLFLOW_TRUNCATE_LONG_VALUES": ("", "true", "1"),
    "_MLFLOW_SERVER_ARTIFACT_ROOT": ("",),  # the artifact root of a server this runs inside
}


def _invalid(message: str) -> StoreError:
    return StoreError(message, 400, "INVALID_PARAMETER_VALUE")


def _not_found(message: str) -> StoreError:
    return StoreError(message, 404, "RESOURCE_DOES_NOT_EXIST")


def options_understood() -> bool:
    """True when none of MLflow's own variables asks its store for something not done here."""
    return all(os.environ.get(name, "").strip().lower() in neutral
               for name, neutral in _NEUTRAL.items())


def schema_revision() -> str:
    """The alembic revision of the packaged schema."""
    with open(SCHEMA_FILE, encoding="utf-8") as fh:
        for line in fh:
            if line.startswith(REVISION_LINE):
                return line[len(REVISION_LINE):].strip()
    raise ValueError(f"{SCHEMA_FILE} names no alembic revision")


@functools.lru_cache(maxsize=4)
def pinned(revision: str | None) -> bool:
    """True for a revision this store was tested against that the installed MLflow expects."""
    return revision in PINNED_REVISIONS and installed_head_is(revision)


def append_to_uri_path(uri: str, *paths: str) -> str:
    """MLflow's ``append_to_uri_path``: ``paths`` joined onto the path of ``uri`` (a plain path
    or any URI), an absolute suffix appended rather than replacing."""
    def join(prefix: str, suffix: str) -> str:
        return posixpath.join(prefix, suffix.lstrip("/")) if prefix else suffix

    path = ""
    for sub in paths:
        path = join(path, sub)
    parsed = urlparse(uri)
    if not parsed.scheme:
        return join(uri, path)
    prefix = ""
    if not parsed.path.startswith("/"):
        prefix, parsed = parsed.scheme + ":", parsed._replace(scheme="")
    return prefix + urlunparse(parsed._replace(path=join(parsed.path, path)))


def local_folder(uri: str) -> str | None:
    """The folder an artifact URI names on this machine (a path, ``file:``), else None."""
    parsed = urlparse(uri)
    if not parsed.scheme:
        return uri
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost") and not parsed.query:
        return unquote(parsed.path)
    return None


def build(path: str) -> None:
    """A new database at ``path``: the pinned schema, then the Default experiment (id 0) with
    the row MLflow's store inserts when it first opens an empty database."""
    with open(SCHEMA_FILE, encoding="utf-8") as fh:
        script = fh.read()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript("BEGIN;" + script + "COMMIT;")
        now = _now_ms()
        db.execute("INSERT INTO experiments (experiment_id, name, artifact_location, "
                   "lifecycle_stage, creation_time, last_update_time, workspace) VALUES "
                   "(0, 'Default', ?, 'active', ?, ?, ?)",
                   (append_to_uri_path(artifact_root(), "0"), now, now, DEFAULT_WORKSPACE))
    finally:
        db.close()


def artifact_root() -> str:
    """MLflow's default artifact root as its store resolves it: ``./mlruns``, made absolute
    against the working directory of the process that opens the store."""
    return os.path.join(os.getcwd(), "mlruns")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


_ADJECTIVES = ("amber", "brisk", "calm", "deft", "eager", "fleet", "glad", "keen", "lucid",
               "merry", "nimble", "quiet", "rapid", "sunny", "tidy", "vivid")
_NOUNS = ("badger", "comet", "dune", "finch", "grove", "harbor", "lynx", "meadow", "otter",
          "pine", "quartz", "river", "sparrow", "tide", "willow", "zephyr")


def random_run_name() -> str:
    """A name like MLflow gives a run created without one (``adjective-noun-NNN``)."""
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(0, 999)}"


class SqliteStore(LazyClient, MlflowStore):
    """Run lifecycle, batches and artifacts on MLflow's SQLite tables, through ``sqlite3``.

    Shares ``MlflowStore``'s run lifecycle logic (find or create, the key lookup, params on
    every open), never its ``__init__``. One connection, used by one call at a time
    (``CONCURRENCY`` 1: SQLite takes one writer); a fork waits for calls in progress.
    """

    CONCURRENCY = 1
    FORK_GATED = True

    def __init__(self, tracking_uri: str, path: str) -> None:  # not MlflowStore's: no MLflow
        self.tracking_uri = tracking_uri
        self.path = path
        self.artifact_root = artifact_root()
        self._lock = threading.Lock()
        self.db = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=BUSY_TIMEOUT,
                                  isolation_level=None, check_same_thread=False)

    @classmethod
    def open(cls, tracking_uri: str) -> SqliteStore | None:
        """This store for ``tracking_uri`` (the database made from the pinned schema if there
        is none), or None where MLflow's store must write: another URI form or a plugin's
        ``sqlite`` scheme, MLflow options not reproduced here, another schema revision, a
        half-made file (MLflow's store then says what to do), workspaces in use."""
        path = sqlite_path(tracking_uri)
        if (path is None or not tracking_uri.startswith("sqlite:///") or "?" in tracking_uri
                or not options_understood() or _plugin_claims_sqlite()):
            return None
        try:
            # A schema MLflow no longer expects: only its migrations may make a new database.
            make = build if pinned(schema_revision()) else None
            found = {}
            prepare(tracking_uri, make=make, verify=lambda p: found.update(_state(p)))
            if not pinned(found.get("revision")) or found.get("workspaces"):
                return None
            return cls(tracking_uri, path)
        except (sqlite3.Error, OSError, IncompleteDatabase, ValueError):
            return None

    @contextlib.contextmanager
    def _write(self):
        """One write transaction, the database locked for writing from its first statement."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def _query(self, sql: str, args=()) -> list:
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    # -- experiments and runs --------------------------------------------------------------------
    def _find_experiment(self, name: str) -> tuple[str, str] | None:
        found = self._query("SELECT experiment_id, lifecycle_stage FROM experiments "
                            "WHERE name = ? AND workspace = ?", (name, DEFAULT_WORKSPACE))
        return (str(found[0][0]), found[0][1]) if found else None

    def _create_experiment(self, name: str) -> str:
        if not name or len(name) > 500:
            raise _invalid(f"Invalid experiment name: '{name}'")
        now = _now_ms()
        try:
            with self._write() as db:
                cursor = db.execute(
                    "INSERT INTO experiments (name, lifecycle_stage, artifact_location, "
                    "creation_time, last_update_time, workspace) VALUES (?, 'active', NULL, ?, "
                    "?, ?)", (name, now, now, DEFAULT_WORKSPACE))
                experiment_id = cursor.lastrowid
                db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
                           (append_to_uri_path(self.artifact_root, str(experiment_id)),
                            experiment_id))
                db.executemany("INSERT INTO experiment_tags (key, value, experiment_id) "
                               "VALUES (?, ?, ?)",
                               [(k, v, experiment_id) for k, v in experiment_tags().items()])
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"Experiment(name={name}) already exists. Error: {exc}", 400,
                             "RESOURCE_ALREADY_EXISTS") from None
        return str(experiment_id)

    def _create_run(self, experiment_id: str, spec: RunSpec) -> str:
        tags = context_tags(spec.tags)
        run_name = tags.get(RUN_NAME_TAG) or random_run_name()
        tags.setdefault(RUN_NAME_TAG, run_name)
        run_id = uuid.uuid4().hex
        with self._write() as db:
            found = db.execute("SELECT artifact_location, lifecycle_stage FROM experiments "
                               "WHERE experiment_id = ?", (int(experiment_id),)).fetchall()
            if not found:
                raise _not_found(f"No Experiment with id={experiment_id} exists")
            location, stage = found[0]
            if stage != "active":
                raise _invalid(f"The experiment {experiment_id} must be in the 'active' state. "
                               f"Current state is {stage}.")
            db.execute(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
                "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
                "artifact_uri, experiment_id, deleted_time) VALUES (?, ?, 'UNKNOWN', '', '', ?, "
                "'RUNNING', ?, NULL, '', 'active', ?, ?, NULL)",
                (run_id, run_name, tags.get("mlflow.user", "unknown"),
                 spec.start_time_ms or _now_ms(),
                 append_to_uri_path(location, run_id, "artifacts"), int(experiment_id)))
            db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
                           [(k, str(v), run_id) for k, v in tags.items()])
        return run_id

    def _get_run(self, run_id: str) -> str:
        with self._lock:
            self._run(self.db, run_id, active=False)
            return str(self.db.execute("SELECT experiment_id FROM runs WHERE run_uuid = ?",
                                       (run_id,)).fetchone()[0])

    ATOMIC_TAG_UPDATE = True

    def update_experiment_tag(self, experiment_id: str, key: str, update) -> bool:
        """Read and write in one transaction: no other writer comes in between. As MLflow's
        ``set_experiment_tag``: its key and value checks, an active experiment only."""
        with self._write() as db:
            found = db.execute("SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?",
                               (int(experiment_id),)).fetchone()
            if found is None:
                raise _not_found(f"No Experiment with id={experiment_id} exists")
            if found[0] != "active":
                raise _invalid(f"The experiment {experiment_id} must be in the 'active' state. "
                               f"Current state is {found[0]}.")
            row = db.execute("SELECT value FROM experiment_tags WHERE experiment_id = ? AND "
                             "key = ?", (int(experiment_id), key)).fetchone()
            value = update(row[0] if row else None)
            if value is None:
                return False
            _checked_key(key, "key")
            if len(key) > MAX_KEY or len(value) > MAX_EXPERIMENT_TAG_VALUE:
                raise _invalid(f"experiment tag {key!r}: key or value too long")
            db.execute("INSERT INTO experiment_tags (key, value, experiment_id) VALUES (?, ?, ?) "
                       "ON CONFLICT (key, experiment_id) DO UPDATE SET value = excluded.value",
                       (key, value, int(experiment_id)))
        return True

    @staticmethod
    def _run(db, run_id: str, active: bool = True) -> tuple:
        """``(lifecycle stage, artifact URI)`` of the run; MLflow's errors if it is not there,
        or (``active``) is deleted."""
        found = db.execute("SELECT lifecycle_stage, artifact_uri FROM runs WHERE run_uuid = ?",
                           (run_id,)).fetchall()
        if not found:
            raise _not_found(f"Run with id={run_id} not found")
        if active and found[0][0] != "active":
            raise _invalid(f"The run {run_id} must be in the 'active' state. Current state is "
                           f"{found[0][0]}.")
        return found[0]

    def _find_run_by_key(self, experiment_id: str, spec: RunSpec) -> str | None:
        _key_filter(spec)  # the key is checked as for a search filter
        found = self._query(
            "SELECT r.start_time, r.run_uuid FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
            "WHERE r.experiment_id = ? AND t.key = ? AND t.value = ? "
            "ORDER BY r.start_time DESC, r.run_uuid LIMIT 50",
            (int(experiment_id), spec.key_tag, spec.run_key))
        return _first_run([(start or 0, run_id) for start, run_id in found])

    def log_params(self, run_id: str, params: dict) -> None:
        checked = [(_checked_key(key, f"params[{index}].key"), _cut(str(value), MAX_PARAM_VALUE))
                   for index, (key, value) in enumerate(params.items())]
        with self._write() as db:
            self._run(db, run_id)
            existing = dict(db.execute("SELECT key, value FROM params WHERE run_uuid = ?",
                                       (run_id,)).fetchall())
            conflicts = [{"key": k, "old_value": existing[k], "new_value": v}
                         for k, v in checked if k in existing and existing[k] != v]
            if conflicts:
                raise _invalid("Changing param values is not allowed. Params were already"
                               f" logged='{conflicts}' for run ID='{run_id}'.")
            db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
                           [(k, v, run_id) for k, v in checked if k not in existing])

    def last_steps(self, run_id: str) -> dict:
        with self._lock:
            self._run(self.db, run_id, active=False)
            return dict(self.db.execute("SELECT key, step FROM latest_metrics WHERE run_uuid = ?",
                                        (run_id,)).fetchall())

    def run_tag(self, run_id: str, key: str) -> str | None:
        with self._lock:
            self._run(self.db, run_id, active=False)
            found = self.db.execute("SELECT value FROM tags WHERE run_uuid = ? AND key = ?",
                                    (run_id, key)).fetchone()
        return found[0] if found else None

    # -- the batch -------------------------------------------------------------------------------
    def log_batch(self, run_id: str, metrics: list, tags: list) -> None:
        """Everything checked first (MLflow refuses the whole batch for one bad record), then
        written in one transaction."""
        if len(metrics) > MAX_METRICS or len(tags) > MAX_PARAMS_TAGS or \
                len(metrics) + len(tags) > MAX_ENTITIES:
            raise _invalid(f"A batch logging request can contain at most {MAX_METRICS} metrics, "
                           f"{MAX_PARAMS_TAGS} params and tags, and {MAX_ENTITIES} entities; "
                           f"got {len(metrics)} metrics and {len(tags)} tags")
        rows = [_metric_row(run_id, index, key, value, ts, step)
                for index, (_, key, value, ts, step) in enumerate(metrics)]
        tag_rows = {}
        for index, (_, key, value) in enumerate(tags):  # the last value of a key wins
            tag_rows[_checked_key(key, f"tags[{index}].key")] = _cut(value, MAX_TAG_VALUE)
        with self._write() as db:
            self._run(db, run_id)
            if rows:
                db.executemany("INSERT OR IGNORE INTO metrics (key, value, timestamp, run_uuid, "
                               "step, is_nan) VALUES (?, ?, ?, ?, ?, ?)", rows)
                _update_latest(db, run_id, rows)
            if tag_rows:
                db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?) "
                               "ON CONFLICT (key, run_uuid) DO UPDATE SET value = excluded.value",
                               [(k, v, run_id) for k, v in tag_rows.items()])
                if RUN_NAME_TAG in tag_rows:  # MLflow's set_tag renames the run too
                    db.execute("UPDATE runs SET name = ? WHERE run_uuid = ?",
                               (tag_rows[RUN_NAME_TAG], run_id))

    def end_run(self, run_id: str, status: str, end_time_ms: int) -> None:
        if status not in ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"):
            raise _invalid(f"Invalid run status {status!r}")
        with self._write() as db:
            self._run(db, run_id)
            db.execute("UPDATE runs SET status = ?, end_time = ? WHERE run_uuid = ?",
                       (status, end_time_ms, run_id))

    # -- artifacts -------------------------------------------------------------------------------
    def _artifact_folder(self, run_id: str) -> str | None:
        cache = self.__dict__.setdefault("_folders", {})
        if run_id not in cache:
            with self._lock:
                cache[run_id] = local_folder(self._run(self.db, run_id, active=False)[1] or "")
        return cache[run_id]

    def _stage(self, run_id: str, artifact_path: str, write) -> bool:
        """``write(fh)`` into the run's artifact ``artifact_path`` through a staged file in
        the same folder and ``os.replace`` (a reader never sees half a file); False when the
        run's artifacts are not in a folder here."""
        root = self._artifact_folder(run_id)
        if root is None:
            return False
        try:
            relative = clean_artifact_path(artifact_path)
        except ValueError as exc:
            raise PermanentError(str(exc)) from None
        if posixpath.basename(relative).startswith(STAGING_PREFIX):
            raise PermanentError(f"artifact path {artifact_path!r}: names starting with "
                                 f"{STAGING_PREFIX!r} are reserved by MLflow")
        destination = os.path.join(root, *relative.split("/"))
        folder = os.path.dirname(destination)
        os.makedirs(folder, exist_ok=True)
        if os.path.isdir(destination):
            raise PermanentError(f"artifact path {artifact_path!r} is a folder of this run")
        fd, staged = tempfile.mkstemp(dir=folder, prefix=STAGING_PREFIX)
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
            os.replace(staged, destination)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.remove(staged)
            raise
        return True

    def upload_bytes(self, run_id: str, artifact_path: str, data: bytes) -> None:
        check_artifact_name(artifact_path)
        if not self._stage(run_id, artifact_path, lambda fh: fh.write(data)):
            super().upload_bytes(run_id, artifact_path, data)

    def upload_file(self, run_id: str, artifact_dir: str, local_path: str) -> None:
        path = posixpath.join(artifact_dir, os.path.basename(local_path))
        check_artifact_name(path)

        def copy(fh) -> None:
            import shutil

            # With the record's folder: a link in outputs/ (or logs/) swapped after the scan
            # to lead out of the project is refused here too.
            with open_source(local_path, artifact_dir) as source:
                shutil.copyfileobj(source, fh, 1024 * 1024)

        if not self._stage(run_id, path, copy):
            super().upload_file(run_id, artifact_dir, local_path)


def _state(path: str) -> dict:
    """The revision of the database at ``path`` and whether it uses other workspaces. Read
    through a read-write connection: a hot journal left by a process killed mid-write is
    rolled back by whoever opens the file next, which a read-only one cannot do."""
    with _read(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "alembic_version" not in tables or any(t.startswith("_alembic_tmp_") for t in tables):
            return {}
        rows = db.execute("SELECT version_num FROM alembic_version").fetchall()
        other = db.execute("SELECT 1 FROM experiments WHERE workspace IS NOT NULL AND "
                           "workspace <> ? LIMIT 1", (DEFAULT_WORKSPACE,)).fetchall()
        return {"revision": rows[0][0] if len(rows) == 1 else None, "workspaces": bool(other)}


def _plugin_claims_sqlite() -> bool:
    from ..._config import plugin_schemes

    return bool(plugin_schemes() & {"sqlite"})


def _invalid_value(path: str, value, message: str) -> StoreError:
    """MLflow's ``invalid_value`` message (the value as compact JSON)."""
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return _invalid(f"Invalid value {shown} for parameter '{path}' supplied: {message}")


def _checked_key(key: str, path: str) -> str:
    """``key`` if MLflow takes it as a metric, param or tag name, else MLflow's refusal."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY:
        raise _invalid_value(path, key, f"Names must be 1 to {MAX_KEY} characters long.")
    if not is_valid_key(key):
        raise _invalid_value(path, key, (
            "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), "
            "spaces ( ), colon(:) and slashes (/)." if _INVALID_CHAR.search(key) else
            "Names may be treated as files in certain cases, and must not resolve to other "
            f"names when treated as such. This name would resolve to {posixpath.normpath(key)!r}"))
    return key


def _cut(value: str, limit: int) -> str:
    """MLflow's ``MLFLOW_TRUNCATE_LONG_VALUES`` (on: ``open`` falls back when it is off)."""
    return value if value is None or len(value) <= limit else value[:limit]


def _metric_row(run_id: str, index: int, key: str, value, timestamp, step) -> tuple:
    """``(key, value, timestamp, run_uuid, step, is_nan)`` as MLflow's store stores it."""
    path = f"metrics[{index}]"
    _checked_key(key, path + ".name")
    if not isinstance(value, (int, float)):  # a bool is taken (MLflow's client stores 1.0)
        raise _invalid_value(path + ".value", value, f"(timestamp={timestamp}). Please "
                             "specify value as a valid double (64-bit floating point)")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise _invalid_value(path + ".timestamp", timestamp, f"metric '{key}' (value="
                             f"{value}). Timestamp must be a nonnegative long (64-bit integer) ")
    if isinstance(step, bool) or not isinstance(step, int):
        raise _invalid_value(path + ".step", step, f"metric '{key}' (value={value}). "
                             "Step must be a valid long (64-bit integer).")
    value = float(value)
    if math.isnan(value):
        return key, 0.0, timestamp, run_id, step, 1
    if math.isinf(value):
        value = DOUBLE_MAX if value > 0 else -DOUBLE_MAX
    return key, value, timestamp, run_id, step, 0


def _update_latest(db, run_id: str, rows: list) -> None:
    """``latest_metrics`` as MLflow keeps it: a key's row is replaced only by a point strictly
    greater in (step, timestamp, stored value), points compared in the batch's order.

    Every point of the batch is compared, also one ``INSERT OR IGNORE`` skipped as already
    stored: that point was compared when it was first stored, so it cannot be strictly
    greater than the row now (MLflow compares only the new ones; the result is the same).
    """
    keys = sorted({row[0] for row in rows})
    latest = {}
    for start in range(0, len(keys), KEY_CHUNK):
        chunk = keys[start:start + KEY_CHUNK]
        for key, value, timestamp, step, is_nan in db.execute(
                "SELECT key, value, timestamp, step, is_nan FROM latest_metrics WHERE run_uuid = ? "
                f"AND key IN ({','.join('?' * len(chunk))})", (run_id, *chunk)):
            latest[key] = [value, timestamp, step, is_nan, False]
    changed = set()
    for key, value, timestamp, _, step, is_nan in rows:
        old = latest.get(key)
        if old is None:
            latest[key] = [value, timestamp, step, is_nan, True]
            changed.add(key)
        elif (step, timestamp, value) > (old[2], old[1], old[0]):
            old[:4] = value, timestamp, step, is_nan
            changed.add(key)
    new = [(k, *latest[k][:4], run_id) for k in sorted(changed) if latest[k][4]]
    updated = [(*latest[k][:4], run_id, k) for k in sorted(changed) if not latest[k][4]]
    if new:
        db.executemany("INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
                       "VALUES (?, ?, ?, ?, ?, ?)", new)
    if updated:
        db.executemany("UPDATE latest_metrics SET value = ?, timestamp = ?, step = ?, is_nan = ? "
                       "WHERE run_uuid = ? AND key = ?", updated)
