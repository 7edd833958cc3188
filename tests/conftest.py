"""Real tracking stores for the tests: the embedded SQLite default and a real ``mlflow server``
on 127.0.0.1 (free port, stopped afterwards). No mocks."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from localserver import LocalServer, free_port  # noqa: F401 - re-exported to tests

REPO = Path(__file__).resolve().parent.parent
# Nothing the suite runs may write to the real home (journals in ~/.azml, Workbench's share
# folder in ~/.azureml): a stray journal there is retried by the user's next `azml sync`.
# Every process the suite starts inherits this HOME; the check at the end proves it held.
_REAL_HOME = Path(os.path.expanduser("~"))
_WATCHED = [_REAL_HOME / ".azml", _REAL_HOME / ".azureml"]


def _files_under(folders) -> set:
    return {p for folder in folders if folder.exists() for p in folder.rglob("*")}


# Nor into the checkout (a relative ./mlruns, ./outputs or mlflow.db of a process left in the
# repository's folder): files git does not track, apart from the tools' caches.
_CACHES = ("__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".egg-info")


def _untracked_in_repo() -> set:
    try:
        listed = subprocess.run(["git", "status", "--porcelain", "--ignored",
                                 "--untracked-files=all"], cwd=REPO, capture_output=True,
                                text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return set()  # not a git checkout (an sdist): nothing to compare
    paths = {line[3:] for line in listed.splitlines() if line[:2] in ("??", "!!")}
    return {p for p in paths if not any(part.endswith(_CACHES) for part in p.split("/"))}


_BEFORE = _files_under(_WATCHED)
_BEFORE_REPO = _untracked_in_repo()
os.environ["HOME"] = tempfile.mkdtemp(prefix="azml-tests-home-")


# Every process the tests start gets SIGINT's default disposition, however the suite was
# launched: under `nohup` or a CI runner's background job SIGINT is ignored, and an ignored
# signal stays ignored across exec, so a script sent SIGINT would go on running. A handled
# signal is reset to its default at exec: handling it here is what every child inherits.
signal.signal(signal.SIGINT, signal.default_int_handler)


class _OwnedPopen(subprocess.Popen):
    """``subprocess.Popen`` as the tests use it (``subprocess.run`` too): each process is the
    leader of its own process group, unless the caller chose its session or group, so that
    the processes a test started, and theirs (pool workers), can be ended with the test."""

    started: list | None = None  # the processes of the test running now

    def __init__(self, *args, **kwargs):
        if not {"start_new_session", "process_group", "preexec_fn"} & kwargs.keys():
            kwargs["process_group"] = 0
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # a test ignored it meanwhile
            signal.signal(signal.SIGINT, signal.default_int_handler)
        super().__init__(*args, **kwargs)
        if _OwnedPopen.started is not None:
            _OwnedPopen.started.append(self)


subprocess.Popen = _OwnedPopen


def _end(proc: subprocess.Popen) -> None:
    """Kill ``proc``'s process group (its own, or the new session it leads), else ``proc``."""
    try:
        group = os.getpgid(proc.pid) if proc.poll() is None else proc.pid
    except ProcessLookupError:
        group = proc.pid
    try:
        if group == proc.pid:
            os.killpg(group, signal.SIGKILL)  # the leader's group outlives it while members live
        elif proc.poll() is None:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    """Whatever a test started and left running (it failed, or forgot) ends with it."""
    _OwnedPopen.started = started = []
    try:
        yield
    finally:
        _OwnedPopen.started = None
        for proc in started:
            _end(proc)


def pytest_sessionfinish(session, exitstatus):
    leaked = sorted(str(p) for p in _files_under(_WATCHED) - _BEFORE)
    if leaked:
        print(f"\nthe tests wrote into the real home folder: {leaked[:5]}", file=sys.stderr)
        session.exitstatus = 1
    leaked = sorted(_untracked_in_repo() - _BEFORE_REPO)
    if leaked:
        print(f"\nthe tests wrote into the repository: {leaked[:5]}", file=sys.stderr)
        session.exitstatus = 1
