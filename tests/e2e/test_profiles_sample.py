"""Cluster profiles end to end: a small generated world with known applicants, IPC codes,
subjects and co-inventions runs through pull, load and dbt build; the marts must give the
expected top names, field shares, links and collaboration shares, and conserve every count.
On the embedded sample (data/sample/2023, when present) the published GII 2023 profile facts
must come out."""

from __future__ import annotations

import csv
import gzip
import os
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from stclusters import config, tasks
from stclusters.publish import profiles
from stclusters.schema import COLUMNS
from worlds import share_gazetteer

pytestmark = pytest.mark.e2e

TOKYO = ("Tokyo", "JP")
MUNICH = ("Munich", "DE")
SAPPORO = ("Sapporo", "JP")  # far from Tokyo, too small to be a cluster: a domestic partner


def _patent(doc: str, year: int, places: list[tuple[str, str]], applicant: str, ipc: str) -> list[list]:
    return [
        [doc, f"{year}-06-01", seq, city, "", "", country, "", "", applicant, ipc]
        for seq, (city, country) in enumerate(places, start=1)
    ]


def _article(doc: str, year: int, places: list[tuple[str, str, str]], subject: str) -> list[list]:
    return [
        [doc, year, "Article", seq, org, city, "", "", country, "", "", subject]
        for seq, (city, country, org) in enumerate(places, start=1)
    ]


def _world(folder: Path) -> dict[str, Path]:
    """Patents: 100 Tokyo-only (70 Mitsubishi Electric in two spellings, 30 NEC; G06F), 100
    Munich-only (Siemens; B60W), 20 Tokyo+Munich co-inventions (Siemens; B60W), 10 Tokyo+Sapporo
    (NEC; G06F and H04L). Articles: 60 Tokyo-only (University of Tokyo as "Univ Tokyo" and in
    full; Optics), 60 Munich-only (Physics), 12 Tokyo+Munich (Optics; Physics)."""
    patents: list[list] = []
    for i in range(100):
        applicant = (
            "Mitsubishi Electric Corp."
            if i < 60
            else "MITSUBISHI ELECTRIC CORPORATION"
            if i < 70
            else "NEC Corp."
        )
        patents += _patent(f"WO2020T{i:04d}", 2018 + i % 5, [TOKYO], applicant, "G06F 16/22")
        patents += _patent(f"WO2020M{i:04d}", 2018 + i % 5, [MUNICH], "Siemens AG", "B60W 30/09")
    for i in range(20):
        patents += _patent(f"WO2020X{i:04d}", 2020, [TOKYO, MUNICH], "Siemens AG", "B60W 30/09")
    for i in range(10):
        patents += _patent(f"WO2020D{i:04d}", 2021, [TOKYO, SAPPORO], "NEC Corp.", "H04L 5/00;G06F  3/01")
    articles: list[list] = []
    for i in range(60):
        org = "Univ Tokyo" if i % 2 else "University of Tokyo"
        articles += _article(f"WOS:T{i:06d}", 2017 + i % 5, [(*TOKYO, org)], "Optics")
        articles += _article(
            f"WOS:M{i:06d}", 2017 + i % 5, [(*MUNICH, "Technical University of Munich")], "Physics"
        )
    for i in range(12):
        articles += _article(
            f"WOS:X{i:06d}", 2019, [(*TOKYO, "Univ Tokyo"), (*MUNICH, "Tech Univ Munich")], "Optics;Physics"
        )
    paths = {}
    for layer, rows in (("patents", patents), ("publications", articles)):
        paths[layer] = folder / f"{layer}.csv.gz"
        with gzip.open(paths[layer], "wt", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS[layer])
            writer.writerows(rows)
    return paths


@pytest.fixture(scope="module")
def built(
    tmp_path_factory: pytest.TempPathFactory, gazetteer_cache: Path
) -> tuple[config.RunParams, duckdb.DuckDBPyConnection]:
    folder = tmp_path_factory.mktemp("profiles_world")
    paths = _world(folder)
    conf = {
        "edition": 2023,
        "patents_uri": str(paths["patents"]),
        "publications_uri": str(paths["publications"]),
        "min_patents": 20,
        "min_publications": 20,
        "top_n": 10,
        "workspace_dir": str(share_gazetteer(folder / "ws", gazetteer_cache)),
        "output_dir": str(folder / "out"),
    }
    for step in (tasks.pull, tasks.load, tasks.build):
        step(conf)
    params = config.resolve(conf)
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    yield params, con
    con.close()


