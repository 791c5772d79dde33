"""h3grid: scalar and vectorised H3 helpers, their BIGINT range, the grid error bound, DuckDB UDFs."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from h3.api import basic_int as h3

from stclusters.reference import h3grid

R_KM = 6371.0088


def _haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lng2 - lng1)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R_KM * math.asin(math.sqrt(min(1.0, h)))


def _uniform_sphere(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return np.degrees(np.arcsin(rng.uniform(-1, 1, n))), rng.uniform(-180, 180, n)


def test_known_cell_from_h3_documentation() -> None:
    # h3's own example: this point at res 5 is 85283473fffffff
    assert h3grid.latlng_to_cell(37.3615593, -122.0553238, 5) == int("85283473fffffff", 16)


@pytest.mark.parametrize(
    ("lat", "lng"),
    [
        (None, 0.0),
        (0.0, None),
        (float("nan"), 1.0),
        (1.0, float("inf")),
        (90.5, 0.0),
        (0.0, -180.01),
        ("x", 1),
    ],
)
def test_invalid_points_give_none(lat: object, lng: object) -> None:
    assert h3grid.latlng_to_cell(lat, lng, 7) is None


@pytest.mark.parametrize("res", [-1, 16, 7.5, True])
def test_invalid_resolution_raises(res: object) -> None:
    with pytest.raises(ValueError, match="resolution"):
        h3grid.latlng_to_cell(1.0, 1.0, res)


def test_centre_round_trip_and_invalid_cells() -> None:
    for lat, lng in [(35.68, 139.69), (-33.87, 151.21), (89.9, 10.0), (0.0, 180.0), (-89.99, -179.9)]:
        for res in (0, 7, 8, 15):
            cell = h3grid.latlng_to_cell(lat, lng, res)
            c_lat, c_lng = h3grid.cell_to_lat(cell), h3grid.cell_to_lng(cell)
            assert h3grid.latlng_to_cell(c_lat, c_lng, res) == cell
    for bad in (None, 0, -5, 2**63, 12345, 2**64 - 1):
        assert h3grid.cell_to_lat(bad) is None
        assert h3grid.cell_to_lng(bad) is None


def test_every_cell_id_fits_signed_bigint() -> None:
    """Bit 63 of an H3 cell index is reserved 0, so ids are < 2**63 and fit DuckDB's BIGINT.

    The largest index of each resolution has base cell 121 (the last) and every digit 6 (the
    largest digit); the smallest has base cell 0 and every digit 0. Mode bits 0001 put every
    cell at >= 2**59.
    """
    for res in range(16):
        biggest = h3.construct_cell(121, *([6] * res))
        smallest = h3.construct_cell(0, *([0] * res))
        assert h3.is_valid_cell(biggest) and h3.is_valid_cell(smallest)
        assert 2**59 <= smallest < biggest < 2**63
    lat, lng = _uniform_sphere(5000, seed=3)
    cells = h3grid.cells_from_latlng(lat, lng, 15)
    assert cells.dtype == np.int64 and (cells > 0).all()


def test_vectorised_equals_scalar_with_invalid_rows() -> None:
    lat, lng = _uniform_sphere(2000, seed=1)
    lat[[5, 17]] = [np.nan, 95.0]
    lng[30] = np.inf
    cells = h3grid.cells_from_latlng(lat, lng, 8)
    expected = [h3grid.latlng_to_cell(a, b, 8) or 0 for a, b in zip(lat, lng, strict=True)]
    assert cells.tolist() == expected
    assert cells[[5, 17, 30]].tolist() == [0, 0, 0]
    c_lat, c_lng = h3grid.cell_centres(cells)
    assert np.isnan(c_lat[[5, 17, 30]]).all() and np.isnan(c_lng[[5, 17, 30]]).all()
    ok = cells > 0
    assert np.allclose(c_lat[ok], [h3grid.cell_to_lat(c) for c in cells[ok]])
    assert np.allclose(c_lng[ok], [h3grid.cell_to_lng(c) for c in cells[ok]])
    with pytest.raises(ValueError, match="same shape"):
        h3grid.cells_from_latlng(lat[:3], lng[:4], 8)


@pytest.mark.parametrize("res", [4, 7, 8, 9])
def test_centre_offset_bound_holds_for_random_points_and_is_tight(res: int) -> None:
    lat, lng = _uniform_sphere(20000, seed=res)
    cells = h3grid.cells_from_latlng(lat, lng, res)
    c_lat, c_lng = h3grid.cell_centres(cells)
    offsets = [_haversine_km(*v) for v in zip(lat, lng, c_lat, c_lng, strict=True)]
    bound = h3grid.max_centre_offset_km(res)
    assert max(offsets) <= bound
    # the bound is a measured maximum, not a loose guess: random points come within 15% of it
    assert max(offsets) >= 0.85 * bound


def test_centre_offset_bound_exhaustive_at_coarse_resolutions() -> None:
    """Every vertex of every cell at res 0-2 is within the bound of its centre (max at a vertex)."""
    cells = list(h3.get_res0_cells())
    for res in range(3):
        if res:
            cells = [c for p in cells for c in h3.cell_to_children(p)]
        bound = h3grid.max_centre_offset_km(res)
        worst = max(_haversine_km(*h3.cell_to_latlng(c), *v) for c in cells for v in h3.cell_to_boundary(c))
        assert worst <= bound
        assert worst >= 0.97 * bound


def test_duckdb_udfs_scalar_and_arrow() -> None:
    # null_handling="special": the UDFs return NULL for invalid non-NULL input (lat 91)
    con = duckdb.connect()
    special = {"null_handling": "special"}
    con.create_function(
        "h3_cell", h3grid.latlng_to_cell, ["DOUBLE", "DOUBLE", "INTEGER"], "BIGINT", **special
    )
    con.create_function("h3_lat", h3grid.cell_to_lat, ["BIGINT"], "DOUBLE", **special)
    con.create_function(
        "h3_cell_v",
        h3grid.arrow_latlng_to_cell,
        ["DOUBLE", "DOUBLE", "INTEGER"],
        "BIGINT",
        type="arrow",
        **special,
    )
    con.create_function("h3_lat_v", h3grid.arrow_cell_to_lat, ["BIGINT"], "DOUBLE", type="arrow", **special)
    con.create_function("h3_lng_v", h3grid.arrow_cell_to_lng, ["BIGINT"], "DOUBLE", type="arrow", **special)
    con.execute(
        "create table pts as select * from"
        " (values (35.68, 139.69), (null, 1.0), (91.0, 0.0), (-33.87, 151.21)) t(lat, lng)"
    )
    rows = con.execute(
        "select h3_cell(lat, lng, 15), h3_cell_v(lat, lng, 15), h3_lat(h3_cell(lat, lng, 15)),"
        " h3_lat_v(h3_cell_v(lat, lng, 15)), h3_lng_v(h3_cell_v(lat, lng, 15)) from pts"
    ).fetchall()
    tokyo = h3.latlng_to_cell(35.68, 139.69, 15)
    assert rows[0][0] == rows[0][1] == tokyo
    assert rows[0][2] == rows[0][3] == h3.cell_to_latlng(tokyo)[0]
    assert rows[0][4] == h3.cell_to_latlng(tokyo)[1]
    assert rows[1] == (None, None, None, None, None)
    assert rows[2] == (None, None, None, None, None)
    assert rows[3][0] == rows[3][1] == h3.latlng_to_cell(-33.87, 151.21, 15)


def test_arrow_udf_rejects_mixed_resolutions() -> None:
    with pytest.raises(ValueError, match="one resolution"):
        h3grid.arrow_latlng_to_cell(pa.array([1.0, 2.0]), pa.array([1.0, 2.0]), pa.array([7, 8]))
