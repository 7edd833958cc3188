"""The process lifecycle, as real processes on real stores: fork and pools, the run's identity
(one run per script, whatever the network does), the end of the run, and signals."""
import http.server
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import requests

from conftest import MlflowServer, Store, free_port, serve_loopback

HEADER = "from azureml.logging import get_azureml_logger\n"


def legacy(body: str) -> str:
    return HEADER + textwrap.dedent(body)


def values(store: Store, run_id: str, key: str) -> list[float]:
    return [m.value for m in store.history(run_id, key)]


def azml_sync(store: Store, **env) -> subprocess.CompletedProcess:
    proc = subprocess.run(["azml", "sync"], cwd=store.workdir, env=store.env(**env),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def own_server(tmp_path):
    """A server of this test's own, started when the test says."""
    server = MlflowServer(tmp_path / "own-server")
    yield server
    server.stop()


# -- fork and pools -----------------------------------------------------------------------------
def test_pool_workers_log_through_the_module_level_logger(store):
    proc = store.run_script(legacy("""
        import multiprocessing as mp
        logger = get_azureml_logger()          # module scope, as Workbench scripts do

        class Model:
            def __init__(self):
                self.logger = get_azureml_logger()

        model = Model()

        def work(i):
            logger.log("worker", i)            # the parent's object, used in the child
            model.logger.log("held by a class", i)
            return i

        if __name__ == "__main__":
            logger.log("main", 1)
            with mp.get_context("fork").Pool(2) as pool:
                assert pool.map(work, range(6)) == list(range(6))
                pool.close()
                pool.join()
    """), HOME=store.workdir)
    run = store.only_run()
    assert sorted(values(store, run.info.run_id, "worker")) == [0, 1, 2, 3, 4, 5], proc.stderr
    assert sorted(values(store, run.info.run_id, "held by a class")) == [0, 1, 2, 3, 4, 5]
    assert run.info.status == "FINISHED"


def test_a_forked_child_does_not_run_our_sigterm_handler(server_store):
    """Pool.terminate() sends SIGTERM: a worker must die of it, not unwind through our
    handler (raised inside an at-fork hook the exception is swallowed and the worker lives)."""
    proc = server_store.run_script(legacy("""
        import os, signal, time
        logger = get_azureml_logger()
        logger.log("x", 1)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(write, b"r")
            try:
                time.sleep(30)
            except BaseException:
                os._exit(7)          # a Python-level handler ran in the child
            os._exit(0)
        os.read(read, 1)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
        print("child", "signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status)
              else "exit %d" % os.WEXITSTATUS(status))
    """), HOME=server_store.workdir)
    assert f"child signal {signal.SIGTERM.value}" in proc.stdout


def test_sigterm_inside_the_at_fork_hooks_is_never_swallowed(server_store):
    """A SIGTERM that reaches a child while the at-fork hooks still run (a pool terminated
    while its workers start) kills it, as it would without us."""
    proc = server_store.run_script(legacy("""
        import os, signal, time
        # Registered before ours, so it runs first in the child: the signal arrives while
        # the at-fork hooks are still running.
        os.register_at_fork(after_in_child=lambda: os.kill(os.getpid(), signal.SIGTERM))
        logger = get_azureml_logger()
        logger.log("x", 1)
        pid = os.fork()
        if pid == 0:
            time.sleep(20)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("child", "signal %d" % os.WTERMSIG(status) if os.WIFSIGNALED(status)
              else "exit %d" % os.WEXITSTATUS(status))
    """), HOME=server_store.workdir)
    assert f"child signal {signal.SIGTERM.value}" in proc.stdout, proc.stderr


def test_with_pool_never_hangs_under_load(server_store):
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        server_store.run_script(legacy("""
            import multiprocessing as mp
            logger = get_azureml_logger()

            def work(i):
                logger.log("worker", i)
                return i * i

            if __name__ == "__main__":
                for attempt in range(10):
                    with mp.get_context("fork").Pool(4) as pool:   # __exit__ terminates
                        assert pool.map(work, range(8)) == [i * i for i in range(8)]
                    print("attempt", attempt, flush=True)
        """), timeout=300, HOME=server_store.workdir)
    finally:
        hog.kill()
        hog.wait()
    run = server_store.only_run()
    assert run.info.status == "FINISHED"


# -- the run's identity -------------------------------------------------------------------------
FORKING = """
    import os, sys
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp
    logger = get_azureml_logger()

    def work(i):
        logger.log("child", i)
        return os.getpid()

    if __name__ == "__main__":
        logger.log("parent", 1)
        with ProcessPoolExecutor(4, mp_context=mp.get_context("fork")) as pool:
            pids = set(pool.map(work, range(8)))
        logger.log("parent", 2)
        print("children", len(pids), flush=True)
"""


def test_server_down_children_join_the_parents_run_and_sync_delivers_one_run(own_server, tmp_path):
    workdir = tmp_path / "project"
    workdir.mkdir()
    store = Store("server", own_server.url, workdir, "forks")  # not started: the server is down
    proc = store.run_script(legacy(FORKING), AZML_FLUSH_TIMEOUT=2, HOME=workdir)
    cannot = [line for line in proc.stderr.splitlines() if "cannot" in line]
    assert len(cannot) == 1, proc.stderr  # the parent says it once; its children add nothing
    assert len(store.journals()) == 1  # the children's records are in the parent's journal
    own_server.start()
    azml_sync(store)
    run = store.only_run()  # the children's records are in the parent's run, not a second one
    assert values(store, run.info.run_id, "parent") == [1.0, 2.0]
    assert sorted(values(store, run.info.run_id, "child")) == [float(i) for i in range(8)]
    assert run.info.status == "FINISHED"
    assert store.journals() == []
    assert not list((store.home / "journal").glob("*.workers"))  # spools gone with them


def test_children_forked_before_the_run_exists_log_to_it(server_store):
    server_store.run_script(legacy(FORKING), HOME=server_store.workdir)
    run = server_store.only_run()
    assert sorted(values(server_store, run.info.run_id, "child")) == [float(i) for i in range(8)]
    assert run.data.tags["mlflow.azml.run_key"]


def test_a_child_whose_parent_journal_is_gone_creates_the_run_on_sync(own_server, tmp_path):
    workdir = tmp_path / "project"
    workdir.mkdir()
    store = Store("server", own_server.url, workdir, "orphans")
    store.run_script(legacy(FORKING), AZML_FLUSH_TIMEOUT=2, HOME=workdir)
    import sqlite3

    for journal in store.journals():
        meta = dict(sqlite3.connect(journal).execute("SELECT key, value FROM meta").fetchall())
        if meta["owned"] == "true":
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(f"{journal}{suffix}"):
                    os.unlink(f"{journal}{suffix}")
    own_server.start()
    azml_sync(store)
    run = store.only_run()
    assert sorted(values(store, run.info.run_id, "child")) == [float(i) for i in range(8)]


class SlowCreateProxy:
    """Forwards to a real server, holding every runs/create for ``delay`` seconds first (a
    server too busy to answer within the client's timeout, which still creates the run)."""

    def __init__(self, target: str, delay: float):
        self.creates = self.searches = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                proxy.searches += self.path.startswith("/api/2.0/mlflow/runs/search")
                if self.path.startswith("/api/2.0/mlflow/runs/create"):
                    proxy.creates += 1
                    threading.Event().wait(delay)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                upstream = requests.request(self.command, target + self.path, data=body,
                                            headers=headers, timeout=60)
                try:
                    self.send_response(upstream.status_code)
                    self.send_header("Content-Type",
                                     upstream.headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(upstream.content)))
                    self.end_headers()
                    self.wfile.write(upstream.content)
                except OSError:
                    pass  # the client gave up waiting

            do_GET = do_POST = do_PUT = _forward

        self.server, self.url = serve_loopback(Handler)

    def close(self):
        self.server.shutdown()


