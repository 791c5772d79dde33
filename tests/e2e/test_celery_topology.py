"""The docker-compose topology, as host processes: Airflow on the local PostgreSQL and Redis.

One test starts what docker-compose.yml starts (minus the triggerer, which this DAG never uses):
``airflow db migrate``, api-server, scheduler, dag-processor and two Celery workers
(``w1@%h``, ``w2@%h``), all with the environment of deploy/airflow.env plus this machine's
locations (deploy/airflow_env.py). It creates the duckdb_writers pool like the init service,
triggers an edition of ``st_clusters`` on a tiny generated world through the REST API, waits
for success, and proves from the worker and task logs that every task ran on one of the two
Celery workers.

PostgreSQL (127.0.0.1:5432, trust auth) and Redis (127.0.0.1:6379) must run: if one does not,
the test fails and says how to start it (it is never skipped).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import importlib.util
import json
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import urlsafe_b64encode
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from stclusters.schema import COLUMNS
from worlds import share_gazetteer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# `python -m airflow` of this interpreter: the same virtualenv as the test, whatever its path.
AIRFLOW = (sys.executable, "-m", "airflow")
DAG_ID = "st_clusters"
WORKERS = ("w1", "w2")

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
# Redis databases reserved for this test (0 is every tool's default); a run claims a free one with
# a lock key, so two runs on one machine never share a broker, then flushes it at start and end.
REDIS_DBS = range(11, 16)
REDIS_LOCK = "stclusters:e2e:owner"

PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)

RUN_TIMEOUT_S = 600
STARTUP_TIMEOUT_S = 180


def _load_airflow_env() -> ModuleType:
    """deploy/ is not a package on PYTHONPATH: load the helper by its path."""
    spec = importlib.util.spec_from_file_location("airflow_env", REPO / "deploy" / "airflow_env.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("airflow_env", module)
    spec.loader.exec_module(module)
    return module


airflow_env = _load_airflow_env()


# --- the services this test needs ---------------------------------------------------------------
def _require_postgres() -> None:
    import psycopg

    try:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} as user {PG_USER} ({exc}).\n"
            f"Start it with:\n    {PG_START}",
            pytrace=False,
        )


def _require_redis() -> None:
    import redis

    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=5).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.fail(
            f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT} ({exc}).\n"
            f"Start it with:\n    {REDIS_START}",
            pytrace=False,
        )


def _require_celery_executor(env: dict[str, str]) -> None:
    """A worker that cannot import the executor dies at start with a long traceback: say why."""
    probe = "import celery, airflow.providers.celery.executors.celery_executor_utils"
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        from importlib.metadata import version

        pytest.fail(
            f"the CeleryExecutor cannot be imported with celery {version('celery')} and "
            f"apache-airflow-providers-celery {version('apache-airflow-providers-celery')}: "
            f"{proc.stderr.strip().splitlines()[-1]}\n"
            "Pin a celery release that the provider supports in requirements.txt (docs/deployment.md).",
            pytrace=False,
        )


@pytest.fixture
def metadata_db() -> Iterator[str]:
    """A fresh PostgreSQL database for Airflow's metadata, dropped afterwards."""
    import psycopg

    _require_postgres()
    name = f"stclusters_airflow_test_{secrets.token_hex(4)}"
    admin = {"host": PG_HOST, "port": PG_PORT, "user": PG_USER, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**admin) as conn:
        conn.execute(f'create database "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def broker_db() -> Iterator[int]:
    import redis

    _require_redis()
    token = secrets.token_hex(8)
    for db in REDIS_DBS:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
        if client.set(REDIS_LOCK, token, nx=True, ex=RUN_TIMEOUT_S * 3):
            break
    else:
        pytest.fail(f"Redis databases {list(REDIS_DBS)} are all claimed by other runs ({REDIS_LOCK})")
    client.flushdb()
    client.set(REDIS_LOCK, token, ex=RUN_TIMEOUT_S * 3)
    try:
        yield db
    finally:
        client.flushdb()


# --- a tiny world ---------------------------------------------------------------------------------
# (city, country, lat, lon, documents): two dense metros (Tokyo area, Boston area), smaller places,
# a native-script spelling and places no gazetteer knows, as in the real dumps. Enough documents
# for two clusters at the thresholds of TINY_CONF; takes well under a minute through the DAG.
TINY_CITIES: tuple[tuple[str, str, float | None, float | None, int], ...] = (
    ("Tokyo", "JP", 35.69, 139.69, 300),
    ("Yokohama", "JP", 35.44, 139.64, 120),
    ("東京", "JP", None, None, 60),
    ("Kawasaki", "JP", 35.52, 139.70, 60),
    ("Munich", "DE", 48.14, 11.58, 80),
    ("Paris", "FR", 48.85, 2.35, 90),
    ("Boston", "US", 42.36, -71.06, 90),
    ("Cambridge", "US", 42.37, -71.10, 90),
    ("Nowhere", "JP", None, None, 4),
    ("Small Village", "FR", None, None, 2),
)
TINY_CONF = {"edition": 2023, "min_patents": 50, "min_publications": 50, "top_n": 4}


def _tiny_rows(layer: str, rng: random.Random) -> list[list[Any]]:
    country_of = {c[0]: c[1] for c in TINY_CITIES}
    # Co-inventors and co-authors live in the larger places, so the unplaceable ones stay rare
    # (the gate wants 90 % geocoded per major country).
    partners = [c[0] for c in TINY_CITIES if c[4] >= 50]
    rows: list[list[Any]] = []
    doc = 0
    for city, country, _lat, _lon, volume in TINY_CITIES:
        for _ in range(volume):
            doc += 1
            for seq in range(1, rng.randint(1, 3) + 1):
                place = city if seq == 1 else rng.choice(partners)
                cc = country if seq == 1 else country_of[place]
                region = "MA" if cc == "US" else ""
                if layer == "patents":
                    day = f"{rng.randint(2018, 2022)}-03-05"
                    rows.append([f"WO2020{doc:06d}", day, seq, place, "", region, cc, "", "", "Acme", "G06F"])
                else:
                    year = rng.randint(2017, 2021)
                    rows.append(
                        [
                            f"WOS:{doc:012d}",
                            year,
                            "Article",
                            seq,
                            "Univ",
                            place,
                            "",
                            region,
                            cc,
                            "",
                            "",
                            "Physics",
                        ]
                    )
    return rows


def write_tiny_world(folder: Path, seed: int = 1) -> dict[str, str]:
    """Canonical patents/publications dumps of a tiny world; returns the run conf's URIs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    uris = {}
    for layer in ("patents", "publications"):
        path = folder / f"{layer}.csv.gz"
        with gzip.open(path, "wt", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(COLUMNS[layer])
            writer.writerows(_tiny_rows(layer, rng))
        uris[f"{layer}_uri"] = str(path)
    return uris


# --- the topology -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Topology:
    """Airflow components as host processes, each in its own process group."""

    home: Path
    env: dict[str, str]
    api_port: int
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.home / "process-logs" / f"{name}.log"

    def run(self, name: str, *args: str, timeout: float = 300) -> None:
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        with self.log(name).open("w") as out:
            proc = subprocess.run(
                [*AIRFLOW, *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        assert proc.returncode == 0, (
            f"airflow {' '.join(args)} exited {proc.returncode}:\n{tail(self.log(name))}"
        )

    def start(self, name: str, *args: str, extra_env: dict[str, str] | None = None) -> None:
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        with self.log(name).open("w") as out:
            self.procs[name] = subprocess.Popen(
                [*AIRFLOW, *args],
                env={**self.env, **(extra_env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stopped as a whole, also on failure
            )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                pytest.fail(f"airflow {name} exited with {proc.returncode}:\n{tail(self.log(name))}")

    def stop(self) -> None:
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        # Task processes a worker started and that left its group would still carry our AIRFLOW_HOME.
        for pid in _pids_with_env("AIRFLOW_HOME", str(self.home)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _pids_with_env(key: str, value: str) -> list[int]:
    needle = f"{key}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


class Api:
    """The REST API of the api-server, with a JWT of the simple auth manager's admin user."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.token: str | None = None

    def call(self, method: str, path: str, body: Any = None, expect: tuple[int, ...] = (200, 201)) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        if status not in expect:
            raise AssertionError(f"{method} {path}: HTTP {status}: {text[:2000]}")
        return json.loads(text) if text else None

    def login(self, username: str, password: str) -> None:
        answer = self.call(
            "POST", "/auth/token", {"username": username, "password": password}, expect=(200, 201)
        )
        self.token = answer["access_token"]


def wait_for(what: str, check, topology: Topology, timeout: float, every: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        topology.check_alive()
        try:
            last = check()
        except (OSError, AssertionError) as exc:  # not up yet
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last answer: {last!r}")


def host_locations(home: Path, metadata_db: str, broker_db: int, api_port: int) -> Any:
    pg = f"{PG_USER}@{PG_HOST}:{PG_PORT}/{metadata_db}"
    return airflow_env.Locations(
        airflow_home=str(home),
        stclusters_home=str(REPO),
        dags_folder=str(REPO / "dags"),
        # An empty folder for Airflow's plugin manager: the package is installed in the venv.
        plugins_folder=str(home / "plugins"),
        sql_alchemy_conn=f"postgresql+psycopg2://{pg}",
        broker_url=f"redis://{REDIS_HOST}:{REDIS_PORT}/{broker_db}",
        result_backend=f"db+postgresql://{pg}",
        execution_api_server_url=f"http://127.0.0.1:{api_port}/execution/",
        passwords_file=str(home / "passwords.json"),
        fernet_key=urlsafe_b64encode(os.urandom(32)).decode(),
        jwt_secret=secrets.token_urlsafe(32),
        api_secret_key=secrets.token_urlsafe(32),
    )


@pytest.fixture
def topology(tmp_path: Path, metadata_db: str, broker_db: int) -> Iterator[Topology]:
    home = tmp_path / "airflow"
    (home / "plugins").mkdir(parents=True)
    api_port = free_port()
    env = airflow_env.topology_environment(host_locations(home, metadata_db, broker_db, api_port), os.environ)
    topo = Topology(home=home, env=env, api_port=api_port)
    try:
        yield topo
    finally:
        topo.stop()


# --- the test -------------------------------------------------------------------------------------
# Only for this test, on top of the shared settings: no cron-scheduled run of the DAG (unpausing it
# would otherwise start this year's edition on the sample source set, into the repo's workspace).
TEST_ONLY_ENV = {
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    # the run conf places output_dir and workspace_dir in tmp_path (tests/conftest.py)
    **{
        k: os.environ[k] for k in ("STCLUSTERS_OUTPUT_ROOTS", "STCLUSTERS_WORKSPACE_ROOTS") if k in os.environ
    },
}


def test_edition_runs_on_celery_workers(topology: Topology, tmp_path: Path, gazetteer_cache: Path) -> None:
    shared = airflow_env.read_env_file()
    topology.env.update(TEST_ONLY_ENV)
    assert topology.env["AIRFLOW__CORE__EXECUTOR"] == shared["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    password = secrets.token_urlsafe(16)
    Path(topology.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).write_text(
        json.dumps({"admin": password})
    )

    _require_celery_executor(topology.env)
    topology.run("db-migrate", "db", "migrate")
    start_components(topology)

    api = Api(f"http://127.0.0.1:{topology.api_port}")
    wait_for("the api-server", lambda: api.call("GET", "/api/v2/version"), topology, STARTUP_TIMEOUT_S)
    api.login("admin", password)

    # What the compose init service does, with the same shared settings.
    pool, slots = shared["STCLUSTERS_AIRFLOW_POOL"], int(shared["STCLUSTERS_AIRFLOW_POOL_SLOTS"])
    api.call("POST", "/api/v2/pools", {"name": pool, "slots": slots, "description": "DuckDB-writing tasks"})

    def dag_parsed() -> bool:
        errors = api.call("GET", "/api/v2/importErrors")["import_errors"]
        assert not errors, f"DAG import errors: {errors}"
        return api.call("GET", f"/api/v2/dags/{DAG_ID}", expect=(200, 404)).get("dag_id") == DAG_ID

    wait_for(f"the dag-processor to parse {DAG_ID}", dag_parsed, topology, STARTUP_TIMEOUT_S)
    task_ids = {t["task_id"] for t in api.call("GET", f"/api/v2/dags/{DAG_ID}/tasks")["tasks"]}
    for name in WORKERS:
        wait_for(
            f"Celery worker {name}", lambda n=name: " ready." in tail(topology.log(n), 200), topology, 120
        )

    conf = {
        **TINY_CONF,
        **write_tiny_world(tmp_path / "world"),
        "workspace_dir": str(share_gazetteer(tmp_path / "workspace", gazetteer_cache)),
        "output_dir": str(tmp_path / "output"),
    }
    run_id = f"e2e_celery_{secrets.token_hex(3)}"
    api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
    api.call(
        "POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": conf}
    )

    def finished() -> str | None:
        state = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}")["state"]
        return state if state in {"success", "failed"} else None

    state = wait_for(f"run {run_id} to finish", finished, topology, RUN_TIMEOUT_S, every=5)
    instances = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances")["task_instances"]
    states = {ti["task_id"]: ti["state"] for ti in instances}
    assert state == "success", (
        f"run {run_id} {state}; tasks: {states}\n{_task_log_tails(topology.home, run_id)}"
    )
    assert states == dict.fromkeys(task_ids, "success")
    runs = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns")["dag_runs"]
    assert [r["dag_run_id"] for r in runs] == [run_id], "a run this test did not trigger was scheduled"

    # Each task instance was executed by exactly one of the two Celery workers (their own logs),
    # and its task log (written on that worker) holds the same task instance's stclusters records.
    ran_on = _worker_of_each_task(topology, run_id)
    by_id = {ti["id"]: ti for ti in instances}
    assert set(ran_on) == set(by_id), f"task instances seen in the worker logs: {ran_on}"
    for ti_id, worker in ran_on.items():
        task_id = by_id[ti_id]["task_id"]
        records = _task_log_records(topology.home, run_id, task_id)
        ours = [r for r in records if str(r.get("logger", "")).startswith("stclusters.")]
        assert ours and all(r.get("ti_id") == ti_id for r in ours), (
            f"{task_id} (on {worker}): no stclusters records"
        )
    # The DAG's DuckDB tasks took the pool named in the shared settings.
    assert pool in {ti["pool"] for ti in instances}, (
        f"no task in pool {pool}: {[ti['pool'] for ti in instances]}"
    )
    # The Celery result backend is the PostgreSQL database: one stored result per task (the last
    # one lands a moment after the run's state: the task reports to the API before Celery does).
    results = {"SUCCESS": len(task_ids)}
    conn = topology.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    wait_for(f"Celery results {results}", lambda: _celery_results(conn) == results, topology, 60, every=1)
    assert (tmp_path / "output" / "2023" / "manifest.json").exists()
    counts = {w: sorted(by_id[i]["task_id"] for i, x in ran_on.items() if x == w) for w in WORKERS}
    print(f"tasks per Celery worker: {counts}")


def start_components(topology: Topology) -> None:
    """What docker-compose.yml runs, as host processes (no triggerer: the DAG never defers)."""
    api = ("api-server", "--host", "127.0.0.1", "--port", str(topology.api_port), "--workers", "1")
    topology.start("api-server", *api)
    health_port = {"AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port())}
    topology.start("scheduler", "scheduler", extra_env=health_port)
    topology.start("dag-processor", "dag-processor")
    for name in WORKERS:
        # Both workers serve their task logs on this one host: a port each.
        log_port = {"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
        worker = ("celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency", "1")
        topology.start(name, *worker, extra_env=log_port)


def _task_log_records(home: Path, run_id: str, task_id: str) -> list[dict]:
    path = home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={task_id}" / "attempt=1.log"
    assert path.exists(), f"no task log at {path}"
    records = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def _task_log_tails(home: Path, run_id: str) -> str:
    found = sorted((home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}").glob("task_id=*/attempt=*.log"))
    return "\n".join(f"--- {p}\n{tail(p, 25)}" for p in found)


_WORKLOAD = re.compile(
    r"Executing workload in Celery: .*?TaskInstanceDTO\(id=UUID\('(?P<ti_id>[0-9a-f-]+)'\)"
)


def _worker_of_each_task(topology: Topology, run_id: str) -> dict[str, str]:
    """Task instance id -> the Celery worker that executed it, from the workers' own logs."""
    ran_on: dict[str, str] = {}
    for name in WORKERS:
        text = topology.log(name).read_text(errors="replace")
        assert f"{name}@" in text, f"worker {name}'s log does not name its Celery node:\n{text[:2000]}"
        for line in text.splitlines():
            match = _WORKLOAD.search(line)
            if match is None or f"run_id='{run_id}'" not in line:
                continue
            ti_id = match["ti_id"]
            assert ti_id not in ran_on, f"task instance {ti_id} executed by both {ran_on[ti_id]} and {name}"
            ran_on[ti_id] = name
    return ran_on


def _celery_results(sql_alchemy_conn: str) -> dict[str, int]:
    import psycopg

    dbname = sql_alchemy_conn.rsplit("/", 1)[1]
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname) as conn:
        rows = conn.execute("select status, count(*) from celery_taskmeta group by status").fetchall()
    return dict(rows)
