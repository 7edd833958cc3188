"""The benchmark cases. Each implementation runs in a fresh interpreter (a child process) so
imports, threads and atexit behaviour are what a real script gets; the child prints one JSON
line with its measurements. Ours and MLflow's own client always run on the same store."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import uuid

N_POINTS = 20_000
N_SYNC = 200  # MLflow's synchronous client manages ~20 calls/s through a server: scaled up
LIST_LEN = 100_000
PENDING_POINTS = 1_000_000

_PRELUDE = """
import json, os, sys, time
def emit(**values):
    print("BENCH " + json.dumps(values), flush=True)
def percentiles(samples):
    samples = sorted(samples)
    return {"p50_us": samples[len(samples) // 2] / 1e3,
            "p99_us": samples[int(len(samples) * 0.99)] / 1e3,
            "total_s": sum(samples) / 1e9}
def count(uri, run_id, key):
    from mlflow.tracking import MlflowClient
    return len(MlflowClient(uri).get_metric_history(run_id, key))
uri = os.environ["MLFLOW_TRACKING_URI"]
"""


def run_child(body: str, env: dict, timeout: float = 900) -> dict:
    code = _PRELUDE + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("BENCH ")]
    if not lines:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][6:])


def child_env(store, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZML_"))}
    env.update(MLFLOW_TRACKING_URI=store.uri, MLFLOW_EXPERIMENT_NAME=f"bench-{uuid.uuid4().hex[:8]}",
               AZML_HOME=store.home, PYTHONUNBUFFERED="1",
               # Workbench's share folder, made at `import azureml.logging`: inside the
               # benchmark's temporary store, never under the user's ~/.azureml
               AZML_SHARE_DIRECTORY=os.path.join(store.home, "share"))
    env.update({k: str(v) for k, v in extra.items()})
    return env


# -- case 1: time spent inside the call --------------------------------------------------------
OURS_CALLS = """
from azureml.logging import get_azureml_logger
logger = get_azureml_logger()
logger.wait_for_run(120)
clock = time.perf_counter_ns
samples = []
for i in range({n}):
    t = clock(); logger.log("m", i * 0.1); samples.append(clock() - t)
emit(**percentiles(samples))
logger.flush(600)
"""

MLFLOW_ASYNC_CALLS = """
import mlflow
mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
mlflow.start_run()
clock = time.perf_counter_ns
samples = []
for i in range({n}):
    t = clock(); mlflow.log_metric("m", i * 0.1, step=i, synchronous=False); samples.append(clock() - t)
emit(**percentiles(samples))
os._exit(0)  # MLflow's exit join would wait for its slow unbuffered queue (mlflow #20575)
"""

MLFLOW_SYNC_CALLS = """
import mlflow
from mlflow.tracking import MlflowClient
client = MlflowClient(uri)
exp = mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
run_id = client.create_run(exp.experiment_id).info.run_id
clock = time.perf_counter_ns
samples = []
for i in range({n}):
    t = clock(); client.log_metric(run_id, "m", i * 0.1, step=i); samples.append(clock() - t)
emit(**percentiles(samples))
"""


def case_call_time(store) -> dict:
    ours = run_child(OURS_CALLS.format(n=N_POINTS), child_env(store))
    mlflow_async = run_child(MLFLOW_ASYNC_CALLS.format(n=N_POINTS), child_env(store))
    sync = run_child(MLFLOW_SYNC_CALLS.format(n=N_SYNC), child_env(store))
    sync["total_s"] *= N_POINTS / N_SYNC  # scaled to the same number of points
    return {"ours": ours, "mlflow_async": mlflow_async, "mlflow_sync_scaled": sync,
            "ratio_async_over_ours": mlflow_async["total_s"] / ours["total_s"]}


# -- case v: SDK v1's run.log() against the Workbench logger's log() -----------------------------
SDKV1_CALLS = """
from azureml.core import Run
run = Run.get_context()
run.id  # waits for the run, like wait_for_run() above
clock = time.perf_counter_ns
samples = []
for i in range({n}):
    t = clock(); run.log("m", i * 0.1); samples.append(clock() - t)
emit(**percentiles(samples))
run.flush(600)
"""


def case_sdkv1_call_time(store) -> dict:
    """Time inside ``run.log()`` (SDK v1's face) and ``logger.log()`` (Workbench's), same run
    shape, same store: one face must not cost more than twice the other."""
    logger = run_child(OURS_CALLS.format(n=N_POINTS), child_env(store))
    run = run_child(SDKV1_CALLS.format(n=N_POINTS), child_env(store))
    return {"logger": logger, "run": run, "ratio_run_over_logger": run["total_s"] / logger["total_s"]}


# -- case 2 and 3: log -> persisted --------------------------------------------------------------
OURS_PERSIST = """
from azureml.logging import get_azureml_logger
logger = get_azureml_logger()
run_id = logger.wait_for_run(120)
# The read-back's client is imported off the clock, as MLflow's variants import it before their
# start: the embedded default never imports MLflow itself, so count() would pay its ~1.2 s import
# inside ours alone.
from mlflow.tracking import MlflowClient
names, steps = {names}, {steps}
start = time.perf_counter()
if {as_list}:
    call = time.perf_counter(); logger.log("m0", list(range(steps))); call = time.perf_counter() - call
else:
    call = time.perf_counter()
    for step in range(steps):
        for k in range(names):
            logger.log(f"m{{k}}", step * 0.5)
    call = time.perf_counter() - call
assert logger.flush(900)
total = sum(count(uri, run_id, f"m{{k}}") for k in range(names))
emit(seconds=time.perf_counter() - start, call_s=call, points=total)
"""

MLFLOW_BATCH_PERSIST = """
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
import mlflow
client = MlflowClient(uri)
exp = mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
run_id = client.create_run(exp.experiment_id).info.run_id
names, steps = {names}, {steps}
start = time.perf_counter()
now = int(time.time() * 1000)
points = [Metric(f"m{{k}}", step * 0.5, now, step) for step in range(steps) for k in range(names)]
for i in range(0, len(points), 1000):
    client.log_batch(run_id, metrics=points[i:i + 1000])
total = sum(count(uri, run_id, f"m{{k}}") for k in range(names))
emit(seconds=time.perf_counter() - start, points=total)
"""

MLFLOW_BUFFERED_PERSIST = """
import mlflow
mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
run_id = mlflow.start_run().info.run_id
names, steps = {names}, {steps}
start = time.perf_counter()
for step in range(steps):
    for k in range(names):
        mlflow.log_metric(f"m{{k}}", step * 0.5, step=step, synchronous=False)
mlflow.flush_async_logging()
total = sum(count(uri, run_id, f"m{{k}}") for k in range(names))
emit(seconds=time.perf_counter() - start, points=total)
mlflow.end_run()
"""


def _persist(store, names: int, steps: int, as_list: bool = False, rounds: int = 3) -> dict:
    """Each variant ``rounds`` times, alternating, and its median round: one round of each read
    ours 2.05 s against 2.54, then 2.56 against 2.30, on the same commit's SQLite default."""
    fmt = dict(names=names, steps=steps, as_list=as_list)
    variants = {"ours": (OURS_PERSIST, {}), "mlflow_log_batch": (MLFLOW_BATCH_PERSIST, {})}
    if not as_list:
        variants["mlflow_buffered_async"] = (MLFLOW_BUFFERED_PERSIST,
                                             {"MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS": 1})
    samples = {name: [] for name in variants}
    expected = names * steps
    for _ in range(rounds):
        for name, (body, extra) in variants.items():
            result = run_child(body.format(**fmt), child_env(store, **extra))
            if result["points"] != expected:
                raise RuntimeError(f"{name} persisted {result['points']} of {expected} points")
            samples[name].append(result)
    results = {name: sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
               for name, runs in samples.items()}
    ours = results["ours"]
    best = min(v["seconds"] for k, v in results.items() if k != "ours")
    results["ratio_ours_over_best"] = ours["seconds"] / best
    return results


def case_persisted(store) -> dict:
    return _persist(store, names=1, steps=N_POINTS)


def case_big_list(store) -> dict:
    return _persist(store, names=1, steps=LIST_LEN, as_list=True)


def case_many_names(store) -> dict:
    return _persist(store, names=200, steps=100)


# -- case 4: fixed overhead ----------------------------------------------------------------------
def _median_wall(args, env, repeat) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, env=env, check=True, capture_output=True, timeout=300)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _import_seconds(statement: str, env, repeat: int) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    times = [float(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                  capture_output=True, text=True).stdout) for _ in range(repeat)]
    return statistics.median(times)


