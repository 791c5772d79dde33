"""report: the edition's HTML report, PNGs, ranking.parquet and clusters.geojson.

Runs on a real DuckDB file built from marts cut out of a real pipeline run
(tests/fixtures/report/), the real H3 library and the real country outlines.
"""

from __future__ import annotations

import hashlib
import html
import json
import socket
import struct
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import duckdb
import h3
import jinja2
import markupsafe
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fixtures.report.edition import build_edition, diff_doc
from stclusters import config
from stclusters.build import transform
from stclusters.reference import gazetteer
from stclusters.report import (
    figures,
    formatting,
    geometry,
    gii2023,
    marts,
    render,
    report,
    sections,
    validation,
)

# --- helpers ------------------------------------------------------------------------------------


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text of <td> cells per row of #ranking."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inside(point: tuple[float, float], ring: list[list[float]]) -> bool:
    """Ray casting, (lon, lat)."""
    x, y = point
    inside = False
    for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1], strict=True):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _in_multipolygon(point: tuple[float, float], coords: list) -> bool:
    return any(
        _inside(point, poly[0]) and not any(_inside(point, hole) for hole in poly[1:]) for poly in coords
    )


def _png_chunks(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return chunks


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[config.RunParams, Path, dict]:
    tmp = tmp_path_factory.mktemp("edition")
    params, summary = build_edition(tmp)
    dest = tmp / "publication"
    written = report.write_outputs(params, dest, summary)
    assert [p.name for p in written] == [*report.OUTPUT_FILES, report.COMPARISON_FILE]
    return params, dest, summary


def _ranking(params: config.RunParams) -> list[dict]:
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        frame = con.sql("select * from main.ranking order by rank").df()
    finally:
        con.close()
    return marts.ranking_records(frame)


# --- outputs ------------------------------------------------------------------------------------


def test_every_output_is_written_into_dest(published) -> None:
    params, dest, _ = published
    for name in report.OUTPUT_FILES:
        assert (dest / name).stat().st_size > 0, name
    assert not (params.edition_output / "report.html").exists()  # only dest is written


def test_ranking_parquet_is_the_ranking_mart(published) -> None:
    params, dest, _ = published
    table = pq.read_table(dest / "ranking.parquet")
    mart = _ranking(params)
    assert table.column_names == list(mart[0])
    rows = table.to_pylist()
    assert [r["rank"] for r in rows] == list(range(1, params.top_n + 1))
    for got, want in zip(rows, mart, strict=True):
        for key, value in want.items():
            assert got[key] == (pytest.approx(value) if isinstance(value, float) else value), key
    assert str(table.schema.field("population").type) == "int64"


def test_geojson_has_one_feature_per_ranked_cluster_with_its_ranking_row(published) -> None:
    params, dest, _ = published
    collection = json.loads((dest / "clusters.geojson").read_text(encoding="utf-8"))
    assert collection["type"] == "FeatureCollection"
    mart = _ranking(params)
    assert [f["properties"] for f in collection["features"]] == json.loads(json.dumps(mart))
    for feature in collection["features"]:
        assert feature["geometry"]["type"] == "MultiPolygon"
        for poly in feature["geometry"]["coordinates"]:
            for ring in poly:
                assert ring[0] == ring[-1] and len(ring) >= 4


def test_geojson_footprints_cover_their_cells_and_no_other(published) -> None:
    params, dest, _ = published
    features = json.loads((dest / "clusters.geojson").read_text(encoding="utf-8"))["features"]
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        cells = con.sql("select cluster_id, cell from main.cluster_cells").fetchall()
    finally:
        con.close()
    shapes = {f["properties"]["cluster_id"]: f["geometry"]["coordinates"] for f in features}
    checked = 0
    for cluster_id, cell in cells:
        lat, lon = h3.cell_to_latlng(h3.int_to_str(cell))
        for other_id, coords in shapes.items():
            assert _in_multipolygon((lon, lat), coords) == (other_id == cluster_id), (
                cluster_id,
                cell,
                other_id,
            )
        checked += cluster_id in shapes
    assert checked == sum(f["properties"]["n_cells"] for f in features)


def test_footprint_dissolves_neighbours_into_one_polygon() -> None:
    centre = h3.latlng_to_cell(48.8566, 2.3522, 7)
    disk = [h3.str_to_int(c) for c in h3.grid_disk(centre, 1)]
    shape = geometry.footprint(disk)
    assert len(shape) == 1 and len(shape[0]) == 1  # one polygon, no hole
    assert len(shape[0][0]) - 1 == 18  # the outline of a 7-cell flower has 18 vertices
    far = h3.str_to_int(h3.latlng_to_cell(35.68, 139.69, 7))
    assert len(geometry.footprint([*disk, far])) == 2


def test_pngs_are_written_without_varying_metadata(published) -> None:
    _, dest, _ = published
    for name in ("map.png", "top20.png"):
        chunks = _png_chunks(dest / name)
        assert b"IHDR" in chunks and b"IDAT" in chunks
        assert b"tIME" not in chunks
        assert b"Software" not in (dest / name).read_bytes()[:4096]
    width, height = struct.unpack(">II", (dest / "map.png").read_bytes()[16:24])
    assert width >= 1600 and 0.5 < height / width < 0.75  # world map over three regional panels


def test_same_data_gives_the_same_bytes(published, tmp_path: Path) -> None:
    params, dest, summary = published
    again = tmp_path / "again"
    report.write_outputs(params, again, summary)
    for name in (*report.OUTPUT_FILES, report.COMPARISON_FILE):
        assert _sha(again / name) == _sha(dest / name), name


# --- the HTML page ------------------------------------------------------------------------------


def test_report_requests_nothing_from_outside_the_file(published) -> None:
    _, dest, _ = published
    page = (dest / "report.html").read_text(encoding="utf-8")
    for tag, attrs in _tags(page):
        assert tag not in {"link", "iframe", "object", "embed", "base"}, tag
        src = attrs.get("src")
        if src is not None:
            assert src.startswith("data:"), f"<{tag} src={src[:60]}>"
        href = attrs.get("href") or ""
        assert "://" not in href and not href.startswith("//"), f"<{tag} href={href}>"
    lowered = page.lower()
    assert "@import" not in lowered and "@font-face" not in lowered
    assert "url(" not in lowered.replace("url(data:", "")
    assert "http://" not in lowered.replace("http-equiv", "") and "https://" not in lowered


def test_report_has_a_row_and_a_map_shape_per_ranked_cluster(published) -> None:
    params, dest, _ = published
    tags = _tags((dest / "report.html").read_text(encoding="utf-8"))
    rows = [a for t, a in tags if t == "tr" and a.get("data-rank")]
    shapes = [a for t, a in tags if t == "g" and a.get("class") == "cluster"]
    assert [int(r["data-rank"]) for r in rows] == list(range(1, params.top_n + 1))
    assert sorted(int(s["data-rank"]) for s in shapes) == list(range(1, params.top_n + 1))
    footprints = [a for t, a in tags if t == "path" and a.get("class") == "footprint"]
    assert len(footprints) == params.top_n and all(len(f["d"]) > 20 for f in footprints)
    land = next(a for t, a in tags if t == "path" and a.get("class") == "land")
    assert land["d"].count("M") > 150  # country outlines are drawn


def test_report_prints_shares_as_the_gii_does(published) -> None:
    params, dest, _ = published
    page = (dest / "report.html").read_text(encoding="utf-8")
    first = _ranking(params)[0]
    row = page.split('<tr data-rank="1"', 1)[1].split("</tr>", 1)[0]
    for key in ("pct_share", "pub_share", "score"):
        assert f"{first[key] * 100:.1f}</td>" in row, key
    assert f">{first['pct_count']:,.0f}</td>" in row
    assert formatting.share_pct(0.1013) == "10.1"
    assert formatting.share_pct(0.0149) == "1.5"
    assert formatting.share_pct(0.1169) == "11.7"
    assert formatting.share_pct(None) == "–"


def test_report_shows_parameters_provenance_and_validation(published) -> None:
    params, dest, summary = published
    page = (dest / "report.html").read_text(encoding="utf-8")
    assert f'href="{report.DATA_DOCS}"' in page
    assert f"{summary['n_expectations']} expectations" in page
    landed = json.loads((params.workspace / "landing" / "landed.json").read_text())
    for layer in ("patents", "publications"):
        for f in landed["layers"][layer]["files"]:
            assert f["uri"] in page and f["sha256"][:16] in page
    assert f'<th scope="row">eps_km</th><td>{params.eps_km}</td>' in page
    assert "No previous edition" in page


def _diff_html(tmp_path: Path, doc: Any) -> str:
    params, summary = build_edition(tmp_path)
    dest = tmp_path / "publication"
    dest.mkdir()
    (dest / report.DIFF_FILE).write_text(json.dumps(doc))
    report.write_outputs(params, dest, summary)
    return (
        (dest / "report.html").read_text(encoding="utf-8").split('id="diff"', 1)[1].split("</section>", 1)[0]
    )


def test_edition_diff_is_a_summary_then_a_readable_table(tmp_path: Path) -> None:
    section = _diff_html(tmp_path, diff_doc())
    assert "No previous edition" not in section
    # the summary comes first: the facts, entries, exits and the biggest moves, then the table
    assert (
        section.index('id="diff-facts"') < section.index('id="diff-highlights"') < section.index("diff-table")
    )
    highlights = section.split('id="diff-highlights"', 1)[1].split("</ul>", 1)[0]
    assert "Hefei (rank 12)" in highlights and "Lyon (was 11)" in highlights
    # biggest move first: Seoul up 4, then Munich down 3
    assert highlights.index("Seoul") < highlights.index("Munich")
    assert "▲4" in highlights and "▼3" in highlights
    assert "100 % data · 0 % parameters" in section
    # the table: named columns, rounded to points, arrows, renamed clusters shown
    head = section.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert "Score change, points" in head and "Data effect, points" in head and "score_change" not in head
    assert "0.0014638101999999986" not in section and ">+0.15<" in section
    assert 'Munich <span class="muted">(was München)</span>' in section
    # the method as prose: no reStructuredText literals, no hard line breaks inside a paragraph
    method = section.split("How the changes are computed", 1)[1]
    assert "``" not in method and "<code>S(prev cells, new data)</code>" in method
    assert "<li><code>data_effect" in method


def test_edition_diff_without_previous_edition_says_so(tmp_path: Path) -> None:
    doc = {"edition": 2023, "previous_edition": None, "note": "no earlier edition", "clusters": []}
    section = _diff_html(tmp_path, doc)
    assert 'id="no-diff"' in section and "no earlier edition" in section and "diff-table" not in section


def test_validation_table_shows_check_ids_observed_values_and_thresholds(published) -> None:
    _, dest, summary = published
    rows = {r["check"]: r for r in validation.validation_rows(summary)}
    assert len(rows) == summary["n_expectations"] == len(summary["results"])
    # the real values of a per-layer check, not GX's {"unexpected_count": 0}
    quarantine = rows["raw.quarantine_share"]
    assert quarantine["observed"] == "patents: 0.001976; publications: 0.0021"
    assert quarantine["threshold"] == "quarantine_share ≤ 0.01"
    assert rows["raw.document_id_present"]["threshold"] == "missing_document_id = 0"
    assert (
        rows["ranking.top_n_rows"]["observed"] == "12"
        and rows["ranking.top_n_rows"]["threshold"] == "rows = 12"
    )
    assert rows["ranking.rank_unique"]["observed"] == "0 failing rows"
    assert rows["ranking.pct_shares_sum_at_most_1"]["threshold"] == "0 ≤ pct_share_total ≤ 1"
    assert {r["verdict"] for r in rows.values()} == {"pass"}
    page = (dest / "report.html").read_text(encoding="utf-8")
    section = page.split('<section id="validation">', 1)[1].split("</section>", 1)[0]
    assert "unexpected_count" not in section
    assert '<tr class="pass" data-check="raw.quarantine_share">' in section
    assert "<td>patents: 0.001976; publications: 0.0021</td>" in section
    assert f'href="{report.VALIDATION_PAGE}"' in section


def test_validation_verdicts_for_critical_failures_and_warnings() -> None:
    failed = {
        "check": "a.b",
        "severity": "critical",
        "success": False,
        "expectation": "expect_column_values_to_be_between",
        "kwargs": {"column": "x", "min_value": 1},
        "observed": {"unexpected_count": 2},
        "values": None,
        "failing_rows": [{"rank": 3}, {"rank": 4}],
    }
    warned = {**failed, "check": "c.d", "severity": "warning", "failing_rows": []}
    rows = validation.validation_rows({"results": [failed, warned]})
    assert [(r["verdict"], r["css"]) for r in rows] == [("FAIL", "fail"), ("warning", "warn")]
    assert rows[0]["observed"] == "2 failing rows" and rows[0]["threshold"] == "x ≥ 1"
    assert rows[0]["failing"] == '{"rank": 3}; {"rank": 4}'


def test_validation_page_is_self_contained_and_lists_every_check(published) -> None:
    _, dest, summary = published
    page = (dest / report.VALIDATION_PAGE).read_text(encoding="utf-8")
    for tag, attrs in _tags(page):
        assert tag not in {"link", "script", "img", "iframe", "object", "embed", "base"}, tag
        href = attrs.get("href") or ""
        assert "://" not in href and not href.startswith("//"), f"<{tag} href={href}>"
    assert "Content-Security-Policy" in page and "http://" not in page and "https://" not in page
    checks = [a["data-check"] for t, a in _tags(page) if t == "tr" and a.get("data-check")]
    assert checks == [r["check"] for r in summary["results"]]
    assert f'href="{report.DATA_DOCS}"' in page and 'href="report.html#validation"' in page
    # autoescaped: a check id with markup cannot inject any
    hostile = {"results": [{"check": "<b>x</b>", "severity": "critical", "success": True}]}
    assert "<b>x</b>" not in validation.validation_page(2023, hostile)


def test_ranking_names_economies_and_links_every_cluster_to_its_profile(published) -> None:
    params, dest, _ = published
    page = (dest / "report.html").read_text(encoding="utf-8")
    first = _ranking(params)[0]
    row = page.split('<tr data-rank="1"', 1)[1].split("</tr>", 1)[0]
    assert f'href="#cluster-{first["cluster_id"]}"' in row
    assert sections.economy_name("JP") == "Japan" and sections.economy_name("CN") == "China"
    assert f'<span class="econ-name">{sections.economy_name(first["economies"])}</span>' in row
    tags = _tags(page)
    profile_ids = [a["id"] for t, a in tags if t == "tr" and a.get("class") == "profile"]
    assert profile_ids == [f"cluster-{r['cluster_id']}" for r in _ranking(params)]
    options = [a["value"] for t, a in tags if t == "option"]
    assert options[0] == "" and set(options[1:]) == {
        c for r in _ranking(params) for c in r["economies"].split("/")
    }
    assert sections.economy_name("ZZ") == "ZZ"


def test_share_chart_labels_do_not_overlap() -> None:
    # the real neighbours that overlapped: a name box beside a close point
    wanted = [((300.0, 200.0), "Osaka–Kobe–Kyoto"), ((310.0, 203.0), "Beijing"), ((305.0, 190.0), "Seoul")]
    placed = figures._place_svg_labels(wanted, [p for p, _ in wanted], (0, 0, 640, 460))
    boxes = []
    for (x, y, anchor), text in placed:
        w = len(text) * figures.SVG_CHAR_WIDTH
        x0 = x - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
        boxes.append((x0, y - figures.SVG_LABEL_SIZE, x0 + w, y + 2))
    assert len(placed) >= 2
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1], (a, b)


