"""The validation gate: DuckDB computes, Great Expectations judges.

Heavy, row-level checks run inside DuckDB (dbt tests and the summary marts such as
``check_summaries`` and ``geocoding_coverage``); this module hands Great Expectations the small
frames DuckDB computed (never a whole layer: GX's SQL engine returns no rows on DuckDB, see
docs/operations.md) and decides: publication happens only when every *critical* expectation
passes. Each run keeps its Data Docs, a JSON summary and a Markdown summary under
``<workspace>/<edition>/validation/<run_id>/``; ``latest.json`` points to the newest.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from stclusters.config import RunParams

log = logging.getLogger(__name__)

CRITICAL = "critical"
WARNING = "warning"


class GateFailed(RuntimeError):
    """At least one critical expectation failed; nothing is published."""


@dataclass(frozen=True)
class Check:
    """One expectation on one frame, with its severity."""

    frame: str
    expectation: Any
    severity: str = CRITICAL


def read_frames(params: RunParams) -> dict[str, pd.DataFrame]:
    """The small frames the gate validates, read from the edition's DuckDB file."""
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        return {
            "ranking": con.sql("select * from main.ranking order by rank").df(),
            "n_clusters": con.sql("select count(*) as n from main.clusters").df(),
            "check_summaries": con.sql("select * from main.check_summaries order by layer").df(),
            "coverage": con.sql(
                "select * from main.geocoding_coverage where country = '*' order by layer"
            ).df(),
        }
    finally:
        con.close()


def expectations(params: RunParams, frames: dict[str, pd.DataFrame]) -> list[Check]:
    import great_expectations.expectations as gxe

    n_clusters = int(frames["n_clusters"]["n"].iloc[0])
    expected_rows = min(params.top_n, n_clusters)
    checks = [
        # --- ranking ------------------------------------------------------------------------
        Check("ranking", gxe.ExpectTableRowCountToEqual(value=expected_rows)),
        Check("ranking", gxe.ExpectColumnValuesToBeUnique(column="rank")),
        Check("ranking", gxe.ExpectColumnValuesToBeBetween(column="rank", min_value=1, max_value=max(expected_rows, 1))),
        Check("ranking", gxe.ExpectColumnValuesToNotBeNull(column="name")),
        Check("ranking", gxe.ExpectColumnValueLengthsToBeBetween(column="name", min_value=1)),
        Check("ranking", gxe.ExpectColumnValuesToBeBetween(column="pct_share", min_value=0, max_value=1)),
        Check("ranking", gxe.ExpectColumnValuesToBeBetween(column="pub_share", min_value=0, max_value=1)),
        Check("ranking", gxe.ExpectColumnSumToBeBetween(column="pct_share", min_value=0, max_value=1 + 1e-9)),
        Check("ranking", gxe.ExpectColumnSumToBeBetween(column="pub_share", min_value=0, max_value=1 + 1e-9)),
        Check("ranking", gxe.ExpectColumnValuesToBeBetween(column="score_error", min_value=0, max_value=1e-9)),
        # --- whole-layer summaries computed in DuckDB ------------------------------------------
        Check("check_summaries", gxe.ExpectColumnValuesToBeBetween(column="documents_counted", min_value=1)),
        Check("check_summaries", gxe.ExpectColumnValuesToBeBetween(column="conservation_error", max_value=1e-6)),
        Check("check_summaries", gxe.ExpectColumnValuesToBeBetween(column="documents_duplicated", max_value=0)),
        Check(
            "check_summaries",
            gxe.ExpectColumnValuesToBeBetween(column="out_of_window_share", max_value=params.max_out_of_window_share),
        ),
        Check(
            "coverage",
            gxe.ExpectColumnValuesToBeBetween(column="geocoded_share", min_value=params.min_geocoded_share),
        ),
    ]
    return checks


