"""``python -m bench``: our logger against MLflow's own client, on a local ``mlflow server``
and on the embedded SQLite store, in one run. Prints a table and writes bench/results.md."""
from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from localserver import LocalServer, free_port

from . import cases

HERE = Path(__file__).resolve().parent


@dataclass
class Store:
    name: str
    uri: str
    home: str


def _row(store, case, measure, ours, theirs, ratio, target, ok) -> dict:
    return {"store": store, "case": case, "measure": measure, "ours": ours, "mlflow": theirs,
            "ratio": ratio, "target": target, "verdict": "PASS" if ok else "FAIL"}


def _rows(store: Store, workdir: str, selected: set) -> list[dict]:
    rows = []
    if "1" in selected:
        r = cases.case_call_time(store)
        ours, theirs = r["ours"], r["mlflow_async"]
        ratio = r["ratio_async_over_ours"]
        rows.append(_row(store.name, "1 call time, 20k points", "p50 / p99 µs per call",
                         f"{ours['p50_us']:.2f} / {ours['p99_us']:.2f}",
                         f"async {theirs['p50_us']:.0f} / {theirs['p99_us']:.0f}; "
                         f"sync {r['mlflow_sync_scaled']['p50_us']:.0f} / "
                         f"{r['mlflow_sync_scaled']['p99_us']:.0f}",
                         f"{ratio:.0f}x less time in calls than MLflow async", ">= 100x",
                         ratio >= 100))
    if "v" in selected:
        r = cases.case_sdkv1_call_time(store)
        run, logger, ratio = r["run"], r["logger"], r["ratio_run_over_logger"]
        rows.append(_row(store.name, "v SDK v1 run.log() vs logger.log(), 20k points",
                         "p50 / p99 µs per call", f"{run['p50_us']:.2f} / {run['p99_us']:.2f}",
                         f"logger.log {logger['p50_us']:.2f} / {logger['p99_us']:.2f}",
                         f"{ratio:.2f}x the time inside logger.log()", "<= 2x", ratio <= 2.0))
    for key, label, fn in (("2", "2 log->persisted, 20k points", cases.case_persisted),
                           ("3a", "3 one list of 100k numbers", cases.case_big_list),
                           ("3b", "3 200 names x 100 steps", cases.case_many_names)):
        if key[0] not in selected:
            continue
        r = fn(store)
        theirs = {k: v["seconds"] for k, v in r.items() if k.startswith("mlflow")}
        best = min(theirs, key=theirs.get)
        ratio = r["ratio_ours_over_best"]
        rows.append(_row(store.name, label, "seconds until stored and read back",
                         f"{r['ours']['seconds']:.2f} (in calls {r['ours']['call_s']:.3f})",
                         "; ".join(f"{k[7:]} {v:.2f}" for k, v in theirs.items()),
                         f"{ratio:.2f}x the best ({best[7:]})", "<= 1.0x", ratio <= 1.0))
    if "4" in selected:
        r = cases.case_overhead(store, workdir)
        rows.append(_row(store.name, "4 import", "seconds", f"{r['import_s']:.3f}",
                         f"import mlflow {r['mlflow_import_s']:.2f}",
                         f"{r['import_s'] / r['mlflow_import_s']:.2f}x", "<= 0.15 s",
                         r["import_s"] <= 0.15))
        rows.append(_row(store.name, "4 legacy script, 10 values", "wall seconds",
                         f"{r['script_logging_s']:.2f} (plain {r['script_plain_s']:.2f})", "",
                         f"+{r['script_overhead_s']:.2f} s", "report", True))
    if "5" in selected and store.name == "server":
        r = cases.case_pending_memory(store, f"http://127.0.0.1:{free_port()}")
        rows.append(_row(store.name, "5 1M points pending, server down", "RSS growth MB",
                         f"{r['growth_mb']:.1f} (journal {r['journal_mb']:.0f} MB on disk)",
                         "cannot start a run with the server down", "", "< 100 MB",
                         r["growth_mb"] < 100))
    if "7" in selected and store.name == "server":
        r = cases.case_fork_pool(store, f"http://127.0.0.1:{free_port()}")
        # What a fork may wait for is local: the parent's MLflow import, if still under way
        # (shown for scale). The network is never waited for: server down costs what up does.
        up = r["up"]["overhead_s"]
        for state, target, ok in (("up", "report", True),
                                  ("down", "<= up + 2 s (no network wait)",
                                   r["down"]["overhead_s"] <= up + 2.0)):
            m = r[state]
            rows.append(_row(store.name, f"7 pool of 4 right after the logger, server {state}",
                             "seconds to 16 results", f"{m['ours_s']:.2f} (plain {m['plain_s']:.2f})",
                             f"import mlflow {r['mlflow_import_s']:.2f}", f"+{m['overhead_s']:.2f} s",
                             target, ok))
    if "b" in selected and store.name == "server":
        r = cases.case_backlog_at_exit(store)
        rows.append(_row(store.name, "b 1M points as the script's last line",
                         "s from that line to exit / until all stored",
                         f"{r['exit_s']:.1f} / {r['stored_s']:.0f}"
                         + (" (handed to a background delivery)" if r["handed_over"] else ""),
                         f"log_batch(1000) loop {r['mlflow_s']:.0f}",
                         f"stored in {r['stored_s'] / r['mlflow_s']:.2f}x MLflow's time",
                         "exit <= 35 s (AZML_HANDOFF_AFTER 30 + 2 s measuring)",
                         r["exit_s"] <= 35))
    if "6" in selected and store.name == "server":
        from . import history_list

        r = history_list.measure(10_000)
        ours, theirs = r["azml_history_list_s"], r["mlflow_search_runs_process_s"]
        rows.append(_row(store.name, "6 azml history list, 10k runs", "seconds, subprocess",
                         f"{ours:.2f} ({r['rows_listed']} rows)",
                         f"python + search_runs, same page {theirs:.2f}; mlflow runs list "
                         f"(all) {r['mlflow_runs_list_all_s']:.2f}",
                         f"{ours / theirs:.2f}x", "< 2 s", ours < 2.0))
    rows += _footprint_rows(store, workdir, selected)
    return rows


