"""Density clustering of weighted H3 cells (DBSCAN semantics) and the merge of the two layers.

The method (docs/methodology.md; measured numbers in docs/clustering-notes.md):

* Each layer (patents, publications) arrives as occupied H3 cells with a weight: the fractional
  document count of the addresses in that cell. Every cell stands for a point at its centre.
* Distances are great-circle distances between cell centres (haversine, sphere of radius
  ``EARTH_RADIUS_KM``).
* A cell is **core** when the total weight of the occupied cells whose centres lie within
  ``eps_km`` of its centre (itself included) is ``>= min_weight``.
* Clusters are the connected components of core cells, two core cells being linked when their
  centres are within ``eps_km``.
* A **border** cell (not core, but within ``eps_km`` of at least one core cell) joins the cluster
  of its nearest core cell; on an exact tie of distances, the cluster whose core cells weigh
  more (then: whose smallest cell id is smaller), since final ids are only known afterwards.
  Every other cell is noise (label ``-1``).
* Cluster ids run from 0 by decreasing total weight (core + border cells), ties broken by the
  smallest cell id in the cluster. The result depends only on the set of (cell, weight) pairs,
  never on the order of the input rows.

This is DBSCAN with sample weights (scikit-learn's ``DBSCAN(sample_weight=...)``) except for the
border rule: scikit-learn gives a border point to whichever cluster reaches it first during its
expansion, which depends on the input order; here it is the nearest core cell.

Cost grows with the number of occupied cells and their neighbours within eps, not with the
number of documents: neighbours are found with a k-d tree on 3-D unit vectors (a chord radius
slightly above eps, the exact haversine test for pairs near it), in chunks of rows so memory
stays bounded; core components are built from per-chunk spanning stars.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from h3.api import basic_int as h3
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from stclusters.reference.h3grid import cell_centres, max_centre_offset_km

log = logging.getLogger(__name__)

__all__ = [
    "EARTH_RADIUS_KM",
    "NOISE",
    "ClusterResult",
    "MergeResult",
    "dbscan_cells",
    "dbscan_located",
    "dbscan_points",
    "merge_layers",
]

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG), the sphere every distance of the method is measured on."""

NOISE = -1

# Candidate pairs held in memory at once (each costs ~24 bytes in scipy's output plus ~40 in
# our derived arrays): ~8M pairs keeps a chunk well under 1 GB whatever the density.
_PAIR_BUDGET = 8_000_000


@dataclass(frozen=True)
class ClusterResult:
    """One layer's clustering, one row per distinct occupied cell, sorted by cell id."""

    cells: np.ndarray
    """int64 H3 cell ids, sorted, distinct."""
    weights: np.ndarray
    """float64 weight of each cell (input rows of the same cell summed)."""
    neighbourhood_weight: np.ndarray
    """float64 total weight within eps_km of the cell's centre, itself included."""
    is_core: np.ndarray
    """bool: neighbourhood_weight >= min_weight."""
    labels: np.ndarray
    """int64 cluster id (0, 1, ... by decreasing weight) or -1 for noise."""
    cluster_weights: np.ndarray
    """float64 total weight of each cluster, indexed by cluster id (non-increasing)."""
    eps_km: float
    min_weight: float

    @property
    def n_clusters(self) -> int:
        return len(self.cluster_weights)

    @property
    def noise_weight(self) -> float:
        return float(self.weights[self.labels == NOISE].sum())

    def labels_of(self, cells: np.ndarray) -> np.ndarray:
        """Cluster label of each given cell (input order kept); KeyError for a cell not clustered."""
        cells_a = np.asarray(cells, dtype=np.int64)
        pos = np.searchsorted(self.cells, cells_a)
        pos_c = np.minimum(pos, max(len(self.cells) - 1, 0))
        found = (pos < len(self.cells)) & (self.cells[pos_c] == cells_a) if len(self.cells) else pos < 0
        if not np.all(found):
            missing = cells_a[~found][:5].tolist()
            raise KeyError(f"cells not in this clustering result: {missing}")
        return self.labels[pos_c]


@dataclass(frozen=True)
class MergeResult:
    """Merged clusters of the two layers, one row per cell that belongs to a cluster of either layer."""

    cells: np.ndarray
    """int64 H3 cell ids, sorted, distinct."""
    merged_labels: np.ndarray
    """int64 merged cluster id of each cell (0, 1, ... by smallest cell id of the merged cluster)."""
    patent_labels: np.ndarray
    """int64 patent cluster of each cell, -1 if the cell is in none."""
    publication_labels: np.ndarray
    """int64 publication cluster of each cell, -1 if the cell is in none."""
    member_merged: np.ndarray
    """int64 merged id of each (merged cluster, layer cluster) membership row."""
    member_layer: np.ndarray
    """str ("patents" or "publications") of each membership row."""
    member_cluster: np.ndarray
    """int64 layer cluster id of each membership row."""

    @property
    def n_clusters(self) -> int:
        return int(self.merged_labels.max()) + 1 if len(self.merged_labels) else 0


# --- geometry ------------------------------------------------------------------------------------


def _unit_vectors(lat_deg: np.ndarray, lng_deg: np.ndarray) -> np.ndarray:
    lat, lng = np.radians(lat_deg), np.radians(lng_deg)
    cos_lat = np.cos(lat)
    return np.column_stack((cos_lat * np.cos(lng), cos_lat * np.sin(lng), np.sin(lat)))


