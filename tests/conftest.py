"""Shared fixtures. ``small_edition`` builds a tiny, internally consistent edition database: the
raw tables through the real land step, and the marts the gate and publish read (ranking,
clusters, cluster_cells, check_summaries, geocoding_coverage) written directly in DuckDB, so
that gate and publish tests run in seconds without a dbt build."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from stclusters import config, tasks
from stclusters.build.dbt_plugin import register_udfs
from stclusters.load import land
from stclusters.schema import COLUMNS, PATENT_COLUMNS, PUBLICATION_COLUMNS

# Tests place output_dir and workspace_dir under pytest's temporary folders through the run conf:
# allow them as a deployment would (config.allowed_roots); subprocesses inherit the setting.
TEST_ROOTS = os.pathsep.join([tempfile.gettempdir(), str(config.REPO_ROOT)])
for _name in (config.OUTPUT_ROOTS_ENV, config.WORKSPACE_ROOTS_ENV):
    os.environ.setdefault(_name, TEST_ROOTS)

PATENT_ROWS = [
    ["WO2020000001", "2020-03-05", 1, "Tokyo", "", "", "JP", "", "", "Acme", "G06F"],
    ["WO2020000001", "2020-03-05", 2, "Yokohama", "", "", "JP", "", "", "Acme", "G06F"],
    ["WO2021000002", "2021-06-01", 1, "Paris", "", "", "FR", "", "", "Acme", "H04L"],
    ["WO2019000003", "2019-01-10", 1, "Boston", "", "MA", "US", "", "", "Acme", "A61K"],
    ["WO2022000004", "2022-11-30", 1, "Tokyo", "", "", "JP", "", "", "Acme", "G06F"],
]
PUBLICATION_ROWS = [
    ["WOS:000000000001", 2018, "Article", 1, "Univ", "Tokyo", "", "", "JP", "", "", "Physics"],
    ["WOS:000000000002", 2019, "Article", 1, "Univ", "Paris", "", "", "FR", "", "", "Physics"],
    ["WOS:000000000002", 2019, "Article", 2, "Univ", "Boston", "", "MA", "US", "", "", "Physics"],
    ["WOS:000000000003", 2021, "Article", 1, "Univ", "Boston", "", "MA", "US", "", "", "Physics"],
]

# name, pct_count, pub_count (world: 5 patents, 4 articles)
CLUSTERS = [("Tokyo–Yokohama", 2.0, 1.0), ("Boston, MA", 1.0, 1.5), ("Paris", 1.0, 0.5), ("Seoul", 0.5, 0.5)]

MARTS_SQL = """
create or replace table main.clusters as
select
    row_number() over (order by pct_count / 5 + pub_count / 4 desc) as rank,
    cluster_id, name, 'JP' as economies, 'JP:1.0000' as economy_shares, false as cross_border,
    pct_count, pct_count / 5 as pct_share, pub_count, pub_count / 4 as pub_share,
    pct_count / 5 + pub_count / 4 as score, 35.0 as latitude, 139.0 as longitude, 1 as n_cells,
    1000000 as population, (pct_count + pub_count) as documents_per_million, null::bigint as intensity_rank
from clusters_in;
create or replace table main.ranking as
select rank, name, economies, economy_shares, cross_border, pct_count, pct_share, pub_count, pub_share,
       score, latitude, longitude, population, documents_per_million, intensity_rank, n_cells, cluster_id
from main.clusters where rank <= $top_n;
create or replace table main.cluster_cells as
select rank, cluster_id, stc_h3_cell(latitude + cluster_id, longitude, 8) as cell, latitude as cell_latitude,
       longitude as cell_longitude, pct_count, pub_count
from main.clusters;
-- the landed rows' counts (as the dbt mart computes them from the staged rows) from the real
-- raw tables, the counted stage's values written out
create or replace table main.check_summaries as
with landed_rows as (
    select 'patents' as layer, application_id as document_id, inventor_seq as address_seq,
           year(publication_date) as publication_year, country
    from raw.patents
    union all
    select 'publications', article_id, address_seq, publication_year, country from raw.publications
),
landed as (
    select
        layer,
        count(*) as rows_landed,
        count(*) filter (where nullif(trim(document_id), '') is null) as missing_document_id,
        count(*) filter (where address_seq is null) as missing_address_seq,
        count(*) filter (where publication_year is null) as missing_year,
        count(*) filter (where nullif(trim(country), '') is null) as missing_country,
        count(*) - count(distinct (document_id, address_seq)) as duplicate_address_rows
    from landed_rows
    group by layer
)
select t.layer, landed.* exclude (layer), t.* exclude (layer)
from (values
    ('patents', 5, 5, 5.0, 0.0, 0, 0.0, 0, 5.0, 5.0, 0.0, 0, 0.0),
    ('publications', 3, 3, 3.0, 0.0, 0, 0.0, 0, 3.0, 3.0, 0.0, 0, 0.0)
) as t(layer, documents_landed, documents_counted, weight_counted, conservation_error,
       documents_out_of_window, out_of_window_share, documents_duplicated, weight_located,
       weight_in_cells, cells_conservation_error, addresses_in_other_country, other_country_share)