def _footprint_rows(store: Store, workdir: str, selected: set) -> list[dict]:
    """Cases 8, 9 (both stores) and 6 on SQLite: whole processes, see bench/footprint.py."""
    with contextlib.ExitStack() as stack:
        return _footprint_rows_in(store, workdir, selected, stack)


def _footprint_rows_in(store: Store, workdir: str, selected: set, stack) -> list[dict]:
    from . import footprint

    rows = []
    if "8" in selected:
        r = footprint.case_one_line(store, workdir)
        plain, ours, theirs = r["plain"], r["ours"], r["mlflow"]
        over = {k: ours[k] - plain[k] for k in ("wall_s", "cpu_s", "rss_mb")}
        mlflow_over = {k: theirs[k] - plain[k] for k in ("wall_s", "cpu_s", "rss_mb")}
        # On SQLite the targets are wall and peak RSS (the store is written in-process, its
        # CPU is the script's own); on a server all three.
        targeted = {"server": {"wall_s", "cpu_s", "rss_mb"}, "sqlite": {"wall_s", "rss_mb"}}
        for key, unit, limit, label in (("wall_s", "s", 0.3, "wall"), ("cpu_s", "s", 0.3, "CPU"),
                                        ("rss_mb", "MB", 40, "peak RSS")):
            digits = 0 if unit == "MB" else 2
            target = key in targeted.get(store.name, ())
            rows.append(_row(store.name, f"8 one-line script `log(\"a\", 1)`, {label}",
                             f"{label} over a plain script ({unit}), whole process",
                             f"+{over[key]:.{digits}f} ({ours[key]:.{digits}f}; plain "
                             f"{plain[key]:.{digits}f})",
                             f"mlflow.log_metric one line +{mlflow_over[key]:.{digits}f} "
                             f"({theirs[key]:.{digits}f})",
                             f"{over[key] / mlflow_over[key]:.2f}x MLflow's overhead"
                             if mlflow_over[key] > 0 else "",
                             f"<= {limit} {unit} over plain" if target else "report",
                             over[key] <= limit if target else True))
    if "8" in selected and store.name == "sqlite":
        r = footprint.case_new_folder(store, workdir)
        ours, theirs, plain = r["ours"], r["mlflow"], r["plain"]
        over = ours["wall_s"] - plain["wall_s"]
        rows.append(_row(store.name, "8 one-line script in a new folder (creates mlflow.db)",
                         "wall over a plain script s (script's own lines s) / peak RSS MB",
                         f"+{over:.2f} ({ours['wall_s']:.2f}; {ours['caller_s']:.3f}) / "
                         f"{ours['rss_mb']:.0f}",
                         f"mlflow.log_metric one line +{theirs['wall_s'] - plain['wall_s']:.2f} "
                         f"({theirs['wall_s']:.2f}; {theirs['caller_s']:.2f}) / "
                         f"{theirs['rss_mb']:.0f}",
                         f"{ours['wall_s'] / theirs['wall_s']:.2f}x MLflow's wall",
                         "<= 0.5 s over plain", over <= 0.5))
    if "9" in selected:
        # On a server twice: MLflow's default (uvicorn, 4 workers) and `--workers 1`, which
        # takes concurrent requests more slowly than one at a time (``_core/inflight.py`'s `InFlight``).
        servers = [(store, "")]
        if store.name == "server":
            single = stack.enter_context(LocalServer(Path(workdir) / "server-1-worker",
                                                     extra_args=["--workers", "1"]))
            single.warm()
            servers.append((Store(store.name, single.url, store.home + "-1-worker"),
                            ", `mlflow server --workers 1`"))
        limit = {"server": 0.5, "sqlite": 0.2}[store.name]
        for target, label in servers:
            r = footprint.case_points(target, workdir)
            ours, theirs = r["ours"], r["mlflow"]
            ratio = ours["wall_s"] / theirs["wall_s"]
            # On a server, the floor beside it: a stdlib script sending nothing but the
            # requests (``footprint.BARE_POINTS``), as a ratio of MLflow's wall too.
            bare = r.get("bare")
            floor = (f"; stdlib client, the requests alone {bare['wall_s']:.2f} / "
                     f"{bare['cpu_s']:.2f} / {bare['rss_mb']:.0f}" if bare else "")
            floor_ratio = (f" (that client {bare['wall_s'] / theirs['wall_s']:.2f}x)"
                           if bare else "")
            rows.append(_row(store.name, f"9 20k points, whole script until stored{label}",
                             "wall s / CPU s / peak RSS MB, whole process",
                             f"{ours['wall_s']:.2f} / {ours['cpu_s']:.2f} / {ours['rss_mb']:.0f}",
                             f"start_run + log_batch(1000) script {theirs['wall_s']:.2f} / "
                             f"{theirs['cpu_s']:.2f} / {theirs['rss_mb']:.0f}{floor}",
                             f"{ratio:.2f}x MLflow's wall{floor_ratio}",
                             f"<= {limit}x", ratio <= limit))
    if "6" in selected and store.name == "sqlite":
        r = footprint.case_history_list_sqlite(workdir)
        for n, m in r.items():
            target = n == 1_000
            ours, theirs = m["ours"], m["mlflow"]
            rows.append(_row(store.name, f"6 azml history list, {n:,} runs",
                             "wall s (CPU s) / peak RSS MB, subprocess",
                             f"{ours['wall_s']:.2f} ({ours['cpu_s']:.2f}) / {ours['rss_mb']:.0f}; "
                             f"{m['rows']} rows",
                             f"python + search_runs, same page {theirs['wall_s']:.2f} "
                             f"({theirs['cpu_s']:.2f}) / {theirs['rss_mb']:.0f}",
                             f"{ours['wall_s'] / theirs['wall_s']:.2f}x",
                             "< 1 s" if target else "report",
                             ours["wall_s"] < 1.0 if target else True))
    return rows


