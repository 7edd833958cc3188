"""What a user pays per script, measured as whole processes (cases 8, 9 and 6 on SQLite).

Each variant is a real script run by a fresh interpreter, from process start to exit, and
measured from outside: wall time, CPU (user + sys) and peak RSS of that one child, read from
``os.wait4``'s resource usage (per process, not a running total). Variants alternate (A, B, C,
A, B, C, ...) so load on the shared machine hits them alike; each figure is the median.

* case 8: a one-line legacy script (``log("a", 1)``) against a plain script that does
  nothing, and against MLflow's own one line (``mlflow.log_metric("a", 1)``);
* case 9: 20,000 points, whole script until stored (our exit waits until everything is in
  the store), against the same script written with MLflow's fastest mode as a whole script:
  import, ``start_run``, ``log_batch`` of 1,000, end;
* on SQLite also both in a new folder, where the first run creates ``mlflow.db``;
* case 6 on SQLite: ``azml history list`` on 1, 1,000 and 10,000 runs.

Every run's points are counted in the store afterwards: a variant that did not store what it
logged fails the benchmark instead of looking fast.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid

REPEAT = 5
REPEAT_POINTS = 3  # ~5-20 s per script on a loaded 2-core machine
REPEAT_NEW_FOLDER = 3
N_POINTS = 20_000

PLAIN = "pass\n"
OURS_ONE_LINE = """\
import time
start = time.perf_counter()
from azureml.logging import get_azureml_logger
get_azureml_logger().log("a", 1)
print("CALLER", time.perf_counter() - start)
"""
MLFLOW_ONE_LINE = """\
import time
start = time.perf_counter()
import mlflow
mlflow.log_metric("a", 1)
print("CALLER", time.perf_counter() - start)
"""
OURS_POINTS = """\
from azureml.logging import get_azureml_logger
logger = get_azureml_logger()
for i in range({n}):
    logger.log("m", i * 0.5)
"""
MLFLOW_POINTS = """\
import time
import mlflow
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
with mlflow.start_run() as run:
    client = MlflowClient()
    points = []
    for i in range({n}):
        points.append(Metric("m", i * 0.5, int(time.time() * 1000), i))
    for j in range(0, len(points), 1000):
        client.log_batch(run.info.run_id, metrics=points[j:j + 1000])
"""


# The floor on `mlflow server --workers 1`, as a script: standard library only (no import to
# speak of), the 20 request bodies built before the first is sent, one keep-alive connection,
# each request sent as the last one returns (one at a time is what that server takes fastest,
# ``_core/inflight.py``). Its wall is the interpreter, the run's creation and the server's own
# time for the 20 requests. A server with several workers takes requests in flight faster, so
# there a pipelining client goes under it (ours does on MLflow's default server).
BARE_POINTS = """\
import http.client, json, os, time, urllib.parse
url = urllib.parse.urlsplit(os.environ["MLFLOW_TRACKING_URI"])
connection = http.client.HTTPConnection(url.hostname, url.port)

def call(method, path, body=None):
    connection.request(method, "/api/2.0/mlflow/" + path, body=body,
                       headers={{"Content-Type": "application/json"}})
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise SystemExit(f"{{path}}: HTTP {{response.status}} {{data[:300]!r}}")
    return json.loads(data)

name = os.environ["MLFLOW_EXPERIMENT_NAME"]
try:
    experiment = call("GET", "experiments/get-by-name?experiment_name="
                      + urllib.parse.quote(name))["experiment"]["experiment_id"]
except SystemExit:
    experiment = call("POST", "experiments/create", json.dumps({{"name": name}}))["experiment_id"]
run = call("POST", "runs/create", json.dumps({{"experiment_id": experiment,
           "start_time": int(time.time() * 1000)}}))["run"]["info"]["run_id"]
points = [{{"key": "m", "value": i * 0.5, "timestamp": int(time.time() * 1000), "step": i}}
          for i in range({n})]
bodies = [json.dumps({{"run_id": run, "metrics": points[j:j + 1000]}})
          for j in range(0, len(points), 1000)]
for body in bodies:
    call("POST", "runs/log-batch", body)
call("POST", "runs/update", json.dumps({{"run_id": run, "status": "FINISHED",
                                        "end_time": int(time.time() * 1000)}}))
