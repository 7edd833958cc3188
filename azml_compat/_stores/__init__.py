"""The tracking-store backends: one family behind one interface.

* ``base``: the retry policy's reading of errors, shared checks (no MLflow);
* ``rest``: an ``http(s)://`` tracking server, one request per call;
* ``mlflow_client``: any other store MLflow can open, through ``MlflowClient``;
* ``sqlite``: a new SQLite store built whole before MLflow opens it.
"""
from __future__ import annotations

from .mlflow_client import MlflowStore


def connect(tracking_uri: str, settings=None) -> MlflowStore:
    """The store for a URI: direct REST for servers, MlflowClient for everything else;
    ``settings`` (``_config.Settings``) gives a server's timeout and requests in flight."""
    if tracking_uri.startswith(("http://", "https://")):
        return _rest_store(tracking_uri, settings)
    return MlflowStore(tracking_uri)


def _rest_store(tracking_uri: str, settings=None) -> MlflowStore:
    from .rest import RestStore

    if settings is None:
        return RestStore(tracking_uri)
    return RestStore(tracking_uri, timeout=settings.http_timeout,
                     concurrency=settings.max_in_flight)
