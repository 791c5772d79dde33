"""Records, address rows, rows with a city and rows per country of the real-export corpus.

Converts every file listed in tests/fixtures/real/corpus.yml with the project's format adapters
(publications layer, ``format: auto``, each file on its own, no OpenAlex institutions file) and
counts from the adapters' canonical output only:

    .venv/bin/python tools/corpus_coverage.py            # table
    .venv/bin/python tools/corpus_coverage.py --json     # machine-readable

With ``--geocode`` the converted files go on through the land step and ``dbt build`` with the
embedded gazetteer (as tests/e2e/test_wos_geocoding.py does), and the counted address rows at
city level (city, postal code or coordinates) are printed per source (Web of Science, OpenAlex)
and country; ``--misses`` adds every address not at city level, grouped by why it missed:

    .venv/bin/python tools/corpus_coverage.py --geocode --misses

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


def run(corpus: Path, workdir: Path) -> list[FileCoverage]:
    """Every corpus file converted into ``workdir`` (``<file>.csv.gz``) and counted."""
    return [file_coverage(corpus, entry, workdir) for entry in corpus_entries()]


# ------------------------------------------------------------------ geocoded, through dbt

# issue 17's measure: counted address rows located at city level or finer
CITY_LEVEL = ("city", "postal_code", "coordinates")
MIN_COUNTRY_ROWS = 20  # the per-country target applies to countries with this many rows


def corpus_database(converted: list[Path], root: Path) -> Path:
    """The converted publication files, landed with the embedded gazetteer and built by dbt up to
    the coverage mart and the check summaries, one window over the corpus's years (1967-2026);
    returns the DuckDB file. (A patents layer is required: one inventor in Tokyo.)"""
    from stclusters.build.transform import run_dbt
    from stclusters.config import RunParams
    from stclusters.load.land import layer_inputs, load_database
    from stclusters.reference import gazetteer
    from stclusters.schema import PATENT_COLUMNS

    root.mkdir(parents=True, exist_ok=True)
    patents = root / "patents.csv.gz"
    with gzip.open(patents, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(PATENT_COLUMNS)
        writer.writerow(["WO2020000001", "2020-01-02", 1, "Tokyo", "", "", "JP", "", "", "Acme", "G06F"])
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


@dataclass
class Miss:
    """Counted address rows of one distinct address not located at city level."""

    file: str
    country: str
    why: str  # 'region' (located at region level) or the cascade's unmatched_reason
    city: str
    region: str
    postal_code: str
    organization: str
    rows: int


@dataclass
class GeocodedCoverage:
    """Counted address rows of one source (``wos``, ``openalex``) at city level."""

    source: str
    rows: int = 0
    city_rows: int = 0
    other_country: int = 0  # rows placed in another country than the one read (CN/HK/MO aside)
    countries: dict[str, tuple[int, int]] = field(default_factory=dict)  # country -> (rows, city rows)
    misses: list[Miss] = field(default_factory=list)

    def weak_countries(self, floor: float) -> dict[str, float]:
        """Countries with at least MIN_COUNTRY_ROWS rows whose city-level share is under ``floor``."""
        return {c: k / n for c, (n, k) in self.countries.items() if n >= MIN_COUNTRY_ROWS and k / n < floor}


def document_files(workdir: Path, files: list[FileCoverage]) -> dict[str, str]:
    """document id -> corpus file, from the converted files."""
    out: dict[str, str] = {}
    for f in files:
        path = workdir / f"{f.file}.csv.gz"
        if f.error or not f.rows or not path.is_file():
            continue
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                out[row["article_id"]] = f.file
    return out


def source_of(file: str) -> str:
    return "openalex" if file.startswith("openalex") else "wos"


def geocoded_coverage(database: Path, files_of: dict[str, str]) -> dict[str, GeocodedCoverage]:
    """Per source: counted address rows, at city level, per country, in another country, and the
    misses, from a database built by ``corpus_database``."""
    import duckdb

    con = duckdb.connect(str(database), read_only=True)
    try:
        rows = con.execute(
            f"""
            select
                a.document_id,
                a.country,
                a.organization,
                g.city,
                g.region,
                g.postal_code,
                g.geo_precision in {CITY_LEVEL} as is_city_level,
                coalesce(g.unmatched_reason, g.geo_precision) as why,
                coalesce(
                    g.place_country <> a.country
                    and not (a.country in ('CN', 'HK', 'MO') and g.place_country in ('CN', 'HK', 'MO')),
                    false
                ) as is_other_country
            from int_addresses_weighted a join int_addresses_geocoded g using (address_key)
            where a.layer = 'publications'
            """
        ).fetchall()
    finally:
        con.close()
    out: dict[str, GeocodedCoverage] = {}
    counts: dict[str, Counter[tuple[str, bool]]] = {}
    misses: dict[str, Counter[tuple[str, ...]]] = {}
    for doc, country, org, city, region, postal, is_city, why, is_other in rows:
        file = files_of.get(doc, "?")
        cov = out.setdefault(source_of(file), GeocodedCoverage(source_of(file)))
        cov.rows += 1
        cov.city_rows += bool(is_city)
        cov.other_country += bool(is_other)
        counts.setdefault(cov.source, Counter())[(country or "", bool(is_city))] += 1
        if not is_city:
            key = (file, country or "", why or "", city or "", region or "", postal or "", org or "")
            misses.setdefault(cov.source, Counter())[key] += 1
    for source, cov in out.items():
        per = counts[source]
        names = sorted({c for c, _ in per}, key=lambda c: (-(per[(c, True)] + per[(c, False)]), c))
        cov.countries = {c: (per[(c, True)] + per[(c, False)], per[(c, True)]) for c in names}
        cov.misses = [
            Miss(*key, rows=n)
            # by reason, then country, then the address, so one address's files stand together
            for key, n in sorted(
                misses.get(source, Counter()).items(),
                key=lambda kv: (kv[0][2], kv[0][1], kv[0][3:], kv[0][0]),
            )
        ]
    return out


def print_geocoded(coverage: dict[str, GeocodedCoverage], with_misses: bool) -> None:
    for cov in sorted(coverage.values(), key=lambda c: c.source):
        print(
            f"\ngeocoded, {cov.source}: {cov.city_rows} / {cov.rows} counted address rows at city level "
            f"({share(cov.city_rows, cov.rows)}); in another country: {cov.other_country}"
        )
        big = [(c, n, k) for c, (n, k) in cov.countries.items() if n >= MIN_COUNTRY_ROWS]
        print(
            f"  countries with >= {MIN_COUNTRY_ROWS} rows: "
            + ", ".join(f"{c} {k}/{n} ({share(k, n)})" for c, n, k in big)
        )
        weak = cov.weak_countries(0.95)
        print(
            "  under 95%: "
            + (
                ", ".join(f"{c} {100 * v:.1f}%" for c, v in sorted(weak.items(), key=lambda kv: kv[1]))
                or "none"
            )
        )
        if not with_misses:
            continue
        by_why = Counter[str]()
        for m in cov.misses:
            by_why[m.why] += m.rows
        print("  misses by reason: " + ", ".join(f"{w} {n}" for w, n in by_why.most_common()))
        for m in cov.misses:
            print(
                f"    {m.rows:>3}  {m.why:<14} {m.country:<3} city={m.city!r} region={m.region!r} "
                f"postal={m.postal_code!r} org={m.organization!r}  [{m.file}]"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=CORPUS,
        help="folder of the corpus files (default: $STCLUSTERS_REAL_CORPUS)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per file")
    parser.add_argument(
        "--geocode",
        action="store_true",
        help="also land the converted files and build the geocoding with dbt (about 1-2 min)",
    )
    parser.add_argument(
        "--misses", action="store_true", help="with --geocode: list the addresses not at city level"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the adapters' per-file warnings would drown the table
    with tempfile.TemporaryDirectory(prefix="corpus-coverage-") as tmp:
        workdir = Path(tmp)
        files = run(args.corpus, workdir)
        geocoded: dict[str, GeocodedCoverage] = {}
        if args.geocode:
            converted = [workdir / f"{f.file}.csv.gz" for f in files if not f.error and f.rows]
            database = corpus_database(converted, workdir / "db")
            geocoded = geocoded_coverage(database, document_files(workdir, files))
    if args.json:
        for f in files:
            print(json.dumps(asdict(f)))
        for cov in geocoded.values():
            print(json.dumps(asdict(cov)))
    else:
        print_table(files)
        print_geocoded(geocoded, args.misses)
    return 0


if __name__ == "__main__":
    sys.exit(main())
