"""Rank intervals (stclusters.build.robustness) on small known worlds built as cells and documents."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
from h3.api import basic_int as h3

from stclusters.build import robustness as rb

KM_PER_DEG_LAT = 6371.0088 * math.pi / 180
RES = 8
EPS = 13.0
WORLDS = {"patents": 10_000.0, "publications": 10_000.0}


# --- sampling ------------------------------------------------------------------------------------


def _documents(sizes: list[int], addresses: int = 2) -> pd.DataFrame:
    """Per cluster k, sizes[k] patents and as many articles, each document wholly in its cluster
    but written as `addresses` address rows (so weights are fractional before the sum)."""
    rows = []
    for layer in ("patents", "publications"):
        for k, n in enumerate(sizes):
            for d in range(n):
                rows.append((layer, f"{layer[0]}{k}-{d}", k, 1.0))
    return pd.DataFrame(rows, columns=["layer", "document_id", "cluster_id", "weight"])


def _sums(docs: pd.DataFrame) -> pd.DataFrame:
    return (
        docs.assign(square=docs["weight"] ** 2)
        .groupby(["layer", "cluster_id"], as_index=False)
        .agg(weight_sum=("weight", "sum"), weight_square_sum=("square", "sum"))
    )


def _ranked(sizes: list[int]) -> pd.DataFrame:
    order = np.argsort([-s for s in sizes], kind="stable")
    rank = np.empty(len(sizes), dtype=np.int64)
    rank[order] = np.arange(1, len(sizes) + 1)
    return pd.DataFrame({"cluster_id": np.arange(len(sizes)), "rank": rank})


def _intervals(sizes: list[int], mode: str) -> pd.DataFrame:
    docs = _documents(sizes)
    out = rb.sampling_intervals(_ranked(sizes), WORLDS, mode, cluster_sums=_sums(docs), document_weights=docs)
    return out.set_index("cluster_id")


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_two_clusters_of_equal_size_have_overlapping_intervals(mode: str) -> None:
    iv = _intervals([400, 400, 100], mode)
    assert iv.loc[0, "sampling_rank_low"] == 1 and iv.loc[0, "sampling_rank_high"] == 2
    assert iv.loc[1, "sampling_rank_low"] == 1 and iv.loc[1, "sampling_rank_high"] == 2
    assert (iv.loc[2, "sampling_rank_low"], iv.loc[2, "sampling_rank_high"]) == (3, 3)


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_clearly_separated_sizes_give_stable_ranks(mode: str) -> None:
    iv = _intervals([1000, 500, 250, 120], mode)
    for k in range(4):
        assert (iv.loc[k, "sampling_rank_low"], iv.loc[k, "sampling_rank_high"]) == (k + 1, k + 1)
        assert rb.interval_label(k + 1, [k + 1], [k + 1]) == "stable"


@pytest.mark.parametrize("mode", ["fast", "full"])
def test_the_bootstrap_interval_shrinks_as_the_documents_grow(mode: str) -> None:
    # five clusters 3% apart in size: at 100 documents they swap freely, at 3000 hardly
    def total_width(scale: int) -> int:
        sizes = [int(scale * (1 - 0.03 * k)) for k in range(5)]
        iv = _intervals(sizes, mode)
        return int((iv["sampling_rank_high"] - iv["sampling_rank_low"]).sum())

    widths = [total_width(n) for n in (100, 1000, 3000)]
    assert widths[0] > widths[1] > widths[2], widths
    assert widths[0] >= 8


def test_the_bootstrap_is_seeded() -> None:
    a = _intervals([300, 290, 280, 270], "full")
    b = _intervals([300, 290, 280, 270], "full")
    pd.testing.assert_frame_equal(a, b)


def test_the_normal_approximation_agrees_with_the_exact_bootstrap() -> None:
    sizes = [500, 480, 460, 300, 290, 100]
    fast, full = _intervals(sizes, "fast"), _intervals(sizes, "full")
    assert (fast - full).abs().to_numpy().max() <= 1


def test_world_totals_resample_too() -> None:
    # one cluster and a world of documents outside it: its counts move with the world total
    rng = np.random.default_rng(0)
    draws = rb.normal_bootstrap_scores(
        {"patents": np.array([5000.0])}, {"patents": np.array([5000.0])}, {"patents": 10_000.0}, 2000, rng
    )
    world = draws["patents_world"]
    assert world.std() == pytest.approx(100, rel=0.1)  # Poisson(10 000)
    share = draws["patents"][:, 0] / world
    # the share of a binomial half: sd sqrt(0.25 / 10 000) = 0.005
    assert share.std() == pytest.approx(0.005, rel=0.15)


def test_rank_interval_takes_whole_ranks_at_five_and_ninety_five_percent() -> None:
    ranks = np.array([[1]] * 90 + [[2]] * 6 + [[5]] * 4)
    low, high = rb.rank_interval(ranks)
    assert (int(low[0]), int(high[0])) == (1, 2)


def test_labels() -> None:
    assert rb.interval_label(7, [7, 7], [7, 7]) == "stable"
    assert rb.interval_label(7, [6, 7], [7, 9]) == "±2"
    assert rb.interval_label(7, [1, 7], [7, 7]) == "uncertain"
    assert rb.interval_label(7, [7, 7], [7, 7], vanished=1) == "uncertain"


def test_off_mode_is_refused_and_unknown_modes_named() -> None:
    with pytest.raises(ValueError, match="robustness is off"):
        rb.sampling_intervals(_ranked([1]), WORLDS, "off")
    with pytest.raises(ValueError, match="robustness must be one of off, fast, full, got 'quick'"):
        rb.variation_grid("quick", EPS, 80, 40, RES)


# --- method --------------------------------------------------------------------------------------


def _cell_at(lat: float, lng: float, res: int = RES) -> int:
    return h3.latlng_to_cell(lat, lng, res)


def _cells(spots: list[tuple[float, float, float]]) -> pd.DataFrame:
    """Both layers with the same weight at each spot (lat, lng offset in km east of 10°E, weight)."""
    rows = []
    for lat, km_east, weight in spots:
        lng = 10.0 + km_east / (KM_PER_DEG_LAT * math.cos(math.radians(lat)))
        cell = _cell_at(lat, lng)
        rows += [("patents", cell, weight), ("publications", cell, weight)]
    return pd.DataFrame(rows, columns=["layer", "cell", "weight"])


def _edition(cells: pd.DataFrame, min_weight: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The edition's clusters and ranks, as the dbt models make them (same functions)."""
    layer_cells = {
        layer: (part["cell"].to_numpy(dtype=np.int64), part["weight"].to_numpy(dtype=np.float64))
        for layer, part in cells.groupby("layer")
    }
    base = rb.recluster(layer_cells, EPS, {"patents": min_weight, "publications": min_weight}, WORLDS)
    clusters = pd.DataFrame({"cell": base.cells, "cluster_id": base.labels})
    ranks = pd.DataFrame({"cluster_id": np.arange(len(base.rank)), "rank": base.rank})
    return clusters, ranks


