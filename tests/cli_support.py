"""Helpers for the ``azml`` CLI tests: seed runs straight through MlflowClient (fast, with the
tags the library writes), call the CLI in-process with CliRunner or as the installed ``azml``."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import tty_support

from azml_compat._core.keys import sanitize
from azml_compat._core.records import NAME_TAG_PREFIX
from azml_compat.cli import main

AZML = shutil.which("azml")
DURATION = r"^\d+:\d\d:\d\d\.\d{6}$"


class Cli:
    """The CLI against one test store, run from the store's project folder."""

    def __init__(self, store) -> None:
        self.store = store
        self._clock = int(time.time() * 1000) - 3_600_000

    # -- calling it ---------------------------------------------------------------------------
    def __call__(self, *args, code: int = 0, env=None):
        result = CliRunner().invoke(main, [str(a) for a in args], env=env)
        if code is not None and result.exit_code != code:
            raise AssertionError(f"azml {' '.join(map(str, args))}: exit {result.exit_code}, "
                                 f"expected {code}\n{result.output}\n{result.exception!r}")
        return result

    def json(self, *args):
        return json.loads(self(*args, "-o", "json").stdout)

    def run(self, *args, timeout: float = 120, **env) -> subprocess.CompletedProcess:
        """The installed ``azml`` executable, as a user's shell would run it."""
        return subprocess.run([AZML, *map(str, args)], cwd=self.store.workdir,
                              env=self.store.env(**env), capture_output=True, timeout=timeout)

    # -- seeding ------------------------------------------------------------------------------
    def seed(self, metrics=None, strings=None, params=None, artifacts=None, script="train.py",
             args=(), status="FINISHED", experiment=None) -> str:
        """A finished run like the library makes: metrics (a list is a series) and strings by
        Workbench name (mapped keys get their ``azml.name.`` tag), artifacts ``{path: bytes}``.
        Each seeded run starts a second after the previous one."""
        from mlflow.entities import Metric, Param, RunTag

        client = self.store.client
        name = experiment or self.store.experiment
        found = client.get_experiment_by_name(name)
        experiment_id = found.experiment_id if found else client.create_experiment(name)
        self._clock += 1000
        tags = {"azml.script_name": script, "azml.arguments": json.dumps(list(args)),
                "azml.working_dir": str(self.store.workdir), "mlflow.user": "tester",
                "mlflow.source.name": str(self.store.workdir / script)}
        points = []
        for original, value in (metrics or {}).items():
            key = sanitize(original)
            if key != original:
                tags[NAME_TAG_PREFIX + key] = original
            series = value if isinstance(value, list) else [value]
            points += [Metric(key, v, self._clock + i, i) for i, v in enumerate(series)]
        for original, value in (strings or {}).items():
            key = sanitize(original)
            tags[key] = value
            if key != original:
                tags[NAME_TAG_PREFIX + key] = original
        run = client.create_run(experiment_id, start_time=self._clock, tags=tags)
        run_id = run.info.run_id
        client.log_batch(run_id, metrics=points,
                         params=[Param(k, str(v)) for k, v in (params or {}).items()])
        with tempfile.TemporaryDirectory() as tmp:
            for path, data in (artifacts or {}).items():
                local = Path(tmp, path)
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(data)
                folder = str(Path(path).parent).replace("\\", "/")
                client.log_artifact(run_id, str(local), None if folder == "." else folder)
        client.set_terminated(run_id, status, end_time=self._clock + 500)
        return run_id


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory) -> Path:
    """A migrated, empty SQLite store: copying it saves each test MLflow's ~2 s of migrations."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def cli(store, empty_db, monkeypatch):
    """The CLI on ``store`` (each test runs on the SQLite default and on a server)."""
    return _cli(store, empty_db, monkeypatch)


@pytest.fixture
def sqlite_cli(sqlite_store, empty_db, monkeypatch):
    """The CLI on the SQLite default only, for tests that do not depend on the store."""
    return _cli(sqlite_store, empty_db, monkeypatch)


def _cli(store, empty_db, monkeypatch) -> Cli:
    """``store`` seen from its project folder, with the environment its scripts get: for the
    SQLite store no MLFLOW_TRACKING_URI, so the embedded default in the folder applies."""
    monkeypatch.chdir(store.workdir)
    if store.kind == "sqlite":
        shutil.copy(empty_db, store.workdir / "mlflow.db")
    for key, value in store.env().items():
        monkeypatch.setenv(key, value)
    # AZML_OUTPUT / AZURE_CORE_OUTPUT of whoever runs the tests would change every default
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "AZML_UPLOAD_OUTPUTS", "AZML_OUTPUT",
                "AZURE_CORE_OUTPUT"):
        if key not in store.env():
            monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("COLUMNS", raising=False)
    return Cli(store)


def one_line_error(result_or_proc, *words) -> str:
    """The error output: exactly one line, no traceback, naming every one of ``words``."""
    err = result_or_proc.stderr
    err = err.decode() if isinstance(err, bytes) else err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"
    return lines[0]


def tree(folder: Path) -> dict:
    """``{relative path: bytes}`` of every file below ``folder``."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_in_a_terminal(args: list, env: dict, cwd, timeout: float = 300) -> tuple[int, str]:
    """``args`` with a pseudo-terminal as stdin, stdout and stderr: ``(exit code, output)``
    (``tty_support.in_pty``, the one terminal the tests drive)."""
    return tty_support.in_pty(args, cwd, env, timeout=timeout)
