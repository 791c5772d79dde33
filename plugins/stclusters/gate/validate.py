"""The validation gate: DuckDB computes, Great Expectations judges, only critical checks block.

Three stages, each a set of versioned GX suites defined below (``SUITE_VERSION``):

- ``raw``: the land step's rows (``raw.patents``, ``raw.publications``, ``raw.quarantine``),
  summarised per layer (:data:`RAW_LAYERS_SQL`: rows, required-field nulls, duplicated
  (document, address) rows, counted once over the staged rows by the dbt mart
  ``check_summaries``; quarantined rows), and the distinct country codes of the raw tables.
- ``counted``: the geocoded and fractionally counted data, summarised by the dbt marts
  ``check_summaries`` (conservation, window, duplicates) and ``geocoding_coverage``.
- ``ranking``: the ``ranking`` and ``clusters`` marts and their consistency, plus stability
  against the previous published edition (warnings only).

Large tables never leave DuckDB: every frame handed to GX is a summary (one row per layer, per
country, or per cluster). GX's SQL engine returns no rows on DuckDB (GX issues 10738, 11579),
so GX validates these frames through its pandas data source.

Publication happens only when every *critical* expectation passes. Each run keeps its Data Docs,
``summary.json``, ``summary.md`` and the exact CSV files it vouched for (``validated/``, with
their sha256 in the summary, which publish re-checks) under
``<workspace>/<edition>/validation/<run_id>/``; ``latest.json`` is a copy of the newest summary.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from stclusters import handover
from stclusters.config import RunParams
from stclusters.handover import GateSummary, Manifest, latest_summary, params_fingerprint
from stclusters.reference import countries

log = logging.getLogger(__name__)

CRITICAL = "critical"
WARNING = "warning"
SUITE_VERSION = "2"

# The stability warning looks at the previous edition's top clusters.
STABILITY_TOP = 10
# Floating-point slack of identities that hold exactly in real arithmetic.
TOLERANCE = 1e-6
# Counted addresses geocoded to a place in another country than the one read (CN/HK/MO aside):
# a parser or gazetteer error puts addresses in a wrong country; given coordinates near a border
# may label a few with the neighbour's town (docs/geocoding.md).
MAX_OTHER_COUNTRY_SHARE = 0.005

STAGES = ("raw", "counted", "ranking")
# frame -> (stage, key columns that identify a failing row in messages)
FRAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "raw_layers": ("raw", ("layer",)),
    "raw_quarantine": ("raw", ("layer", "unit")),
    "raw_countries": ("raw", ("layer", "country")),
    "counted_layers": ("counted", ("layer",)),
    "coverage_layers": ("counted", ("layer",)),
    "coverage_major_countries": ("counted", ("layer", "country")),
    "ranking": ("ranking", ("rank", "name")),
    "clusters_summary": ("ranking", ()),
    "stability": ("ranking", ("previous_rank", "name")),
    # both counts with the layer: a failure names what was landed before and now
    "completeness": ("raw", ("layer", "previous_documents", "documents")),
}


class GateFailed(RuntimeError):
    """At least one critical expectation failed; nothing is published."""


@dataclass(frozen=True)
class Check:
    """One expectation on one frame: ``id`` is the stable name used in messages and reports."""

    id: str
    frame: str
    expectation: Any
    severity: str = CRITICAL

    @property
    def stage(self) -> str:
        return FRAMES[self.frame][0]


# --- frames computed in DuckDB ---------------------------------------------------------------

# The per-layer summary of the landed rows is computed once, by the dbt mart check_summaries (one
# aggregate over the tens of millions of staged rows serves the raw and the counted stage);
# the quarantine is read from the land step's table.
RAW_LAYERS_SQL = """
with quarantine as (
    select layer, count(*) as rows_quarantined from raw.quarantine group by layer
)
select
    s.layer,
    s.rows_landed,
    s.documents_landed,
    s.missing_document_id,
    s.missing_address_seq,
    s.missing_year,
    s.missing_country,
    s.duplicate_address_rows,
    coalesce(quarantine.rows_quarantined, 0) as rows_quarantined
