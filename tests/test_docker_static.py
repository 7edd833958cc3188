"""docker/ cannot be run on CI (no Docker engine), so it is checked statically here so that it
cannot silently rot: the compose file parses and has the services, health checks, volumes and
start order of the team deployment; the image pins the mlflow the package is tested with; the
example env file covers every variable compose needs and holds no secret."""
from __future__ import annotations

import configparser
import re
from importlib.metadata import version

import pytest
import yaml
from packaging.requirements import Requirement

from conftest import REPO

DOCKER = REPO / "docker"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def long_running(services) -> dict:
    """Services that stay up (one-shot jobs have restart "no")."""
    return {name: s for name, s in services.items() if s.get("restart") != "no"}


def command_text(service) -> str:
    parts = service.get("entrypoint", []) + service.get("command", [])
    return " ".join(parts) if isinstance(parts, list) else parts


def test_compose_has_the_team_services(services):
    assert {"postgres", "minio", "mlflow"} <= set(long_running(services))
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["minio"]["image"].startswith("minio/minio")
    assert services["mlflow"]["build"]["dockerfile"] == "Dockerfile"
    assert any(str(p).endswith(":5000") for p in services["mlflow"]["ports"])


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in long_running(services).items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"


def test_one_shot_jobs_are_awaited_until_they_succeed(services):
    jobs = set(services) - set(long_running(services))
    assert jobs, "expected the bucket-creating job"
    for job in jobs:
        condition = services["mlflow"]["depends_on"][job]["condition"]
        assert condition == "service_completed_successfully", job
    assert any("mc mb" in command_text(services[job]) for job in jobs)


def test_mlflow_starts_after_healthy_postgres_and_minio(services):
    depends = services["mlflow"]["depends_on"]
    for name in ("postgres", "minio"):
        assert depends[name]["condition"] == "service_healthy", name


def test_named_volumes_are_declared_and_used(compose, services):
    declared = set(compose.get("volumes") or {})
    used = {str(v).split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    named = {v for v in used if not v.startswith((".", "/"))}
    assert named, "no named volume"
    assert named <= declared, f"used but not declared: {named - declared}"
    assert declared <= named, f"declared but unused: {declared - named}"
    for name, path in (("postgres", "/var/lib/postgresql/data"), ("minio", "/data")):
        mounts = [str(v).split(":")[1] for v in services[name]["volumes"]
                  if str(v).split(":")[0] in declared]
        assert path in mounts, f"{name} keeps {path} on no named volume"


def test_mlflow_server_command_is_the_team_topology(services):
    command = command_text(services["mlflow"])
    env = services["mlflow"]["environment"]
    assert "--backend-store-uri postgresql://" in command
    assert "--serve-artifacts" in command
    assert re.search(r'--artifacts-destination "?s3://', command)
    assert "--workers" in command and env["MLFLOW_WORKERS"].startswith("${MLFLOW_WORKERS")
    assert "--app-name" in command
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    # No password on a command line or in a URI: libpq takes PGPASSWORD from the environment.
    uri = re.search(r"postgresql://\S+", command).group(0)
    assert "PASSWORD" not in uri and ":" not in uri.split("@")[0].removeprefix("postgresql://")
    assert env["PGPASSWORD"] == "${POSTGRES_PASSWORD}"


def test_dockerfile_pins_the_tested_mlflow():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    pins = re.findall(r"\bmlflow(?:\[[\w,]+\])?==([\w.]+)", dockerfile)
    assert len(pins) == 1, pins
    installed = version("mlflow")
    assert pins[0] == installed, f"Dockerfile pins mlflow {pins[0]}, the tests run {installed}"
    pyproject = (REPO / "pyproject.toml").read_text()
    [spec] = [Requirement(r) for r in re.findall(r'"(mlflow[^"\[]*)"', pyproject)
              if Requirement(r).specifier]
    assert spec.specifier.contains(pins[0]), f"{pins[0]} outside pyproject's {spec}"
    assert re.search(r"psycopg", dockerfile) and re.search(r"boto3", dockerfile)


def test_env_example_covers_compose_and_holds_no_secret():
    text = (DOCKER / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{(\w+):\?", text))
    example = dict(line.split("=", 1) for line in (DOCKER / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert required and required <= set(example), required - set(example)
    for key, value in example.items():
        if any(word in key for word in ("PASSWORD", "SECRET")):
            assert value == "" or value.startswith("change-me"), f"{key} holds a value"
    # Every variable compose substitutes is documented in the example.
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", text))
    assert used <= set(example), f"not in .env.example: {used - set(example)}"


def test_basic_auth_ini_is_complete_and_holds_no_password():
    config = configparser.ConfigParser()
    config.read(DOCKER / "basic_auth.ini")
    section = config["mlflow"]
    assert section["database_uri"].startswith("postgresql://")
    assert "@" in section["database_uri"] and ":" not in section["database_uri"].split("@")[0][13:]
    assert "admin_password" not in section
    assert (DOCKER / "initdb").is_dir(), "the auth database is created by an init script"
    assert "mlflow_auth" in " ".join(p.read_text() for p in (DOCKER / "initdb").glob("*.sql"))
