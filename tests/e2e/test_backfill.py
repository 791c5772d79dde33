"""Backfill three editions through the real scheduler, then re-run one: nothing changes.

Real components, as in production: PostgreSQL metadata database (a database of its own, dropped
at the end), ``airflow api-server`` (Execution API), ``airflow scheduler`` with the
LocalExecutor (parallelism 4), ``airflow dag-processor``, and ``airflow backfill create``.
Each edition reads its own tiny generated world through a sources file with ``{edition}``.

The scheduler must see the DAG unpaused to run backfill runs, and unpausing would also start the
latest tick's scheduled run (catchup=False). The scheduler runs with ``use_job_schedule=False``
so that only the backfill's runs (and the test's manual re-run) compete for the two cores;
tests/dags and tests/unit/test_editions.py cover the schedule and the edition of a tick.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stclusters.schema import COLUMNS
from worlds import share_gazetteer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PG_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
BACKFILL_EDITIONS = (2019, 2020, 2021)
POOL = "stclusters_duckdb"
# Generous: the machine may be shared with other test runs (about 4 minutes when it is not).
TIMEOUT_S = 600

# City, country, documents per layer. Paris and Munich grow every edition, so ranks move.
CITIES = (
    ("Tokyo", "JP", 400),
    ("Yokohama", "JP", 150),
    ("Kawasaki", "JP", 80),
    ("Munich", "DE", 120),
    ("Paris", "FR", 150),
    ("Boston", "US", 100),
    ("Cambridge", "US", 100),
)


def write_world(out: Path, edition: int) -> None:
    """A tiny canonical world for one edition, every document inside the edition's windows."""
    rng = random.Random(edition)
    growth = 1 + (edition - 2019) * 0.2
    out.mkdir(parents=True, exist_ok=True)
    for layer in ("patents", "publications"):
        rows, n = [], 0
        for city, cc, volume in CITIES:
            for _ in range(int(volume * (growth if city in ("Paris", "Munich") else 1))):
                n += 1
                region = "MA" if cc == "US" else ""
                if layer == "patents":
                    year = rng.randint(edition - 5, edition - 1)
                    rows.append(
                        [f"WO{edition}{n:06d}", f"{year}-03-05", 1, city, "", region, cc, "", "", "Acme", ""]
                    )
                else:
                    year = rng.randint(edition - 6, edition - 2)
                    rows.append(
                        [
                            f"WOS:{edition}{n:08d}",
                            year,
                            "Article",
                            1,
                            "Univ",
                            city,
                            "",
                            region,
                            cc,
                            "",
                            "",
                            "",
                        ]
                    )
        with gzip.open(out / f"{layer}.csv.gz", "wt", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS[layer])
            writer.writerows(rows)


