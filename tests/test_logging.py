"""log() and upload() end to end, in-process, on the SQLite default and on a real server."""
import json
import math
import threading

import mlflow
import numpy as np
import pandas as pd
import pytest

from azml_compat._core.records import NAME_TAG_PREFIX


def persisted(store, logger):
    assert logger.flush(120), "records not persisted in time"
    return store.client.get_run(logger.wait_for_run(60))


def test_scalars_become_metric_points(store, make_logger):
    logger = make_logger()
    values = {"int": 7, "float": 0.25, "np.float32": np.float32(1.5), "np.int64": np.int64(9),
              "np.uint8": np.uint8(3), "0-d": np.array(2.5), "bool": True, "np.bool_": np.bool_(False),
              "big int": 2**70}
    for name, value in values.items():
        logger.log(name, value)
    run = persisted(store, logger)
    assert run.data.metrics == {
        "int": 7.0, "float": 0.25, "np.float32": 1.5, "np.int64": 9.0, "np.uint8": 3.0, "0-d": 2.5,
        "bool": 1.0, "np.bool_": 0.0, "big int": float(2**70)}


def test_nan_and_inf_are_stored(store, make_logger):
    logger = make_logger()
    logger.log("nan", float("nan"))
    logger.log("inf", float("inf"))
    logger.log("-inf", -np.inf)
    metrics = persisted(store, logger).data.metrics
    assert math.isnan(metrics["nan"])
    assert metrics["inf"] > 1e300 and metrics["-inf"] < -1e300  # SQL stores clamp inf


def test_repeated_scalar_is_a_series_with_call_time_stamps(store, make_logger):
    logger = make_logger()
    for i in range(5):
        logger.log("loss", 1.0 / (i + 1))
    run = persisted(store, logger)
    history = store.history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 1, 2, 3, 4]
    assert [m.value for m in history] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    stamps = [m.timestamp for m in history]
    assert stamps == sorted(stamps)
    assert run.info.start_time - 5_000 <= stamps[0] <= stamps[-1]


def test_lists_are_stepped_metrics_continuing_the_counter(store, make_logger):
    logger = make_logger()
    logger.log("chart data points", [1, 3, 5, 10, 6, 4])
    logger.log("chart data points", np.array([7.5, 8.5]))
    logger.log("chart data points", 9)
    logger.log("tuple", (True, 2))
    run = persisted(store, logger)
    history = store.history(run.info.run_id, "chart data points")
    assert [(m.step, m.value) for m in history] == [
        (0, 1), (1, 3), (2, 5), (3, 10), (4, 6), (5, 4), (6, 7.5), (7, 8.5), (8, 9)]
    assert [m.value for m in store.history(run.info.run_id, "tuple")] == [1.0, 2.0]


def test_long_list_is_split_into_batches(store, make_logger):
    logger = make_logger()
    logger.log("long", list(range(2500))).wait(120)
    run = persisted(store, logger)
    history = store.history(run.info.run_id, "long")
    assert [m.step for m in history] == list(range(2500))
    assert [m.value for m in history] == [float(i) for i in range(2500)]


def test_strings_become_tags_latest_wins(store, make_logger):
    logger = make_logger()
    logger.log("Model", "first")
    logger.log("Model", "second")
    logger.log("long text", "x" * 9000)
    run = persisted(store, logger)
    assert run.data.tags["Model"] == "second"
    assert len(run.data.tags["long text"]) == 8000
    assert "truncated" in run.data.tags["long text"]
    full = store.artifact_bytes(run.info.run_id, "metrics/long text.txt")
    assert full == b"x" * 9000


def test_documents_become_json_artifacts(store, make_logger):
    logger = make_logger()
    logger.log("predictions", ["cat", "dog"])
    logger.log("params", {"lr": 0.1, "layers": [2, 3], "bad": float("nan")})
    logger.log("table (%)", pd.DataFrame({"x": [1, 2], "y": [0.5, None]}))
    logger.log("columns", {"a": [1, 2], "b": ["u", "v"]})
    logger.log("col", pd.Series([3, 4], name="c"))
    run = persisted(store, logger)
    run_id = run.info.run_id
    doc = json.loads(store.artifact_bytes(run_id, "metrics/predictions.json"))
    assert doc["name"] == "predictions" and doc["type"] == "list" and doc["value"] == ["cat", "dog"]
    doc = json.loads(store.artifact_bytes(run_id, "metrics/params.json"))
    assert doc["value"] == {"lr": 0.1, "layers": [2, 3], "bad": None}
    # A DataFrame and a dict of equal-length lists: MLflow tables, as its log_table writes
    # them (the UI draws them, mlflow.load_table reads them).
    assert json.loads(store.artifact_bytes(run_id, "metrics/table _pct_.json")) == {
        "columns": ["x", "y"], "data": [[1, 0.5], [2, None]]}
    assert json.loads(run.data.tags["mlflow.loggedArtifacts"]) == [
        {"path": "metrics/table _pct_.json", "type": "table"},
        {"path": "metrics/columns.json", "type": "table"}]
    with pytest.MonkeyPatch.context() as patch:  # load_table reads the fluent API's store
        patch.setenv("MLFLOW_TRACKING_URI", store.uri)
        patch.setenv("MLFLOW_EXPERIMENT_ID", run.info.experiment_id)
        loaded = mlflow.load_table("metrics/columns.json", run_ids=[run_id])
    assert loaded["a"].tolist() == [1, 2] and loaded["b"].tolist() == ["u", "v"]
    doc = json.loads(store.artifact_bytes(run_id, "metrics/col.json"))
    assert doc["type"] == "Series" and doc["value"]["data"] == [3, 4]
    assert isinstance(doc["timestamp"], int)