def _vary(cells: pd.DataFrame, min_weight: float, mode: str = "fast") -> pd.DataFrame:
    clusters, ranks = _edition(cells, min_weight)
    grid = rb.variation_grid(mode, EPS, min_weight, min_weight, RES)
    return rb.method_variations(cells, clusters, ranks, WORLDS, grid, top_n=10).set_index(
        ["variation", "rank"]
    )


def test_the_same_parameters_reproduce_the_edition() -> None:
    cells = _cells([(50.0, 0, 300), (50.0, 60, 200), (50.0, 120, 100)])
    clusters, ranks = _edition(cells, 50)
    same = rb.Variation("same", "none", 0, EPS, 50, 50, RES, False)
    out = rb.method_variations(cells, clusters, ranks, WORLDS, [same], top_n=10)
    assert (out["status"] == "same").all()
    assert (out["variation_rank"] == out["rank"]).all()
    assert sorted(out["rank"]) == [1, 2, 3]


def test_a_variation_that_merges_two_clusters_is_reported_as_a_merge() -> None:
    # two spots 14.5 km apart: apart at eps 13 km, one cluster at eps 15.6 km (+20%)
    cells = _cells([(50.0, 0, 300), (50.0, 14.5, 200), (50.0, 200, 100)])
    out = _vary(cells, 50)
    wider = out.loc["eps_km+20%"]
    assert wider.loc[1, "status"] == "merged" and wider.loc[1, "merged_with"] == "2"
    assert wider.loc[2, "status"] == "merged" and wider.loc[2, "merged_with"] == "1"
    assert wider.loc[1, "variation_rank"] == wider.loc[2, "variation_rank"] == 1
    assert wider.loc[3, "status"] == "same" and wider.loc[3, "variation_rank"] == 2
    narrower = out.loc["eps_km-20%"]
    assert (narrower["status"] == "same").all()
    ranks = pd.DataFrame({"cluster_id": out.loc["eps_km+20%", "cluster_id"], "rank": [1, 2, 3]})
    intervals = rb.method_intervals(out.reset_index(), ranks).set_index("cluster_id")
    merged_id = int(wider.loc[2, "cluster_id"])
    assert intervals.loc[merged_id, "n_merged"] >= 1
    assert intervals.loc[merged_id, "method_rank_low"] == 1


