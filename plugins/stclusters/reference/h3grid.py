"""H3 grid helpers: scalar functions for DuckDB UDFs, vectorised variants for arrays.

Cells are handled as plain Python / numpy **signed 64-bit integers**. H3 cell indexes of every
resolution 0-15 have bit 63 (the reserved high bit) set to 0 and mode bits 0001, so every valid
cell id is in ``[2**59, 2**63)``: it fits DuckDB's ``BIGINT`` without wrapping and sorts the same
signed or unsigned (``tests/unit/test_h3grid.py`` checks the bound on every resolution's extreme
cells). ``0`` is H3's null index (``H3_NULL``): the vectorised functions use it for "no cell".

Invalid coordinates (None, NaN, infinities, ``|lat| > 90``, ``|lng| > 180``) give ``None`` from
the scalar functions and ``0`` from the vectorised ones; an invalid resolution raises
``ValueError``, because it is a configuration error, not a data error.

DuckDB registration: the UDFs return NULL for invalid non-NULL input, so NULL handling must be
``"special"``. h3 4.x has no vectorised C entry point, so the arrow variants loop too and were
not faster in DuckDB (docs/clustering-notes.md); prefer the scalar ones on distinct coordinates::

    con.create_function("h3_latlng_to_cell", latlng_to_cell, ["DOUBLE", "DOUBLE", "INTEGER"], "BIGINT",
                        null_handling="special")
    con.create_function("h3_cell_to_lat", cell_to_lat, ["BIGINT"], "DOUBLE", null_handling="special")
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from h3.api import basic_int as h3

__all__ = [
    "CENTRE_OFFSET_FACTOR",
    "H3_NULL",
    "arrow_cell_to_lat",
    "arrow_cell_to_lng",
    "arrow_latlng_to_cell",
    "cell_centres",
    "cell_to_lat",
    "cell_to_lng",
    "cells_from_latlng",
    "latlng_to_cell",
    "max_centre_offset_km",
]

H3_NULL = 0

# The largest distance between a cell's centre and its boundary vertices, divided by h3's
# average hexagon edge length at the same resolution, measured over the whole globe
# (docs/clustering-notes.md: exhaustive at res 0-3, 100k uniform points plus a refinement
# around the worst cell at res 4-15): 1.0793 at res 0 rising slowly to 1.1038 at res 15.
# The bound rounds up to 1.11 so it holds at every resolution.
CENTRE_OFFSET_FACTOR = 1.11


def _check_res(res: int) -> int:
    if isinstance(res, bool) or int(res) != res or not 0 <= int(res) <= 15:
        raise ValueError(f"H3 resolution must be an integer 0..15, got {res!r}")
    return int(res)


def _valid_latlng(lat: float | None, lng: float | None) -> bool:
    if lat is None or lng is None:
        return False
    try:
        lat_f, lng_f = float(lat), float(lng)
    except (TypeError, ValueError):
        return False
    return math.isfinite(lat_f) and math.isfinite(lng_f) and abs(lat_f) <= 90.0 and abs(lng_f) <= 180.0


def latlng_to_cell(lat: float | None, lng: float | None, res: int) -> int | None:
    """The H3 cell (as a BIGINT-compatible int) holding a WGS84 point, or None if the point is invalid."""
    res = _check_res(res)
    if not _valid_latlng(lat, lng):
        return None
    return h3.latlng_to_cell(float(lat), float(lng), res)


def _valid_cell(cell: int | None) -> bool:
    if cell is None:
        return False
    try:
        value = int(cell)
    except (TypeError, ValueError):
        return False
    return 0 < value < 2**63 and h3.is_valid_cell(value)


def cell_to_lat(cell: int | None) -> float | None:
    """Latitude of the cell's centre, or None for a null or invalid cell id."""
    return h3.cell_to_latlng(int(cell))[0] if _valid_cell(cell) else None


def cell_to_lng(cell: int | None) -> float | None:
    """Longitude of the cell's centre, or None for a null or invalid cell id."""
    return h3.cell_to_latlng(int(cell))[1] if _valid_cell(cell) else None