from main.check_summaries as s
left join quarantine on s.layer = quarantine.layer
order by s.layer
"""

# The quarantine share in one unit per row: quarantined records / records read, quarantined
# addresses / addresses read (raw.read_counts, written by the land step from the adapters'
# counts; a canonical row quarantined at load is one address). Never addresses over records.
RAW_QUARANTINE_SQL = """
with quarantined as (
    select layer, unit, count(*) as n_quarantined from raw.quarantine group by layer, unit
)
select
    coalesce(r.layer, q.layer) as layer,
    coalesce(r.unit, q.unit) as unit,
    coalesce(r.n_read, 0) as n_read,
    coalesce(q.n_quarantined, 0) as n_quarantined,
    case when coalesce(r.n_read, 0) > 0 then coalesce(q.n_quarantined, 0) / r.n_read
         when coalesce(q.n_quarantined, 0) > 0 then 1.0 else 0.0 end as quarantine_share
from raw.read_counts as r
full join quarantined as q on r.layer = q.layer and r.unit = q.unit
order by layer, unit
"""

RAW_COUNTRIES_SQL = """
select 'patents' as layer, country, count(*) as n_rows from raw.patents group by country
union all
select 'publications', country, count(*) from raw.publications group by country
order by layer, country
"""

COVERAGE_LAYERS_SQL = """
select layer, weight, geocoded_share, n_addresses
from main.geocoding_coverage where country = '*' order by layer
"""

# Countries holding at least $1 of their layer's weight: each must be geocoded as well as the
# layer as a whole (a country-wide failure would otherwise hide inside a good world average).
COVERAGE_MAJOR_SQL = """
with totals as (select layer, weight as layer_weight from main.geocoding_coverage where country = '*')
select c.layer, c.country, c.weight / t.layer_weight as weight_share, c.geocoded_share
from main.geocoding_coverage as c
inner join totals as t on c.layer = t.layer
where c.country not in ('*', '-') and c.weight >= $1 * t.layer_weight
order by c.layer, c.country
"""

RANKING_SQL = "select * from main.ranking order by rank"

# One row: the ranking must be exactly the first top_n clusters; shares over every cluster.
CLUSTERS_SUMMARY_SQL = """
with r as (select * from main.ranking),
c as (select * from main.clusters where rank <= $1),
mismatched as (
    select coalesce(r.rank, c.rank) as rank
    from r full outer join c on r.rank = c.rank
    where r.rank is null or c.rank is null
        or r.cluster_id is distinct from c.cluster_id
        or r.name is distinct from c.name
        or r.pct_count is distinct from c.pct_count
        or r.pub_count is distinct from c.pub_count
        or r.pct_share is distinct from c.pct_share
        or r.pub_share is distinct from c.pub_share
        or r.score is distinct from c.score
)
select
    (select count(*) from main.clusters) as n_clusters,
    (select count(*) from mismatched) as ranking_rows_not_matching_clusters,
    (select coalesce(sum(pct_share), 0) from main.clusters) as pct_share_total,
    (select coalesce(sum(pub_share), 0) from main.clusters) as pub_share_total
"""


def read_frames(con: duckdb.DuckDBPyConnection, params: RunParams) -> dict[str, pd.DataFrame]:
    """The small frames the gate validates (summaries and marts), read from the edition's DuckDB."""
    major = params.major_country_min_share
    ranking = con.execute(RANKING_SQL).df()
    # score = pct_share + pub_share, up to float rounding, as a column GX can bound
    ranking["score_error"] = (ranking["score"] - ranking["pct_share"] - ranking["pub_share"]).abs()
    return {
        "raw_layers": con.execute(RAW_LAYERS_SQL).df(),
        "raw_quarantine": con.execute(RAW_QUARANTINE_SQL).df(),
        "raw_countries": con.execute(RAW_COUNTRIES_SQL).df(),
        "counted_layers": con.execute("select * from main.check_summaries order by layer").df(),
        "coverage_layers": con.execute(COVERAGE_LAYERS_SQL).df(),
        "coverage_major_countries": con.execute(COVERAGE_MAJOR_SQL, [major]).df(),
        "ranking": ranking,
        "clusters_summary": con.execute(CLUSTERS_SUMMARY_SQL, [params.top_n]).df(),
        "clusters": con.execute("select rank, name from main.clusters order by rank").df(),
    }


