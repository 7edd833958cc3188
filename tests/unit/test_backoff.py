"""The retry policy as a pure function, and the Sender driving it with an injected clock,
sleep and jitter: exact delays, no waiting."""
import pytest

from azml_compat._core.batching import pack
from azml_compat._core.records import METRIC
from azml_compat._core.sender import BACKOFF_MAX, GaveUp, Sender, backoff_delay

from .fakes import SPEC, FakeClock, FakeStore, unavailable

LONGEST = lambda low, high: high  # noqa: E731 - jitter at its top
SHORTEST = lambda low, high: low  # noqa: E731


def test_backoff_doubles_from_half_a_second_to_the_cap():
    assert [backoff_delay(n, uniform=LONGEST) for n in range(8)] == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert [backoff_delay(n, uniform=SHORTEST) for n in range(3)] == [0.25, 0.5, 1.0]
    assert backoff_delay(10_000, uniform=LONGEST) == BACKOFF_MAX  # no overflow


def test_backoff_honours_retry_after_up_to_the_cap():
    assert backoff_delay(0, retry_after=7, uniform=LONGEST) == 7
    assert backoff_delay(5, retry_after=7, uniform=LONGEST) == 16.0  # the backoff is longer
    assert backoff_delay(0, retry_after=3600, uniform=LONGEST) == BACKOFF_MAX
    assert backoff_delay(0, retry_after=None, uniform=SHORTEST) == 0.25


def test_sender_connects_in_start_not_in_its_constructor():
    made = []
    store = FakeStore()
    sender = Sender(SPEC, store_factory=lambda uri: made.append(uri) or store)
    assert made == [] and sender.run_id is None
    assert sender.start() is sender
    assert made == ["fake://store"] and sender.run_id == "run-1"
    assert [call[0] for call in store.calls] == ["open_run"]


def test_sender_retries_with_backoff_on_its_clock_and_gives_up_when_told():
    clock = FakeClock()
    store = FakeStore()
    store.refuse = lambda op, args: unavailable() if op == "open_run" else None
    sender = Sender(SPEC, store_factory=lambda uri: store, give_up_after=5, clock=clock,
                    sleep=clock.sleep, uniform=LONGEST, quiet=True)
    with pytest.raises(GaveUp, match="open the run"):
        sender.start()
    # failures at t = 0, 0.5, 1.5, 3.5, then one last try just past the 5 s bound (5.05), not
    # a whole backoff past it (4 s more), so a give-up bound holds
    assert clock.slept == [0.5, 1.0, 2.0, 1.55]
    assert len(store.calls) == 5


def test_sender_waits_as_long_as_retry_after_says():
    clock = FakeClock()
    store = FakeStore()
    refusals = iter([unavailable(retry_after=7), unavailable(retry_after=7)])
    store.refuse = lambda op, args: next(refusals, None) if op == "log_batch" else None
    sender = Sender(SPEC, store_factory=lambda uri: store, clock=clock, sleep=clock.sleep,
                    uniform=LONGEST, quiet=True).start()
    records = [(seq, METRIC, "x", float(seq), 1, seq - 1) for seq in (1, 2, 3)]
    assert [(d.upto, d.errors) for d in sender.deliver([records])] == [(3, {})]
    assert clock.slept == [7, 7]
    assert store.values("x") == [1.0, 2.0, 3.0]
    assert len(list(pack(records))) == 1


def test_sender_connects_after_transient_failures():
    clock = FakeClock()
    store = FakeStore()
    failures = iter([ConnectionRefusedError(111, "refused"), TimeoutError("timed out")])

    def connect(uri):
        error = next(failures, None)
        if error is not None:
            raise error
        return store

    sender = Sender(SPEC, store_factory=connect, clock=clock, sleep=clock.sleep,
                    uniform=SHORTEST, quiet=True).start()
    assert sender.run_id == "run-1"
    assert clock.slept == [0.25, 0.5]
