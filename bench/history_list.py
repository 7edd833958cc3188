"""How long ``azml history list`` takes on a store with many runs, served by a local
``mlflow server`` (the target: 10,000 runs listed in under 2 s, as a person at a terminal waits).

    python bench/history_list.py [--runs N] [--repeat K]

Seeds N finished runs (3 metrics and 3 tags each, the library's shape) straight into a fresh
SQLite file with MLflow's own schema and table models (10,000 runs: ~3 s, against minutes
through the API), serves it with ``mlflow server`` on a free 127.0.0.1 port (``LocalServer``),
and times, each the median of K runs: ``azml history list`` (default --max) as a user's shell
runs it; the same page fetched by a fresh Python process with ``MlflowClient.search_runs``; that search alone,
in process; and ``mlflow runs list`` (which lists every run). ``measure(n_runs)`` returns the
figures as a dict for a benchmark runner.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from localserver import LocalServer

EXPERIMENT = "bench"
SEARCH_PAGE = """
import sys
from mlflow.tracking import MlflowClient
client = MlflowClient(sys.argv[1])
exp = client.get_experiment_by_name(sys.argv[2])
client.search_runs([exp.experiment_id], max_results=int(sys.argv[3]),
                   order_by=["attributes.start_time DESC"])
"""


def seed(db_path: str, artifact_root: str, n_runs: int) -> str:
    """N finished runs in a new SQLite store, inserted in one transaction; the experiment id."""
    from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlRun, SqlTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{db_path}", artifact_root)
    experiment_id = store.create_experiment(EXPERIMENT)
    now = int(time.time() * 1000)
    runs, metrics, tags = [], [], []
    for i in range(n_runs):
        run_id, start = uuid.uuid4().hex, now - (n_runs - i) * 1000
        runs.append(dict(run_uuid=run_id, name=f"run-{i}", source_type="LOCAL",
                         source_name="train.py", entry_point_name="", user_id="bench",
                         status="FINISHED", start_time=start, end_time=start + 4892,
                         source_version="", lifecycle_stage="active", experiment_id=int(experiment_id),
                         artifact_uri=f"{artifact_root}/{experiment_id}/{run_id}/artifacts"))
        for key, value in (("Accuracy", i / n_runs), ("loss", 1 - i / n_runs), ("regularization rate", 0.01)):
            metrics.append(dict(key=key, value=value, timestamp=start, step=0, is_nan=False, run_uuid=run_id))
        for key, value in (("azml.script_name", "train.py"), ("azml.arguments", json.dumps([str(i)])),
                           ("mlflow.user", "bench")):
            tags.append(dict(key=key, value=value, run_uuid=run_id))
    with store.ManagedSessionMaker() as session:
        for model, rows in ((SqlRun, runs), (SqlMetric, metrics), (SqlLatestMetric, metrics), (SqlTag, tags)):
            session.execute(model.__table__.insert(), rows)
    store.engine.dispose()
    return experiment_id


def _timed(cmd, env, repeat: int) -> tuple[float, bytes]:
    times, out = [], b""
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True, check=True).stdout
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def measure(n_runs: int = 10_000, repeat: int = 3) -> dict:
    """Seed, serve, time; every figure in seconds (medians of ``repeat``)."""
    from azml_compat._core.query import DEFAULT_MAX

    azml = shutil.which("azml") or sys.exit("azml is not installed: pip install -e .")
    with tempfile.TemporaryDirectory(prefix="azml-bench-") as tmp:
        db, artifacts = os.path.join(tmp, "mlflow.db"), os.path.join(tmp, "artifacts")
        start = time.perf_counter()
        experiment_id = seed(db, artifacts, n_runs)
        seeded = time.perf_counter() - start
        with LocalServer(tmp, backend_uri=f"sqlite:///{db}") as server:
            url = server.url
            env = {**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_EXPERIMENT_NAME": EXPERIMENT}
            listed, _ = _timed([azml, "history", "list"], env, repeat)  # as typed: a table
            rows = len(json.loads(_timed([azml, "history", "list", "-o", "json"], env, 1)[1]))
            page, _ = _timed([sys.executable, "-c", SEARCH_PAGE, url, EXPERIMENT, str(DEFAULT_MAX)],
                             env, repeat)
            everything, _ = _timed([sys.executable, "-m", "mlflow", "runs", "list",
                                    "--experiment-id", experiment_id], env, 1)
            from mlflow.tracking import MlflowClient

            client, times = MlflowClient(url), []
            for _ in range(repeat):
                begin = time.perf_counter()
                client.search_runs([experiment_id], max_results=DEFAULT_MAX,
                                   order_by=["attributes.start_time DESC"])
                times.append(time.perf_counter() - begin)
    return {"runs": n_runs, "rows_listed": rows, "seed_s": round(seeded, 2),
            "azml_history_list_s": round(listed, 2),
            "mlflow_search_runs_process_s": round(page, 2),
            "mlflow_search_runs_in_process_s": round(statistics.median(times), 3),
            "mlflow_runs_list_all_s": round(everything, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    result = measure(args.runs, args.repeat)
    print(f"runs in store:                        {result['runs']:,} (seeded in {result['seed_s']} s)")
    print(f"azml history list ({result['rows_listed']} rows), subprocess:  {result['azml_history_list_s']} s")
    print(f"same page, python + MlflowClient.search_runs: {result['mlflow_search_runs_process_s']} s")
    print(f"same page, search_runs alone (in process):    {result['mlflow_search_runs_in_process_s']} s")
    print(f"mlflow runs list (every run), subprocess:     {result['mlflow_runs_list_all_s']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
