"""The report's figures: the SVG world map and share chart of report.html, the profiles' small
SVGs (collaboration bar, sparkline), and the PNGs map.png and top20.png (matplotlib, no pyplot
state). The SVG markup is in ``templates/figures.svg.j2``; coordinates are computed and formatted
here."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from markupsafe import Markup

from stclusters.report.formatting import share_pct
from stclusters.report.geometry import MultiPolygon
from stclusters.report.render import macros

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

LAYER_LABELS = {"patents": "PCT applications", "publications": "articles"}
SCOPES = ("local", "domestic", "international")
SCOPE_COLOURS = {"local": "#4a7c59", "domestic": "#c9b458", "international": "#8e5ea2"}


def mix(t: float) -> str:
    """Colour between articles-blue (t=0) and patents-orange (t=1)."""
    t = min(max(t, 0.0), 1.0)
    r, g, b = (round(a + (c - a) * t) for a, c in zip(PUB_COLOUR, PCT_COLOUR, strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def patent_orientation(row: Mapping[str, Any]) -> float:
    """Share of the score that comes from patents (0 = articles only, 1 = patents only)."""
    score = row.get("score") or 0.0
    return float(row.get("pct_share") or 0.0) / score if score > 0 else 0.5


def radius(score: float, top_score: float) -> float:
    if top_score <= 0:
        return MIN_RADIUS
    return max(MIN_RADIUS, MAX_RADIUS * math.sqrt(max(score, 0.0) / top_score))


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


def map_svg(
    records: Sequence[Mapping[str, Any]], shapes: Mapping[int, MultiPolygon], outlines: Sequence[MultiPolygon]
) -> Markup:
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
    clusters = []
    # Largest first, so that small clusters stay on top and can be hovered.
    for r in sorted(records, key=lambda r: (-float(r["score"] or 0), r["rank"])):
        cx, cy = _xy(float(r["longitude"]), float(r["latitude"]))
        rad = radius(float(r["score"] or 0), top)
        clusters.append(
            {
                "rank": r["rank"],
                "cluster_id": r["cluster_id"],
                "name": r["name"],
                "colour": mix(patent_orientation(r)),
                "title": f"{r['rank']}. {r['name']} ({r['economies']}): score {share_pct(r['score'])}",
                "path": _path(shapes.get(int(r["cluster_id"]), []), 2),
                "cx": f"{cx:.2f}",
                "cy": f"{cy:.2f}",
                "r": f"{rad:.2f}",
            }
        )
    return macros("figures.svg.j2").map_svg(
        width=f"{MAP_WIDTH:.0f}",
        height=f"{MAP_HEIGHT:.0f}",
        graticule="".join(grat),
        land="".join(_path(o, 1) for o in outlines),
        clusters=clusters,
    )


# --- SVG share chart ----------------------------------------------------------------------------

SVG_LABEL_SIZE = 10.5  # font-size of #shares .label (templates/report.html.j2), SVG units
SVG_CHAR_WIDTH = 0.62 * SVG_LABEL_SIZE  # a generous average glyph width: boxes never too small


def share_chart_svg(records: Sequence[Mapping[str, Any]], labelled: int = 12) -> Markup:
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

    decades = []
    decade = lo
    while decade <= hi * 1.0001:
        decades.append(
            {
                "label": f"{decade:g}",
                "x": f"{sx(decade):.1f}",
                "y": f"{sy(decade):.1f}",
                "label_y": f"{sy(decade) + 4:.1f}",
            }
        )
        decade *= 10
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
    dots = [
        {
            "rank": r["rank"],
            "x": f"{points[r['rank']][0]:.1f}",
            "y": f"{points[r['rank']][1]:.1f}",
            "colour": mix(patent_orientation(r)),
            "title": f"{r['rank']}. {r['name']}: PCT {share_pct(r['pct_share'])} %, "
            f"articles {share_pct(r['pub_share'])} %",
        }
        for r in sorted(records, key=lambda r: -r["rank"])
    ]
    return macros("figures.svg.j2").share_chart_svg(
        width=f"{w:.0f}",
        height=f"{h:.0f}",
        # the frame as it has always been printed (some values unrounded: "14.0", "62.0")
        top=f"{pad}",
        bottom=f"{h - bottom:.1f}",
        left=f"{left}",
        right=f"{w - pad:.1f}",
        tick_x=f"{left - 6}",
        tick_y=f"{h - bottom + 16:.1f}",
        decades=decades,
        diagonal=[f"{sx(lo):.1f}", f"{sy(lo):.1f}", f"{sx(hi):.1f}", f"{sy(hi):.1f}"],
        note=[f"{sx(hi) - 4:.1f}", f"{sy(hi) + 14:.1f}"],
        axis_x=[f"{(left + w - pad) / 2:.1f}", f"{h - 8:.1f}"],
        axis_y=f"{(h - bottom + pad) / 2:.1f}",
        dots=dots,
        labels=[
            {"x": f"{lx:.1f}", "y": f"{ly:.1f}", "anchor": anchor, "text": name}
            for (lx, ly, anchor), name in labels
        ],
    )


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


# --- the profiles' small SVGs -------------------------------------------------------------------


def collaboration_bar(scopes: Mapping[str, Any]) -> Markup:
    """Local, domestic and international shares (``scopes``: scope -> item with a ``share``) as
    one 100 % bar and as numbers."""
    if not scopes:
        return macros("figures.svg.j2").collaboration_bar(title="", rects=[], numbers="")
    x, rects = 0.0, []
    for scope in SCOPES:
        width = 60.0 * float(scopes[scope].share or 0.0) if scope in scopes else 0.0
        rects.append({"x": f"{x:.2f}", "width": f"{width:.2f}", "fill": SCOPE_COLOURS[scope]})
        x += width
    return macros("figures.svg.j2").collaboration_bar(
        title=", ".join(f"{s} {share_pct(scopes[s].share)} %" for s in SCOPES if s in scopes),
        rects=rects,
        numbers=" · ".join(share_pct(scopes[s].share) if s in scopes else "–" for s in SCOPES),
    )


def sparkline(trends: Mapping[str, Sequence[tuple[int, float]]]) -> Markup:
    """Counts by year, one line per layer, each scaled to its own maximum (the shape, not the
    level: the two layers differ by an order of magnitude); exact numbers in the tooltip."""
    years = sorted({y for series in trends.values() for y, _ in series})
    if not years:
        return macros("figures.svg.j2").sparkline(width="", height="", label="", lines=[])
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
        lines.append({"points": pts, "colour": colour})
        titles.append(f"{LAYER_LABELS[layer]}: " + ", ".join(f"{y} {c:,.0f}" for y, c in series))
    return macros("figures.svg.j2").sparkline(
        width=f"{w:.0f}", height=f"{h:.0f}", label="; ".join(titles), lines=lines
    )


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
    hexa = mix(t)
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
