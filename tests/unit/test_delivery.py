"""The dispatcher and sender on MemoryJournal and a fake store: order and the completion
watermark, isolating a rejected record, pacing, spilling to RAM, refused credentials, and a
sender that cannot start."""
import threading
import time

import pytest

from azml_compat._core import dispatcher as _dispatcher
from azml_compat._core.journal import MemoryJournal, SpilledJournal
from azml_compat._core.records import ARTIFACT, METRIC, TAG

from .fakes import FakeStore, FullDiskJournal, rejected, run_gone, unauthorized

WAIT = 60  # seconds: only a bound so that a broken core fails instead of hanging


def store_error(exc: BaseException):
    """The store's error behind what ``wait()`` raised (it may wrap it as the cause)."""
    while exc is not None and getattr(exc, "error_code", None) is None:
        exc = exc.__cause__
    return exc


def test_records_reach_the_store_in_order_and_complete_as_a_prefix(core):
    store = FakeStore()
    store.held["upload_bytes"] = threading.Event()
    dispatcher = core(store)
    before = [dispatcher.put_stepped(METRIC, "loss", float(i), 1000 + i) for i in range(5)]
    tag = dispatcher.put(TAG, "phase", "train")
    upload = dispatcher.put(ARTIFACT, "model.bin", b"weights")
    after = [dispatcher.put_stepped(METRIC, "loss", float(i), 2000 + i) for i in range(5, 10)]

    assert store.arrived("upload_bytes").wait(WAIT)
    # The upload is in progress: everything before it is complete, nothing after it.
    assert all(handle.done() for handle in before + [tag])
    assert not upload.done() and not any(handle.done() for handle in after)
    assert dispatcher.pending == 6

    store.held["upload_bytes"].set()
    after[-1].wait(WAIT)
    assert all(handle.done() for handle in before + [tag, upload] + after)
    assert store.events == ([("loss", float(i), i) for i in range(5)]
                            + [("tag", "phase", "train"), ("artifact", "model.bin", b"weights")]
                            + [("loss", float(i), i) for i in range(5, 10)])
    assert dispatcher.journal.in_memory() == 0  # delivered records leave the journal


def test_a_rejected_record_fails_only_its_own_handle(core):
    store = FakeStore()
    store.refuse = lambda op, args: (rejected() if op == "log_batch"
                                     and any(m[1] == "bad" for m in args[0]) else None)
    dispatcher = core(store)
    first = [dispatcher.put_stepped(METRIC, "good", float(i), 1) for i in range(20)]
    bad = dispatcher.put_stepped(METRIC, "bad", 1.0, 1)
    second = [dispatcher.put_stepped(METRIC, "good", float(i), 1) for i in range(20, 40)]
    assert dispatcher.flush(WAIT)

    with pytest.raises(Exception) as raised:
        bad.wait(WAIT)
    assert store_error(raised.value).error_code == "INVALID_PARAMETER_VALUE"
    for handle in first + second:
        handle.wait(WAIT)  # no error: delivered
    assert store.values("good") == [float(i) for i in range(40)]
    assert store.values("bad") == []
    # The refused request was split until the bad record travelled alone.
    assert any(op == "log_batch" and [m[1] for m in metrics] == ["bad"]
               for op, *rest in store.calls for metrics in rest[:1])


