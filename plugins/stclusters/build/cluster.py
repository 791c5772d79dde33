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
    core_weight = np.bincount(component, weights=w[core_rows], minlength=n_raw)
    comp_min_key = np.full(n_raw, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(comp_min_key, component, key[core_rows])
    comp_rank = np.empty(n_raw, dtype=np.int64)
    comp_rank[np.lexsort((comp_min_key, -core_weight))] = np.arange(n_raw, dtype=np.int64)
    noncore_rows = np.flatnonzero(~is_core)
    for i, j, chord in _pairs_within(pts, noncore_rows, core_pts, core_tree, eps_km, chunk_rows):
        rank = comp_rank[component[j]]
        order = np.lexsort((rank, chord, i))
        i, rank = i[order], rank[order]
        first = np.ones(len(i), dtype=bool)
        first[1:] = i[1:] != i[:-1]
        raw[i[first]] = component[j[order][first]]

    clustered = raw >= 0
    raw_weight = np.bincount(raw[clustered], weights=w[clustered], minlength=n_raw)
    raw_min_key = np.full(n_raw, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(raw_min_key, raw[clustered], key[clustered])
    order = np.lexsort((raw_min_key, -raw_weight))
    final_of_raw = np.empty(n_raw, dtype=np.int64)
    final_of_raw[order] = np.arange(n_raw, dtype=np.int64)
    labels[clustered] = final_of_raw[raw[clustered]]
    return labels, is_core, nbr_weight, raw_weight[order]


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
