"""Rank intervals: how sure is a published rank (docs/methodology.md, "Rank intervals").

Two intervals per published cluster, both in ranks among all of the edition's clusters:

* **sampling**: a seeded 90% interval of the rank under a Poisson bootstrap over documents (every
  document drawn Poisson(1) times, patents and articles alike; the world totals, the shares'
  denominators, resample with them). ``full`` runs the exact bootstrap on (document, cluster,
  weight) rows; ``fast`` its normal approximation from per-cluster sums of weights and squared
  weights (:func:`normal_bootstrap_scores`).
* **method**: the range of ranks over a grid of parameter variations (:func:`variation_grid`),
  each re-clustered with the project's own clustering (stclusters.build.cluster) on the edition's
  weighted cells, and matched to the published clusters by shared H3 cells. A published cluster
  that splits, merges or vanishes in a variation is reported as such.

The dbt models ``int_clusters_resampled`` and ``int_clusters_varied`` call
:func:`sampling_intervals` and :func:`method_variations`; everything else here is pure numpy.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from h3.api import basic_int as h3
from scipy import sparse

from stclusters.build.cluster import _chunk_rows, dbscan_cells, dbscan_points, merge_layers
from stclusters.reference.h3grid import cell_centres, cells_from_latlng

log = logging.getLogger(__name__)

__all__ = [
    "LEVEL",
    "MODES",
    "SEED",
    "Variation",
    "exact_bootstrap_scores",
    "interval_label",
    "manifest_record",
    "match_variation",
    "method_intervals",
    "method_variations",
    "normal_bootstrap_scores",
    "rank_interval",
    "rank_replicates",
    "recluster",
    "sampling_intervals",
    "variation_grid",
]

MODES = ("off", "fast", "full")
SEED = 21
"""Seed of the bootstrap's generator (numpy PCG64); the same edition gives the same intervals."""
REPLICATES = {"fast": 200, "full": 1000}
BOOTSTRAP = {"fast": "normal", "full": "exact"}
LEVEL = 0.90
"""Coverage of the sampling interval: the 5th and the 95th percentile of the replicates' ranks."""
MAX_PLUS_MINUS = 5
"""Largest spread labelled "±k"; beyond it (or when a variation loses the cluster) "uncertain"."""
EPS_STEP = 0.20
MIN_STEP = 0.25
SCORE_DIGITS = 10
"""Decimal places of the variation scores published in robustness.parquet."""
_DOC_CHUNK = 50_000  # documents per block of Poisson draws in the exact bootstrap


# --- the grid ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variation:
    """One point of the method grid: the run's parameters with one of them moved."""

    name: str
    parameter: str
    value: float
    eps_km: float
    min_patents: float
    min_publications: float
    h3_resolution: int
    place_regions: bool


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"robustness must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def variation_grid(
    mode: str, eps_km: float, min_patents: float, min_publications: float, h3_resolution: int
) -> list[Variation]:
    """The documented grid. fast: eps_km ±20%, both minima ±25% together, H3 resolution -1
    (all from the edition's cells, no re-read of addresses). full: eps_km ±20%, each layer's
    minimum ±25% on its own, H3 resolution ±1, region-level addresses placed."""
    if _check_mode(mode) == "off":
        return []
    base = {
        "eps_km": float(eps_km),
        "min_patents": float(min_patents),
        "min_publications": float(min_publications),
        "h3_resolution": int(h3_resolution),
        "place_regions": False,
    }

    def v(name: str, parameter: str, value: float, **changes) -> Variation:
        return Variation(name=name, parameter=parameter, value=float(value), **{**base, **changes})

    grid = [
        v("eps_km-20%", "eps_km", eps_km * (1 - EPS_STEP), eps_km=eps_km * (1 - EPS_STEP)),
        v("eps_km+20%", "eps_km", eps_km * (1 + EPS_STEP), eps_km=eps_km * (1 + EPS_STEP)),
    ]
    for sign, factor in (("-", 1 - MIN_STEP), ("+", 1 + MIN_STEP)):
        if mode == "fast":
            grid.append(
                v(
                    f"minima{sign}25%",
                    "min_patents,min_publications",
                    factor,
                    min_patents=min_patents * factor,
                    min_publications=min_publications * factor,
                )
            )
        else:
            grid.append(
                v(
                    f"min_patents{sign}25%",
                    "min_patents",
                    min_patents * factor,
                    min_patents=min_patents * factor,
                )
            )
            grid.append(
                v(
                    f"min_publications{sign}25%",
                    "min_publications",
                    min_publications * factor,
                    min_publications=min_publications * factor,
                )
            )
    if h3_resolution > 0:
        grid.append(v("h3_resolution-1", "h3_resolution", h3_resolution - 1, h3_resolution=h3_resolution - 1))
    if mode == "full":
        if h3_resolution < 15:
            grid.append(
                v("h3_resolution+1", "h3_resolution", h3_resolution + 1, h3_resolution=h3_resolution + 1)
            )
        grid.append(v("regions_placed", "place_regions", 1, place_regions=True))
    return grid


