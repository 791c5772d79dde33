"""Compare the pipeline's clustering step (stclusters.build.cluster.dbscan_located, as
int_cells_clustered runs it) with scikit-learn's DBSCAN on one layer's weighted points.

The points are the layer's rows of int_locations_weighted in an edition database built by the
pipeline: every distinct geocoded position placed on the grid (coordinates, postal code or city
precision), its H3 cell, and the summed fractional counts of the addresses there. scikit-learn
clusters the points themselves (haversine ball tree, sample_weight). Ours is exactly the call
int_cells_clustered makes on the same rows in the same order: the points grouped into their
cells, the grid deciding where its error bound can and exact distances the rest, one label per
cell; every point takes its cell's label. The grid-only method (dbscan_cells on the cells'
summed weights) is run too, for its agreement.

Agreement is the share of the clustered weight (clustered by either) that both assign the same
way, clusters being matched one to one by largest shared weight; ``sklearn_split_share`` is the
share of that weight in cells whose points scikit-learn itself labels differently (outside each
cell's heaviest label), which no labelling of whole cells can match.

Time and memory are measured apart for each side: ours in a child process of its own (this
script with --ours), sklearn in this process after the points are read; each is the wall time of
the call and its peak RSS above the RSS just before it (the kernel's high-water mark, reset
through /proc/self/clear_refs before the call). Reading the points from DuckDB is outside both.

Run by bench/run.py --sklearn in a child process under its time and memory limits; writes one
JSON object to --out.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

from stclusters.build.cluster import EARTH_RADIUS_KM, dbscan_cells, dbscan_located

# the rows int_cells_clustered reads, in its order
POINTS_SQL = """
select cell, latitude, longitude, weight
from int_locations_weighted
where layer = ?
order by cell, latitude, longitude
"""


def read_points(db: Path, layer: str) -> dict[str, np.ndarray]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        table = con.execute(POINTS_SQL, [layer]).fetchnumpy()
    finally:
        con.close()
    return {
        "cell": np.asarray(table["cell"], dtype=np.int64),
        "lat": np.asarray(table["latitude"], dtype=np.float64),
        "lng": np.asarray(table["longitude"], dtype=np.float64),
        "weight": np.asarray(table["weight"], dtype=np.float64),
    }


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def measured(call):
    """(result, wall seconds, MB of peak RSS above the RSS before the call)."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to the current RSS
    before = _status_kb("VmRSS")
    started = time.monotonic()
    result = call()
    seconds = time.monotonic() - started
    return result, seconds, (_status_kb("VmHWM") - before) / 1024


def agreement(labels_a: np.ndarray, labels_b: np.ndarray, weights: np.ndarray) -> tuple[float, int]:
    """Share of the weight clustered by either labelling that both assign to matched clusters.

    Clusters are matched one to one, greedily by decreasing shared weight. Returns the share and
    the number of matched pairs."""
    both = (labels_a >= 0) & (labels_b >= 0)
    either = (labels_a >= 0) | (labels_b >= 0)
    total = float(weights[either].sum())
    if total == 0:
        return 1.0, 0
    pairs: dict[tuple[int, int], float] = {}
    for a, b, w in zip(labels_a[both].tolist(), labels_b[both].tolist(), weights[both].tolist(), strict=True):
        pairs[(a, b)] = pairs.get((a, b), 0.0) + w
    used_a: set[int] = set()
    used_b: set[int] = set()
    agreed = 0.0
    matched = 0
    for (a, b), w in sorted(pairs.items(), key=lambda kv: -kv[1]):
        if a in used_a or b in used_b:
            continue
        used_a.add(a)
        used_b.add(b)
        agreed += w
        matched += 1
    return agreed / total, matched


