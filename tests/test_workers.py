"""Worker processes of every kind log into their parent's one run, as real scripts in fresh
folders, counted with MLflow's own client: fork, spawn and forkserver; Pool, ProcessPoolExecutor,
Process and DataLoader-style loops; ended by close/join, by the with-block's terminate(), by
os._exit(), sys.exit() and SIGKILL; and subprocesses, which learn the run from the environment."""
import json
import signal
import subprocess
import textwrap

import pytest

from conftest import Store

HEADER = "from azureml.logging import get_azureml_logger\n"


def legacy(body: str) -> str:
    return HEADER + textwrap.dedent(body)


def steps(store: Store, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in store.history(run_id, key))


def values(store: Store, run_id: str, key: str) -> list[float]:
    return sorted(m.value for m in store.history(run_id, key))


def one_finished_run(store: Store, proc):
    runs = store.runs()
    assert len(runs) == 1, (f"{len(runs)} runs: "
                            f"{[(r.info.run_name, r.info.status) for r in runs]}\n{proc.stderr}")
    run = runs[0]
    assert run.info.status == "FINISHED", proc.stderr
    return run


def nothing_left_behind(store: Store) -> None:
    journal = store.home / "journal"
    left = sorted(p.name for p in journal.rglob("*")) if journal.exists() else []
    assert left == [], left


def continues_the_parent(store: Store, run_id: str, parent_points: int, total: int) -> None:
    """The parent logged ``loss`` ``parent_points`` times first; every point has its own step,
    the workers' after the parent's."""
    assert steps(store, run_id, "loss") == list(range(total))
    parent = sorted(m.step for m in store.history(run_id, "loss") if m.value < 0)
    assert parent == list(range(parent_points))


# A worker logs through the module-level logger, as Workbench scripts do; the parent logs
# ``loss`` -1, -2, -3 before the workers start and the workers log ``loss`` >= 0.
POOL = """
    import multiprocessing as mp
    logger = get_azureml_logger()

    def work(i):
        logger.log("loss", i)
        logger.log("worker", i)
        return i

    if __name__ == "__main__":
        for i in range(1, 4):
            logger.log("loss", -i)
        ctx = mp.get_context("{method}")
"""


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_a_with_pool_terminating_its_workers_keeps_every_point_in_one_run(store, method):
    proc = store.run_script(legacy(POOL.format(method=method) + """
        with ctx.Pool(2) as pool:           # __exit__ calls terminate(): SIGTERM to the workers
            assert pool.map(work, range(6)) == list(range(6))
    """), timeout=180)
    run = one_finished_run(store, proc)
    assert values(store, run.info.run_id, "worker") == list(range(6))
    continues_the_parent(store, run.info.run_id, 3, 9)
    nothing_left_behind(store)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_pool_closed_and_joined_is_one_run(store, method):
    proc = store.run_script(legacy(POOL.format(method=method) + """
        pool = ctx.Pool(2)
        assert pool.map(work, range(6)) == list(range(6))
        pool.close()
        pool.join()
        logger.log("after", 1)
    """), timeout=180)
    run = one_finished_run(store, proc)
    assert values(store, run.info.run_id, "worker") == list(range(6))
    assert values(store, run.info.run_id, "after") == [1.0]
    continues_the_parent(store, run.info.run_id, 3, 9)
    nothing_left_behind(store)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_process_pool_executor_is_one_run(store, method):
    proc = store.run_script(legacy(POOL.format(method=method) + """
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(2, mp_context=ctx) as pool:
            assert list(pool.map(work, range(6))) == list(range(6))
    """), timeout=180)
    run = one_finished_run(store, proc)
    assert values(store, run.info.run_id, "worker") == list(range(6))
    continues_the_parent(store, run.info.run_id, 3, 9)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_dataloader_style_worker_ended_by_terminate_keeps_its_points(store, method):
    """A worker loop that never returns (DataLoader workers wait on their index queue) is
    ended by terminate(): it dies at once, and the 400 points it logged are in the run."""
    proc = store.run_script(legacy("""
        import multiprocessing as mp, time
        logger = get_azureml_logger()

        def loader(ready):
            for i in range(400):
                logger.log("batch", i)
            ready.set()
            while True:
                time.sleep(0.1)

        if __name__ == "__main__":
            logger.log("epoch", 0)
            ctx = mp.get_context("%s")
            ready = ctx.Event()
            worker = ctx.Process(target=loader, args=(ready,), daemon=True)
            worker.start()
            assert ready.wait(120)
            started = time.monotonic()
            worker.terminate()
            worker.join()
            print("ended in %%.2f s, exit %%d" %% (time.monotonic() - started, worker.exitcode))
    """ % method), timeout=180)
    ended, code = proc.stdout.split("ended in ")[1].split(" s, exit ")
    assert float(ended) < 1.0 and int(code) == -signal.SIGTERM
    run = one_finished_run(store, proc)
    assert values(store, run.info.run_id, "batch") == list(range(400))
    nothing_left_behind(store)


