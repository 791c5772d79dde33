"""Run the dbt project on an edition's DuckDB file, one selection at a time (``dbt build
--selector <name>``: models, seeds and dbt tests of one step; dbt_project/selectors.yml).

dbt runs as a subprocess of the virtualenv's ``dbt`` with per-edition target, log and database
paths, so editions can build at the same time without sharing any file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from stclusters.config import DBT_PROJECT_DIR, RunParams
from stclusters.handover import LoadStats

log = logging.getLogger(__name__)


def exact_sum(expr: str) -> str:
    """The SQL of dbt_project/macros/exact_sum.sql for the Python models: a sum of doubles that
    does not depend on the order of the rows (each value as a 128-bit decimal with 24 places, the
    total back to double). tests/unit/test_dbt_project.py checks both give the same SQL."""
    return f"cast(sum(cast({expr} as decimal(38, 24))) as double)"


@contextlib.contextmanager
def duckdb_memory_lent(con, keep: str = "256MB"):
    """For a dbt Python model that works in numpy in dbt's process: DuckDB's memory_limit is
    lowered to ``keep`` while the block runs, so DuckDB evicts the blocks it cached for earlier
    models (spilling temporary ones) and the process holds the numpy work's memory plus ``keep``
    instead of plus the whole limit (scale 1: the cluster step's peak 5,990 MB -> 3,571 MB,
    docs/performance.md); the run's limit (STCLUSTERS_DUCKDB_MEMORY_LIMIT) is set back after."""
    limit = (
        os.environ.get("STCLUSTERS_DUCKDB_MEMORY_LIMIT")
        or con.sql("select current_setting('memory_limit')").fetchone()[0]
    )
    con.execute(f"set memory_limit = '{keep}'")
    try:
        yield
    finally:
        con.execute(f"set memory_limit = '{limit}'")


# Address rows per GB of duckdb_memory_limit that one bucket of documents may hold (macro
# document_bucket): a GII-size edition (51 M rows) is one bucket at 3GB; scale 5 of make bench
# (256 M rows), whose per-document joins spilled or ran out of memory in one query, is five.
BUCKET_ROWS_PER_GB = 20_000_000

_SIZE_UNITS = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def memory_limit_bytes(limit: str) -> int:
    """Bytes of a DuckDB memory_limit as written in the run parameters ('3GB', '2.5 GiB',
    '3000MB', or a percentage of the machine's memory such as '75%')."""
    text = limit.strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%|[kmgt]i?b|b)?", text)
    if not match:
        raise ValueError(
            f"duckdb_memory_limit {limit!r}: not a size; write it as DuckDB does, e.g. '3GB', "
            "'3000MB', '2.5GiB' or '75%'"
        )
    number, unit = float(match.group(1)), match.group(2) or "b"
    if unit == "%":
        return int(number / 100 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return int(number * _SIZE_UNITS[unit])


def document_buckets(params: RunParams) -> int:
    """The var document_buckets of the build: the run parameter when set, else one bucket per
    BUCKET_ROWS_PER_GB address rows loaded (load_stats.json) per GB of the memory limit."""
    if params.document_buckets:
        return params.document_buckets
    rows = LoadStats.read(params).rows_loaded()
    per_bucket = BUCKET_ROWS_PER_GB * memory_limit_bytes(params.duckdb_memory_limit) / 1e9
    return max(1, -(-rows // max(1, int(per_bucket))))


class TransformError(RuntimeError):
    """dbt build failed; the message carries dbt's own summary of what failed."""


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def dbt_env(params: RunParams) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            **params.dbt_profile_env(),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
        }
    )
    return env


def run_dbt(params: RunParams, command: str = "build", extra: list[str] | None = None) -> Path:
    """Run one dbt command for the edition; returns the path of its run_results.json."""
    dbt_dir = params.workspace / "dbt"
    buckets = document_buckets(params)
    if buckets > 1:
        log.info(
            "dbt: the per-document models are built in %d buckets of documents (document_buckets;"
            " duckdb_memory_limit %s)",
            buckets,
            params.duckdb_memory_limit,
        )
    args = [
        dbt_executable(),
        "--no-use-colors",
        command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(dbt_dir / "target"),
        "--log-path",
        str(dbt_dir / "logs"),
        "--vars",
        json.dumps({**params.dbt_vars(), "document_buckets": buckets}),
        *(extra or []),
    ]
    log.info("running: %s", " ".join(args))
    results = dbt_dir / "target" / "run_results.json"
    before = results.stat().st_mtime_ns if results.exists() else None
    proc = subprocess.Popen(
        args,
        cwd=DBT_PROJECT_DIR,
        env=dbt_env(params),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    tail: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        log.log(dbt_line_level(line), "dbt | %s", line)
        tail = [*tail, line][-40:]
    code = proc.wait()
    if code != 0:
        # a dbt that was killed wrote no run_results: an earlier run's would name an old failure
        fresh = results.exists() and results.stat().st_mtime_ns != before
        failures = summarise_failures(results) if fresh else ""
        killed = ""
        if code < 0:
            killed = f"dbt was killed by signal {-code}" + (
                " (SIGKILL: often the kernel's out-of-memory killer, which the machine's log names;"
                " give the worker more memory or lower duckdb_memory_limit, docs/performance.md)"
                if -code == signal.SIGKILL
                else ""
            )
            killed += "; its last lines:\n"
        raise TransformError(
            f"dbt {command} failed for edition {params.edition} (exit {code}): "
            + killed
            + (failures or "\n".join(tail[-15:]))
        )
    return results


# dbt's lines that stay at INFO in the task log: its start, what it found, warnings, failures and
# the totals. The per-node START/OK lines (two per model and test, ~360 a build) go to DEBUG;
# all of them are in dbt's own log, <workspace>/<edition>/dbt/logs/dbt.log.
_DBT_INFO = re.compile(r"Running with dbt|Found \d+ model|WARN|ERROR|FAIL|Finished running|Completed|Done\. ")


def dbt_line_level(line: str) -> int:
    """The log level of one line of dbt's output (INFO for the lines an operator reads)."""
    return logging.INFO if _DBT_INFO.search(line) else logging.DEBUG


def summarise_failures(run_results: Path) -> str:
    """One line per failed or erroring dbt node, from run_results.json."""
    try:
        results = json.loads(run_results.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return ""
    bad = [r for r in results if r.get("status") in {"error", "fail"}]
    return "; ".join(
        f"{r['unique_id']}: {r['status']}: {(r.get('message') or '').strip()[:300]}" for r in bad
    )


def build(params: RunParams, selector: str | None) -> dict:
    """``dbt build --selector <selector>`` (dbt_project/selectors.yml) for the edition: one layer
    of models with their tests. Returns a small summary (for the task log and XCom); the run's
    run_results.json is kept as ``<workspace>/dbt/run_results/<selector>.json`` (the next
    selection's run overwrites dbt's own). ``selector=None`` builds every node in one ``dbt
    build`` (the five selections together: each node is in exactly one), kept as ``all.json``."""
    results_path = run_dbt(params, "build", ["--selector", selector] if selector else [])
    selector = selector or "all"
    kept = params.workspace / "dbt" / "run_results" / f"{selector}.json"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(results_path, kept)
    results = json.loads(kept.read_text())["results"]
    statuses: dict[str, int] = {}
    for r in results:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    log.info("dbt build --selector %s for edition %s: %s", selector, params.edition, statuses)
    return {
        "edition": params.edition,
        "selector": selector,
        "dbt_statuses": statuses,
        "run_results": str(kept),
    }