"""


# The child's peak RSS must be its own: Linux carries the forking process's resident size into
# the child's ru_maxrss (kept across exec), so measured straight from the benchmark (which has
# imported MLflow, ~165 MB) a script doing nothing showed 165 MB. This wrapper is a bare
# interpreter (~10 MB) that forks and execs the script and reports ``os.wait4``'s usage of it.
WRAPPER = """
import json, os, sys, time
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print("USAGE " + json.dumps({"wall_s": time.perf_counter() - start,
                             "cpu_s": usage.ru_utime + usage.ru_stime,
                             "rss_mb": usage.ru_maxrss / 1024,
                             "code": os.waitstatus_to_exitcode(status)}), file=sys.stderr)
"""


def run_process(args: list, env: dict, cwd: str) -> dict:
    """One command (``args[0]`` a path) as a whole process: wall, CPU and peak RSS of that
    child alone, and the ``CALLER`` seconds it printed, if any."""
    proc = subprocess.run([sys.executable, "-c", WRAPPER, *args], env=env, cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=900)
    usage = [line for line in proc.stderr.splitlines() if line.startswith("USAGE ")]
    if not usage or json.loads(usage[-1][6:])["code"] != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(usage[-1][6:])
    caller = [float(line.split()[1]) for line in proc.stdout.splitlines()
              if line.startswith("CALLER ")]
    return {"wall_s": result["wall_s"], "cpu_s": result["cpu_s"], "rss_mb": result["rss_mb"],
            "caller_s": caller[0] if caller else None}


def _median(samples: list[dict]) -> dict:
    keys = [k for k in samples[0] if samples[0][k] is not None]
    return {k: statistics.median(s[k] for s in samples) for k in keys}


def _env(store, workdir: str, experiment: str, embedded: bool) -> dict:
    """The child's environment: the store (the embedded default in ``workdir`` for SQLite,
    no MLFLOW_TRACKING_URI at all), its own experiment, everything it writes in temp folders."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZML_"))}
    env.update(MLFLOW_EXPERIMENT_NAME=experiment, AZML_HOME=store.home,
               AZML_SHARE_DIRECTORY=os.path.join(workdir, "share"), PYTHONUNBUFFERED="1")
    if not embedded:
        env["MLFLOW_TRACKING_URI"] = store.uri
    return env


def _alternate(variants: dict, store, root: str, repeat: int, new_folder: bool = False) -> dict:
    """``{name: script text}`` each run ``repeat`` times, alternating; medians and the runs'
    experiments. SQLite: the scripts use the embedded default of their folder (the store's own
    folder, or with ``new_folder`` an empty one each time, so the run creates mlflow.db)."""
    embedded = store.name == "sqlite"
    names = {name: f"footprint-{name}-{uuid.uuid4().hex[:8]}" for name in variants}
    paths = {}
    for name, text in variants.items():
        # never "mlflow.py": it would shadow the package
        paths[name] = os.path.join(root, f"script_{name}.py")
        with open(paths[name], "w") as fh:
            fh.write(text)
    samples = {name: [] for name in variants}
    folders = {name: [] for name in variants}
    # One unmeasured round first, in experiments of its own: every variant's bytecode is
    # cached (``python -m bench`` lets children write it, as an installed package has its
    # .pyc) and every server worker has served the variant once.
    for name in variants:
        cwd = os.path.join(root, f"warm-{name}") if new_folder else (
            os.path.dirname(store.uri[len("sqlite:///"):]) if embedded else root)
        os.makedirs(cwd, exist_ok=True)
        run_process([sys.executable, paths[name]],
                    _env(store, root, names[name] + "-warm", embedded), cwd)
    for i in range(repeat):
        for name in variants:
            if new_folder:
                cwd = os.path.join(root, f"{name}-{i}")
                os.makedirs(cwd)
            elif embedded:
                cwd = os.path.dirname(store.uri[len("sqlite:///"):])
            else:
                cwd = root
            folders[name].append(cwd)
            env = _env(store, root, names[name], embedded)
            samples[name].append(run_process([sys.executable, paths[name]], env, cwd))
    return {name: {**_median(samples[name]), "experiment": names[name], "folders": folders[name]}
            for name in variants}