def cells_from_latlng(lat: np.ndarray, lng: np.ndarray, res: int) -> np.ndarray:
    """int64 H3 cells of coordinate arrays; 0 (H3_NULL) where a coordinate pair is invalid."""
    res = _check_res(res)
    lat_a = np.asarray(lat, dtype=np.float64)
    lng_a = np.asarray(lng, dtype=np.float64)
    if lat_a.shape != lng_a.shape:
        raise ValueError(f"lat and lng must have the same shape, got {lat_a.shape} and {lng_a.shape}")
    out = np.zeros(lat_a.shape, dtype=np.int64)
    ok = np.isfinite(lat_a) & np.isfinite(lng_a) & (np.abs(lat_a) <= 90.0) & (np.abs(lng_a) <= 180.0)
    # h3 4.x has no vectorised latlng_to_cell; the scalar call is ~0.5 us, so a loop over
    # Python floats is fast enough (1M points/s) and needs no extra dependency.
    to_cell = h3.latlng_to_cell
    out[ok] = [to_cell(a, b, res) for a, b in zip(lat_a[ok].tolist(), lng_a[ok].tolist(), strict=True)]
    return out


def cell_centres(cells: np.ndarray | Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lng) float64 arrays of the cells' centres; NaN where a cell id is 0 or invalid."""
    cells_a = np.asarray(cells, dtype=np.int64)
    lat = np.full(cells_a.shape, np.nan)
    lng = np.full(cells_a.shape, np.nan)
    ok = cells_a > 0
    values = cells_a[ok].tolist()
    valid = np.fromiter((h3.is_valid_cell(c) for c in values), dtype=bool, count=len(values))
    idx = np.flatnonzero(ok)[valid]
    centres = [h3.cell_to_latlng(c) for c, v in zip(values, valid.tolist(), strict=True) if v]
    if centres:
        arr = np.asarray(centres, dtype=np.float64)
        lat[idx] = arr[:, 0]
        lng[idx] = arr[:, 1]
    return lat, lng


def max_centre_offset_km(res: int) -> float:
    """Upper bound on the great-circle distance (km) between any point and its cell's centre.

    This is the grid error of one point; a distance between two points moves by at most twice
    this when both are replaced by their cell centres.
    """
    return CENTRE_OFFSET_FACTOR * h3.average_hexagon_edge_length(_check_res(res), unit="km")


# --- DuckDB vectorised (arrow) UDFs -------------------------------------------------------------
# conn.create_function(name, fn, [...], ret, type="arrow") passes pyarrow arrays; these wrappers
# keep nulls as nulls. DuckDB evaluates the annotations, so pyarrow is imported at module level.


def _arrow_to_numpy_float(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(values.cast("double"), float("nan")).to_numpy(zero_copy_only=False))


def arrow_latlng_to_cell(lat: pa.Array, lng: pa.Array, res: pa.Array) -> pa.Array:
    """Arrow UDF: BIGINT cell per (DOUBLE lat, DOUBLE lng, INTEGER res); null for invalid points."""
    res_values = {r for r in res.to_pylist() if r is not None}
    if len(res_values) > 1:
        raise ValueError(f"arrow_latlng_to_cell: one resolution per call expected, got {sorted(res_values)}")
    if not res_values:
        return pa.nulls(len(lat), type=pa.int64())
    cells = cells_from_latlng(_arrow_to_numpy_float(lat), _arrow_to_numpy_float(lng), res_values.pop())
    return pa.array(cells, type=pa.int64(), mask=cells == H3_NULL)


def _arrow_centre(cells: pa.Array, index: int) -> pa.Array:
    values = np.asarray(pc.fill_null(cells.cast("int64"), 0).to_numpy(zero_copy_only=False))
    coord = cell_centres(values)[index]
    return pa.array(coord, type=pa.float64(), mask=np.isnan(coord))


def arrow_cell_to_lat(cells: pa.Array) -> pa.Array:
    """Arrow UDF: DOUBLE centre latitude per BIGINT cell; null for null or invalid cells."""
    return _arrow_centre(cells, 0)


def arrow_cell_to_lng(cells: pa.Array) -> pa.Array:
    """Arrow UDF: DOUBLE centre longitude per BIGINT cell; null for null or invalid cells."""
    return _arrow_centre(cells, 1)
