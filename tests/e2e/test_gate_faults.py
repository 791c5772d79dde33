"""Injected faults must be stopped by the gate (or the load step) with the right message, and
nothing may be published: neither into an empty output folder nor over an edition already
published, which must stay byte-for-byte as it was.

One small world (8 cities, ~2,000 address rows per layer) is pulled, built, validated and
published once per module. Each fault then runs the real task bodies (load, build,
validate_gate, publish_edition) in its own workspace. To keep the module fast, a fault's
workspace reuses the base run's gazetteer: its ``landed.json`` is the base one with the layers
pointing at the faulty dumps (building the gazetteer again would add ~20 s per fault).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from stclusters import tasks
from stclusters.gate.validate import GateFailed
from stclusters.load.land import LoadError
from stclusters.publish.publish import PublishError, verify
from stclusters.schema import COLUMNS

pytestmark = pytest.mark.e2e

EDITION = 2023
PATENT_YEARS = (2018, 2022)  # edition 2023's windows with the default lags
ARTICLE_YEARS = (2017, 2021)

# (city, country, region, documents per layer); all of them are in the embedded gazetteer.
CITIES = [
    ("Tokyo", "JP", "", 300),
    ("Yokohama", "JP", "", 120),
    ("Kawasaki", "JP", "", 60),
    ("Munich", "DE", "", 120),
    ("Paris", "FR", "", 150),
    ("Boston", "US", "MA", 100),
    ("Cambridge", "US", "MA", 80),
    ("Seoul", "KR", "", 120),
]

Rows = list[list]


def world_rows(layer: str, years: tuple[int, int], seed: int = 7) -> Rows:
    """1-3 addresses per document, co-authors in the first address's country."""
    rnd = random.Random(seed + (layer == "publications"))
    rows: Rows = []
    n = 0
    for city, cc, region, volume in CITIES:
        same_country = [c for c in CITIES if c[1] == cc]
        for _ in range(volume):
            n += 1
            year = rnd.randint(*years)
            for seq in range(1, rnd.randint(1, 3) + 1):
                c2, cc2, r2, _ = (city, cc, region, 0) if seq == 1 else rnd.choice(same_country)
                if layer == "patents":
                    rows.append(
                        [f"WO{year}{n:06d}", f"{year}-03-05", seq, c2, "", r2, cc2, "", "", "Acme", "G06F"]
                    )
                else:
                    rows.append(
                        [f"WOS:{n:012d}", year, "Article", seq, "Univ", c2, "", r2, cc2, "", "", "Physics"]
                    )
    return rows


def write_dump(path: Path, layer: str, rows: Rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS[layer])
        writer.writerows(rows)
    return path


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@dataclass
class Base:
    root: Path
    conf: dict
    out: Path
    landed: dict
    published_hashes: dict[str, str]
    good: dict[str, Rows]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Base:
    root = tmp_path_factory.mktemp("gate_faults")
    good = {
        "patents": world_rows("patents", PATENT_YEARS),
        "publications": world_rows("publications", ARTICLE_YEARS),
    }
    dumps = {
        layer: write_dump(root / "dumps" / f"{layer}.csv.gz", layer, rows) for layer, rows in good.items()
    }
    conf = {
        "edition": EDITION,
        "patents_uri": str(dumps["patents"]),
        "publications_uri": str(dumps["publications"]),
        "min_patents": 50,
        "min_publications": 50,
        # the default, stated: the sample source set (the default one) tolerates 5%
        "max_out_of_window_share": 0.0,
        "top_n": 4,
        "workspace_dir": str(root / "ws-base"),
        "output_dir": str(root / "out"),
    }
    result = tasks.run_all(conf)
    assert result["validate_gate"]["passed"] is True
    assert result["publish_edition"]["outcome"] == "published"
    out = root / "out"
    assert verify(out / str(EDITION)) == []
    landed = json.loads((root / "ws-base" / str(EDITION) / "landing" / "landed.json").read_text())
    return Base(root, conf, out, landed, tree_hashes(out), good)


def fault_conf(base: Base, name: str, rows: dict[str, Rows]) -> dict:
    """A workspace whose landing holds the faulty dumps (and the base run's gazetteer)."""
    from stclusters.pull.sources import sha256_file

    record = json.loads(json.dumps(base.landed))
    for layer, layer_rows in rows.items():
        path = write_dump(base.root / name / f"{layer}.csv.gz", layer, layer_rows)
        entry = {
            "uri": str(path),
            "path": str(path),
            "size": path.stat().st_size,
            "sha256": sha256_file(path),
        }
        record["layers"][layer] = {
            "format": "canonical",
            "files": [{**entry, "fetched_at": "2026-01-01T00:00:00Z", "reused": False}],
            "canonical": [str(path)],
        }
    landing = base.root / f"ws-{name}" / str(EDITION) / "landing"
    landing.mkdir(parents=True)
    (landing / "landed.json").write_text(json.dumps(record))
    return {**base.conf, "workspace_dir": str(base.root / f"ws-{name}")}


def assert_nothing_published(base: Base, conf: dict, name: str) -> None:
    """Publishing after the failure is refused, over the published edition and into a new folder."""
    with pytest.raises(PublishError, match="nothing published"):
        tasks.publish_edition(conf)
    assert tree_hashes(base.out) == base.published_hashes
    fresh = base.root / f"out-{name}"
    with pytest.raises(PublishError, match="nothing published"):
        tasks.publish_edition({**conf, "output_dir": str(fresh)})
    assert not (fresh / str(EDITION)).exists()


