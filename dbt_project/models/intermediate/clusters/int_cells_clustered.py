"""DBSCAN per layer on the weighted points inside the H3 cells (stclusters.build.cluster.dbscan_located).

One row per occupied cell and layer: its layer cluster (-1 = noise) and whether it is a core cell.
The grid decides every cell its error bound can; the exact positions of the points
(int_locations_weighted) decide the rest. The work happens in numpy/scipy on the distinct
located points, never on documents.
"""

import pandas as pd
from stclusters.build.cluster import dbscan_located
from stclusters.build.transform import duckdb_memory_lent


def model(dbt, session):
    dbt.config(materialized="table")
    eps_km = float(dbt.config.get("eps_km"))
    minimum = {
        "patents": float(dbt.config.get("min_patents")),
        "publications": float(dbt.config.get("min_publications")),
    }
    points = dbt.ref("int_locations_weighted")
    frames = []
    for layer, min_weight in minimum.items():
        # sorted as dbscan_located orders them, so its sort finds them in order
        part = points.filter(f"layer = '{layer}'").order("cell, latitude, longitude").fetchnumpy()
        # DuckDB's cached blocks make way for the numpy work (same process)
        with duckdb_memory_lent(session):
            result = dbscan_located(
                part["cell"].astype("int64"),
                part["latitude"].astype("float64"),
                part["longitude"].astype("float64"),
                part["weight"].astype("float64"),
                eps_km=eps_km,
                min_weight=min_weight,
            )
        frames.append(
            pd.DataFrame(
                {
                    "layer": layer,
                    "cell": result.cells.astype("int64"),
                    "layer_cluster_id": result.labels.astype("int64"),
                    "is_core": result.is_core.astype(bool),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
