"""Writes ``sqlite_schema.sql``: MLflow's SQLite tracking schema at its head revision, as data.

``python -m azml_compat._core.stores.gen_schema`` runs MLflow's own migrations (alembic, ~2 s) on a
new database in a temporary folder and writes out what they left: every table, index and
trigger exactly as ``sqlite_master`` holds it, then the rows the migrations inserted
(``alembic_version``, the default workspace). ``sqlite_write`` replays the file to make a new
database in milliseconds, without MLflow; ``tests/test_sqlite_store.py`` builds one both ways
and compares them. Run it after upgrading MLflow, and pin the new revision only once the
tests pass on it (``sqlite_read.PINNED_REVISIONS``).

Imports MLflow: a developer's tool, never on the logging path.
"""
from __future__ import annotations

import os
import sqlite3
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_FILE = os.path.join(HERE, "sqlite_schema.sql")
REVISION_LINE = "-- alembic revision: "
# sqlite_master rows SQLite makes itself: autoindexes (no SQL) and the AUTOINCREMENT counter.
_IMPLICIT = "sql IS NOT NULL AND name <> 'sqlite_sequence'"
_KIND_ORDER = {"table": 0, "index": 1, "view": 2, "trigger": 3}  # what may refer to what


def literal(value) -> str:
    """``value`` as an SQL literal SQLite reads back as the same value and type."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes):
        return "X'" + value.hex() + "'"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def migrated_database(path: str) -> None:
    """Let MLflow's migrations make ``path``, and nothing else (no store, no Default
    experiment: that row depends on where the store is opened from)."""
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables

    engine = sqlalchemy.create_engine("sqlite:///" + path)
    try:
        _initialize_tables(engine)
    finally:
        engine.dispose()


def dump(path: str) -> str:
    """The schema and rows of the database at ``path`` as one SQL script."""
    db = sqlite3.connect(path)
    try:
        (revision,), = db.execute("SELECT version_num FROM alembic_version").fetchall()
        objects = db.execute(f"SELECT type, name, sql FROM sqlite_master WHERE {_IMPLICIT} "
                             "ORDER BY rowid").fetchall()
        lines = [
            "-- MLflow's SQLite tracking schema, written by `python -m "
            "azml_compat._core.stores.gen_schema` from MLflow's own migrations: do not edit.",
            REVISION_LINE + revision,
        ]
        for _kind, _name, sql in sorted(objects, key=lambda row: _KIND_ORDER[row[0]]):
            lines.append(sql + ";")
        tables = [name for kind, name, _ in objects if kind == "table"]
        for table in [*tables, "sqlite_sequence"]:
            try:
                rows = db.execute(f'SELECT * FROM "{table}" ORDER BY rowid').fetchall()
            except sqlite3.OperationalError:  # no sqlite_sequence: nothing AUTOINCREMENT-ed
                continue
            for row in rows:
                lines.append(f'INSERT INTO "{table}" VALUES ('
                             + ", ".join(literal(v) for v in row) + ");")
        return "\n".join(lines) + "\n"
    finally:
        db.close()


def main(out: str = SCHEMA_FILE) -> int:
    with tempfile.TemporaryDirectory(prefix="azml-schema-") as tmp:
        path = os.path.join(tmp, "mlflow.db")
        migrated_database(path)
        text = dump(path)
    with open(out, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {out} ({text.splitlines()[1][len(REVISION_LINE):]})")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