LEGACY = """
import sys
{import_line}
total = 0.0
for i in range(10):
    total += sum(j * j for j in range(20_000)) ** 0.5
    {log_line}
print(total)
"""


def case_overhead(store, workdir) -> dict:
    env = child_env(store)
    ours_import = _import_seconds("from azureml.logging import get_azureml_logger", env, 7)
    mlflow_import = _import_seconds("import mlflow", env, 3)
    with_log = os.path.join(workdir, "legacy_logging.py")
    without = os.path.join(workdir, "legacy_plain.py")
    with open(with_log, "w") as fh:
        fh.write(LEGACY.format(
            import_line="from azureml.logging import get_azureml_logger\nlogger = get_azureml_logger()",
            log_line='logger.log("value", total)'))
    with open(without, "w") as fh:
        fh.write(LEGACY.format(import_line="", log_line="pass"))
    plain = _median_wall([sys.executable, without], env, 5)
    logging = _median_wall([sys.executable, with_log], env, 5)
    return {"import_s": ours_import, "mlflow_import_s": mlflow_import,
            "script_plain_s": plain, "script_logging_s": logging,
            "script_overhead_s": logging - plain}


# -- case 5: memory while the server is down -----------------------------------------------------
PENDING = """
def rss_mb(field="VmRSS"):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
from azureml.logging import get_azureml_logger
logger = get_azureml_logger()
logger.log("warmup", 0)
deadline = time.time() + 60
while "mlflow.tracking" not in sys.modules and time.time() < deadline:
    time.sleep(0.1)
time.sleep(2)  # the sender has imported MLflow and is retrying the dead server
baseline = rss_mb()
start = time.perf_counter()
for i in range({n}):
    logger.log("m", i * 0.1)
calls = time.perf_counter() - start
time.sleep(3)  # let the journal catch up
emit(baseline_mb=baseline, peak_mb=rss_mb("VmHWM"), end_mb=rss_mb(), call_s=calls,
     growth_mb=rss_mb("VmHWM") - baseline)
"""


