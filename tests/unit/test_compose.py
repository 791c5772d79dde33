"""docker-compose.yml, Dockerfile, .env.example and deploy/airflow.env: structure and one source of truth.

No Docker engine runs here; tests/e2e/test_celery_topology.py runs the same topology as host
processes with the same shared settings. These tests pin what makes the two the same deployment.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = {name for name in SERVICES if name.startswith("airflow-")}
LONG_RUNNING = AIRFLOW_SERVICES - {"airflow-init", "airflow-cli"}
AIRFLOW_IMAGE = "apache/airflow:3.3.2-python3.11"
# Per-service variables allowed on top of the common locations (none of them an Airflow setting).
SERVICE_EXTRAS = {
    "airflow-worker": {"DUMB_INIT_SETSID"},
    "airflow-init": {"ADMIN_PASSWORD"},
    "airflow-cli": {"CONNECTION_CHECK_MAX_COUNT"},
}


def _load_airflow_env() -> ModuleType:
    spec = importlib.util.spec_from_file_location("airflow_env", REPO / "deploy" / "airflow_env.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("airflow_env", module)
    spec.loader.exec_module(module)
    return module


airflow_env = _load_airflow_env()
SHARED = airflow_env.read_env_file()


def _mounts(service: dict) -> dict[str, str]:
    """container path -> host path (or named volume) of a service's volumes."""
    out = {}
    for spec in service.get("volumes", []):
        match = re.fullmatch(r"(?P<host>\$\{[^}]*\}|[^:]+):(?P<container>[^:]+)(:ro)?", spec)
        assert match, f"cannot read volume {spec!r}"
        out[match["container"]] = match["host"]
    return out


def test_services_of_the_reference_topology() -> None:
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "airflow-cli",
    }
    assert SERVICES["airflow-cli"]["profiles"] == ["debug"]
    commands = {name: SERVICES[name]["command"] for name in LONG_RUNNING}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-triggerer": "triggerer",
        "airflow-worker": "celery worker",
    }


def test_images_are_pinned_and_agree_with_dockerfile_and_requirements() -> None:
    assert re.fullmatch(r"postgres:16(-[a-z]+)?", SERVICES["postgres"]["image"])
    assert re.fullmatch(r"redis:7\.2(-[a-z]+)?", SERVICES["redis"]["image"])
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"ARG AIRFLOW_IMAGE={AIRFLOW_IMAGE}" in dockerfile
    assert "-r /opt/stclusters/requirements.txt" in dockerfile
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in dockerfile  # the image's Airflow stays
    airflow_pin = re.search(
        r"^apache-airflow\[[^\]]*\]==(\S+)", (REPO / "requirements.txt").read_text(), re.M
    )
    assert airflow_pin and f"apache/airflow:{airflow_pin[1]}-" in AIRFLOW_IMAGE
    for name in AIRFLOW_SERVICES:
        service = SERVICES[name]
        assert service["build"]["args"]["AIRFLOW_IMAGE"] == AIRFLOW_IMAGE, name
        assert ":latest" not in service["image"], name


def test_every_airflow_service_reads_the_shared_settings_first() -> None:
    for name in AIRFLOW_SERVICES:
        env_files = SERVICES[name]["env_file"]
        assert env_files[0] == {"path": "deploy/airflow.env", "required": True}, name
        assert all(f.get("required") is False for f in env_files[1:]), name


def test_compose_environment_is_exactly_the_locations() -> None:
    for name in AIRFLOW_SERVICES:
        env = SERVICES[name]["environment"]
        assert set(env) >= airflow_env.LOCATION_KEYS, (
            f"{name}: missing {airflow_env.LOCATION_KEYS - set(env)}"
        )
        extras = set(env) - airflow_env.LOCATION_KEYS
        assert extras <= SERVICE_EXTRAS.get(name, set()), (
            f"{name}: settings outside deploy/airflow.env: {extras}"
        )
        assert not set(env) & set(SHARED), f"{name} overrides shared settings: {set(env) & set(SHARED)}"


def test_secrets_come_from_dotenv_and_are_required() -> None:
    env = SERVICES["airflow-scheduler"]["environment"]
    for key in airflow_env.SECRET_KEYS:
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env[key]), (
            f"{key} = {env[key]!r} is not a required ${{VAR}}"
        )
    for key in ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"):
        assert "${POSTGRES_PASSWORD:?" in env[key]


def test_dotenv_example_names_every_variable_the_compose_file_reads() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*)", text))
    lines = (REPO / ".env.example").read_text().splitlines()
    example = {
        line.lstrip("# ").split("=", 1)[0] for line in lines if re.match(r"^#?\s*[A-Z_][A-Z0-9_]*=", line)
    }
    assert used <= example, f".env.example lacks {sorted(used - example)}"
    required = set(re.findall(r"(?<!\$)\$\{([A-Z_][A-Z0-9_]*):\?", text))
    uncommented = {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z_][A-Z0-9_]*=", line)}
    assert required <= uncommented, (
        f"required but commented out in .env.example: {sorted(required - uncommented)}"
    )