def manifest_record(
    mode: str, eps_km: float, min_patents: float, min_publications: float, h3_resolution: int
) -> dict:
    """What the manifest records: mode, bootstrap kind, seed, replicates, level and the grid."""
    if _check_mode(mode) == "off":
        return {"mode": "off"}
    return {
        "mode": mode,
        "sampling": {
            "bootstrap": f"poisson-{BOOTSTRAP[mode]}",
            "seed": SEED,
            "replicates": REPLICATES[mode],
            "level": LEVEL,
        },
        "method_grid": [
            asdict(g) for g in variation_grid(mode, eps_km, min_patents, min_publications, h3_resolution)
        ],
        "label": {"stable": "spread 0", "±k": f"spread 1..{MAX_PLUS_MINUS}", "uncertain": "otherwise"},
    }


# --- ranks ---------------------------------------------------------------------------------------


def rank_replicates(scores: np.ndarray, patents: np.ndarray, cluster_ids: np.ndarray) -> np.ndarray:
    """Ranks (1 = best) of each replicate's clusters, by score desc, patents desc, cluster id asc
    (the ranking's own order). scores and patents are (B, K); returns (B, K) int64."""
    scores = np.atleast_2d(scores)
    patents = np.atleast_2d(patents)
    b, k = scores.shape
    ids = np.broadcast_to(np.asarray(cluster_ids, dtype=np.int64), (b, k))
    ranks = np.empty((b, k), dtype=np.int64)
    for r in range(b):
        order = np.lexsort((ids[r], -patents[r], -scores[r]))
        ranks[r, order] = np.arange(1, k + 1)
    return ranks