def test_a_caller_far_ahead_of_the_journal_waits_until_it_catches_up(core, monkeypatch):
    monkeypatch.setattr(_dispatcher, "HIGH_WATER", 10)
    monkeypatch.setattr(_dispatcher, "LOW_WATER", 5)
    monkeypatch.setattr(_dispatcher, "PACE_TIMEOUT", 600.0)  # only the writer may end the wait

    class HeldJournal(MemoryJournal):
        appending, release = threading.Event(), threading.Event()

        def append(self, records, meta=None):
            self.appending.set()
            self.release.wait()
            super().append(records, meta)

    journal = HeldJournal()
    store = FakeStore()
    dispatcher = core(store, journal)
    paced, pacing = [], threading.Event()
    pace = dispatcher._pace
    dispatcher._pace = lambda: (paced.append(len(dispatcher._queue)), pacing.set(), pace())

    dispatcher.put_stepped(METRIC, "x", 0.0, 1)
    dispatcher._wake.set()
    assert journal.appending.wait(WAIT)  # the writer is stuck in the journal

    returned = threading.Event()
    queued_after = []

    def caller():
        for i in range(1, 12):  # the 11th record passes HIGH_WATER
            dispatcher.put_stepped(METRIC, "x", float(i), 1)
        queued_after.append(len(dispatcher._queue))
        returned.set()

    thread = threading.Thread(target=caller)
    thread.start()
    assert pacing.wait(WAIT)  # reached once the caller queued its 11th record
    assert paced == [11]
    assert not returned.is_set()  # held back while the journal does not move

    journal.release.set()
    thread.join(WAIT)
    assert returned.is_set()
    assert queued_after[0] < 5
    assert dispatcher.flush(WAIT)
    assert store.values("x") == [float(i) for i in range(12)]


@pytest.mark.parametrize("own_fallback", [False, True], ids=["default", "session-fallback"])
def test_a_journal_that_fails_spills_to_memory_and_nothing_is_lost(core, own_fallback,
                                                                     warnings_said):
    told = []

    def fallback(journal, exc):
        told.append(exc)
        return SpilledJournal(journal)

    store = FakeStore()
    journal = FullDiskJournal(accept=1)
    dispatcher = core(store, journal, fallback=fallback if own_fallback else None)
    dispatcher.put_stepped(METRIC, "x", 0.0, 1).wait(WAIT)  # journaled on "disk"

    store.held["log_batch"] = threading.Event()  # the store is slow from now on
    handles = [dispatcher.put_stepped(METRIC, "x", float(i), 1) for i in range(1, 11)]
    dispatcher.commit()
    assert isinstance(dispatcher.journal, SpilledJournal)
    assert dispatcher.whereabouts()["memory"] == 10  # in RAM, counted: not lost silently
    if own_fallback:
        assert [str(exc) for exc in told] == ["database or disk is full"]
    else:
        assert any("records go on in memory" in line and "disk is full" in line
                   for line in warnings_said)

    store.held["log_batch"].set()
    for handle in handles:
        handle.wait(WAIT)
    assert store.values("x") == [float(i) for i in range(11)]
    assert dispatcher.whereabouts() == {"journal": 0, "memory": 0, "rejected": 0, "stale": 0}


@pytest.mark.parametrize("spilled_first", [False, True], ids=["delivered-first", "spilled-first"])
def test_delivered_records_a_full_disk_keeps_are_not_said_undelivered(core, spilled_first):
    """The disk full, a delivered record cannot be deleted from the journal: it is counted
    as delivered and still there (stale), not as one to deliver, whether it was delivered
    before or after the journal spilled to memory."""
    store = FakeStore()
    journal = FullDiskJournal(accept=1, full_settles=True)
    dispatcher = core(store, journal)
    if spilled_first:
        store.held["log_batch"] = threading.Event()
    first = dispatcher.put_stepped(METRIC, "x", 0.0, 1)
    dispatcher.commit()  # journaled on "disk"
    if not spilled_first:
        first.wait(WAIT)  # delivered; its deletion failed
    handles = [dispatcher.put_stepped(METRIC, "x", float(i), 1) for i in range(1, 11)]
    dispatcher.commit()
    assert isinstance(dispatcher.journal, SpilledJournal)
    if spilled_first:
        store.held["log_batch"].set()
    for handle in [first, *handles]:
        handle.wait(WAIT)
    assert store.values("x") == [float(i) for i in range(11)]
    assert dispatcher.whereabouts() == {"journal": 0, "memory": 0, "rejected": 0, "stale": 1}


