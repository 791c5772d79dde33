"""Property tests of cluster.py: conservation, order independence, contiguous ids, the merge being a
partition, and equality with a brute-force O(n^2) transcription of the method's definition."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from stclusters.build.cluster import EARTH_RADIUS_KM, NOISE, dbscan_cells, dbscan_located, merge_layers
from stclusters.reference import h3grid

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Points around four towns 15-40 km apart (offsets up to ~11 km) so that clusters, bridges,
# borders and noise all occur.
TOWNS = [(10.0, 20.0), (10.15, 20.1), (10.3, 20.0), (10.1, 20.35)]
points = st.lists(
    st.tuples(
        st.sampled_from(TOWNS),
        st.floats(-0.1, 0.1),
        st.floats(-0.1, 0.1),
        # light and heavy places: light ones near heavy ones make border cells
        st.one_of(st.floats(0.01, 0.5), st.floats(5.0, 30.0)),
    ).map(lambda t: (t[0][0] + t[1], t[0][1] + t[2], t[3])),
    min_size=0,  # empty worlds included
    max_size=60,
)
eps_values = st.floats(1.0, 30.0)
# min_weight as a share of the layer's total weight, so that thresholds fit every drawn world
min_shares = st.floats(0.02, 0.35)


def _min_weight(weights: np.ndarray, share: float) -> float:
    return max(0.5, share * float(weights.sum()))


def _layer(pts: list[tuple[float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    if not pts:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    arr = np.array(pts, dtype=np.float64)
    return h3grid.cells_from_latlng(arr[:, 0], arr[:, 1], 8), arr[:, 2]


def brute_force(cells: np.ndarray, weights: np.ndarray, eps_km: float, min_weight: float):
    """The definition in cluster.py's docstring, transcribed literally with a distance matrix."""
    uniq = np.unique(cells)
    w = np.array([weights[cells == c].sum() for c in uniq])
    n = len(uniq)
    lat, lng = (np.radians(a) for a in h3grid.cell_centres(uniq))
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            h = (
                math.sin((lat[j] - lat[i]) / 2) ** 2
                + math.cos(lat[i]) * math.cos(lat[j]) * math.sin((lng[j] - lng[i]) / 2) ** 2
            )
            d[i, j] = 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))
    near = d <= eps_km
    nbr = np.array([w[near[i]].sum() for i in range(n)])
    core = nbr >= min_weight
    comp = np.full(n, -1)
    n_comp = 0
    for start in range(n):  # flood fill over core cells
        if core[start] and comp[start] < 0:
            stack, comp[start] = [start], n_comp
            while stack:
                i = stack.pop()
                for j in range(n):
                    if core[j] and near[i, j] and comp[j] < 0:
                        comp[j] = n_comp
                        stack.append(j)
            n_comp += 1
    core_w = [w[comp == k].sum() for k in range(n_comp)]
    rank = {
        k: r for r, k in enumerate(sorted(range(n_comp), key=lambda k: (-core_w[k], uniq[comp == k].min())))
    }
    raw = comp.copy()
    for i in range(n):
        cands = [j for j in range(n) if core[j] and near[i, j]]
        if not core[i] and cands:
            raw[i] = comp[min(cands, key=lambda j: (d[i, j], rank[comp[j]]))]
    total = [w[raw == k].sum() for k in range(n_comp)]
    order = sorted(range(n_comp), key=lambda k: (-total[k], uniq[raw == k].min()))
    final = {k: f for f, k in enumerate(order)}
    labels = np.array([final[k] if k >= 0 else NOISE for k in raw], dtype=np.int64)
    return uniq, nbr, core, labels, d


@settings(SETTINGS, max_examples=300)
@given(points, eps_values, min_shares)
def test_equals_brute_force_definition(pts, eps_km, share) -> None:
    cells, weights = _layer(pts)
    min_weight = _min_weight(weights, share)
    uniq, nbr, core, labels, d = brute_force(cells, weights, eps_km, min_weight)
    # keep clear of float-rounding knife edges, where two correct sums may round differently
    assume(not np.any(np.abs(d - eps_km) < 1e-9))
    assume(not np.any(np.abs(nbr - min_weight) < 1e-9 * max(1.0, min_weight)))
    result = dbscan_cells(cells, weights, eps_km, min_weight)
    assert result.cells.tolist() == uniq.tolist()
    np.testing.assert_allclose(result.neighbourhood_weight, nbr, rtol=1e-12)
    assert result.is_core.tolist() == core.tolist()
    assert result.labels.tolist() == labels.tolist()
    event(f"clusters: {min(result.n_clusters, 3)}+")
    border = (result.labels >= 0) & ~result.is_core
    event(f"border cells: {bool(border.any())}")
    near_two = [len(set(labels[(d[i] <= eps_km) & core].tolist())) > 1 for i in np.flatnonzero(border)]
    event(f"border cell near two clusters: {any(near_two)}")


