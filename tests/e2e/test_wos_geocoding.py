"""The real Web of Science export (tests/fixtures/wos/black-silicon-savedrecs.txt, 500 records)
through pull -> WoS adapter -> load -> dbt build: the share of its counted addresses that the
pipeline geocodes to a city (>= 97%), and the list of those it misses; then every Web of Science
file of the real-export corpus (provenance in tests/fixtures/real; where its files are:
tests/realcorpus.py) the same way (docs/geocoding.md)."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import duckdb
import pytest

from realcorpus import CORPUS, ENTRIES, needs_corpus
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


def test_city_level_share_of_the_real_export_is_at_least_97_percent(database: Path) -> None:
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
    assert city_rows / rows >= 0.97, misses


def test_manifest_inputs_carry_the_conversion_counts(database: Path) -> None:
    """The adapter's counts (records and addresses read, quarantine per unit and reason) reach
    the edition manifest's inputs, without machine paths (issue 17, item 11)."""
    from stclusters.config import RunParams
    from stclusters.publish import publish

    params = RunParams(workspace_dir=str(database.parent.parent), edition=2023)
    layer = publish._inputs(params)["layers"]["publications"]
    conversion = layer["conversion"]
    assert conversion["records_read"] == 500 and conversion["documents_written"] == 358
    assert conversion["addresses_read"] == 917 and conversion["quarantined"] == {}
    assert "quarantine_file" not in conversion and "summary" not in conversion
    assert "conversion" not in publish._inputs(params)["layers"]["patents"]  # canonical: nothing converted


# ------------------------------------------------------------------ the real-export corpus

# issue 17: at least 98% of the counted address rows at city level (city, postal code or
# coordinates) overall, at least 95% for every country with 20 or more addresses
MIN_CITY_SHARE = 0.98
MIN_CITY_SHARE_PER_COUNTRY = 0.95
MIN_COUNTRY_ROWS = 20
CITY_LEVEL = "('city', 'postal_code', 'coordinates')"


def _corpus_files(kinds: tuple[str, ...]) -> list[Path]:
    return [CORPUS / str(e["file"]) for e in ENTRIES if str(e["format"]).split("-")[0] in kinds]


@pytest.fixture(scope="module")
def corpus_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (CORPUS / ENTRIES[0]["file"]).is_file():
        pytest.skip(needs_corpus.kwargs["reason"])
    """Every Web of Science file of tests/fixtures/real through its adapter (format auto), the
    land step and dbt build up to the coverage mart and the check summaries, with the real
    embedded gazetteer. A file the adapter refuses is reported and left out."""
    from stclusters.build.transform import run_dbt
    from stclusters.config import RunParams
    from stclusters.load.formats import convert
    from stclusters.load.land import layer_inputs, load_database
    from stclusters.reference import gazetteer

    root = tmp_path_factory.mktemp("corpus")
    converted: list[Path] = []
    for path in _corpus_files(("wos",)):
        out = root / f"{path.name}.csv.gz"
        try:
            report = convert("auto", [path], "publications", out)
        except Exception as exc:  # the adapter's own error; the coverage is measured on the rest
            print(f"\ncorpus: {path.name} not read: {type(exc).__name__}: {exc}")
            continue
        if report.rows_written:  # an export without addresses (no C1) has nothing to geocode
            converted.append(out)
    patents = root / "patents.csv.gz"
    with gzip.open(patents, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PATENT_COLUMNS)
        writer.writerow(["WO2020000001", "2020-01-02", 1, "Tokyo", "", "", "JP", "", "", "Acme", "G06F"])
    # the corpus spans 1974-2026: one window over all of it
    params = RunParams(edition=2028, window_years=60, workspace_dir=str(root / "ws"))
    built = gazetteer.build_gazetteer(root / "gazetteer")
    load_database(
        params.duckdb_path,
        layer_inputs({"patents": [patents], "publications": converted}),
        built,
        max_quarantine_share=1.0,
    )
    run_dbt(params, "build", ["--select", "+geocoding_coverage", "+check_summaries"])
    return params.duckdb_path


@pytest.fixture(scope="module")
def corpus_coverage(corpus_database: Path) -> dict:
    """Counted address rows per country, at city level per country, the misses and the rows
    placed in another country, from the corpus database."""
    con = duckdb.connect(str(corpus_database), read_only=True)
    try:
        per_country = con.execute(
            f"""
            select
                a.country,
                count(*) as n,
                count(*) filter (where g.geo_precision in {CITY_LEVEL}) as n_city
            from int_addresses_weighted a join int_addresses_geocoded g using (address_key)
            where a.layer = 'publications'
            group by all order by n desc, a.country
            """
        ).fetchall()
        misses = con.execute(
            f"""
            select g.country, g.city, g.region, g.geo_precision, count(*) as n
            from int_addresses_weighted a join int_addresses_geocoded g using (address_key)
            where a.layer = 'publications' and g.geo_precision not in {CITY_LEVEL}
            group by all order by n desc, g.country, g.city
            """
        ).fetchall()
        other_country = con.execute(
            "select addresses_in_other_country from check_summaries where layer = 'publications'"
        ).fetchone()[0]
    finally:
        con.close()
    rows = sum(n for _, n, _ in per_country)
    city_rows = sum(c for _, _, c in per_country)
    shares = {c: k / n for c, n, k in per_country if n >= MIN_COUNTRY_ROWS}
    print(
        f"\ncorpus, Web of Science files: {city_rows}/{rows} addresses ({city_rows / rows:.1%}) at city level"
    )
    print("  " + ", ".join(f"{c} {k}/{n} ({k / n:.1%})" for c, n, k in per_country if n >= MIN_COUNTRY_ROWS))
    print(f"placed in another country: {other_country}; misses: {misses}")
    return {
        "rows": rows,
        "city_share": city_rows / rows,
        "shares": shares,
        "misses": misses,
        "other": other_country,
    }


def test_corpus_no_address_in_another_country(corpus_coverage: dict) -> None:
    assert corpus_coverage["rows"] > 4000
    assert corpus_coverage["other"] == 0


def test_corpus_city_level_does_not_regress(corpus_coverage: dict) -> None:
    """The measured level (docs/geocoding.md: 96.4% overall, 82.8% for the weakest country with
    20 or more addresses), as a floor."""
    assert corpus_coverage["city_share"] >= 0.96, corpus_coverage["misses"]
    weak = {c: round(v, 3) for c, v in corpus_coverage["shares"].items() if v < 0.82}
    assert not weak, (weak, corpus_coverage["misses"])


@pytest.mark.xfail(
    strict=False,
    reason="issue 17's target is not reached: most misses are places missing from the embedded "
    "GeoNames extract (< 500 inhabitants or absent) and region-only addresses (docs/geocoding.md)",
)
def test_corpus_city_level_meets_the_target(corpus_coverage: dict) -> None:
    weak = {c: round(v, 3) for c, v in corpus_coverage["shares"].items() if v < MIN_CITY_SHARE_PER_COUNTRY}
    assert not weak, weak
    assert corpus_coverage["city_share"] >= MIN_CITY_SHARE