def rank_interval(ranks: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Per column of (B, K) ranks: the (1-level)/2 and (1+level)/2 quantiles, as whole ranks
    (the lower one rounded down, the upper one up)."""
    tail = (1 - level) / 2
    low = np.quantile(ranks, tail, axis=0, method="lower")
    high = np.quantile(ranks, 1 - tail, axis=0, method="higher")
    return low.astype(np.int64), high.astype(np.int64)


# --- sampling ------------------------------------------------------------------------------------


def normal_bootstrap_scores(
    sums: Mapping[str, np.ndarray],
    squares: Mapping[str, np.ndarray],
    worlds: Mapping[str, float],
    replicates: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Normal approximation of the Poisson bootstrap from per-cluster sums.

    Per layer, ``sums[layer][k]`` = S_k (the cluster's fractional count), ``squares[layer][k]`` =
    Q_k (the sum over documents of the squared weight a document gives the cluster) and
    ``worlds[layer]`` = N (the layer's document count, each document weighing 1). Under Poisson(1)
    multipliers the world total is exactly Poisson(N); given it, each cluster's count is drawn
    from the normal with the conditional mean S + S/N (W* - N) and variance Q - S^2/N (Cov(S, W)
    = S), independently across clusters (documents shared by two clusters are ignored).
    Returns per layer the (B, K) replicated counts and, under key ``<layer>_world``, the (B,)
    world totals.
    """
    out: dict[str, np.ndarray] = {}
    for layer in sorted(sums):
        s = np.asarray(sums[layer], dtype=np.float64)
        q = np.asarray(squares[layer], dtype=np.float64)
        n = float(worlds[layer])
        if n <= 0:
            out[layer] = np.zeros((replicates, len(s)))
            out[f"{layer}_world"] = np.zeros(replicates)
            continue
        world = rng.poisson(n, size=replicates).astype(np.float64)
        mean = s[None, :] + (s / n)[None, :] * (world - n)[:, None]
        sd = np.sqrt(np.maximum(q - s * s / n, 0.0))
        draws = mean + sd[None, :] * rng.standard_normal((replicates, len(s)))
        out[layer] = np.maximum(draws, 0.0)
        out[f"{layer}_world"] = world
    return out


def exact_bootstrap_scores(
    rows: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_clusters: int,
    worlds: Mapping[str, float],
    replicates: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The Poisson bootstrap itself. ``rows[layer]`` = (document index 0..D-1, cluster position
    0..K-1, weight) of every document's fractional weight in every cluster it touches, documents
    numbered in a fixed order. Each of the D documents gets a Poisson(1) multiplier per replicate;
    the N - D documents in no cluster only move the world total, by a Poisson(N - D) draw.
    Returns the same keys as normal_bootstrap_scores."""
    out: dict[str, np.ndarray] = {}
    for layer in sorted(rows):
        doc, pos, w = rows[layer]
        n_docs = int(doc.max()) + 1 if len(doc) else 0
        matrix = sparse.csr_matrix((w, (doc, pos)), shape=(n_docs, n_clusters))
        counts = np.zeros((replicates, n_clusters))
        drawn = np.zeros(replicates)
        for start in range(0, n_docs, _DOC_CHUNK):
            stop = min(n_docs, start + _DOC_CHUNK)
            m = rng.poisson(1.0, size=(replicates, stop - start)).astype(np.float64)
            counts += (matrix[start:stop].T @ m.T).T
            drawn += m.sum(axis=1)
        rest = max(float(worlds[layer]) - n_docs, 0.0)
        out[layer] = counts
        out[f"{layer}_world"] = drawn + rng.poisson(rest, size=replicates)
    return out


def _scores(draws: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    score = 0.0
    for layer in ("patents", "publications"):
        world = draws[f"{layer}_world"]
        share = np.divide(
            draws[layer], world[:, None], out=np.zeros_like(draws[layer]), where=world[:, None] > 0
        )
        score = score + share
    return np.asarray(score), draws["patents"]


def sampling_intervals(
    clusters: pd.DataFrame,
    worlds: Mapping[str, float],
    mode: str,
    cluster_sums: pd.DataFrame | None = None,
    document_weights: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The sampling interval of every cluster.

    ``clusters``: cluster_id and rank of every cluster of the edition; ``worlds``: each layer's
    document count. ``fast`` needs ``cluster_sums`` (layer, cluster_id, weight_sum,
    weight_square_sum: over documents, of each document's fractional weight in the cluster and
    of its square); ``full`` needs ``document_weights`` (layer, document_id, cluster_id, weight).
    Returns cluster_id, sampling_rank_low, sampling_rank_high (the interval widened to contain
    the published rank, which a percentile interval of ranks may miss at the top).
    """
    if _check_mode(mode) == "off":
        raise ValueError("sampling_intervals: robustness is off")
    rng = np.random.default_rng(SEED)
    replicates = REPLICATES[mode]
    ids = np.sort(clusters["cluster_id"].to_numpy(dtype=np.int64))
    rank = clusters.set_index("cluster_id")["rank"].reindex(ids).to_numpy(dtype=np.int64)
    if BOOTSTRAP[mode] == "normal":
        if cluster_sums is None:
            raise ValueError("sampling_intervals: fast mode needs cluster_sums")
        sums, squares = {}, {}
        for layer in ("patents", "publications"):
            part = cluster_sums[cluster_sums["layer"] == layer].set_index("cluster_id")
            sums[layer] = part["weight_sum"].reindex(ids, fill_value=0).to_numpy(dtype=np.float64)
            squares[layer] = part["weight_square_sum"].reindex(ids, fill_value=0).to_numpy(dtype=np.float64)
        draws = normal_bootstrap_scores(sums, squares, worlds, replicates, rng)
    else:
        if document_weights is None:
            raise ValueError("sampling_intervals: full mode needs document_weights")
        dw = document_weights[document_weights["cluster_id"].isin(ids)]
        rows = {}
        for layer in ("patents", "publications"):
            part = dw[dw["layer"] == layer].sort_values(["document_id", "cluster_id"], kind="stable")
            doc = pd.factorize(part["document_id"], sort=True)[0].astype(np.int64)
            pos = np.searchsorted(ids, part["cluster_id"].to_numpy(dtype=np.int64))
            rows[layer] = (doc, pos, part["weight"].to_numpy(dtype=np.float64))
        draws = exact_bootstrap_scores(rows, len(ids), worlds, replicates, rng)
    score, patents = _scores(draws)
    ranks = rank_replicates(score, patents, ids)
    low, high = rank_interval(ranks)
    return pd.DataFrame(
        {
            "cluster_id": ids,
            "sampling_rank_low": np.minimum(low, rank),
            "sampling_rank_high": np.maximum(high, rank),
        }
    )


# --- method --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reclustered:
    """One variation's clusters: every clustered cell with its cluster, and per cluster its rank."""

    cells: np.ndarray
    labels: np.ndarray
    resolution: int
    patents: np.ndarray
    publications: np.ndarray
    score: np.ndarray
    rank: np.ndarray


@dataclass(frozen=True)
class _Layer:
    """One layer's clustering in a variation (the fields of ClusterResult that are used here)."""

    cells: np.ndarray
    weights: np.ndarray
    labels: np.ndarray


def _dbscan_layer(
    cells: np.ndarray, weights: np.ndarray, centres, eps_km: float, min_weight: float
) -> _Layer:
    """dbscan_cells on distinct sorted cells whose centres are already known: the variations of
    one grid share their cells, and the centres were a third of a variation's time. Same call of
    dbscan_points as dbscan_cells (cell ids as order key, its chunk size)."""
    if centres is None:
        result = dbscan_cells(cells, weights, eps_km, min_weight)
        return _Layer(result.cells, result.weights, result.labels)
    lat, lng = centres
    res = h3.get_resolution(int(cells[0])) if len(cells) else None
    labels = dbscan_points(
        lat,
        lng,
        weights,
        float(eps_km),
        float(min_weight),
        order_key=cells,
        chunk_rows=_chunk_rows(len(cells), float(eps_km), res),
    )[0]
    return _Layer(cells, weights, labels)


def recluster(
    layer_cells: Mapping[str, tuple],
    eps_km: float,
    min_weight: Mapping[str, float],
    worlds: Mapping[str, float],
) -> Reclustered:
    """Cluster each layer (stclusters.build.cluster.dbscan_cells), merge the layers (merge_layers), and
    measure and rank the clusters as the ranking does: every document located in a cluster's
    cells counts, in both layers; score = share of world patents + share of world articles;
    ties: more patents, then the smaller cluster id.

    ``layer_cells[layer]`` is (cells, weights), or (distinct sorted cells, weights, (lat, lng)
    of their centres) as _layer_cells gives them."""
    result = {
        layer: _dbscan_layer(
            layer_cells[layer][0],
            layer_cells[layer][1],
            layer_cells[layer][2] if len(layer_cells[layer]) > 2 else None,
            eps_km,
            min_weight[layer],
        )
        for layer in ("patents", "publications")
    }
    p, a = result["patents"], result["publications"]
    merged = merge_layers(p.cells, p.labels, a.cells, a.labels)
    n = merged.n_clusters
    counts = {}
    for layer, r in result.items():
        pos = np.searchsorted(r.cells, merged.cells)
        pos_c = np.minimum(pos, max(len(r.cells) - 1, 0))
        found = (
            (pos < len(r.cells)) & (r.cells[pos_c] == merged.cells)
            if len(r.cells)
            else np.zeros(len(pos), bool)
        )
        w = np.where(found, r.weights[pos_c] if len(r.cells) else 0.0, 0.0)
        counts[layer] = np.bincount(merged.merged_labels, weights=w, minlength=n)
    score = np.zeros(n)
    for layer in ("patents", "publications"):
        if worlds[layer] > 0:
            score = score + counts[layer] / worlds[layer]
    ids = np.arange(n, dtype=np.int64)
    rank = rank_replicates(score[None, :], counts["patents"][None, :], ids)[0] if n else ids
    res = h3.get_resolution(int(merged.cells[0])) if len(merged.cells) else -1
    return Reclustered(
        merged.cells, merged.merged_labels, res, counts["patents"], counts["publications"], score, rank
    )


def _to_resolution(cells: np.ndarray, res: int) -> np.ndarray:
    """Cells brought to a coarser (or the same) resolution by their H3 parent."""
    if len(cells) == 0 or h3.get_resolution(int(cells[0])) == res:
        return cells
    parent = h3.cell_to_parent
    return np.fromiter((parent(c, res) for c in cells.tolist()), dtype=np.int64, count=len(cells))


def _argmax_by_group(group: np.ndarray, value: np.ndarray, tie: np.ndarray) -> dict[int, int]:
    """Per group, the position of its largest value (ties: smallest tie key)."""
    order = np.lexsort((tie, -value, group))
    first = np.ones(len(order), dtype=bool)
    first[1:] = group[order][1:] != group[order][:-1]
    return {int(group[i]): int(i) for i in order[first]}


def match_variation(
    base_cells: np.ndarray,
    base_ids: np.ndarray,
    base_weights: np.ndarray,
    varied: Reclustered,
) -> pd.DataFrame:
    """Match the edition's clusters to a variation's by shared cells (both brought to the coarser
    of the two resolutions by their H3 parents).

    Per edition cluster: its main counterpart (the variation cluster holding most of its weight),
    the number of variation clusters it gives most of their shared weight to (``n_pieces``), and
    a status: ``vanished`` (no shared cell), ``merged`` (another edition cluster has the same
    main counterpart; ``merged_with`` lists them), ``split`` (two or more pieces), or ``same``.
    """
    base_res = h3.get_resolution(int(base_cells[0])) if len(base_cells) else varied.resolution
    common = min(base_res, varied.resolution) if varied.resolution >= 0 else base_res
    b = pd.DataFrame({"cell": _to_resolution(base_cells, common), "base": base_ids, "w": base_weights})
    b = b.groupby(["cell", "base"], as_index=False)["w"].sum()
    v = pd.DataFrame({"cell": _to_resolution(varied.cells, common), "var": varied.labels}).drop_duplicates()
    pairs = b.merge(v, on="cell").groupby(["base", "var"], as_index=False)["w"].sum()
    pairs = pairs[pairs["w"] > 0] if len(pairs) else pairs
    bases = np.unique(base_ids)
    out = pd.DataFrame({"cluster_id": bases})
    if len(pairs) == 0:
        return out.assign(var_cluster=-1, status="vanished", n_pieces=0, merged_with=[[] for _ in bases])
    pb, pv, pw = (pairs[c].to_numpy() for c in ("base", "var", "w"))
    var_rank = varied.rank[pv]
    main_of_base = {k: int(pv[i]) for k, i in _argmax_by_group(pb, pw, var_rank).items()}
    main_of_var = {k: int(pb[i]) for k, i in _argmax_by_group(pv, pw, pb).items()}
    pieces: dict[int, int] = {}
    for base in main_of_var.values():
        pieces[base] = pieces.get(base, 0) + 1
    sharing: dict[int, list[int]] = {}
    for base, var in main_of_base.items():
        sharing.setdefault(var, []).append(base)
    status, main, n_pieces, merged_with = [], [], [], []
    for base in bases.tolist():
        var = main_of_base.get(base)
        others = sorted(x for x in sharing.get(var, []) if x != base) if var is not None else []
        main.append(-1 if var is None else var)
        n_pieces.append(pieces.get(base, 0))
        merged_with.append(others)
        if var is None:
            status.append("vanished")
        elif others:
            status.append("merged")
        elif pieces.get(base, 0) > 1:
            status.append("split")
        else:
            status.append("same")
    return out.assign(var_cluster=main, status=status, n_pieces=n_pieces, merged_with=merged_with)


def _aggregate(cells: np.ndarray, weights: np.ndarray) -> tuple:
    """Distinct sorted cells, their summed weights and their centres (checked valid)."""
    uniq, inverse = np.unique(cells, return_inverse=True)
    summed = np.bincount(inverse, weights=weights, minlength=len(uniq)).astype(np.float64)
    bad = ~np.isfinite(summed) | (summed < 0)
    if bad.any():
        raise ValueError(f"cell {int(uniq[np.flatnonzero(bad)[0]])}: weight must be finite and >= 0")
    lat, lng = cell_centres(uniq)
    if np.isnan(lat).any():
        raise ValueError(f"{int(uniq[np.flatnonzero(np.isnan(lat))[0]])} is not a valid H3 cell id")
    return uniq, summed, (lat, lng)


def _layer_cells(
    variation: Variation,
    base_res: int,
    cells: pd.DataFrame,
    locations: pd.DataFrame | None,
    cache: dict,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each layer's weighted cells for a variation: the edition's cells (or their parents, one
    resolution down); from the located addresses for a finer grid or with regions placed."""
    key = (variation.h3_resolution, variation.place_regions)
    if key in cache:
        return cache[key]
    out = {}
    from_cells = not variation.place_regions and variation.h3_resolution <= base_res
    if not from_cells and locations is None:
        raise ValueError(f"variation {variation.name} needs the located addresses (robustness=full)")
    for layer in ("patents", "publications"):
        if from_cells:
            part = cells[cells["layer"] == layer]
            c = _to_resolution(part["cell"].to_numpy(dtype=np.int64), variation.h3_resolution)
            out[layer] = _aggregate(c, part["weight"].to_numpy(dtype=np.float64))
        else:
            part = locations[locations["layer"] == layer]
            if not variation.place_regions:
                part = part[~part["is_region"].astype(bool)]
            c = cells_from_latlng(
                part["latitude"].to_numpy(dtype=np.float64),
                part["longitude"].to_numpy(dtype=np.float64),
                variation.h3_resolution,
            )
            ok = c != 0
            out[layer] = _aggregate(c[ok], part["weight"].to_numpy(dtype=np.float64)[ok])
    cache[key] = out
    return out


def method_variations(
    cells: pd.DataFrame,
    base_clusters: pd.DataFrame,
    ranks: pd.DataFrame,
    worlds: Mapping[str, float],
    variations: list[Variation],
    top_n: int,
    locations: pd.DataFrame | None = None,
    workers: int = 1,
) -> pd.DataFrame:
    """Every variation's rank of every published cluster.

    ``cells``: layer, cell, weight (the edition's weighted cells); ``base_clusters``: cell,
    cluster_id (the edition's merged clusters); ``ranks``: cluster_id, rank of every cluster;
    ``locations`` (full grid only): layer, latitude, longitude, is_region, weight of the located
    addresses (region-level ones included). One row per (variation, published cluster).
    ``workers``: variations re-clustered at once, in threads (the k-d tree and numpy work
    release the GIL: the five of a GII-size edition's fast grid took 4.1 s in two threads against
    7.9 s in one, the same ranks, docs/performance.md); the results do not depend on it.
    """
    rank_of = ranks.set_index("cluster_id")["rank"]
    published = set(ranks.loc[ranks["rank"] <= top_n, "cluster_id"].tolist())
    per_cell = cells.groupby("cell")["weight"].sum()
    base = base_clusters.sort_values("cell")
    base_cells = base["cell"].to_numpy(dtype=np.int64)
    base_ids = base["cluster_id"].to_numpy(dtype=np.int64)
    base_weights = per_cell.reindex(base_cells, fill_value=0.0).to_numpy(dtype=np.float64)
    # the edition's grid: from its weighted cells (an edition may have no cluster at all)
    # (no cells: H3's finest, so every variation starts from the empty cells)
    base_res = h3.get_resolution(int(cells["cell"].iloc[0])) if len(cells) else 15
    cache: dict = {}
    inputs = [(v, _layer_cells(v, base_res, cells, locations, cache)) for v in variations]

    def reclustered(item: tuple[Variation, dict]) -> Reclustered:
        variation, layer_cells = item
        return recluster(
            layer_cells,
            variation.eps_km,
            {"patents": variation.min_patents, "publications": variation.min_publications},
            worlds,
        )

    if workers > 1 and len(inputs) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(inputs))) as pool:
            results = list(pool.map(reclustered, inputs))
    else:
        results = [reclustered(item) for item in inputs]
    frames = []
    for variation, varied in zip(variations, results, strict=True):
        matched = match_variation(base_cells, base_ids, base_weights, varied)
        matched = matched[matched["cluster_id"].isin(published)].copy()
        var = matched["var_cluster"].to_numpy()
        has = var >= 0
        safe = np.where(has, var, 0)
        matched["variation_rank"] = pd.array(
            np.where(has, varied.rank[safe] if len(varied.rank) else 0, 0), dtype="Int64"
        )
        matched.loc[~has, "variation_rank"] = pd.NA
        score = np.where(has, varied.score[safe] if len(varied.score) else 0.0, np.nan)
        matched["variation_score"] = np.round(score, SCORE_DIGITS)
        matched["merged_with"] = [
            "/".join(str(int(rank_of[x])) for x in sorted(m, key=lambda x: rank_of[x]))
            for m in matched["merged_with"]
        ]
        matched.insert(0, "variation", variation.name)
        matched.insert(1, "parameter", variation.parameter)
        matched.insert(2, "value", round(variation.value, 6))
        matched["rank"] = matched["cluster_id"].map(rank_of).astype("int64")
        log.info(
            "robustness: variation %s: %d clusters; published ones: %s",
            variation.name,
            varied.rank.size,
            matched["status"].value_counts().to_dict(),
        )
        frames.append(matched)
    columns = [
        "variation",
        "parameter",
        "value",
        "cluster_id",
        "rank",
        "variation_rank",
        "variation_score",
        "status",
        "n_pieces",
        "merged_with",
    ]
    if not frames:
        return pd.DataFrame(columns=columns)
    out = pd.concat(frames, ignore_index=True)[columns]
    return out.sort_values(["rank", "variation"], kind="stable").reset_index(drop=True)


def method_intervals(varied: pd.DataFrame, ranks: pd.DataFrame) -> pd.DataFrame:
    """Per published cluster: the lowest and highest rank over the published run and every
    variation that kept it, and how many variations merged, split or lost it."""
    out = ranks[["cluster_id", "rank"]].copy()
    if len(varied):
        kept = varied.dropna(subset=["variation_rank"])
        agg = kept.groupby("cluster_id")["variation_rank"].agg(["min", "max"])
        counts = pd.crosstab(varied["cluster_id"], varied["status"])
    else:
        agg = pd.DataFrame(columns=["min", "max"])
        counts = pd.DataFrame()
    low = agg["min"].reindex(out["cluster_id"]).to_numpy(dtype=np.float64)
    high = agg["max"].reindex(out["cluster_id"]).to_numpy(dtype=np.float64)
    r = out["rank"].to_numpy(dtype=np.float64)
    out["method_rank_low"] = np.fmin(low, r).astype(np.int64)
    out["method_rank_high"] = np.fmax(high, r).astype(np.int64)
    for status in ("merged", "split", "vanished"):
        col = counts[status] if status in counts.columns else pd.Series(dtype="int64")
        out[f"n_{status}"] = col.reindex(out["cluster_id"], fill_value=0).to_numpy(dtype=np.int64)
    return out.drop(columns="rank")


def interval_label(rank: int, lows: list[int], highs: list[int], vanished: int = 0) -> str:
    """ "stable" when every interval is the rank itself; "±k" when the farthest end of any
    interval is k <= MAX_PLUS_MINUS ranks away; "uncertain" beyond, or when a variation lost it."""
    spread = max([0] + [rank - x for x in lows] + [x - rank for x in highs])
    if vanished or spread > MAX_PLUS_MINUS:
        return "uncertain"
    return "stable" if spread == 0 else f"±{spread}"


# --- publication -----------------------------------------------------------------------------------

ROBUSTNESS_FILE = "robustness.parquet"


def manifest_for(params, dest=None) -> dict:
    """manifest_record for a run's parameters (stclusters.config.RunParams); with ``dest``, the
    publication folder, it also says when the intervals were not computed (a database built
    before this feature: no robustness mart)."""
    record = manifest_record(
        params.robustness, params.eps_km, params.min_patents, params.min_publications, params.h3_resolution
    )
    if dest is not None and params.robustness != "off" and not (dest / ROBUSTNESS_FILE).exists():
        record["computed"] = False
    return record


def write_outputs(params, dest) -> list:
    """Write robustness.parquet (the robustness mart, every variation's rank of every published
    cluster, sorted by rank and variation) into ``dest``; nothing when robustness is off, or
    (with a warning) when the edition's database has no robustness mart."""
    import duckdb
    import pyarrow.parquet as pq

    if params.robustness == "off":
        return []
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        present = con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'main' and table_name = 'robustness'"
        ).fetchall()[0][0]
        if not present:
            log.warning(
                "%s: no main.robustness: no %s published (build it with `dbt build --select +robustness`)",
                params.duckdb_path,
                ROBUSTNESS_FILE,
            )
            return []
        table = con.sql("select * from main.robustness order by rank, variation").to_arrow_table()
    finally:
        con.close()
    path = dest / ROBUSTNESS_FILE
    pq.write_table(table, path, compression="zstd")
    return [path]


# --- edition diff --------------------------------------------------------------------------------

INTERVAL_COLUMNS = ("sampling_rank_low", "sampling_rank_high", "method_rank_low", "method_rank_high")


def intervals_by_rank(ranking: pd.DataFrame) -> dict[int, tuple[int, int]]:
    """rank -> (lowest, highest) over both intervals, from a ranking table (ranking.csv or the
    ranking mart); empty when it has no intervals (robustness off, or an older edition)."""
    if ranking is None or not set(INTERVAL_COLUMNS) <= set(ranking.columns):
        return {}
    out = {}
    for row in ranking[["rank", *INTERVAL_COLUMNS]].itertuples(index=False):
        values = [getattr(row, c) for c in INTERVAL_COLUMNS]
        if any(pd.isna(v) for v in values):
            continue
        out[int(row.rank)] = (int(min(values[0], values[2])), int(max(values[1], values[3])))
    return out


def read_ranking_intervals(ranking_csv, duckdb_path=None) -> dict[int, tuple[int, int]]:
    """intervals_by_rank of an edition's ranking.csv, else of its DuckDB ranking mart."""
    if ranking_csv is not None and ranking_csv.exists():
        return intervals_by_rank(pd.read_csv(ranking_csv))
    if duckdb_path is not None and duckdb_path.exists():
        import duckdb

        con = duckdb.connect(str(duckdb_path), read_only=True)
        try:
            return intervals_by_rank(con.sql("select * from main.ranking").df())
        except duckdb.Error:
            return {}
        finally:
            con.close()
    return {}


def move_within_intervals(
    rank: int | None,
    previous_rank: int | None,
    current: Mapping[int, tuple[int, int]],
    previous: Mapping[int, tuple[int, int]],
) -> bool | None:
    """Whether a move from previous_rank to rank lies within the intervals of both editions: the
    new rank inside the previous edition's interval and the previous rank inside this one's.
    None when either edition has no interval for the cluster."""
    if rank is None or previous_rank is None or rank not in current or previous_rank not in previous:
        return None
    lo, hi = current[rank]
    plo, phi = previous[previous_rank]
    return bool(plo <= rank <= phi and lo <= previous_rank <= hi)


# --- report (the section itself is stclusters.report.sections.robustness_section) --------------

RANGE_KEY = "rank_range"


def has_intervals(records) -> bool:
    """Whether ranking records carry rank intervals (robustness on, and a ranking built with it)."""
    return any(r.get("sampling_rank_low") is not None for r in records)
