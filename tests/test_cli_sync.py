"""``azml sync``: its journals listed, delivered and discarded on purpose, and every failure one
line. The journals are real: left by legacy scripts on the embedded SQLite default, killed or
pointed at a server that is down."""
from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap

from cli_support import run_in_a_terminal
from conftest import Store, free_port

HEADER = "from azureml.logging import get_azureml_logger\n"


def azml(store: Store, *args, code: int = 0, input=None, **env) -> subprocess.CompletedProcess:
    proc = subprocess.run(["azml", *args], cwd=store.workdir,
                          env=store.env(HOME=str(store.home.parent), **env), input=input,
                          capture_output=True, text=True, timeout=300)
    if code is not None:
        assert proc.returncode == code, proc.stdout + proc.stderr
    return proc


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), proc.stderr
    return lines[0]


def journal_left_by_a_dead_server(store: Store, points: int = 5):
    """A script whose server never answered: its records wait in a journal with no run yet."""
    store.run_script(HEADER + textwrap.dedent(f"""
        logger = get_azureml_logger()
        for i in range({points}):
            logger.log("loss", i)
    """), MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}", AZML_FLUSH_TIMEOUT=1,
        HOME=str(store.home.parent))
    (journal,) = store.journals()
    return journal


def journal_with_a_run(store: Store):
    """A script on the SQLite default whose one record the store refused: the journal keeps it
    (sync never deletes what was refused) and names the run."""
    store.run_script(HEADER + textwrap.dedent("""
        logger = get_azureml_logger()
        logger._put("tag", "bad,key", "v")
        logger.log("good", 1)
    """), HOME=str(store.home.parent))
    (journal,) = store.journals()
    return journal, store.only_run().info.run_id


def journal_files(journal) -> list:
    stem = str(journal)[:-3]
    return [p for p in (stem + ".db", stem + ".db-wal", stem + ".db-shm", stem + ".lock",
                        stem + ".files") if os.path.exists(p)]


def test_discard_by_journal_name_says_what_it_dropped(sqlite_store):
    journal = journal_left_by_a_dead_server(sqlite_store, points=5)
    proc = azml(sqlite_store, "sync", "--discard", journal.name, "--yes", "-o", "json")
    (row,) = json.loads(proc.stdout)
    assert row["journal"] == str(journal) and row["state"] == "discarded"
    assert row["pending"] >= 6  # the run's creation, five points, its end
    assert f"discarded journal {journal.name}" in proc.stderr
    assert f"{row['pending']} pending" in proc.stderr
    assert journal_files(journal) == []
    assert json.loads(azml(sqlite_store, "sync", "--list", "-o", "json").stdout) == []


def test_discard_by_run_id_or_prefix_names_the_run(sqlite_store):
    journal, run_id = journal_with_a_run(sqlite_store)
    proc = azml(sqlite_store, "sync", "--discard", run_id[:8], "--yes", "-o", "table")
    assert run_id in proc.stdout and "discarded" in proc.stdout
    assert f"run {run_id}" in proc.stderr and "1 rejected" in proc.stderr
    assert journal_files(journal) == []
    assert sqlite_store.only_run().info.status == "FINISHED"  # the run itself is untouched


def test_discard_without_yes_when_piped_is_refused_and_keeps_the_journal(sqlite_store):
    journal = journal_left_by_a_dead_server(sqlite_store)
    proc = azml(sqlite_store, "sync", "--discard", journal.name, code=1, input="y\n")
    assert "--yes" in one_error_line(proc)
    assert journal.exists()


def test_discard_asks_on_a_terminal(sqlite_store):
    """On a TTY the question is asked: `n` keeps the journal, `y` discards it."""
    import pty

    journal = journal_left_by_a_dead_server(sqlite_store)

    def answer(text: str) -> tuple[int, str]:
        pid, fd = pty.fork()
        if pid == 0:  # the child: azml on the terminal
            os.chdir(sqlite_store.workdir)
            os.execve(sys.executable, [sys.executable, "-m", "azml_compat.cli", "sync",
                                       "--discard", journal.name],
                      sqlite_store.env(HOME=str(sqlite_store.home.parent)))
        seen = b""
        while b"[y/N]" not in seen:
            seen += os.read(fd, 1024)
        os.write(fd, text.encode() + b"\n")
        while True:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")

    code, out = answer("n")
    assert journal.name in out and "nothing discarded" in out and code == 0
    assert journal.exists()
    code, out = answer("y")
    assert code == 0 and "discarded" in out and not journal.exists()


