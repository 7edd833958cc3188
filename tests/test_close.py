"""Closing a session stops its threads: a process that makes and closes sessions (a notebook
re-running its cell, a test suite, `azml submit`) does not collect workers that wake forever."""
import json


def test_sessions_made_and_closed_leave_no_azml_thread(store):
    proc = store.run_script("""
        import json, threading
        from azml_compat._config import Settings
        from azml_compat._logger import AzureMLLogger
        from azml_compat._session import Session, run_spec

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
