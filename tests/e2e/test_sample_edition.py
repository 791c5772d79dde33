"""The embedded sample, run through the real DAG (`airflow dags test`), against the GII 2023 table,
then run again to prove byte-identical reruns.

One run of the whole pipeline (pull, load, dbt build, gate, publish) on data/sample/2023 into a
temporary workspace, DuckDB at 3 threads; the published ranking is compared with the published
GII 2023 table (dbt_project/seeds/gii_2023_published.csv, gii_2023_economy_counts.csv).

Byte-identical reruns: the same sample run a second time from the command line
(`python -m stclusters run`), DuckDB at 1 thread, into another workspace (whose pull builds its
own gazetteer: the DAG run's came from the session's cache) and another output folder, publishes
the same bytes in every file. Compared byte for byte: every published file but the run records
(publish.RUN_RECORDS: the manifest, its signature, validation/ with GX's Data Docs); report.html
after masking its run fields (publish.mask_run_fields: validation run id, fetch times, run-only
parameters); the manifest without its run fields (publish.MANIFEST_RUN_FIELDS).
docs/operations.md, "Byte-identical reruns".
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

from stclusters.publish import publish
from worlds import share_gazetteer

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
            # the manifest records the code version; pin it so that the two runs cannot differ there
            "STCLUSTERS_CODE_VERSION": "e2e",
        }
    )
    return env


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, gazetteer_cache: Path) -> dict:
    root = tmp_path_factory.mktemp("sample_edition")
    home = root / "airflow"
    env = _airflow_env(home)
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    conf = {
        "workspace_dir": str(share_gazetteer(root / "workspace", gazetteer_cache)),
        "output_dir": str(root / "output"),
        "duckdb_threads": 3,
    }
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


# --- Byte-identical reruns ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def rerun(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample again, from the command line, at 1 thread, in a fresh workspace."""
    root = tmp_path_factory.mktemp("rerun")
    conf = {"workspace_dir": str(root / "ws"), "output_dir": str(root / "out"), "duckdb_threads": 1}
    env = {**os.environ, "STCLUSTERS_CODE_VERSION": "e2e"}
    run = subprocess.run(
        [sys.executable, "-m", "stclusters", "run", "--conf", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    (root / "run.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, f"the rerun failed; log {root / 'run.log'}:\n{run.stderr[-3000:]}"
    assert (root / "ws" / "_gazetteer").is_dir() and not (root / "ws" / "_gazetteer").is_symlink()
    return root / "out" / "2023"


def _files(edition: Path) -> list[str]:
    return sorted(p.relative_to(edition).as_posix() for p in edition.rglob("*") if p.is_file())


def _manifest(edition: Path) -> dict:
    return json.loads((edition / "manifest.json").read_text(encoding="utf-8"))


def test_every_published_data_file_is_byte_identical_on_rerun(published, rerun: Path) -> None:
    a, b = published["dir"], rerun
    # the same files (validation/ holds GX pages named by run timestamps: run records)
    assert [f for f in _files(a) if not f.startswith("validation/")] == [
        f for f in _files(b) if not f.startswith("validation/")
    ]
    compared = [f for f in _files(a) if not publish.is_run_record(f) and f != publish.REPORT]
    # every kind the issue names is among them
    assert {Path(f).suffix for f in compared} >= {".csv", ".parquet", ".geojson", ".png", ".json"}
    different = [f for f in compared if (a / f).read_bytes() != (b / f).read_bytes()]
    assert different == [], f"differ between the 3-thread DAG run and the 1-thread rerun: {different}"


def test_report_differs_only_in_its_run_fields(published, rerun: Path) -> None:
    texts = [
        publish.mask_run_fields((e / "report.html").read_text(encoding="utf-8"), _manifest(e))
        for e in (published["dir"], rerun)
    ]
    assert texts[0] == texts[1]


def test_manifest_differs_only_in_its_run_fields(published, rerun: Path) -> None:
    a, b = published["dir"], rerun
    ma, mb = _manifest(a), _manifest(b)
    assert ma["parameters"]["duckdb_threads"] == 3 and mb["parameters"]["duckdb_threads"] == 1
    assert publish.manifest_without_run_fields(ma) == publish.manifest_without_run_fields(mb)
    # and the second run, published over the first, is "unchanged"
    assert publish.publication_differences(a, b) == []
