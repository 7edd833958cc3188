"""``InFlight`` finds the number of requests in flight a server absorbs fastest, and a series
record resumes where its delivery stopped in every journal."""
from pathlib import Path

import pytest

from azml_compat._core.batching import pack
from azml_compat._core.journal import Journal, MemoryJournal
from azml_compat._core.records import END, SERIES
from azml_compat._core.inflight import InFlight, memory_path, recall, remember


def settle_on(window: InFlight, rate_at, epochs: int = 60) -> list[int]:
    """Drive ``window`` against a server whose points/s at each level is ``rate_at(level)``:
    the levels it used, one per epoch."""
    now, used = 0.0, []
    window.resume(now)
    for _ in range(epochs):
        used.append(window.limit)
        for _ in range(InFlight.EPOCH):
            now += 1000 / rate_at(window.limit)
            window.completed(1000, now)
    return used


@pytest.mark.parametrize("best", [1, 2, 4])
def test_the_window_settles_where_the_server_is_fastest(best):
    used = settle_on(InFlight(4), lambda level: 10_000 - 2_000 * abs(level - best))
    tail = used[len(used) // 2:]
    assert tail.count(best) >= len(tail) * 0.7, used  # the rest: re-measuring a neighbour


def test_time_outside_deliver_is_not_counted():
    window = InFlight(4)
    window.resume(0.0)
    for i in range(InFlight.EPOCH - 1):
        window.completed(1000, 0.1 * (i + 1))
    window.pause(0.5)
    window.resume(100.0)  # idle for 99.5 s between two sends: no slower for it
    window.completed(1000, 100.1)
    assert window.rates[1] == pytest.approx(6000 / 0.6)


def test_a_window_starts_where_the_last_process_left_it(tmp_path):
    first = InFlight(4)
    used = settle_on(first, lambda level: 10_000 - 2_000 * abs(level - 3), epochs=12)
    assert used[0] == 1 and first.limit in (2, 3, 4)
    path = memory_path(str(tmp_path), "http://alice:pw@host:5000")
    remember(path, first)
    second = InFlight(4, recall(path))
    assert second.limit == first.limit and second.rates == first.rates
    # It still measures and moves: a server now fastest at 1 brings it down.
    assert settle_on(second, lambda level: 12_000 - 3_000 * (level - 1), epochs=12)[-1] == 1


@pytest.mark.parametrize("content", [
    "", "{", "[]", '{"limit": "many", "at": 1e12}', '{"limit": 9, "at": 1e12}',
    '{"limit": 2, "rates": {"x": 1}, "at": 1e12}', '{"limit": 2, "rates": [], "at": 1e12}',
    '{"limit": 2, "rates": {"2": 5000}}',  # when it was written is unknown
    '{"limit": 2, "rates": {"2": 5000}, "at": 0}',  # written long ago
])
def test_a_missing_old_or_malformed_memory_means_starting_at_one(tmp_path, content):
    path = tmp_path / "in-flight-x.json"
    path.write_text(content)
    assert InFlight(4, recall(str(path))).limit == 1
    assert InFlight(4, recall(str(tmp_path / "absent.json"))).limit == 1


def test_the_memory_names_no_credential_and_nothing_unmeasured_is_kept(tmp_path):
    uri = "https://alice:S3cret-pw@host:5000/mlflow"
    path = memory_path(str(tmp_path), uri)
    assert path == memory_path(str(tmp_path), "https://alice:other@host:5000/mlflow")
    assert path != memory_path(str(tmp_path), "https://host:5001/mlflow")
    assert "S3cret" not in path and "host" not in path
    remember(path, InFlight(4))  # nothing measured: nothing to say
    assert not (tmp_path / "in-flight").exists()
    window = InFlight(4)
    settle_on(window, lambda level: 10_000, epochs=2)
    remember(path, window)
    assert [str(p) for p in (tmp_path / "in-flight").iterdir()] == [path]
    text = Path(path).read_text()
    assert "S3cret" not in text and "host" not in text and '"limit"' in text


@pytest.mark.parametrize("kind", ["disk", "memory"])
def test_a_series_resumes_after_the_points_delivered(kind, tmp_path):
    journal = (Journal.create(str(tmp_path), "unit", {"tracking_uri": "fake://"})
               if kind == "disk" else MemoryJournal())
    journal.append([(1, SERIES, "big", [float(i) for i in range(2500)], 7, 100),
                    (2, END, "FINISHED", 9)])
    first = next(iter(pack(journal.pending(0, 10))))
    assert first.partial == (1, 1100) and first.upto == 0
    journal.advance(*first.partial)
    (series, end) = journal.pending(0, 10)
    assert series == (1, SERIES, "big", [float(i) for i in range(1000, 2500)], 7, 1100)
    assert end[1] == END
    second = next(iter(pack([series])))
    journal.advance(*second.partial)  # counted from the record's first step, not re-added
    assert journal.pending(0, 1)[0][5] == 2100 and len(journal.pending(0, 1)[0][3]) == 500
    if kind == "disk":
        assert journal.points() == 500
    journal.settle(2)
    assert journal.pending(0, 10) == []
    if kind == "disk":
        assert journal.points() == 0
        journal.close()
