"""Each patent source a data team holds (REGPAT, PATSTAT, geocoded first filings) through the real
DAG (`airflow dags test`), with the source set of config/sources.yml.

The patents are the fixtures of tests/fixtures/<source>/ (a few dozen real-shaped rows with their
quirks), the publications the embedded sample's; the thresholds are lowered to the fixtures' size
and the gate's coverage check to what region-level locations allow (docs/data-formats.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from worlds import share_gazetteer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"

# source set -> (patent files, documents written, quarantined records, rows placed by coordinates)
SOURCES = {
    "regpat": ("regpat/*_PCT_[AI]*.txt", 10, 6, 0),
    "patstat": ("patstat/tls2*.csv", 9, 6, 0),
    "geopat": ("geopat/geoc_inv.txt", 14, 6, 16),
}


def _airflow_env(home: Path) -> dict[str, str]:
    # the deployment's path roots stay (tests/conftest.py: the temp folder is one)
    keep = ("STCLUSTERS_OUTPUT_ROOTS", "STCLUSTERS_WORKSPACE_ROOTS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "STCLUSTERS_")) or k in keep}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    return env


@pytest.fixture(scope="module", params=sorted(SOURCES))
def run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, gazetteer_cache: Path
) -> dict:
    source = request.param
    root = tmp_path_factory.mktemp(source)
    env = _airflow_env(root / "airflow")
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    conf = {
        "source_set": source,
        "patents_uri": str(FIXTURES / SOURCES[source][0]),
        "publications_uri": "data/sample/{edition}/publications.csv.gz",
        "min_patents": 0.5,
        "min_publications": 40,
        # the fixtures quarantine a quarter of their records on purpose
        "max_quarantine_share": 0.4,
        # a few inventors stay at region level (TL3/NUTS3 codes, no city): each is a large share
        # of a one-document country in a fixture this small
        "min_geocoded_share": 0.5,
        "major_country_min_share": 0.5,
        "workspace_dir": str(share_gazetteer(root / "workspace", gazetteer_cache)),
        "output_dir": str(root / "output"),
    }
    result = subprocess.run(
        [airflow, "dags", "test", "st_clusters", "--conf", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    log = result.stdout + result.stderr
    (root / "dags_test.log").write_text(log)
    assert result.returncode == 0, (
        f"airflow dags test failed; log at {root / 'dags_test.log'}:\n{log[-4000:]}"
    )
    workspace = root / "workspace" / "2023"
    return {
        "source": source,
        "landed": json.loads((workspace / "landing" / "landed.json").read_text()),
        "database": workspace / "stclusters.duckdb",
        "clusters": pd.read_csv(root / "output" / "2023" / "clusters.csv"),
        "manifest": json.loads((root / "output" / "2023" / "manifest.json").read_text()),
    }


def test_the_source_set_converts_and_publishes(run: dict) -> None:
    source = run["source"]
    _, documents, quarantined, _ = SOURCES[source]
    patents = run["landed"]["layers"]["patents"]
    assert patents["format"] == source
    assert patents["conversion"]["documents_written"] == documents
    # quarantine counts per unit and reason (issue 17, item 11): the patent adapters count records
    assert set(patents["conversion"]["quarantined"]) == {"record"}
    assert sum(patents["conversion"]["quarantined"]["record"].values()) == quarantined
    assert run["manifest"]["validation"]["passed"] is True


def test_every_document_is_counted_once_at_its_addresses(run: dict) -> None:
    con = duckdb.connect(str(run["database"]), read_only=True)
    try:
        documents, weight = con.execute(
            """select count(distinct document_id), sum(weight)
               from int_addresses_weighted where layer = 'patents'"""
        ).fetchone()
        precision = dict(
            con.execute(
                """select g.geo_precision, count(*)
                   from int_addresses_weighted a join int_addresses_geocoded g using (address_key)
                   where a.layer = 'patents' group by 1"""
            ).fetchall()
        )
    finally:
        con.close()
    assert documents == SOURCES[run["source"]][1]
    assert weight == pytest.approx(documents)  # one document, its inventors sharing it
    assert precision.get("coordinates", 0) == SOURCES[run["source"]][3]
    if run["source"] != "geopat":
        # a region code alone is not placed: no centroid is invented
        assert precision.get("unmatched", 0) >= 1


def test_fixture_patents_are_counted_in_their_clusters(run: dict) -> None:
    clusters = run["clusters"]
    assert clusters["pct_count"].sum() > 0
    # every fixture has inventors in Tokyo-Yokohama; with a few dozen patents their share can
    # outweigh the sample's articles in the name (e.g. "Minato"), so find the cluster by place
    near_tokyo = clusters[
        ((clusters["latitude"] - 35.6).abs() < 0.5) & ((clusters["longitude"] - 139.7).abs() < 0.5)
    ]
    assert near_tokyo["pct_count"].sum() > 0, clusters[["name", "latitude", "longitude", "pct_count"]].head(
        10
    )
