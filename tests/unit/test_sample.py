"""The embedded sample world: format, realism, determinism, and its calibration on GII 2023.

The calibration check runs the method on the committed 2023 dumps with tools independent of the
pipeline (scikit-learn's DBSCAN on H3 cell centres, the city step's resolution rule in Python)
and compares the result with the published table (dbt_project/seeds/gii_2023_published.csv).
"""

from __future__ import annotations

import csv
import gzip
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import h3
import numpy as np
import pytest
from scipy.stats import kendalltau
from sklearn.cluster import DBSCAN

from stclusters.config import RunParams, source_set
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS
from stclusters.synthetic import sample

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "data" / "sample"
SEEDS = REPO / "dbt_project" / "seeds"
EDITION = 2023
R_KM = 6371.0088
RES = RunParams().h3_resolution  # the method's grid
# WIPO writes English exonyms where GeoNames' main name differs; the pipeline uses GeoNames names.
EXONYMS = {"Köln": "Cologne", "Xi’an": "Xi'an"}


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def dumps() -> dict[str, tuple[list[str], list[dict[str, str]]]]:
    return {layer: read_rows(DATA / str(EDITION) / f"{layer}.csv.gz") for layer in sample.LAYERS}


@pytest.fixture(scope="module")
def index() -> sample.PlaceIndex:
    return sample.load_places()


# --------------------------------------------------------------------------------------------
# The method, re-implemented independently of the pipeline
# --------------------------------------------------------------------------------------------


@dataclass
class Located:
    layer: str
    weight: float
    cell: int | None
    place: sample.GPlace | None
    country: str


def _valid(layer: str, row: dict[str, str], known: set[str]) -> bool:
    if layer == "patents":
        if not row["application_id"]:
            return False
        try:
            date.fromisoformat(row["publication_date"])
        except ValueError:
            return False
    else:
        if not row["article_id"] or not row["publication_year"].isdigit():
            return False
    return row["country"] in known


def locate(
    layer: str, rows: list[dict[str, str]], index: sample.PlaceIndex, edition: int
) -> tuple[list[Located], float]:
    """Counted documents' addresses with their weight, H3 cell and gazetteer place;
    and the number of counted documents (the world total of the layer)."""
    known = {p.country for p in index.places}
    params = RunParams(edition=edition)
    first, last = params.patents_window if layer == "patents" else params.publications_window
    id_col = "application_id" if layer == "patents" else "article_id"
    docs: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        if not _valid(layer, row, known):
            continue
        year = int(row["publication_date"][:4]) if layer == "patents" else int(row["publication_year"])
        if not first <= year <= last or (layer == "publications" and row["document_type"] != "Article"):
            continue
        docs[row[id_col]].append(row)
    cache: dict[tuple, tuple[int | None, sample.GPlace | None]] = {}
    located = []
    for addresses in docs.values():
        w = 1.0 / len(addresses)
        for row in addresses:
            key = (row["country"], row["city"], row["region"], row["latitude"], row["longitude"])
            if key not in cache:
                cache[key] = _geocode(row, index)
            cell, place = cache[key]
            located.append(Located(layer, w, cell, place, row["country"]))
    return located, float(len(docs))


def _geocode(row: dict[str, str], index: sample.PlaceIndex) -> tuple[int | None, sample.GPlace | None]:
    if row["latitude"] and row["longitude"]:
        lat, lng = float(row["latitude"]), float(row["longitude"])
        near = index.near(lat, lng, 5.0)
        place = (
            max(near, key=lambda t: (t[0].population / (1 + t[1]) ** 2, -t[0].geonameid))[0] if near else None
        )
        return h3.str_to_int(h3.latlng_to_cell(lat, lng, RES)), place
    if row["city"]:
        admin1 = row["region"] if row["country"] == "US" and len(row["region"]) == 2 else None
        place = index.resolve(row["country"], row["city"], admin1)
        if place is not None:
            return h3.str_to_int(h3.latlng_to_cell(place.latitude, place.longitude, RES)), place
    return None, None