@pytest.mark.parametrize("pause", [0, 0.5])
def test_forked_children_ending_with_os_exit_keep_every_point(store, pause):
    proc = store.run_script(legacy("""
        import os, sys, time
        logger = get_azureml_logger()
        logger.log("loss", -1)
        pids = []
        for n in range(4):
            pid = os.fork()
            if pid == 0:
                for i in range(250):
                    logger.log("loss", n * 250 + i)
                time.sleep(%s)
                os._exit(0)
            pids.append(pid)
        for pid in pids:
            os.waitpid(pid, 0)
    """ % pause), timeout=180)
    run = one_finished_run(store, proc)
    assert values(store, run.info.run_id, "loss") == [-1.0] + list(range(1000))
    continues_the_parent(store, run.info.run_id, 1, 1001)
    nothing_left_behind(store)


def test_children_ending_by_sys_exit_and_by_sigkill_keep_their_points(store):
    proc = store.run_script(legacy("""
        import os, signal, sys
        logger = get_azureml_logger()
        logger.log("parent", 1)
        pid = os.fork()
        if pid == 0:
            for i in range(100):
                logger.log("exited", i)
            sys.exit(3)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 3
        pid = os.fork()
        if pid == 0:
            for i in range(100):
                logger.log("killed", i)
            os.kill(os.getpid(), signal.SIGKILL)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == -signal.SIGKILL
    """), timeout=180)
    run = one_finished_run(store, proc)
    assert values(store, run.info.run_id, "exited") == list(range(100))
    assert values(store, run.info.run_id, "killed") == list(range(100))
    nothing_left_behind(store)


def test_a_spawned_process_ended_by_terminate_leaves_no_run_running(store):
    proc = store.run_script(legacy("""
        import multiprocessing as mp, time
        logger = get_azureml_logger()

        def loop(ready):
            logger.log("spawned", 1)
            ready.set()
            while True:
                time.sleep(0.1)

        if __name__ == "__main__":
            logger.log("parent", 1)
            ctx = mp.get_context("spawn")
            ready = ctx.Event()
            worker = ctx.Process(target=loop, args=(ready,))
            worker.start()
            assert ready.wait(120)
            worker.terminate()
            worker.join()
    """), timeout=180)
    run = one_finished_run(store, proc)
    assert values(store, run.info.run_id, "spawned") == [1.0]


def test_a_subprocess_logs_into_the_parents_run(store):
    store.write_script(HEADER + "get_azureml_logger().log('child', 7)\n", name="child.py")
    proc = store.run_script(legacy("""
        import subprocess, sys
        logger = get_azureml_logger()
        logger.log("parent", 1)
        subprocess.run([sys.executable, "child.py"], check=True)
    """), timeout=180)
    run = one_finished_run(store, proc)
    assert values(store, run.info.run_id, "child") == [7.0]
    assert values(store, run.info.run_id, "parent") == [1.0]


