"""Tables in MLflow's own format: rows gathered across calls, written in the background.

MLflow's ``log_table`` writes pandas ``to_json(orient="split", index=False)`` (``{"columns":
[...], "data": [[...], ...]}``) and lists the file in the run's ``mlflow.loggedArtifacts`` tag
as ``{"path": file, "type": "table"}``; the UI and ``mlflow.load_table`` find tables through
that tag. MLflow writes the tag with ``json.dumps`` (ASCII-escaped) while ``load_table`` looks
for the raw file name, so a table named ``nrmse over α`` is not found again: we write the tag
unescaped. The JSON is the same with or without pandas, so pandas is never imported.

Rows are appended on the caller's thread (a list append under a lock); the file is rewritten
whole from the gathered rows by one writer thread per run, at most every ``INTERVAL`` seconds
and never more than ~1/``DUTY`` of the time (a table of 10^5 rows takes ~0.1 s to serialise
here: the writer then waits ~1 s), so many appends cost one rewrite and the caller never waits
for one. ``flush()`` writes what is pending now (``run.flush()``, the end of the run). A table logged
whole (a DataFrame given to Workbench's ``log()``: latest wins) is written at once by
``snapshot()``, sharing the tag's list with the gathered ones.
"""
from __future__ import annotations

import json
import math
import threading
import time
from typing import Callable

from .paths import clean_artifact_path
from .records import ARTIFACT, TAG

LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
INTERVAL = 1.0  # seconds between rewrites of a table that keeps growing
DUTY = 10  # the writer waits at least DUTY times as long as its last rewrite took


def table_path(name: str) -> str:
    """The artifact a table named ``name`` is stored at: ``<name>.json``."""
    return clean_artifact_path(f"{name}.json", what=f"table name {name!r}")


def cell(value):
    """One cell as JSON: numpy scalars as numbers, NaN/inf as null (as pandas writes them),
    anything else JSON cannot hold as its ``str``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)  # numpy scalars and 0-d arrays
    if callable(item) and getattr(value, "ndim", 0) == 0:
        try:
            return cell(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def encode(columns: list[str], rows: list[tuple]) -> bytes:
    """pandas' ``orient="split"`` JSON without the index, as MLflow's ``log_table`` writes;
    rows made before a column was added get null in it."""
    width = len(columns)
    data = [row if len(row) == width else (*row, *(None,) * (width - len(row))) for row in rows]
    return json.dumps({"columns": columns, "data": data}, ensure_ascii=False,
                      allow_nan=False).encode("utf-8", "surrogatepass")


def table_paths(tags: dict) -> list[str]:
    """The tables a run's ``mlflow.loggedArtifacts`` tag lists (ours and MLflow's own)."""
    try:
        listed = json.loads(tags.get(LOGGED_ARTIFACTS_TAG) or "[]")
    except ValueError:
        return []
    if not isinstance(listed, list):
        return []
    return [e["path"] for e in listed if isinstance(e, dict) and e.get("type") == "table"
            and isinstance(e.get("path"), str)]


def logged_artifacts(paths: list[str]) -> str:
    """The ``mlflow.loggedArtifacts`` tag for ``paths``, names unescaped (see above)."""
    return json.dumps([{"path": p, "type": "table"} for p in paths], ensure_ascii=False)


class _Table:
    __slots__ = ("columns", "rows", "dirty")

    def __init__(self) -> None:
        self.columns: list[str] = []
        self.rows: list[tuple] = []  # never changed once added: a snapshot is a list copy
        self.dirty = False


class Tables:
    """The tables of one run. ``put(kind, *fields)`` is the session's dispatcher's ``put``."""

    def __init__(self, put: Callable) -> None:
        self._put = put
        self._tables: dict[str, _Table] = {}
        self._lock = threading.Lock()  # the tables; held only for appends and list copies
        self._write_lock = threading.Lock()  # one flush at a time: writes queue in order
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._listed: list[str] = []  # paths in the tag, in the order first written

    def add(self, name: str, columns: dict) -> None:
        """Append rows: ``columns`` maps each column to its list of cells (equal lengths)."""
        path = table_path(name)
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"table {name!r}: columns of different lengths "
                             f"({', '.join(f'{k}: {len(v)}' for k, v in columns.items())})")
        count = lengths.pop() if lengths else 0
        with self._lock:
            if self._closed:
                raise RuntimeError(f"table {name!r}: the run has ended")
            table = self._tables.get(path)
            if table is None:
                table = self._tables[path] = _Table()
            for column in columns:
                if column not in table.columns:
                    table.columns.append(column)
            order = table.columns
            for i in range(count):
                table.rows.append(tuple(cell(columns[c][i]) if c in columns else None
                                        for c in order))
            table.dirty = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="azml-tables", daemon=True)
                self._thread.start()

    def rows(self, name: str) -> dict | None:
        """``{column: [cells]}`` of the table ``name`` as this process gathered it."""
        with self._lock:
            table = self._tables.get(table_path(name))
            if table is None:
                return None
            return {c: [row[i] if i < len(row) else None for row in table.rows]
                    for i, c in enumerate(table.columns)}

    def names(self) -> list[str]:
        with self._lock:
            return [p[:-len(".json")] for p in self._tables]

    def flush(self) -> None:
        """Hand every table with new rows to the dispatcher now, on this thread. The JSON is
        made outside the tables' lock: ``add()`` never waits for a rewrite."""
        with self._write_lock:
            pending = []
            with self._lock:
                for path, table in self._tables.items():
                    if table.dirty:
                        table.dirty = False
                        pending.append((path, list(table.columns), table.rows[:]))
            new = [p for p, _, _ in pending if p not in self._listed]
            self._listed += new
            for path, columns, rows in pending:
                self._put(ARTIFACT, path, encode(columns, rows))
            if new:
                self._put(TAG, LOGGED_ARTIFACTS_TAG, logged_artifacts(self._listed))

    def snapshot(self, name: str, columns: list[str], rows: list[list]):
        """The table ``name`` is ``rows`` from now on (JSON-safe already), written now: the
        handle of its last record. Not gathered: a later ``snapshot()`` replaces it whole."""
        path = table_path(name)
        data = encode(columns, rows)
        with self._write_lock:
            handle = self._put(ARTIFACT, path, data)
            if path not in self._listed:
                self._listed.append(path)
                handle = self._put(TAG, LOGGED_ARTIFACTS_TAG, logged_artifacts(self._listed))
        return handle

    def close(self) -> None:
        """The last write (the run ends); later ``add()`` calls raise."""
        self.flush()
        with self._lock:
            self._closed = True
        self._wake.set()

    def _run(self) -> None:
        pause = INTERVAL
        while not self._closed:
            self._wake.wait(pause)
            if self._closed:
                return
            began = time.monotonic()
            self.flush()
            pause = max(INTERVAL, DUTY * (time.monotonic() - began))