def assert_gate_blocks(base: Base, conf: dict, name: str, expected_checks: set[str]) -> GateFailed:
    tasks.load(conf)
    tasks.build(conf)
    with pytest.raises(GateFailed) as caught:
        tasks.validate_gate(conf)
    message = str(caught.value)
    for check in expected_checks:
        assert check in message, f"{check} not named in: {message}"
    # the report named in the message exists and is kept with its Data Docs
    report = Path(message.split("Report: ")[1].split(" (Data Docs")[0])
    assert report.is_file()
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["passed"] is False
    assert expected_checks <= {r["check"] for r in summary["critical_failures"]}
    assert Path(summary["data_docs"]).is_file()
    assert tree_hashes(base.out) == base.published_hashes
    assert_nothing_published(base, conf, name)
    return caught.value


def _with_rows(base: Base, layer: str, change: Callable[[Rows], Rows]) -> dict[str, Rows]:
    rows = {k: [list(r) for r in v] for k, v in base.good.items()}
    rows[layer] = change(rows[layer])
    return rows


def test_ungeocodable_addresses_block(base: Base) -> None:
    rnd = random.Random(30)

    def unknown_places(rows: Rows, city_col: int) -> Rows:
        for r in rows:
            if rnd.random() < 0.30:
                r[city_col] = "Qxzzyville Nowhere"
        return rows

    rows = _with_rows(base, "patents", lambda r: unknown_places(r, 3))
    rows["publications"] = unknown_places(rows["publications"], 5)
    conf = fault_conf(base, "ungeocodable", rows)
    err = assert_gate_blocks(
        base,
        conf,
        "ungeocodable",
        {"counted.geocoded_share_per_layer", "counted.geocoded_share_per_major_country"},
    )
    assert "'layer': 'patents'" in str(err) and "'layer': 'publications'" in str(err)


def test_duplicated_documents_block(base: Base) -> None:
    def duplicate_first_documents(rows: Rows) -> Rows:
        first_ids = list(dict.fromkeys(r[0] for r in rows))[:40]
        return rows + [list(r) for r in rows if r[0] in set(first_ids)]

    conf = fault_conf(base, "duplicates", _with_rows(base, "patents", duplicate_first_documents))
    assert_gate_blocks(
        base, conf, "duplicates", {"raw.document_address_unique", "counted.document_id_unique"}
    )


def test_year_outside_window_blocks(base: Base) -> None:
    def move_to_2010(rows: Rows) -> Rows:
        old_ids = set(list(dict.fromkeys(r[0] for r in rows))[:10])
        for r in rows:
            if r[0] in old_ids:
                r[1] = 2010
        return rows

    conf = fault_conf(base, "old_year", _with_rows(base, "publications", move_to_2010))
    err = assert_gate_blocks(base, conf, "old_year", {"counted.years_in_window"})
    assert "counted.layer_has_documents" not in str(err)


def test_layer_with_no_counted_document_blocks(base: Base) -> None:
    rows = dict(base.good)
    rows["publications"] = world_rows("publications", (2000, 2004))
    conf = fault_conf(base, "no_articles", rows)
    assert_gate_blocks(base, conf, "no_articles", {"counted.layer_has_documents"})


def test_empty_dump_stops_the_load(base: Base) -> None:
    conf = fault_conf(base, "empty_dump", {"publications": []})
    with pytest.raises(LoadError, match="no data rows"):
        tasks.load(conf)
    assert tree_hashes(base.out) == base.published_hashes
    assert_nothing_published(base, conf, "empty_dump")


@pytest.fixture
def base_copy(base: Base) -> dict:
    """A copy of the validated base workspace, to tamper with."""
    name = f"tamper-{len(list(base.root.glob('ws-tamper-*')))}"
    shutil.copytree(base.root / "ws-base", base.root / f"ws-{name}")
    return {**base.conf, "workspace_dir": str(base.root / f"ws-{name}")}


def _tamper(conf: dict, sql: str) -> None:
    db = Path(conf["workspace_dir"]) / str(EDITION) / "stclusters.duckdb"
    con = duckdb.connect(str(db))
    try:
        con.execute(sql)
    finally:
        con.close()


def test_ranking_tampered_before_the_gate_blocks(base: Base, base_copy: dict) -> None:
    _tamper(base_copy, "update main.ranking set score = score + 0.05 where rank = 2")
    with pytest.raises(GateFailed) as caught:
        tasks.validate_gate(base_copy)
    for check in ("ranking.score_is_pct_plus_pub", "ranking.matches_clusters"):
        assert check in str(caught.value)
    assert tree_hashes(base.out) == base.published_hashes
    assert_nothing_published(base, base_copy, "tampered_before")


def test_ranking_tampered_after_the_gate_is_not_published(base: Base, base_copy: dict) -> None:
    assert tasks.validate_gate(base_copy)["passed"] is True
    _tamper(base_copy, "update main.ranking set name = 'Atlantis' where rank = 1")
    fresh = base.root / "out-tampered-after"
    for conf in (base_copy, {**base_copy, "output_dir": str(fresh)}):
        with pytest.raises(PublishError, match=r"data changed after validation run .*ranking\.csv"):
            tasks.publish_edition(conf)
    assert tree_hashes(base.out) == base.published_hashes
    assert not (fresh / str(EDITION)).exists()


def test_published_edition_still_verifies(base: Base) -> None:
    assert verify(base.out / str(EDITION)) == []
    assert tree_hashes(base.out) == base.published_hashes
