"""One error story: ``wait()`` raises ``RecordRejected`` (the store's error as its cause) on every
backend, a new object for every wait; user-facing lines reach stderr once, with one prefix."""
import logging
import textwrap
import threading
import uuid

import pytest

import azml_compat

HEADER = "from azureml.logging import get_azureml_logger\n"
LONG_NAME = "x" * 300 + ".txt"  # no file system stores a name this long: refused on every store


# -- RecordRejected on every backend -------------------------------------------------------------
def test_wait_on_a_tag_the_store_refuses_raises_record_rejected(store, make_logger):
    logger = make_logger()
    logger.wait_for_run(120)
    # The logger maps every name to a valid key, so hand the dispatcher a key MLflow refuses.
    bad = logger._put("tag", "bad key,with comma", "v")
    logger.log("good", 1).wait(120)
    with pytest.raises(azml_compat.RecordRejected) as info:
        bad.wait(120)
    rejected = info.value
    assert "tag 'bad key,with comma'" in str(rejected) and "\n" not in str(rejected)
    assert rejected.error_code == "INVALID_PARAMETER_VALUE"
    from azml_compat._core.stores.base import StoreError

    # Both answer with MLflow's own rule and words: the server over REST (its 400), the SQLite
    # default through the sqlite3 store, which checks keys as MLflow's store does (no MLflow).
    assert isinstance(rejected.__cause__, StoreError)
    if store.kind == "server":
        assert rejected.status == 400
    assert "Names may only contain alphanumerics" in str(rejected.__cause__)


def test_wait_on_a_file_that_vanished_raises_record_rejected(store, make_logger, tmp_path):
    logger = make_logger()
    gone = logger._session.dispatcher.put("file", "outputs", str(tmp_path / "gone.bin"))
    logger.log("after", 1).wait(120)
    with pytest.raises(azml_compat.RecordRejected, match="file 'outputs/gone.bin'") as info:
        gone.wait(1)
    assert info.value.status is None and info.value.error_code is None
    assert "cannot read" in str(info.value.__cause__)


def test_a_legacy_script_catches_record_rejected_by_name(store):
    proc = store.run_script(HEADER + textwrap.dedent(f"""
        import azml_compat
        logger = get_azureml_logger()
        handle = logger.upload({LONG_NAME!r}, "text")
        try:
            handle.wait()
        except azml_compat.RecordRejected as exc:
            print("caught", type(exc).__module__, type(exc.__cause__).__name__, exc.status,
                  exc.error_code, "|", exc)
        logger.log("after", 2).wait()
    """), HOME=str(store.home), timeout=240)
    (caught,) = [line for line in proc.stdout.splitlines() if line.startswith("caught")]
    assert caught.startswith("caught azml_compat PermanentError None None |"), caught
    assert f"artifact '{LONG_NAME}'" in caught
    assert store.only_run().data.metrics == {"after": 2.0}


def test_every_wait_raises_its_own_object(store, make_logger):
    """Two handles of one failed request, and two threads waiting on one handle, each get an
    exception object of their own: one object raised in several threads gets its traceback
    rewritten under the others' feet."""
    logger = make_logger(run_id=uuid.uuid4().hex)  # a run the store does not have
    first, second = logger.log("a", 1), logger.log("b", 2)
    caught = []

    def wait(handle):
        try:
            handle.wait(120)
        except azml_compat.RecordRejected as exc:
            caught.append(exc)

    waiters = [threading.Thread(target=wait, args=(h,)) for h in (first, first, second)]
    for waiter in waiters:
        waiter.start()
    for waiter in waiters:
        waiter.join(180)
    assert len(caught) == 3 and len({id(exc) for exc in caught}) == 3
    assert len({id(exc.__cause__) for exc in caught}) == 1  # the store's one answer, shared
    assert all(exc.error_code == "RESOURCE_DOES_NOT_EXIST" for exc in caught)
    assert sum("metric 'b'" in str(exc) for exc in caught) == 1
    assert all("azml sync" in str(exc) for exc in caught)  # not refused one by one: kept


# -- the reporter ----------------------------------------------------------------------------------
def test_reporter_writes_one_prefixed_line_to_the_current_stderr(capsys):
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record)

    root = logging.getLogger()
    keep = Keep()
    root.addHandler(keep)
    try:
        logging.getLogger("azml").warning("store %s is down", "http://me:s3cret@host:1")
    finally:
        root.removeHandler(keep)
    assert capsys.readouterr().err == "azml: store http://me:***@host:1 is down\n"
    assert seen == []  # not handed on to the script's own handlers as well


def test_each_line_is_printed_once_with_one_prefix_under_basic_config(sqlite_store):
    proc = sqlite_store.run_script(HEADER + textwrap.dedent(f"""
        import logging
        logging.basicConfig(level=logging.INFO)
        logger = get_azureml_logger()
        logger.upload({LONG_NAME!r}, "text")
        open("outputs/big.bin", "wb").write(b"x" * 100)
        logger.log("m", 1)
    """), AZML_MAX_OUTPUT_BYTES=10, HOME=str(sqlite_store.home), timeout=240)
    lines = [line for line in proc.stderr.splitlines() if "azml" in line]
    said = {"not uploading 1 file(s)": 0, "rejected artifact": 0, "refused by": 0}
    for line in lines:
        assert line.startswith("azml: ") and not line.startswith("azml: azml:"), proc.stderr
        for words in said:
            said[words] += words in line
    assert said == dict.fromkeys(said, 1), proc.stderr