def _stored(uri: str, experiment: str, key: str) -> list[int]:
    """Points of ``key`` in each run of ``experiment``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    runs = client.search_runs([found.experiment_id], max_results=1000)
    return [len(client.get_metric_history(run.info.run_id, key)) for run in runs]


def _check(uri: str, result: dict, names, key: str, points: int, repeat: int) -> None:
    for name in names:
        counts = _stored(uri, result[name]["experiment"], key)
        if counts != [points] * repeat:
            raise RuntimeError(f"{name}: expected {repeat} runs with {points} points of {key!r}, "
                               f"found {counts}")


def case_one_line(store, workdir: str) -> dict:
    """Case 8: ``log("a", 1)`` as a whole process, over a plain script, and MLflow's own."""
    root = tempfile.mkdtemp(prefix="one-line-", dir=workdir)
    result = _alternate({"plain": PLAIN, "ours": OURS_ONE_LINE, "mlflow": MLFLOW_ONE_LINE},
                        store, root, REPEAT)
    _check(store.uri, result, ("ours", "mlflow"), "a", 1, REPEAT)
    return result


def case_points(store, workdir: str) -> dict:
    """Case 9: 20,000 points until stored, whole script, ours vs MLflow's log_batch script;
    on a server also ``BARE_POINTS``, the requests alone (the floor on a single worker)."""
    root = tempfile.mkdtemp(prefix="points-", dir=workdir)
    variants = {"ours": OURS_POINTS.format(n=N_POINTS), "mlflow": MLFLOW_POINTS.format(n=N_POINTS)}
    if store.name == "server":
        variants["bare"] = BARE_POINTS.format(n=N_POINTS)
    result = _alternate(variants, store, root, REPEAT_POINTS)
    _check(store.uri, result, tuple(variants), "m", N_POINTS, REPEAT_POINTS)
    return result


def case_new_folder(store, workdir: str) -> dict:
    """SQLite only: the one-line script in a folder without mlflow.db, so the first run
    creates it (~68 migrations). ``caller_s`` is the time the script's own two lines took:
    what the first-run database creation costs the caller, as opposed to the process exit."""
    root = tempfile.mkdtemp(prefix="new-folder-", dir=workdir)
    result = _alternate({"plain": PLAIN, "ours": OURS_ONE_LINE, "mlflow": MLFLOW_ONE_LINE},
                        store, root, REPEAT_NEW_FOLDER, new_folder=True)
    for name in ("ours", "mlflow"):
        for folder in result[name]["folders"]:
            counts = _stored(f"sqlite:///{os.path.join(folder, 'mlflow.db')}",
                             result[name]["experiment"], "a")
            if counts != [1]:
                raise RuntimeError(f"{name} in a new folder stored {counts}, expected [1]")
    return result


# -- case 6 on SQLite: azml history list ---------------------------------------------------------
def case_history_list_sqlite(workdir: str, sizes=(1, 1_000, 10_000), repeat: int = 3) -> dict:
    """``azml history list`` (a table, default --max) as a user's shell runs it in a project
    folder holding the embedded store with N runs, alternating with the same page fetched by
    a fresh Python process through MLflow's client."""
    from mlflow.tracking import MlflowClient

    from azml_compat._core.query import DEFAULT_MAX

    from .history_list import EXPERIMENT, SEARCH_PAGE, seed

    azml = shutil.which("azml") or os.path.join(os.path.dirname(sys.executable), "azml")
    template = os.path.join(workdir, "history-template.db")
    MlflowClient(f"sqlite:///{template}").search_experiments()  # migrations, off the clock
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "AZML_"))}
    env["MLFLOW_EXPERIMENT_NAME"] = EXPERIMENT
    out = {}
    for n in sizes:
        folder = os.path.join(workdir, f"history-{n}")
        os.makedirs(folder)
        db = os.path.join(folder, "mlflow.db")
        shutil.copy(template, db)
        seed(db, os.path.join(folder, "mlruns"), n)
        ours, theirs = [], []
        for _ in range(repeat):
            ours.append(run_process([azml, "history", "list"], env, folder))
            theirs.append(run_process([sys.executable, "-c", SEARCH_PAGE, f"sqlite:///{db}",
                                       EXPERIMENT, str(DEFAULT_MAX)], env, folder))
        listed = subprocess.run([azml, "history", "list", "-o", "json"], env=env, cwd=folder,
                                capture_output=True, check=True, timeout=600).stdout
        out[n] = {"ours": _median(ours), "mlflow": _median(theirs), "rows": len(json.loads(listed))}
        if out[n]["rows"] != min(n, DEFAULT_MAX):
            raise RuntimeError(f"azml history list showed {out[n]['rows']} of {n} runs")
    return out