def case_pending_memory(store, dead_uri: str) -> dict:
    env = child_env(store, MLFLOW_TRACKING_URI=dead_uri, AZML_FLUSH_TIMEOUT=1)
    result = run_child(PENDING.format(n=PENDING_POINTS), env, timeout=900)
    journal_bytes = sum(os.path.getsize(os.path.join(root, f))
                        for root, _, files in os.walk(os.path.join(store.home, "journal"))
                        for f in files)
    result["journal_mb"] = journal_bytes / 2**20
    return result


# -- case 7: forking right after the logger exists -----------------------------------------------
POOL = """
from concurrent.futures import ProcessPoolExecutor
import multiprocessing as mp
{import_line}

def work(i):
    {log_line}
    return sum(j * j for j in range(20_000))

if __name__ == "__main__":
    start = time.perf_counter()
    with ProcessPoolExecutor(4, mp_context=mp.get_context("fork")) as pool:
        results = list(pool.map(work, range(16)))
        mapped = time.perf_counter() - start
    emit(pool_s=mapped, with_shutdown_s=time.perf_counter() - start)
"""


def case_fork_pool(store, dead_uri: str, repeat: int = 3) -> dict:
    """A ProcessPoolExecutor of 4 started right after ``get_azureml_logger()`` (workers log
    one value per task): seconds from starting the pool to all 16 results, against the same
    script without the logger; with the server up and with it down."""
    plain = POOL.format(import_line="", log_line="pass")
    ours = POOL.format(
        import_line="from azureml.logging import get_azureml_logger\nlogger = get_azureml_logger()",
        log_line='logger.log("task", i)')
    out = {}
    for name, env in (("up", child_env(store)),
                      ("down", child_env(store, MLFLOW_TRACKING_URI=dead_uri, AZML_FLUSH_TIMEOUT=1))):
        base = statistics.median(run_child(plain, env)["pool_s"] for _ in range(repeat))
        timed = statistics.median(run_child(ours, env)["pool_s"] for _ in range(repeat))
        out[name] = {"plain_s": base, "ours_s": timed, "overhead_s": timed - base}
    # The one local wait a fork may have: the parent's MLflow import, if still under way.
    out["mlflow_import_s"] = _import_seconds("import mlflow", child_env(store), repeat)
    return out


