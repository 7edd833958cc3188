"""Delivery never loses, never blocks, never lies: undeliverable records are set aside and the
rest goes on; artifact names arrive exactly; a full disk, a lone surrogate, a half-made journal
or a store that keeps failing neither stop delivery nor make the exit message untrue."""
import http.server
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import requests

from conftest import MlflowServer, Store, free_port, serve_loopback

HEADER = "from azureml.logging import get_azureml_logger\n"
BAD_NAMES = ["x" * 300 + ".txt", "model", "model/w.bin", "%2e%2e/notes.txt"]


def azml(store: Store, *args, check=True, **env) -> subprocess.CompletedProcess:
    proc = subprocess.run(["azml", *args], cwd=store.workdir, env=store.env(HOME=str(store.home),
                                                                             **env),
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def journal_rows(path, table="records") -> list:
    db = sqlite3.connect(path)
    try:
        return db.execute(f"SELECT * FROM {table}").fetchall()
    finally:
        db.close()


def stored_bytes(store: Store, run_id: str, name: str) -> bytes:
    """The artifact's bytes, fetched by its exact name (MLflow's download_artifacts parses a
    name with '?', '#' or '%' as a URI and asks for another one)."""
    root = store.client.get_run(run_id).info.artifact_uri
    if store.kind == "server":
        quoted = urllib.parse.quote(f"{root.split(':', 1)[1].lstrip('/')}/{name}")
        response = requests.get(f"{store.uri}/api/2.0/mlflow-artifacts/artifacts/{quoted}",
                                timeout=60)
        response.raise_for_status()
        return response.content
    return (Path(urllib.parse.urlsplit(root).path if "://" in root else root) / name).read_bytes()


def values(store: Store, run_id: str, key: str) -> list[float]:
    return [m.value for m in store.history(run_id, key)]


# -- one undeliverable record does not block the others ------------------------------------------
def test_undeliverable_uploads_and_outputs_are_set_aside_and_delivery_goes_on(store):
    proc = store.run_script(HEADER + textwrap.dedent(f"""
        import os
        logger = get_azureml_logger()
        for name in {BAD_NAMES!r}:
            logger.upload(name, "content of " + name)
        logger.upload("fine.txt", "fine")
        os.mkfifo("outputs/pipe")
        os.symlink("/nonexistent/target", "outputs/dangling")
        open("outputs/real.txt", "w").write("real")
        for i in range(100):
            logger.log("after", i)
    """), HOME=str(store.home), timeout=240)
    run = store.only_run()
    run_id = run.info.run_id
    assert run.info.status == "FINISHED"
    assert values(store, run_id, "after") == [float(i) for i in range(100)]
    assert store.artifact_bytes(run_id, "fine.txt") == b"fine"
    assert store.artifact_bytes(run_id, "outputs/real.txt") == b"real"
    assert store.artifact_bytes(run_id, "model") == b"content of model"
    assert "outputs/pipe" not in store.artifact_paths(run_id)
    assert "not a regular file" in proc.stderr and "outputs/pipe" in proc.stderr
    (journal,) = store.journals()  # kept: it holds what the store refused
    rejected = {row[2]: row[3] for row in journal_rows(journal, "rejected")}
    assert "model/w.bin" in rejected and "x" * 300 + ".txt" in rejected
    if store.kind == "server":  # the server refuses '..' however it is spelled
        assert "%2e%2e/notes.txt" in rejected
    else:  # a local store keeps the name as written, inside the run
        assert stored_bytes(store, run_id, "%2e%2e/notes.txt") == b"content of %2e%2e/notes.txt"
    assert journal_rows(journal) == []
    assert "refused by" in proc.stderr and "azml sync --list" in proc.stderr


def test_unreadable_file_records_are_rejected_not_retried(make_logger, tmp_path):
    logger = make_logger()
    dispatcher = logger._session.dispatcher
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "a-folder.bin"
    folder.mkdir()
    bad = [dispatcher.put("file", "outputs", str(fifo)),
           dispatcher.put("file", "outputs", str(tmp_path / "gone.bin")),  # ENOENT of the source
           dispatcher.put("file", "outputs", str(folder))]  # a folder named like a file
    logger.log("after", 1).wait(120)
    for handle, words in zip(bad, ["not a regular file", "cannot read", "not a regular file"]):
        with pytest.raises(Exception, match=words):
            handle.wait(1)


def test_one_artifact_upload_attempt_is_bounded_on_a_hung_server(tmp_path):
    """A server that accepts connections and never answers: one attempt ends at the timeout,
    so the retry policy (and `azml sync --give-up-after`) decides, not MLflow's retries."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(50)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    from azml_compat._core.stores.rest import RestStore

    store = RestStore(url)
    store.TIMEOUT = 2
    store.__dict__["_roots"] = {"r": (store.http, "1/r/artifacts")}
    with pytest.raises(Exception, match="timeout"):
        store.upload_bytes("r", "a.txt", b"x")  # one try, bounded by the timeout
    listener.close()


# -- artifact names ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["q?x=1", "frag#ment", "pct%41"])
def test_artifact_names_arrive_exactly_or_are_refused_clearly(make_logger, store, name):
    logger = make_logger()
    handle = logger.upload(name, b"bytes of " + name.encode())
    logger.log("after", 1).wait(120)
    run_id = logger.run_id
    listed = {info.path for info in store.client.list_artifacts(run_id)}
    if store.kind == "server" and name != "q?x=1":
        # The server decodes %XX until none is left and refuses '#': no client can store these
        # names there. Refused with a clear error, never stored under another name.
        with pytest.raises(Exception, match="cannot store a name"):
            handle.wait(1)
        assert listed == set()
        return
    handle.wait(1)
    assert listed == {name}
    assert stored_bytes(store, run_id, name) == b"bytes of " + name.encode()


# -- a proxy's HTML 4xx is not a rejection -------------------------------------------------------
class HtmlProxy:
    """Forwards to a real server, answering the first log-batch requests with an HTML 404;
    with ``hang_uploads``, artifact uploads are accepted and never answered."""

    def __init__(self, target: str, refusals: int, hang_uploads: bool = False):
        self.target, self.refusals, self.refused = target, refusals, 0
        self.hung = threading.Event()  # set when the proxy stops: hung handlers let go
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if hang_uploads and self.command == "PUT":
                    proxy.hung.wait(600)
                    return None
                if self.path.startswith("/api/2.0/mlflow/runs/log-batch"):
                    with proxy.lock:
                        refuse = proxy.refused < proxy.refusals
                        proxy.refused += refuse
                    if refuse:
                        return self._answer(404, b"<html><body>404 Not Found</body></html>",
                                            "text/html")
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length")}
                upstream = requests.request(self.command, proxy.target + self.path, data=body,
                                            headers=headers, timeout=60)
                self._answer(upstream.status_code, upstream.content,
                             upstream.headers.get("Content-Type", "application/json"))

            def _answer(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _forward

        self.server, self.url = serve_loopback(Handler)

    def close(self):
        self.hung.set()
        self.server.shutdown()


def test_sync_gives_up_on_a_hung_artifact_upload_within_its_bound(mlflow_server, tmp_path):
    proxy = HtmlProxy(mlflow_server.url, refusals=0, hang_uploads=True)
    workdir = tmp_path / "project"
    workdir.mkdir()
    try:
        store = Store("server", proxy.url, workdir, "hung-upload")
        store.run_script(HEADER + textwrap.dedent("""
            logger = get_azureml_logger()
            logger.log("before", 1).wait(120)
            logger.upload("a.txt", "never answered")
            logger.log("after", 2)
        """), AZML_FLUSH_TIMEOUT=3, HOME=str(store.home))
        assert len(store.journals()) == 1
        # MLflow's client retried inside one attempt for minutes: the subprocess timeout
        # (300 s) is what fails here if an attempt is not bounded.
        done = azml(store, "sync", "--give-up-after", "1", check=False)
    finally:
        proxy.close()
    assert done.returncode != 0 and "not delivered" in done.stderr
    assert len(store.journals()) == 1  # kept for the next sync


def test_an_html_404_from_a_proxy_is_retried_not_rejected(mlflow_server, tmp_path):
    proxy = HtmlProxy(mlflow_server.url, refusals=3)
    workdir = tmp_path / "project"
    workdir.mkdir()
    try:
        store = Store("server", proxy.url, workdir, "html404")
        store.run_script(HEADER + textwrap.dedent("""
            logger = get_azureml_logger()
            for i in range(3):   # one point per request: a refused one has nothing to split
                logger.log("m", i)
                logger.flush(120)
            for i in range(3, 44):
                logger.log("m", i)
        """), AZML_FLUSH_TIMEOUT=120, HOME=str(store.home))
    finally:
        proxy.close()
    assert proxy.refused == 3
    direct = Store("server", mlflow_server.url, workdir, "html404")
    run = direct.only_run()
    assert values(direct, run.info.run_id, "m") == [float(i) for i in range(44)]
    assert store.journals() == []  # nothing rejected, nothing left: pruned


def test_sync_list_shows_every_journal(sqlite_store):
    store = sqlite_store
    store.run_script(HEADER + textwrap.dedent("""
        logger = get_azureml_logger()
        logger._put("tag", "bad,key", "v")   # refused by the store: set aside
        logger.log("good", 1)
    """), HOME=str(store.home))
    (kept,) = store.journals()
    junk = store.home / "journal" / "0000garbage.db"
    junk.write_bytes(b"not a database" * 100)
    rows = json.loads(azml(store, "sync", "--list", "-o", "json").stdout)
    by_name = {os.path.basename(r["journal"]): r for r in rows}
    row = by_name[kept.name]
    assert row["run_id"] == store.only_run().info.run_id
    assert row["tracking_uri"] == store.uri and row["pending"] == 0 and row["rejected"] == 1
    assert row["age_s"] >= 0 and row["state"] == "ok"
    assert by_name["0000garbage.db"]["state"].startswith("unreadable")
    table = azml(store, "sync", "--list", "-o", "table").stdout
    assert kept.name in table and "Rejected" in table and "unreadable" in table
    azml(store, "sync")
    assert kept.exists()  # syncing never deletes what the store refused
    assert store.only_run().info.status == "FINISHED"  # kept, not taken for abandoned


def test_sync_removes_what_a_killed_creation_left_half_built(sqlite_store):
    folder = sqlite_store.home / "journal"
    folder.mkdir(parents=True)
    (folder / ".dead.db.partial").write_bytes(b"half")
    (folder / "dead.lock").write_bytes(b"")
    azml(sqlite_store, "sync")
    assert not (folder / ".dead.db.partial").exists()


# -- a lone surrogate ----------------------------------------------------------------------------
def test_a_lone_surrogate_is_escaped_and_nothing_around_it_is_lost(own_server, tmp_path):
    """Server down: everything is journaled (surrogates included) and sync delivers it all."""
    workdir = tmp_path / "project"
    workdir.mkdir()
    store = Store("server", own_server.url, workdir, "surrogate")
    proc = store.run_script(HEADER + textwrap.dedent("""
        logger = get_azureml_logger()
        for i in range(600):
            logger.log("before", i)
        logger.log("note", "caf\\udce9")
        logger.log("caf\\udce9 score", 1.5)
        logger.upload("caf\\udce9.txt", "text")
        for i in range(600):
            logger.log("after", i)
    """), AZML_FLUSH_TIMEOUT=2, HOME=str(store.home))
    (journal,) = store.journals()
    kept = len(journal_rows(journal))
    assert kept >= 1200 and f"{kept} kept in {journal}" in proc.stderr
    assert "lost" not in proc.stderr
    own_server.start()
    out = json.loads(azml(store, "sync", "-o", "json").stdout)
    assert out[0]["delivered"] == kept and out[0]["rejected"] == 0
    run = store.only_run()
    assert values(store, run.info.run_id, "before") == [float(i) for i in range(600)]
    assert values(store, run.info.run_id, "after") == [float(i) for i in range(600)]
    assert run.data.tags["note"] == "caf\\udce9"  # escaped, visibly, and stored so
    assert "caf\\udce9.txt" in store.artifact_paths(run.info.run_id)


@pytest.fixture
def own_server(tmp_path):
    server = MlflowServer(tmp_path / "own-server")
    yield server
    server.stop()


# -- a full disk ---------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MB tmpfs (root only; skipped where mounting is not permitted)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-capped tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


FULL_DISK_SCRIPT = HEADER + textwrap.dedent("""
    import sys
    logger = get_azureml_logger()
    for i in range(int(sys.argv[1])):
        logger.log("m", i)
    logger.log("note", "x" * 4000)
""")


def test_a_full_disk_with_the_server_up_loses_nothing(mlflow_server, tiny_disk, tmp_path):
    workdir = tmp_path / "project"
    workdir.mkdir()
    store = Store("server", mlflow_server.url, workdir, "fulldisk-up")
    (tiny_disk / "filler").write_bytes(b"\0" * 1_900_000)  # leaves ~100 KB for the journal
    proc = store.run_script(FULL_DISK_SCRIPT, 60_000, AZML_FLUSH_TIMEOUT=120,
                            AZML_HOME=str(tiny_disk / "home"), HOME=str(tiny_disk), timeout=600)
    assert "Exception in thread" not in proc.stderr
    assert "not delivered" not in proc.stderr
    run = store.only_run()
    assert len(store.history(run.info.run_id, "m")) == 60_000


def test_a_full_disk_with_the_server_down_reports_what_sync_then_delivers(own_server, tiny_disk,
                                                                          tmp_path):
    workdir = tmp_path / "project"
    workdir.mkdir()
    store = Store("server", own_server.url, workdir, "fulldisk-down")
    home = tiny_disk / "home"
    proc = store.run_script(FULL_DISK_SCRIPT, 100_000, AZML_FLUSH_TIMEOUT=2, AZML_HOME=str(home),
                            HOME=str(tiny_disk), timeout=600)
    assert "Exception in thread" not in proc.stderr
    (journal,) = sorted((home / "journal").glob("*.db"))
    line = next(line for line in proc.stderr.splitlines() if "not delivered" in line)
    kept = int(line.split(f" kept in {journal}")[0].rsplit("; ", 1)[1])
    lost = int(line.split(" only in memory")[0].rsplit("; ", 1)[1])
    assert kept + lost == 100_001 + 1  # every point and the note, plus the run's end
    assert kept == len(journal_rows(journal))
    points_kept = sum(1 for row in journal_rows(journal) if row[1] == "metric")
    own_server.start()
    env = store.env(AZML_HOME=str(home), HOME=str(tiny_disk))
    full = subprocess.run(["azml", "sync", "-o", "json"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=600)
    said = full.stdout + full.stderr
    assert "corrupted" not in said and "Traceback" not in said
    delivered = 0
    if full.returncode != 0:  # the disk is still full: said so, journal kept; free space, again
        assert "disk is full" in said and journal.exists(), said
        # the rows are the result even when sync fails: how far it got before the disk said no
        (row,) = [r for r in json.loads(full.stdout) if r["journal"] == journal.name]
        delivered += row["delivered"]
        subprocess.run(["mount", "-o", "remount,size=16m", str(tiny_disk)], check=True)
        full = subprocess.run(["azml", "sync", "-o", "json"], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stdout + full.stderr
    delivered += json.loads(full.stdout)[0]["delivered"]
    assert delivered == kept
    run = store.only_run()
    assert len(store.history(run.info.run_id, "m")) == points_kept


def test_the_sender_survives_a_journal_that_cannot_be_written(make_logger):
    """SQLite answers "database or disk is full" to the deletes of delivered records: the
    sender thread goes on delivering, and the exit message counts what the file still holds."""
    logger = make_logger(flush_timeout=60)
    session = logger._session
    journal = session.dispatcher.journal
    real_settle, failures = journal.settle, []

    def full_disk_settle(upto, errors=None):
        if len(failures) < 3:
            failures.append(upto)
            raise sqlite3.OperationalError("database or disk is full")
        return real_settle(upto, errors)

    journal.settle = full_disk_settle
    first = logger.log("m", 0)
    first.wait(120)
    for i in range(1, 50):
        logger.log("m", i)
        logger.flush(120)  # one settle per point, the first three fail
    assert logger.flush(120) and len(failures) == 3
    assert session.dispatcher.whereabouts() == {"journal": 0, "memory": 0, "rejected": 0,
                                                "stale": 0}  # the fourth settle caught up
    assert len(journal_rows(journal.path)) == 0


def test_sync_does_not_call_a_full_journal_corrupted(tmp_path, monkeypatch):
    from azml_compat._core import replay as _sync
    from azml_compat._core.journal import Journal

    journal = Journal.create(str(tmp_path / "j"), "full", {"tracking_uri": "sqlite:///x.db",
                                                           "experiment_name": "e"})
    journal.append([(1, "metric", "m", 1.0, 1, 0)])
    journal.close()

    def full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(_sync, "_replay", full)
    (result,) = _sync.sync(str(tmp_path / "j"))
    assert result.skipped is None and "disk is full" in result.error
    assert os.path.exists(journal.path)


# -- outputs/ files keep their content until delivered -------------------------------------------
def test_each_run_keeps_its_own_outputs_file_until_sync(own_server, tmp_path):
    workdir = tmp_path / "project"
    workdir.mkdir()
    store = Store("server", own_server.url, workdir, "outputs-copy")
    code = HEADER + textwrap.dedent("""
        import sys
        logger = get_azureml_logger()
        logger.log("run", int(sys.argv[1]))
        open("outputs/model.txt", "w").write("model of run " + sys.argv[1])
    """)
    for n in (1, 2):
        store.run_script(code, n, AZML_FLUSH_TIMEOUT=2, HOME=str(store.home))
    assert len(store.journals()) == 2
    own_server.start()
    azml(store, "sync")
    runs = store.runs()
    assert len(runs) == 2
    for run in runs:
        n = int(run.data.metrics["run"])
        assert store.artifact_bytes(run.info.run_id, "outputs/model.txt") == \
            f"model of run {n}".encode()
    assert store.journals() == []
    assert not list((store.home / "journal").glob("*.files"))  # copies go with their journal


# -- a half-made journal -------------------------------------------------------------------------
def test_a_journal_killed_in_its_creation_never_breaks_sync(tmp_path):
    """SIGKILL a process creating journals at random instants: every .db left has its meta."""
    folder = tmp_path / "home" / "journal"
    code = textwrap.dedent(f"""
        import uuid
        from azml_compat._core.journal import Journal
        print("go", flush=True)
        while True:
            Journal.create({str(folder)!r}, uuid.uuid4().hex,
                           {{"tracking_uri": "sqlite:///x.db", "experiment_name": "e"}}
                           ).close(prune=False)
    """)
    for delay in (0.3, 0.5, 0.7, 0.9, 1.1):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "go"
        time.sleep(delay)  # a random instant inside a creation loop, not a synchronisation
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    from azml_compat._core.replay import list_journals

    rows = list_journals(str(folder))
    assert rows and [(r["journal"], r["state"]) for r in rows if r["state"] != "ok"] == []


def test_sync_skips_a_journal_without_meta_in_one_line(sqlite_store):
    store = sqlite_store
    folder = store.home / "journal"
    folder.mkdir(parents=True)
    sqlite3.connect(folder / "0000halfmade.db").executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);")
    store.run_script(HEADER + "get_azureml_logger().log('x', 1)\n", HOME=str(store.home))
    done = azml(store, "sync", "-o", "json")
    assert "Traceback" not in done.stderr and "KeyError" not in done.stdout + done.stderr
    (row,) = json.loads(done.stdout)
    assert row["state"].startswith("skipped: unreadable journal (no tracking_uri")


# -- file modes ----------------------------------------------------------------------------------
def test_journal_files_are_private_in_an_open_folder(tmp_path):
    from azml_compat._core.journal import Journal

    folder = tmp_path / "journal"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    old = os.umask(0o022)
    try:
        journal = Journal.create(str(folder), "modes", {"tracking_uri": "sqlite:///x.db",
                                                        "experiment_name": "e"})
        journal.append([(1, "metric", "m", 1.0, 1, 0)])
        found = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
        journal.close()
    finally:
        os.umask(old)
    assert set(found) >= {"modes.db", "modes.db-wal", "modes.lock"}
    assert all(mode == 0o600 for mode in found.values()), found


# -- wait() on a store that keeps failing --------------------------------------------------------
def test_wait_without_timeout_on_a_failing_store_raises_after_the_bound(tmp_path):
    workdir = tmp_path / "project"
    workdir.mkdir()
    store = Store("server", f"http://127.0.0.1:{free_port()}", workdir, "wait-bound")
    proc = store.run_script(HEADER + textwrap.dedent("""
        logger = get_azureml_logger()
        try:
            logger.log("x", 1).wait(0.5)
        except TimeoutError as exc:
            print("explicit:", type(exc).__name__, exc)
        try:
            logger.log("y", 2).wait()
        except TimeoutError as exc:
            print("bare:", type(exc).__name__, exc)
    """), AZML_WAIT_TIMEOUT=3, AZML_FLUSH_TIMEOUT=1, HOME=str(store.home), timeout=120)
    (journal,) = store.journals()
    explicit, bare = proc.stdout.splitlines()
    assert explicit.startswith("explicit: TimeoutError record #1 not persisted within 0.5 s")
    assert bare.startswith("bare: DeliveryTimeout")
    assert store.uri in bare and str(journal) in bare and "AZML_WAIT_TIMEOUT" in bare
    assert "azml sync" in bare
    assert {row[2] for row in journal_rows(journal)} >= {"x", "y"}  # kept for `azml sync`


def test_a_bad_wait_timeout_setting_names_itself(tmp_path):
    """A training script is not stopped by a tuning value: one line names it, the default holds."""
    from conftest import clean_env

    proc = subprocess.run([sys.executable, "-c", HEADER + "get_azureml_logger()"], cwd=tmp_path,
                          env=clean_env(AZML_WAIT_TIMEOUT="soon", AZML_HOME=str(tmp_path / "h"),
                                        HOME=str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "AZML_WAIT_TIMEOUT='soon'" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- the exit message is counted from the journal -----------------------------------------------
def test_exit_message_counts_what_the_journal_really_holds(sqlite_store):
    store = sqlite_store
    proc = store.run_script(HEADER + textwrap.dedent("""
        logger = get_azureml_logger()
        for i in range(7):
            logger.log("m", i)
    """), MLFLOW_RUN_ID=uuid.uuid4().hex, HOME=str(store.home))  # a run the store does not have
    (journal,) = store.journals()
    held = len(journal_rows(journal))
    assert held == 7
    assert "7 record(s) not delivered" in proc.stderr
    assert f"7 kept in {journal}" in proc.stderr


def test_scan_never_opens_a_fifo_or_socket_and_says_so_in_one_line(tmp_path, capsys):
    import socket

    from azml_compat._core.outputs import scan

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "model.pkl").write_bytes(b"m")
    os.mkfifo(outputs / "pipe")  # opening it for reading would block until a writer comes
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(outputs / "sock"))
    try:
        uploads, skipped = scan(str(outputs), max_bytes=100)
    finally:
        sock.close()
    assert [os.path.basename(p) for _, p, _ in uploads] == ["model.pkl"] and skipped == []
    (line,) = capsys.readouterr().err.splitlines()
    assert "2 entries" in line and "not a regular file" in line
    assert str(outputs / "pipe") in line and str(outputs / "sock") in line


def test_a_link_in_outputs_never_uploads_what_lies_outside_the_project(store, tmp_path):
    """``outputs/innocent.txt -> ~/.secret_token``: not followed, one line names it; a
    checkpoint linked from inside the project is uploaded under the link's name."""
    secret = store.home / ".secret_token"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("s3cret-token")
    secret.chmod(0o600)
    (store.workdir / "checkpoints").mkdir()
    proc = store.run_script(HEADER + textwrap.dedent(f"""
        import os
        logger = get_azureml_logger()
        open("checkpoints/epoch3.ckpt", "w").write("weights")
        os.utime({str(secret)!r})  # a token refreshed while the script runs
        os.symlink({str(secret)!r}, "outputs/innocent.txt")
        os.symlink("../checkpoints/epoch3.ckpt", "outputs/best.ckpt")
        logger.log("acc", 0.5)
    """), HOME=str(store.home))
    run_id = store.only_run().info.run_id
    assert store.artifact_paths(run_id) == {"outputs/best.ckpt"}
    assert store.artifact_bytes(run_id, "outputs/best.ckpt") == b"weights"
    lines = [line for line in proc.stderr.splitlines() if "innocent.txt" in line]
    assert len(lines) == 1 and "outside the project" in lines[0], proc.stderr
    assert "s3cret-token" not in proc.stderr


# -- the run deleted on the server while the script runs -------------------------------------------
VANISHING_RUN = """
    import os, time
    from azureml.logging import get_azureml_logger
    logger = get_azureml_logger()
    logger.log("before", 1)
    assert logger.wait_for_run(120) and logger.flush(120)
    open("ready", "w").close()
    while not os.path.exists("go"):  # the test wipes the server's database meanwhile
        time.sleep(0.1)
    for i in range(142):
        logger.log("loss", float(i))
        if i % 4 == 3:
            logger.flush(60)  # a batch of its own each time: one warning per batch before
    """


def test_a_run_deleted_mid_run_is_said_once_and_its_records_go_to_a_new_run(own_server,
                                                                             tmp_path):
    server = own_server.start()
    store = Store("server", server.url, tmp_path / "project", "vanish")
    store.workdir.mkdir()
    script = store.write_script(VANISHING_RUN)
    with subprocess.Popen([sys.executable, str(script)], cwd=store.workdir,
                          env=store.env(HOME=str(store.home)), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        try:
            for _ in range(1200):
                if (store.workdir / "ready").exists() or proc.poll() is not None:
                    break
                time.sleep(0.1)
            assert (store.workdir / "ready").exists(), proc.communicate(timeout=60)
            run_id = store.only_run().info.run_id
            server.stop()
            for side in ("", "-wal", "-shm"):  # the database wiped, the server restarted
                Path(str(server.root / "server.db") + side).unlink(missing_ok=True)
            server.start()
            (store.workdir / "go").touch()
            _, stderr = proc.communicate(timeout=240)
        finally:
            proc.kill()
    lines = stderr.strip().splitlines()
    vanished = [line for line in lines if run_id in line and "no longer" in line]
    assert len(vanished) == 1, stderr
    assert not any("rejected" in line and "RESOURCE_DOES_NOT_EXIST" in line
                   for line in lines), stderr
    assert not any(f"runs/{run_id}" in line for line in lines), stderr  # no link to it
    assert store.runs() == []  # and nothing was made behind the user's back
    (journal,) = store.journals()
    # Kept for a new run, not set aside: the 142 points and the end of the run.
    (row,) = json.loads(azml(store, "sync", "--list", "-o", "json").stdout)
    assert row["pending"] == 143 and row["rejected"] == 0 and row["run_id"] == run_id, row
    assert "deleted" in row["state"] and "--to-new-run" in row["state"], row
    plain = azml(store, "sync", check=False)  # a plain sync cannot deliver to it either
    assert journal.exists() and plain.returncode != 0
    assert "--to-new-run" in plain.stderr.splitlines()[-1], plain.stderr
    moved = azml(store, "sync", "--to-new-run", journal.name)
    (new,) = store.runs()
    assert new.info.run_id != run_id and new.info.run_id in moved.stdout + moved.stderr
    assert values(store, new.info.run_id, "loss") == [float(i) for i in range(142)]
    assert new.info.status == "FINISHED"
    assert not journal.exists()