def test_map_labels_do_not_overlap(published, tmp_path: Path) -> None:
    from matplotlib.text import Annotation

    params, _, _ = published
    tables = marts.read_tables(params.duckdb_path)
    records = marts.ranking_records(tables.ranking)
    shapes = {cid: geometry.footprint(c) for cid, c in tables.cells.items()}
    fig = figures._figure(6, 4)
    ax = fig.add_axes((0.05, 0.05, 0.9, 0.9))
    # East Asia, where the fixture's clusters crowd
    figures._draw_map(ax, (100.0, 146.0, 20.0, 44.2), records, shapes, [], labelled=40)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [a.get_window_extent(renderer) for a in ax.texts if isinstance(a, Annotation)]
    assert len(boxes) >= 5
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), (a, b)


def test_failed_validation_and_manifest_provenance_are_shown(tmp_path: Path) -> None:
    params, summary = build_edition(tmp_path)
    failure = {
        "check": "ranking.pct_share_in_0_1",
        "stage": "ranking",
        "frame": "ranking",
        "expectation": "expect_column_values_to_be_between",
        "kwargs": {"column": "pct_share", "min_value": 0, "max_value": 1},
        "severity": "critical",
        "success": False,
        "observed": {"unexpected_count": 3},
        "failing_rows": [{"rank": 1, "name": "Tokyo–Yokohama"}],
    }
    results = [failure if r["check"] == failure["check"] else r for r in summary["results"]]
    summary = {**summary, "passed": False, "n_failed": 1, "critical_failures": [failure], "results": results}
    manifest = {
        "inputs": {"layers": {}, "gazetteer": {}},
        "code_version": {"git_commit": "0123456789abcdef", "dirty": False},
        "package_versions": {"h3": "4.5.0"},
    }
    dest = tmp_path / "publication"
    report.write_outputs(params, dest, summary, manifest)
    page = (dest / "report.html").read_text(encoding="utf-8")
    assert "validation FAILED" in page
    section = page.split('<section id="validation">', 1)[1].split("</section>", 1)[0]
    assert "Critical failures: </strong><code>ranking.pct_share_in_0_1</code>" in section
    row = section.split('data-check="ranking.pct_share_in_0_1">', 1)[1].split("</tr>", 1)[0]
    assert "3 failing rows" in row and "0 ≤ pct_share ≤ 1" in row and "<td>FAIL</td>" in row
    assert "Tokyo–Yokohama" in row
    assert "0123456789abcdef" in page and "4.5.0" in page
    assert "no landing record" in page  # the manifest's inputs win over the workspace's


