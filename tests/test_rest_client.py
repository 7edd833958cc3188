"""The one REST client: the training process talks to a server without importing MLflow; its
credential rules are MLflow's; every `azml` command ends quickly, in one line, on a server that
is down or hung."""
from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time

import pytest

from conftest import clean_env, free_port, serve_loopback
from dead_server_commands import COMMANDS, TricklingServer
from dead_server_commands import command as dead_server_command

LEGACY_SCRIPT = """
import atexit, sys
# Registered before the logger exists, so it runs after the logger's own exit hook.
atexit.register(lambda: print("MLFLOW_IMPORTED=%s" % ("mlflow" in sys.modules), flush=True))
from azureml.logging import get_azureml_logger
logger = get_azureml_logger()
logger.log("acc", 0.5)
logger.log("loss", [0.9, 0.5, 0.3])
logger.log("note", "a string")
logger.upload("notes.txt", "some text")
with open("outputs/model.txt", "w") as fh:
    fh.write("weights")
"""


def test_a_legacy_script_on_a_server_never_imports_mlflow(server_store):
    proc = server_store.run_script(LEGACY_SCRIPT)
    assert "MLFLOW_IMPORTED=False" in proc.stdout, proc.stdout + proc.stderr
    run = server_store.only_run()  # and everything arrived, through plain HTTP
    assert run.data.metrics == {"acc": 0.5, "loss": 0.3} and run.data.tags["note"] == "a string"
    assert run.info.status == "FINISHED"
    assert run.data.tags.get("mlflow.user")  # the context MLflow's client would add
    assert server_store.artifact_paths(run.info.run_id) >= {"notes.txt", "outputs/model.txt"}


def test_run_context_tags_are_mlflows_without_mlflow(tmp_path):
    from azml_compat._core.context import context_tags

    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    (repo / ".git" / "config").write_text(
        '[remote "origin"]\n\turl = https://user:s3cretTOKEN@example.com/x.git\n')
    (repo / "src").mkdir()
    tags = context_tags({"mlflow.source.name": str(repo / "src" / "train.py"), "mine": "1"})
    assert tags["mlflow.source.git.commit"] == "a" * 40
    assert tags["mlflow.source.git.branch"] == "main"
    assert "s3cretTOKEN" not in tags["mlflow.source.git.repoURL"]
    assert tags["mine"] == "1" and tags["mlflow.user"]
    packed = tmp_path / "packed"
    (packed / ".git").mkdir(parents=True)
    (packed / ".git" / "HEAD").write_text("ref: refs/heads/dev\n")
    (packed / ".git" / "packed-refs").write_text(f"# pack-refs\n{'b' * 40} refs/heads/dev\n")
    assert context_tags({"mlflow.source.name": str(packed / "t.py")})[
        "mlflow.source.git.commit"] == "b" * 40
    assert "mlflow.source.git.commit" not in context_tags(
        {"mlflow.source.name": str(tmp_path / "nogit" / "t.py")}) or (tmp_path / ".git").exists()


