"""The real Web of Science export (tests/fixtures/wos/black-silicon-savedrecs.txt, 500 records)
through pull -> WoS adapter -> load -> dbt build: the share of its counted addresses that the
pipeline geocodes to a city (target >= 95%), and the list of those it misses (docs/geocoding.md)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import duckdb
import pytest

from stclusters import config, tasks
from stclusters.schema import PATENT_COLUMNS

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
WOS = REPO / "tests" / "fixtures" / "wos" / "black-silicon-savedrecs.txt"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wos")
    patents = root / "patents.csv.gz"
    with gzip.open(patents, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PATENT_COLUMNS)
        writer.writerow(["WO2020000001", "2020-01-02", 1, "Tokyo", "", "", "JP", "", "", "Acme", "G06F"])
    sources = root / "sources.yml"
    sources.write_text(
        "source_sets:\n"
        "  wos:\n"
        f"    patents: {{uri: '{patents}', format: canonical}}\n"
        f"    publications: {{uri: '{WOS}', format: wos}}\n",
        encoding="utf-8",
    )
    # The export spans 2012-2021: take every year (the window does not matter for geocoding).
    conf = {
        "source_set": "wos",
        "edition": 2023,
        "window_years": 20,
        "workspace_dir": str(root / "ws"),
        "output_dir": str(root / "out"),
    }
    mp = pytest.MonkeyPatch()
    mp.setenv("STCLUSTERS_SOURCES_FILE", str(sources))
    try:
        tasks.pull(conf)
        tasks.load(conf)
        tasks.build(conf)
        return config.resolve(conf).duckdb_path
    finally:
        mp.undo()


def test_city_level_share_of_the_real_export_is_at_least_95_percent(database: Path) -> None:
    con = duckdb.connect(str(database), read_only=True)
    try:
        rows, city_rows, city_weight = con.execute(
            """
            select
                count(*),
                count(*) filter (where g.geo_precision in ('city', 'postal_code', 'coordinates')),
                sum(a.weight) filter (where g.geo_precision in ('city', 'postal_code', 'coordinates'))
                / sum(a.weight)
            from int_addresses_weighted a join int_addresses_geocoded g using (address_key)
            where a.layer = 'publications'
            """
        ).fetchone()
        misses = con.execute(
            """
            select g.city, g.country, g.geo_precision, count(*) as n
            from int_addresses_weighted a join int_addresses_geocoded g using (address_key)
            where a.layer = 'publications' and g.geo_precision not in ('city', 'postal_code', 'coordinates')
            group by all order by n desc, g.city
            """
        ).fetchall()
    finally:
        con.close()
    print(
        f"\nWoS export: {city_rows}/{rows} addresses ({city_rows / rows:.1%}) at city level, "
        f"{city_weight:.1%} of the weight; misses: {misses}"
    )
    assert rows > 900
    assert city_rows / rows >= 0.95, misses


def test_manifest_inputs_carry_the_conversion_counts(database: Path) -> None:
    """The adapter's counts (records and addresses read, quarantine per unit and reason) reach
    the edition manifest's inputs, without machine paths (issue 17, item 11)."""
    from stclusters import publish
    from stclusters.config import RunParams

    params = RunParams(workspace_dir=str(database.parent.parent), edition=2023)
    layer = publish._inputs(params)["layers"]["publications"]
    conversion = layer["conversion"]
    assert conversion["records_read"] == 500 and conversion["documents_written"] == 358
    assert conversion["addresses_read"] == 917 and conversion["quarantined"] == {}
    assert "quarantine_file" not in conversion and "summary" not in conversion
    assert "conversion" not in publish._inputs(params)["layers"]["patents"]  # canonical: nothing converted