inner join landed on t.layer = landed.layer;
create or replace table main.geocoding_coverage as
select * from (values
    ('patents', '*', 5.0, 1.0, 5), ('patents', 'JP', 3.0, 1.0, 3), ('patents', 'FR', 1.0, 1.0, 1),
    ('patents', 'US', 1.0, 1.0, 1),
    ('publications', '*', 3.0, 0.95, 4), ('publications', 'FR', 0.5, 1.0, 1),
    ('publications', 'US', 1.5, 1.0, 2), ('publications', 'JP', 1.0, 0.95, 1),
    -- a minor country (under 5% of the layer) badly geocoded: reported, not blocking
    ('publications', 'KR', 0.1, 0.0, 1)
) as t(layer, country, weight, geocoded_share, n_addresses);
-- the profile marts the publication exports and the report shows: each cluster's top
-- applicant/organization and its counts by year
create or replace table main.profiles as
select
    c.rank as cluster_rank, c.cluster_id, c.name as cluster_name, l.layer, l.facet,
    1 as item_rank, l.item, lower(l.item) as item_key, c.pct_count as item_count, 1.0 as item_share
from main.clusters as c
cross join (values ('patents', 'applicant', 'Acme'), ('publications', 'organization', 'Univ'))
    as l(layer, facet, item);
create or replace table main.links as
select
    'patents' as layer, 1 as cluster_a_rank, 1 as cluster_a_id, 'a' as cluster_a_name, 2 as cluster_b_rank,
    2 as cluster_b_id, 'b' as cluster_b_name, 0.0 as link_weight, 0 as n_documents, 0.0 as share_of_a,
    0.0 as share_of_b
where false;
create or replace table main.cluster_trends as
select
    c.rank as cluster_rank, c.cluster_id, c.name as cluster_name, 'patents' as layer,
    2020 as publication_year,
    c.pct_count as document_count, 5.0 as world_count, c.pct_count / 5 as world_share
from main.clusters as c;
"""


def _write_csv(path: Path, layer: str, rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS[layer])
        writer.writerows(rows)
    return path


def build_small_edition(root: Path, **conf: object) -> config.RunParams:
    params = config.resolve(
        {
            "edition": 2023,
            "patents_uri": "unused",
            "publications_uri": "unused",
            "top_n": 3,
            "workspace_dir": str(root / "ws"),
            "output_dir": str(root / "out"),
            **conf,
        }
    )
    dumps = root / "dumps"
    dumps.mkdir(parents=True, exist_ok=True)
    files = {
        "patents": [_write_csv(dumps / "patents.csv", "patents", PATENT_ROWS)],
        "publications": [_write_csv(dumps / "publications.csv", "publications", PUBLICATION_ROWS)],
    }
    stats = land.load_database(params.duckdb_path, land.layer_inputs(files), {})
    (params.workspace / "load_stats.json").write_text(json.dumps(stats))
    con = duckdb.connect(str(params.duckdb_path))
    try:
        con.execute(
            "create temp table clusters_in("
            "cluster_id integer, name varchar, pct_count double, pub_count double)"
        )
        con.executemany(
            "insert into clusters_in values (?, ?, ?, ?)", [(i + 1, *c) for i, c in enumerate(CLUSTERS)]
        )
        register_udfs(con)  # real H3 cells, as the report draws them
        con.execute(MARTS_SQL.replace("$top_n", str(params.top_n)))
    finally:
        con.close()
    return params


@pytest.fixture
def small_edition(tmp_path: Path) -> Callable[..., config.RunParams]:
    """Factory: ``small_edition(**conf)`` builds the edition under tmp_path and returns its params."""
    return lambda **conf: build_small_edition(tmp_path, **conf)


def _run_sql(params: config.RunParams, sql: str) -> None:
    con = duckdb.connect(str(params.duckdb_path))
    try:
        con.execute(sql)
    finally:
        con.close()


@pytest.fixture
def edition_sql() -> Callable[[config.RunParams, str], None]:
    """``edition_sql(params, sql)`` runs SQL on the edition's database (to inject faults)."""
    return _run_sql


@pytest.fixture(scope="session")
def gazetteer_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace folder whose real pull built the gazetteer cache (~15 s, once a session and
    test process); ``worlds.share_gazetteer(folder, gazetteer_cache)`` lets another workspace use
    it, and ``gazetteer_files(gazetteer_cache)`` is the folder of its files."""
    root = tmp_path_factory.mktemp("gazetteer")
    patents, publications = root / "patents.csv", root / "publications.csv"
    patents.write_text(",".join(PATENT_COLUMNS) + "\nWO1,2020-03-05,1,Tokyo,,,JP,,,Acme,G06F\n")
    publications.write_text(",".join(PUBLICATION_COLUMNS) + "\nWOS:1,2019,Article,1,Univ,Tokyo,,,JP,,,X\n")
    tasks.pull(
        {
            "edition": 2023,
            "patents_uri": str(patents),
            "publications_uri": str(publications),
            "workspace_dir": str(root / "ws"),
            "output_dir": str(root / "out"),
        }
    )
    assert (root / "ws" / "_gazetteer").is_dir()
    return root / "ws"
