"""Compare stclusters.build.cluster.dbscan_cells with scikit-learn's DBSCAN on one layer's weighted points.

The points are the layer's distinct located positions (geocoded latitude/longitude of every
address placed at coordinates, postal-code or city precision) with their summed fractional
counts, read from an edition database built by the pipeline. scikit-learn clusters the points
themselves (haversine ball tree, sample_weight); stclusters aggregates them to H3 cells first,
as the pipeline does. Agreement is the share of the clustered weight (clustered by either) that
both assign the same way, clusters being matched one to one by largest shared weight.

Run by bench/run.py --sklearn in a child process under its time and memory limits; writes one
JSON object to --out.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import duckdb
import numpy as np

from stclusters.build.cluster import EARTH_RADIUS_KM, dbscan_cells
from stclusters.reference.h3grid import cells_from_latlng

POINTS_SQL = """
select g.geo_latitude as lat, g.geo_longitude as lng, sum(w.weight) as weight
from int_addresses_weighted as w
inner join int_addresses_geocoded as g on w.address_key = g.address_key
where w.layer = ? and g.geo_precision in ('coordinates', 'postal_code', 'city')
group by all
order by lat, lng
"""


def read_points(db: Path, layer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        table = con.execute(POINTS_SQL, [layer]).fetchnumpy()
    finally:
        con.close()
    return (
        np.asarray(table["lat"], dtype=np.float64),
        np.asarray(table["lng"], dtype=np.float64),
        np.asarray(table["weight"], dtype=np.float64),
    )


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--layer", choices=("patents", "publications"), required=True)
    parser.add_argument("--eps-km", type=float, required=True)
    parser.add_argument("--min-weight", type=float, required=True)
    parser.add_argument("--h3-resolution", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    from sklearn.cluster import DBSCAN

    lat, lng, w = read_points(args.db, args.layer)
    result: dict = {
        "layer": args.layer,
        "points": len(w),
        "weight": float(w.sum()),
        "eps_km": args.eps_km,
        "h3_resolution": args.h3_resolution,
    }

    started = time.monotonic()
    cells = cells_from_latlng(lat, lng, args.h3_resolution)
    ours = dbscan_cells(cells, w, eps_km=args.eps_km, min_weight=args.min_weight)
    result["dbscan_cells_s"] = round(time.monotonic() - started, 3)
    result["cells"] = len(ours.cells)
    ours_labels = ours.labels_of(cells)

    # scikit-learn wants an integer min_samples; with weights, core means neighbourhood weight >=
    # min_samples, the same rule as ours when the threshold is a whole number.
    min_samples = math.ceil(args.min_weight)
    started = time.monotonic()
    sk = DBSCAN(
        eps=args.eps_km / EARTH_RADIUS_KM, min_samples=min_samples, metric="haversine", algorithm="ball_tree"
    ).fit(np.radians(np.column_stack((lat, lng))), sample_weight=w)
    result["sklearn_s"] = round(time.monotonic() - started, 3)
    sk_labels = sk.labels_.astype(np.int64)

    share, matched = agreement(sk_labels, ours_labels, w)
    result.update(
        min_samples=min_samples,
        agreement=round(share, 6),
        matched_clusters=matched,
        clusters_sklearn=int(sk_labels.max() + 1) if len(sk_labels) else 0,
        clusters_ours=int(ours.n_clusters),
        clustered_weight_sklearn=float(w[sk_labels >= 0].sum()),
        clustered_weight_ours=float(w[ours_labels >= 0].sum()),
        time_ratio=round(result["sklearn_s"] / max(result["dbscan_cells_s"], 1e-6), 2),
    )
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
