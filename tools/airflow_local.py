"""A local Airflow for the st_clusters DAG: api-server, scheduler and dag-processor on 127.0.0.1.

    python tools/airflow_local.py start [--port 8080] [--database stclusters_airflow]
    python tools/airflow_local.py stop

``make airflow`` and ``make airflow-stop`` call it with the Makefile's environment (AIRFLOW_HOME
= .airflow, the repo's dags/, the package installed in .venv). Metadata on PostgreSQL when it answers on
127.0.0.1:5432 (database ``stclusters_airflow``, created when missing; backfills run their
tasks in parallel without "database is locked"), else on SQLite in AIRFLOW_HOME with a warning.
The UI login is the simple auth manager's: user ``admin``, its password kept in
``<AIRFLOW_HOME>/local/passwords.json`` and printed. Task logs go to ``<AIRFLOW_HOME>/logs``,
where the api-server reads them. ``<AIRFLOW_HOME>/local/env`` holds the environment for the
``airflow`` command line (``set -a; source .airflow/local/env; set +a``), e.g. for
``airflow backfill create``. Stopping ends the processes this script started (their process
groups, by the ids in ``<AIRFLOW_HOME>/local/*.pid``) and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

COMPONENTS = ("api-server", "scheduler", "dag-processor")
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
DEFAULT_DATABASE = "stclusters_airflow"
DEFAULT_PORT = 8080
USER = "admin"
START_TIMEOUT_S = 240


def _home() -> Path:
    home = os.environ.get("AIRFLOW_HOME")
    if not home:
        raise SystemExit("AIRFLOW_HOME is not set: run this through `make airflow` (or set it)")
    return Path(home)


def _state(home: Path) -> Path:
    return home / "local"


def postgres_database(name: str) -> str | None:
    """The SQLAlchemy URL of database ``name`` on the local PostgreSQL (created when missing), or
    None when PostgreSQL does not answer on 127.0.0.1:5432."""
    try:
        import psycopg2
    except ImportError:
        return None
    try:
        con = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    except psycopg2.OperationalError:
        return None
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (name,))
            if not cur.fetchone():
                cur.execute(f'create database "{name}"')
    finally:
        con.close()
    return f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{name}"


def _secret(path: Path) -> str:
    """A random secret kept in a file, so that a restart keeps tokens and sessions valid."""
    if not path.exists():
        path.write_text(secrets.token_hex(24) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def password(state: Path) -> str:
    """The UI password of USER, generated once and kept in the simple auth manager's file."""
    path = state / "passwords.json"
    if path.exists():
        known = json.loads(path.read_text(encoding="utf-8"))
        if known.get(USER):
            return str(known[USER])
    value = secrets.token_urlsafe(12)
    path.write_text(json.dumps({USER: value}) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return value


def environment(home: Path, port: int, sql_alchemy_conn: str) -> dict[str, str]:
    """The settings every component (and the airflow command line) must share."""
    state = _state(home)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_alchemy_conn,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4" if sql_alchemy_conn.startswith("postgresql") else "1",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": _secret(state / "jwt_secret"),
        "AIRFLOW__API__SECRET_KEY": _secret(state / "secret_key"),
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(state / "passwords.json"),
        # One log folder for the workers that write task logs and the api-server that shows them.
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
    }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running(state: Path) -> dict[str, int]:
    """Components started by this script that are still alive, by name."""
    out = {}
    for name in COMPONENTS:
        pid_file = state / f"{name}.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip() or 0)
            if pid and _pid_alive(pid):
                out[name] = pid
    return out


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=3) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def start(port: int, database: str, airflow: str) -> int:
    home = _home()
    state = _state(home)
    state.mkdir(parents=True, exist_ok=True)
    alive = running(state)
    if alive:
        saved = json.loads((state / "settings.json").read_text(encoding="utf-8"))
        print(f"Airflow is already running ({', '.join(f'{n} pid {p}' for n, p in alive.items())})")
        _announce(saved["port"], state, saved["metadata"])
        return 0
    conn = postgres_database(database)
    if conn is None:
        conn = f"sqlite:///{home / 'airflow.db'}"
        print(
            f"WARNING: PostgreSQL does not answer on {PG['host']}:{PG['port']}: the metadata database is "
            f"SQLite ({home / 'airflow.db'}), one task at a time; backfills may fail with "
            f"'database is locked'. Start PostgreSQL ({PG_START}) and run `make airflow` again.",
            file=sys.stderr,
        )
    env = {**os.environ, **environment(home, port, conn)}
    (home / "logs").mkdir(parents=True, exist_ok=True)
    password(state)
    _write_env_file(state / "env", env)
    print(f"migrating the metadata database ({_redact(conn)}) ...", flush=True)
    with (state / "migrate.log").open("w") as log:
        if subprocess.run(
            [airflow, "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT
        ).returncode:
            print((state / "migrate.log").read_text()[-3000:], file=sys.stderr)
            return 1
    for name in COMPONENTS:
        args = [airflow, name, *(["--port", str(port), "--workers", "1"] if name == "api-server" else [])]
        with (state / f"{name}.log").open("w") as log:
            proc = subprocess.Popen(
                args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )  # its own process group: stopping it stops its workers
        (state / f"{name}.pid").write_text(f"{proc.pid}\n")
    (state / "settings.json").write_text(json.dumps({"port": port, "metadata": _redact(conn)}) + "\n")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _healthy(port):
        dead = [n for n in COMPONENTS if n not in running(state)]
        if dead or time.monotonic() > deadline:
            why = f"{', '.join(dead)} exited" if dead else f"no answer within {START_TIMEOUT_S} s"
            name = dead[0] if dead else "api-server"
            print(f"Airflow did not start: {why}. Last lines of {state / (name + '.log')}:", file=sys.stderr)
            print((state / f"{name}.log").read_text(errors="replace")[-3000:], file=sys.stderr)
            stop()
            return 1
        time.sleep(2)
    _announce(port, state, _redact(conn))
    return 0


def _redact(conn: str) -> str:
    return conn.split("://", 1)[0] + "://" + conn.split("@", 1)[-1] if "@" in conn else conn


def _write_env_file(path: Path, env: dict[str, str]) -> None:
    keys = sorted(k for k in env if k.startswith("AIRFLOW") or k in ("STCLUSTERS_SOURCES_FILE",))
    path.write_text("".join(f"{k}={shlex.quote(env[k])}\n" for k in keys), encoding="utf-8")
    path.chmod(0o600)


def _announce(port: int, state: Path, metadata: str) -> None:
    print(f"Airflow UI:  http://127.0.0.1:{port}/")
    print(f"login:       {USER} / {password(state)}   (kept in {state / 'passwords.json'})")
    print(f"metadata:    {metadata}")
    print(f"logs:        {state}/<component>.log; task logs in {state.parent / 'logs'}")
    print(f"command line: set -a; source {state / 'env'}; set +a; airflow dags list")
    print("stop:        make airflow-stop")


def stop() -> int:
    state = _state(_home())
    alive = running(state)
    for pid in alive.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while running(state) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in running(state).values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for name in COMPONENTS:
        (state / f"{name}.pid").unlink(missing_ok=True)
    print(f"stopped: {', '.join(alive) or 'nothing was running'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/airflow_local.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("start")
    s.add_argument("--port", type=int, default=int(os.environ.get("AIRFLOW_PORT", DEFAULT_PORT)))
    s.add_argument("--database", default=os.environ.get("AIRFLOW_DATABASE", DEFAULT_DATABASE))
    s.add_argument("--airflow", default=str(Path(sys.executable).parent / "airflow"))
    sub.add_parser("stop")
    args = parser.parse_args(argv)
    if args.command == "start":
        return start(args.port, args.database, args.airflow)
    return stop()


if __name__ == "__main__":
    sys.exit(main())
