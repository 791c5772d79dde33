"""Records, address rows, rows with a city and rows per country of the real-export corpus.

Converts every file listed in tests/fixtures/real/corpus.yml with the project's format adapters
(publications layer, ``format: auto``, each file on its own, no OpenAlex institutions file) and
counts from the adapters' canonical output only: no geocoding (that is measured through dbt).

    .venv/bin/python tools/corpus_coverage.py            # table
    .venv/bin/python tools/corpus_coverage.py --json     # machine-readable

A file an adapter cannot read is listed with the adapter's error in place of numbers.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import logging
import os
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from stclusters.load.formats import convert

PROVENANCE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "real"  # corpus.yml
# The files themselves are not committed (tests/fixtures/real/README.md, "Where the files live").
CORPUS = Path(os.environ.get("STCLUSTERS_REAL_CORPUS", PROVENANCE))


@dataclass
class FileCoverage:
    file: str
    format: str
    records: int  # in corpus.yml, counted independently of the adapters
    records_read: int = 0
    documents: int = 0  # records that gave at least one canonical row
    rows: int = 0  # canonical address rows
    rows_with_city: int = 0
    quarantined: int = 0
    countries: dict[str, int] = field(default_factory=dict)  # rows per country
    countries_with_city: dict[str, int] = field(default_factory=dict)  # rows with a city per country
    error: str = ""


def corpus_entries() -> list[dict[str, object]]:
    return list(yaml.safe_load((PROVENANCE / "corpus.yml").read_text(encoding="utf-8"))["files"])


def file_coverage(corpus: Path, entry: dict[str, object], workdir: Path) -> FileCoverage:
    name = str(entry["file"])
    cov = FileCoverage(file=name, format=str(entry["format"]), records=int(str(entry["records"])))
    out = workdir / f"{name}.csv.gz"
    try:
        report = convert("auto", [corpus / name], "publications", out)
    except Exception as exc:  # any failure is reported: listing what the adapter says is the point
        cov.error = f"{type(exc).__name__}: {exc}"
        return cov
    cov.records_read = report.records_read
    cov.documents = report.documents_written
    cov.quarantined = len(report.quarantined)
    countries: Counter[str] = Counter()
    with_city: Counter[str] = Counter()
    with gzip.open(out, "rt", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            countries[row["country"]] += 1
            if row["city"].strip():
                with_city[row["country"]] += 1
    cov.rows, cov.rows_with_city = countries.total(), with_city.total()
    cov.countries = dict(countries.most_common())
    cov.countries_with_city = dict(with_city.most_common())
    return cov


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def print_table(files: list[FileCoverage]) -> None:
    widths = {"records": 7, "read": 5, "docs": 5, "rows": 5, "city": 5, "city%": 6, "quar": 5}
    head = f"{'file':<40} {'format':<15} " + " ".join(f"{c:>{w}}" for c, w in widths.items())
    head += "  countries"
    print(head)
    print("-" * len(head))
    total: Counter[str] = Counter()
    countries: Counter[str] = Counter()
    with_city: Counter[str] = Counter()
    for f in files:
        if f.error:
            print(f"{f.file:<40} {f.format:<15} {f.records:>7}  ERROR {f.error}")
            continue
        top = ", ".join(f"{c} {n}" for c, n in list(f.countries.items())[:6])
        print(
            f"{f.file:<40} {f.format:<15} {f.records:>7} {f.records_read:>5} {f.documents:>5} {f.rows:>5} "
            f"{f.rows_with_city:>5} {share(f.rows_with_city, f.rows):>6} {f.quarantined:>5}  {top}"
        )
        total.update(records=f.records, read=f.records_read, docs=f.documents, rows=f.rows)
        total.update(city=f.rows_with_city, quarantined=f.quarantined)
        countries.update(f.countries)
        with_city.update(f.countries_with_city)
    failed = [f.file for f in files if f.error]
    print("-" * len(head))
    print(
        f"overall: {len(files)} files ({len(failed)} unreadable), {total['records']} records in corpus.yml, "
        f"{total['read']} read, {total['docs']} with rows, {total['rows']} address rows, "
        f"{total['city']} with a city ({share(total['city'], total['rows'])}), "
        f"{total['quarantined']} quarantined"
    )
    print("rows per country (rows with a city / rows):")
    for country, n in countries.most_common():
        print(
            f"  {country or '(empty)':<8} {with_city[country]:>5} / {n:<5} {share(with_city[country], n):>6}"
        )


def run(corpus: Path) -> list[FileCoverage]:
    with tempfile.TemporaryDirectory(prefix="corpus-coverage-") as tmp:
        return [file_coverage(corpus, entry, Path(tmp)) for entry in corpus_entries()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=CORPUS,
        help="folder of the corpus files (default: $STCLUSTERS_REAL_CORPUS)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the adapters' per-file warnings would drown the table
    files = run(args.corpus)
    if args.json:
        for f in files:
            print(json.dumps(asdict(f)))
    else:
        print_table(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