# -- credential rules ---------------------------------------------------------------------------
def _echo_headers(connections: list | None = None, linger: float = 0):
    """A loopback HTTP/1.1 server (it keeps a connection open unless asked to close) answering
    every request with the headers it got, as JSON; each new connection goes in ``connections``.
    With ``linger``, a connection it closes stays open that long after the answer, without a
    ``Connection: close`` header (allowed: a SHOULD in RFC 9112): a client that reuses it sends
    into a socket nobody reads, and gets "Remote end closed connection without response"."""
    import http.server
    import time

    class Echo(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            if connections is not None:
                connections.append(self.client_address)
            super().setup()

        def finish(self):
            super().finish()
            time.sleep(linger)

        def _echo(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps(dict(self.headers)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _echo

        def log_message(self, *args):
            pass

    return serve_loopback(Echo)


def test_each_request_to_a_plain_http_server_has_its_own_connection():
    """MLflow's default server (uvicorn) stalls a kept-alive request ~40 ms between its
    headers and body; a new connection does not (bench case 8 measures what that buys)."""
    from azml_compat._core.http import RestClient

    connections = []
    server, url = _echo_headers(connections, linger=0.5)
    try:
        client = RestClient(url)
        answers = [client.call("runs/get", body={"run_id": str(i)}) for i in range(3)]
    finally:
        server.shutdown()
    assert [answer["Connection"] for answer in answers] == ["close"] * 3
    assert len(connections) == 3
    # Over TLS a handshake per request costs more than the stall: connections are kept.
    assert "Connection" not in RestClient("https://mlflow.example.com")._headers


@pytest.mark.parametrize("env, expected", [
    ({"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "pw12"},
     "Basic " + base64.b64encode(b"alice:pw12").decode()),
    ({"MLFLOW_TRACKING_TOKEN": "tok123"}, "Bearer tok123"),
    # MLflow sends basic auth when both are set
    ({"MLFLOW_TRACKING_TOKEN": "tok123", "MLFLOW_TRACKING_USERNAME": "alice",
      "MLFLOW_TRACKING_PASSWORD": "pw12"}, "Basic " + base64.b64encode(b"alice:pw12").decode()),
    ({}, None),
])
def test_credentials_are_sent_as_mlflow_sends_them(monkeypatch, env, expected):
    from azml_compat._core.http import RestClient

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    server, url = _echo_headers()
    try:
        headers = RestClient(url).call("runs/get", "GET", {"run_id": "x"})
    finally:
        server.shutdown()
    assert headers.get("Authorization") == expected


def test_the_credentials_file_is_read_like_mlflow_reads_it(monkeypatch, tmp_path):
    from azml_compat._core.http import RestClient

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text(
        "[mlflow]\nmlflow_tracking_username = bob\nmlflow_tracking_password = pw34\n")
    server, url = _echo_headers()
    try:
        headers = RestClient(url).call("runs/get", "GET", {})
    finally:
        server.shutdown()
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"bob:pw34").decode()


def test_tls_settings_reach_the_session(monkeypatch):
    from azml_compat._core.http import RestClient

    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", "/certs/ca.pem")
    monkeypatch.setenv("MLFLOW_TRACKING_CLIENT_CERT_PATH", "/certs/client.pem")
    session = RestClient("https://example.invalid")._session()
    assert session.verify == "/certs/ca.pem" and session.cert == "/certs/client.pem"
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    assert RestClient("https://example.invalid")._session().verify is False


def test_plugins_and_mlflow_only_settings_send_through_mlflow(tmp_path):
    """Detected from settings and package metadata, without importing MLflow."""
    code = ("import sys; from azml_compat._core.http import mlflow_request_reason as r; "
            "print(r()); print('mlflow' in sys.modules)")
    run = lambda **env: subprocess.run([sys.executable, "-c", code], capture_output=True,  # noqa: E731
                                       text=True, timeout=60, env=clean_env(**env)).stdout.split()
    assert run() == ["None", "False"]
    assert run(MLFLOW_TRACKING_AUTH="kubernetes")[-1] == "False"
    assert "MLFLOW_TRACKING_AUTH" in " ".join(run(MLFLOW_TRACKING_AUTH="kubernetes"))
    # a header-provider plugin, registered the way an installed package registers it
    dist = tmp_path / "plug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[mlflow.request_header_provider]\nplug = plug_mod:Provider\n")
    (tmp_path / "plug_mod.py").write_text(
        "from mlflow.tracking.request_header.abstract_request_header_provider import "
        "RequestHeaderProvider\nclass Provider(RequestHeaderProvider):\n"
        "    def in_context(self): return True\n"
        "    def request_headers(self): return {'X-Plug': 'yes'}\n")
    out = " ".join(run(PYTHONPATH=str(tmp_path)))
    assert "mlflow.request_header_provider" in out and out.endswith("False")
    # and the plugin's header is on the wire (MLflow loads plugins once, at its import: a
    # fresh process)
    server, url = _echo_headers()
    try:
        sent = subprocess.run(
            [sys.executable, "-c", "import json; from azml_compat._core.http import RestClient; "
             f"print(json.dumps(RestClient({url!r}).call('runs/get', 'GET', {{}})))"],
            capture_output=True, text=True, timeout=60, env=clean_env(PYTHONPATH=str(tmp_path)))
    finally:
        server.shutdown()
    assert json.loads(sent.stdout).get("X-Plug") == "yes", sent.stderr


# -- a dead or hung server: every command ends within its bound, in one line -----------------
@pytest.fixture
def hung_server():
    """Accepts TCP connections (the kernel completes them) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


@pytest.fixture
def trickling_server():
    """Answers a status line, then one header byte a second, forever (slow-loris)."""
    with TricklingServer() as url:
        yield url


@pytest.fixture
def closed_port():
    return f"http://127.0.0.1:{free_port()}"


def _env(uri, tmp_path, **extra):
    return clean_env(MLFLOW_TRACKING_URI=uri, AZML_HOME=tmp_path / "home", HOME=tmp_path,
                     MLFLOW_EXPERIMENT_NAME="e", **extra)


def _leave_a_journal(uri, tmp_path) -> None:
    """A legacy script that could not deliver: its journal waits for `azml sync`."""
    script = tmp_path / "logs.py"
    script.write_text("from azureml.logging import get_azureml_logger\n"
                      "get_azureml_logger().log('acc', 0.5)\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=_env(uri, tmp_path, AZML_FLUSH_TIMEOUT=1))
    assert "azml sync" in proc.stderr, proc.stderr
    assert list((tmp_path / "home" / "journal").glob("*.db"))


def _run_azml(args, uri, tmp_path):
    from cli_support import AZML

    env = _env(uri, tmp_path)
    started = time.monotonic()
    proc = subprocess.run([AZML, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)  # a hang guard, not a speed check
    return proc, time.monotonic() - started


@pytest.mark.parametrize("server", ["closed_port", "hung_server", "trickling_server"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_ends_in_one_line_naming_a_dead_server(request, tmp_path, server, command):
    uri = request.getfixturevalue(server)
    if command == "sync":
        _leave_a_journal(uri, tmp_path)
    args = dead_server_command(command, tmp_path)
    proc, elapsed = _run_azml(args, uri, tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0, f"{command}: exit 0 after {elapsed:.1f} s\n{proc.stderr}"
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), (
        f"{command} after {elapsed:.1f} s:\n{proc.stderr}")
    assert uri in lines[0], f"{command} after {elapsed:.1f} s: {lines[0]}"
    if command != "submit":
        assert "ran" not in proc.stdout
    if command == "sync":  # kept for the next sync
        assert list((tmp_path / "home" / "journal").glob("*.db"))


def test_a_request_to_a_trickling_server_ends_at_its_deadline():
    """Each byte comes well within the read timeout, so only a deadline on the whole request
    (connect, headers, body) ends it: on the logging path the sender then retries."""
    import threading

    import requests

    from azml_compat._core.http import RestClient

    outcome = []
    with TricklingServer(interval=0.2) as url:
        client = RestClient(url, timeout=1)

        def call():
            try:
                client.call("runs/get", "GET", {"run_id": "x"})
            except Exception as exc:  # noqa: BLE001 - what the test looks at
                outcome.append(exc)

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(timeout=30)  # a hang guard: without a deadline it never returns
        assert not caller.is_alive(), "a request to a trickling server never ended"
    assert len(outcome) == 1 and isinstance(outcome[0], requests.exceptions.Timeout), outcome
    assert "1 s" in str(outcome[0]) and "runs/get" in str(outcome[0])
