"""``azml history download``: a run's artifacts into a folder, never over files unasked."""
from __future__ import annotations

import pytest
from cli_support import cli, empty_db, one_line_error, tree  # noqa: F401 - fixtures

FILES = {"driver_log.txt": b"log\n", "outputs/model.pkl": b"\x00pkl", "outputs/sub/w.bin": b"w" * 10}


@pytest.fixture
def run_id(cli):
    return cli.seed({"a": 1}, artifacts=FILES)


def test_download_everything(cli, run_id, tmp_path):
    written = cli.json("history", "download", "-r", run_id, "-d", tmp_path / "all")
    assert tree(tmp_path / "all") == FILES
    assert sorted(written) == sorted(str(tmp_path / "all" / p) for p in FILES)


def test_download_one_file_and_one_folder(cli, run_id, tmp_path):
    cli("history", "download", "-r", run_id, "-a", "outputs/model.pkl", "-d", tmp_path / "f")
    assert tree(tmp_path / "f") == {"model.pkl": b"\x00pkl"}
    out = cli("history", "download", "-r", run_id, "--artifact", "outputs/sub",
              "--directory", tmp_path / "d", "-o", "tsv").stdout
    assert tree(tmp_path / "d") == {"sub/w.bin": b"w" * 10}
    assert out.splitlines() == [str(tmp_path / "d" / "sub" / "w.bin")]


def test_existing_files_need_overwrite(cli, run_id, tmp_path):
    target = tmp_path / "t"
    (target / "outputs").mkdir(parents=True)
    (target / "outputs" / "model.pkl").write_bytes(b"mine")
    result = cli("history", "download", "-r", run_id, "-d", target, code=1)
    one_line_error(result, "model.pkl", "--overwrite")
    assert tree(target) == {"outputs/model.pkl": b"mine"}  # nothing half-written
    cli("history", "download", "-r", run_id, "-d", target, "--overwrite")
    assert tree(target) == FILES


def test_table_lists_written_files(cli, run_id, tmp_path):
    out = cli("history", "download", "-r", run_id, "-d", tmp_path / "x", "-o", "table").stdout
    assert all(str(tmp_path / "x" / p) in out for p in FILES)


@pytest.mark.parametrize("path", ["../x", "/etc", "outputs/../../.."])
def test_paths_stay_inside_the_run(cli, run_id, tmp_path, path):
    one_line_error(cli("history", "download", "-r", run_id, "-a", path, "-d", tmp_path / "z", code=1),
                   repr(path))
    assert not (tmp_path / "z").exists() or tree(tmp_path / "z") == {}


def test_unknown_run_and_artifact(cli, run_id, tmp_path):
    target = tmp_path / "dl"
    one_line_error(cli("history", "download", "-r", "f" * 32, "-d", target, code=1), "not found")
    one_line_error(cli("history", "download", "-r", run_id, "-a", "nope", "-d", target, code=1),
                   "no artifact", "nope")
    assert not target.exists() or tree(target) == {}


@pytest.mark.parametrize("link", ["outputs", "outputs/sub"])
@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_symlinked_folder_inside_the_target_is_not_followed(cli, run_id, tmp_path, link, overwrite):
    target, outside = tmp_path / "dl", tmp_path / "outside"
    outside.mkdir()
    (target / link).parent.mkdir(parents=True, exist_ok=True)
    (target / link).symlink_to(outside, target_is_directory=True)
    result = cli("history", "download", "-r", run_id, "-d", target, *overwrite, code=1)
    one_line_error(result, str(target / link), "symbolic link")
    assert tree(outside) == {}  # nothing written out of the target
    assert [p.name for p in target.iterdir()] == [link.split("/")[0]]  # nor half into it


def test_download_by_prefix(cli, run_id, tmp_path):
    written = cli.json("history", "download", "-r", run_id[:8], "-d", tmp_path / "p")
    assert len(written) == len(FILES) and all(str(tmp_path / "p" / p) in written for p in FILES)