def dbscan_labels(weights: dict[int, float], min_weight: float, eps_km: float) -> dict[int, int]:
    cells = sorted(weights)
    centres = np.radians([h3.cell_to_latlng(h3.int_to_str(c)) for c in cells])
    w = np.array([weights[c] for c in cells])
    labels = (
        DBSCAN(
            eps=eps_km / R_KM, min_samples=int(np.ceil(min_weight)), metric="haversine", algorithm="ball_tree"
        )
        .fit(centres, sample_weight=w)
        .labels_
    )
    return {c: int(lab) for c, lab in zip(cells, labels, strict=True) if lab >= 0}


@dataclass
class FoundCluster:
    name: str
    economy: str
    pct: float
    pub: float
    pct_share: float
    pub_share: float

    @property
    def score(self) -> float:
        return self.pct_share + self.pub_share


def run_method(dumps: dict, index: sample.PlaceIndex, edition: int = EDITION) -> list[FoundCluster]:
    params = source_set("sample").get("params") or {}
    thresholds = {"patents": float(params["min_patents"]), "publications": float(params["min_publications"])}
    eps = RunParams().eps_km
    located, world = {}, {}
    for layer in sample.LAYERS:
        located[layer], world[layer] = locate(layer, dumps[layer][1], index, edition)
    labels = {}
    for layer in sample.LAYERS:
        weights: dict[int, float] = defaultdict(float)
        for a in located[layer]:
            if a.cell is not None:
                weights[a.cell] += a.weight
        labels[layer] = dbscan_labels(weights, thresholds[layer], eps)
    # merge: layer clusters sharing a cell are one cluster (union-find)
    parent: dict[tuple, tuple] = {}

    def find(x: tuple) -> tuple:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for layer in sample.LAYERS:
        for lab in labels[layer].values():
            find((layer, lab))
    for cell, lab in labels["patents"].items():
        if cell in labels["publications"]:
            parent[find(("patents", lab))] = find(("publications", labels["publications"][cell]))
    cell_cluster = {}
    for layer in sample.LAYERS:
        for cell, lab in labels[layer].items():
            cell_cluster[cell] = find((layer, lab))
    sums: dict[tuple, dict[str, float]] = defaultdict(lambda: {"patents": 0.0, "publications": 0.0})
    places: dict[tuple, Counter] = defaultdict(Counter)
    countries: dict[tuple, Counter] = defaultdict(Counter)
    for layer in sample.LAYERS:
        for a in located[layer]:
            cid = cell_cluster.get(a.cell)
            if cid is None:
                continue
            share = a.weight / world[layer]
            sums[cid][layer] += a.weight
            countries[cid][a.country] += share
            if a.place is not None:
                places[cid][(a.place.name, a.place.country, a.place.admin1)] += share
    found = []
    for cid, s in sums.items():
        ps, ss = s["patents"] / world["patents"], s["publications"] / world["publications"]
        found.append(
            FoundCluster(
                _name(places[cid], ps + ss),
                _economy(countries[cid], ps + ss),
                s["patents"],
                s["publications"],
                100 * ps,
                100 * ss,
            )
        )
    return sorted(found, key=lambda c: -c.score)


def _name(contributions: Counter, score: float) -> str:
    ranked = sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0][0]))
    named = [k for i, (k, v) in enumerate(ranked[:3]) if i == 0 or v >= 0.1 * score]
    parts = []
    for i, (name, country, admin1) in enumerate(named):
        nxt = named[i + 1] if i + 1 < len(named) else None
        state_ends = country == "US" and (nxt is None or (nxt[1], nxt[2]) != (country, admin1))
        parts.append(f"{name}, {admin1}" if state_ends else name)
    return "–".join(parts)


def _economy(contributions: Counter, score: float) -> str:
    return "/".join(
        c for c, v in sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0])) if v >= 0.05 * score
    )


def _wipo(name: str) -> str:
    for geonames, english in EXONYMS.items():
        name = name.replace(geonames, english)
    return name


@pytest.fixture(scope="module")
def found(dumps, index) -> list[FoundCluster]:
    return run_method(dumps, index)


