"""Packing records into log_batch requests: MLflow's limits, order, completion watermarks."""
from azml_compat._core.batching import ARTIFACT, END, MAX_BYTES, MAX_TAGS, METRIC, SERIES, TAG, Batch, pack


def test_metrics_are_split_at_1000_and_order_kept():
    records = [(i + 1, METRIC, "m", float(i), 0, i) for i in range(2500)]
    requests = list(pack(records))
    assert [len(r.metrics) for r in requests] == [1000, 1000, 500]
    steps = [m[4] for r in requests for m in r.metrics]
    assert steps == list(range(2500))
    assert [r.upto for r in requests] == [1000, 2000, 2500]


def test_a_long_series_completes_only_with_its_last_chunk():
    records = [(1, METRIC, "a", 1.0, 0, 0), (2, SERIES, "s", [float(i) for i in range(2500)], 0, 10),
               (3, METRIC, "b", 1.0, 0, 0)]
    requests = list(pack(records))
    assert [r.upto for r in requests] == [1, 1, 3]
    series_steps = [m[4] for r in requests for m in r.metrics if m[1] == "s"]
    assert series_steps == list(range(10, 2510))


def test_tags_limit_and_repeated_key_keep_order():
    records = [(i + 1, TAG, f"t{i}", "v") for i in range(150)]
    assert [len(r.tags) for r in pack(records)] == [MAX_TAGS, 50]
    records = [(1, TAG, "t", "first"), (2, TAG, "t", "second")]
    requests = list(pack(records))
    assert [r.tags for r in requests] == [[(1, "t", "first")], [(2, "t", "second")]]


def test_byte_limit_with_long_tags_and_keys():
    key = "k" * 240
    records = [(i + 1, METRIC, key, 1.0, 0, i) for i in range(900)]
    records += [(1000 + i, TAG, f"t{i}", "v" * 8000) for i in range(100)]
    requests = list(pack(records))
    assert len(requests) > 1  # 900 long metrics + 100 long tags fit the counts, not the bytes
    assert all(r.size <= MAX_BYTES for r in requests)
    assert sum(len(r) for r in requests) == 1000


def test_uploads_travel_alone_between_batches():
    records = [(1, METRIC, "m", 1.0, 0, 0), (2, ARTIFACT, "a.txt", b"x"), (3, TAG, "t", "v"),
               (4, END, "FINISHED", 0)]
    requests = list(pack(records))
    kinds = [type(r).__name__ for r in requests]
    assert kinds == ["Batch", "Single", "Batch", "Single"]
    assert [r.upto for r in requests] == [1, 2, 3, 4]


def test_split_isolates_halves():
    batch = Batch(metrics=[(i, "m", 1.0, 0, i) for i in range(1, 4)], tags=[(4, "t", "v")], upto=4)
    first, second = batch.split()
    assert len(first) + len(second) == 4
    assert first.seqs() | second.seqs() == {1, 2, 3, 4}
    assert not first.seqs() & second.seqs()