# -- case b: a backlog of a million points at exit -------------------------------------------------
BACKLOG_POINTS = 1_000_000

OURS_BACKLOG = """
from azureml.logging import get_azureml_logger
logger = get_azureml_logger()
emit(run_id=logger.wait_for_run(120))
logger.log("big", [float(i) for i in range({n})])
emit(last_line=time.time())  # the script's last line; its exit delivers or hands over
"""

MLFLOW_BACKLOG = """
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
import mlflow
client = MlflowClient(uri)
exp = mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
run_id = client.create_run(exp.experiment_id).info.run_id
start = time.perf_counter()
now = int(time.time() * 1000)
points = [Metric("big", float(i), now, i) for i in range({n})]
for i in range(0, len(points), 1000):
    client.log_batch(run_id, metrics=points[i:i + 1000])
emit(seconds=time.perf_counter() - start, run_id=run_id)
"""


def _run_streaming(body: str, env: dict, timeout: float = 1800) -> tuple[dict, float, str]:
    """Like ``run_child``, also when the child exited (``time.time()``) and its stderr."""
    code = _PRELUDE + textwrap.dedent(body)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=timeout)
    exited = time.time()
    values = {}
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            values.update(json.loads(line[6:]))
    if proc.returncode != 0 or "last_line" not in values and "seconds" not in values:
        raise RuntimeError(f"benchmark child failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return values, exited, proc.stderr


def case_backlog_at_exit(store, points: int = BACKLOG_POINTS, timeout: float = 1800) -> dict:
    """One list of ``points`` logged as a script's last line: seconds from that line to the
    process's exit, and until every point is stored (the exit hands what it would take longer
    than AZML_HANDOFF_AFTER to deliver to a detached process; the journal is deleted once that
    is done); against MLflow's own client sending the same points with a ``log_batch`` loop
    (the call returns when they are stored)."""
    import re

    home = os.path.join(store.home, f"backlog-{uuid.uuid4().hex[:8]}")
    env = child_env(store, AZML_HOME=home)
    ours, exited, err = _run_streaming(OURS_BACKLOG.format(n=points), env, timeout)
    handed = re.search(r"background process \(pid (\d+)\)", err)
    deadline = time.monotonic() + timeout
    while glob_journals(home) and time.monotonic() < deadline:
        time.sleep(0.2)
    stored_at = time.time()
    if glob_journals(home):
        raise RuntimeError(f"the backlog was not delivered within {timeout} s: {err[-2000:]}")
    theirs = run_child(MLFLOW_BACKLOG.format(n=points), child_env(store), timeout)
    counted = {name: _count(store.uri, r["run_id"], "big") for name, r in
               (("ours", ours), ("mlflow", theirs))}
    for name, n in counted.items():
        if n != points:
            raise RuntimeError(f"{name} stored {n} of {points} points")
    return {"exit_s": exited - ours["last_line"], "stored_s": stored_at - ours["last_line"],
            "handed_over": bool(handed), "mlflow_s": theirs["seconds"]}


def glob_journals(home: str) -> list:
    import glob

    return glob.glob(os.path.join(home, "journal", "*.db"))


def _count(uri: str, run_id: str, key: str) -> int:
    from mlflow.tracking import MlflowClient

    return len(MlflowClient(uri).get_metric_history(run_id, key))