# The `azml` that pip installed with this interpreter comes first on PATH, for the tests and the
# processes they start (under pyenv, `python -m pip` leaves no shim until `pyenv rehash`).
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

def _scrubbed() -> tuple[str, ...]:
    """Variables that would point a child process somewhere other than where the test says:
    every setting the library declares, plus MLflow's own that choose a store, run or server.
    AZML_SHARE_DIRECTORY stays: the autouse ``azml_home`` fixture points it into tmp for every
    child."""
    from azml_compat._config import SETTINGS

    declared = {setting.name for setting in SETTINGS} - {"AZML_SHARE_DIRECTORY"}
    mlflow_own = {"MLFLOW_EXPERIMENT_ID", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_INSECURE_TLS",
                  "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_CLIENT_CERT_PATH",
                  "MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"}
    return tuple(sorted(declared | mlflow_own))


_SCRUBBED = _scrubbed()
# The suite's own switches (set by .ci/run, read by team_support and test_ui_browser), not
# library settings: taken out of the environment here so neither the library in this process
# nor a child warns about an unknown AZML_* variable.
REQUIRE_POSTGRES = os.environ.pop("AZML_REQUIRE_POSTGRES", None) == "1"
REQUIRE_CHROMIUM = os.environ.pop("AZML_REQUIRE_CHROMIUM", None) == "1"


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["PYTHONUNBUFFERED"] = "1"
    # The line a script prints at exit saying where its run is would be one more stderr line in
    # every test that counts them; tests of that line set AZML_QUIET=0.
    env["AZML_QUIET"] = "1"
    # A test counts what a script stored once it has exited: none of it may be left to a
    # background delivery that outlives the script because a loaded machine made the exit's
    # estimate long. Tests of that handoff set AZML_HANDOFF_AFTER themselves.
    env["AZML_HANDOFF_AFTER"] = "0"
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


class MlflowServer(LocalServer):
    """The library's local server, with the scrubbed environment tests run children in."""

    def __init__(self, root: Path, backend_uri: str | None = None, extra_args=(), env=None):
        super().__init__(root, backend_uri, extra_args, env)
        self.env = clean_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", **(env or {}))


def serve_loopback(handler):
    """``(server, url)``: a threaded HTTP server for ``handler`` on a free 127.0.0.1 port,
    serving in a daemon thread (the tests' proxies in front of a real mlflow server)."""
    import http.server
    import socketserver
    import threading

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(autouse=True)
def azml_home(tmp_path, monkeypatch) -> Path:
    """In-process loggers journal under the test's own folder, never in ~/.azml, and run there."""
    home = tmp_path / "azml-home"
    monkeypatch.setenv("AZML_HOME", str(home))
    # Legacy scripts make their share directory (AZUREML_NATIVE_SHARE_DIRECTORY) under ~.
    monkeypatch.setenv("AZML_SHARE_DIRECTORY", str(tmp_path / "azml-share"))
    monkeypatch.setenv("AZML_HANDOFF_AFTER", "0")  # as in clean_env: nothing outlives the test
    # And in-process work runs in the test's folder: MLflow resolves the default artifact root
    # (./mlruns) and we make ./outputs against the process's folder, never the checkout's.
    monkeypatch.chdir(tmp_path)
    return home


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    server = MlflowServer(tmp_path_factory.mktemp("mlflow-server")).start()
    yield server
    server.stop()