def test_package_is_installed_from_the_mounted_plugins_and_not_in_airflows_plugins_folder() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "pip install --no-cache-dir --no-deps -e /opt/stclusters" in dockerfile
    for name in AIRFLOW_SERVICES:
        service = SERVICES[name]
        env, mounts = service["environment"], _mounts(service)
        home = env["STCLUSTERS_HOME"]
        assert mounts[env["AIRFLOW__CORE__DAGS_FOLDER"]] == "./dags"
        assert "PYTHONPATH" not in env, "the package is installed, not put on a path"
        assert mounts[f"{home}/plugins"] == "./plugins"
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] not in mounts, (
            "Airflow would import stclusters/__main__.py"
        )
        # stclusters.config resolves these under STCLUSTERS_HOME (REPO_ROOT).
        for folder in ("dbt_project", "config", "data", "workspace", "output"):
            assert f"{home}/{folder}" in mounts, f"{name}: {folder} not mounted under {home}"
        for read_only in ("dags", "plugins", "dbt_project", "config", "data"):
            assert any(v.endswith(f":{home}/{read_only}:ro") for v in service["volumes"]), (name, read_only)
        assert mounts[env["AIRFLOW_HOME"] + "/logs"], "task logs shared by workers and the api-server"


def test_components_reach_each_other_by_service_name() -> None:
    env = SERVICES["airflow-worker"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert SERVICES["airflow-apiserver"]["ports"] == ["${AIRFLOW_API_PORT:-8080}:8080"]
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
    assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")


def test_healthchecks_and_start_order() -> None:
    for name in {"postgres", "redis"} | LONG_RUNNING:
        assert SERVICES[name]["healthcheck"]["test"], name
    for name in LONG_RUNNING:
        depends = SERVICES[name]["depends_on"]
        assert depends["airflow-init"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == depends["redis"] == {"condition": "service_healthy"}, name
    assert SERVICES["airflow-worker"]["depends_on"]["airflow-apiserver"] == {"condition": "service_healthy"}


def test_init_migrates_creates_the_pool_and_the_admin_password() -> None:
    script = "\n".join(SERVICES["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert 'airflow pools set "$${STCLUSTERS_AIRFLOW_POOL}" "$${STCLUSTERS_AIRFLOW_POOL_SLOTS}"' in (
        (REPO / "docker-compose.yml").read_text()
    )
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" in script
    assert SHARED["STCLUSTERS_AIRFLOW_POOL"] == "duckdb_writers"
    assert int(SHARED["STCLUSTERS_AIRFLOW_POOL_SLOTS"]) >= 1


def test_workers_scale_and_stop_warm() -> None:
    worker = SERVICES["airflow-worker"]
    assert "container_name" not in worker  # replicas need generated names
    assert worker["deploy"]["replicas"] == "${AIRFLOW_WORKERS:-2}"
    assert worker["environment"]["DUMB_INIT_SETSID"] == "0"
    assert "ping" in " ".join(worker["healthcheck"]["test"])


def test_shared_settings_keep_duckdb_single_writer_safe() -> None:
    assert SHARED["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert SHARED["AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER"] == "1"
    assert SHARED["AIRFLOW__CELERY__TASK_ACKS_LATE"] == "True"
    assert int(SHARED["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"]) >= 6 * 3600
    assert SHARED["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"


# --- deploy/airflow_env.py -----------------------------------------------------------------------
def test_env_file_reader_names_file_line_and_key(tmp_path: Path) -> None:
    bad = {
        "A=1\nA=2\n": "A: set twice",
        "# c\nB=$HOME/x\n": ":2: B: quotes",
        "C='x'\n": ":1: C: quotes",
        "not a line\n": ":1: expected KEY=VALUE",
        "AIRFLOW__CORE__FERNET_KEY=x\n": "location/secret",
    }
    for text, message in bad.items():
        path = tmp_path / "bad.env"
        path.write_text(text)
        with pytest.raises(airflow_env.EnvFileError, match=re.escape(message)) as info:
            airflow_env.read_env_file(path)
        assert str(path) in str(info.value)
    good = tmp_path / "good.env"
    good.write_text("# comment\n\nX=a=b\nY=\n")
    assert airflow_env.read_env_file(good) == {"X": "a=b", "Y": ""}


def test_topology_environment_drops_callers_airflow_settings(tmp_path: Path) -> None:
    values = {name: f"<{name}>" for name in airflow_env.LOCATION_VARS}
    locations = airflow_env.Locations(**values)
    base = {"PATH": "/bin", "AIRFLOW_HOME": "/elsewhere", "AIRFLOW__CORE__EXECUTOR": "LocalExecutor"}
    base |= {"STCLUSTERS_TOP_N": "3", "_AIRFLOW_DB_MIGRATE": "true"}
    env = airflow_env.topology_environment(locations, base)
    assert env["PATH"] == "/bin"
    assert env["AIRFLOW_HOME"] == "<airflow_home>"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "STCLUSTERS_TOP_N" not in env and "_AIRFLOW_DB_MIGRATE" not in env
    assert set(env) == {"PATH"} | set(SHARED) | airflow_env.LOCATION_KEYS