def stability_frame(previous: pd.DataFrame, current: pd.DataFrame, top: int = STABILITY_TOP) -> pd.DataFrame:
    """Where each of the previous edition's top clusters (matched by name) ranks now.

    ``current_rank`` is null when no cluster of that name exists any more; ``rank_move`` is
    current - previous (positive = fell)."""
    prev = previous.loc[previous["rank"] <= top, ["rank", "name"]].rename(columns={"rank": "previous_rank"})
    now = current[["rank", "name"]].drop_duplicates("name").rename(columns={"rank": "current_rank"})
    frame = prev.merge(now, on="name", how="left").sort_values("previous_rank").reset_index(drop=True)
    frame["current_rank"] = frame["current_rank"].astype("Int64")
    frame["rank_move"] = (frame["current_rank"] - frame["previous_rank"]).astype("Int64")
    return frame[["previous_rank", "name", "current_rank", "rank_move"]]


def previous_ranking_path(params: RunParams) -> Path:
    return params.edition_output.parent / str(params.edition - 1) / "ranking.csv"


# --- the suites --------------------------------------------------------------------------------


def iso_country_codes() -> list[str]:
    found = countries.iso_codes()
    return sorted(found)


def build_checks(params: RunParams, frames: dict[str, pd.DataFrame]) -> list[Check]:
    """Every expectation of the gate, by stage. Ids are stable: messages, reports and tests use them."""
    return [
        *_raw_checks(params),
        *_counted_checks(params),
        *_ranking_checks(params, frames),
        *(_stability_checks(params) if "stability" in frames else []),
        *(_completeness_checks(params) if "completeness" in frames else []),
    ]


def _raw_checks(params: RunParams) -> list[Check]:
    import great_expectations.expectations as gxe

    def zero(column: str) -> Any:
        return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0, max_value=0)

    return [
        Check("raw.layers_present", "raw_layers", gxe.ExpectTableRowCountToEqual(value=2)),
        Check(
            "raw.layer_not_empty",
            "raw_layers",
            gxe.ExpectColumnValuesToBeBetween(column="rows_landed", min_value=1),
        ),
        Check("raw.document_id_present", "raw_layers", zero("missing_document_id")),
        Check("raw.address_seq_present", "raw_layers", zero("missing_address_seq")),
        Check("raw.year_present", "raw_layers", zero("missing_year")),
        Check("raw.country_present", "raw_layers", zero("missing_country")),
        Check("raw.document_address_unique", "raw_layers", zero("duplicate_address_rows")),
        Check(
            "raw.quarantine_share",
            "raw_quarantine",
            gxe.ExpectColumnValuesToBeBetween(
                column="quarantine_share", max_value=params.max_quarantine_share
            ),
        ),
        Check(
            "raw.country_iso",
            "raw_countries",
            gxe.ExpectColumnValuesToBeInSet(column="country", value_set=iso_country_codes()),
        ),
    ]


def _counted_checks(params: RunParams) -> list[Check]:
    import great_expectations.expectations as gxe

    return [
        Check(
            "counted.layer_has_documents",
            "counted_layers",
            gxe.ExpectColumnValuesToBeBetween(column="documents_counted", min_value=1),
        ),
        Check(
            "counted.document_id_unique",
            "counted_layers",
            gxe.ExpectColumnValuesToBeBetween(column="documents_duplicated", min_value=0, max_value=0),
        ),
        Check(
            "counted.years_in_window",
            "counted_layers",
            gxe.ExpectColumnValuesToBeBetween(
                column="out_of_window_share", max_value=params.max_out_of_window_share
            ),
        ),
        Check(
            "counted.conservation",
            "counted_layers",
            gxe.ExpectColumnValuesToBeBetween(column="conservation_error", min_value=0, max_value=TOLERANCE),
        ),
        Check(
            "counted.cells_conservation",
            "counted_layers",
            gxe.ExpectColumnValuesToBeBetween(
                column="cells_conservation_error", min_value=0, max_value=TOLERANCE
            ),
        ),
        Check(
            "counted.address_in_other_country",
            "counted_layers",
            gxe.ExpectColumnValuesToBeBetween(
                column="other_country_share", min_value=0, max_value=MAX_OTHER_COUNTRY_SHARE
            ),
        ),
        Check(
            "counted.geocoded_share_per_layer",
            "coverage_layers",
            gxe.ExpectColumnValuesToBeBetween(column="geocoded_share", min_value=params.min_geocoded_share),
        ),
        Check(
            "counted.geocoded_share_per_major_country",
            "coverage_major_countries",
            gxe.ExpectColumnValuesToBeBetween(column="geocoded_share", min_value=params.min_geocoded_share),
        ),
    ]


