"""`make airflow` for real: tools/airflow_local.py starts the api-server, scheduler and
dag-processor on a PostgreSQL database of its own and a free port, prints the URL and the login;
the test logs in over HTTP with what was printed, sees the DAG paused, unpauses it, and finds the
scheduled run of the latest tick (an edition the embedded sample has no data for) skipped with a
clear message in the edition task's log, served by the api-server. Then it stops everything and
drops the database.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TOOL = REPO / "tools" / "airflow_local.py"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
TIMEOUT_S = 420  # generous: the machine may be shared with other test runs


def _pg_connect(dbname: str = "postgres") -> Any:
    import psycopg2

    return psycopg2.connect(dbname=dbname, connect_timeout=3, **PG)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Local:
    """tools/airflow_local.py with a private AIRFLOW_HOME, database and port."""

    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "airflow"
        (self.home / "plugins").mkdir(parents=True)
        self.port = _free_port()
        self.database = f"stclusters_localaf_{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(self.home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            # runs write under the test's folder, never the repo's workspace/ and output/
            "STCLUSTERS_WORKSPACE_DIR": str(tmp / "ws"),
            "STCLUSTERS_OUTPUT_DIR": str(tmp / "out"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
        }
        self.token = ""

    def tool(self, *args: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, str(TOOL), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def api(self, method: str, path: str, body: dict | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            text = r.read().decode()
        return json.loads(text) if text.startswith(("{", "[")) else text

    def log_tail(self, name: str) -> str:
        path = self.home / "local" / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Local]:
    try:
        con = _pg_connect()
    except Exception as exc:
        pytest.fail(f"PostgreSQL is not running on 127.0.0.1:5432 ({exc}); start it with: {PG_START}")
    con.autocommit = True
    stack = Local(tmp_path)
    try:
        yield stack
    finally:
        stack.tool("stop", timeout=120)
        with con.cursor() as cur:
            cur.execute(f'drop database if exists "{stack.database}" with (force)')
        con.close()


def _wait_for(local: Local, what: str, check: Any, timeout: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            value = None
        if value:
            return value
        time.sleep(3)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what}\n--- scheduler ---\n{local.log_tail('scheduler')}"
        f"\n--- dag-processor ---\n{local.log_tail('dag-processor')}"
    )


def test_make_airflow_starts_logs_in_and_skips_a_run_without_data(local: Local) -> None:
    started = local.tool("start", "--port", str(local.port), "--database", local.database)
    assert started.returncode == 0, f"{started.stdout}\n{started.stderr}"
    out = started.stdout
    assert "WARNING" not in started.stderr  # PostgreSQL answered: no SQLite fallback
    url = re.search(r"Airflow UI:\s+(\S+)", out).group(1)
    user, password = re.search(r"login:\s+(\S+) / (\S+)", out).groups()
    assert url == f"http://127.0.0.1:{local.port}/"
    assert f"/{local.database}" in out
    pids = json.loads(json.dumps({p.stem: int(p.read_text()) for p in (local.home / "local").glob("*.pid")}))
    assert set(pids) == {"api-server", "scheduler", "dag-processor"}

    # Log in over HTTP with the printed credentials; a wrong password is refused.
    with pytest.raises(urllib.error.HTTPError) as refused:
        local.api("POST", "/auth/token", {"username": user, "password": password + "x"})
    assert refused.value.code in (401, 403)
    local.token = local.api("POST", "/auth/token", {"username": user, "password": password})["access_token"]
    dag = _wait_for(local, "the DAG to be parsed", lambda: local.api("GET", "/api/v2/dags/st_clusters"))
    assert dag["is_paused"] is True  # new DAGs start paused: nothing runs before the user says so

    # Unpausing creates the latest tick's scheduled run (catchup=False); the sample has no data
    # for that year, so its first task skips the run with a message instead of failing.
    local.api("PATCH", "/api/v2/dags/st_clusters", {"is_paused": False})

    def finished_run() -> dict | None:
        runs = local.api("GET", "/api/v2/dags/st_clusters/dagRuns")["dag_runs"]
        done = [r for r in runs if r["state"] in ("success", "failed")]
        return done[0] if done else None

    run = _wait_for(local, "the scheduled run to finish", finished_run)
    assert run["run_type"] == "scheduled" and run["state"] == "success", run
    tick_year = int(run["logical_date"][:4])
    tis = local.api("GET", f"/api/v2/dags/st_clusters/dagRuns/{run['dag_run_id']}/taskInstances")
    states = {t["task_id"]: t["state"] for t in tis["task_instances"]}
    assert states["edition"] == "skipped" and states["publish"] == "skipped", states
    log = local.api(
        "GET",
        f"/api/v2/dags/st_clusters/dagRuns/{run['dag_run_id']}/taskInstances/edition/logs/1?full_content=true",
    )
    text = json.dumps(log)
    assert f"edition {tick_year}: source set 'sample' has no data for this edition" in text
    assert (local.home / "logs").is_dir() and any((local.home / "logs").rglob("*.log"))

    # Stop: every component this script started is gone.
    stopped = local.tool("stop", timeout=120)
    assert stopped.returncode == 0 and "api-server" in stopped.stdout
    for pid in pids.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not list((local.home / "local").glob("*.pid"))
