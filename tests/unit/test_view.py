"""The experiment's runs view (``_core.view``): what the tag becomes, and when the sender
writes it (off the caller's thread, a few times a run, never in the way of a record)."""
import json
import threading

from azml_compat._core.records import END, METRIC
from azml_compat._core.view import MAX_VALUE, VIEW_TAG, merged

from .fakes import FakeClock, FakeStore, rejected

WAIT = 60


def _state(value: str) -> dict:
    return json.loads(json.loads(value)["state"])


def test_a_new_view_then_only_columns_it_lacks():
    first = merged(None, {"loss", "acc"}, 5)
    assert json.loads(first)["createdAt"] == json.loads(first)["updatedAt"] == 5
    assert _state(first)["selectedColumns"] == ["metrics.`acc`", "metrics.`loss`"]
    assert merged(first, {"loss"}, 6) is None  # nothing new: not written again
    second = merged(first, {"f1"}, 7)
    assert _state(second)["columnOrder"] == ["metrics.`acc`", "metrics.`f1`", "metrics.`loss`"]
    assert json.loads(second)["createdAt"] == 5 and json.loads(second)["updatedAt"] == 7


def test_a_view_a_person_saved_or_cannot_be_read_is_left_alone():
    saved_in_the_ui = json.dumps({"name": "x", "createdAt": 1, "updatedAt": 2, "state": "{}"})
    assert merged(saved_in_the_ui, {"loss"}, 3) is None
    assert merged("not json", {"loss"}, 3) is None
    compressed = json.dumps({"name": "x", "createdAt": 1, "writtenBy": "azml-compat",
                             "state": "deflate;eJzLSM3JyQcABiwCFQ=="})
    assert merged(compressed, {"loss"}, 3) is None


def test_the_view_stays_within_one_tag_value():
    keys = {f"metric {i:03d} " + "x" * 200 for i in range(150)}
    value = merged(None, keys, 1)
    assert len(value) <= MAX_VALUE
    kept = _state(value)["selectedColumns"]
    assert 0 < len(kept) < 150  # the columns that fit; the next run cannot add more
    assert merged(value, keys, 2) is None or len(merged(value, keys, 2)) <= MAX_VALUE


def test_the_sender_writes_the_view_with_the_first_metrics_and_before_the_end(core):
    store = FakeStore()
    clock = FakeClock()
    dispatcher = core(store, clock=clock, sleep=clock.sleep)
    for step in range(100):
        dispatcher.put_stepped(METRIC, "loss", 1.0 / (step + 1), 1000 + step)
    assert dispatcher.flush(WAIT)
    assert _state(store.experiment_tags[VIEW_TAG])["columnOrder"] == ["metrics.`loss`"]
    writes = [c for c in store.calls if c[0] == "update_experiment_tag"]
    assert len(writes) == 1  # 100 points of one key: one write
    dispatcher.put_stepped(METRIC, "val loss", 0.5, 2000)  # a new key within the interval
    assert dispatcher.flush(WAIT)
    assert len([c for c in store.calls if c[0] == "update_experiment_tag"]) == 1
    dispatcher.put(END, "FINISHED", 3000)  # before the run ends: the view is complete
    assert dispatcher.flush(WAIT)
    assert _state(store.experiment_tags[VIEW_TAG])["columnOrder"] == [
        "metrics.`loss`", "metrics.`val loss`"]
    calls = [c[0] for c in store.calls]
    assert calls.index("update_experiment_tag", calls.index("log_batch") + 1) < calls.index(
        "end_run")


def test_a_store_refusing_the_view_loses_no_record(core, warnings_said):
    store = FakeStore()
    store.refuse = lambda op, args: rejected() if op == "update_experiment_tag" else None
    dispatcher = core(store)
    handles = [dispatcher.put_stepped(METRIC, f"m{i}", 1.0, 1000) for i in range(3)]
    assert dispatcher.flush(WAIT)
    for handle in handles:
        handle.wait(WAIT)  # delivered, not failed
    dispatcher.put_stepped(METRIC, "more", 1.0, 2000)
    dispatcher.put(END, "FINISHED", 3000)
    assert dispatcher.flush(WAIT)
    assert [c[0] for c in store.calls].count("update_experiment_tag") == 1  # told once, let be
    assert sum("runs view" in line for line in warnings_said) == 1
    assert ("end", "FINISHED", 3000) in store.events


def test_looking_at_the_view_again_keeps_no_record_waiting(core):
    """Where the tag is read, then written (a server), the view is looked at again a moment
    after each write: another run's write may have come between and dropped our columns.
    That moment (0.1-0.5 s) is not the records': the points after the write are delivered
    while the look waits, and the look is done before the run ends."""
    looking, release = threading.Event(), threading.Event()

    class ReadThenWrite(FakeStore):
        ATOMIC_TAG_UPDATE = False

    def pause(seconds):  # the wait before looking again (no retry happens in this test)
        looking.set()
        release.wait(WAIT)

    store = ReadThenWrite()
    dispatcher = core(store, sleep=pause)
    dispatcher.put_stepped(METRIC, "loss", 1.0, 1000)
    assert looking.wait(WAIT)  # written, and waiting to look again
    handle = dispatcher.put_stepped(METRIC, "loss", 0.5, 1001)
    try:
        handle.wait(5)  # delivered while the look still waits
        assert not release.is_set()
    finally:
        release.set()
    dispatcher.put(END, "FINISHED", 3000)
    assert dispatcher.flush(WAIT)
    assert store.values("loss") == [1.0, 0.5]
    calls = [c[0] for c in store.calls]
    assert calls.count("update_experiment_tag") == 2  # the write, and the look after it
    assert max(i for i, c in enumerate(calls) if c == "update_experiment_tag") < calls.index(
        "end_run")