def test_discard_refuses_a_journal_a_live_process_writes(sqlite_store):
    script = sqlite_store.write_script(HEADER + textwrap.dedent("""
        import sys
        logger = get_azureml_logger()
        logger.log("loss", 1).wait()
        print("logged", flush=True)
        sys.stdin.readline()
    """))
    proc = subprocess.Popen([sys.executable, str(script)], cwd=sqlite_store.workdir,
                            env=sqlite_store.env(HOME=str(sqlite_store.home.parent)),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "logged"
        (journal,) = sqlite_store.journals()
        refused = azml(sqlite_store, "sync", "--discard", journal.name, "--yes", code=1)
        line = one_error_line(refused)
        assert journal.name in line and "in use" in line
        assert journal.exists()
    finally:
        proc.communicate("\n", timeout=120)
    assert proc.returncode == 0


def test_discard_of_an_unknown_name_is_one_line(sqlite_store):
    journal_left_by_a_dead_server(sqlite_store)
    before = sqlite_store.journals()
    unknown = azml(sqlite_store, "sync", "--discard", "nosuch", "--yes", code=1)
    assert "'nosuch'" in one_error_line(unknown)
    assert sqlite_store.journals() == before


def test_discard_with_list_is_a_usage_error(sqlite_store):
    proc = azml(sqlite_store, "sync", "--discard", "x", "--list", code=2)
    assert "--discard" in one_error_line(proc)


def test_sync_errors_are_one_line(sqlite_store):
    """A journal whose server is down: the rows, then one error line; a bad option value the
    same."""
    journal_left_by_a_dead_server(sqlite_store)
    failed = azml(sqlite_store, "sync", "--give-up-after", "0", "-o", "json", code=1)
    assert "not delivered" in one_error_line(failed)
    assert json.loads(failed.stdout)[0]["state"].startswith("failed")
    bad = azml(sqlite_store, "sync", "--give-up-after", "soon", code=2)
    assert "soon" in one_error_line(bad)


def journal_of_a_killed_script(store: Store):
    """A script on the SQLite default SIGKILLed before its sender could deliver anything: the
    test holds the database's write lock meanwhile (the sender retries SQLITE_BUSY), since the
    sqlite3 store would otherwise deliver 5,000 points in the 0.3 s before the kill."""
    from azml_compat._core.stores import connect

    connect(store.uri)  # makes mlflow.db (no run) so that there is a file to lock
    held = sqlite3.connect(store.workdir / "mlflow.db", isolation_level=None)
    held.execute("BEGIN EXCLUSIVE")
    try:
        store.run_script(HEADER + textwrap.dedent("""
            import os, signal, time
            logger = get_azureml_logger()
            logger.log("loss", [float(i) for i in range(5000)])
            time.sleep(0.3)  # committed to the journal (every 50 ms), not yet sent
            os.kill(os.getpid(), signal.SIGKILL)
        """), check=False, HOME=str(store.home.parent))
    finally:
        held.execute("ROLLBACK")
        held.close()
    (journal,) = store.journals()
    return journal


def test_sync_shows_its_progress_on_a_terminal_and_not_when_piped(sqlite_store):
    journal_of_a_killed_script(sqlite_store)
    env = sqlite_store.env(HOME=str(sqlite_store.home.parent))
    code, out = run_in_a_terminal([sys.executable, "-m", "azml_compat.cli", "sync"], env,
                                  sqlite_store.workdir)
    assert code == 0, out
    assert re.search(r"azml sync: \w+\.db: [\d,]+/[\d,]+ records, 5,000/5,000 points "
                     r"\([\d,]+ points/s\)", out), out
    journal_of_a_killed_script(sqlite_store)
    proc = azml(sqlite_store, "sync", "-o", "json")
    assert "azml sync:" not in proc.stderr and "\r" not in proc.stderr, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["points"] == 5000 and row["state"] == "delivered"
    journal_of_a_killed_script(sqlite_store)  # a terminal, but --only-show-errors: quiet
    code, out = run_in_a_terminal([sys.executable, "-m", "azml_compat.cli", "sync",
                                   "--only-show-errors"], env, sqlite_store.workdir)
    assert code == 0 and "azml sync:" not in out, out
    assert len(sqlite_store.runs()) == 3
    for run in sqlite_store.runs():
        assert [m.step for m in sqlite_store.history(run.info.run_id, "loss")] == list(range(5000))


def test_a_relative_sqlite_uri_is_journaled_absolute_and_synced_from_anywhere(sqlite_store,
                                                                             tmp_path):
    """``MLFLOW_TRACKING_URI=sqlite:///rel.db``, the script killed mid-run: ``azml sync`` from
    another folder delivers into the project's ``rel.db``, and makes no stray one where it runs."""
    store = sqlite_store
    store.run_script(HEADER + textwrap.dedent("""
        import os, signal, time
        logger = get_azureml_logger()
        logger.log("acc", 0.5)
        assert logger.wait_for_run(120)
        os.chdir("/")  # a relative path journaled as written would now name /rel.db
        for i in range(5):
            logger.log("loss", i)
        time.sleep(0.3)  # committed to the journal
        os.kill(os.getpid(), signal.SIGKILL)
    """), check=False, MLFLOW_TRACKING_URI="sqlite:///rel.db", HOME=str(store.home.parent))
    assert (store.workdir / "rel.db").exists()
    (journal,) = store.journals()
    other = tmp_path / "other"
    other.mkdir()
    proc = subprocess.run(["azml", "sync"], cwd=other, timeout=300, capture_output=True,
                          text=True, env=store.env(HOME=str(store.home.parent),
                                                   MLFLOW_TRACKING_URI="sqlite:///rel.db"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (other / "rel.db").exists()
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store.workdir / 'rel.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name(store.experiment).experiment_id])
    assert run.data.metrics == {"acc": 0.5, "loss": 4.0} and run.info.status == "KILLED"
    assert not journal.exists()