def _haversine_matrix(lat_deg: np.ndarray, lng_deg: np.ndarray) -> np.ndarray:
    lat, lng = np.radians(lat_deg), np.radians(lng_deg)
    n = len(lat)
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            h = (
                math.sin((lat[j] - lat[i]) / 2) ** 2
                + math.cos(lat[i]) * math.cos(lat[j]) * math.sin((lng[j] - lng[i]) / 2) ** 2
            )
            d[i, j] = 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))
    return d


def brute_force_located(cells, lat, lng, weights, eps_km: float, min_weight: float):
    """dbscan_located's rule transcribed literally: weighted DBSCAN on the distinct points (ties
    by their rank in (cell, lat, lng) order), then per cell: core when it holds a core point,
    labelled with its core points' heaviest cluster, else with the label holding most of its
    weight (a cluster before noise, then the component ranked first); ids by cell weight."""
    keys = sorted({(int(c), float(a), float(b)) for c, a, b in zip(cells, lat, lng, strict=True)})
    w = np.array([weights[(cells == c) & (lat == a) & (lng == b)].sum() for c, a, b in keys])
    pc = np.array([k[0] for k in keys], dtype=np.int64)
    d = _haversine_matrix(np.array([k[1] for k in keys]), np.array([k[2] for k in keys]))
    n = len(keys)
    near = d <= eps_km
    nbr = np.array([w[near[i]].sum() for i in range(n)])
    core = nbr >= min_weight
    comp = np.full(n, -1)
    n_comp = 0
    for start in range(n):
        if core[start] and comp[start] < 0:
            stack, comp[start] = [start], n_comp
            while stack:
                i = stack.pop()
                for j in range(n):
                    if core[j] and near[i, j] and comp[j] < 0:
                        comp[j] = n_comp
                        stack.append(j)
            n_comp += 1
    core_w = [w[core & (comp == k)].sum() for k in range(n_comp)]
    first = [int(np.flatnonzero(comp == k)[0]) for k in range(n_comp)]
    rank = {k: r for r, k in enumerate(sorted(range(n_comp), key=lambda k: (-core_w[k], first[k])))}
    raw = comp.copy()
    for i in range(n):
        cands = [j for j in range(n) if core[j] and near[i, j]]
        if not core[i] and cands:
            raw[i] = comp[min(cands, key=lambda j: (d[i, j], rank[comp[j]]))]
    uniq = np.unique(pc)
    cell_raw, cell_core = [], []
    for c in uniq:
        m = pc == c
        cell_core.append(bool(core[m].any()))
        pick = m & core if core[m].any() else m
        tot: dict[int, float] = {}
        for k, x in zip(raw[pick].tolist(), w[pick].tolist(), strict=True):
            tot[k] = tot.get(k, 0.0) + x
        cell_raw.append(max(tot, key=lambda k: (tot[k], k >= 0, -rank[k] if k >= 0 else 0)))
    cell_raw = np.array(cell_raw)
    cell_w = np.array([w[pc == c].sum() for c in uniq])
    present = sorted(set(cell_raw.tolist()) - {-1})
    order = sorted(present, key=lambda k: (-cell_w[cell_raw == k].sum(), uniq[cell_raw == k].min()))
    final = {k: f for f, k in enumerate(order)}
    labels = np.array([final.get(k, NOISE) for k in cell_raw.tolist()], dtype=np.int64)
    return uniq, nbr, np.array(cell_core, dtype=bool), labels, d


