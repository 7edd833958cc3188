"""Worker spools (``_spool``) on their own: each record taken in once, whatever was read
before; a record cut short by a kill never taken in; a dead parent's spools adopted by sync
from where its journal stopped."""
import os
import sqlite3

from azml_compat._core.journal import Journal
from azml_compat._core.records import METRIC
from azml_compat._core.spool import Intake, Spool, adopt, folder


class Taking:
    """The part of a ``Dispatcher`` an ``Intake`` uses: ingest, and what was delivered."""

    def __init__(self):
        self.records, self.metas, self.done = [], [], 0

    def ingest(self, records, meta=None):
        self.records.extend(records)
        self.metas.append(meta)
        return len(self.records)


def _spool(directory, n, start=0):
    spool = Spool(directory, {"experiment_name": "e", "tracking_uri": "sqlite:///x.db"}, {}, 5)
    for i in range(start, start + n):
        spool.put_stepped(METRIC, "loss", float(i), 1000 + i)
    return spool


def test_each_record_is_taken_in_once_across_restarts(tmp_path):
    directory = str(tmp_path / "p.workers")
    spool = _spool(directory, 3)
    first = Taking()
    intake = Intake(directory, first, before_first=lambda: None)
    intake.poll()
    assert [r[2] for r in first.records] == [0.0, 1.0, 2.0]
    for i in range(3, 5):
        spool.put_stepped(METRIC, "loss", float(i), 1000 + i)
    # A new intake (the parent's journal reopened) starts where the journal's meta says.
    again = Taking()
    Intake(directory, again, lambda: None, offsets=first.metas[-1]["workers"]).poll()
    assert [r[2] for r in again.records] == [3.0, 4.0]


def test_a_record_cut_short_is_never_taken_in(tmp_path):
    directory = str(tmp_path / "p.workers")
    spool = _spool(directory, 2)
    with open(spool.path, "ab") as fh:
        fh.write(b"\x40\x00\x00\x00half")  # a length of 64 and 4 bytes: killed mid-write
    taking = Taking()
    intake = Intake(directory, taking, lambda: None)
    intake.poll()
    assert [r[2] for r in taking.records] == [0.0, 1.0]
    taking.done = len(taking.records)
    assert intake.finish() == 1  # this process holds the spool's lock: a live worker
    assert os.path.exists(spool.path)


def test_sync_adopts_a_dead_parents_spool_from_where_its_journal_stopped(tmp_path):
    journal_dir = str(tmp_path / "journal")
    parent = Journal.create(journal_dir, "parent", {"experiment_name": "e", "tracking_uri": "u"})
    spool = _spool(folder(journal_dir, "parent"), 3)
    taking = Taking()
    Intake(folder(journal_dir, "parent"), taking, lambda: None).poll()
    parent.set_meta(**taking.metas[-1])  # the parent journaled the first three
    for i in range(3, 6):
        spool.put_stepped(METRIC, "loss", float(i), 1000 + i)
    assert adopt(journal_dir) == []  # the parent still holds its journal: left alone
    parent.close()
    spool.abandon()  # the worker is gone too
    (adopted,) = adopt(journal_dir)
    rows = sqlite3.connect(adopted).execute("SELECT num FROM records ORDER BY seq").fetchall()
    assert rows == [(3.0,), (4.0,), (5.0,)]
    assert not os.path.exists(spool.path)


def test_sync_leaves_no_half_written_ack_of_a_parent_killed_while_writing_it(tmp_path):
    """The parent rewrites a spool's ``.ack`` through ``.ack.partial`` and a rename: killed in
    between, it leaves the partial file, which sync removes with the spool it belonged to (the
    parent is gone, so nothing will finish it), and the workers' folder with them."""
    journal_dir = str(tmp_path / "journal")
    parent = Journal.create(journal_dir, "parent", {"experiment_name": "e", "tracking_uri": "u"})
    directory = folder(journal_dir, "parent")
    spool = _spool(directory, 3)
    with open(spool.path + ".ack.partial", "w", encoding="ascii") as fh:
        fh.write("2 run")  # the rename never came
    parent.close()
    spool.abandon()
    (adopted,) = adopt(journal_dir)
    assert sqlite3.connect(adopted).execute("SELECT COUNT(*) FROM records").fetchone() == (3,)
    assert not os.path.exists(directory), os.listdir(directory)
