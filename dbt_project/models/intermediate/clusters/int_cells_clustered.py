"""DBSCAN on weighted H3 cells, per layer (stclusters.build.cluster.dbscan_cells).

One row per occupied cell and layer: its layer cluster (-1 = noise) and whether it is a core cell.
The work happens in numpy/scipy on the occupied cells only (never on documents).
"""

import pandas as pd
from stclusters.build.cluster import dbscan_cells


def model(dbt, session):
    dbt.config(materialized="table")
    eps_km = float(dbt.config.get("eps_km"))
    minimum = {
        "patents": float(dbt.config.get("min_patents")),
        "publications": float(dbt.config.get("min_publications")),
    }
    cells = dbt.ref("int_cells_weighted").df()
    frames = []
    for layer, min_weight in minimum.items():
        part = cells[cells["layer"] == layer]
        result = dbscan_cells(
            part["cell"].to_numpy(dtype="int64"),
            part["weight"].to_numpy(dtype="float64"),
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