@pytest.mark.parametrize("value", [None, [[1], [2]], [1, "a"], object(), b"\xff"])
def test_bad_values_raise_at_the_call_and_lose_nothing(store, make_logger, value):
    logger = make_logger()
    logger.log("before", 1)
    with pytest.raises(TypeError, match="'bad'"):
        logger.log("bad", value)
    logger.log("after", 2)
    run = persisted(store, logger)
    assert run.data.metrics == {"before": 1.0, "after": 2.0}


def test_empty_list_logs_nothing(store, make_logger):
    logger = make_logger()
    handle = logger.log("empty", [])
    assert handle.done()
    handle.wait()
    logger.log("x", 1)
    run = persisted(store, logger)
    assert "empty" not in run.data.metrics


def test_names_mlflow_rejects_are_mapped_and_the_original_kept(store, make_logger):
    logger = make_logger()
    logger.log("accuracy (%)", 91)
    logger.log("a,b", 1)
    logger.log("a;b", 2)
    logger.log("trailing space ", 3)
    long_name = "very long metric name " * 20  # 440 characters
    logger.log(long_name, 4)
    run = persisted(store, logger)
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["accuracy _pct_"] == 91.0
    assert tags[NAME_TAG_PREFIX + "accuracy _pct_"] == "accuracy (%)"
    assert metrics["a_b"] == 1.0
    other = [k for k in metrics if k.startswith("a_b-")]
    assert len(other) == 1 and metrics[other[0]] == 2.0 and tags[NAME_TAG_PREFIX + other[0]] == "a;b"
    assert metrics["trailing space "] == 3.0
    (long_key,) = [k for k, v in tags.items() if v == long_name and k.startswith(NAME_TAG_PREFIX)]
    assert metrics[long_key[len(NAME_TAG_PREFIX):]] == 4.0


def test_wait_returns_after_persisting_in_order(store, make_logger):
    logger = make_logger()
    handles = [logger.log("seq", i) for i in range(200)]
    handles[99].wait(120)
    assert all(h.done() for h in handles[:100])
    run_id = logger.wait_for_run(60)
    # everything up to the waited record is readable right now
    assert len(store.client.get_metric_history(run_id, "seq")) >= 100
    handles[-1].wait(120)
    assert len(store.client.get_metric_history(run_id, "seq")) == 200


def test_upload_stores_exact_path(store, make_logger):
    logger = make_logger()
    logger.upload("artifact/path", "contents").wait(120)
    logger.upload("bin/data.bin", bytes(range(256))).wait(120)
    logger.upload("win\\style.txt", "w")
    run = persisted(store, logger)
    assert store.artifact_bytes(run.info.run_id, "artifact/path") == b"contents"
    assert store.artifact_bytes(run.info.run_id, "bin/data.bin") == bytes(range(256))
    assert store.artifact_bytes(run.info.run_id, "win/style.txt") == b"w"


@pytest.mark.parametrize("path", ["/etc/passwd", "../escape.txt", "a/../../b", "", "C:\\x.txt", "a/.."])
def test_upload_refuses_paths_outside_the_run(store, make_logger, path):
    logger = make_logger()
    with pytest.raises(ValueError) as info:
        logger.upload(path, "x")
    assert repr(path) in str(info.value)
    logger.log("still logging", 1)
    run = persisted(store, logger)
    assert run.data.metrics == {"still logging": 1.0}
    assert store.artifact_paths(run.info.run_id) == set()


def test_upload_content_type_is_checked(store, make_logger):
    logger = make_logger()
    with pytest.raises(TypeError, match="content must be str or bytes"):
        logger.upload("a.txt", 42)


def test_many_threads_logging_at_once_lose_nothing(store, make_logger):
    logger = make_logger()
    threads, per_thread = 8, 500

    def work(t):
        for i in range(per_thread):
            logger.log(f"thread {t}", i)
            logger.log("shared", i)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    run = persisted(store, logger)
    run_id = run.info.run_id
    for t in range(threads):
        points = [m.value for m in store.history(run_id, f"thread {t}")]
        assert points == [float(i) for i in range(per_thread)]
    shared = store.history(run_id, "shared")
    assert [m.step for m in shared] == list(range(threads * per_thread))  # no step given twice


def test_a_rejected_record_fails_only_its_own_handle(store, make_logger):
    logger = make_logger()
    run_id = logger.wait_for_run(60)
    # The logger maps every name to a valid key, so hand the dispatcher a key MLflow refuses.
    good = logger.log("good", 1)
    bad = logger._put("tag", "bad key,with comma", "v")  # bypasses our mapping on purpose
    also_good = logger.log("good", 2)
    also_good.wait(120)
    good.wait(120)
    with pytest.raises(Exception, match="bad key,with comma"):
        bad.wait(120)
    assert [m.value for m in store.history(run_id, "good")] == [1.0, 2.0]


def test_tags_keep_their_order_among_pipelined_batches(store, make_logger):
    logger = make_logger()
    for i in range(10):
        logger.log("m", list(range(1500)))  # two batches each, sent concurrently to a server
        logger.log("phase", f"p{i}")
    run = persisted(store, logger)
    assert run.data.tags["phase"] == "p9"
    assert [m.step for m in store.history(run.info.run_id, "m")] == list(range(15000))