def test_refused_credentials_make_wait_return_with_one_warning(core, warnings_said):
    store = FakeStore()
    store.refuse = lambda op, args: unauthorized() if op == "log_batch" else None
    dispatcher = core(store)
    first = dispatcher.put_stepped(METRIC, "x", 1.0, 1)
    assert first.wait() is None  # returns instead of hanging for AZML_WAIT_TIMEOUT
    assert not first.done()
    second = dispatcher.put_stepped(METRIC, "x", 2.0, 1)
    assert second.wait() is None
    assert dispatcher.flush() is False  # no point waiting for a person to fix them

    refused = [line for line in warnings_said if "refused the credentials" in line]
    assert len(refused) == 1 and "401" in refused[0]
    dispatcher.commit()
    assert [r[3] for r in dispatcher.journal.pending(0, 10)] == [1.0, 2.0]  # kept for sync
    assert store.values("x") == []


def test_a_sender_that_cannot_start_fails_every_handle_and_keeps_the_records(core,
                                                                           warnings_said):
    store = FakeStore()
    store.refuse = lambda op, args: rejected() if op == "open_run" else None
    dispatcher = core(store)
    handles = [dispatcher.put_stepped(METRIC, "x", float(i), 1) for i in range(3)]
    for handle in handles:
        with pytest.raises(Exception) as raised:
            handle.wait(WAIT)
        assert store_error(raised.value).error_code == "INVALID_PARAMETER_VALUE"
    assert store_error(dispatcher.fatal).error_code == "INVALID_PARAMETER_VALUE"
    assert [r[3] for r in dispatcher.journal.pending(0, 10)] == [0.0, 1.0, 2.0]
    assert len([line for line in warnings_said if "cannot log to this run" in line]) == 1
    assert [call[0] for call in store.calls] == ["open_run"]  # not retried, nothing sent


def test_a_slow_request_does_not_keep_the_next_ones_waiting(core, monkeypatch):
    """Two requests in flight, the first one slow: the third is sent as soon as the second
    is done, not once the first is; completions still go out in order."""
    from azml_compat._core import sender as _sender

    monkeypatch.setattr(_sender, "recall", lambda path: {"limit": 2, "rates": {}})
    release = threading.Event()

    class SlowFirst(FakeStore):
        def log_batch(self, run_id, metrics, tags):
            if metrics and metrics[0][4] == 0:  # the request with step 0
                assert release.wait(WAIT)
            super().log_batch(run_id, metrics, tags)

    store = SlowFirst(concurrency=2)
    store.held["open_run"] = threading.Event()  # every point journaled before the first send
    dispatcher = core(store)
    handles = [dispatcher.put_stepped(METRIC, "x", float(i), 1) for i in range(3000)]
    deadline = time.monotonic() + WAIT
    while dispatcher._journaled < 3000 and time.monotonic() < deadline:
        time.sleep(0.01)
    store.held["open_run"].set()
    try:
        while len(store.values("x")) < 2000 and time.monotonic() < deadline:
            time.sleep(0.01)
        # The first thousand are still on their way; the second and third thousands arrived.
        assert sorted(store.values("x")) == [float(i) for i in range(1000, 3000)]
        assert not any(handle.done() for handle in handles)  # the watermark waits in order
    finally:
        release.set()
    assert dispatcher.flush(WAIT)
    assert sorted(store.values("x")) == [float(i) for i in range(3000)]
    assert all(handle.done() for handle in handles)


