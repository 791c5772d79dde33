"""The embedded sample, run through the real DAG (`airflow dags test`), against the GII 2023 table.

One run of the whole pipeline (pull, load, dbt build, gate, publish) on data/sample/2023 into a
temporary workspace; then the published ranking is compared with the published GII 2023 table
(dbt_project/seeds/gii_2023_published.csv, gii_2023_economy_counts.csv).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
SEEDS = REPO / "dbt_project" / "seeds"

pytestmark = pytest.mark.e2e


def _airflow_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "STCLUSTERS_"))}
    # the deployment's roots for conf-given folders (tests/conftest.py allows the temporary ones)
    env.update(
        {
            k: v
            for k, v in os.environ.items()
            if k in ("STCLUSTERS_OUTPUT_ROOTS", "STCLUSTERS_WORKSPACE_ROOTS")
        }
    )
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    return env


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("sample_edition")
    home = root / "airflow"
    env = _airflow_env(home)
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    conf = {"workspace_dir": str(root / "workspace"), "output_dir": str(root / "output")}
    run = subprocess.run(
        [airflow, "dags", "test", "st_clusters", "--conf", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    log = run.stdout + run.stderr
    (root / "dags_test.log").write_text(log)
    assert run.returncode == 0, f"airflow dags test failed; log at {root / 'dags_test.log'}:\n{log[-4000:]}"
    edition = root / "output" / "2023"
    return {
        "dir": edition,
        "ranking": pd.read_csv(edition / "ranking.csv"),
        "clusters": pd.read_csv(edition / "clusters.csv"),
        "cells": pd.read_csv(edition / "cluster_cells.csv"),
        "manifest": json.loads((edition / "manifest.json").read_text()),
        "log": log,
    }


def _published_table() -> pd.DataFrame:
    return pd.read_csv(SEEDS / "gii_2023_published.csv")


def _first_place(name: str) -> str:
    return name.split("–")[0].split(",")[0].strip()


# GeoNames' main name where it is not the English one WIPO writes (docs/methodology.md).
GEONAMES_SPELLING = {"Köln": "Cologne", "Xi’an": "Xi'an"}


def _match(ranking: pd.DataFrame) -> pd.DataFrame:
    """Each published cluster with our cluster whose first place is its first place."""
    ours = ranking.assign(first=ranking["name"].map(_first_place).replace(GEONAMES_SPELLING))
    table = _published_table().assign(first=lambda t: t["cluster_name"].map(_first_place))
    merged = table.merge(ours, on="first", how="left", suffixes=("_gii", ""))
    missing = merged[merged["rank"].isna()]["cluster_name"].tolist()
    assert not missing, f"published clusters not found in our ranking: {missing}"
    return merged


def test_the_dag_published_a_complete_edition(published) -> None:
    files = set(published["manifest"]["files"])
    for name in ("ranking.csv", "clusters.csv", "cluster_cells.csv", "report.html", "validation/summary.md"):
        assert name in files
    assert published["manifest"]["validation"]["passed"] is True
    assert len(published["ranking"]) == 100
    assert published["manifest"]["windows"] == {"patents": [2018, 2022], "publications": [2017, 2021]}


def test_top_five_in_the_published_order(published) -> None:
    top5 = published["ranking"].sort_values("rank")["name"].head(5).tolist()
    assert top5 == ["Tokyo–Yokohama", "Shenzhen–Hong Kong–Guangzhou", "Seoul", "Beijing", "Shanghai–Suzhou"]


def test_counts_are_conserved(published) -> None:
    clusters, cells = published["clusters"], published["cells"]
    per_cluster = cells.groupby("cluster_id")[["pct_count", "pub_count"]].sum()
    joined = clusters.set_index("cluster_id")[["pct_count", "pub_count"]].join(per_cluster, rsuffix="_cells")
    assert (joined["pct_count"] - joined["pct_count_cells"]).abs().max() < 1e-6
    assert (joined["pub_count"] - joined["pub_count_cells"]).abs().max() < 1e-6
    # shares are of the world's documents: their sums over clusters stay below 1
    assert clusters["pct_share"].sum() <= 1 and clusters["pub_share"].sum() <= 1
    assert ((clusters["score"] - clusters["pct_share"] - clusters["pub_share"]).abs() < 1e-9).all()


def test_ranks_1_to_15_exact_and_kendall_tau_over_the_34(published) -> None:
    matched = _match(published["ranking"])
    first15 = matched[matched["rank_gii"] <= 15].sort_values("rank_gii")
    assert first15["rank"].tolist() == list(range(1, 16)), first15[["cluster_name", "name", "rank"]]
    tau = matched["rank_gii"].corr(matched["rank"], method="kendall")
    assert tau >= 0.9, tau


def test_names_as_wipo_writes_them(published) -> None:
    names = set(published["ranking"]["name"])
    for expected in (
        "Osaka–Kobe–Kyoto",
        "San Jose–San Francisco, CA",
        "Washington, DC–Baltimore, MD",
        "Taipei–Hsinchu",
    ):
        assert expected in names


def test_cross_border_economies(published) -> None:
    r = published["ranking"].set_index("name")
    assert r.loc["Shenzhen–Hong Kong–Guangzhou", "economies"] == "CN/HK"
    assert bool(r.loc["Shenzhen–Hong Kong–Guangzhou", "cross_border"])
    singapore = r[r.index.str.startswith("Singapore")]
    assert singapore["economies"].tolist() == ["SG/MY"]


def test_clusters_per_economy_in_the_top_100_within_one(published) -> None:
    with (SEEDS / "gii_2023_economy_counts.csv").open(encoding="utf-8") as fh:
        expected = {row["economy"]: int(row["clusters_in_top_100"]) for row in csv.DictReader(fh)}
    ours = published["ranking"]["economies"].str.split("/").str[0].value_counts().to_dict()
    off = {e: (n, ours.get(e, 0)) for e, n in expected.items() if abs(ours.get(e, 0) - n) > 1}
    assert not off, f"economy: (published, ours) {off}"
    assert max(ours, key=ours.get) == "CN"


def test_shares_within_ten_percent_of_the_published_counts(published) -> None:
    """Reference shares from the published counts over the world totals implied by the table
    (sum of counts / sum of published shares), more precise than the rounded percentages."""
    matched = _match(published["ranking"])
    table = _published_table()
    world_pct = table["pct_applications"].sum() / (table["pct_share"].sum() / 100)
    world_pub = table["articles"].sum() / (table["articles_share"].sum() / 100)
    matched["ref_pct"] = matched["pct_applications"] / world_pct
    matched["ref_pub"] = matched["articles"] / world_pub
    matched["err_pct"] = (matched["pct_share"] / matched["ref_pct"] - 1).abs()
    matched["err_pub"] = (matched["pub_share"] / matched["ref_pub"] - 1).abs()
    bad = matched[(matched["err_pct"] > 0.10) | (matched["err_pub"] > 0.10)]
    assert bad.empty, bad[
        ["cluster_name", "pct_share", "ref_pct", "err_pct", "pub_share", "ref_pub", "err_pub"]
    ]
