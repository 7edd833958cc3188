"""The team deployment of ``docker/compose.yaml`` run natively, for tests on machines without a
Docker engine: a throwaway PostgreSQL cluster (``initdb`` in a temp dir, loopback only), ``mlflow
server`` on it with 4 workers and proxied artifacts (``--serve-artifacts``) in a local folder or
in S3, and the same server with MLflow's ``basic-auth`` app. Everything is session-scoped and
stopped afterwards.

S3 here is moto's standalone server on 127.0.0.1: it STANDS IN FOR MINIO (the one sanctioned
stand-in; both speak the S3 API at ``MLFLOW_S3_ENDPOINT_URL``). Everything else is real.

Without PostgreSQL (``initdb``/``pg_ctl``), psycopg or moto these fixtures skip with the reason;
with ``AZML_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) they fail instead, so CI cannot go green
by skipping the team deployment.
"""
from __future__ import annotations

import configparser
import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import REPO, MlflowServer, Store, clean_env, free_port

BUCKET = "azml-artifacts"  # the bucket compose.yaml's init job creates in MinIO
ADMIN_USER = "admin"
TEAM_USER = "alice"
# Dummy S3 credentials: moto accepts any; MinIO would take them from docker/.env.
S3_ENV = {"AWS_ACCESS_KEY_ID": "azml-test-key", "AWS_SECRET_ACCESS_KEY": "azml-test-secret",
          "AWS_DEFAULT_REGION": "us-east-1"}