def _ranking_checks(params: RunParams, frames: dict[str, pd.DataFrame]) -> list[Check]:
    import great_expectations.expectations as gxe

    summary = frames["clusters_summary"]
    n_clusters = int(summary["n_clusters"].iloc[0]) if len(summary) else 0
    expected_rows = min(params.top_n, n_clusters)
    share_max = 1 + TOLERANCE
    return [
        Check(
            "ranking.clusters_found",
            "clusters_summary",
            gxe.ExpectColumnValuesToBeBetween(column="n_clusters", min_value=1),
        ),
        Check(
            "ranking.matches_clusters",
            "clusters_summary",
            gxe.ExpectColumnValuesToBeBetween(
                column="ranking_rows_not_matching_clusters", min_value=0, max_value=0
            ),
        ),
        Check(
            "ranking.pct_shares_sum_at_most_1",
            "clusters_summary",
            gxe.ExpectColumnValuesToBeBetween(column="pct_share_total", min_value=0, max_value=share_max),
        ),
        Check(
            "ranking.pub_shares_sum_at_most_1",
            "clusters_summary",
            gxe.ExpectColumnValuesToBeBetween(column="pub_share_total", min_value=0, max_value=share_max),
        ),
        Check("ranking.top_n_rows", "ranking", gxe.ExpectTableRowCountToEqual(value=expected_rows)),
        Check("ranking.rank_unique", "ranking", gxe.ExpectColumnValuesToBeUnique(column="rank")),
        Check("ranking.rank_not_null", "ranking", gxe.ExpectColumnValuesToNotBeNull(column="rank")),
        Check(
            "ranking.rank_contiguous",
            "ranking",
            gxe.ExpectColumnValuesToBeBetween(column="rank", min_value=1, max_value=max(expected_rows, 1)),
        ),
        Check("ranking.score_decreasing", "ranking", gxe.ExpectColumnValuesToBeDecreasing(column="score")),
        Check("ranking.name_not_null", "ranking", gxe.ExpectColumnValuesToNotBeNull(column="name")),
        Check(
            "ranking.name_not_empty",
            "ranking",
            gxe.ExpectColumnValuesToNotMatchRegex(column="name", regex=r"^\s*$"),
        ),
        Check(
            "ranking.pct_share_in_0_1",
            "ranking",
            gxe.ExpectColumnValuesToBeBetween(column="pct_share", min_value=0, max_value=1),
        ),
        Check(
            "ranking.pub_share_in_0_1",
            "ranking",
            gxe.ExpectColumnValuesToBeBetween(column="pub_share", min_value=0, max_value=1),
        ),
        Check("ranking.score_not_null", "ranking", gxe.ExpectColumnValuesToNotBeNull(column="score")),
        Check(
            "ranking.score_is_pct_plus_pub",
            "ranking",
            gxe.ExpectColumnValuesToBeBetween(column="score_error", min_value=0, max_value=TOLERANCE),
        ),
    ]


def _stability_checks(params: RunParams) -> list[Check]:
    import great_expectations.expectations as gxe

    move = params.stability_max_rank_move
    return [
        Check(
            "stability.top10_still_ranked",
            "stability",
            gxe.ExpectColumnValuesToNotBeNull(column="current_rank"),
            WARNING,
        ),
        Check(
            "stability.top10_rank_move",
            "stability",
            gxe.ExpectColumnValuesToBeBetween(column="rank_move", min_value=-move, max_value=move),
            WARNING,
        ),
    ]


# --- running the gate ----------------------------------------------------------------------------


