"""Per published cluster: its sampling and method rank intervals and a plain label
(stclusters.build.robustness.method_intervals and interval_label). Empty when robustness is off."""

import pandas as pd

from stclusters.build import robustness

COLUMNS = {
    "cluster_id": "int64",
    "sampling_rank_low": "int64",
    "sampling_rank_high": "int64",
    "method_rank_low": "int64",
    "method_rank_high": "int64",
    "n_merged": "int64",
    "n_split": "int64",
    "n_vanished": "int64",
    "rank_label": "object",
}


def model(dbt, session):
    dbt.config(materialized="table")
    sampling = dbt.ref("int_clusters_resampled").df()
    varied = dbt.ref("int_clusters_varied").df()
    if str(dbt.config.get("robustness")) == "off" or sampling.empty:
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})
    top_n = int(dbt.config.get("top_n"))
    published = dbt.ref("clusters").project("cluster_id, rank").df()
    published = published[published["rank"] <= top_n]
    out = published.merge(sampling, on="cluster_id").merge(
        robustness.method_intervals(varied, published), on="cluster_id"
    )
    out["rank_label"] = [
        robustness.interval_label(
            r.rank,
            [r.sampling_rank_low, r.method_rank_low],
            [r.sampling_rank_high, r.method_rank_high],
            r.n_vanished,
        )
        for r in out.itertuples()
    ]
    return out[list(COLUMNS)].astype(COLUMNS).sort_values("cluster_id").reset_index(drop=True)
