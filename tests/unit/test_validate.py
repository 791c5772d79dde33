"""The gate on a small real edition database: passes when it should, names what fails, keeps
its reports, and only warnings for stability."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from stclusters.gate import validate
from stclusters.gate.validate import GateFailed


def test_good_edition_passes_and_keeps_its_reports(small_edition) -> None:
    params = small_edition()
    result = validate.run_gate(params)
    assert result["passed"] is True
    run_dir = Path(result["run_dir"])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["passed"] and summary["n_failed"] == 0
    assert {s: v["expectations"] > 0 for s, v in summary["stages"].items()} == {
        "raw": True,
        "counted": True,
        "ranking": True,
    }
    assert summary["suite_version"] == validate.SUITE_VERSION
    assert "skipped" in summary["stability"]
    # the minor, badly geocoded country (KR, 3% of articles) is not a major country
    major = next(r for r in summary["results"] if r["check"] == "counted.geocoded_share_per_major_country")
    assert "publications/KR" not in major["values"] and "publications/JP" in major["values"]
    # the exports it vouched for are kept and hashed
    for name, digest in summary["validated_files"].items():
        assert hashlib.sha256((run_dir / "validated" / name).read_bytes()).hexdigest() == digest
    assert "**PASSED**" in (run_dir / "summary.md").read_text()
    index = Path(summary["data_docs"])
    assert index.is_file() and "ranking__ranking__v" in index.read_text()
    assert (
        json.loads((params.workspace / "validation" / "latest.json").read_text())["run_id"]
        == summary["run_id"]
    )


FAULTS = {
    "counted.conservation": (
        "update main.check_summaries set conservation_error = 0.5 where layer = 'patents'"
    ),
    "counted.geocoded_share_per_major_country": (
        "update main.geocoding_coverage set geocoded_share = 0.6 where layer = 'patents' and country = 'JP'"
    ),
    "ranking.rank_unique": "update main.ranking set rank = 2 where rank = 3",
    "ranking.name_not_empty": "update main.ranking set name = '  ' where rank = 1",
    "ranking.pct_shares_sum_at_most_1": "update main.clusters set pct_share = pct_share + 0.5",
    "raw.country_iso": (
        "insert into raw.patents_rows (application_id, inventor_seq, publication_date, country) "
        "values ('WO2020000009', 1, date '2020-01-01', 'XX')"
    ),
}


@pytest.mark.parametrize("check", sorted(FAULTS))
def test_fault_is_blocked_and_named(small_edition, edition_sql, check: str) -> None:
    params = small_edition()
    edition_sql(params, FAULTS[check])
    with pytest.raises(GateFailed) as caught:
        validate.run_gate(params)
    message = str(caught.value)
    assert check in message
    assert "summary.md" in message and "index.html" in message
    summary = validate.latest_summary(params)
    assert summary is not None and summary["passed"] is False
    assert check in {r["check"] for r in summary["critical_failures"]}
    assert Path(summary["data_docs"]).is_file()


def test_stability_frame_finds_vanished_and_moved_clusters() -> None:
    previous = pd.DataFrame({"rank": range(1, 13), "name": [f"c{i}" for i in range(1, 13)]})
    current = pd.DataFrame({"rank": [1, 2, 3], "name": ["c2", "c1", "c9"]})
    frame = validate.stability_frame(previous, current)
    assert list(frame["previous_rank"]) == list(range(1, 11))  # top 10 only
    by_name = frame.set_index("name")
    assert by_name.loc["c9", "rank_move"] == -6
    assert by_name.loc["c1", "current_rank"] == 2
    assert pd.isna(by_name.loc["c3", "current_rank"])


def test_stability_problems_are_warnings_only(small_edition) -> None:
    params = small_edition()
    previous = params.edition_output.parent / "2022"
    previous.mkdir(parents=True)
    pd.DataFrame({"rank": [1, 2, 3], "name": ["Atlantis", "Paris", "Tokyo–Yokohama"]}).to_csv(
        previous / "ranking.csv", index=False
    )
    result = validate.run_gate(params)
    assert result["passed"] is True and result["warnings"] == 1
    summary = validate.latest_summary(params)
    assert [w["check"] for w in summary["warnings"]] == ["stability.top10_still_ranked"]
    assert "Atlantis" in json.dumps(summary["warnings"][0]["failing_rows"])
    assert "## Warnings" in (Path(summary["run_dir"]) / "summary.md").read_text()


def _previous_manifest(
    params, edition: int, documents: dict[str, int], source_set: str | None = None
) -> Path:
    folder = params.edition_output.parent / str(edition)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "parameters": {"source_set": source_set or params.source_set},
        "inputs": {"layers": {layer: {"documents_landed": n} for layer, n in documents.items()}},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_document_count_drop_against_the_previous_edition_blocks(small_edition) -> None:
    params = small_edition()  # 5 patents, 3 publications landed
    _previous_manifest(params, 2022, {"patents": 20, "publications": 3})
    with pytest.raises(GateFailed, match=r"completeness\.documents_not_dropped"):
        validate.run_gate(params)
    summary = validate.latest_summary(params)
    failed = summary["critical_failures"][0]
    assert failed["check"] == "completeness.documents_not_dropped"
    assert "patents" in json.dumps(failed["failing_rows"])
    assert "2022/manifest.json" in summary["completeness"]


def test_document_count_jump_warns_and_drop_within_share_passes(small_edition) -> None:
    params = small_edition()
    # patents 5 vs 8: -37.5 %, within max_count_drop=0.5; publications 3 vs 1: +200 % > 100 %
    _previous_manifest(params, 2022, {"patents": 8, "publications": 1})
    result = validate.run_gate(params)
    assert result["passed"] is True
    summary = validate.latest_summary(params)
    assert [w["check"] for w in summary["warnings"]] == ["completeness.documents_not_jumped"]


def test_completeness_compares_only_the_same_source_set_and_skips_without_counts(small_edition) -> None:
    params = small_edition()
    _previous_manifest(params, 2022, {"patents": 1000, "publications": 1000}, source_set="other")
    assert validate.run_gate(params)["passed"] is True
    assert "skipped" in validate.latest_summary(params)["completeness"]
    # the run parameter moves the threshold: a 50 % drop fails with max_count_drop=0.1
    strict = small_edition(max_count_drop=0.1)
    _previous_manifest(strict, 2021, {"patents": 10, "publications": 3})
    with pytest.raises(GateFailed, match="completeness"):
        validate.run_gate(strict)


def test_validation_runs_are_pruned_to_the_last_n(small_edition) -> None:
    params = small_edition(keep_validation_runs=2)
    run_dirs = [Path(validate.run_gate(params)["run_dir"]) for _ in range(4)]
    left = sorted(p for p in (params.workspace / "validation").iterdir() if p.is_dir())
    assert left == run_dirs[-2:]
    assert Path(validate.latest_summary(params)["run_dir"]) == run_dirs[-1]


WOS_ADDRESS_QUARANTINE = """
delete from raw.read_counts where layer = 'publications';
insert into raw.read_counts values ('publications', 'record', 300), ('publications', 'address', 900);
insert into raw.quarantine
select 'publications', 'savedrecs.txt', 10 + i, 'C1', 'unknown country: Atlantis', 'X, Atlantis', 'address'
from range(89) as r(i);
"""


def test_quarantine_share_is_per_unit_addresses_over_addresses(small_edition, edition_sql) -> None:
    """A WoS file whose adapter quarantined 89 of the 900 addresses of its 300 records: 9.9% of
    addresses (not 29.7% "of records"), named by layer and unit in the message and summary."""
    params = small_edition(max_quarantine_share=0.10)
    edition_sql(params, WOS_ADDRESS_QUARANTINE)
    result = validate.run_gate(params)
    assert result["passed"] is True
    summary = validate.latest_summary(params)
    row = next(r for r in summary["results"] if r["check"] == "raw.quarantine_share")
    assert row["frame"] == "raw_quarantine"
    assert row["values"]["publications/address"] == pytest.approx(89 / 900)
    assert row["values"]["publications/record"] == 0.0
    assert "publications/address" in (Path(result["run_dir"]) / "summary.md").read_text()

    params = small_edition(max_quarantine_share=0.05)
    edition_sql(params, WOS_ADDRESS_QUARANTINE)
    with pytest.raises(GateFailed) as caught:
        validate.run_gate(params)
    message = str(caught.value)
    assert "raw.quarantine_share" in message
    assert "'layer': 'publications', 'unit': 'address'" in message
