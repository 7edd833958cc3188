"""The ./logs watcher's decisions, pass by pass, behind a fake dispatcher (records are kept,
delivered only when the test says): one record on its way per file, its copy rewritten while
the store does not take it, nothing sent twice, the end sending only what is not on its way."""
import os
import time

from azml_compat._exceptions import RecordRejected
from azml_compat._core.livelogs import LiveLogs
from azml_compat._core.records import FILE


class _Handle:
    def __init__(self) -> None:
        self.delivered = self.refused = False

    def done(self) -> bool:
        return self.delivered or self.refused

    def wait(self, timeout=None) -> None:
        if self.refused:
            raise RecordRejected("refused")


class _Journal:
    def __init__(self, files_dir: str) -> None:
        self.files_dir = files_dir


class _Dispatcher:
    def __init__(self, files_dir: str) -> None:
        self.journal = _Journal(files_dir)
        self.records: list[tuple] = []

    def put(self, *record) -> _Handle:
        handle = _Handle()
        self.records.append((record, handle))
        return handle

    def deliver(self) -> None:
        for _, handle in self.records:
            handle.delivered = True


def _write(path, text: str, age: float = 10.0) -> None:
    """``text`` into ``path``, last modified ``age`` s ago (quiet already), a new mtime each time."""
    path.write_text(text)
    when = time.time() - age + _write.tick
    _write.tick += 0.001
    os.utime(path, (when, when))


_write.tick = 0.0


def _setup(tmp_path):
    logs = tmp_path / "project" / "logs"
    logs.mkdir(parents=True)
    dispatcher = _Dispatcher(str(tmp_path / "journal.files"))
    return logs, dispatcher, LiveLogs(str(logs), dispatcher, max_bytes=1 << 20, since_ms=0)


def _copy_of(record) -> str:
    (kind, artifact_dir, source) = record
    assert kind == FILE and artifact_dir == "logs"
    with open(source) as stream:
        return stream.read()


def test_a_store_that_takes_nothing_gets_one_record_per_file_holding_the_latest_state(tmp_path):
    logs, dispatcher, watcher = _setup(tmp_path)
    log = logs / "train.log"
    for text in ("v1\n", "v1\nv2\n", "v1\nv2\nv3\n"):
        _write(log, text)
        watcher._pass()
    (record, handle), = dispatcher.records
    assert _copy_of(record) == "v1\nv2\nv3\n"  # the journal's copy, rewritten in place
    assert record[2].startswith(str(tmp_path / "journal.files"))
    copied = os.stat(record[2]).st_ino
    watcher._pass()  # the file did not change: its copy is not written again
    assert os.stat(record[2]).st_ino == copied
    # Delivered: the copy may have been read before its last rewrite, so the state is sent
    # once more, then nothing while the file stays as it is.
    dispatcher.deliver()
    watcher._pass()
    watcher._pass()
    assert len(dispatcher.records) == 2 and _copy_of(dispatcher.records[1][0]) == "v1\nv2\nv3\n"
    dispatcher.deliver()
    watcher._pass()
    assert len(dispatcher.records) == 2


def test_a_file_still_being_written_waits_until_quiet_or_until_its_change_is_old(tmp_path):
    logs, dispatcher, watcher = _setup(tmp_path)
    (logs / "busy.log").write_text("line\n")  # modified just now: not quiet
    watcher._pass()
    assert dispatcher.records == []
    watcher._files[str(logs / "busy.log")].changed_at -= 60  # its change waited long enough
    watcher._pass()
    assert len(dispatcher.records) == 1


def test_the_end_sends_only_what_is_not_stored_or_on_its_way(tmp_path):
    logs, dispatcher, watcher = _setup(tmp_path)
    _write(logs / "kept.log", "a\n")
    _write(logs / "pending.log", "b\n")
    watcher._pass()
    assert len(dispatcher.records) == 2
    dispatcher.records[0][1].delivered = True  # kept.log is stored; pending.log on its way
    _write(logs / "late.log", "c\n", age=0.0)  # never quiet before the end
    queued = watcher.finish()
    assert [os.path.basename(path) for _, path, _ in queued] == ["late.log"]
    (kind, artifact_dir, source), _ = dispatcher.records[-1]
    assert source == str(logs / "late.log")  # the file itself: the journal copies it at close
    watcher._pass()  # stopped: the end was the last look
    assert len(dispatcher.records) == 3


def test_a_refused_record_is_sent_again_and_an_earlier_runs_file_never(tmp_path):
    logs, dispatcher, watcher = _setup(tmp_path)
    watcher._since_ms = int((time.time() - 100) * 1000)  # the run started 100 s ago
    _write(logs / "old.log", "earlier run\n", age=3600)
    _write(logs / "new.log", "this run\n")
    watcher._pass()
    (record, handle), = dispatcher.records
    assert os.path.basename(record[2]) == "new.log"
    handle.refused = True
    watcher._pass()
    assert len(dispatcher.records) == 2
