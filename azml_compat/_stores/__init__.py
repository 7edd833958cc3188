"""The tracking-store backends: one family behind one interface.

* ``base``: the retry policy's reading of errors, shared checks (no MLflow);
* ``rest``: an ``http(s)://`` tracking server, one request per call;
* ``mlflow_client``: any other store MLflow can open, through ``MlflowClient``;
* ``sqlite``: a new SQLite store built whole before MLflow opens it.
"""
from __future__ import annotations

from .mlflow_client import MlflowStore


def connect(tracking_uri: str) -> MlflowStore:
    """The store for a URI: direct REST for servers, MlflowClient for everything else."""
    if tracking_uri.startswith(("http://", "https://")):
        return _rest_store(tracking_uri)
    return MlflowStore(tracking_uri)


def _rest_store(tracking_uri: str) -> MlflowStore:
    from .rest import RestStore

    return RestStore(tracking_uri)
