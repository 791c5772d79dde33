"""Injected faults must be stopped by the gate (or the load step) with the right message, and
nothing may be published: neither into an empty output folder nor over an edition already
published, which must stay byte-for-byte as it was.

One small world (8 cities, ~2,000 address rows per layer) is pulled, built, validated and
published once per session (tests/e2e/conftest.py, ``published_base``). Each fault then runs
the real task bodies (load, build, validate_gate, publish_edition) in its own workspace. To keep
the module fast, a fault's workspace reuses the base run's gazetteer: its ``landed.json`` is the
base one with the layers pointing at the faulty dumps (building the gazetteer again would add
~30 s per fault); a fault that runs the real pull shares the session's gazetteer cache
(``worlds.share_gazetteer``)."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from stclusters import tasks
from stclusters.gate.validate import GateFailed
from stclusters.load.land import LoadError
from stclusters.publish.publish import PublishError, verify
from worlds import EDITION, Base, Rows, share_gazetteer, tree_hashes, world_rows, write_dump

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def base(published_base: Base) -> Base:
    return published_base


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


def test_addresses_without_a_country_stop_the_build(base: Base) -> None:
    """An empty country field is loaded (the load refuses an unknown code, not a missing one),
    and dbt's not_null test on the staged country stops the build, naming the rows; a country of
    spaces only is no code at all: quarantined by the load. Nothing is published."""
    from stclusters.build.transform import TransformError

    def without_country(rows: Rows) -> Rows:
        for r in rows[:7]:
            r[8] = ""
        rows[7][8] = "   "
        return rows

    conf = fault_conf(base, "no_country", _with_rows(base, "publications", without_country))
    tasks.load(conf)
    db = Path(conf["workspace_dir"]) / str(EDITION) / "stclusters.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from raw.publications where country is null").fetchone()[0] == 7
        quarantined = con.execute(
            "select field, reason from raw.quarantine where layer = 'publications'"
        ).fetchall()
    assert quarantined == [("country", "unknown country code")]
    with pytest.raises(TransformError, match=r"not_null_stg_publications__addresses_country.*Got 7 results"):
        tasks.build(conf)
    assert_nothing_published(base, conf, "no_country")


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


def test_document_count_drop_blocks_and_a_jump_warns(base: Base, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 18 item 1: edition 2024 lands 40% of the previous edition's publications (a truncated
    dump) and 2.5 times its patents. Against the published 2023 (a copy of the base output), the
    drop fails the gate and nothing is published; the jump is a warning, and alone (any drop
    tolerated with max_count_drop=1) it lets the edition through. The gate keeps one run
    (keep_validation_runs=1): the failed run's folder goes when the next run is written."""
    out = base.root / "out-counts"
    shutil.copytree(base.out, out)
    before = tree_hashes(out)
    dumps = {
        "patents": world_rows("patents", (2019, 2023), seed=24, scale=2.5),
        "publications": world_rows("publications", (2018, 2022), seed=24, scale=0.4),
    }
    conf = {
        **base.conf,
        "edition": 2024,
        "patents_uri": str(write_dump(base.root / "counts" / "patents.csv.gz", "patents", dumps["patents"])),
        "publications_uri": str(
            write_dump(base.root / "counts" / "publications.csv.gz", "publications", dumps["publications"])
        ),
        "workspace_dir": str(share_gazetteer(base.root / "ws-counts", base.gazetteer)),
        "output_dir": str(out),
        "keep_validation_runs": 1,
    }
    tasks.pull(conf)
    tasks.load(conf)
    tasks.build(conf)
    with pytest.raises(GateFailed) as caught:
        tasks.validate_gate(conf)
    message = str(caught.value)
    assert "completeness.documents_not_dropped" in message and "Nothing was published" in message
    # the layer, both counts and the change: 1050 publications in 2023, 420 now (-60%)
    for shown in ("'layer': 'publications'", "'previous_documents': 1050", "'documents': 420", "-0.6"):
        assert shown in message, f"{shown} not in: {message}"
    failed_run = Path(message.split("Report: ")[1].split(" (Data Docs")[0]).parent
    summary = json.loads((failed_run / "summary.json").read_text())
    assert [w["check"] for w in summary["warnings"]] == ["completeness.documents_not_jumped"]
    assert "'layer': 'patents'" in str(summary["warnings"][0]["failing_rows"])
    assert f"compared with {out / '2023' / 'manifest.json'}" in summary["completeness"]
    with pytest.raises(PublishError, match="nothing published"):
        tasks.publish_edition(conf)
    assert not (out / "2024").exists() and tree_hashes(out) == before

    tolerant = {**conf, "max_count_drop": 1.0}
    caplog.set_level("WARNING", logger="stclusters")
    assert tasks.validate_gate(tolerant)["warnings"] == 1
    assert "validation warning: completeness.documents_not_jumped" in caplog.text
    runs = [p for p in (Path(conf["workspace_dir"]) / "2024" / "validation").iterdir() if p.is_dir()]
    assert not failed_run.exists() and len(runs) == 1  # pruned to keep_validation_runs
    tasks.report(tolerant)
    assert tasks.publish_edition(tolerant)["outcome"] == "published"
    manifest = json.loads((out / "2024" / "manifest.json").read_text())
    assert manifest["validation"]["checks"]["completeness.documents_not_jumped"] != "pass"
    assert verify(out / "2024") == []
