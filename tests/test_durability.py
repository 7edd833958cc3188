"""Nothing logged is ever lost: server restarts, server down at start and exit, SIGKILL,
500/429 answers, many processes at once, unwritable or full journals, `azml sync`."""
import http.server
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import requests

from cli_support import run_in_a_terminal
from conftest import MlflowServer, Store, clean_env, serve_loopback

HEADER = "from azureml.logging import get_azureml_logger\n"


@pytest.fixture
def own_server(tmp_path):
    """A server of this test's own, which the test may stop and start again on the same port."""
    server = MlflowServer(tmp_path / "own-server")
    yield server
    server.stop()


def own_store(server: MlflowServer, tmp_path) -> Store:
    workdir = tmp_path / "project"
    workdir.mkdir(exist_ok=True)
    return Store("server", server.url, workdir, "durability")


def script(store: Store, body: str) -> list[str]:
    path = store.write_script(HEADER + textwrap.dedent(body))
    return [sys.executable, str(path)]


def azml_sync(store: Store, *args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["azml", "sync", *args], cwd=store.workdir, env=store.env(),
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def values(store: Store, run_id: str, key: str) -> list[float]:
    return [m.value for m in store.history(run_id, key)]


def test_server_restart_mid_run_loses_nothing(own_server, tmp_path):
    own_server.start()
    store = own_store(own_server, tmp_path)
    cmd = script(store, """
        import time
        logger = get_azureml_logger()
        for i in range(300):
            logger.log("loss", i)
            if i == 20:
                logger.flush(60)
                print("flowing", flush=True)
            time.sleep(0.04)
    """)
    proc = subprocess.Popen(cmd, cwd=store.workdir, env=store.env(AZML_FLUSH_TIMEOUT=120),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "flowing"
    own_server.stop()
    time.sleep(3)
    own_server.start()
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    run = store.only_run()
    assert values(store, run.info.run_id, "loss") == [float(i) for i in range(300)]
    assert run.info.status == "FINISHED"
    assert store.journals() == []  # delivered journals are pruned


def test_server_down_at_start_and_exit_then_sync_delivers_everything(own_server, tmp_path):
    store = own_store(own_server, tmp_path)  # the server is not started yet
    cmd = script(store, """
        logger = get_azureml_logger()
        for i in range(1500):
            logger.log("points", i)
        logger.log("curve", list(range(2500)))
        logger.log("note", "written while the server was down")
        logger.upload("reports/r.txt", "report")
        open("outputs/model.bin", "wb").write(b"model")
        print("done", flush=True)
    """)
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=store.workdir, env=store.env(AZML_FLUSH_TIMEOUT=3),
                          capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0 and "done" in proc.stdout
    assert elapsed < 3 + 20  # flush timeout plus interpreter and MLflow start-up
    assert "azml sync" in proc.stderr and "not delivered" in proc.stderr
    (journal,) = store.journals()
    assert str(journal) in proc.stderr

    dry = azml_sync(store, "--dry-run", "-o", "json")
    assert '"pending"' in dry.stdout and store.journals() == [journal]

    own_server.start()
    azml_sync(store)
    run = store.only_run()
    run_id = run.info.run_id
    assert values(store, run_id, "points") == [float(i) for i in range(1500)]
    assert len(values(store, run_id, "curve")) == 2500
    assert run.data.tags["note"] == "written while the server was down"
    assert store.artifact_bytes(run_id, "reports/r.txt") == b"report"
    assert store.artifact_bytes(run_id, "outputs/model.bin") == b"model"
    assert run.info.status == "FINISHED"
    first_point = store.history(run_id, "points")[0].timestamp
    assert run.info.start_time <= first_point  # created with its original start time
    assert store.journals() == []
    again = azml_sync(store, "-o", "table")  # a second sync finds nothing and changes nothing
    # an empty result, as az prints one (a newline), and one line saying why
    assert again.stdout == "\n" and "no journals" in again.stderr, again
    assert len(store.runs()) == 1


def test_sigkill_after_logging_then_sync_delivers_everything(own_server, tmp_path):
    store = own_store(own_server, tmp_path)
    cmd = script(store, """
        import time
        logger = get_azureml_logger()
        for i in range(5000):
            logger.log("acc", i / 5000)
        print("logged", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen(cmd, cwd=store.workdir, env=store.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "logged"
    time.sleep(2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert len(store.journals()) == 1
    own_server.start()
    out = azml_sync(store).stdout
    assert "delivered" in out
    run = store.only_run()
    assert values(store, run.info.run_id, "acc") == [i / 5000 for i in range(5000)]
    assert run.info.status == "KILLED"  # its process never ended it



def test_a_point_logged_just_before_a_sigkill_is_kept(own_server, tmp_path):
    """A script that logs now and then (an epoch's metrics) and is killed 20 ms after its last
    point: the point is journaled, not left in RAM for the next group commit (every 50 ms)."""
    store = own_store(own_server, tmp_path)
    cmd = script(store, """
        import os, signal, time
        logger = get_azureml_logger()
        time.sleep(0.3)  # a quiet spell: the journal thread is between two commits
        logger.log("last", 1)
        time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    procs = [subprocess.Popen(cmd, cwd=store.workdir, env=store.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for proc in procs:
        proc.wait(60)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    own_server.start()
    azml_sync(store)
    runs = store.runs()
    assert len(runs) == 4
    assert [values(store, run.info.run_id, "last") for run in runs] == [[1.0]] * 4

def test_sync_skips_a_journal_in_use_and_a_corrupted_one(own_server, tmp_path):
    own_server.start()
    store = own_store(own_server, tmp_path)
    journal_dir = store.home / "journal"
    journal_dir.mkdir(parents=True)
    (journal_dir / "0000garbage.db").write_bytes(b"this is not a database" * 100)
    cmd = script(store, """
        import time
        logger = get_azureml_logger()
        logger.log("x", 1).wait(60)
        print("ready", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen(cmd, cwd=store.workdir, env=store.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        result = azml_sync(store, "-o", "json")
        assert "in use" in result.stdout and "garbage" in result.stdout
        assert "corrupted" in result.stdout or "unreadable" in result.stdout
    finally:
        proc.kill()
        proc.wait(30)
    azml_sync(store)  # now the dead process's journal is free: its run gets ended
    assert store.only_run().info.status == "KILLED"


class FlakyProxy:
    """Forwards to a real server, answering the first log-batch requests 500, then 429."""

    def __init__(self, target: str, failures: int = 3, throttles: int = 3):
        self.target = target
        self.failures, self.throttles = failures, throttles
        self.refused = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/api/2.0/mlflow/runs/log-batch"):
                    with proxy.lock:  # requests arrive concurrently (pipelined)
                        refuse = "500" if proxy.failures > 0 else "429" if proxy.throttles > 0 else None
                        proxy.failures -= refuse == "500"
                        proxy.throttles -= refuse == "429"
                        proxy.refused += refuse is not None
                    if refuse == "500":
                        return self._answer(500, b'{"error_code": "INTERNAL_ERROR"}', {})
                    if refuse == "429":
                        return self._answer(429, b"slow down", {"Retry-After": "1"})
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                upstream = requests.request(self.command, proxy.target + self.path, data=body,
                                            headers=headers, timeout=60)
                self._answer(upstream.status_code, upstream.content,
                             {"Content-Type": upstream.headers.get("Content-Type", "application/json")})

            def _answer(self, status, body, headers):
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        self.server, self.url = serve_loopback(Handler)

    def close(self):
        self.server.shutdown()


def test_500_and_429_answers_are_retried_without_duplicates(mlflow_server, tmp_path):
    proxy = FlakyProxy(mlflow_server.url, failures=3, throttles=2)
    try:
        workdir = tmp_path / "project"
        workdir.mkdir()
        store = Store("server", proxy.url, workdir, "flaky")
        store.run_script(HEADER + textwrap.dedent("""
            logger = get_azureml_logger()
            for i in range(3000):
                logger.log("m", i)
        """), AZML_FLUSH_TIMEOUT=120)
    finally:
        proxy.close()
    assert proxy.refused == 5
    direct = Store("server", mlflow_server.url, workdir, "flaky")
    run = direct.only_run()
    history = direct.history(run.info.run_id, "m")
    assert [m.step for m in history] == list(range(3000))  # one point per step: no duplicates
    assert run.info.status == "FINISHED"


def test_eight_processes_logging_at_once(server_store):
    client = server_store.client
    run_id = client.create_run(client.create_experiment(server_store.experiment)).info.run_id
    cmd = script(server_store, """
        import sys
        logger = get_azureml_logger()
        for i in range(2000):
            logger.log(f"proc {sys.argv[1]}", i)
        logger.log("shared", [int(sys.argv[1])] * 10)
    """)
    procs = [subprocess.Popen(cmd + [str(n)], cwd=server_store.workdir,
                              env=server_store.env(MLFLOW_RUN_ID=run_id, AZML_FLUSH_TIMEOUT=120),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for n in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    for n in range(8):
        assert values(server_store, run_id, f"proc {n}") == [float(i) for i in range(2000)]
    shared = client.get_metric_history(run_id, "shared")
    assert sorted(m.value for m in shared) == sorted(float(n) for n in range(8) for _ in range(10))


def test_unwritable_journal_folder_keeps_logging_in_memory(store):
    proc = store.run_script(HEADER + "get_azureml_logger().log('x', 1)\n",
                            AZML_HOME="/dev/null/not-a-folder")
    assert "cannot write the journal" in proc.stderr and "in memory" in proc.stderr
    assert store.only_run().data.metrics == {"x": 1.0}


def test_full_journal_spills_to_memory_and_delivers_everything(store):
    proc = store.run_script(HEADER + textwrap.dedent("""
        import time
        logger = get_azureml_logger()
        for i in range(4000):
            logger.log("m", i)
            if i % 1000 == 0:
                time.sleep(0.2)   # let a few group commits happen first
    """), AZML_MAX_JOURNAL_BYTES=50_000)
    assert "AZML_MAX_JOURNAL_BYTES" in proc.stderr
    run = store.only_run()
    assert values(store, run.info.run_id, "m") == [float(i) for i in range(4000)]


def test_malformed_tracking_uri_is_a_clear_error(tmp_path):
    for uri, words in [("htp://localhost:5000", "unknown scheme 'htp'"),
                       ("http://", "names no host"),
                       ("http://localhost:port", "invalid port")]:
        proc = subprocess.run([sys.executable, "-c", HEADER + "get_azureml_logger()"],
                              cwd=tmp_path, env=clean_env(MLFLOW_TRACKING_URI=uri),
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert words in proc.stderr and repr(uri) in proc.stderr


def test_a_rejected_record_is_set_aside_in_the_journal_never_resent(make_logger):
    logger = make_logger()
    session = logger._session
    bad = logger._put("tag", "bad,key", "v")  # a key MLflow refuses (the logger maps names)
    logger.log("good", 1).wait(60)
    with pytest.raises(Exception, match="bad,key"):
        bad.wait(10)
    path = session.dispatcher.journal.path
    rows = sqlite3.connect(path).execute("SELECT key, error FROM rejected").fetchall()
    assert rows and rows[0][0] == "bad,key" and "bad,key" in rows[0][1]
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM records").fetchone()[0] == 0
    session.close()
    assert os.path.exists(path)  # a rejected record is never deleted silently: the file stays


def test_sync_resumes_a_big_series_where_a_sigterm_stopped_it(own_server, tmp_path):
    """A script SIGTERMed while its exit delivers one list of 100,000 points: `azml sync`
    sends only what the store lacks (at most the requests in flight at the signal again),
    shows its progress on a terminal, and the run ends with every point once."""
    own_server.start()
    store = own_store(own_server, tmp_path)
    n = 100_000
    cmd = script(store, f"""
        import threading
        logger = get_azureml_logger()
        print(logger.wait_for_run(120), flush=True)
        logger.log("big", [float(i) for i in range({n})])
        threading._register_atexit(lambda: print("exiting", flush=True))
    """)
    proc = subprocess.Popen(cmd, cwd=store.workdir, env=store.env(AZML_FLUSH_TIMEOUT=300),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        run_id = proc.stdout.readline().strip()
        assert proc.stdout.readline().strip() == "exiting"
        # The latest point's value is its step: one cheap read a round (reading the history
        # of 20,000+ points took longer than the exit needed for the rest).
        while store.client.get_run(run_id).data.metrics.get("big", -1) < 20_000:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err
    stored = len(store.client.get_metric_history(run_id, "big"))
    assert stored < n, "the exit delivered everything before the signal: nothing to resume"

    env = store.env(HOME=str(store.workdir))
    code, out = run_in_a_terminal([sys.executable, "-m", "azml_compat.cli", "sync", "-o",
                                    "json"], env, store.workdir)
    assert code == 0, out
    # The progress line: records and points of this journal, the rate; its last drawing
    # has every point it had to send sent.
    drawn = re.findall(r"azml sync: \S+: [\d,]+/[\d,]+ records, ([\d,]+)/([\d,]+) points \(", out)
    assert drawn, out
    done, total = (int(x.replace(",", "")) for x in drawn[-1])
    assert done == total and n - stored <= total <= n - stored + 4 * 1000, (drawn, stored)
    text = out.replace("\x1b[K", "").replace("\r\n", "\n")
    (row,) = json.loads(text[text.index("\n[") + 1:text.rindex("]") + 1])
    # Sent again: only the requests in flight when the signal came (their answer never
    # reached the journal): at most AZML_MAX_IN_FLIGHT (4) batches of 1,000.
    assert n - stored <= row["points"] <= n - stored + 4 * 1000, (row, stored)
    history = store.history(run_id, "big")
    assert [m.step for m in history] == list(range(n))  # no gap, no duplicate
    assert [m.value for m in history] == [float(i) for i in range(n)]
    assert store.journals() == []


def _running(pid: int) -> bool:
    """True while ``pid`` runs (not ours to wait for: a zombie no one reaped counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_backlog_too_big_for_the_exit_is_delivered_by_a_detached_process(server_store):
    """A list of 100,000 points logged at the end, with AZML_HANDOFF_AFTER=1: the script exits
    without waiting for them (one line says how many are left and which process delivers
    them), `azml sync --list` shows that process, and once it is done every point is in the
    run once and the run ended as the script did."""
    n = 100_000
    proc = server_store.run_script(HEADER + textwrap.dedent(f"""
        logger = get_azureml_logger()
        logger.log("big", [float(i) for i in range({n})])
    """), AZML_HANDOFF_AFTER=1, HOME=str(server_store.workdir))
    lines = [line for line in proc.stderr.splitlines() if "background process (pid" in line]
    assert len(lines) == 1, proc.stderr
    left = int(re.search(r"azml: ([\d,]+) points still to deliver", lines[0])[1].replace(",", ""))
    assert 0 < left <= n
    pid = int(re.search(r"pid (\d+)", lines[0])[1])
    try:
        if _running(pid):
            listed = azml_sync(server_store, "--list", "-o", "json")
            if _running(pid):  # still delivering after the listing: the listing must say so
                (row,) = json.loads(listed.stdout)
                assert row["state"] == f"delivering in the background (pid {pid})", row
        deadline = time.monotonic() + 600
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _running(pid), "the background delivery did not end"
    finally:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
    run = server_store.only_run()
    assert [m.step for m in server_store.history(run.info.run_id, "big")] == list(range(n))
    assert run.info.status == "FINISHED"
    assert server_store.journals() == []
    assert list((server_store.home / "journal").glob("*.log")) == []


def test_a_journal_handed_over_reads_as_delivered_in_the_background_before_its_claim(tmp_path):
    """Between the exiting script and the detached process taking the journal's lock (its
    imports: a fraction of a second) no one holds the lock; `azml sync --list` must still say
    who will deliver it, from the pid the script noted, and stop saying so once that pid is
    gone."""
    from azml_compat._core.journal import Journal
    from azml_compat._core.replay import describe

    journal = Journal.create(str(tmp_path), "handed", {"tracking_uri": "http://127.0.0.1:9",
                                                       "experiment_name": "x", "run_id": "r1"})
    waiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        journal.set_meta(delivered_by=waiting.pid)
        journal.close(prune=False)
        assert describe(journal.path)["state"] == f"delivering in the background (pid {waiting.pid})"
    finally:
        waiting.kill()
        waiting.wait(10)
    assert describe(journal.path)["state"] == "ok"