def test_the_next_read_of_the_journal_does_not_wait_for_the_last_requests_of_this_one(
        core, monkeypatch):
    """The sender reads the journal ``SEND_WINDOW`` records at a time. The requests of the
    next read go out while the last ones of this read are still in flight: waiting for them
    emptied the pipeline at every boundary (``Sender.deliver``)."""
    from azml_compat._consts import SEND_WINDOW
    from azml_compat._core import sender as _sender

    monkeypatch.setattr(_sender, "recall", lambda path: {"limit": 2, "rates": {}})
    release = threading.Event()
    last_of_first_read = SEND_WINDOW - 1000  # the step starting the read's last request

    class SlowBoundary(FakeStore):
        def log_batch(self, run_id, metrics, tags):
            if metrics and metrics[0][4] == last_of_first_read:
                assert release.wait(WAIT)
            super().log_batch(run_id, metrics, tags)

    store = SlowBoundary(concurrency=2)
    store.held["open_run"] = threading.Event()  # every point journaled before the first send
    dispatcher = core(store)
    total = 2 * SEND_WINDOW
    for i in range(total):
        dispatcher.put_stepped(METRIC, "x", float(i), 1)
    deadline = time.monotonic() + WAIT
    while dispatcher._journaled < total and time.monotonic() < deadline:
        time.sleep(0.01)
    store.held["open_run"].set()
    try:
        deadline = time.monotonic() + 10  # the first read's other requests take milliseconds
        while (not any(v >= SEND_WINDOW for v in store.values("x"))
               and time.monotonic() < deadline):
            time.sleep(0.01)
        arrived = store.values("x")
        assert any(v >= SEND_WINDOW for v in arrived), "the next read waited for this one"
        assert not any(last_of_first_read <= v < SEND_WINDOW for v in arrived)  # still held
    finally:
        release.set()
    assert dispatcher.flush(WAIT)
    assert sorted(store.values("x")) == [float(i) for i in range(total)]


def test_the_tables_list_keeps_what_the_store_and_earlier_tags_listed(core):
    """``mlflow.loggedArtifacts`` (latest wins) is sent as the union of what the run already
    holds, read once, and every list sent since: a process listing only its own tables does
    not hide another's."""
    import json

    listed = "mlflow.loggedArtifacts"

    def entry(path):
        return {"path": path, "type": "table"}

    store = FakeStore()
    store.events.append(("tag", listed, json.dumps([entry("killed parent's.json")])))
    dispatcher = core(store)
    dispatcher.put(TAG, listed, json.dumps([entry("a.json")]))
    dispatcher.put(TAG, listed, json.dumps([entry("b.json"), entry("a.json")]))
    dispatcher.put(TAG, listed, "not a list")  # someone else's value: passed on as it is
    assert dispatcher.flush(WAIT)
    sent = [json.loads(v) if v != "not a list" else v for k, v in
            [(e[1], e[2]) for e in store.events[1:] if e[0] == "tag"]]
    assert sent == [[entry("killed parent's.json"), entry("a.json")],
                    [entry("killed parent's.json"), entry("a.json"), entry("b.json")],
                    "not a list"]
    assert [c for c in store.calls if c[0] == "run_tag"] == [("run_tag", "run-1", listed)]


def test_a_run_gone_when_its_tables_list_is_read_is_said_as_a_run_gone(core, warnings_said):
    """The one read behind the tables list meets a deleted run: the batch after it meets it
    too and the dispatcher says so once, keeping the records (not a delivery error retried
    every second)."""
    store = FakeStore()
    store.refuse = lambda op, args: run_gone() if op in ("run_tag", "log_batch") else None
    dispatcher = core(store)
    handle = dispatcher.put(TAG, "mlflow.loggedArtifacts", '[{"path": "t.json", "type": "table"}]')
    with pytest.raises(Exception) as raised:  # noqa: B017 - the store's error is checked below
        handle.wait(WAIT)
    assert store_error(raised.value).error_code == "RESOURCE_DOES_NOT_EXIST"
    assert dispatcher.vanished is not None
    assert not any("delivery error" in line for line in warnings_said), warnings_said
    assert dispatcher.journal.in_memory() == 1  # kept for azml sync --to-new-run
