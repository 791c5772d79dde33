"""Sampling rank intervals: a seeded Poisson bootstrap over documents (stclusters.build.robustness).

One row per cluster of the edition: the 90% interval of its rank. Empty when robustness is off.
fast works on per-cluster sums of document weights and their squares (two aggregates in DuckDB);
full on one row per (document, cluster).
"""

import pandas as pd

from stclusters.build import robustness
from stclusters.build.transform import exact_sum


def per_document(document: str) -> str:
    """Each document's weight in each cluster, the document named by ``document``."""
    return (
        f"select layer, {document} as document_id, cluster_id, {exact_sum('weight')} as weight "
        f"from addresses where cluster_id is not null group by layer, {document}, cluster_id"
    )


def model(dbt, session):
    dbt.config(materialized="table")
    mode = str(dbt.config.get("robustness"))
    columns = {"cluster_id": "int64", "sampling_rank_low": "int64", "sampling_rank_high": "int64"}
    if mode == "off":
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    clusters = dbt.ref("clusters").project("cluster_id, rank").df()
    world = (
        dbt.ref("int_clusters_measured")
        .query(
            "measured",
            "select coalesce(any_value(world_patents), 0) as patents, "
            "coalesce(any_value(world_publications), 0) as publications from measured",
        )
        .df()
    )
    worlds = {"patents": float(world["patents"][0]), "publications": float(world["publications"][0])}
    addresses = dbt.ref("int_addresses_clustered")
    if mode == "fast":
        # sums over documents, which need no order: grouped on the document's key (an integer)
        sums = addresses.query(
            "addresses",
            f"select layer, cluster_id, {exact_sum('weight')} as weight_sum, "
            f"{exact_sum('weight * weight')} as weight_square_sum "
            f"from ({per_document('document_key')}) group by layer, cluster_id",
        ).df()
        return robustness.sampling_intervals(clusters, worlds, mode, cluster_sums=sums)
    # the bootstrap draws per document in the order of their ids
    rows = addresses.query(
        "addresses", per_document("document_id") + " order by layer, document_id, cluster_id"
    ).df()
    return robustness.sampling_intervals(clusters, worlds, mode, document_weights=rows)