def _prepare(frames: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    ranking = frames["ranking"].copy()
    # score = pct_share + pub_share, up to float rounding
    ranking["score_error"] = (ranking["score"] - ranking["pct_share"] - ranking["pub_share"]).abs()
    return {**frames, "ranking": ranking}


def run_gate(params: RunParams, frames: dict[str, pd.DataFrame] | None = None) -> dict:
    """Validate the edition; write Data Docs and summaries; raise GateFailed on a critical failure."""
    import great_expectations as gx

    frames = _prepare(frames if frames is not None else read_frames(params))
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = params.workspace / "validation" / run_id
    gx_dir = run_dir / "gx"
    gx_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(gx_dir))
    source = context.data_sources.add_pandas("edition_frames")
    checks = expectations(params, frames)
    results: list[dict[str, Any]] = []
    for frame_name in dict.fromkeys(c.frame for c in checks):
        asset = source.add_dataframe_asset(name=frame_name)
        batch = asset.add_batch_definition_whole_dataframe(f"{frame_name}_all")
        suite = context.suites.add(gx.ExpectationSuite(name=f"{frame_name}_suite"))
        frame_checks = [c for c in checks if c.frame == frame_name]
        for c in frame_checks:
            c.expectation.meta = {"severity": c.severity}
            suite.add_expectation(c.expectation)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{frame_name}_validation", data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=f"{frame_name}_checkpoint",
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="update_data_docs")],
                result_format={"result_format": "SUMMARY"},
            )
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": frames[frame_name]})
        for run_result in outcome.run_results.values():
            for r in run_result.results:
                cfg = r.expectation_config
                results.append(
                    {
                        "frame": frame_name,
                        "expectation": cfg.type,
                        "kwargs": {k: v for k, v in cfg.kwargs.items() if k != "batch_id"},
                        "severity": (cfg.meta or {}).get("severity", CRITICAL),
                        "success": bool(r.success),
                        "observed": _observed(r.result),
                    }
                )
    docs_index = _docs_index(gx_dir)
    summary = _summary(params, run_id, results, docs_index)
    summary["run_dir"] = str(run_dir)
    _write_summaries(run_dir, summary)
    latest = params.workspace / "validation" / "latest.json"
    tmp = latest.with_name(f"latest.json.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    os.replace(tmp, latest)
    if not summary["passed"]:
        failed = [f"{r['frame']}.{r['expectation']}({_short(r['kwargs'])})" for r in summary["critical_failures"]]
        raise GateFailed(
            f"validation gate failed for edition {params.edition}: {len(failed)} critical expectation(s) "
            f"failed: {', '.join(failed)}. Report: {run_dir / 'summary.md'} (Data Docs: {docs_index})"
        )
    log.info("validation gate passed for edition %s (%d expectations)", params.edition, len(results))
    return {"edition": params.edition, "passed": True, "run_dir": str(run_dir)}


def _observed(result: dict[str, Any] | None) -> Any:
    if not result:
        return None
    for key in ("observed_value", "unexpected_count"):
        if key in result:
            value = result[key]
            return value.item() if hasattr(value, "item") else value
    return None


def _short(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


def _docs_index(gx_dir: Path) -> str | None:
    found = sorted(gx_dir.rglob("data_docs/local_site/index.html"))
    return str(found[0]) if found else None


def _summary(params: RunParams, run_id: str, results: list[dict], docs_index: str | None) -> dict:
    critical_failures = [r for r in results if not r["success"] and r["severity"] == CRITICAL]
    warnings = [r for r in results if not r["success"] and r["severity"] == WARNING]
    return {
        "edition": params.edition,
        "run_id": run_id,
        "passed": not critical_failures,
        "n_expectations": len(results),
        "n_failed": sum(not r["success"] for r in results),
        "critical_failures": critical_failures,
        "warnings": warnings,
        "data_docs": docs_index,
        "results": results,
    }


def _write_summaries(run_dir: Path, summary: dict) -> None:
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    lines = [
        f"# Validation of edition {summary['edition']} (run {summary['run_id']})",
        "",
        f"**{'PASSED' if summary['passed'] else 'FAILED'}**: {summary['n_expectations']} expectations, "
        f"{summary['n_failed']} failed ({len(summary['critical_failures'])} critical, "
        f"{len(summary['warnings'])} warnings).",
        "",
        f"Data Docs: {summary['data_docs']}",
        "",
        "| frame | expectation | arguments | severity | result | observed |",
        "|---|---|---|---|---|---|",
    ]
    for r in summary["results"]:
        lines.append(
            f"| {r['frame']} | {r['expectation']} | {_short(r['kwargs'])} | {r['severity']} | "
            f"{'pass' if r['success'] else 'FAIL'} | {r['observed']} |"
        )
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n")


def latest_summary(params: RunParams) -> dict | None:
    path = params.workspace / "validation" / "latest.json"
    return json.loads(path.read_text()) if path.exists() else None


def copy_reports(summary: dict, dest: Path) -> None:
    """Copy a run's summaries and Data Docs next to a publication."""
    run_dir = Path(summary["run_dir"])
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("summary.json", "summary.md"):
        shutil.copy2(run_dir / name, dest / name)
    if summary.get("data_docs"):
        shutil.copytree(Path(summary["data_docs"]).parent, dest / "data_docs", dirs_exist_ok=True)