def _cluster(con: duckdb.DuckDBPyConnection, like: str) -> int:
    rows = con.execute("select cluster_id from clusters where name like ?", [like]).fetchall()
    assert len(rows) == 1, con.sql("select cluster_id, name from clusters").fetchall()
    return rows[0][0]


def _facet(con: duckdb.DuckDBPyConnection, cluster_id: int, layer: str, facet: str) -> dict[str, float]:
    rows = con.execute(
        "select item, item_count from profiles where cluster_id = ? and layer = ? and facet = ? "
        "order by item_rank",
        [cluster_id, layer, facet],
    ).fetchall()
    return dict(rows)


def test_top_applicants_merge_spellings_and_count_fractionally(built) -> None:
    _, con = built
    tokyo, munich = _cluster(con, "Tokyo%"), _cluster(con, "Munich%")
    applicants = _facet(con, tokyo, "patents", "applicant")
    assert list(applicants) == ["Mitsubishi Electric Corp.", "NEC Corp.", "Siemens AG"]
    assert applicants["Mitsubishi Electric Corp."] == pytest.approx(70.0)
    assert applicants["NEC Corp."] == pytest.approx(30 + 10 * 0.5)
    assert applicants["Siemens AG"] == pytest.approx(20 * 0.5)
    assert _facet(con, munich, "patents", "applicant") == pytest.approx({"Siemens AG": 110.0})
    organizations = _facet(con, tokyo, "publications", "organization")
    top = next(iter(organizations))
    assert top in {"Univ Tokyo", "University of Tokyo"}
    assert organizations[top] == pytest.approx(60 + 12 * 0.5)


def test_technology_and_science_fields_split_documents_equally(built) -> None:
    _, con = built
    tokyo = _cluster(con, "Tokyo%")
    fields = _facet(con, tokyo, "patents", "technology_field")
    assert fields == pytest.approx(
        {
            "Computer technology": 100 + 10 * 0.5 * 0.5,
            "Transport": 20 * 0.5,
            "Digital communication": 10 * 0.5 * 0.5,
        }
    )
    shares = dict(
        con.execute(
            "select item, item_share from profiles where cluster_id = ? and facet = 'technology_field'",
            [tokyo],
        ).fetchall()
    )
    assert sum(shares.values()) == pytest.approx(1.0)
    assert _facet(con, tokyo, "publications", "science_field") == pytest.approx(
        {"Optics": 60 + 12 * 0.5 * 0.5, "Physics": 12 * 0.5 * 0.5}
    )


def test_links_between_clusters_are_the_known_co_inventions(built) -> None:
    _, con = built
    tokyo, munich = _cluster(con, "Tokyo%"), _cluster(con, "Munich%")
    links = con.execute(
        "select layer, least(cluster_a_id, cluster_b_id), greatest(cluster_a_id, cluster_b_id), link_weight, "
        "n_documents from links order by layer"
    ).fetchall()
    pair = (min(tokyo, munich), max(tokyo, munich))
    assert links == [
        ("patents", *pair, pytest.approx(20 * 0.5 * 0.5), 20),
        ("publications", *pair, pytest.approx(12 * 0.5 * 0.5), 12),
    ]
    partners = _facet(con, tokyo, "patents", "partner")
    assert list(partners) == [
        con.execute("select name from clusters where cluster_id = ?", [munich]).fetchall()[0][0]
    ]


def test_local_domestic_international_shares(built) -> None:
    _, con = built
    tokyo, munich = _cluster(con, "Tokyo%"), _cluster(con, "Munich%")
    assert _facet(con, tokyo, "patents", "collaboration") == pytest.approx(
        {"local": 100.0, "domestic": 10 * 0.5, "international": 20 * 0.5}
    )
    assert _facet(con, munich, "patents", "collaboration") == pytest.approx(
        {"local": 100.0, "domestic": 0.0, "international": 20 * 0.5}
    )
    shares = con.execute(
        "select cluster_id, layer, sum(item_share) from profiles where facet = 'collaboration' group by all"
    ).fetchall()
    assert all(s == pytest.approx(1.0) for _, _, s in shares)