def _markdown(rows: list[dict], header: str) -> str:
    cols = ["store", "case", "measure", "ours", "mlflow", "ratio", "target", "verdict"]
    lines = [header, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def _inside(folder: str):
    """The in-process cases make ``./outputs`` (and MLflow ``./mlruns``) where they run, as a
    script does in its project: there, not in the folder the benchmark was started from."""
    started_in = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(started_in)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--cases", default="123456789bv",
                        help="which cases, e.g. 12 (default all; b: 1M points at exit; v: SDK v1 run.log)")
    parser.add_argument("--stores", default="server,sqlite", help="server, sqlite or both")
    parser.add_argument("--output", default=str(HERE / "results.md"))
    args = parser.parse_args(argv)
    selected = set(args.cases)
    import mlflow

    header = (f"# Benchmark results\n\n{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}; "
              f"{platform.node()}, {platform.machine()}, {os.cpu_count()} cores; Python "
              f"{platform.python_version()}; mlflow {mlflow.__version__}. Reproduce: "
              f"`python -m bench`. Ratios compare ours with MLflow's own client in the same run "
              f"on the same store.")
    rows = []
    output = Path(args.output).resolve()  # before the benchmark moves into its own folder
    with tempfile.TemporaryDirectory(prefix="azml-bench-") as tmp, _inside(tmp):
        # Children cache their bytecode as a user's Python does, whatever the caller's
        # environment says: under PYTHONDONTWRITEBYTECODE our editable install compiled ~40
        # modules at every start while MLflow's wheel had its .pyc. (Not PYTHONPYCACHEPREFIX:
        # it hides the installed .pyc too, and the first child to import MLflow compiled all of
        # it inside its timed section: case 2 read 7.5 s instead of 2.)
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        for name in args.stores.split(","):
            home = os.path.join(tmp, name, "azml-home")
            if name == "server":
                with LocalServer(Path(tmp) / "server") as server:
                    server.warm()  # a user's server has been up: every worker's store open
                    rows += _rows(Store(name, server.url, home), tmp, selected)
            else:
                db = Path(tmp) / "sqlite" / "mlflow.db"
                db.parent.mkdir(parents=True, exist_ok=True)
                from mlflow.tracking import MlflowClient

                MlflowClient(f"sqlite:///{db}").search_experiments()  # migrations, off the clock
                rows += _rows(Store(name, f"sqlite:///{db}", home), tmp, selected)
            print(_markdown(rows, header), flush=True)
    text = _markdown(rows, header)
    output.write_text(text)
    print(f"written to {output}")
    return 0 if all(r["verdict"] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
