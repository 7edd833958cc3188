"""outputs/ scanning (pure functions, real files); the upload's bar: tests/test_progress.py."""
import os

from azml_compat._core.outputs import scan


def test_scan_keeps_subfolders_skips_large_files_and_does_not_follow_folder_links_out(tmp_path):
    outputs = tmp_path / "project" / "outputs"
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


# -- links: never a way out of the project -------------------------------------------------------
def _links(tmp_path):
    """A project whose outputs/ holds every kind of link: to a secret outside, to a checkpoint
    and a folder inside, to the share directory, to a folder outside, a loop and a dangling one."""
    project, share, home = tmp_path / "project", tmp_path / "share", tmp_path / "home"
    outputs = project / "outputs"
    for folder in (outputs, project / "checkpoints" / "sub", share, home / "elsewhere"):
        folder.mkdir(parents=True)
    secret = home / ".secret_token"
    secret.write_text("s3cret-token")
    secret.chmod(0o600)
    (home / "elsewhere" / "x.txt").write_text("outside")
    (project / "checkpoints" / "epoch3.ckpt").write_bytes(b"weights")
    (project / "checkpoints" / "sub" / "w.bin").write_bytes(b"w")
    (share / "big.bin").write_bytes(b"shared")
    (outputs / "real.txt").write_text("real")
    os.symlink(secret, outputs / "innocent.txt")
    os.symlink("../checkpoints/epoch3.ckpt", outputs / "best.ckpt")
    os.symlink(project / "checkpoints", outputs / "ckpts")
    os.symlink(share / "big.bin", outputs / "shared.bin")
    os.symlink(home / "elsewhere", outputs / "away")
    os.symlink(outputs, outputs / "loop")  # a folder link back into itself
    os.symlink("a-loop", outputs / "a-loop")  # a link to itself
    os.symlink("/nonexistent/target", outputs / "dangling")
    return project, share, outputs


def test_scan_follows_links_inside_the_project_and_names_those_leading_out(tmp_path, capsys):
    project, share, outputs = _links(tmp_path)
    uploads, _ = scan(str(outputs), max_bytes=100, roots=[str(project), str(share)])
    found = sorted((d, os.path.basename(p), size) for d, p, size in uploads)
    assert found == [("outputs", "best.ckpt", 7), ("outputs", "real.txt", 4),
                     ("outputs", "shared.bin", 6), ("outputs/ckpts", "epoch3.ckpt", 7),
                     ("outputs/ckpts/sub", "w.bin", 1)]
    lines = capsys.readouterr().err.strip().splitlines()
    outside = [line for line in lines if "outside the project" in line]
    assert len(outside) == 1, lines
    assert str(outputs / "innocent.txt") in outside[0] and str(outputs / "away") in outside[0]
    nowhere = [line for line in lines if "lead nowhere" in line]
    assert len(nowhere) == 1 and "a-loop" in nowhere[0] and "dangling" in nowhere[0], lines
    assert any("loop" in line and str(outputs / "loop") in line for line in lines), lines


def test_a_link_swapped_after_the_scan_is_checked_again_when_read(tmp_path):
    import pytest

    from azml_compat._exceptions import PermanentError
    from azml_compat._core.stores.base import open_source

    project, share, outputs = _links(tmp_path)
    with open_source(str(outputs / "best.ckpt"), "outputs") as fh:
        assert fh.read() == b"weights"
    with open_source(str(outputs / "ckpts" / "sub" / "w.bin"), "outputs/ckpts/sub") as fh:
        assert fh.read() == b"w"
    os.remove(outputs / "best.ckpt")
    os.symlink(tmp_path / "home" / ".secret_token", outputs / "best.ckpt")  # swapped
    with pytest.raises(PermanentError, match="outside the project"):
        open_source(str(outputs / "best.ckpt"), "outputs")



def test_the_sqlite_default_checks_a_swapped_link_again_when_it_uploads_it(tmp_path, monkeypatch):
    """The SQLite default writes artifacts itself (no MLflow): a link in outputs/ swapped
    after the scan to lead out must be refused there too, as MLflow's client path does."""
    import pytest

    from azml_compat._exceptions import PermanentError
    from azml_compat._core.records import RunSpec
    from azml_compat._core.stores.sqlite_write import SqliteStore

    project, _, outputs = _links(tmp_path)
    monkeypatch.chdir(project)
    uri = f"sqlite:///{project / 'mlflow.db'}"
    store = SqliteStore.open(uri)
    assert type(store) is SqliteStore
    run = store.open_run(RunSpec(uri, "swap", run_key="a" * 32, new_key=True))
    store.upload_file(run, "outputs", str(outputs / "best.ckpt"))  # inside the project
    os.remove(outputs / "best.ckpt")
    os.symlink(tmp_path / "home" / ".secret_token", outputs / "best.ckpt")  # swapped
    with pytest.raises(PermanentError, match="outside the project"):
        store.upload_file(run, "outputs", str(outputs / "best.ckpt"))
    stored = [p.read_bytes() for p in (project / "mlruns").rglob("best.ckpt")]
    assert stored == [b"weights"]

# -- the working folder is the script's start folder -----------------------------------------------
def test_outputs_stay_the_start_folders_after_a_chdir_and_the_others_are_named(sqlite_store):
    """A script that changes folder: ``./outputs`` is still its start folder's, a logger made
    after the chdir too, and files written to the new folder's ``outputs/`` are named once
    instead of silently left behind."""
    store = sqlite_store
    (store.workdir / "elsewhere").mkdir()
    proc = store.run_script("""
        import os
        import azureml.logging
        os.chdir("elsewhere")
        from azureml.logging import get_azureml_logger
        logger = get_azureml_logger()  # made after the chdir
        logger.log("acc", 0.5)
        os.chdir("..")
        open("outputs/start.txt", "w").write("start")
        os.chdir("elsewhere")
        os.makedirs("outputs", exist_ok=True)
        open("outputs/moved.txt", "w").write("moved")
        """)
    run = store.only_run()
    assert run.data.tags["mlflow.azml.working_dir"] == str(store.workdir)
    assert store.artifact_paths(run.info.run_id) == {"outputs/start.txt"}
    lines = [line for line in proc.stderr.splitlines() if "moved.txt" in line]
    assert len(lines) == 1, proc.stderr
    assert str(store.workdir / "elsewhere" / "outputs") in lines[0]
    assert str(store.workdir / "outputs") in lines[0]
    assert not (store.workdir / "elsewhere" / "mlflow.db").exists()  # nor the store moved
