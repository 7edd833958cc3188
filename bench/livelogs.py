"""What watching ``./logs`` (``azml_compat._core.livelogs``) costs a run that writes nothing there.

    python -m bench.livelogs          (or: python bench/livelogs.py)

1. One look (one pass of the watcher) at a missing ``./logs``, at an empty one, and at one
   holding 10 files that do not change: median of 5 rounds of 2,000 passes.
2. A whole SDK v1 script (``Run.get_context()``, then 10 s of sleep) on the SQLite default
   in a fresh folder: the CPU time of the watcher's thread over the run (its own clock,
   ``pthread_getcpuclockid``), next to the process's.

Everything runs in temporary folders (store, journals, HOME); nothing is left behind.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

SCRIPT = """
import os, threading, time
from azureml.core import Run
run = Run.get_context()
run.log("a", 1)
time.sleep(10)
(watcher,) = [t for t in threading.enumerate() if t.name == "azml-logs"]
thread = time.clock_gettime(time.pthread_getcpuclockid(watcher.ident))
print(f"{thread * 1e3:.3f} {time.process_time() * 1e3:.0f}")
"""


def _per_pass(folder: str) -> float:
    """Median µs of one watcher pass over ``folder``."""
    from azml_compat._core.livelogs import LiveLogs

    # Started now: files older than this are an earlier run's (a dispatcher is never needed).
    watcher = LiveLogs(folder, dispatcher=None, max_bytes=1 << 30, since_ms=int(time.time() * 1000))
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(2000):
            watcher._pass()
        rounds.append((time.perf_counter() - started) / 2000 * 1e6)
    return statistics.median(rounds)


def passes(root: str) -> None:
    missing = os.path.join(root, "missing", "logs")
    empty = os.path.join(root, "empty", "logs")
    os.makedirs(empty)
    quiet = os.path.join(root, "quiet", "logs")
    os.makedirs(quiet)
    old = time.time() - 3600
    for i in range(10):
        path = os.path.join(quiet, f"f{i}.log")
        with open(path, "w") as stream:
            stream.write("line\n")
        os.utime(path, (old, old))  # older than the run: left alone, as an earlier run's
    print("one pass of the ./logs watcher (median of 5 x 2,000):")
    for name, folder in (("missing", missing), ("empty", empty),
                         ("10 files of an earlier run", quiet)):
        print(f"  {name:28s} {_per_pass(folder):8.1f} µs  (one pass a second)")


def whole_run(root: str) -> None:
    folder = os.path.join(root, "run")
    os.makedirs(folder)
    with open(os.path.join(folder, "train.py"), "w") as stream:
        stream.write(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZML_"))}
    env.update(HOME=os.path.join(root, "home"), AZML_HOME=os.path.join(root, "azml"),
               MLFLOW_EXPERIMENT_NAME="livelogs", AZML_QUIET="1")
    proc = subprocess.run([sys.executable, "train.py"], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    thread_ms, process_ms = proc.stdout.split()
    print(f"a 10 s SDK v1 run with nothing in ./logs: the watcher's thread used {thread_ms} ms "
          f"of CPU, the whole process {process_ms} ms")


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        passes(root)
        whole_run(root)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