def run_gate(params: RunParams) -> dict:
    """Validate the edition; keep Data Docs, summaries and the validated exports; raise GateFailed
    (naming every failed critical expectation and the report) unless every critical one passes."""
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = params.workspace / "validation" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        # Frames and exports from one connection: what is validated is what is hashed.
        frames = read_frames(con, params)
        validated_files = handover.export_tables(con, run_dir / "validated")
    finally:
        con.close()
    stability_note = _add_stability(params, frames)
    completeness_note = add_completeness(params, frames)
    checks = build_checks(params, frames)
    results = run_checks(run_dir / "gx", checks, frames)
    docs_index = _docs_index(run_dir / "gx")
    summary = _summary(params, run_id, results, docs_index, run_dir)
    summary["validated_files"] = validated_files
    summary["data_docs_pages"] = _docs_pages(docs_index)
    summary["stability"] = stability_note
    summary["completeness"] = completeness_note
    write_summaries(run_dir, summary)
    GateSummary(summary).write(params)
    prune_validation_runs(params)
    if not summary["passed"]:
        raise GateFailed(failure_message(summary))
    for w in summary["warnings"]:
        log.warning("validation warning: %s: %s", w["check"], _describe_failure(w))
    log.info(
        "validation gate passed for edition %s (%d expectations, %d warnings); report %s",
        params.edition,
        len(results),
        len(summary["warnings"]),
        run_dir / "summary.md",
    )
    return {
        "edition": params.edition,
        "passed": True,
        "run_dir": str(run_dir),
        "warnings": len(summary["warnings"]),
    }


def _add_stability(params: RunParams, frames: dict[str, pd.DataFrame]) -> str:
    path = previous_ranking_path(params)
    if not path.exists():
        note = f"skipped: no previous edition at {path}"
        log.info("stability checks %s", note)
        return note
    previous = pd.read_csv(path, usecols=["rank", "name"])
    frames["stability"] = stability_frame(previous, frames["clusters"])
    return f"compared with {path}"


