"""Worker processes: what reaches the run, and what a log() call costs in a worker.

    python -m bench.workers          (or: python bench/workers.py)

1. Each worker pattern of a real script (a with-block Pool, a DataLoader-style Process ended by
   terminate(), os.fork + os._exit, a spawn Pool) as a script in a fresh folder on the SQLite
   default: runs made, points stored (counted with MLflow's client), files left in the journal
   folder. Every one must be a single run with every point stored.
2. log() in the parent and in a forked child: median of 5 rounds of 20,000 calls. A worker
   appends each record to its spool with one os.write (so terminate(), os._exit() and SIGKILL
   lose nothing), the parent only queues it: the gap is that system call.

Everything runs in temporary folders (store, journals, HOME); nothing is left behind.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

HEADER = "from azureml.logging import get_azureml_logger\nlogger = get_azureml_logger()\n"
PATTERNS = {
    "with Pool(2) (fork), 6 points": ("worker", 6, """
        import multiprocessing as mp
        def work(i):
            logger.log("worker", i)
            return i
        if __name__ == "__main__":
            logger.log("main", 1)
            with mp.get_context("fork").Pool(2) as pool:
                pool.map(work, range(6))
    """),
    "DataLoader-style Process ended by terminate(), 400 points": ("batch", 400, """
        import multiprocessing as mp, time
        def loader(ready):
            for i in range(400):
                logger.log("batch", i)
            ready.set()
            while True:
                time.sleep(0.1)
        if __name__ == "__main__":
            logger.log("main", 1)
            ctx = mp.get_context("fork")
            ready = ctx.Event()
            worker = ctx.Process(target=loader, args=(ready,), daemon=True)
            worker.start()
            ready.wait(60)
            worker.terminate()
            worker.join()
    """),
    "os.fork + os._exit, 4 x 250 points": ("loss", 1000, """
        import os
        logger.log("main", 1)
        children = []
        for n in range(4):
            pid = os.fork()
            if pid == 0:
                for i in range(250):
                    logger.log("loss", i)
                os._exit(0)
            children.append(pid)
        for pid in children:
            os.waitpid(pid, 0)
    """),
    "spawn Pool(2), close/join, 6 points": ("worker", 6, """
        import multiprocessing as mp
        def work(i):
            logger.log("worker", i)
            return i
        if __name__ == "__main__":
            logger.log("main", 1)
            pool = mp.get_context("spawn").Pool(2)
            pool.map(work, range(6))
            pool.close()
            pool.join()
    """),
}
COST = """
    import os, statistics, time
    N = 20000

    def measure(tag):
        rounds = []
        for _ in range(5):
            started = time.perf_counter()
            for i in range(N):
                logger.log("loss", float(i))
            rounds.append((time.perf_counter() - started) / N * 1e6)
        print(f"{tag}: {statistics.median(rounds):.2f} us per log()", flush=True)

    measure("parent")
    pid = os.fork()
    if pid == 0:
        measure("forked child")
        logger.flush(120)
        os._exit(0)
    os.waitpid(pid, 0)
"""


def _run(folder: str, code: str) -> subprocess.CompletedProcess:
    with open(os.path.join(folder, "train.py"), "w") as f:
        f.write(HEADER + textwrap.dedent(code))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZML_", "MLFLOW_"))}
    env.update(AZML_HOME=os.path.join(folder, "home"), AZML_QUIET="1", HOME=folder,
               AZML_SHARE_DIRECTORY=os.path.join(folder, "share"))
    return subprocess.run([sys.executable, "train.py"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=600)


def patterns() -> bool:
    from mlflow.tracking import MlflowClient

    ok = True
    for name, (key, expected, code) in PATTERNS.items():
        with tempfile.TemporaryDirectory(prefix="azml-bench-workers-") as folder:
            proc = _run(folder, code)
            client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
            runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
            stored = sum(len(client.get_metric_history(r.info.run_id, key)) for r in runs)
            journal = os.path.join(folder, "home", "journal")
            left = len(os.listdir(journal)) if os.path.isdir(journal) else 0
            good = proc.returncode == 0 and len(runs) == 1 and stored == expected
            ok = ok and good
            print(f"{'PASS' if good else 'FAIL'}  {name}: {len(runs)} run(s), "
                  f"{stored}/{expected} '{key}' points stored, {left} file(s) left in the "
                  "journal folder", flush=True)
    return ok


def cost() -> None:
    with tempfile.TemporaryDirectory(prefix="azml-bench-workers-") as folder:
        proc = _run(folder, COST)
        print(proc.stdout.strip() or proc.stderr.strip(), flush=True)


def main() -> int:
    ok = patterns()
    cost()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
