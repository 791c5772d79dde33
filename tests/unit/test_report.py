"""report: the edition's HTML report, PNGs, ranking.parquet and clusters.geojson.

Runs on a real DuckDB file built from marts cut out of a real pipeline run
(tests/fixtures/report/), the real H3 library and the real country outlines.
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import h3
import pyarrow.parquet as pq
import pytest

from fixtures.report.edition import build_edition
from stclusters import report

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
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[report.RunParams, Path, dict]:
    tmp = tmp_path_factory.mktemp("edition")
    params, summary = build_edition(tmp)
    dest = tmp / "publication"
    written = report.write_outputs(params, dest, summary)
    assert [p.name for p in written] == list(report.OUTPUT_FILES)
    return params, dest, summary


def _ranking(params: report.RunParams) -> list[dict]:
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        frame = con.sql("select * from main.ranking order by rank").df()
    finally:
        con.close()
    return report.ranking_records(frame)


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
    shape = report.footprint(disk)
    assert len(shape) == 1 and len(shape[0]) == 1  # one polygon, no hole
    assert len(shape[0][0]) - 1 == 18  # the outline of a 7-cell flower has 18 vertices
    far = h3.str_to_int(h3.latlng_to_cell(35.68, 139.69, 7))
    assert len(report.footprint([*disk, far])) == 2


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
    for name in report.OUTPUT_FILES:
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
    assert report.share_pct(0.1013) == "10.1"
    assert report.share_pct(0.0149) == "1.5"
    assert report.share_pct(0.1169) == "11.7"
    assert report.share_pct(None) == "–"


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


def test_edition_diff_is_rendered_when_present(tmp_path: Path) -> None:
    params, summary = build_edition(tmp_path)
    dest = tmp_path / "publication"
    dest.mkdir()
    diff = {
        "previous_edition": 2022,
        "moves": [{"name": "Munich", "rank": 4, "previous_rank": 6, "change": 2}],
        "entries": [{"name": "Tokyo", "rank": 1}],
        "exits": [],
    }
    (dest / report.DIFF_FILE).write_text(json.dumps(diff))
    report.write_outputs(params, dest, summary)
    section = (
        (dest / "report.html").read_text(encoding="utf-8").split('id="diff"', 1)[1].split("</section>", 1)[0]
    )
    assert "No previous edition" not in section
    assert "2022" in section and "previous_rank" in section and "Munich" in section
    assert "entries (1)" in section and "exits" in section


def test_failed_validation_and_manifest_provenance_are_shown(tmp_path: Path) -> None:
    params, summary = build_edition(tmp_path)
    failure = {
        "frame": "ranking",
        "expectation": "expect_column_values_to_be_between",
        "kwargs": {"column": "pct_share"},
        "severity": "critical",
        "success": False,
        "observed": 3,
    }
    summary = {**summary, "passed": False, "n_failed": 1, "critical_failures": [failure]}
    manifest = {
        "inputs": {"layers": {}, "gazetteer": {}},
        "code_version": {"git_commit": "0123456789abcdef", "dirty": False},
        "package_versions": {"h3": "4.5.0"},
    }
    dest = tmp_path / "publication"
    report.write_outputs(params, dest, summary, manifest)
    page = (dest / "report.html").read_text(encoding="utf-8")
    assert "validation FAILED" in page
    assert "ranking.expect_column_values_to_be_between" in page
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
    with pytest.raises(report.ReportError, match=r"stclusters\.duckdb.*cluster_cells.*\[2\]"):
        report.write_outputs(params, tmp_path / "publication", summary)


def test_country_outlines_are_read_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("country_outlines tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    outlines = report.country_outlines()
    assert len(outlines) > 150
    paris, tokyo = (2.35, 48.86), (139.69, 35.69)
    assert any(_in_multipolygon(paris, o) for o in outlines)
    assert any(_in_multipolygon(tokyo, o) for o in outlines)
    assert not any(_in_multipolygon((-30.0, 30.0), o) for o in outlines)  # mid-Atlantic
