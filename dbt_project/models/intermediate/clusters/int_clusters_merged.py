"""Merge the patent and the publication clusters that overlap (share an H3 cell).

One row per cell that belongs to a merged cluster: the cell's cluster_id (0..n-1, deterministic).
"""

import pandas as pd
from stclusters.build.cluster import merge_layers


def model(dbt, session):
    dbt.config(materialized="table")
    clustered = dbt.ref("int_cells_clustered").df()
    clustered = clustered[clustered["layer_cluster_id"] >= 0]
    pat = clustered[clustered["layer"] == "patents"]
    pub = clustered[clustered["layer"] == "publications"]
    merged = merge_layers(
        pat["cell"].to_numpy(dtype="int64"),
        pat["layer_cluster_id"].to_numpy(dtype="int64"),
        pub["cell"].to_numpy(dtype="int64"),
        pub["layer_cluster_id"].to_numpy(dtype="int64"),
    )
    return pd.DataFrame({"cell": merged.cells.astype("int64"), "cluster_id": merged.merged_labels.astype("int64")})