def test_counts_are_conserved(built) -> None:
    _, con = built
    # the clustered addresses give exactly the ranking's counts
    diff = con.sql(
        """select max(abs(c.pct_count - a.pct) + abs(c.pub_count - a.pub)) from clusters c join (
            select cluster_id, sum(weight) filter (layer = 'patents') as pct,
                   sum(weight) filter (layer = 'publications') as pub
            from int_addresses_clustered where cluster_id is not null group by cluster_id) a
        using (cluster_id)"""
    ).fetchall()[0][0]
    assert diff == pytest.approx(0.0, abs=1e-9)
    # count = internal + links + part paired with addresses outside every cluster, per cluster and layer
    gap = con.sql(
        """with d as (select layer, document_key, cluster_id, cluster_weight,
                       sum(cluster_weight) over (partition by layer, document_key) as clustered
                   from int_links_documents),
            parts as (select layer, cluster_id, sum(cluster_weight * cluster_weight) as internal,
                       sum(cluster_weight * (1 - clustered)) as outside, sum(cluster_weight) as total
                   from d group by all),
            linked as (select layer, cluster_a_id as cluster_id, link_weight from links
                   union all select layer, cluster_b_id, link_weight from links),
            link_sums as (select layer, cluster_id, sum(link_weight) as linked from linked group by all)
        select max(abs(total - internal - outside - coalesce(linked, 0)))
        from parts left join link_sums using (layer, cluster_id)"""
    ).fetchall()[0][0]
    assert gap == pytest.approx(0.0, abs=1e-9)
    # trends add up to the counts, year by year
    trend_gap = con.sql(
        """select max(abs(t.n - case when t.layer = 'patents' then c.pct_count else c.pub_count end))
        from (select cluster_id, layer, sum(document_count) as n from cluster_trends group by all) t
        join clusters c using (cluster_id)"""
    ).fetchall()[0][0]
    assert trend_gap == pytest.approx(0.0, abs=1e-9)
    tokyo = _cluster(con, "Tokyo%")
    years = con.execute(
        "select publication_year, document_count from cluster_trends "
        "where cluster_id = ? and layer = 'patents' order by publication_year",
        [tokyo],
    ).fetchall()
    assert years == [(2018, 20.0), (2019, 20.0), (2020, 30.0), (2021, 25.0), (2022, 20.0)]


def test_write_outputs_publishes_the_marts(built, tmp_path: Path) -> None:
    params, con = built
    written = profiles.write_outputs(params, tmp_path)
    assert sorted(p.name for p in written) == ["links.parquet", "profiles.parquet", "trends.parquet"]
    assert (
        pq.read_table(tmp_path / "profiles.parquet").num_rows
        == con.sql("select count(*) from profiles").fetchall()[0][0]
    )


BUCKETED = [
    "int_addresses_weighted",
    "int_documents_clustered",
    "int_links_documents",
    "int_profiles_collaboration",
]


def test_models_built_in_buckets_of_documents_give_the_one_query_rows(built, tmp_path: Path) -> None:
    """document_buckets: the per-document models rebuilt in 4 passes (materialization
    bucketed_table) on a copy of the edition's database hold the same rows as the one-query
    build, and so do the marts built from them."""
    import shutil

    from stclusters.build.transform import run_dbt

    params, con = built
    copy_root = tmp_path / "ws"
    shutil.copytree(params.workspace, copy_root / str(params.edition), ignore=shutil.ignore_patterns("dbt"))
    bucketed = config.resolve(
        {
            **{k: getattr(params, k) for k in ("edition", "min_patents", "min_publications", "top_n")},
            "workspace_dir": str(copy_root),
            "document_buckets": 4,
        }
    )
    assert bucketed.duckdb_path != params.duckdb_path
    marts = ["profiles", "links", "cluster_trends"]
    run_dbt(bucketed, "run", ["--select", *BUCKETED, *marts])
    log_text = (bucketed.workspace / "dbt" / "logs" / "dbt.log").read_text(encoding="utf-8")
    inserts = log_text.split("insert into ")[1:]
    for model in BUCKETED:
        # the fourth pass of each model ran, into its intermediate table, with its bucket number
        assert any(
            re.match(rf"[^\s(]*\b{model}__dbt_tmp\b", chunk)
            and "% 4 = 3 /* stclusters:document_bucket */" in chunk
            for chunk in inserts
        ), model
    other = duckdb.connect(str(bucketed.duckdb_path), read_only=True)
    try:
        for table in [*BUCKETED, *marts]:
            old = con.sql(f"select * from {table}").fetchall()
            new = other.sql(f"select * from {table}").fetchall()
            assert len(new) == len(old) > 0, table
            assert sorted(map(repr, new)) == sorted(map(repr, old)), table
        per_bucket = other.sql(
            "select count(distinct hash(document_id) % 4) from int_addresses_weighted"
        ).fetchall()[0][0]
        assert per_bucket == 4, "every pass had documents to work on"
    finally:
        other.close()


