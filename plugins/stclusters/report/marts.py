"""Reading the edition's marts for the report: the ranking, the ranked clusters' cells, the check
marts, the profile marts and the GII 2023 comparison, as DataFrames and plain JSON-able rows."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

log = logging.getLogger(__name__)

PROFILE_MARTS = ("profiles", "cluster_trends")
COMPARISON_MART = "gii_comparison"


class ReportError(RuntimeError):
    """The report cannot be written; the message names the file or table at fault."""


@dataclass(frozen=True)
class EditionTables:
    """The small marts the report reads from the edition's DuckDB file."""

    ranking: pd.DataFrame
    cells: dict[int, list[int]]  # cluster_id -> H3 cells (BIGINT) of its footprint
    n_clusters: int
    checks: pd.DataFrame
    coverage: pd.DataFrame
    profiles: pd.DataFrame  # profiles mart rows of the ranked clusters
    trends: pd.DataFrame  # cluster_trends mart rows of the ranked clusters
    comparison: pd.DataFrame  # gii_comparison mart (no rows outside the 2023 edition)


def read_tables(duckdb_path: Path) -> EditionTables:
    """Read the ranking, the ranked clusters' cells, profiles and trends, the check marts and the
    GII comparison (read-only). The profile marts are required (publish exports them too); a
    database built before the gii_comparison mart existed gives an empty comparison."""
    if not duckdb_path.exists():
        raise ReportError(f"{duckdb_path}: the edition's DuckDB file does not exist")
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        listed = con.execute("select table_name from duckdb_tables() where schema_name = 'main'").fetchall()
        present = {r[0] for r in listed}
        for mart in PROFILE_MARTS:
            if mart not in present:
                raise ReportError(
                    f"{duckdb_path}: table main.{mart} not found; build it with `dbt build --select +{mart}`"
                )
        # population is a HUGEINT sum in DuckDB; BIGINT is plenty and every reader knows it.
        ranking = con.sql(
            "select * replace (cast(population as bigint) as population) from main.ranking order by rank"
        ).df()
        cell_rows = con.sql(
            "select c.cluster_id, c.cell from main.cluster_cells c "
            "inner join main.ranking r on c.cluster_id = r.cluster_id order by c.cluster_id, c.cell"
        ).fetchall()
        n_clusters = int(con.execute("select count(*) from main.clusters").fetchall()[0][0])
        checks = con.sql("select * from main.check_summaries order by layer").df()
        coverage = con.sql("select * from main.geocoding_coverage where country = '*' order by layer").df()
        profiles = con.sql(
            "select p.* from main.profiles p semi join main.ranking r on p.cluster_id = r.cluster_id "
            "order by p.cluster_rank, p.layer, p.facet, p.item_rank"
        ).df()
        trends = con.sql(
            "select t.* from main.cluster_trends t semi join main.ranking r on t.cluster_id = r.cluster_id "
            "order by t.cluster_rank, t.layer, t.publication_year"
        ).df()
        if COMPARISON_MART in present:
            comparison = con.sql(f"select * from main.{COMPARISON_MART} order by published_rank").df()
        else:
            log.warning("%s: no main.%s: the report has no GII comparison", duckdb_path, COMPARISON_MART)
            comparison = pd.DataFrame()
    except duckdb.Error as exc:
        raise ReportError(f"{duckdb_path}: cannot read the report's marts: {exc}") from exc
    finally:
        con.close()
    cells: dict[int, list[int]] = {}
    for cluster_id, cell in cell_rows:
        cells.setdefault(int(cluster_id), []).append(int(cell))
    return EditionTables(ranking, cells, n_clusters, checks, coverage, profiles, trends, comparison)


def read_json(path: Path) -> Any:
    """A JSON input of the report, or None when it is absent."""
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from exc


def json_value(value: Any) -> Any:
    """A mart value as plain Python: NaN, NA and NaT -> None, numpy scalars -> int/float."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def ranking_records(ranking: pd.DataFrame) -> list[dict[str, Any]]:
    """The ranking rows as plain JSON-able dicts (NaN/NA -> None), columns in mart order."""
    return [{k: json_value(v) for k, v in row.items()} for row in ranking.to_dict(orient="records")]


def read_robustness(duckdb_path: Path) -> pd.DataFrame | None:
    """The robustness mart (every variation's rank of every published cluster), or None when the
    edition has none (robustness off, or a database built before the mart existed)."""
    if not duckdb_path.exists():
        return None
    con = duckdb.connect(str(duckdb_path), read_only=True)
    try:
        return con.sql("select * from main.robustness order by rank, variation").df()
    except duckdb.Error:
        return None
    finally:
        con.close()