def _pg_connect(dbname: str = "postgres"):
    import psycopg2

    return psycopg2.connect(dbname=dbname, connect_timeout=3, **PG)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sha256_tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class Stack:
    """The Airflow components of one test, their environment and their logs."""

    def __init__(self, tmp: Path, dbname: str) -> None:
        self.tmp = tmp
        self.dbname = dbname
        self.procs: list[subprocess.Popen] = []
        port = _free_port()
        home = tmp / "airflow"
        (home / "plugins").mkdir(parents=True)
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{dbname}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__API__SECRET_KEY": uuid.uuid4().hex,
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "STCLUSTERS_SOURCES_FILE": str(tmp / "sources.yml"),
            "STCLUSTERS_AIRFLOW_POOL": POOL,
            # The manifest records the code version; pin it so that a dirty tree cannot differ.
            "STCLUSTERS_CODE_VERSION": "e2e",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
        }
        self.port = port

    def airflow(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(
            [str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise AssertionError(
                f"airflow {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def start(self, *args: str) -> None:
        log = (self.tmp / f"{args[0]}.log").open("w")
        self.procs.append(
            subprocess.Popen(
                [str(BIN / "airflow"), *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopping it stops its workers
            )
        )

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=10)

    def check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                name = p.args[1]
                raise AssertionError(f"airflow {name} exited ({p.returncode}):\n{self.log_tail(name)}")

    def log_tail(self, name: str, n: int = 4000) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    def query(self, sql: str, *args: object) -> list[tuple]:
        con = _pg_connect(self.dbname)
        try:
            with con.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        finally:
            con.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    try:
        con = _pg_connect()
    except Exception as exc:
        pytest.fail(f"PostgreSQL is not running on 127.0.0.1:5432 ({exc}); start it with: {PG_START}")
    dbname = f"stclusters_e2e_{uuid.uuid4().hex[:8]}"
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(f'create database "{dbname}"')
    s = Stack(tmp_path, dbname)
    try:
        yield s
    finally:
        s.stop()
        with con.cursor() as cur:
            cur.execute(f'drop database if exists "{dbname}" with (force)')
        con.close()


def _wait_for(stack: Stack, what: str, check, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        value = check()
        if value:
            return value
        time.sleep(3)
    raise AssertionError(
        f"timed out after {timeout:.0f}s waiting for {what}\n--- scheduler ---\n{stack.log_tail('scheduler')}"
    )


def _runs(stack: Stack) -> list[tuple]:
    return stack.query(
        "select run_id, run_type, state, logical_date, start_date, end_date, conf "
        "from dag_run where dag_id = 'st_clusters' order by logical_date"
    )


def _task_summary(stack: Stack, run_id: str) -> str:
    rows = stack.query("select task_id, state from task_instance where run_id = %s order by task_id", run_id)
    return ", ".join(f"{t}={s}" for t, s in rows)


def test_backfill_three_editions_concurrently_then_rerun_unchanged(
    stack: Stack, tmp_path: Path, gazetteer_cache: Path
) -> None:
    editions = BACKFILL_EDITIONS
    for e in editions:
        write_world(tmp_path / "data" / str(e), e)
    # the editions share the session's gazetteer cache (their first pulls would each build it)
    out, ws = tmp_path / "out", share_gazetteer(tmp_path / "ws", gazetteer_cache)
    (tmp_path / "sources.yml").write_text(
        "source_sets:\n"
        "  sample:\n"
        f"    patents: {{uri: '{tmp_path}/data/{{edition}}/patents.csv.gz', format: canonical}}\n"
        f"    publications: {{uri: '{tmp_path}/data/{{edition}}/publications.csv.gz', format: canonical}}\n"
        "    params:\n"
        "      min_patents: 50\n"
        "      min_publications: 50\n"
        "      top_n: 5\n"
        f"      workspace_dir: '{ws}'\n"
        f"      output_dir: '{out}'\n"
        "      duckdb_memory_limit: 1GB\n"
        "      duckdb_threads: 1\n",
        encoding="utf-8",
    )

    stack.airflow("db", "migrate", timeout=300)
    stack.airflow("pools", "set", POOL, "3", "DuckDB-heavy tasks of st_clusters")
    stack.start("api-server", "--port", str(stack.port), "--workers", "1")
    stack.start("dag-processor")
    stack.start("scheduler")
    _wait_for(
        stack,
        "the DAG to be parsed",
        lambda: stack.query("select 1 from serialized_dag where dag_id = 'st_clusters'"),
        120,
    )

    t0 = time.monotonic()
    stack.airflow(
        "backfill", "create", "--dag-id", "st_clusters",
        "--from-date", f"{BACKFILL_EDITIONS[0]}-01-01", "--to-date", f"{BACKFILL_EDITIONS[-1]}-12-31",
        "--max-active-runs", "3",
    )  # fmt: skip
    stack.airflow("dags", "unpause", "st_clusters")

    def finished() -> list[tuple] | None:
        runs = _runs(stack)
        done = all(r[2] in ("success", "failed") for r in runs)
        return runs if done and len(runs) == len(BACKFILL_EDITIONS) else None

    runs = _wait_for(stack, "the backfill's runs", finished, TIMEOUT_S)
    failed = [f"{r[0]}: {_task_summary(stack, r[0])}" for r in runs if r[2] != "success"]
    assert not failed, f"runs failed: {failed}\n{stack.log_tail('scheduler')}"
    print(f"backfill finished in {time.monotonic() - t0:.0f}s")

    # Each backfill run built the edition of its logical date, with the GII windows.
    backfills = [r for r in runs if r[1] == "backfill"]
    assert [r[3].year for r in backfills] == list(BACKFILL_EDITIONS)
    assert all((r[3].month, r[3].day, r[3].hour) == (3, 1, 3) for r in backfills)
    for e in editions:
        manifest = json.loads((out / str(e) / "manifest.json").read_text())
        assert manifest["edition"] == e
        assert manifest["windows"] == {"patents": [e - 5, e - 1], "publications": [e - 6, e - 2]}
        assert (out / str(e) / "ranking.csv").stat().st_size > 0
        assert (ws / str(e) / "stclusters.duckdb").exists()  # isolated per edition

    # At least two backfill runs were running at the same time.
    spans = sorted((r[4], r[5]) for r in backfills)
    overlaps = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :] if b[0] < a[1]]
    assert overlaps, f"no two backfill runs overlapped: {spans}"

    # When the lead's publish writes the diff, each edition compares with an earlier one.
    for e in editions:
        diff_path = out / str(e) / "edition_diff.json"
        if diff_path.exists():
            doc = json.loads(diff_path.read_text())
            assert doc["edition"] == e
            assert doc["previous_edition"] is None or doc["previous_edition"] < e

    # Re-run one edition with the same inputs and parameters: the publication is untouched.
    rerun = BACKFILL_EDITIONS[1]
    before = _sha256_tree(out / str(rerun))
    mtime = (out / str(rerun) / "manifest.json").stat().st_mtime_ns
    run_id = f"rerun_{rerun}_{uuid.uuid4().hex[:6]}"
    stack.airflow(
        "dags", "trigger", "st_clusters", "--run-id", run_id, "--conf", json.dumps({"edition": rerun})
    )
    state = _wait_for(
        stack,
        f"the re-run of {rerun}",
        lambda: next((r[2] for r in _runs(stack) if r[0] == run_id and r[2] in ("success", "failed")), None),
        240,
    )
    assert state == "success", _task_summary(stack, run_id)
    outcome = stack.query(
        "select value from xcom where run_id = %s and task_id = 'publish' and key = 'return_value'", run_id
    )
    assert outcome and "unchanged" in json.dumps(outcome[0][0]), outcome
    assert _sha256_tree(out / str(rerun)) == before
    assert (out / str(rerun) / "manifest.json").stat().st_mtime_ns == mtime
    assert not (out / "_archive").exists()