# --- the embedded sample ------------------------------------------------------------------------

# the committed sample, or another copy of it (STCLUSTERS_SAMPLE_DIR=<dir holding 2023/>)
SAMPLE = Path(os.environ.get("STCLUSTERS_SAMPLE_DIR", config.REPO_ROOT / "data" / "sample")) / "2023"


@pytest.mark.skipif(
    not (SAMPLE / "patents.csv.gz").exists(), reason="sample world not generated (data/sample/2023)"
)
def test_sample_profiles_match_gii_2023(
    tmp_path_factory: pytest.TempPathFactory, gazetteer_cache: Path
) -> None:
    folder = tmp_path_factory.mktemp("profiles_sample")
    conf = {
        "edition": 2023,
        "patents_uri": str(SAMPLE / "patents.csv.gz"),
        "publications_uri": str(SAMPLE / "publications.csv.gz"),
        "workspace_dir": str(share_gazetteer(folder / "ws", gazetteer_cache)),
        "output_dir": str(folder / "out"),
    }
    for step in (tasks.pull, tasks.load, tasks.build):
        step(conf)
    con = duckdb.connect(str(config.resolve(conf).duckdb_path), read_only=True)
    try:
        tokyo = _cluster(con, "Tokyo%")
        assert next(iter(_facet(con, tokyo, "patents", "applicant"))) == "Mitsubishi Electric Corp."
        assert next(iter(_facet(con, tokyo, "publications", "organization"))) == "University of Tokyo"
        shenzhen = _cluster(con, "Shenzhen%")
        assert next(iter(_facet(con, shenzhen, "patents", "applicant"))) == "Huawei Technologies Co. Ltd."
        fields = _facet(con, shenzhen, "patents", "technology_field")
        assert next(iter(fields)) == "Digital communication"
        assert fields["Digital communication"] > fields.get("Computer technology", 0.0)
        san_jose = _cluster(con, "San Jose%")
        assert next(iter(_facet(con, san_jose, "patents", "technology_field"))) == "Computer technology"
        # GII 2023: Wuhan's main partners are Beijing and Shanghai
        wuhan = _cluster(con, "Wuhan%")
        assert set(list(_facet(con, wuhan, "publications", "partner"))[:2]) == {"Beijing", "Shanghai–Suzhou"}
        links = con.sql("select count(*) from links").fetchall()[0][0]
        assert links > 0, "the sample's cross-cluster co-inventions make links"
        international = con.sql(
            "select count(*) from profiles "
            "where facet = 'collaboration' and item = 'international' and item_share > 0"
        ).fetchall()[0][0]
        assert international > 0
    finally:
        con.close()


def test_two_documents_under_one_key_stop_the_weighting(built) -> None:
    """int_addresses_weighted groups documents on a 64-bit hash of their id (macro
    document_key). Its compiled SQL, run as built, gives the table's rows; with the key forced
    into 2 values (so that documents collide) the check hash must stop it with the key named."""
    params, con = built
    compiled = next((params.workspace / "dbt" / "target" / "compiled").rglob("int_addresses_weighted.sql"))
    sql = compiled.read_text(encoding="utf-8")
    assert sql.count("hash(document_id)") == 2 and sql.count("hash(counted.document_id)") == 2
    assert "hash(document_id || '#')" in sql
    table = sorted(map(repr, con.sql("select * from int_addresses_weighted").fetchall()))
    assert sorted(map(repr, con.sql(sql).fetchall())) == table
    collided = sql.replace("hash(document_id)", "(hash(document_id) % 2)").replace(
        "hash(counted.document_id)", "(hash(counted.document_id) % 2)"
    )
    with pytest.raises(duckdb.Error, match=r"document_key [01] hashes two different document ids"):
        con.sql(collided).fetchall()