def unavailable(reason: str):
    """Skip on a developer machine; fail where CI says PostgreSQL must be there."""
    from conftest import REQUIRE_POSTGRES

    if REQUIRE_POSTGRES:
        pytest.fail(f"AZML_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(f"team deployment not testable here: {reason}")


def pg_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` are: on PATH, else Debian's /usr/lib/postgresql/N/bin
    (the newest version)."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                      key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(versions[-1]).parent if versions else None


class PostgresCluster:
    """A PostgreSQL cluster of its own in a temp dir, on 127.0.0.1:<free port> (socket in the
    same dir), superuser ``postgres`` with a password (scram-sha-256 over TCP, as in compose).
    Run as the unprivileged ``postgres`` user when we are root: PostgreSQL refuses root."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="azml-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = "postgres"
        self.password = secrets.token_hex(12)
        self.run_as = None
        if os.geteuid() == 0:
            import pwd

            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                unavailable("running as root and there is no unprivileged 'postgres' user")
            self.run_as = "postgres"
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    def _pg(self, tool: str, *args, timeout: float = 120) -> None:
        proc = subprocess.run([str(self.bindir / tool), *args], cwd=self.root, user=self.run_as,
                              env=clean_env(LC_ALL="C.UTF-8", LANG="C.UTF-8"),
                              capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{tool} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> "PostgresCluster":
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.run_as:
            shutil.chown(pwfile, self.run_as)
        self._pg("initdb", "-D", str(self.data), "-U", self.user, "--pwfile", str(pwfile),
                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "start", "-w", "-D", str(self.data), "-l", str(self.root / "pg.log"),
                 "-o", options)
        return self

    def stop(self) -> None:
        try:
            self._pg("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data), timeout=60)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def connect(self, database: str = "postgres"):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=self.user,
                               password=self.password, dbname=database, autocommit=True)

    def create_database(self, name: str) -> str:
        """A new database; its URI carries no password (the server gets ``PGPASSWORD``, as the
        compose file does, so no secret is on a command line)."""
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.uri(name)

    def uri(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def query(self, database: str, sql: str, *params):
        with self.connect(database) as conn:
            return conn.execute(sql, params).fetchall()


class TeamServer(MlflowServer):
    """``mlflow server`` as the compose file runs it: PostgreSQL backend, 4 workers, proxied
    artifacts; ``artifacts`` overrides the local destination (the last ``--artifacts-destination``
    on the command line wins)."""

    def __init__(self, root: Path, pg: PostgresCluster, database: str, artifacts: str | None = None,
                 extra_args=(), env=None) -> None:
        self.pg, self.database = pg, database
        args = ["--workers", "4", "--serve-artifacts", *extra_args]
        if artifacts:
            args += ["--artifacts-destination", artifacts]
        super().__init__(root, pg.create_database(database), args,
                         {"PGPASSWORD": pg.password, **(env or {})})

    def query(self, sql: str, *params):
        return self.pg.query(self.database, sql, *params)


class MotoS3:
    """moto's standalone S3 server on 127.0.0.1 STANDING IN FOR MINIO, with the bucket the
    compose file's init job creates."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = root / "moto.log"
        self.proc = None

    def start(self) -> "MotoS3":
        import requests

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                env=clean_env(**S3_ENV), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited: {self.log.read_text()[-2000:]}")
            try:
                requests.get(self.endpoint, timeout=2)
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("moto server did not answer within 60 s") from None
                time.sleep(0.2)
        self.client().create_bucket(Bucket=BUCKET)
        return self

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint,
                            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
                            region_name=S3_ENV["AWS_DEFAULT_REGION"])

    def keys(self, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=BUCKET, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_cluster():
    bindir = pg_bindir()
    if bindir is None:
        unavailable("PostgreSQL's initdb/pg_ctl not found (apt-get install postgresql)")
    for module, package in (("psycopg", "psycopg[binary]"), ("boto3", "boto3"),
                            ("moto", "moto[server]")):
        try:
            __import__(module)
        except ImportError:
            unavailable(f"Python package {package} missing (pip install -e '.[test]')")
    cluster = PostgresCluster(bindir).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def team_server(pg_cluster, tmp_path_factory):
    """PostgreSQL + 4 workers + artifacts proxied to a local folder."""
    server = TeamServer(tmp_path_factory.mktemp("team-local"), pg_cluster, "mlflow_local").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_s3(pg_cluster, tmp_path_factory):
    """S3 on loopback: moto STANDING IN FOR MINIO."""
    s3 = MotoS3(tmp_path_factory.mktemp("moto")).start()
    yield s3
    s3.stop()


@pytest.fixture(scope="session")
def team_s3_server(pg_cluster, moto_s3, tmp_path_factory):
    """PostgreSQL + 4 workers + artifacts proxied to ``s3://azml-artifacts/mlflow`` (moto standing
    in for MinIO, found through MLFLOW_S3_ENDPOINT_URL as in compose)."""
    server = TeamServer(tmp_path_factory.mktemp("team-s3"), pg_cluster, "mlflow_s3",
                        artifacts=f"s3://{BUCKET}/mlflow",
                        env={"MLFLOW_S3_ENDPOINT_URL": moto_s3.endpoint, **S3_ENV})
    server.s3 = moto_s3
    server.start()
    yield server
    server.stop()


class AuthServer(TeamServer):
    """The team server with ``--app-name basic-auth`` configured by ``docker/basic_auth.ini``:
    its user store in a PostgreSQL database of its own (``database_uri`` pointed at this
    cluster), the admin's credentials set explicitly (MLflow 3.17 ships no default admin
    password), and a team member who is not an admin."""

    def __init__(self, root: Path, pg: PostgresCluster) -> None:
        self.admin = (ADMIN_USER, secrets.token_urlsafe(16))
        self.member = (TEAM_USER, secrets.token_urlsafe(16))
        # docker/basic_auth.ini as shipped, but for the user store in this cluster
        config = configparser.ConfigParser()
        config.read(REPO / "docker" / "basic_auth.ini")
        config["mlflow"]["database_uri"] = pg.create_database("mlflow_auth")
        ini = Path(root) / "basic_auth.ini"
        ini.parent.mkdir(parents=True, exist_ok=True)
        with open(ini, "w") as f:
            config.write(f)
        super().__init__(root, pg, "mlflow_auth_tracking", extra_args=("--app-name", "basic-auth"),
                         env={"MLFLOW_AUTH_CONFIG_PATH": str(ini),
                              "MLFLOW_AUTH_ADMIN_USERNAME": ADMIN_USER,
                              "MLFLOW_AUTH_ADMIN_PASSWORD": self.admin[1],
                              # CSRF key, the same in every worker (required with basic-auth)
                              "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)})

    def start(self, timeout: float = 120.0) -> "AuthServer":
        import requests

        super().start(timeout)
        answer = requests.post(f"{self.url}/api/2.0/mlflow/users/create", auth=self.admin,
                               json={"username": self.member[0], "password": self.member[1]},
                               timeout=30)
        answer.raise_for_status()
        return self

    def credentials(self, user: tuple[str, str]) -> dict:
        return {"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]}


@pytest.fixture(scope="session")
def auth_server(pg_cluster, tmp_path_factory):
    server = AuthServer(tmp_path_factory.mktemp("team-auth"), pg_cluster).start()
    yield server
    server.stop()


def team_store(server, tmp_path: Path, monkeypatch=None, **env) -> Store:
    """A project folder whose scripts log to ``server`` (with ``env``, e.g. credentials); with
    ``monkeypatch``, the test process reads the store with the same variables."""
    workdir = tmp_path / "project"
    workdir.mkdir()
    if monkeypatch is not None:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
    return Store("server", server.url, workdir, f"exp-{uuid.uuid4().hex[:10]}", env_extra=env)