@settings(SETTINGS, max_examples=200)
@given(points, eps_values, min_shares, st.sampled_from([6, 8]))
def test_located_equals_brute_force_definition(pts, eps_km, share, res) -> None:
    if pts:
        arr = np.array(pts, dtype=np.float64)
        lat, lng, weights = arr[:, 0], arr[:, 1], arr[:, 2]
    else:
        lat = lng = weights = np.zeros(0)
    cells = h3grid.cells_from_latlng(lat, lng, res)
    min_weight = _min_weight(weights, share)
    uniq, nbr, core, labels, d = brute_force_located(cells, lat, lng, weights, eps_km, min_weight)
    # keep clear of float-rounding knife edges, where two correct sums may round differently
    assume(not np.any(np.abs(d - eps_km) < 1e-9))
    assume(not np.any(np.abs(nbr - min_weight) < 1e-9 * max(1.0, min_weight)))
    result = dbscan_located(cells, lat, lng, weights, eps_km, min_weight)
    assert result.cells.tolist() == uniq.tolist()
    assert result.is_core.tolist() == core.tolist()
    assert result.labels.tolist() == labels.tolist()
    event(f"clusters: {min(result.n_clusters, 3)}+")
    event(f"border cells: {bool(((result.labels >= 0) & ~result.is_core).any())}")


@SETTINGS
@given(points, eps_values, min_shares)
def test_conservation_and_contiguous_ids(pts, eps_km, share) -> None:
    cells, weights = _layer(pts)
    min_weight = _min_weight(weights, share)
    result = dbscan_cells(cells, weights, eps_km, min_weight)
    k = result.n_clusters
    clustered = result.labels >= 0
    assert set(result.labels.tolist()) - {NOISE} == set(range(k))
    np.testing.assert_allclose(
        result.cluster_weights,
        np.bincount(result.labels[clustered], weights=result.weights[clustered], minlength=k),
    )
    assert math.isclose(
        result.cluster_weights.sum() + result.noise_weight, weights.sum(), rel_tol=1e-12, abs_tol=1e-12
    )
    assert (np.diff(result.cluster_weights) <= 0).all()
    assert (result.labels[result.is_core] >= 0).all()


@SETTINGS
@given(points, eps_values, min_shares, st.randoms(use_true_random=False))
def test_independent_of_row_order(pts, eps_km, share, rnd) -> None:
    cells, weights = _layer(pts)
    min_weight = _min_weight(weights, share)
    order = list(range(len(cells)))
    rnd.shuffle(order)
    a = dbscan_cells(cells, weights, eps_km, min_weight)
    b = dbscan_cells(cells[order], weights[order], eps_km, min_weight)
    assert a.cells.tolist() == b.cells.tolist()
    assert a.labels.tolist() == b.labels.tolist()
    assert a.is_core.tolist() == b.is_core.tolist()
    np.testing.assert_allclose(a.cluster_weights, b.cluster_weights, rtol=1e-12)


@SETTINGS
@given(points, points, eps_values, min_shares, min_shares)
def test_merge_is_a_partition_of_connected_overlaps(pat_pts, pub_pts, eps_km, pat_share, pub_share) -> None:
    pat_cells, pat_weights = _layer(pat_pts)
    pub_cells, pub_weights = _layer(pub_pts)
    pat = dbscan_cells(pat_cells, pat_weights, eps_km, _min_weight(pat_weights, pat_share))
    pub = dbscan_cells(pub_cells, pub_weights, eps_km, _min_weight(pub_weights, pub_share))
    m = merge_layers(pat.cells, pat.labels, pub.cells, pub.labels)
    # each cell at most once, and exactly the cells clustered in either layer
    assert len(set(m.cells.tolist())) == len(m.cells)
    clustered = set(pat.cells[pat.labels >= 0].tolist()) | set(pub.cells[pub.labels >= 0].tolist())
    assert set(m.cells.tolist()) == clustered
    # ids contiguous, numbered by each merged cluster's smallest cell
    k = m.n_clusters
    firsts = [m.cells[m.merged_labels == i].min() for i in range(k)]
    assert set(m.merged_labels.tolist()) == set(range(k)) and firsts == sorted(firsts)
    # a layer cluster never straddles two merged clusters, and overlapping clusters merge
    for layer_labels in (m.patent_labels, m.publication_labels):
        for label in set(layer_labels[layer_labels >= 0].tolist()):
            assert len(set(m.merged_labels[layer_labels == label].tolist())) == 1
    # the number of merged clusters is the number of connected components (union-find)
    parent = {("p", x): ("p", x) for x in set(pat.labels[pat.labels >= 0].tolist())}
    parent |= {("a", x): ("a", x) for x in set(pub.labels[pub.labels >= 0].tolist())}

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for p_label, a_label in zip(m.patent_labels.tolist(), m.publication_labels.tolist(), strict=True):
        if p_label >= 0 and a_label >= 0:
            parent[find(("p", p_label))] = find(("a", a_label))
    assert k == len({find(x) for x in parent})
