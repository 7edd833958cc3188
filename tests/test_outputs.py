"""outputs/ scanning (pure functions, real files); the upload's bar: tests/test_progress.py."""
import os

from azml_compat._outputs import scan


def test_scan_keeps_subfolders_skips_large_files_and_does_not_follow_folder_links(tmp_path):
    outputs = tmp_path / "outputs"
    (outputs / "a" / "b").mkdir(parents=True)
    (outputs / "model.pkl").write_bytes(b"x" * 10)
    (outputs / "a" / "b" / "deep.txt").write_bytes(b"y")
    (outputs / "big.bin").write_bytes(b"z" * 101)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("not an output")
    os.symlink(elsewhere, outputs / "link")
    uploads, skipped = scan(str(outputs), max_bytes=100)
    assert sorted((d, os.path.basename(p), size) for d, p, size in uploads) == [
        ("outputs", "model.pkl", 10), ("outputs/a/b", "deep.txt", 1)]
    assert [(os.path.basename(p), size) for p, size in skipped] == [("big.bin", 101)]


def test_scan_of_a_missing_folder_is_empty(tmp_path):
    assert scan(str(tmp_path / "nope"), 100) == ([], [])


def test_scan_leaves_files_older_than_the_run_with_one_line(tmp_path, capsys):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "model.pkl").write_bytes(b"old")  # an earlier run's
    (outputs / "old2.txt").write_bytes(b"old")
    started_ms = 1_700_000_000_000
    os.utime(outputs / "model.pkl", ns=(0, (started_ms - 3_600_000) * 1_000_000))
    os.utime(outputs / "old2.txt", ns=(0, (started_ms - 1) * 1_000_000))
    (outputs / "new.txt").write_bytes(b"new")
    os.utime(outputs / "new.txt", ns=(0, started_ms * 1_000_000))  # written as the run began
    uploads, skipped = scan(str(outputs), max_bytes=100, since_ms=started_ms)
    assert [os.path.basename(p) for _, p, _ in uploads] == ["new.txt"] and skipped == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "2 file(s)" in err[0] and "before this run started" in err[0]


def test_scan_compares_whole_seconds_on_a_file_system_that_keeps_only_seconds(tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "x").write_bytes(b"x")
    # written 200 ms after a start at ...500 ms, stored rounded down to the whole second
    os.utime(outputs / "x", ns=(0, 1_700_000_000 * 1_000_000_000))
    uploads, _ = scan(str(outputs), max_bytes=100, since_ms=1_700_000_000_500)
    assert len(uploads) == 1