def test_ranked_cluster_without_cells_is_an_error(tmp_path: Path) -> None:
    params, summary = build_edition(tmp_path)
    con = duckdb.connect(str(params.duckdb_path))
    con.execute(
        "delete from main.cluster_cells "
        "where cluster_id = (select cluster_id from main.ranking where rank = 2)"
    )
    con.close()
    with pytest.raises(marts.ReportError, match=r"stclusters\.duckdb.*cluster_cells.*\[2\]"):
        report.write_outputs(params, tmp_path / "publication", summary)


def test_country_outlines_are_read_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("country_outlines tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    outlines = geometry.country_outlines()
    assert len(outlines) > 150
    paris, tokyo = (2.35, 48.86), (139.69, 35.69)
    assert any(_in_multipolygon(paris, o) for o in outlines)
    assert any(_in_multipolygon(tokyo, o) for o in outlines)
    assert not any(_in_multipolygon((-30.0, 30.0), o) for o in outlines)  # mid-Atlantic


# --- profiles -----------------------------------------------------------------------------------


def _mart(params: config.RunParams, sql: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        return marts.ranking_records(con.sql(sql).df())
    finally:
        con.close()


def _between(page: str, start: str, end: str) -> str:
    return page.split(start, 1)[1].split(end, 1)[0]


def test_profiles_show_each_ranked_clusters_top_items_and_collaboration(published) -> None:
    params, dest, _ = published
    page = (dest / "report.html").read_text(encoding="utf-8")
    section = _between(page, 'id="profiles-section"', "</section>")
    tags = _tags(section)
    summary_rows = [a for t, a in tags if t == "tr" and a.get("class") == "profile"]
    details = [a for t, a in tags if t == "tr" and a.get("class") == "profile-detail"]
    assert [int(a["data-profile-rank"]) for a in summary_rows] == list(range(1, params.top_n + 1))
    assert [a["id"] for a in details] == [f"profile-{k}" for k in range(1, params.top_n + 1)]
    assert all("hidden" in a for a in details)  # collapsed until clicked
    tops = _mart(params, "select * from main.profiles where item_rank = 1 and cluster_rank <= 12")
    assert len(tops) == params.top_n * 8  # per layer: 2 ranked facets, collaboration, partner
    for rank in range(1, params.top_n + 1):
        row = _between(section, f'data-profile-rank="{rank}">', "</tr>")
        for t in tops:
            if t["cluster_rank"] == rank and t["facet"] not in {"collaboration", "partner"}:
                assert f'{html.escape(t["item"])} <span class="share">{t["item_share"] * 100:.1f} %' in row
        collab = _mart(
            params,
            f"select layer, item, item_share from main.profiles where cluster_rank = {rank} "
            "and facet = 'collaboration' order by layer, item_rank",
        )
        for layer in ("patents", "publications"):
            shares = [f"{c['item_share'] * 100:.1f}" for c in collab if c["layer"] == layer]
            assert " · ".join(shares) in row, (rank, layer)


def test_profile_detail_lists_the_top_k_and_the_counts_by_year(published) -> None:
    params, dest, _ = published
    page = (dest / "report.html").read_text(encoding="utf-8")
    detail = _between(page, 'id="profile-2" hidden>', 'data-profile-rank="3"')
    applicants = _mart(
        params,
        "select item, item_share from main.profiles where cluster_rank = 2 and facet = 'applicant' "
        "order by item_rank",
    )
    assert len(applicants) == 5
    listed = _between(detail, "Applicants", "</ol>")
    positions = [listed.index(html.escape(a["item"])) for a in applicants]
    assert positions == sorted(positions)  # in item_rank order
    years = _mart(
        params,
        "select layer, publication_year, document_count from main.cluster_trends where cluster_rank = 2",
    )
    assert len(years) == 10  # five years per layer
    by_year = _between(detail, "By publication year", "</table>")
    for y in years:
        assert f"{y['publication_year']}</th>" in by_year
        assert f">{y['document_count']:,.0f}</td>" in by_year
    spark = _between(page, 'data-profile-rank="2">', "</tr>").split('<svg class="spark"', 1)[1]
    assert spark.count("<polyline") == 2


def test_partners_rank_by_mean_link_share_over_both_layers() -> None:
    item = sections.ProfileItem
    profile = sections.ClusterProfile(
        facets={
            ("patents", "partner"): [item("Beijing", 30.0, 0.010), item("Munich", 20.0, 0.008)],
            ("publications", "partner"): [item("Seoul", 50.0, 0.030), item("Beijing", 40.0, 0.012)],
        },
        trends={},
    )
    # Seoul 0.015, Beijing 0.011, Munich 0.004: a large link weight alone does not rank first
    assert profile.partners() == ["Seoul", "Beijing", "Munich"]
    assert profile.partners(1) == ["Seoul"]
    assert profile.top("patents", "applicant") is None


def test_sparkline_scales_each_layer_to_its_own_maximum() -> None:
    svg = figures.sparkline(
        {"patents": [(2018, 10.0), (2019, 20.0)], "publications": [(2017, 5.0), (2018, 0.0)]}
    )
    points = [p.split('"')[0] for p in svg.split('points="')[1:]]
    pat = [tuple(map(float, xy.split(","))) for xy in points[0].split()]
    pub = [tuple(map(float, xy.split(","))) for xy in points[1].split()]
    assert pat[1][1] == pub[0][1] == 2.0  # each maximum touches the top (pad 2)
    assert pub[1][1] == 20.0  # zero sits on the bottom line
    assert pat[0][0] == pub[1][0]  # 2018 at the same x in both lines
    assert "2019 20" in svg  # exact counts in the tooltip
    assert "muted" in figures.sparkline({})


def test_missing_profile_mart_is_an_error(tmp_path: Path) -> None:
    params, summary = build_edition(tmp_path)
    con = duckdb.connect(str(params.duckdb_path))
    con.execute("drop table main.cluster_trends")
    con.close()
    with pytest.raises(marts.ReportError, match=r"stclusters\.duckdb: table main\.cluster_trends not found"):
        report.write_outputs(params, tmp_path / "publication", summary)


# --- the GII 2023 comparison in the report ------------------------------------------------------


def test_gii_comparison_csv_is_the_mart(published) -> None:
    params, dest, _ = published
    written = pd.read_csv(dest / report.COMPARISON_FILE, keep_default_na=False, na_values=[""])
    mart = _mart(params, "select * from main.gii_comparison order by published_rank")
    assert list(written.columns) == list(mart[0])
    assert written["published_rank"].tolist() == list(range(1, 35))
    for got, want in zip(marts.ranking_records(written), mart, strict=True):
        for key, value in want.items():
            expected = pytest.approx(value) if isinstance(value, float) else value
            assert got[key] == expected, (want["published_rank"], key)


def test_comparison_section_lists_every_published_cluster_beside_ours(published) -> None:
    params, dest, _ = published
    page = (dest / "report.html").read_text(encoding="utf-8")
    assert 'href="#gii-2023"' in page
    section = _between(page, '<section id="gii-2023">', "</section>")
    assert "Compared with the published GII 2023 table" in section
    rows = _mart(params, "select * from main.gii_comparison order by published_rank")
    tags = [a for t, a in _tags(section) if t == "tr" and a.get("data-published-rank")]
    assert [int(a["data-published-rank"]) for a in tags] == list(range(1, 35))
    for r in rows:
        html_row = _between(section, f'data-published-rank="{r["published_rank"]}"', "</tr>")
        assert f"<td>{r['published_score']:.1f}</td>" in html_row
        assert f">{r['our_score']:.1f}</td>" in html_row
        assert f">{html.escape(r['our_name'])}</td>" in html_row
        # highlighted exactly where the printed values differ
        assert ('class="diff">' + html.escape(r["our_name"])) in html_row or r["name_matches"]
        assert ('class="diff"' in html_row) == bool(gii2023.explain(r, params)), r["published_name"]
    cologne = _between(section, 'data-published-rank="25"', "</tr>")
    assert "GeoNames&#x27; main name for Cologne is “Köln”" in cologne
    tel_aviv = _between(section, 'data-published-rank="30"', "</tr>")
    assert "PS brings 6.1 % of the score (≥ economy_min_share 5.0 %): listed" in tel_aviv


def test_no_comparison_without_rows_or_without_the_mart(tmp_path: Path) -> None:
    params, summary = build_edition(tmp_path)
    con = duckdb.connect(str(params.duckdb_path))
    con.execute("delete from main.gii_comparison")
    con.close()
    dest = tmp_path / "empty"
    written = report.write_outputs(params, dest, summary)
    page = (dest / "report.html").read_text(encoding="utf-8")
    assert 'id="gii-2023"' not in page and "#gii-2023" not in page
    assert not (dest / report.COMPARISON_FILE).exists()
    assert [p.name for p in written] == list(report.OUTPUT_FILES)
    con = duckdb.connect(str(params.duckdb_path))
    con.execute("drop table main.gii_comparison")
    con.close()
    report.write_outputs(params, tmp_path / "absent", summary)
    assert 'id="gii-2023"' not in (tmp_path / "absent" / "report.html").read_text(encoding="utf-8")


PARAMS = config.resolve({"edition": 2023}, environ={})


def _row(**changes: Any) -> dict[str, Any]:
    """A gii_comparison row where everything agrees, then ``changes``."""
    row = {
        "published_rank": 7,
        "published_name": "Osaka–Kobe–Kyoto",
        "published_economies": "JP",
        "published_pct_share": 3.1,
        "published_articles_share": 0.7,
        "published_score": 3.8,
        "matched_place": "Osaka",
        "matched_geonameid": 1853909,
        "matched_gazetteer_name": "Osaka",
        "our_rank": 7,
        "our_cluster_id": 70,
        "our_name": "Osaka–Kobe–Kyoto",
        "our_economies": "JP",
        "our_economy_shares": "JP:1.0000",
        "published_place_shares": "Osaka|Osaka|0.4000;Kobe|Kobe|0.2000;Kyoto|Kyoto|0.1500",
        "our_place_shares": "Osaka|0.4000;Kobe|0.2000;Kyoto|0.1500;Sakai|0.0500",
        "our_pct_share": 3.08,
        "our_pub_share": 0.72,
        "our_score": 3.80,
        "rank_difference": 0,
        "score_difference": 0.0,
        "name_matches": True,
        "economies_match": True,
        "n_published_matched": 1,
    }
    return {**row, **changes}


def test_explain_is_silent_when_everything_prints_the_same() -> None:
    assert gii2023.explain(_row(our_score=3.76, score_difference=-0.04), PARAMS) == []


def test_explain_names_the_place_below_and_the_place_above_name_min_share() -> None:
    notes = gii2023.explain(
        _row(
            our_name="Osaka–Kobe–Sakai",
            name_matches=False,
            published_place_shares="Osaka|Osaka|0.4000;Kobe|Kobe|0.2000;Kyoto|Kyoto|0.0800",
            our_place_shares="Osaka|0.4000;Kobe|0.2000;Sakai|0.1200;Kyoto|0.0800",
        ),
        PARAMS,
    )
    assert notes == [
        "Kyoto brings 8.0 % of the score, below name_min_share 10.0 %: not in the name",
        "Sakai brings 12.0 % of the score (≥ name_min_share 10.0 %): added to the name",
    ]


def test_explain_names_gazetteer_spellings_and_absent_places() -> None:
    notes = gii2023.explain(
        _row(
            published_name="Cologne–Atlantis",
            our_name="Köln",
            name_matches=False,
            published_place_shares="Cologne|Köln|0.7700;Atlantis||",
            our_place_shares="Köln|0.7700;Leverkusen|0.0700",
        ),
        PARAMS,
    )
    assert notes == ["GeoNames' main name for Cologne is “Köln”", "Atlantis is not in the gazetteer for JP"]
    notes = gii2023.explain(
        _row(
            our_name="Osaka",
            name_matches=False,
            published_place_shares="Osaka|Osaka|0.9000;Kobe|Kobe|0.0000",
            our_place_shares="Osaka|0.9000",
        ),
        PARAMS,
    )
    assert "Kobe is not part of this cluster" in notes


def test_explain_economies_against_economy_min_share() -> None:
    notes = gii2023.explain(
        _row(
            published_economies="SG/MY",
            our_economies="SG",
            economies_match=False,
            our_economy_shares="SG:0.9700;MY:0.0300",
        ),
        PARAMS,
    )
    assert notes == ["MY brings 3.0 % of the score, below economy_min_share 5.0 %: not listed"]
    notes = gii2023.explain(
        _row(published_economies="HK/CN", our_economies="CN/HK", economies_match=False), PARAMS
    )
    assert notes == ["the same economies in another order (ours by share of the score)"]


def test_explain_rank_moves_score_gaps_and_merged_clusters() -> None:
    notes = gii2023.explain(
        _row(our_rank=10, rank_difference=3, our_pct_share=2.6, our_score=3.3, score_difference=-0.5), PARAMS
    )
    assert notes == ["ranked 3 places lower (10)", "score -0.50 points (PCT 2.6 % vs 3.1 %)"]
    notes = gii2023.explain(
        _row(our_rank=6, rank_difference=-1, our_score=3.851, score_difference=0.051), PARAMS
    )
    assert notes == [
        "ranked 1 place higher (6)",
        "score 3.851 prints as 3.9, just above the range 3.75–3.85 that the published 3.8 stands for",
    ]
    notes = gii2023.explain(_row(n_published_matched=2), PARAMS)
    assert notes == [
        "2 published clusters fall in our Osaka–Kobe–Kyoto: this edition joins clusters that WIPO keeps apart"
    ]


def test_explain_unmatched_rows() -> None:
    assert gii2023.explain(_row(our_cluster_id=None, matched_geonameid=None), PARAMS) == [
        "Osaka is not in the gazetteer for JP: no match"
    ]
    assert gii2023.explain(_row(our_cluster_id=None), PARAMS) == [
        "no cluster of this edition holds Osaka (GeoNames Osaka)"
    ]


# --- the gii_comparison mart (dbt on a tiny world) ----------------------------------------------

# A published table of six rows and the upstream tables the mart reads, with known answers:
# name, economy -> (our cluster, how it is found)
PUBLISHED = [
    (1, "Tokyo–Yokohama", "JP", 100, 200, 10.0, 2.0, 12.0),  # Tokyo split over clusters 10 and 11
    (2, "Cologne", "DE", 50, 60, 1.0, 0.5, 1.5),  # GeoNames says Köln; a small Cologne in FR
    (3, "Springfield, IL", "US", 10, 20, 0.5, 0.5, 1.0),  # the smaller Springfield, in the named state
    (4, "Atlantis", "GR", 5, 5, 0.2, 0.2, 0.4),  # no address placed at the place: its cell decides
    (5, "Yokohama", "JP", 5, 5, 0.2, 0.2, 0.4),  # falls in cluster 10 with Tokyo
    (6, "Nowhere", "XX", 1, 1, 0.1, 0.1, 0.2),  # not in the gazetteer
]
# geonameid, main name, country, admin1, population, cell, other names
PLACES = [
    (1, "Tokyo", "JP", "40", 8_000_000, 101, []),
    (2, "Yokohama", "JP", "19", 3_000_000, 102, []),
    (3, "Köln", "DE", "07", 1_000_000, 201, ["Cologne"]),
    (4, "Cologne", "FR", "76", 1_000, 901, []),
    (5, "Springfield", "US", "MA", 155_000, 301, []),
    (6, "Springfield", "US", "IL", 114_000, 302, []),
    (7, "Atlantis", "GR", "01", 5_000, 401, []),
]
# layer, cell, geonameid, country, weight (world: 100 patents, 100 articles)
LOCATED = [
    ("patents", 101, 1, "JP", 30.0),
    ("patents", 111, 1, "JP", 5.0),  # Tokyo addresses also in cluster 11
    ("patents", 102, 2, "JP", 10.0),
    ("publications", 201, 3, "DE", 8.0),
    ("patents", 202, None, "DE", 2.0),  # coordinates, no place
    ("patents", 301, 5, "US", 6.0),
    ("patents", 302, 6, "US", 4.0),
    ("publications", 401, None, "GR", 3.0),  # Atlantis only by coordinates
]
CELLS = {101: 10, 102: 10, 111: 11, 201: 20, 202: 20, 301: 30, 302: 31, 401: 40}
# cluster_id, rank, name, economies, pct_count, pub_count
CLUSTERS = [
    (10, 1, "Tokyo–Yokohama", "JP", 40.0, 0.0),
    (20, 2, "Köln", "DE", 2.0, 8.0),
    (30, 3, "Springfield, MA", "US", 6.0, 0.0),
    (11, 4, "Tokyo", "JP", 5.0, 0.0),
    (31, 5, "Springfield, IL", "US", 4.0, 0.0),
    (40, 6, "Cluster 40", "GR", 0.0, 3.0),
]


def _tiny_world(tmp_path: Path, edition: int) -> config.RunParams:
    params = config.resolve(
        {"edition": edition, "workspace_dir": str(tmp_path / "ws"), "output_dir": str(tmp_path / "out")},
        environ={},
    )
    params.workspace.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(params.duckdb_path))
    try:
        con.execute("create schema main_reference")
        con.execute(
            "create table main_reference.gii_2023_published (rank integer, cluster_name varchar, "
            "economy varchar, pct_applications integer, articles integer, pct_share double, "
            "articles_share double, score double)"
        )
        con.executemany(
            "insert into main_reference.gii_2023_published values (?, ?, ?, ?, ?, ?, ?, ?)", PUBLISHED
        )
        con.execute(
            "create table stg_gazetteer__names (name_key varchar, geonameid bigint, is_main_name boolean)"
        )
        con.execute(
            "create table int_places_celled (geonameid bigint, name varchar, country_code varchar, "
            "admin1_code varchar, population bigint, cell bigint)"
        )
        for gid, name, cc, admin1, pop, cell, others in PLACES:
            con.execute(
                "insert into int_places_celled values (?, ?, ?, ?, ?, ?)", [gid, name, cc, admin1, pop, cell]
            )
            for other, main in [(name, True), *((o, False) for o in others)]:
                con.execute(
                    "insert into stg_gazetteer__names values (?, ?, ?)",
                    [gazetteer.normalize_name(other), gid, main],
                )
        con.execute(
            "create table int_addresses_located (layer varchar, cell bigint, geonameid bigint, "
            "country varchar, weight double, n_addresses bigint)"
        )
        con.executemany("insert into int_addresses_located values (?, ?, ?, ?, ?, 1)", LOCATED)
        con.execute("create table int_clusters_merged (cell bigint, cluster_id bigint)")
        con.executemany("insert into int_clusters_merged values (?, ?)", list(CELLS.items()))
        con.execute(
            "create table int_clusters_measured "
            "(cluster_id bigint, world_patents double, world_publications double)"
        )
        con.executemany("insert into int_clusters_measured values (?, 100, 100)", [(c[0],) for c in CLUSTERS])
        con.execute(
            "create table clusters (rank bigint, cluster_id bigint, name varchar, economies varchar, "
            "economy_shares varchar, pct_count double, pct_share double, pub_count double, pub_share double, "
            "score double)"
        )
        con.executemany(
            "insert into clusters values (?, ?, ?, ?, ? || ':1.0000', ?, ? / 100, ?, ? / 100, (? + ?) / 100)",
            [(r, cid, n, e, e, p, p, a, a, p, a) for cid, r, n, e, p, a in CLUSTERS],
        )
    finally:
        con.close()
    transform.run_dbt(params, "build", ["--select", "gii_comparison"])
    return params


@pytest.fixture(scope="module")
def tiny_comparison(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    params = _tiny_world(tmp_path_factory.mktemp("tiny2023"), 2023)
    rows = _mart(params, "select * from main.gii_comparison order by published_rank")
    return {r["published_rank"]: r for r in rows}


def test_mart_matches_by_the_place_holding_most_of_the_first_places_weight(tiny_comparison) -> None:
    assert sorted(tiny_comparison) == [r[0] for r in PUBLISHED]  # one row per published cluster
    tokyo = tiny_comparison[1]
    assert (tokyo["our_cluster_id"], tokyo["match_method"], tokyo["matched_geonameid"]) == (
        10,
        "place addresses",
        1,
    )
    assert tokyo["name_matches"] and tokyo["economies_match"] and tokyo["rank_difference"] == 0
    assert tokyo["our_score"] == pytest.approx(40.0) and tokyo["score_difference"] == pytest.approx(28.0)
    assert tokyo["pct_share_ratio"] == pytest.approx(4.0) and tokyo["pub_share_ratio"] == pytest.approx(0.0)
    assert tokyo["published_place_shares"] == "Tokyo|Tokyo|0.7500;Yokohama|Yokohama|0.2500"
    assert tokyo["n_published_matched"] == 2  # Yokohama's published row falls in it too
    assert tiny_comparison[5]["our_cluster_id"] == 10


def test_mart_finds_places_by_any_gazetteer_name_in_the_first_economy(tiny_comparison) -> None:
    cologne = tiny_comparison[2]
    assert (cologne["matched_geonameid"], cologne["matched_gazetteer_name"]) == (3, "Köln")
    assert cologne["our_name"] == "Köln" and not cologne["name_matches"]
    assert cologne["published_place_shares"] == "Cologne|Köln|0.8000"  # 8 of the cluster's 10
    assert cologne["our_place_shares"] == "Köln|0.8000"
    # "Springfield, IL": the named state beats the larger Springfield, MA
    springfield = tiny_comparison[3]
    assert (springfield["matched_geonameid"], springfield["our_cluster_id"]) == (6, 31)
    assert springfield["matched_place"] == "Springfield" and springfield["name_matches"]


def test_mart_falls_back_on_the_places_cell_and_leaves_unknown_places_unmatched(tiny_comparison) -> None:
    atlantis = tiny_comparison[4]
    assert (atlantis["our_cluster_id"], atlantis["match_method"]) == (40, "place cell")
    nowhere = tiny_comparison[6]
    assert nowhere["matched_geonameid"] is None and nowhere["our_cluster_id"] is None
    assert nowhere["match_method"] is None and nowhere["n_published_matched"] == 0
    assert nowhere["name_matches"] is False
    assert gii2023.explain(nowhere, PARAMS) == ["Nowhere is not in the gazetteer for XX: no match"]


def test_mart_is_empty_outside_the_2023_edition(tmp_path: Path) -> None:
    params = _tiny_world(tmp_path, 2024)
    assert _mart(params, "select count(*) as n from main.gii_comparison") == [{"n": 0}]


# --- rank intervals -----------------------------------------------------------------------------


def test_the_range_cell_shows_the_widest_interval_and_the_label() -> None:
    row = {
        "rank": 3,
        "sampling_rank_low": 3,
        "sampling_rank_high": 4,
        "method_rank_low": 2,
        "method_rank_high": 3,
        "rank_label": "±1",
    }
    ranking_cell = render.macros("sections.html.j2").ranking_cell
    cell = ranking_cell(sections.range_cell(row))
    assert ">2–4 <small>±1</small></td>" in cell and 'data-v="2"' in cell
    assert "sampling (90% bootstrap): 3–4; method (parameter variations): 2–3" in cell
    assert ranking_cell(sections.range_cell({"rank": 3})) == '<td data-v="">–</td>'


# --- templates ----------------------------------------------------------------------------------


def test_markup_in_the_data_is_escaped_everywhere_in_the_page(tmp_path: Path) -> None:
    params, summary = build_edition(tmp_path)
    evil = '<script>alert("x")</script> & O\'Hare'
    con = duckdb.connect(str(params.duckdb_path))
    con.execute("update main.ranking set name = ? where rank = 1", [evil])
    con.execute("update main.profiles set item = ? where item_rank = 1", [evil])
    con.execute("update main.gii_comparison set our_name = ? where published_rank = 1", [evil])
    con.close()
    dest = tmp_path / "publication"
    report.write_outputs(params, dest, summary)
    page = (dest / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    escaped = html.escape(evil)  # html.escape's entities, as report.html has always had them
    assert escaped == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; O&#x27;Hare"
    # the ranking table, the map, the share chart, the profiles and the GII comparison
    assert page.count(escaped) >= 8
    assert f'data-name="{escaped}"' in page


def test_an_undefined_name_in_a_template_is_an_error() -> None:
    env = render.page_environment()
    with pytest.raises(jinja2.UndefinedError):
        env.from_string("{{ not_given }}").render()
    # values print escaped with html.escape's entities; Markup passes through
    assert env.from_string("{{ a }}{{ b }}").render(a="<'\">", b=markupsafe.Markup("<b>")) == (
        "&lt;&#x27;&quot;&gt;<b>"
    )