def test_a_variation_that_splits_a_cluster_is_reported_as_a_split() -> None:
    # a chain of three spots 12 km apart: one cluster at eps 13 km, three at 10.4 km (-20%)
    cells = _cells([(50.0, 0, 300), (50.0, 12, 300), (50.0, 24, 300)])
    row = _vary(cells, 50).loc[("eps_km-20%", 1)]
    assert row["status"] == "split" and row["n_pieces"] == 3


def test_a_cluster_below_the_raised_minimum_vanishes() -> None:
    # the small spot's neighbourhood weight (60) passes 50 but not 62.5 (+25%)
    cells = _cells([(50.0, 0, 300), (50.0, 100, 60)])
    out = _vary(cells, 50)
    row = out.loc[("minima+25%", 2)]
    assert row["status"] == "vanished" and pd.isna(row["variation_rank"])
    assert out.loc[("minima+25%", 1), "status"] == "same"


def test_a_coarser_grid_is_matched_through_parent_cells() -> None:
    cells = _cells([(50.0, 0, 300), (50.0, 60, 200), (50.0, 120, 100)])
    coarse = _vary(cells, 50).loc["h3_resolution-1"]
    assert (coarse["status"] == "same").all()
    assert list(coarse["variation_rank"]) == [1, 2, 3]


def test_the_full_grid_places_region_addresses_and_refines_the_grid() -> None:
    cells = _cells([(50.0, 0, 300), (50.0, 60, 200)])
    # located addresses (full grid): the same spots, plus region-level addresses at a third spot
    # that only the regions_placed variation puts on the grid (enough there for a cluster)
    spot1, spot2 = (h3.cell_to_latlng(int(c)) for c in cells["cell"].iloc[[0, 2]])
    lng3 = 10.0 + 200 / (KM_PER_DEG_LAT * math.cos(math.radians(50.0)))
    locations = pd.DataFrame(
        [
            (layer, la, lo, region, w)
            for layer in ("patents", "publications")
            for la, lo, region, w in ((*spot1, False, 300), (*spot2, False, 200), (50.0, lng3, True, 500))
        ],
        columns=["layer", "latitude", "longitude", "is_region", "weight"],
    )
    clusters, ranks = _edition(cells, 50)
    grid = rb.variation_grid("full", EPS, 50, 50, RES)
    assert [g.name for g in grid] == [
        "eps_km-20%",
        "eps_km+20%",
        "min_patents-25%",
        "min_publications-25%",
        "min_patents+25%",
        "min_publications+25%",
        "h3_resolution-1",
        "h3_resolution+1",
        "regions_placed",
    ]
    out = rb.method_variations(cells, clusters, ranks, WORLDS, grid, top_n=10, locations=locations)
    out = out.set_index(["variation", "rank"])
    assert (out.loc["h3_resolution+1", "status"] == "same").all()
    # the region-level weight (500) makes a new first cluster: both published ones move down one
    assert list(out.loc["regions_placed", "variation_rank"]) == [2, 3]
    with pytest.raises(ValueError, match="needs the located addresses"):
        rb.method_variations(cells, clusters, ranks, WORLDS, grid, top_n=10)


def test_the_manifest_records_grid_seed_and_replicates() -> None:
    record = rb.manifest_record("fast", EPS, 2000, 6000, RES)
    assert record["sampling"] == {
        "bootstrap": "poisson-normal",
        "seed": rb.SEED,
        "replicates": 200,
        "level": 0.9,
    }
    assert [g["name"] for g in record["method_grid"]] == [
        "eps_km-20%",
        "eps_km+20%",
        "minima-25%",
        "minima+25%",
        "h3_resolution-1",
    ]
    assert rb.manifest_record("off", EPS, 2000, 6000, RES) == {"mode": "off"}


# --- edition diff and report ---------------------------------------------------------------------


