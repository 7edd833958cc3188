"""The one progress bar (``azml_compat._core.progress``): drawn on a real terminal with sizes, rate
and time left; nothing at all when piped or when the ``azml`` logger is at ERROR
(``--only-show-errors``); uploads read through the meter show their bytes as they go."""
from __future__ import annotations

import io
import os
import subprocess
import sys

from cli_support import AZML, empty_db, sqlite_cli  # noqa: F401 - fixtures
from tty_support import in_pty

from azml_compat._core.outputs import uploaded
from azml_compat._core.progress import Progress, metered, read_so_far

# 300 MB in 30 steps of 10 MB, 20 ms apart: long enough for tqdm to redraw in between
DRAW = """
import sys, time
{setup}
from azml_compat._core.progress import Progress
with Progress(300 * 2**20, "azml: uploading outputs/") as bar:
    for _ in range(30):
        bar.update(10 * 2**20)
        time.sleep(0.02)
print("tqdm imported" if "tqdm" in sys.modules else "tqdm not imported", file=sys.stderr)
"""


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def test_a_bar_with_sizes_rate_and_time_left_on_a_terminal(tmp_path):
    code, out = in_pty([sys.executable, "-c", DRAW.format(setup="")], tmp_path, _env(), 80)
    assert code == 0, out
    frames = [f for f in out.replace("\n", "\r").split("\r") if "uploading outputs/" in f]
    assert len(frames) >= 3, out  # redrawn as it goes, not only at the start and the end
    last = frames[-1]
    assert "100%" in last and "300M/300M" in last and "B/s" in last, last
    assert any("<" in f and "%" in f and "300M" in f for f in frames[1:-1]), frames  # ETA
    assert all(len(f) <= 80 for f in frames)  # fits the terminal
    assert "tqdm imported" in out


def test_nothing_when_piped_and_tqdm_not_even_imported(tmp_path):
    proc = subprocess.run([sys.executable, "-c", DRAW.format(setup="")], cwd=tmp_path,
                          env=_env(), capture_output=True, text=True, timeout=120, check=True)
    assert proc.stdout == "" and proc.stderr == "tqdm not imported\n"


def test_nothing_on_a_terminal_when_only_errors_are_shown(tmp_path):
    quiet = 'import logging; logging.getLogger("azml").setLevel(logging.ERROR)'
    code, out = in_pty([sys.executable, "-c", DRAW.format(setup=quiet)], tmp_path, _env(), 80)
    assert code == 0 and "uploading" not in out and "tqdm not imported" in out, out


def test_set_and_update_count_without_a_terminal():
    bar = Progress(100, "x", stream=io.StringIO())
    bar.update(30)
    bar.set(80)
    bar.close()
    assert bar.done == 80 and not bar.drawn


class _Done:
    def __init__(self, done: bool) -> None:
        self._done = done

    def done(self) -> bool:
        return self._done


def test_an_upload_in_progress_counts_the_bytes_it_read(tmp_path):
    big, small = tmp_path / "big.bin", tmp_path / "small.bin"
    big.write_bytes(b"x" * 1000)
    small.write_bytes(b"y" * 10)
    files = [(_Done(False), str(big), 1000), (_Done(True), str(small), 10)]
    assert uploaded(files) == 10
    with metered(open(big, "rb"), str(big)) as reader:
        assert reader.read(400) == b"x" * 400
        assert read_so_far(str(big)) == 400 and uploaded(files) == 410
        assert reader.fileno() > 0  # what requests asks for the Content-Length
    assert read_so_far(str(big)) == 0  # closed: its record says whether it arrived


def test_history_and_asset_download_show_a_bar_on_a_terminal_only(sqlite_cli, tmp_path):
    blob = os.urandom(3 << 20)
    run_id = sqlite_cli.seed({"a": 1.0}, artifacts={"outputs/model.bin": blob,
                                                    "outputs/n/notes.txt": b"hello"})
    sqlite_cli("history", "promote", "-r", run_id, "-ap", "outputs", "-n", "m")
    env = sqlite_cli.store.env(HOME=str(sqlite_cli.store.home))
    for args in (["history", "download", "-r", run_id, "-d", tmp_path / "t", "-o", "none"],
                 ["asset", "download", "-n", "m", "-d", tmp_path / "a", "-o", "none"]):
        code, out = in_pty([AZML, *map(str, args), "--overwrite"], sqlite_cli.store.workdir,
                           env, 100)
        assert code == 0, out
        frames = [f for f in out.replace("\n", "\r").split("\r") if "azml: downloading" in f]
        assert frames and "3.00M" in frames[-1] and "B/s" in frames[-1], out
        if args[0] == "history":  # the whole size is known: a percentage of it
            assert "100%" in frames[-1] and "3.00M/3.00M" in frames[-1], frames[-1]
        piped = sqlite_cli.run(*args, "--overwrite")
        assert piped.returncode == 0 and piped.stderr == b"", piped.stderr
        quiet = in_pty([AZML, *map(str, args), "--overwrite", "--only-show-errors"],
                       sqlite_cli.store.workdir, env, 100)
        assert quiet[0] == 0 and "downloading" not in quiet[1], quiet[1]


UPLOAD = """
import os
from azureml.logging import get_azureml_logger
get_azureml_logger().log("a", 1)
os.makedirs("outputs", exist_ok=True)
with open("outputs/model.bin", "wb") as fh:
    fh.write(os.urandom(60 << 20))
"""


def test_a_large_outputs_upload_shows_its_bytes_on_a_terminal_only(server_store):
    """60 MB in outputs/ to a server (proxied artifacts, read through the meter)."""
    script = server_store.write_script(UPLOAD)
    code, out = in_pty([sys.executable, str(script)], server_store.workdir,
                       server_store.env(AZML_QUIET="1"), 100)
    assert code == 0, out
    frames = [f for f in out.replace("\n", "\r").split("\r") if "azml: uploading outputs/" in f]
    assert frames and "100%" in frames[-1] and "60.0M/60.0M" in frames[-1], out
    assert "B/s" in frames[-1]
    run = server_store.only_run()
    assert "outputs/model.bin" in server_store.artifact_paths(run.info.run_id, "outputs")
    piped = server_store.run_script(UPLOAD, AZML_QUIET="1")
    assert "uploading" not in piped.stderr, piped.stderr