def test_a_slow_run_creation_makes_exactly_one_run(mlflow_server, tmp_path):
    proxy = SlowCreateProxy(mlflow_server.url, delay=2.5)
    workdir = tmp_path / "project"
    workdir.mkdir()
    try:
        store = Store("server", proxy.url, workdir, "slow-create")
        proc = store.run_script(legacy("""
            logger = get_azureml_logger()
            for i in range(100):
                logger.log("m", i)
        """), AZML_HTTP_TIMEOUT=1, AZML_FLUSH_TIMEOUT=120, HOME=workdir)
    finally:
        proxy.close()
    assert "runs/create" in proc.stderr or "Timeout" in proc.stderr  # it did time out
    assert proxy.searches >= 1  # after the lost answer, it looked for the run before creating
    direct = Store("server", mlflow_server.url, workdir, "slow-create")
    run = direct.only_run()
    assert values(direct, run.info.run_id, "m") == [float(i) for i in range(100)]
    assert run.info.status == "FINISHED"


def test_a_live_scripts_first_creation_needs_no_lookup(mlflow_server, tmp_path):
    """The key was made by the process a moment ago: no run can have it, so the first
    runs/create goes without the runs/search that makes a retried creation idempotent."""
    proxy = SlowCreateProxy(mlflow_server.url, delay=0)
    workdir = tmp_path / "project"
    workdir.mkdir()
    try:
        store = Store("server", proxy.url, workdir, "first-create")
        store.run_script(legacy("get_azureml_logger().log('a', 1)"), HOME=workdir)
    finally:
        proxy.close()
    assert (proxy.creates, proxy.searches) == (1, 0)
    direct = Store("server", mlflow_server.url, workdir, "first-create")
    assert direct.only_run().data.metrics == {"a": 1.0}