def _ranking(rows: list[tuple[int, int, int, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["rank", *rb.INTERVAL_COLUMNS])


def test_a_move_within_both_editions_intervals_is_flagged() -> None:
    before = rb.intervals_by_rank(
        _ranking([(13, 12, 15, 13, 14), (14, 13, 15, 13, 14), (20, 20, 20, 20, 20)])
    )
    now = rb.intervals_by_rank(_ranking([(13, 13, 15, 12, 13), (14, 13, 16, 14, 14), (16, 16, 16, 16, 16)]))
    assert before[13] == (12, 15) and now[13] == (12, 15)
    assert rb.move_within_intervals(13, 14, now, before) is True  # a near-tie swapped
    assert rb.move_within_intervals(16, 20, now, before) is False  # a real move up
    assert rb.move_within_intervals(16, None, now, before) is None  # an entry
    assert rb.move_within_intervals(13, 14, now, {}) is None  # the previous edition had no intervals


def test_rankings_without_intervals_give_none() -> None:
    assert rb.intervals_by_rank(pd.DataFrame({"rank": [1, 2]})) == {}
    off = _ranking([(1, 1, 1, 1, 1)]).astype("float64")
    off.loc[0, "sampling_rank_low"] = float("nan")
    assert rb.intervals_by_rank(off) == {}


def test_rankings_without_a_sampling_interval_have_no_intervals() -> None:
    assert not rb.has_intervals([{"rank": 1, "sampling_rank_low": None}])


def test_robustness_parquet_is_the_mart_and_a_missing_mart_is_noted(tmp_path) -> None:
    import duckdb
    import pyarrow.parquet as pq

    from stclusters import config

    params = config.resolve({"workspace_dir": str(tmp_path / "ws"), "output_dir": str(tmp_path / "out")}, {})
    params.workspace.mkdir(parents=True)
    dest = tmp_path / "staging"
    dest.mkdir()
    con = duckdb.connect(str(params.duckdb_path))
    con.execute("create table main.ranking as select 1 as rank")
    con.close()
    assert rb.write_outputs(params, dest) == []
    assert rb.manifest_for(params, dest)["computed"] is False
    con = duckdb.connect(str(params.duckdb_path))
    con.execute(
        "create table main.robustness as select * from (values (2, 'b', 'eps_km+20%'),"
        " (1, 'a', 'eps_km-20%'), (1, 'a', 'eps_km+20%')) t(rank, name, variation)"
    )
    con.close()
    (path,) = rb.write_outputs(params, dest)
    table = pq.read_table(path).to_pylist()
    assert [(r["rank"], r["variation"]) for r in table] == [
        (1, "eps_km+20%"),
        (1, "eps_km-20%"),
        (2, "eps_km+20%"),
    ]
    record = rb.manifest_for(params, dest)
    assert "computed" not in record and record["sampling"]["seed"] == rb.SEED
    off = dataclasses.replace(params, robustness="off")
    assert rb.write_outputs(off, dest) == [] and rb.manifest_for(off, dest) == {"mode": "off"}


def test_an_edition_without_clusters_has_no_variation_ranks_and_no_error() -> None:
    """Thresholds above every cell's weight: no published cluster. The variations still run on
    the edition's own cells (found in a full-pipeline run on a small real export)."""
    cells = _cells([(50.0, 0, 3), (50.0, 60, 2)])
    clusters, ranks = _edition(cells, 1e6)
    assert clusters.empty or (clusters["cluster_id"] < 0).all() or ranks.empty
    grid = rb.variation_grid("fast", EPS, 1e6, 1e6, RES)
    out = rb.method_variations(cells, clusters, ranks, WORLDS, grid, top_n=10)
    assert out.empty


def test_variations_in_threads_give_the_rows_of_one_thread() -> None:
    """workers re-clusters variations at once; the rows (order included) must not depend on it."""
    cells = _cells([(50.0, 0, 300), (50.0, 14, 120), (50.0, 60, 200), (50.0, 120, 100), (50.0, 131, 60)])
    clusters, ranks = _edition(cells, 50)
    grid = rb.variation_grid("fast", EPS, 50, 50, RES)
    assert len(grid) == 5
    one = rb.method_variations(cells, clusters, ranks, WORLDS, grid, top_n=10)
    for workers in (2, 8):
        many = rb.method_variations(cells, clusters, ranks, WORLDS, grid, top_n=10, workers=workers)
        pd.testing.assert_frame_equal(many, one)
    assert set(one["status"]) - {"same"}, "some variation changes a cluster"
