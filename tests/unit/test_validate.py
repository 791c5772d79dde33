"""The gate on a small real edition database: passes when it should, names what fails, keeps
its reports, and only warnings for stability."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from stclusters import validate
from stclusters.validate import GateFailed


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