# -- the end of the run -------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["thread", "executor"])
def test_a_thread_still_logging_when_main_returns_is_in_the_run(server_store, how):
    start = {"thread": "threading.Thread(target=train).start()",
             "executor": "ThreadPoolExecutor(2).submit(train)"}[how]
    server_store.run_script(legacy(f"""
        import threading, time
        from concurrent.futures import ThreadPoolExecutor
        logger = get_azureml_logger()

        def train():
            for i in range(100):
                logger.log("loss", i)
                time.sleep(0.01)
            logger.log("done", 1)

        {start}
    """), HOME=server_store.workdir)
    run = server_store.only_run()
    assert values(server_store, run.info.run_id, "loss") == [float(i) for i in range(100)]
    assert run.data.metrics["done"] == 1.0
    assert run.info.status == "FINISHED"
    last = server_store.history(run.info.run_id, "done")[0].timestamp
    assert run.info.end_time >= last  # the run ended after training did


def test_logging_from_an_atexit_handler_lands_in_the_run(store):
    store.run_script(legacy("""
        import atexit
        logger = get_azureml_logger()
        logger.log("during", 1)
        atexit.register(lambda: logger.log("at exit", 2))
    """), HOME=store.workdir)
    run = store.only_run()
    assert run.data.metrics == {"during": 1.0, "at exit": 2.0}
    assert run.info.status == "FINISHED"
    assert store.journals() == []


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_the_exit_flush_exits_with_its_code_and_keeps_the_journal(tmp_path, sig, code):
    workdir = tmp_path / "project"
    workdir.mkdir()
    store = Store("server", f"http://127.0.0.1:{free_port()}", workdir, "interrupted")  # down
    path = store.write_script(legacy("""
        import threading
        logger = get_azureml_logger()
        for i in range(50):
            logger.log("m", i)
        # Python runs threading's exit hooks last-registered first: this one says the exit
        # has begun, just before ours starts waiting for the store.
        threading._register_atexit(lambda: print("exiting", flush=True))
    """))
    proc = subprocess.Popen([sys.executable, str(path)], cwd=workdir,
                            env=store.env(AZML_FLUSH_TIMEOUT=300, HOME=workdir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "exiting"
        # A signal handled while the marker hook is still returning would end Python's
        # threading shutdown before our hook runs (it is not ours to catch): give our hook
        # time to start waiting. What is tested is a signal while the exit waits for the store.
        time.sleep(0.5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # a failure must not leave it waiting out its 300 s flush
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err, err
    assert "not delivered" in err and "interrupted" in err and "azml sync" in err
    (journal,) = store.journals()
    assert str(journal) in err


def test_sigterm_while_a_fork_waits_for_an_import_is_not_swallowed(server_store):
    """The parent's before-fork hook waits for imports under way (local work); a SIGTERM
    arriving then must still end the script (KILLED, 143), not vanish inside the hook."""
    server_store.write_script("import time\ntime.sleep(5)\n", name="slowmod.py")
    path = server_store.write_script(legacy("""
        import os, sys, threading, time
        logger = get_azureml_logger()
        logger.log("x", 1)
        threading.Thread(target=lambda: __import__("slowmod"), daemon=True).start()
        time.sleep(0.5)             # the thread is inside the slow import
        print("forking", flush=True)
        pid = os.fork()             # waits for that import
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        print("survived", flush=True)
        time.sleep(30)
    """))
    proc = subprocess.Popen([sys.executable, str(path)], cwd=server_store.workdir,
                            env=server_store.env(HOME=server_store.workdir),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "forking"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert server_store.only_run().info.status == "KILLED"
