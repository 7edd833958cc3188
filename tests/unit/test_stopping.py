"""``Dispatcher.close()``: every thread of the core ends, twice is fine, and a sender stuck
retrying a dead store does not hold it up; what was not delivered stays in the journal."""
import threading

import pytest

from azml_compat._core.dispatcher import DeliveryTimeout, Dispatcher
from azml_compat._core.journal import MemoryJournal
from azml_compat._core.records import METRIC

from .fakes import FakeStore, unavailable

WAIT = 60  # a bound, not a measurement


def core_threads(dispatcher) -> list[threading.Thread]:
    sender = dispatcher._sender
    pool = sender._pool if sender is not None else None
    return list(dispatcher._threads) + (list(pool._threads) if pool is not None else [])


@pytest.mark.parametrize("concurrency", [1, 4])
def test_close_ends_every_thread_and_twice_is_fine(core, concurrency):
    store = FakeStore(concurrency=concurrency)
    dispatcher = core(store)
    handles = [dispatcher.put_stepped(METRIC, "x", float(i), 1) for i in range(100)]
    assert dispatcher.flush(WAIT)
    threads = core_threads(dispatcher)
    assert len(threads) == 2 + (concurrency if concurrency > 1 else 0)
    assert all(thread.is_alive() for thread in threads)
    assert {t.name for t in threads} <= {"azml-journal", "azml-sender"} | {
        f"azml-request-{i}" for i in range(concurrency)}

    assert dispatcher.close(WAIT) is True
    assert not any(thread.is_alive() for thread in threads)
    assert dispatcher.close(WAIT) is True  # again: nothing to do, no error
    assert all(handle.done() for handle in handles)
    assert store.values("x") == [float(i) for i in range(100)]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_close_during_a_retry_loop_returns_promptly_and_keeps_the_records(core, concurrency):
    store = FakeStore(concurrency=concurrency)
    # Every request is refused with "come back in 30 s": the sender sits in a 30 s wait.
    store.refuse = lambda op, args: unavailable(retry_after=30) if op == "log_batch" else None
    dispatcher = core(store)
    handles = [dispatcher.put_stepped(METRIC, "x", float(i), 1) for i in range(5)]
    dispatcher._wake.set()
    assert store.arrived("log_batch").wait(WAIT)
    threads = core_threads(dispatcher)

    # Bounded well under the 30 s retry wait: True only if the wait was cut short.
    assert dispatcher.close(10.0) is True
    assert not any(thread.is_alive() for thread in threads)
    assert not any(handle.done() for handle in handles)
    assert [r[3] for r in dispatcher.journal.pending(0, 10)] == [float(i) for i in range(5)]
    assert dispatcher.flush() is False  # closed: nothing more will be delivered
    with pytest.raises(DeliveryTimeout, match="closed"):
        handles[0].wait()


def test_close_while_the_store_cannot_be_reached_at_start(core):
    attempts = threading.Event()

    def unreachable(uri):
        attempts.set()
        raise ConnectionRefusedError(111, "Connection refused")

    dispatcher = core(store_factory=unreachable)
    handle = dispatcher.put_stepped(METRIC, "x", 1.0, 1)
    assert attempts.wait(WAIT)
    assert dispatcher.close(10.0) is True
    assert dispatcher.fatal is None  # stopped, not failed: the record waits for `azml sync`
    assert not handle.done()
    assert [r[3] for r in dispatcher.journal.pending(0, 10)] == [1.0]


def test_close_commits_what_is_still_queued():
    journal = MemoryJournal()
    dispatcher = Dispatcher(journal, lambda: pytest.fail("never started: no sender"))
    handles = [dispatcher.put_stepped(METRIC, "x", float(i), 1) for i in range(3)]
    assert dispatcher.close(WAIT) is True
    assert [r[3] for r in journal.pending(0, 10)] == [0.0, 1.0, 2.0]  # on the journal, not lost
    assert dispatcher.whereabouts()["memory"] == 3  # MemoryJournal: counted as RAM-only
    assert not any(handle.done() for handle in handles)
