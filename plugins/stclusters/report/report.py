"""The edition's report and analyst outputs, written next to the published tables.

``write_outputs`` writes, into the publication's staging folder (so that publish checksums them
into the manifest):

- ``report.html``: one self-contained page (inline CSS, JS, SVG and a data: PNG; nothing is
  requested from outside the file): the top-N table (sortable), a world map with every ranked
  cluster drawn from its dissolved H3 cells, a chart of patent share against article share, the
  edition diff, the parameters, the data provenance and the validation summary;
  The page also shows each ranked cluster's profile (top applicant, organization, fields,
  local/domestic/international shares, partner clusters, counts by year; marts ``profiles`` and
  ``cluster_trends``) and, for the 2023 edition, the comparison with the published GII 2023 table
  (mart ``gii_comparison``) with a short explanation of every notable difference;
- ``validation.html``: the gate's verdict and every expectation, readable offline;
- ``map.png`` and ``top20.png``: the same map and the top-20 score chart (matplotlib);
- ``ranking.parquet``: the ranking mart;
- ``clusters.geojson``: one feature per ranked cluster, its H3 cells dissolved into polygons,
  properties = the ranking row;
- ``gii_comparison.csv``: the ``gii_comparison`` mart, when it has rows (the 2023 edition).

The work is split by job: ``marts`` reads the edition's DuckDB file, ``geometry`` makes the
shapes, ``figures`` the SVG and PNG figures, ``sections`` and ``validation`` the data of each
section, ``gii2023`` the comparison with the published table, and ``render`` holds the Jinja2
environments of ``templates/`` (all markup is there, autoescaped).

Bytes depend only on the edition's data, parameters and inputs: no clock is read here. Country
outlines come from the ``countryinfo`` package (Natural Earth 110m-derived GeoJSON shipped in the
wheel, read from disk).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stclusters.config import RunParams
from stclusters.report import figures, gii2023, sections
from stclusters.report.geometry import (
    MultiPolygon,
    country_outlines,
    footprint,
    geojson_collection,
    write_geojson,
)
from stclusters.report.gii2023 import COMPARISON_FILE
from stclusters.report.marts import EditionTables, ReportError, ranking_records, read_json, read_tables
from stclusters.report.render import page_environment
from stclusters.report.validation import DATA_DOCS, VALIDATION_PAGE, validation_page, validation_section

log = logging.getLogger(__name__)

DIFF_FILE = "edition_diff.json"
OUTPUT_FILES = (
    "report.html",
    VALIDATION_PAGE,
    "map.png",
    "top20.png",
    "ranking.parquet",
    "clusters.geojson",
)

# Fixed writer settings: the same ranking gives the same bytes (docs/methodology.md, "Published precision").
PARQUET_ROW_GROUP_SIZE = 122_880


def write_parquet(path: Path, ranking: pd.DataFrame) -> None:
    ordered = ranking.sort_values("rank", kind="stable") if "rank" in ranking else ranking
    table = pa.Table.from_pandas(ordered.reset_index(drop=True), preserve_index=False)
    pq.write_table(table, path, compression="zstd", row_group_size=PARQUET_ROW_GROUP_SIZE)


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(
    params: RunParams,
    tables: EditionTables,
    shapes: Mapping[int, MultiPolygon],
    outlines: Sequence[MultiPolygon],
    summary: Mapping[str, Any],
    diff: Any,
    prov: Mapping[str, Any],
    top20_png: Path,
) -> str:
    """report.html (``templates/report.html.j2``) from the edition's marts and inputs."""
    records = ranking_records(tables.ranking)
    p0, p1 = params.patents_window
    a0, a1 = params.publications_window
    profiles = sections.cluster_profiles(tables.profiles, tables.trends)
    return (
        page_environment()
        .get_template("report.html.j2")
        .render(
            title=f"Science and technology clusters, edition {params.edition}",
            edition=params.edition,
            windows=f"PCT applications published {p0}–{p1} · scientific articles published {a0}–{a1}",
            headline=sections.headline(params, tables, records),
            # Safe: both SVGs are rendered from templates/figures.svg.j2 by the autoescaping
            # page environment (Markup already).
            map_svg=figures.map_svg(records, shapes, outlines),
            shares_svg=figures.share_chart_svg(records),
            ranking=sections.ranking_table(records),
            economies=sections.economy_options(records),
            top20=_png_data_uri(top20_png),
            diff=sections.diff_section(diff),
            diff_columns=sections.DIFF_COLUMNS,
            robustness=sections.robustness_section(params.duckdb_path, records),
            profiles=sections.profiles_table(records, profiles),
            profile_columns=sections.PROFILE_COLUMNS,
            scopes=sections.SCOPES,
            layers=list(sections.LAYER_LABELS.values()),
            comparison=gii2023.section(gii2023.comparison_records(tables.comparison), params),
            validation=validation_section(summary),
            parameters=sections.kv_items(sorted(params.as_dict().items())),
            provenance=sections.provenance_section(prov, tables),
        )
    )


def write_outputs(params: RunParams, dest: Path, summary: dict, manifest: dict | None = None) -> list[Path]:
    """Write report.html, validation.html, map.png, top20.png, ranking.parquet and
    clusters.geojson into ``dest``,
    and gii_comparison.csv when the edition's gii_comparison mart has rows.

    ``summary`` is the validation summary (validate.py); ``manifest``, when given, supplies the
    inputs, code and package versions for the provenance section. ``dest/edition_diff.json`` is
    rendered when present. Returns the paths written.
    """
    dest.mkdir(parents=True, exist_ok=True)
    tables = read_tables(params.duckdb_path)
    records = ranking_records(tables.ranking)
    shapes = {cid: footprint(cells) for cid, cells in sorted(tables.cells.items())}
    missing = [r["rank"] for r in records if not shapes.get(int(r["cluster_id"]))]
    if missing:
        raise ReportError(
            f"{params.duckdb_path}: main.cluster_cells has no cells for ranked cluster(s) {missing}"
        )
    outlines = country_outlines()
    paths = {name: dest / name for name in OUTPUT_FILES}
    write_parquet(paths["ranking.parquet"], tables.ranking)
    write_geojson(paths["clusters.geojson"], geojson_collection(tables.ranking, shapes))
    figures.render_map_png(
        paths["map.png"],
        records,
        shapes,
        outlines,
        f"Science and technology clusters, edition {params.edition}",
    )
    figures.render_top20_png(
        paths["top20.png"], records, f"Top {min(20, len(records))} clusters, edition {params.edition}"
    )
    diff = read_json(dest / DIFF_FILE)
    page = render_html(
        params,
        tables,
        shapes,
        outlines,
        summary,
        diff,
        sections.provenance(params, manifest),
        paths["top20.png"],
    )
    paths["report.html"].write_text(page, encoding="utf-8")
    paths[VALIDATION_PAGE].write_text(validation_page(params.edition, summary), encoding="utf-8")
    written = [paths[name] for name in OUTPUT_FILES]
    if len(tables.comparison):
        gii2023.write_comparison_csv(dest / COMPARISON_FILE, tables.comparison)
        written.append(dest / COMPARISON_FILE)
    log.info(
        "edition %s: report and analyst outputs written to %s (%d clusters)",
        params.edition,
        dest,
        len(records),
    )
    return written


__all__ = [
    "COMPARISON_FILE",
    "DATA_DOCS",
    "DIFF_FILE",
    "OUTPUT_FILES",
    "VALIDATION_PAGE",
    "ReportError",
    "read_tables",
    "render_html",
    "write_outputs",
]
