"""Credentials never reach output or journals: a password or token written into
MLFLOW_TRACKING_URI (``user:pw@`` or a token as the user, ``TOKEN@``), and the values of
MLFLOW_TRACKING_PASSWORD/TOKEN. Every scenario runs as a real process and greps its bytes."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from cli_support import AZML
from conftest import Store, free_port

from azml_compat._redact import redact, redact_text

ENV_PASSWORD = "EnvPassw0rd-77"
ENV_TOKEN = "EnvTok3n-88"
# MLflow reads these for every request; their values must not be echoed by any message.
CREDENTIAL_ENV = {"MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": ENV_PASSWORD,
                  "MLFLOW_TRACKING_TOKEN": ENV_TOKEN}
SECRETS = ("S3cretPw-55", "S3cretTok-66", ENV_PASSWORD, ENV_TOKEN)
USERINFO = ["alice:S3cretPw-55", "S3cretTok-66"]  # a password, a token as the user


def _store(tmp_path, uri: str) -> Store:
    workdir = tmp_path / "project"
    workdir.mkdir(exist_ok=True)
    return Store("server", uri, workdir, "credentials")


def _run(store: Store, tmp_path, cmd, **env) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=store.workdir, capture_output=True, timeout=300,
                          env=store.env(HOME=str(tmp_path), **CREDENTIAL_ENV, **env))


def _assert_clean(*blobs: bytes) -> None:
    for blob in blobs:
        for secret in SECRETS:
            shown = blob.decode(errors="replace")
            assert secret.encode() not in blob, f"{secret!r} leaked in:\n{shown}"


def _journal_bytes(store: Store) -> list[bytes]:
    folder = store.home / "journal"
    return [p.read_bytes() for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


@pytest.mark.parametrize("uri", [
    "htp://alice:S3cretPw-55@host:5000",  # unknown scheme
    "http://alice:S3cretPw-55@host:50x0",  # bad port
    "htp://S3cretTok-66@host:5000",
])
def test_malformed_uri_error_names_it_without_the_secret(tmp_path, uri):
    store = _store(tmp_path, uri)
    store.write_script("from azureml.logging import get_azureml_logger\nget_azureml_logger()\n")
    proc = _run(store, tmp_path, [sys.executable, "train.py"])
    assert proc.returncode == 1
    # ConfigError is a ValueError: scripts that caught the ValueError still do.
    assert b"ConfigError: MLFLOW_TRACKING_URI=" in proc.stderr and b"@host" in proc.stderr
    _assert_clean(proc.stdout, proc.stderr)


@pytest.mark.parametrize("userinfo", USERINFO)
def test_unreachable_store_script_sync_and_cli_never_show_the_secret(tmp_path, userinfo):
    store = _store(tmp_path, f"http://{userinfo}@127.0.0.1:{free_port()}")  # nothing listens
    store.write_script("""
from azureml.logging import get_azureml_logger
logger = get_azureml_logger()
print(logger)
logger.log("acc", 0.5)
logger.upload("notes.txt", "kept for sync")
""")
    # an argument holding credentials is recorded (run tags, journal) without them
    script = _run(store, tmp_path, [sys.executable, "train.py", f"--data=https://{userinfo}@d"],
                  AZML_FLUSH_TIMEOUT=1)
    assert script.returncode == 0, script.stderr
    assert b"<AzureMLLogger" in script.stdout and b"127.0.0.1" in script.stdout
    assert b"azml sync" in script.stderr  # the records were kept, not delivered
    journals = _journal_bytes(store)
    assert journals
    _assert_clean(script.stdout, script.stderr, *journals)

    sync = _run(store, tmp_path, [AZML, "sync", "--give-up-after", "1"])
    assert sync.returncode == 1
    assert b"127.0.0.1" in sync.stderr
    _assert_clean(sync.stdout, sync.stderr, *_journal_bytes(store))

    for debug in ([], ["--debug"]):
        listed = _run(store, tmp_path, [AZML, "history", "list", *debug])
        assert listed.returncode == 1
        if debug:
            assert b"Traceback" in listed.stderr
        _assert_clean(listed.stdout, listed.stderr)


@pytest.mark.parametrize("userinfo", USERINFO)
def test_what_a_run_leaves_for_the_next_names_no_secret(tmp_path, userinfo, mlflow_server):
    """The requests-in-flight level kept for the next process to a server: its file's name and
    content carry neither the URI nor its credentials, and the next run to that server starts from it."""
    uri = mlflow_server.url.replace("http://", f"http://{userinfo}@")
    store = _store(tmp_path, uri)
    store.write_script("""
from azureml.logging import get_azureml_logger
logger = get_azureml_logger()
for i in range(12_000):  # 12 requests: two measurements of a level
    logger.log("loss", i * 0.5)
""")
    for attempt in range(2):
        script = _run(store, tmp_path, [sys.executable, "train.py"])
        assert script.returncode == 0, script.stderr
        kept = sorted((store.home / "in-flight").glob("*.json"))
        assert len(kept) == 1, kept
        state = json.loads(kept[0].read_bytes())
        assert "127.0.0.1" not in kept[0].name and b"127.0.0.1" not in kept[0].read_bytes()
        _assert_clean(kept[0].name.encode(), kept[0].read_bytes(), *_journal_bytes(store))
        if attempt == 0:
            # A level no climb from one reaches in two measurements, at a rate no server
            # gives: the next run starts there, and its file still carries (half of) it.
            kept[0].write_text(json.dumps({**state, "limit": 3, "rates": {"3": 1e12}}))
    assert state["rates"]["3"] > 1e11, state


@pytest.mark.parametrize("uri, shown", [
    ("http://alice:pw@host:5000/x", "http://alice:***@host:5000/x"),
    ("http://TOKEN123@host", "http://***@host"),
    ("https://a%40b:p%3Aw@host", "https://a%40b:***@host"),
    ("htp://alice:S3cret@host:5000", "htp://alice:***@host:5000"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
    ("/plain/path@2", "/plain/path@2"),
])
def test_redact(uri, shown):
    assert redact(uri) == shown
    assert redact_text(f"request to {uri}/api failed") == f"request to {shown}/api failed"


def test_redact_text_hides_credential_variables(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ENV_PASSWORD)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", ENV_TOKEN)
    text = redact_text(f"auth failed for {ENV_PASSWORD} and Bearer {ENV_TOKEN}")
    assert text == "auth failed for *** and Bearer ***"