def run_checks(gx_dir: Path, checks: list[Check], frames: dict[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """Run every check with GX (pandas data source, one suite per frame), build the Data Docs,
    and return one result dict per expectation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    gx_dir.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(gx_dir))
    # Progress bars would flood the Airflow task log, one per frame.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas("edition_frames")
    by_id = {c.id: c for c in checks}
    results: list[dict[str, Any]] = []
    for frame_name in dict.fromkeys(c.frame for c in checks):
        frame = frames[frame_name]
        keys = [k for k in FRAMES[frame_name][1] if k in frame.columns]
        batch = source.add_dataframe_asset(name=frame_name).add_batch_definition_whole_dataframe(
            f"{frame_name}_all"
        )
        suite = context.suites.add(
            gx.ExpectationSuite(name=f"{FRAMES[frame_name][0]}__{frame_name}__v{SUITE_VERSION}")
        )
        for c in (c for c in checks if c.frame == frame_name):
            c.expectation.meta = {"check": c.id, "stage": c.stage}
            c.expectation.severity = c.severity
            suite.add_expectation(c.expectation)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{frame_name}_validation", data=batch, suite=suite)
        )
        result_format: dict[str, Any] = {"result_format": "COMPLETE"}
        if keys:
            result_format["unexpected_index_column_names"] = keys
        outcome = definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)
        for r in outcome.results:
            cfg = r.expectation_config
            check = by_id[(cfg.meta or {})["check"]]
            results.append(
                {
                    "check": check.id,
                    "stage": check.stage,
                    "frame": frame_name,
                    "expectation": cfg.type,
                    "kwargs": {
                        k: _plain(v) for k, v in cfg.kwargs.items() if k not in {"batch_id", "value_set"}
                    },
                    "severity": check.severity,
                    "success": bool(r.success),
                    "observed": _observed(r.result),
                    "values": _column_values(frame, keys, cfg.kwargs.get("column")),
                    "failing_rows": _failing_rows(r.result),
                    "exception": (r.exception_info or {}).get("exception_message") if not r.success else None,
                }
            )
    context.build_data_docs()
    return results


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _observed(result: dict[str, Any] | None) -> Any:
    if not result:
        return None
    if "observed_value" in result:
        return _plain(result["observed_value"])
    if "unexpected_count" in result:
        return {"unexpected_count": _plain(result["unexpected_count"])}
    return None


def _column_values(frame: pd.DataFrame, keys: list[str], column: str | None) -> Any:
    """The checked column's values by row key, for small frames (what an auditor wants to read)."""
    if not column or column not in frame.columns or len(frame) > 12:
        return None
    values = [None if pd.isna(v) else _plain(v) for v in frame[column]]
    if not keys:
        return values[0] if len(values) == 1 else values
    labels = ["/".join(str(row[k]) for k in keys) for _, row in frame.iterrows()]
    return dict(zip(labels, values, strict=True))


def _failing_rows(result: dict[str, Any] | None) -> list[Any]:
    """The key columns (or values) of the rows that failed, at most 20."""
    if not result:
        return []
    rows = result.get("unexpected_index_list") or result.get("partial_unexpected_list") or []
    return [{k: _plain(v) for k, v in r.items()} if isinstance(r, dict) else _plain(r) for r in rows[:20]]


def _docs_index(gx_dir: Path) -> str | None:
    found = sorted(gx_dir.rglob("data_docs/local_site/index.html"))
    return str(found[0]) if found else None


def _docs_pages(docs_index: str | None) -> list[str]:
    """Validation pages relative to the Data Docs index. The index lists them with JavaScript
    loaded from a CDN, so offline (air-gapped auditors) the summary's list is the way in."""
    if not docs_index:
        return []
    root = Path(docs_index).parent
    return sorted(str(p.relative_to(root)) for p in (root / "validations").rglob("*.html"))


def _summary(
    params: RunParams, run_id: str, results: list[dict], docs_index: str | None, run_dir: Path
) -> dict:
    critical_failures = [r for r in results if not r["success"] and r["severity"] == CRITICAL]
    warnings = [r for r in results if not r["success"] and r["severity"] == WARNING]
    stages = {
        stage: {
            "expectations": sum(r["stage"] == stage for r in results),
            "failed": sum(r["stage"] == stage and not r["success"] for r in results),
        }
        for stage in STAGES
    }
    return {
        "edition": params.edition,
        "run_id": run_id,
        "run_dir": str(run_dir),
        "suite_version": SUITE_VERSION,
        "passed": not critical_failures,
        "n_expectations": len(results),
        "n_failed": sum(not r["success"] for r in results),
        "stages": stages,
        "critical_failures": critical_failures,
        "warnings": warnings,
        "data_docs": docs_index,
        "params_fingerprint": params_fingerprint(params),
        "results": results,
    }


def _describe_failure(r: dict[str, Any]) -> str:
    rows = f", failing rows {r['failing_rows']}" if r.get("failing_rows") else ""
    values = f", values {r['values']}" if r.get("values") is not None and not rows else ""
    error = f", error: {r['exception']}" if r.get("exception") else ""
    args = ", ".join(f"{k}={v}" for k, v in r["kwargs"].items())
    return f"{r['expectation']}({args}) on {r['frame']}: observed {r['observed']}{rows}{values}{error}"


def failure_message(summary: dict) -> str:
    failed = summary["critical_failures"]
    lines = "; ".join(f"{r['check']} [{_describe_failure(r)}]" for r in failed)
    return (
        f"validation gate failed for edition {summary['edition']}: {len(failed)} critical expectation(s) "
        f"failed: {', '.join(r['check'] for r in failed)}. Nothing was published. Details: {lines}. "
        f"Report: {Path(summary['run_dir']) / 'summary.md'} (Data Docs: {summary['data_docs']})"
    )


def write_summaries(run_dir: Path, summary: dict) -> None:
    """summary.json (machine) and summary.md (human) next to the run's Data Docs."""
    handover.write_json_atomic(run_dir / "summary.json", summary, sort_keys=False)
    handover.write_text_atomic(run_dir / "summary.md", _markdown(summary))


def _markdown(summary: dict) -> str:
    verdict = "PASSED" if summary["passed"] else "FAILED: nothing may be published"
    lines = [
        f"# Validation of edition {summary['edition']} (run {summary['run_id']})",
        "",
        f"**{verdict}**. {summary['n_expectations']} expectations (suites v{summary['suite_version']}), "
        f"{summary['n_failed']} failed: {len(summary['critical_failures'])} critical, "
        f"{len(summary['warnings'])} warnings.",
        "",
        f"- Data Docs: {summary['data_docs']}",
        *(f"  - data_docs/{page}" for page in summary.get("data_docs_pages", [])),
        f"- Stability: {summary.get('stability', 'n/a')}",
        f"- Completeness: {summary.get('completeness', 'n/a')}",
        "",
    ]
    for title, rows in (
        ("Critical failures", summary["critical_failures"]),
        ("Warnings", summary["warnings"]),
    ):
        if rows:
            lines += (
                [f"## {title}", ""] + [f"- **{r['check']}**: {_describe_failure(r)}" for r in rows] + [""]
            )
    lines += [
        "## Every expectation",
        "",
        "| stage | check | expectation | arguments | severity | result | observed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in summary["results"]:
        args = ", ".join(f"{k}={v}" for k, v in r["kwargs"].items())
        observed = r["values"] if r.get("values") is not None else r["observed"]
        lines.append(
            f"| {r['stage']} | {r['check']} | {r['expectation']} | {args} | {r['severity']} | "
            f"{'pass' if r['success'] else 'FAIL'} | {observed} |"
        )
    return "\n".join(lines) + "\n"


# --- completeness against the previous edition ---------------------------------------------------


def previous_edition_manifest(params: RunParams) -> tuple[Path, Manifest] | None:
    """The manifest of the latest edition before this one published in the same output folder
    from the same source set, or None."""
    root = params.edition_output.parent
    candidates = (
        sorted(
            (int(p.name), p)
            for p in root.iterdir()
            if p.is_dir()
            and p.name.isdigit()
            and int(p.name) < params.edition
            and handover.manifest_path(p).is_file()
        )
        if root.is_dir()
        else []
    )
    for _, edition_dir in reversed(candidates):
        manifest = Manifest.read(edition_dir)
        if manifest is not None and manifest.parameters.get("source_set") == params.source_set:
            return handover.manifest_path(edition_dir), manifest
    return None


def completeness_frame(previous: dict[str, int], current: pd.DataFrame) -> pd.DataFrame:
    """One row per layer: documents landed now and in the previous edition, and the relative
    change (-0.4 = 40 % fewer documents)."""
    rows = []
    for layer, documents in zip(current["layer"], current["documents_landed"], strict=True):
        before = previous.get(str(layer))
        if not before:
            continue
        rows.append(
            {
                "layer": str(layer),
                "previous_documents": int(before),
                "documents": int(documents),
                "change": (int(documents) - int(before)) / int(before),
            }
        )
    return pd.DataFrame(rows, columns=["layer", "previous_documents", "documents", "change"])


def add_completeness(params: RunParams, frames: dict[str, pd.DataFrame]) -> str:
    """Add the ``completeness`` frame when a previous edition of the same source set is
    published with its document counts (manifest inputs.layers.<layer>.documents_landed)."""
    found = previous_edition_manifest(params)
    if found is None:
        where = params.edition_output.parent
        note = f"skipped: no earlier edition of source set {params.source_set!r} in {where}"
        log.info("completeness checks %s", note)
        return note
    path, manifest = found
    previous = manifest.documents_landed()
    if not previous:
        note = f"skipped: {path} records no document counts (published before they were recorded)"
        log.info("completeness checks %s", note)
        return note
    frame = completeness_frame(previous, frames["raw_layers"])
    if frame.empty:
        return f"skipped: no layer in common with {path}"
    frames["completeness"] = frame
    return f"compared with {path}"


def _completeness_checks(params: RunParams) -> list[Check]:
    import great_expectations.expectations as gxe

    return [
        Check(
            "completeness.documents_not_dropped",
            "completeness",
            gxe.ExpectColumnValuesToBeBetween(column="change", min_value=-params.max_count_drop),
        ),
        Check(
            "completeness.documents_not_jumped",
            "completeness",
            gxe.ExpectColumnValuesToBeBetween(column="change", max_value=params.max_count_jump),
            WARNING,
        ),
    ]


# --- retention -----------------------------------------------------------------------------------


def prune_validation_runs(params: RunParams) -> list[Path]:
    """Keep the newest ``keep_validation_runs`` run folders of the edition's validation (run ids
    are UTC timestamps, so they sort by time) and always the one latest.json names; remove the
    others. Returns the removed folders."""
    root = handover.validation_dir(params)
    latest = latest_summary(params) or {}
    keep_dir = Path(latest["run_dir"]).name if latest.get("run_dir") else None
    runs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    removed = []
    for run in runs[: max(len(runs) - params.keep_validation_runs, 0)]:
        if run.name == keep_dir:
            continue
        shutil.rmtree(run, ignore_errors=True)
        removed.append(run)
    if removed:
        log.info(
            "validation runs: removed %d older than the last %d", len(removed), params.keep_validation_runs
        )
    return removed