def test_a_workers_flush_means_the_store_has_its_points(store):
    """flush() in a worker returns once the parent delivered the worker's records; the worker
    then reads them back from the store with MLflow's own client."""
    proc = store.run_script(legacy("""
        import multiprocessing as mp, os
        logger = get_azureml_logger()

        def work(n):
            for i in range(5):
                logger.log("w%d" % n, i)
            assert logger.flush(120)
            from mlflow.tracking import MlflowClient
            got = MlflowClient().get_metric_history(logger.wait_for_run(60), "w%d" % n)
            return len(got)

        if __name__ == "__main__":
            logger.log("parent", 1)
            with mp.get_context("spawn").Pool(2) as pool:
                print("stored", pool.map(work, range(2)))
    """), timeout=240, MLFLOW_TRACKING_URI=store.uri)
    assert "stored [5, 5]" in proc.stdout, proc.stderr
    one_finished_run(store, proc)


def test_workers_of_a_killed_parent_are_delivered_by_sync(store):
    """The parent dies by SIGKILL: what its journal holds, what its workers logged before
    (taken in by the parent) and after (only in their spools) all reach the one run, once."""
    proc = store.run_script(legacy("""
        import multiprocessing as mp, os, signal, time
        logger = get_azureml_logger()

        def work(i):
            logger.log("worker", i)
            return i

        def orphan():
            for i in range(100):
                logger.log("orphan", i)
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(0.5)
            for i in range(100, 200):
                logger.log("orphan", i)

        if __name__ == "__main__":
            logger.log("parent", 1)
            with mp.get_context("fork").Pool(2) as pool:
                pool.map(work, range(6))
            mp.get_context("fork").Process(target=orphan).start()
            time.sleep(60)
    """), timeout=180, check=False)
    assert proc.returncode == -signal.SIGKILL
    synced = subprocess.run(["azml", "sync"], cwd=store.workdir, env=store.env(),
                            capture_output=True, text=True, timeout=300)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    runs = store.runs()
    assert len(runs) == 1, [(r.info.run_name, r.info.status) for r in runs]
    run_id = runs[0].info.run_id
    assert values(store, run_id, "worker") == list(range(6))
    assert values(store, run_id, "parent") == [1.0]
    assert values(store, run_id, "orphan") == list(range(200))
    assert steps(store, run_id, "orphan") == list(range(200))
    nothing_left_behind(store)


def listed_tables(store: Store, run_id: str) -> list[str]:
    tags = store.client.get_run(run_id).data.tags
    return sorted(e["path"] for e in json.loads(tags.get("mlflow.loggedArtifacts", "[]")))


@pytest.mark.parametrize("ending", ["exit", "sigkill"])
def test_tables_of_workers_and_parent_are_all_listed(store, ending):
    """A table is found through the run's mlflow.loggedArtifacts list (the UI, load_table):
    a worker's tables and the parent's all stay on it, whoever logged last and whether the
    parent delivers them or, once it is killed, azml sync does."""
    proc = store.run_script(legacy(f"""
        import multiprocessing as mp, os, signal
        logger = get_azureml_logger()

        def work(i):
            logger.log(f"worker {{i}}", {{"fold": [i, i], "score": [0.5, 0.25]}})
            return i

        if __name__ == "__main__":
            logger.log("parent before", {{"x": [1, 2]}})
            with mp.get_context("fork").Pool(2) as pool:
                pool.map(work, range(2))
            logger.log("parent after", {{"y": [3]}})
            if {ending == "sigkill"}:
                logger.flush(60)  # the parent's own records are stored: only the list is at stake
                os.kill(os.getpid(), signal.SIGKILL)
    """), timeout=180, check=False)
    if ending == "sigkill":
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        synced = subprocess.run(["azml", "sync"], cwd=store.workdir, env=store.env(),
                                capture_output=True, text=True, timeout=300)
        assert synced.returncode == 0, synced.stdout + synced.stderr
    else:
        assert proc.returncode == 0, proc.stderr
    run_id = store.only_run().info.run_id
    names = ["parent before", "parent after", "worker 0", "worker 1"]
    assert listed_tables(store, run_id) == sorted(f"metrics/{n}.json" for n in names)
    for name in names:
        table = json.loads(store.artifact_bytes(run_id, f"metrics/{name}.json"))
        assert table["data"], name
