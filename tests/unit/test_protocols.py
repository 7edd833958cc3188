"""The journal and store interfaces are Protocols every implementation provides."""
from azml_compat._core.journal import Journal, JournalLike, MemoryJournal, SpilledJournal
from azml_compat._core.stores.base import Store
from azml_compat._core.stores.mlflow_client import MlflowStore
from azml_compat._core.stores.rest import RestStore
from azml_compat._core.stores.sqlite_write import SqliteStore

from .fakes import FakeStore, FullDiskJournal


def test_every_journal_is_journal_like(tmp_path):
    disk = Journal.create(str(tmp_path), "unit", {"tracking_uri": "fake://store"})
    try:
        for journal in (disk, MemoryJournal(), SpilledJournal(disk), FullDiskJournal(0)):
            assert isinstance(journal, JournalLike), type(journal).__name__
    finally:
        disk.close(prune=True)
    assert not isinstance(object(), JournalLike)


def test_every_store_is_a_store():
    # Built without __init__: that imports MLflow and opens the store.
    for cls in (MlflowStore, RestStore, SqliteStore):
        assert isinstance(cls.__new__(cls), Store), cls.__name__
    assert isinstance(FakeStore(), Store)
    assert RestStore.FORK_GATED is False and MlflowStore.FORK_GATED is True
    assert SqliteStore.FORK_GATED is True  # a fork waits for a call inside SQLite
    assert not isinstance(object(), Store)
