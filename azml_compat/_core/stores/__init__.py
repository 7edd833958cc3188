"""The tracking-store backends: one family behind one interface.

* ``base``: the retry policy's reading of errors, shared checks (no MLflow);
* ``rest``: an ``http(s)://`` tracking server, one request per call;
* ``mlflow_client``: any other store MLflow can open, through ``MlflowClient``;
* ``sqlite``: a new SQLite store built whole before MLflow opens it;
* ``sqlite_write``: the SQLite default written with ``sqlite3`` alone, where it is exact;
* ``sqlite_read``: run search on it, for ``azml history`` (no MLflow import);
* ``gen_schema``: writes ``sqlite_schema.sql`` from MLflow's migrations (a developer's tool).
"""
from __future__ import annotations

from .mlflow_client import MlflowStore


def connect(tracking_uri: str, settings=None) -> MlflowStore:
    """The store for a URI: direct REST for servers, ``sqlite3`` for the SQLite default where
    it is exact (``SqliteStore.open``), MlflowClient for everything else; ``settings``
    (``_config.Settings``) gives a server's timeout and requests in flight."""
    if tracking_uri.startswith(("http://", "https://")):
        return _rest_store(tracking_uri, settings)
    if tracking_uri.startswith("sqlite:"):
        from .sqlite_write import SqliteStore

        store = SqliteStore.open(tracking_uri)
        if store is not None:
            return store
    return MlflowStore(tracking_uri)


def _rest_store(tracking_uri: str, settings=None) -> MlflowStore:
    from .rest import RestStore

    if settings is None:
        return RestStore(tracking_uri)
    return RestStore(tracking_uri, timeout=settings.http_timeout,
                     concurrency=settings.max_in_flight)
