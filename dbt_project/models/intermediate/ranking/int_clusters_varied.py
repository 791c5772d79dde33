"""Method variations: every published cluster's rank when the method's parameters move
(stclusters.build.robustness.variation_grid), re-clustered on the edition's weighted cells.

One row per (variation, published cluster): its rank in the variation and whether it stayed the
same, split, merged with another cluster or vanished. Empty when robustness is off.
"""

import pandas as pd

from stclusters.build import robustness
from stclusters.build.transform import exact_sum

COLUMNS = {
    "variation": "object",
    "parameter": "object",
    "value": "float64",
    "cluster_id": "int64",
    "rank": "int64",
    "variation_rank": "Int64",
    "variation_score": "float64",
    "status": "object",
    "n_pieces": "int64",
    "merged_with": "object",
}


def model(dbt, session):
    dbt.config(materialized="table")
    mode = str(dbt.config.get("robustness"))
    grid = robustness.variation_grid(
        mode,
        float(dbt.config.get("eps_km")),
        float(dbt.config.get("min_patents")),
        float(dbt.config.get("min_publications")),
        int(dbt.config.get("h3_resolution")),
    )
    if not grid:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})
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
    cells = dbt.ref("int_cells_weighted").project("layer, cell, weight").df()
    merged = dbt.ref("int_clusters_merged").project("cell, cluster_id").df()
    locations = None
    if mode == "full":
        # located addresses, region-level ones included (int_address_keys_placed leaves those out)
        geocoded = dbt.ref("int_addresses_geocoded").project(
            "address_key, geo_latitude, geo_longitude, geo_precision"
        )
        locations = (
            dbt.ref("int_address_keys_weighted")
            .project("layer, address_key, weight")
            .join(geocoded, "address_key")
            .query(
                "located",
                "select layer, geo_latitude as latitude, geo_longitude as longitude, "
                f"geo_precision = 'region' as is_region, {exact_sum('weight')} as weight from located "
                "where geo_precision in ('coordinates', 'postal_code', 'city', 'region') "
                "and geo_latitude is not null and geo_longitude is not null "
                "group by all order by all",
            )
            .df()
        )
    # as many variations at once as the run gives DuckDB threads (duckdb_threads), idle meanwhile
    threads = int(session.sql("select current_setting('threads')").fetchall()[0][0])
    varied = robustness.method_variations(
        cells,
        merged,
        clusters,
        worlds,
        grid,
        int(dbt.config.get("top_n")),
        locations=locations,
        workers=threads,
    )
    return varied.astype(COLUMNS)
