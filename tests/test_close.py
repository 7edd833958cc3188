"""Closing a session stops its threads: a process that makes and closes sessions (a notebook
re-running its cell, a test suite, `azml submit`) does not collect workers that wake forever."""
import json
import sqlite3

from conftest import free_port


def test_sessions_made_and_closed_leave_no_azml_thread(store):
    proc = store.run_script("""
        import json, threading
        from azml_compat._config import Settings
        from azml_compat._workbench.logger import AzureMLLogger
        from azml_compat._core.session import Session, run_spec

        delivered = []
        for i in range(5):
            settings = Settings.from_env()
            session = Session(settings, run_spec(settings))
            logger = AzureMLLogger(session)
            for step in range(10):
                logger.log("loss", step * 0.5)
            logger.log("session", i).wait()
            delivered.append(session.close())
        names = sorted(t.name for t in threading.enumerate() if t.name.startswith("azml-"))
        print(json.dumps({"delivered": delivered, "threads": names}))
    """, timeout=240)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["delivered"] == [True] * 5
    assert report["threads"] == []
    runs = store.runs()
    assert len(runs) == 5
    assert all(run.info.status == "FINISHED" for run in runs)
    assert sorted(run.data.metrics["session"] for run in runs) == [0, 1, 2, 3, 4]
    for run in runs:
        assert [m.value for m in store.history(run.info.run_id, "loss")] == [
            step * 0.5 for step in range(10)]


def test_closing_sessions_on_a_dead_server_stops_their_retries_and_keeps_the_records(
        sqlite_store):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every request is refused
    proc = sqlite_store.run_script("""
        import json, logging, threading
        from azml_compat._config import Settings
        from azml_compat._workbench.logger import AzureMLLogger
        from azml_compat._core.session import Session, run_spec

        retrying = threading.Event()

        class Seen(logging.Handler):
            def emit(self, record):
                if "retrying in the background" in record.getMessage():
                    retrying.set()

        logging.getLogger("azml").addHandler(Seen())
        results = []
        for i in range(3):
            retrying.clear()
            settings = Settings.from_env()
            session = Session(settings, run_spec(settings))
            logger = AzureMLLogger(session)
            for step in range(10):
                logger.log("loss", step)
            assert retrying.wait(300), "the sender never reached its retry loop"
            results.append([session.close(), session.dispatcher.journal.path])
        names = sorted(t.name for t in threading.enumerate() if t.name.startswith("azml-"))
        print(json.dumps({"results": results, "threads": names}))
    """, timeout=400, MLFLOW_TRACKING_URI=dead, AZML_FLUSH_TIMEOUT="1")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["threads"] == []
    for delivered, path in report["results"]:
        assert delivered is False
        db = sqlite3.connect(path)
        try:
            kept = db.execute("SELECT num FROM records WHERE key = 'loss' ORDER BY seq")
            assert [row[0] for row in kept] == list(range(10))  # every point, for `azml sync`
        finally:
            db.close()
    assert "run `azml sync`" in proc.stderr