def split_share(cells: np.ndarray, labels: np.ndarray, weights: np.ndarray, clustered_total: float) -> float:
    """Share of clustered_total that lies in cells outside each cell's heaviest label of ``labels``
    (the weight no per-cell labelling can put where ``labels`` does)."""
    if clustered_total == 0:
        return 0.0
    _, cell_of = np.unique(cells, return_inverse=True)
    _, group = np.unique(np.column_stack((cell_of, labels)), axis=0, return_inverse=True)
    group = group.ravel()
    group_w = np.bincount(group, weights=weights)
    group_cell = np.zeros(len(group_w), dtype=np.int64)
    group_cell[group] = cell_of
    heaviest = np.zeros(int(cell_of.max()) + 1)
    np.maximum.at(heaviest, group_cell, group_w)
    cell_w = np.bincount(cell_of, weights=weights)
    return float((cell_w - heaviest).sum() / clustered_total)


def run_ours(args: argparse.Namespace) -> int:
    """--ours: the clustering step alone, in this (child) process; labels per point to --out .npy."""
    pts = read_points(args.db, args.layer)
    result, seconds, mb = measured(
        lambda: dbscan_located(
            pts["cell"], pts["lat"], pts["lng"], pts["weight"], args.eps_km, args.min_weight
        )
    )
    np.save(args.out, result.labels_of(pts["cell"]))
    print(json.dumps({"ours_s": round(seconds, 3), "ours_rss_mb": round(mb, 1), "cells": len(result.cells),
                      "clusters_ours": result.n_clusters}))  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--layer", choices=("patents", "publications"), required=True)
    parser.add_argument("--eps-km", type=float, required=True)
    parser.add_argument("--min-weight", type=float, required=True)
    parser.add_argument("--h3-resolution", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ours", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.ours:
        return run_ours(args)
    from sklearn.cluster import DBSCAN

    with tempfile.TemporaryDirectory() as tmp:
        labels_path = Path(tmp) / "ours.npy"
        child = subprocess.run(
            [sys.executable, __file__, "--ours", "--db", str(args.db), "--layer", args.layer,
             "--eps-km", str(args.eps_km), "--min-weight", str(args.min_weight),
             "--h3-resolution", str(args.h3_resolution), "--out", str(labels_path)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        ours = json.loads(child.stdout.strip().splitlines()[-1])
        ours_labels = np.load(labels_path)

    pts = read_points(args.db, args.layer)
    lat, lng, w = pts["lat"], pts["lng"], pts["weight"]
    result: dict = {
        "layer": args.layer,
        "points": len(w),
        "weight": float(w.sum()),
        "eps_km": args.eps_km,
        "h3_resolution": args.h3_resolution,
        **ours,
    }
    # scikit-learn wants an integer min_samples; with weights, core means neighbourhood weight >=
    # min_samples, the same rule as ours when the threshold is a whole number.
    min_samples = math.ceil(args.min_weight)
    sk, sk_s, sk_mb = measured(
        lambda: DBSCAN(
            eps=args.eps_km / EARTH_RADIUS_KM,
            min_samples=min_samples,
            metric="haversine",
            algorithm="ball_tree",
        ).fit(np.radians(np.column_stack((lat, lng))), sample_weight=w)
    )
    sk_labels = sk.labels_.astype(np.int64)
    del sk
    grid = dbscan_cells(pts["cell"], w, eps_km=args.eps_km, min_weight=args.min_weight)

    share, matched = agreement(sk_labels, ours_labels, w)
    grid_share, _ = agreement(sk_labels, grid.labels_of(pts["cell"]), w)
    either = float(w[(sk_labels >= 0) | (ours_labels >= 0)].sum())
    result.update(
        sklearn_s=round(sk_s, 3),
        sklearn_rss_mb=round(sk_mb, 1),
        min_samples=min_samples,
        agreement=round(share, 6),
        agreement_grid_only=round(grid_share, 6),
        sklearn_split_share=round(split_share(pts["cell"], sk_labels, w, either), 6),
        matched_clusters=matched,
        clusters_sklearn=int(sk_labels.max() + 1) if len(sk_labels) else 0,
        clustered_weight_sklearn=float(w[sk_labels >= 0].sum()),
        clustered_weight_ours=float(w[ours_labels >= 0].sum()),
        time_ratio=round(sk_s / max(ours["ours_s"], 1e-6), 2),
        memory_ratio=round(sk_mb / max(ours["ours_rss_mb"], 1e-3), 2),
    )
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