def _haversine_km(lat1: np.ndarray, lng1: np.ndarray, lat2: np.ndarray, lng2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km; arguments in radians. Same formula as scikit-learn's haversine."""
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def _chord_radius(eps_km: float) -> float:
    # The k-d tree works in chords of the unit sphere. A hair of slack so that no pair within
    # eps (haversine) is lost to rounding; the exact test is the haversine one afterwards.
    angle = min(eps_km / EARTH_RADIUS_KM, math.pi)
    return 2 * math.sin(angle / 2) * (1 + 1e-9) + 1e-12


@dataclass(frozen=True)
class _Points:
    lat: np.ndarray  # radians
    lng: np.ndarray  # radians
    xyz: np.ndarray


def _points(lat_deg: np.ndarray, lng_deg: np.ndarray) -> _Points:
    return _Points(np.radians(lat_deg), np.radians(lng_deg), _unit_vectors(lat_deg, lng_deg))


def _pairs_within(
    src: _Points, src_rows: np.ndarray, dst: _Points, dst_tree: cKDTree, eps_km: float, chunk_rows: int
):
    """Yield (i, j, chord) arrays of the pairs with haversine distance <= eps_km, chunk by chunk.

    ``i`` are positions in ``src`` (taken from src_rows), ``j`` positions in ``dst``; ``chord`` is
    the 3-D chord length, which orders pairs exactly as the great-circle distance does.
    """
    radius = _chord_radius(eps_km)
    # Pairs clearly inside the chord radius are within eps whatever the rounding; only the thin
    # shell around it gets the exact haversine test (computing it for every pair doubled the time).
    inner = 2 * math.sin(min(eps_km / EARTH_RADIUS_KM, math.pi) / 2) * (1 - 1e-9)
    for start in range(0, len(src_rows), chunk_rows):
        rows = src_rows[start : start + chunk_rows]
        found = cKDTree(src.xyz[rows]).sparse_distance_matrix(dst_tree, radius, output_type="ndarray")
        # The output keeps zero distances: a point is its own neighbour when src and dst coincide.
        i = rows[found["i"]]
        j = found["j"]
        chord = found["v"]
        del found
        keep = chord <= inner
        shell = np.flatnonzero(~keep)
        if len(shell):
            a, b = i[shell], j[shell]
            keep[shell] = _haversine_km(src.lat[a], src.lng[a], dst.lat[b], dst.lng[b]) <= eps_km
        yield i[keep], j[keep], chord[keep]


def _chunk_rows(n_rows: int, eps_km: float, res: int | None) -> int:
    """Rows per k-d tree query so that a chunk's candidate pairs stay within _PAIR_BUDGET."""
    if res is None:
        return max(1, min(n_rows, 4096))
    # Upper estimate of occupied cells within eps of a centre: the disk of radius
    # eps + one cell diameter over the smallest cells (about half the average hexagon area).
    reach = eps_km + 2 * max_centre_offset_km(res)
    min_area = 0.5 * h3.average_hexagon_area(res, unit="km^2")
    per_row = max(1.0, math.pi * reach**2 / min_area)
    return int(max(256, min(n_rows, _PAIR_BUDGET / per_row)))


# --- the clustering ------------------------------------------------------------------------------


def _validate(cells: np.ndarray, weights: np.ndarray, eps_km: float, min_weight: float) -> None:
    if cells.ndim != 1 or weights.ndim != 1 or len(cells) != len(weights):
        raise ValueError(
            f"cells and weights must be 1-D arrays of the same length, got {cells.shape} and {weights.shape}"
        )
    if not (math.isfinite(eps_km) and eps_km > 0):
        raise ValueError(f"eps_km must be a positive number, got {eps_km!r}")
    if not (math.isfinite(min_weight) and min_weight > 0):
        raise ValueError(f"min_weight must be a positive number, got {min_weight!r}")
    bad = ~np.isfinite(weights) | (weights < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"weights must be finite and >= 0: row {row} (cell {cells[row]}) has {float(weights[row])!r}"
        )


def dbscan_points(
    lat: np.ndarray,
    lng: np.ndarray,
    weights: np.ndarray,
    eps_km: float,
    min_weight: float,
    order_key: np.ndarray | None = None,
    chunk_rows: int = 4096,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The method on weighted points (degrees).

    Returns (labels, is_core, neighbourhood_weight, cluster_weights), as in ClusterResult.

    ``order_key`` (distinct int64, default the row number) breaks ties between clusters of equal
    weight. dbscan_cells calls this on cell centres with the cell ids as order key.
    """
    w = np.asarray(weights, dtype=np.float64)
    n = len(w)
    key = np.arange(n, dtype=np.int64) if order_key is None else np.asarray(order_key, dtype=np.int64)
    if n == 0:
        empty_f = np.zeros(0, dtype=np.float64)
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool), empty_f, empty_f
    pts = _points(np.asarray(lat, dtype=np.float64), np.asarray(lng, dtype=np.float64))
    all_rows = np.arange(n, dtype=np.int64)

    # 1. neighbourhood weights
    tree = cKDTree(pts.xyz)
    nbr_weight = np.zeros(n, dtype=np.float64)  # the query returns each point itself too
    n_pairs = 0
    for i, j, _ in _pairs_within(pts, all_rows, pts, tree, eps_km, chunk_rows):
        nbr_weight += np.bincount(i, weights=w[j], minlength=n)
        n_pairs += len(i)
    is_core = nbr_weight >= min_weight
    core_rows = np.flatnonzero(is_core)
    log.info(
        "dbscan: %d points, %d neighbour pairs within %.3g km, %d core", n, n_pairs, eps_km, len(core_rows)
    )

    labels = np.full(n, NOISE, dtype=np.int64)
    if len(core_rows) == 0:
        return labels, is_core, nbr_weight, np.zeros(0, dtype=np.float64)

    # 2. connected components of core points
    core_pts = _Points(pts.lat[core_rows], pts.lng[core_rows], pts.xyz[core_rows])
    core_tree = cKDTree(core_pts.xyz)
    component = _core_components(core_pts, core_tree, eps_km, chunk_rows)
    raw = np.full(n, NOISE, dtype=np.int64)
    raw[core_rows] = component

    # 3. border points join the component of their nearest core point. On an exact tie of
    #    distances the component ranked first by core weight (then smallest order key) wins: the
    #    final ids are not known yet, since they count the border weight too (see notes).
    n_raw = int(component.max()) + 1
    comp_rank = _rank_by_weight(component, w[core_rows], key[core_rows], n_raw)
    noncore_rows = np.flatnonzero(~is_core)
    for i, j, chord in _pairs_within(pts, noncore_rows, core_pts, core_tree, eps_km, chunk_rows):
        rank = comp_rank[component[j]]
        order = np.lexsort((rank, chord, i))
        i, rank = i[order], rank[order]
        first = np.ones(len(i), dtype=bool)
        first[1:] = i[1:] != i[:-1]
        raw[i[first]] = component[j[order][first]]

    clustered = raw >= 0
    final_of_raw = _rank_by_weight(raw[clustered], w[clustered], key[clustered], n_raw)
    raw_weight = np.bincount(raw[clustered], weights=w[clustered], minlength=n_raw)
    labels[clustered] = final_of_raw[raw[clustered]]
    return labels, is_core, nbr_weight, raw_weight[np.argsort(final_of_raw)]


def _rank_by_weight(group: np.ndarray, weight: np.ndarray, key: np.ndarray, n_groups: int) -> np.ndarray:
    """Rank (0 = first) of each of n_groups groups: by decreasing total weight of its rows, then
    by its smallest key. Every group must have at least one row."""
    total = np.bincount(group, weights=weight, minlength=n_groups)
    min_key = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(min_key, group, key)
    rank = np.empty(n_groups, dtype=np.int64)
    rank[np.lexsort((min_key, -total))] = np.arange(n_groups, dtype=np.int64)
    return rank


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    graph = sparse.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _core_components(core_pts: _Points, core_tree: cKDTree, eps_km: float, chunk_rows: int) -> np.ndarray:
    """Connected components of the core points (edges: pairs within eps).

    Dense cities give ~1000 core neighbours per cell at res 8, too many edges to hold at once; so
    each chunk's edges are replaced by a spanning star per chunk component (touched node ->
    the component's smallest node), which keeps the connectivity with at most one edge per
    touched node.
    """
    n = len(core_pts.lat)
    star_a: list[np.ndarray] = []
    star_b: list[np.ndarray] = []
    rows = np.arange(n, dtype=np.int64)
    for i, j, _ in _pairs_within(core_pts, rows, core_pts, core_tree, eps_km, chunk_rows):
        upper = i < j  # each undirected edge once; also drops each point's pair with itself
        if not upper.any():
            continue
        a, b = i[upper], j[upper]
        label = _components(n, a, b)
        touched = np.flatnonzero(np.bincount(np.concatenate((a, b)), minlength=n) > 0)
        _, first = np.unique(label, return_index=True)  # smallest node of each component
        star_a.append(touched.astype(np.int32))
        star_b.append(first[label[touched]].astype(np.int32))
    if not star_a:
        return np.arange(n, dtype=np.int64)
    return _components(n, np.concatenate(star_a), np.concatenate(star_b)).astype(np.int64)


def dbscan_cells(cells: np.ndarray, weights: np.ndarray, eps_km: float, min_weight: float) -> ClusterResult:
    """Cluster one layer's weighted H3 cells (see the module docstring for the exact rules).

    ``cells``: int64 H3 ids (any resolution, normally one); repeated cells have their weights
    summed. ``weights``: float64 >= 0. Raises ValueError naming the row of a bad cell or weight.
    """
    cells_a = np.asarray(cells, dtype=np.int64).ravel() if np.size(cells) else np.zeros(0, dtype=np.int64)
    weights_a = np.asarray(weights, dtype=np.float64).ravel() if np.size(weights) else np.zeros(0)
    _validate(cells_a, weights_a, float(eps_km), float(min_weight))
    uniq, inverse = np.unique(cells_a, return_inverse=True)
    w = np.bincount(inverse, weights=weights_a, minlength=len(uniq)).astype(np.float64)
    lat, lng = cell_centres(uniq)
    bad = np.isnan(lat)
    if bad.any():
        cell = int(uniq[np.flatnonzero(bad)[0]])
        row = int(np.flatnonzero(cells_a == cell)[0])
        raise ValueError(f"row {row}: {cell} is not a valid H3 cell id")
    res = max((h3.get_resolution(int(c)) for c in uniq[:: max(1, len(uniq) // 1000)]), default=None)
    labels, is_core, nbr_weight, cluster_weights = dbscan_points(
        lat,
        lng,
        w,
        float(eps_km),
        float(min_weight),
        order_key=uniq,
        chunk_rows=_chunk_rows(len(uniq), float(eps_km), res),
    )
    log.info(
        "dbscan_cells: %d cells, weight %.6g, %d clusters holding %.6g, noise %.6g",
        len(uniq),
        w.sum(),
        len(cluster_weights),
        cluster_weights.sum(),
        w[labels == NOISE].sum(),
    )
    return ClusterResult(
        uniq, w, nbr_weight, is_core, labels, cluster_weights, float(eps_km), float(min_weight)
    )


# --- cells decided on the exact points inside them -----------------------------------------------

# Slack (km) added to every measured unit radius, so that no rounding makes the bounds call a pair
# certain when the exact test could decide otherwise; pairs inside the slack get the exact test.
_RADIUS_SLACK_KM = 1e-6


def _arc_km(chord: np.ndarray) -> np.ndarray:
    """Great-circle distance (km) of chords of the unit sphere."""
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.clip(chord / 2, 0.0, 1.0))


def _within_eps(src: _Points, a: np.ndarray, dst: _Points, b: np.ndarray, eps_km: float) -> np.ndarray:
    """Whether each pair (src[a], dst[b]) is within eps_km: the same test as _pairs_within."""
    chord = np.linalg.norm(src.xyz[a] - dst.xyz[b], axis=1)
    inner = 2 * math.sin(min(eps_km / EARTH_RADIUS_KM, math.pi) / 2) * (1 - 1e-9)
    within = chord <= inner
    shell = np.flatnonzero(~within & (chord <= _chord_radius(eps_km)))
    if len(shell):
        p, q = a[shell], b[shell]
        within[shell] = _haversine_km(src.lat[p], src.lng[p], dst.lat[q], dst.lng[q]) <= eps_km
    return within


def _csr_starts(sorted_group: np.ndarray, n_groups: int) -> np.ndarray:
    """Offsets (length n_groups + 1) of the rows of each group, rows sorted by group."""
    return np.searchsorted(sorted_group, np.arange(n_groups + 1, dtype=np.int64))


def _expand(
    a: np.ndarray, b: np.ndarray, a_starts: np.ndarray, b_starts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """All (member of group a[k], member of group b[k]) pairs, groups given by CSR offsets
    (b_starts defaults to a_starts; ``None`` for a side that is not grouped: pass np.arange)."""
    b_starts = a_starts if b_starts is None else b_starts
    na = a_starts[a + 1] - a_starts[a]
    nb = b_starts[b + 1] - b_starts[b]
    per = na * nb
    total = int(per.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pair = np.repeat(np.arange(len(a), dtype=np.int64), per)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(per) - per, per)
    nb_pair = nb[pair]
    return a_starts[a][pair] + offset // nb_pair, b_starts[b][pair] + offset % nb_pair


def _size_chunks(sizes: np.ndarray, budget: int):
    """Consecutive slices of the items whose sizes sum to at most budget each (an item larger
    than budget alone); one slice when all fit."""
    ends = np.cumsum(sizes)
    start = 0
    while start < len(sizes):
        base = int(ends[start - 1]) if start else 0
        stop = max(start + 1, int(np.searchsorted(ends, base + budget, side="right")))
        yield slice(start, stop)
        start = stop


@dataclass(frozen=True)
class _Units:
    """Groups of points (a cell's points, or one point of a cell too wide for eps)."""

    pts: _Points
    """Reference position of each unit."""
    radius: np.ndarray
    """km: every point of the unit lies within this of the reference (slack included); 2 radius <= eps."""
    starts: np.ndarray
    """CSR offsets of each unit's points (points sorted by unit)."""


def _units(cell_of_point: np.ndarray, pts: _Points, eps_km: float) -> tuple[_Units, np.ndarray]:
    """The units and the unit of each point (points sorted by cell, so units are too).

    A cell's unit is referenced at the normalised mean of its points' unit vectors, with the
    measured largest distance of a point to it as radius: tighter than the grid's bound and 0 for
    a cell holding one position. A cell with 2 radius > eps (coarse grids only) is split into one
    unit per point, so that the points of a unit are always within eps of each other."""
    n_cells = int(cell_of_point[-1]) + 1
    mean = np.column_stack(
        [np.bincount(cell_of_point, weights=pts.xyz[:, k], minlength=n_cells) for k in range(3)]
    )
    norm = np.linalg.norm(mean, axis=1, keepdims=True)
    mean = np.where(
        norm > 0, mean / np.where(norm > 0, norm, 1.0), pts.xyz[_csr_starts(cell_of_point, n_cells)[:-1]]
    )
    cell_starts = _csr_starts(cell_of_point, n_cells)[:-1]
    radius = np.maximum.reduceat(_arc_km(np.linalg.norm(pts.xyz - mean[cell_of_point], axis=1)), cell_starts)
    radius = radius * (1 + 1e-9) + _RADIUS_SLACK_KM
    wide = 2 * radius > eps_km
    if not wide.any():
        ref, unit_radius, unit_of_point = mean, radius, cell_of_point
    else:
        point_wide = wide[cell_of_point]
        new_unit = np.ones(len(cell_of_point), dtype=bool)
        new_unit[1:] = point_wide[1:] | (cell_of_point[1:] != cell_of_point[:-1])
        unit_of_point = np.cumsum(new_unit) - 1
        ref = np.where(point_wide[:, None], pts.xyz, mean[cell_of_point])[new_unit]
        unit_radius = np.where(point_wide, _RADIUS_SLACK_KM, radius[cell_of_point])[new_unit]
    n_units = int(unit_of_point[-1]) + 1
    lat = np.arcsin(np.clip(ref[:, 2], -1.0, 1.0))
    lng = np.arctan2(ref[:, 1], ref[:, 0])
    units = _Units(_Points(lat, lng, ref), unit_radius, _csr_starts(unit_of_point, n_units))
    return units, unit_of_point


def _unit_pairs(
    src: _Units, rows: np.ndarray, dst: _Units, dst_tree: cKDTree, eps_km: float, chunk_rows: int
):
    """Yield (i, j, sure, maybe) per chunk for the pairs of src units (from rows) and dst units whose
    references lie within eps_km + both largest radii: ``sure`` when every point pair of the two
    units is within eps_km, ``maybe`` when some might be (for the rest, none is)."""
    reach = eps_km + float(src.radius.max()) + float(dst.radius.max())
    for i, j, chord in _pairs_within(src.pts, rows, dst.pts, dst_tree, reach, chunk_rows):
        d = _arc_km(chord)
        spread = src.radius[i] + dst.radius[j]
        sure = d + spread <= eps_km
        maybe = ~sure & (d - spread <= eps_km)
        yield i, j, sure, maybe


def _blocks(children: _Units, new_block: np.ndarray) -> _Units:
    """Runs of consecutive children (a run starts where new_block is True), each referenced at the
    normalised mean of its children's references, with the radius that covers every child's
    points; ``starts`` are offsets into the children."""
    block_of_child = np.cumsum(new_block) - 1
    n_blocks = int(block_of_child[-1]) + 1
    xyz = children.pts.xyz
    mean = np.column_stack(
        [np.bincount(block_of_child, weights=xyz[:, k], minlength=n_blocks) for k in range(3)]
    )
    norm = np.linalg.norm(mean, axis=1, keepdims=True)
    first = np.flatnonzero(new_block)
    mean = np.where(norm > 0, mean / np.where(norm > 0, norm, 1.0), xyz[first])
    reach = _arc_km(np.linalg.norm(xyz - mean[block_of_child], axis=1)) + children.radius
    radius = np.maximum.reduceat(reach, first)
    radius = radius * (1 + 1e-9) + _RADIUS_SLACK_KM
    lat = np.arcsin(np.clip(mean[:, 2], -1.0, 1.0))
    lng = np.arctan2(mean[:, 1], mean[:, 0])
    return _Units(_Points(lat, lng, mean), radius, np.r_[first, len(new_block)])


def _new_run(keys: np.ndarray) -> np.ndarray:
    new = np.ones(len(keys), dtype=bool)
    new[1:] = keys[1:] != keys[:-1]
    return new


def _classify(src: _Units, i: np.ndarray, dst: _Units, j: np.ndarray, eps_km: float):
    """(sure, maybe) for pairs of units: every point pair within eps_km / some may be."""
    d = _arc_km(np.linalg.norm(src.pts.xyz[i] - dst.pts.xyz[j], axis=1))
    spread = src.radius[i] + dst.radius[j]
    sure = d + spread <= eps_km
    return sure, ~sure & (d - spread <= eps_km)


def _neighbourhood_bounds(
    levels: list[_Units],
    level_weights: list[np.ndarray],
    min_weight: float,
    eps_km: float,
    chunk_rows: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(low, high) per unit (the last level): the weight surely within eps of every point of the
    unit, and the weight possibly within eps of one of them. ``levels`` run from the coarsest
    blocks to the units, each level's ``starts`` pointing into the next. The coarsest pairs come
    from a k-d tree; then, only for the groups whose bounds leave min_weight between them, the
    undecided pairs are refined one side at a time (target blocks into their children, then
    source blocks into theirs) down to unit pairs. Also returns the unit pairs still undecided,
    (i, j), of the units left open."""
    src = dst = 0
    n = len(levels[0].radius)
    low = np.zeros(n)
    maybe_w = np.zeros(n)
    pairs_i: list[np.ndarray] = []
    pairs_j: list[np.ndarray] = []
    tree = cKDTree(levels[0].pts.xyz)
    for i, j, sure, maybe in _unit_pairs(levels[0], np.arange(n), levels[0], tree, eps_km, chunk_rows):
        low += np.bincount(i[sure], weights=level_weights[0][j[sure]], minlength=n)
        maybe_w += np.bincount(i[maybe], weights=level_weights[0][j[maybe]], minlength=n)
        pairs_i.append(i[maybe])
        pairs_j.append(j[maybe])
    high = low + maybe_w
    i, j = np.concatenate(pairs_i), np.concatenate(pairs_j)
    last = len(levels) - 1
    while src < last or dst < last:
        open_src = (low < min_weight) & (high >= min_weight)
        keep = open_src[i]
        i, j = i[keep], j[keep]
        if dst <= src:  # refine the target side
            i, j = _expand(i, j, np.arange(len(levels[src].radius) + 1), levels[dst].starts)
            dst += 1
        else:  # refine the source side: children start from their parent's bounds
            i, j = _expand(i, j, levels[src].starts, np.arange(len(levels[dst].radius) + 1))
            counts = np.diff(levels[src].starts)
            low, high = np.repeat(low, counts), np.repeat(high, counts)
            was_open = np.repeat(open_src, counts)
            src += 1
            high = np.where(was_open, low, high)  # re-summed below from the children's pairs
        sure, maybe = _classify(levels[src], i, levels[dst], j, eps_km)
        n = len(levels[src].radius)
        w = level_weights[dst]
        refined = np.bincount(i, minlength=n) > 0
        low = low + np.bincount(i[sure], weights=w[j[sure]], minlength=n)
        high = np.where(refined, low + np.bincount(i[maybe], weights=w[j[maybe]], minlength=n), high)
        i, j = i[maybe], j[maybe]
    open_src = (low < min_weight) & (high >= min_weight)
    keep = open_src[i]
    return low, high, i[keep], j[keep]


def _is_sorted(cells: np.ndarray, lat: np.ndarray, lng: np.ndarray) -> bool:
    """Whether rows are in (cell, lat, lng) order (ties allowed)."""
    dc, dla = np.diff(cells), np.diff(lat)
    return bool(np.all((dc > 0) | ((dc == 0) & ((dla > 0) | ((dla == 0) & (np.diff(lng) >= 0))))))


def dbscan_located(
    cells: np.ndarray,
    lat: np.ndarray,
    lng: np.ndarray,
    weights: np.ndarray,
    eps_km: float,
    min_weight: float,
) -> ClusterResult:
    """Cluster one layer's H3 cells on the exact weighted points inside them.

    One row per point: its H3 cell (int64), position (degrees) and weight (float64 >= 0); rows of
    the same (cell, lat, lng) are summed. The points are clustered by weighted DBSCAN exactly as
    dbscan_points does; each cell then takes one decision (module docstring, "Cells decided on
    their points"): it is core when it holds a core point and belongs to its core points' cluster;
    otherwise it takes the label (a cluster, or noise) that holds the most of its weight.

    The grid decides wherever its error bound can: every point of a cell lies within a measured
    radius of the cell's reference, so the weight within eps of any point of a cell is bracketed
    by sums over cells, and two cells are certainly linked or apart; exact point distances are
    computed only for the cells whose bracket straddles min_weight and the core cell pairs
    whose distance straddles eps. neighbourhood_weight holds, per cell, the largest exact
    neighbourhood weight of its points where that was computed, else the bound that decided
    (so is_core == neighbourhood_weight >= min_weight).
    """
    cells_a = np.asarray(cells, dtype=np.int64).ravel() if np.size(cells) else np.zeros(0, dtype=np.int64)
    lat_a = np.asarray(lat, dtype=np.float64).ravel() if np.size(lat) else np.zeros(0)
    lng_a = np.asarray(lng, dtype=np.float64).ravel() if np.size(lng) else np.zeros(0)
    weights_a = np.asarray(weights, dtype=np.float64).ravel() if np.size(weights) else np.zeros(0)
    eps_km, min_weight = float(eps_km), float(min_weight)
    _validate(cells_a, weights_a, eps_km, min_weight)
    if len(lat_a) != len(cells_a) or len(lng_a) != len(cells_a):
        raise ValueError(
            f"cells, lat and lng must have the same length, got {len(cells_a)}, {len(lat_a)}, {len(lng_a)}"
        )
    bad = ~(np.isfinite(lat_a) & np.isfinite(lng_a) & (np.abs(lat_a) <= 90) & (np.abs(lng_a) <= 180))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"row {row} (cell {cells_a[row]}): invalid position ({lat_a[row]!r}, {lng_a[row]!r})"
        )
    if len(cells_a) == 0:
        empty = np.zeros(0)
        return ClusterResult(
            cells_a, empty, empty, np.zeros(0, bool), cells_a.copy(), empty, eps_km, min_weight
        )

    # distinct points, sorted by (cell, lat, lng): the order key of every tie below
    if _is_sorted(cells_a, lat_a, lng_a):  # int_cells_clustered reads them in this order
        order = np.arange(len(cells_a))
        c, la, ln = cells_a, lat_a, lng_a
    else:
        order = np.lexsort((lng_a, lat_a, cells_a))
        c, la, ln = cells_a[order], lat_a[order], lng_a[order]
    new_point = np.ones(len(c), dtype=bool)
    new_point[1:] = (c[1:] != c[:-1]) | (la[1:] != la[:-1]) | (ln[1:] != ln[:-1])
    w = np.bincount(np.cumsum(new_point) - 1, weights=weights_a[order])
    c, la, ln = c[new_point], la[new_point], ln[new_point]
    n = len(w)
    key = np.arange(n, dtype=np.int64)
    new_cell = np.ones(n, dtype=bool)
    new_cell[1:] = c[1:] != c[:-1]
    uniq = c[new_cell]
    cell_of_point = np.cumsum(new_cell) - 1
    cell_w = np.bincount(cell_of_point, weights=w)
    sample = uniq[:: max(1, len(uniq) // 1000)]
    bad_cell = next((int(x) for x in sample if not h3.is_valid_cell(int(x))), None)
    if bad_cell is not None:
        raise ValueError(
            f"row {int(np.flatnonzero(cells_a == bad_cell)[0])}: {bad_cell} is not a valid H3 cell id"
        )
    res = max(h3.get_resolution(int(x)) for x in sample)

    pts = _points(la, ln)
    units, unit_of_point = _units(cell_of_point, pts, eps_km)
    n_units = len(units.radius)
    unit_w = np.bincount(unit_of_point, weights=w, minlength=n_units)

    # 1. core points. Bounds on the neighbourhood weight of every point first per block (units
    #    grouped two resolutions up: dense cities and empty countryside are decided there), then
    #    per unit for the units of undecided blocks, then exact sums for the points of the units
    #    whose bounds straddle min_weight.
    unit_cells = uniq[cell_of_point[units.starts[:-1]]]
    fine = _blocks(units, _new_run(unit_cells >> 3 * (15 - max(0, res - 1))))
    coarse = _blocks(fine, _new_run(unit_cells[fine.starts[:-1]] >> 3 * (15 - max(0, res - 2))))
    fine_w = np.add.reduceat(unit_w, fine.starts[:-1])
    coarse_w = np.add.reduceat(fine_w, coarse.starts[:-1])
    low, high, open_i, open_j = _neighbourhood_bounds(
        [coarse, fine, units],
        [coarse_w, fine_w, unit_w],
        min_weight,
        eps_km,
        _chunk_rows(len(coarse_w), eps_km, max(0, res - 2)),
    )
    open_units = np.flatnonzero((low < min_weight) & (high >= min_weight))
    point_nbr = np.where(low >= min_weight, low, high)[unit_of_point]
    n_open_pairs = len(open_i)
    if len(open_units):
        # point x unit first (a point is a unit of radius 0), then point x point where still open;
        # both expanded _PAIR_BUDGET pairs at a time (at scale 5 of make bench the point pairs of
        # one layer were 216 M), summed chunk by chunk (one chunk: the same sums as unchunked)
        single = np.arange(n + 1, dtype=np.int64)
        unit_rows = np.arange(n_units + 1, dtype=np.int64)
        point_units = _Units(pts, np.zeros(n), single)
        open_sizes = units.starts[open_i + 1] - units.starts[open_i]

        def point_unit_pairs():
            for part in _size_chunks(open_sizes, _PAIR_BUDGET):
                p, v = _expand(open_i[part], open_j[part], units.starts, unit_rows)
                yield (p, v, *_classify(point_units, p, units, v, eps_km))

        sure_w, maybe_w = np.zeros(n), np.zeros(n)
        for p, v, sure, maybe in point_unit_pairs():
            sure_w += np.bincount(p[sure], weights=unit_w[v[sure]], minlength=n)
            maybe_w += np.bincount(p[maybe], weights=unit_w[v[maybe]], minlength=n)
        exact = low[unit_of_point] + sure_w
        point_high = exact + maybe_w
        # a point whose own bounds decide keeps the deciding bound
        exact = np.where(point_high < min_weight, point_high, exact)
        point_undecided = (exact < min_weight) & (point_high >= min_weight)
        for p, v, _, maybe in point_unit_pairs():
            keep = maybe & point_undecided[p]
            p, v = p[keep], v[keep]
            for part in _size_chunks(units.starts[v + 1] - units.starts[v], _PAIR_BUDGET):
                pp, qq = _expand(p[part], v[part], single, units.starts)
                within = _within_eps(pts, pp, pts, qq, eps_km)
                exact += np.bincount(pp[within], weights=w[qq[within]], minlength=n)
        in_open = np.zeros(n_units, dtype=bool)
        in_open[open_units] = True
        point_open = in_open[unit_of_point]
        point_nbr[point_open] = exact[point_open]
    core_pt = point_nbr >= min_weight

    labels = np.full(len(uniq), NOISE, dtype=np.int64)
    cell_first = np.flatnonzero(new_cell)
    cell_nbr = np.maximum.reduceat(point_nbr, cell_first)
    cell_core = np.bincount(cell_of_point[core_pt], minlength=len(uniq)) > 0
    core_rows = np.flatnonzero(core_pt)
    log.info(
        "dbscan_located: %d points in %d cells (%d units, %d blocks); %d units decided on exact "
        "distances (%d unit pairs); %d core points",
        n, len(uniq), n_units, len(coarse_w), len(open_units), n_open_pairs, len(core_rows),
    )  # fmt: skip
    if len(core_rows) == 0:
        empty = np.zeros(0)
        return ClusterResult(uniq, cell_w, cell_nbr, cell_core, labels, empty, eps_km, min_weight)

    # 2. components of the core units (a unit's core points are within eps of each other)
    core_units = np.flatnonzero(np.bincount(unit_of_point[core_rows], minlength=n_units) > 0)
    core_unit_of = np.full(n_units, -1, dtype=np.int64)
    core_unit_of[core_units] = np.arange(len(core_units), dtype=np.int64)
    core_unit_of_core = core_unit_of[unit_of_point[core_rows]]
    sub = _Units(
        _Points(units.pts.lat[core_units], units.pts.lng[core_units], units.pts.xyz[core_units]),
        units.radius[core_units],
        _csr_starts(core_unit_of_core, len(core_units)),
    )
    component = _core_unit_components(sub, unit_cells[core_units], core_rows, pts, eps_km, res)
    raw = np.full(n, NOISE, dtype=np.int64)
    raw[core_rows] = component[core_unit_of[unit_of_point[core_rows]]]
    n_raw = int(component.max()) + 1
    comp_rank = _rank_by_weight(raw[core_rows], w[core_rows], key[core_rows], n_raw)

    # 3. every other point joins the cluster of its nearest core point (ties: comp_rank)
    #    (first per unit: a unit whose reference is farther than eps + both radii from every core
    #    unit's holds only noise, and its points need no query)
    border = np.flatnonzero(~core_pt)
    if len(border):
        reach = eps_km + float(units.radius.max()) + float(sub.radius.max())
        candidates = np.flatnonzero(np.bincount(unit_of_point[border], minlength=n_units))
        dist, _ = cKDTree(sub.pts.xyz).query(
            units.pts.xyz[candidates], k=1, distance_upper_bound=_chord_radius(reach)
        )
        near = np.isfinite(dist)
        near[near] = _arc_km(dist[near]) - units.radius[candidates[near]] - float(sub.radius.max()) <= eps_km
        reachable = np.zeros(n_units, dtype=bool)
        reachable[candidates[near]] = True
        border = border[reachable[unit_of_point[border]]]
    if len(border):
        raw[border] = _nearest_core_component(pts, border, core_rows, raw[core_rows], comp_rank, eps_km)

    # 4. one decision per cell: a cell holding core points takes their cluster (the heaviest, should a
    #    split wide cell hold several); any other cell the label holding most of its weight
    cell_raw = np.minimum.reduceat(raw, cell_first)
    mixed = np.flatnonzero(cell_raw != np.maximum.reduceat(raw, cell_first))
    if len(mixed):  # only cells whose points carry different labels need the weights
        is_mixed = np.zeros(len(uniq), dtype=bool)
        is_mixed[mixed] = True
        rows = np.flatnonzero(is_mixed[cell_of_point])
        by_label = rows[np.lexsort((raw[rows], cell_of_point[rows]))]
        g_cell, g_raw = cell_of_point[by_label], raw[by_label]
        grp_new = np.ones(len(rows), dtype=bool)
        grp_new[1:] = (g_cell[1:] != g_cell[:-1]) | (g_raw[1:] != g_raw[:-1])
        grp = np.cumsum(grp_new) - 1
        g_cell, g_raw = g_cell[grp_new], g_raw[grp_new]
        g_weight = np.bincount(grp, weights=w[by_label])
        g_core_weight = np.bincount(grp, weights=np.where(core_pt, w, 0.0)[by_label])
        g_has_core = np.bincount(grp, weights=core_pt[by_label].astype(np.float64)) > 0
        g_rank = np.where(g_raw >= 0, comp_rank[np.maximum(g_raw, 0)], n_raw)
        best = np.lexsort((g_rank, -g_weight, -g_core_weight, ~g_has_core, g_cell))
        first = np.ones(len(best), dtype=bool)
        first[1:] = g_cell[best][1:] != g_cell[best][:-1]
        cell_raw[mixed] = g_raw[best][first]  # mixed cells in order, since g_cell sorts first

    # 5. final ids: by decreasing weight of the cells, then smallest cell id (clusters left without
    #    a cell, possible only when a wide cell is split, disappear)
    clustered = cell_raw >= 0
    present = np.unique(cell_raw[clustered])
    dense = np.searchsorted(present, cell_raw[clustered])
    final = _rank_by_weight(dense, cell_w[clustered], np.flatnonzero(clustered), len(present))
    labels[clustered] = final[dense]
    cluster_weights = np.bincount(labels[clustered], weights=cell_w[clustered], minlength=len(present))
    log.info(
        "dbscan_located: %d clusters holding %.6g of %.6g",
        len(present), cluster_weights.sum(), cell_w.sum(),
    )  # fmt: skip
    return ClusterResult(uniq, cell_w, cell_nbr, cell_core, labels, cluster_weights, eps_km, min_weight)


def _core_unit_components(
    sub: _Units, sub_cells: np.ndarray, core_rows: np.ndarray, pts: _Points, eps_km: float, res: int
) -> np.ndarray:
    """Connected components of the units holding core points (``sub``, its starts pointing into
    core_rows), two being linked when a core point of one lies within eps of a core point of
    the other.

    Core units are first grouped two resolutions up; a group whose radius is at most eps / 2 is a
    clique (one node), any other unit is a node of its own. Node pairs the bounds call certain
    are linked (spanning stars per chunk, as _core_components); a pair left open is refined into
    unit pairs, then core point pairs on exact distances, and only when it would join two
    components of the certain links."""
    run = _new_run(sub_cells >> 3 * (15 - max(0, res - 2)))
    groups = _blocks(sub, run)
    wide = 2 * groups.radius > eps_km
    if wide.any():
        run |= np.repeat(wide, np.diff(groups.starts))  # wide groups: one node per unit
        groups = _blocks(sub, run)
    n_nodes = len(groups.radius)
    tree = cKDTree(groups.pts.xyz)
    star_a: list[np.ndarray] = []
    star_b: list[np.ndarray] = []
    open_a: list[np.ndarray] = []
    open_b: list[np.ndarray] = []
    rows = np.arange(n_nodes, dtype=np.int64)
    chunk_rows = _chunk_rows(n_nodes, eps_km, max(0, res - 2))
    for i, j, sure, maybe in _unit_pairs(groups, rows, groups, tree, eps_km, chunk_rows):
        upper = i < j
        sure &= upper
        maybe &= upper
        a, b = i[sure], j[sure]
        if len(a):
            label = _components(n_nodes, a, b)
            touched = np.flatnonzero(np.bincount(np.concatenate((a, b)), minlength=n_nodes) > 0)
            _, first = np.unique(label, return_index=True)
            star_a.append(touched)
            star_b.append(first[label[touched]])
            maybe &= label[i] != label[j]  # already joined through certain links of this chunk
        open_a.append(i[maybe])
        open_b.append(j[maybe])
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)  # noqa: E731
    a, b = cat(star_a), cat(star_b)
    oa, ob = cat(open_a), cat(open_b)
    certain = _components(n_nodes, a, b)
    across = certain[oa] != certain[ob]
    oa, ob = oa[across], ob[across]
    if len(oa):
        ua, ub = _expand(oa, ob, groups.starts)  # unit pairs of the open node pairs
        sure, maybe = _classify(sub, ua, sub, ub, eps_km)
        node_of_unit = np.repeat(np.arange(n_nodes), np.diff(groups.starts))
        a = np.concatenate((a, node_of_unit[ua[sure]]))
        b = np.concatenate((b, node_of_unit[ub[sure]]))
        certain = _components(n_nodes, a, b)
        ma, mb = ua[maybe], ub[maybe]
        across = certain[node_of_unit[ma]] != certain[node_of_unit[mb]]
        ma, mb = ma[across], mb[across]
        pa, pb = _expand(ma, mb, sub.starts)  # core point pairs of the open unit pairs
        pair = np.repeat(np.arange(len(ma)), np.diff(sub.starts)[ma] * np.diff(sub.starts)[mb])
        linked = np.unique(pair[_within_eps(pts, core_rows[pa], pts, core_rows[pb], eps_km)])
        a = np.concatenate((a, node_of_unit[ma[linked]]))
        b = np.concatenate((b, node_of_unit[mb[linked]]))
    node_component = _components(n_nodes, a, b).astype(np.int64)
    return np.repeat(node_component, np.diff(groups.starts))


def _nearest_core_component(
    pts: _Points,
    rows: np.ndarray,
    core_rows: np.ndarray,
    core_component: np.ndarray,
    comp_rank: np.ndarray,
    eps_km: float,
) -> np.ndarray:
    """Component of the nearest core point within eps of each point in rows (NOISE if none); on
    an exact tie of distances, the component ranked first (comp_rank), as dbscan_points."""
    core_pts = _Points(pts.lat[core_rows], pts.lng[core_rows], pts.xyz[core_rows])
    tree = cKDTree(core_pts.xyz)
    k = min(2, len(core_rows))
    dist, idx = tree.query(pts.xyz[rows], k=[1, 2][:k], distance_upper_bound=_chord_radius(eps_km))
    out = np.full(len(rows), NOISE, dtype=np.int64)
    found = np.flatnonzero(np.isfinite(dist[:, 0]))
    ok = _within_eps(pts, rows[found], core_pts, idx[found, 0], eps_km)
    found = found[ok]
    out[found] = core_component[idx[found, 0]]
    if k == 2:
        tied = found[dist[found, 1] == dist[found, 0]]
        if len(tied):
            for i, j, chord in _pairs_within(pts, rows[tied], core_pts, tree, eps_km, 4096):
                rank = comp_rank[core_component[j]]
                order = np.lexsort((rank, chord, i))
                i, j = i[order], j[order]
                first = np.ones(len(i), dtype=bool)
                first[1:] = i[1:] != i[:-1]
                out[np.searchsorted(rows, i[first])] = core_component[j[first]]
    return out


# --- merging the layers --------------------------------------------------------------------------


def _layer_table(name: str, cells: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct clustered cells of one layer and their labels; noise dropped."""
    c = np.asarray(cells, dtype=np.int64).ravel()
    lab = np.asarray(labels, dtype=np.int64).ravel()
    if len(c) != len(lab):
        raise ValueError(f"{name}: {len(c)} cells but {len(lab)} labels")
    keep = lab >= 0
    c, lab = c[keep], lab[keep]
    order = np.lexsort((lab, c))
    c, lab = c[order], lab[order]
    dup = np.flatnonzero(c[1:] == c[:-1])
    conflict = dup[lab[dup] != lab[dup + 1]]
    if len(conflict):
        k = conflict[0]
        raise ValueError(f"{name}: cell {c[k]} has two cluster labels ({lab[k]} and {lab[k + 1]})")
    first = np.ones(len(c), dtype=bool)
    first[1:] = c[1:] != c[:-1]
    return c[first], lab[first]


def merge_layers(
    patent_cells: np.ndarray,
    patent_labels: np.ndarray,
    publication_cells: np.ndarray,
    publication_labels: np.ndarray,
) -> MergeResult:
    """Merge patent and publication clusters that share cells.

    A patent cluster and a publication cluster **overlap** when at least one H3 cell is in both.
    Merged clusters are the connected components of the overlap graph (so A-B-C chains end up
    in one cluster); a cluster overlapping nothing is a merged cluster on its own. Noise cells
    (label < 0) are ignored. Merged ids run from 0 by the smallest cell id of each merged cluster.
    Both layers must use the same H3 resolution, otherwise shared cells mean nothing.
    """
    p_cells, p_lab = _layer_table("patents", patent_cells, patent_labels)
    a_cells, a_lab = _layer_table("publications", publication_cells, publication_labels)
    res = {h3.get_resolution(int(c)) for c in (p_cells[:1].tolist() + a_cells[:1].tolist())}
    if len(res) > 1:
        raise ValueError(f"patent and publication cells have different H3 resolutions: {sorted(res)}")

    p_ids, p_node = np.unique(p_lab, return_inverse=True)
    a_ids, a_node = np.unique(a_lab, return_inverse=True)
    n_p, n_a = len(p_ids), len(a_ids)
    cells = np.union1d(p_cells, a_cells)
    patent_node = np.full(len(cells), -1, dtype=np.int64)
    patent_node[np.searchsorted(cells, p_cells)] = p_node
    pub_node = np.full(len(cells), -1, dtype=np.int64)
    pub_node[np.searchsorted(cells, a_cells)] = n_p + a_node

    shared = (patent_node >= 0) & (pub_node >= 0)
    graph = sparse.coo_matrix(
        (np.ones(int(shared.sum()), dtype=np.int8), (patent_node[shared], pub_node[shared])),
        shape=(n_p + n_a, n_p + n_a),
    )
    _, component = connected_components(graph, directed=False)
    # Every cell reaches one node: its patent cluster if any, else its publication cluster. A cell
    # in both links the two nodes, so both give the same component: one merged cluster per cell.
    node = np.where(patent_node >= 0, patent_node, pub_node)
    comp_of_cell = component[node]
    # cells are sorted, so the first cell of each component is its smallest cell id
    _, first_pos = np.unique(comp_of_cell, return_index=True)
    comps_by_first_cell = comp_of_cell[np.sort(first_pos)]
    merged_of_comp = np.full(int(component.max()) + 1 if len(component) else 0, -1, dtype=np.int64)
    merged_of_comp[comps_by_first_cell] = np.arange(len(comps_by_first_cell), dtype=np.int64)
    merged = merged_of_comp[comp_of_cell]

    member_merged = np.concatenate((merged_of_comp[component[:n_p]], merged_of_comp[component[n_p:]]))
    member_layer = np.array(["patents"] * n_p + ["publications"] * n_a, dtype=object)
    member_cluster = np.concatenate((p_ids, a_ids)).astype(np.int64)
    order = np.lexsort((member_cluster, member_layer == "publications", member_merged))
    log.info(
        "merge_layers: %d patent + %d publication clusters -> %d merged clusters over %d cells",
        n_p,
        n_a,
        len(comps_by_first_cell),
        len(cells),
    )
    return MergeResult(
        cells=cells,
        merged_labels=merged,
        patent_labels=np.where(patent_node >= 0, p_ids[np.maximum(patent_node, 0)] if n_p else -1, -1),
        publication_labels=np.where(pub_node >= 0, a_ids[np.maximum(pub_node - n_p, 0)] if n_a else -1, -1),
        member_merged=member_merged[order],
        member_layer=member_layer[order],
        member_cluster=member_cluster[order],
    )
