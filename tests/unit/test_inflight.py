"""``InFlight`` finds the number of requests in flight a server absorbs fastest, and a series
record resumes where its delivery stopped in every journal."""
import pytest

from azml_compat._core.batching import pack
from azml_compat._core.journal import Journal, MemoryJournal
from azml_compat._core.records import END, SERIES
from azml_compat._core.sender import InFlight


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