@dataclass
class Store:
    """A tracking store plus a project folder to run legacy scripts in."""

    kind: str
    uri: str  # what the tests read with; for "sqlite" children get no MLFLOW_TRACKING_URI
    workdir: Path
    experiment: str
    env_extra: dict = field(default_factory=dict)

    @property
    def home(self) -> Path:
        """AZML_HOME of the scripts this store runs: their journals live under it."""
        return self.workdir.parent / "azml-home"

    def journals(self) -> list[Path]:
        return sorted((self.home / "journal").glob("*.db"))

    @property
    def client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.uri)

    def env(self, **extra) -> dict:
        values = dict(self.env_extra)
        if self.kind != "sqlite":
            values["MLFLOW_TRACKING_URI"] = self.uri
        values["MLFLOW_EXPERIMENT_NAME"] = self.experiment
        values["AZML_HOME"] = str(self.home)
        values.update(extra)
        return clean_env(**values)

    def write_script(self, code: str, name: str = "train.py") -> Path:
        path = self.workdir / name
        path.write_text(textwrap.dedent(code))
        return path

    def run_script(self, code: str, *args, name: str = "train.py", timeout: float = 120,
                   check: bool = True, **env) -> subprocess.CompletedProcess:
        path = self.write_script(code, name)
        proc = subprocess.run(
            [sys.executable, str(path), *map(str, args)], cwd=self.workdir, env=self.env(**env),
            capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def runs(self, experiment: str | None = None):
        experiment = self.client.get_experiment_by_name(experiment or self.experiment)
        if experiment is None:
            return []
        return self.client.search_runs([experiment.experiment_id], order_by=["attribute.start_time DESC"])

    def only_run(self):
        runs = self.runs()
        assert len(runs) == 1, f"expected one run, found {len(runs)}"
        return runs[0]

    def history(self, run_id: str, key: str):
        return sorted(self.client.get_metric_history(run_id, key), key=lambda m: m.step)

    def artifact_bytes(self, run_id: str, path: str) -> bytes:
        from mlflow.artifacts import download_artifacts

        local = download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=self.uri,
                                   dst_path=str(self.workdir / f"dl-{uuid.uuid4().hex}"))
        return Path(local).read_bytes()

    def artifact_paths(self, run_id: str, path: str | None = None) -> set[str]:
        found = set()
        for info in self.client.list_artifacts(run_id, path):
            if info.is_dir:
                found |= self.artifact_paths(run_id, info.path)
            else:
                found.add(info.path)
        return found


def _make_store(kind: str, tmp_path: Path, request) -> Store:
    workdir = tmp_path / "project"
    workdir.mkdir()
    experiment = f"exp-{uuid.uuid4().hex[:10]}"
    if kind == "sqlite":
        return Store(kind, f"sqlite:///{workdir / 'mlflow.db'}", workdir, experiment)
    server = request.getfixturevalue("mlflow_server")
    return Store(kind, server.url, workdir, experiment)


@pytest.fixture(params=["sqlite", "server"])
def store(request, tmp_path) -> Store:
    """Each test using this runs twice: on the embedded default and on a real server."""
    return _make_store(request.param, tmp_path, request)


@pytest.fixture
def sqlite_store(request, tmp_path) -> Store:
    return _make_store("sqlite", tmp_path, request)


@pytest.fixture
def server_store(request, tmp_path) -> Store:
    return _make_store("server", tmp_path, request)


@pytest.fixture
def make_logger(store):
    """An in-process logger on ``store`` (a fresh session, not the process singleton)."""
    from azml_compat._config import Settings
    from azml_compat._workbench.logger import AzureMLLogger
    from azml_compat._core.session import Session, run_spec

    sessions = []

    def make(**settings):
        cfg = Settings(cwd=str(store.workdir), tracking_uri=store.uri,
                       experiment_name=store.experiment, **settings)
        session = Session(cfg, run_spec(cfg))
        sessions.append(session)
        return AzureMLLogger(session)

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def azml_log():
    """The records of the ``azml`` logger, which has its own stderr handler and does not
    propagate (so pytest's ``caplog`` never sees them)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.DEBUG)
    logger = logging.getLogger("azml")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
