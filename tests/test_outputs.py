"""outputs/ scanning and the upload progress bar (pure functions, real files)."""
import io
import os

from azml_compat._outputs import ProgressBar, scan


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


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_for_a_terminal_and_a_large_upload():
    assert not ProgressBar(ProgressBar.MIN_BYTES, io.StringIO()).enabled  # piped
    assert not ProgressBar(ProgressBar.MIN_BYTES - 1, Terminal()).enabled  # small
    stream = Terminal()
    bar = ProgressBar(200 * 2**20, stream)
    assert bar.enabled
    bar.draw(100 * 2**20)
    bar.close()
    text = stream.getvalue()
    assert text.startswith("\razml: uploading outputs/ [" + "#" * 15 + "-" * 15 + "]")
    assert "100/200 MB" in text and text.endswith("\n")