@pytest.fixture(scope="module")
def published() -> list[dict[str, str]]:
    with (SEEDS / "gii_2023_published.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------------------------
# Calibration against the published table (e2e: the method on the full dumps takes ~30 s)
# --------------------------------------------------------------------------------------------


@pytest.mark.e2e  # runs the method on both dumps: ~30 s
def test_top_15_in_published_order(found, published):
    names = [_wipo(c.name) for c in found[:15]]
    assert names == [r["cluster_name"] for r in published[:15]]


@pytest.mark.e2e  # runs the method on both dumps: ~30 s
def test_published_clusters_found_with_their_names_and_economies(found, published):
    by_name = {_wipo(c.name): (rank, c) for rank, c in enumerate(found, start=1)}
    missing = [r["cluster_name"] for r in published if r["cluster_name"] not in by_name]
    assert not missing
    for r in published:
        assert by_name[r["cluster_name"]][1].economy == r["economy"], r["cluster_name"]


@pytest.mark.e2e  # runs the method on both dumps: ~30 s
def test_rank_correlation_over_the_34(found, published):
    rank = {_wipo(c.name): i for i, c in enumerate(found, start=1)}
    tau = kendalltau(
        [int(r["rank"]) for r in published], [rank[r["cluster_name"]] for r in published]
    ).statistic
    assert tau >= 0.9


@pytest.mark.e2e  # runs the method on both dumps: ~30 s
def test_shares_within_ten_percent(found, published):
    by_name = {_wipo(c.name): c for c in found}
    P, A = 1_256_000, 7_460_000  # the world totals of sample_world.yml
    for r in published:
        c = by_name[r["cluster_name"]]
        want_pct, want_pub = 100 * int(r["pct_applications"]) / P, 100 * int(r["articles"]) / A
        assert c.pub_share == pytest.approx(want_pub, rel=0.1), r["cluster_name"]
        assert c.score == pytest.approx(want_pct + want_pub, rel=0.1), r["cluster_name"]
        if want_pct >= 0.1:
            assert c.pct_share == pytest.approx(want_pct, rel=0.1), r["cluster_name"]


@pytest.mark.e2e  # runs the method on both dumps: ~30 s
def test_top_100_economy_counts(found):
    with (SEEDS / "gii_2023_economy_counts.csv").open(encoding="utf-8") as f:
        want = {r["economy"]: int(r["clusters_in_top_100"]) for r in csv.DictReader(f)}
    got = Counter(c.economy.split("/")[0] for c in found[:100])
    for economy, n in want.items():
        assert abs(got[economy] - n) <= 1, (economy, got[economy], n)


@pytest.mark.e2e  # runs the method on both dumps: ~30 s
def test_top_100_boundary_is_real(found):
    assert len(found) > 110
    assert 0.25 <= found[99].score <= 0.36
    assert found[100].score < found[99].score


# --------------------------------------------------------------------------------------------
# Format and realism
# --------------------------------------------------------------------------------------------


def test_columns_are_the_canonical_ones(dumps):
    assert dumps["patents"][0] == list(PATENT_COLUMNS)
    assert dumps["publications"][0] == list(PUBLICATION_COLUMNS)


def test_documents_per_layer_within_budget(dumps):
    for layer, col in (("patents", "application_id"), ("publications", "article_id")):
        docs = {r[col] for r in dumps[layer][1] if r[col]}
        assert 45_000 <= len(docs) <= 50_000, layer


def test_bad_rows_are_few_but_present(dumps, index):
    known = {p.country for p in index.places}
    for layer in sample.LAYERS:
        rows = dumps[layer][1]
        bad = sum(not _valid(layer, r, known) for r in rows)
        assert 0.001 <= bad / len(rows) <= 0.004, layer
        assert any(r["country"] == "XX" for r in rows)


def test_other_document_types_are_about_eight_percent(dumps):
    types = Counter()
    for r in dumps["publications"][1]:
        if r["address_seq"] == "1":
            types[r["document_type"]] += 1
    share = 1 - types["Article"] / sum(types.values())
    assert 0.06 <= share <= 0.10
    assert {"Review", "Meeting Abstract", "Proceedings Paper", "Editorial Material"} <= set(types)


def test_addresses_per_document(dumps):
    for layer, lo, hi, cap in (("patents", 2.6, 3.4, 8), ("publications", 3.5, 4.5, 10)):
        id_col, seq_col = sample.DOC_COLUMNS[layer]
        sizes: Counter = Counter()
        for r in dumps[layer][1]:
            sizes[r[id_col]] = max(sizes[r[id_col]], int(r[seq_col]))
        values = np.array(list(sizes.values()))
        assert lo <= values.mean() <= hi, layer
        assert values.min() == 1 and values.max() <= cap


def test_realistic_addresses(dumps):
    rows = dumps["patents"][1] + dumps["publications"][1]
    cities = Counter(r["city"] for r in rows)
    for spelling in ("東京", "TOKYO", "München", "Zurich", "서울", "北京", "Peking"):
        assert cities[spelling] > 0, spelling
    with_coordinates = sum(bool(r["latitude"]) for r in rows) / len(rows)
    assert 0.10 <= with_coordinates <= 0.20
    assert 0.2 <= sum(bool(r["postal_code"]) for r in rows) / len(rows) <= 0.5
    assert sum(bool(r["region"]) for r in rows) / len(rows) > 0.2


def test_specialisations(dumps):
    """Shenzhen's applications lean to digital communication, San Jose's to computers."""
    firsts: dict[str, Counter] = defaultdict(Counter)
    for r in dumps["patents"][1]:
        if r["inventor_seq"] == "1" and r["city"] in ("Shenzhen", "San Jose", "Munich") and r["ipc"]:
            firsts[r["city"]][r["ipc"].split(";")[0][:4]] += 1
    share = {c: v for c, v in firsts.items()}
    sz = share["Shenzhen"]
    assert 0.2 <= (sz["H04L"] + sz["H04W"]) / sum(sz.values()) <= 0.33
    sj = share["San Jose"]
    assert 0.17 <= (sj["G06F"] + sj["G06N"] + sj["G06T"]) / sum(sj.values()) <= 0.3
    mu = share["Munich"]
    assert 0.08 <= (mu["B60W"] + mu["B60L"] + mu["B62D"] + mu["B60R"]) / sum(mu.values()) <= 0.2


def test_top_applicants(dumps):
    applicants: dict[str, Counter] = defaultdict(Counter)
    for r in dumps["patents"][1]:
        if r["inventor_seq"] == "1":
            applicants[r["city"]][r["applicant"]] += 1
    assert applicants["Tokyo"].most_common(1)[0][0] == "Mitsubishi Electric Corp."
    assert applicants["Shenzhen"].most_common(1)[0][0] == "Huawei Technologies Co. Ltd."


def test_years_cover_the_window_with_growth(dumps):
    years = Counter(r["publication_date"][:4] for r in dumps["patents"][1] if r["inventor_seq"] == "1")
    assert years["2018"] < years["2022"]
    assert all(years[str(y)] > 0 for y in range(2018, 2023))
    assert 0 < years["2017"] + years["2023"] < 0.05 * sum(years.values())


# --------------------------------------------------------------------------------------------
# Determinism and other editions
# --------------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_regenerates_the_committed_files_byte_for_byte(tmp_path):
    written = sample.generate(EDITION, tmp_path)
    for w in written:
        assert w.path.read_bytes() == (DATA / str(EDITION) / w.path.name).read_bytes(), w.layer


def test_other_editions_shift_volumes(index):
    w23 = sample.build_world(2023, index=index)
    w25 = sample.build_world(2025, index=index)
    by_key = {c.key: c for c in w25.clusters}
    cn = [by_key[c.key].volume["patents"] / c.volume["patents"] for c in w23.clusters if c.country == "CN"]
    us = [by_key[c.key].volume["patents"] / c.volume["patents"] for c in w23.clusters if c.country == "US"]
    assert np.mean(cn) > 1.05 > 0.99 > np.mean(us)
    assert w23.totals == w25.totals


def test_write_is_deterministic(tmp_path):
    rows = [["WO2020000001", "2020-01-02", "1", "Tokyo", "", "", "JP", "", "", "X", ""]]
    a, b = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    sample.write_csv_gz(a, PATENT_COLUMNS, rows)
    sample.write_csv_gz(b, PATENT_COLUMNS, rows)
    assert a.read_bytes() == b.read_bytes()
    assert re.match(r"^application_id,publication_date", gzip.decompress(a.read_bytes()).decode())


def test_table_errors_name_the_entry(index):
    with pytest.raises(sample.SampleError, match="Atlantis"):
        index.find("Atlantis", "JP")
