"""Edition diff: matching, rank moves, entries and exits, data vs parameter attribution."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import h3.api.basic_int as h3i
import pytest

from stclusters.config import RunParams
from stclusters.report import diff

RES = 7
TOKYO = h3i.latlng_to_cell(35.69, 139.69, RES)
YOKOHAMA = h3i.latlng_to_cell(35.44, 139.64, RES)
KAWASAKI = h3i.latlng_to_cell(35.52, 139.70, RES)
MUNICH = h3i.latlng_to_cell(48.14, 11.58, RES)
PARIS = h3i.latlng_to_cell(48.85, 2.35, RES)

CLUSTER_COLS = ["rank", "cluster_id", "name", "pct_count", "pct_share", "pub_count", "pub_share", "score"]


def write_edition(
    root: Path, edition: int, clusters: list[tuple], cells: dict[str, list[int]], **params
) -> Path:
    """A published edition as publish.py writes it: clusters.csv, cluster_cells.csv, manifest.json.
    clusters: (rank, cluster_id, name, pct_count, pub_count) with world totals 1000 and 2000."""
    d = root / str(edition)
    d.mkdir(parents=True)
    with (d / "clusters.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(CLUSTER_COLS)
        for rank, cid, name, p, a in clusters:
            w.writerow([rank, cid, name, p, p / 1000, a, a / 2000, p / 1000 + a / 2000])
    with (d / "cluster_cells.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "cluster_id", "cell"])
        for rank, cid, *_ in clusters:
            for cell in cells[cid]:
                w.writerow([rank, cid, cell])
    p = RunParams(edition=edition, output_dir=str(root), **params)
    manifest = {"edition": edition, "published_at": f"{edition}-09-01T00:00:00Z", "parameters": p.as_dict()}
    (d / "manifest.json").write_text(json.dumps(manifest))
    return d


def write_cells_db(path: Path, weights: dict[int, tuple[float, float]]) -> None:
    con = duckdb.connect(str(path))
    con.sql("create table main.int_cells_weighted (layer varchar, cell bigint, weight double)")
    for cell, (p, a) in weights.items():
        con.execute("insert into main.int_cells_weighted values ('patents', ?, ?)", [cell, p])
        con.execute("insert into main.int_cells_weighted values ('publications', ?, ?)", [cell, a])
    con.close()


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    write_edition(
        out,
        2022,
        [(1, "a", "Tokyo", 300, 400), (2, "b", "Paris", 200, 300), (3, "c", "Munich", 100, 100)],
        {"a": [TOKYO], "b": [PARIS], "c": [MUNICH]},
        top_n=2,
    )
    return out


def current_params(tmp_path: Path, out: Path, **overrides) -> RunParams:
    return RunParams(
        edition=2023, output_dir=str(out), workspace_dir=str(tmp_path / "ws"), top_n=2, **overrides
    )


def test_same_parameters_all_change_is_data(tmp_path: Path, previous: Path) -> None:
    params = current_params(tmp_path, previous)
    # This edition: Tokyo grew into Yokohama (footprint), Munich overtook Paris, Paris fell out.
    stage = tmp_path / "stage"
    stage.mkdir()
    write_edition(
        tmp_path / "cur",
        2023,
        [(1, "x", "Tokyo–Yokohama", 350, 500), (2, "y", "Munich", 250, 300), (3, "z", "Paris", 100, 200)],
        {"x": [TOKYO, YOKOHAMA], "y": [MUNICH], "z": [PARIS]},
    )
    for f in ("clusters.csv", "cluster_cells.csv"):
        (stage / f).write_bytes((tmp_path / "cur" / "2023" / f).read_bytes())
    params.workspace.mkdir(parents=True)
    write_cells_db(
        params.duckdb_path, {TOKYO: (300, 420), YOKOHAMA: (50, 80), MUNICH: (250, 300), PARIS: (100, 200)}
    )

    doc = json.loads(diff.write_edition_diff(params, stage).read_text())

    assert doc["previous_edition"] == 2022 and doc["previous_is_adjacent"] is True
    assert doc["parameters_changed"]["result"] == {}
    rows = {(r["status"], r["name"] or r["previous_name"]): r for r in doc["clusters"]}
    tokyo = rows[("stay", "Tokyo–Yokohama")]
    assert tokyo["previous_name"] == "Tokyo" and tokyo["rank_change"] == 0
    # S(prev cells = Tokyo, new data) = 300/1000 + 420/2000 = 0.51; previous score 0.5.
    assert tokyo["data_effect"] == pytest.approx(0.01)
    assert tokyo["footprint_effect"] == pytest.approx(0.6 - 0.51)
    assert tokyo["data_effect"] + tokyo["footprint_effect"] == pytest.approx(tokyo["score_change"])
    assert rows[("entry", "Munich")]["previous_rank"] == 3
    assert rows[("exit", "Paris")]["rank"] == 3
    assert {r["attributed_to"] for r in doc["clusters"]} == {"data"}
    s = doc["summary"]
    assert (s["stays"], s["entries"], s["exits"]) == (1, 1, 1)
    assert s["score_change"]["share_from_data"] == 1.0
    lines = (stage / "edition_diff.csv").read_text().splitlines()
    assert lines[0].startswith("status,name,rank,previous_name") and len(lines) == 4


def test_changed_radius_attributes_the_footprint_to_parameters(tmp_path: Path, previous: Path) -> None:
    params = current_params(tmp_path, previous, eps_km=20.0)
    stage = tmp_path / "stage"
    write_edition(
        stage.parent / "cur",
        2023,
        [(1, "x", "Tokyo–Yokohama", 350, 500), (2, "z", "Paris", 200, 300)],
        {"x": [TOKYO, YOKOHAMA], "z": [PARIS]},
    )
    stage.mkdir()
    for f in ("clusters.csv", "cluster_cells.csv"):
        (stage / f).write_bytes((stage.parent / "cur" / "2023" / f).read_bytes())
    params.workspace.mkdir(parents=True)
    write_cells_db(params.duckdb_path, {TOKYO: (300, 400), YOKOHAMA: (50, 100), PARIS: (200, 300)})

    doc = json.loads(diff.write_edition_diff(params, stage).read_text())

    assert doc["parameters_changed"]["result"] == {"eps_km": {"previous": 13.0, "current": 20.0}}
    tokyo = next(r for r in doc["clusters"] if r["name"] == "Tokyo–Yokohama")
    assert tokyo["data_effect"] == pytest.approx(0.0)  # same documents in the old footprint
    assert tokyo["footprint_effect"] == pytest.approx(0.1)
    assert tokyo["attributed_to"] == "data and parameters"
    sc = doc["summary"]["score_change"]
    assert sc["from_parameters"] == pytest.approx(0.1) and sc["from_data"] == pytest.approx(0.0)
    assert sc["footprint_attributed_to"] == "parameters"


def test_top_n_only_cut_moves_are_parameter_driven() -> None:
    prev = [
        diff.Cluster("a", 1, "A", 0.5, 0, 0, frozenset({1})),
        diff.Cluster("b", 2, "B", 0.4, 0, 0, frozenset({2})),
    ]
    cur = [
        diff.Cluster("x", 1, "A", 0.5, 0, 0, frozenset({1})),
        diff.Cluster("y", 2, "B", 0.4, 0, 0, frozenset({2})),
    ]
    rows = diff.compare(cur, prev, 1, 2, {"top_n": {"previous": 2, "current": 1}}, None, RES)
    exit_b = next(r for r in rows if r.status == "exit")
    assert exit_b.previous_name == "B" and exit_b.attributed_to == "parameters"
    assert next(r for r in rows if r.status == "stay").attributed_to == "data"


def test_first_edition_has_nothing_to_compare(tmp_path: Path) -> None:
    out = tmp_path / "out"
    params = RunParams(edition=2019, output_dir=str(out), workspace_dir=str(tmp_path / "ws"))
    stage = tmp_path / "stage"
    write_edition(tmp_path / "cur", 2019, [(1, "x", "Tokyo", 1, 1)], {"x": [TOKYO]})
    stage.mkdir()
    for f in ("clusters.csv", "cluster_cells.csv"):
        (stage / f).write_bytes((tmp_path / "cur" / "2019" / f).read_bytes())
    doc = json.loads(diff.write_edition_diff(params, stage).read_text())
    assert doc["previous_edition"] is None and doc["clusters"] == []


def test_previous_published_skips_gaps_later_editions_and_unfinished_folders(tmp_path: Path) -> None:
    for e in (2018, 2020, 2024):
        (tmp_path / str(e)).mkdir()
        (tmp_path / str(e) / "manifest.json").write_text("{}")
    (tmp_path / "2021").mkdir()  # no manifest: not published
    (tmp_path / "_archive").mkdir()
    assert diff.previous_published(tmp_path, 2022) == tmp_path / "2020"
    assert diff.previous_published(tmp_path, 2018) is None


def test_cells_are_compared_at_one_resolution() -> None:
    fine = frozenset({h3i.latlng_to_cell(35.69, 139.69, 8)})
    assert diff.at_resolution(fine, 7) == frozenset({TOKYO})
    assert len(diff.at_resolution(frozenset({TOKYO}), 8)) == 7
    clusters = [diff.Cluster("x", 1, "Tokyo", 1, 0, 0, fine)]
    assert diff.cells_resolution(clusters, default=7) == 8
    assert diff.cells_resolution([], default=7) == 7


def test_matching_prefers_shared_cells_over_names() -> None:
    prev = [diff.Cluster("a", 1, "Boston–Cambridge, MA", 1, 0, 0, frozenset({1, 2})),
            diff.Cluster("b", 2, "Cambridge–Boston, MA", 1, 0, 0, frozenset({9}))]  # fmt: skip
    cur = [diff.Cluster("x", 1, "Cambridge–Boston, MA", 1, 0, 0, frozenset({2, 3}))]
    assert diff.match(cur, prev) == {"x": ("a", 1)}


def test_bad_row_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text(",".join(CLUSTER_COLS) + "\n1,a,A,1,0.1,1,0.1,oops\n")
    (tmp_path / "cells.csv").write_text("rank,cluster_id,cell\n")
    with pytest.raises(ValueError, match=r"c\.csv:2"):
        diff.read_clusters(tmp_path / "c.csv", tmp_path / "cells.csv")
