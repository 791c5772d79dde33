"""Which of dbt's output lines reach the task log at INFO (issue 20: quiet logs)."""

from __future__ import annotations

import logging

import pytest

from stclusters.build.transform import dbt_line_level

# Lines as dbt-core 1.11 prints them in a build.
INFO_LINES = [
    "17:00:01  Running with dbt=1.11.16",
    "17:00:02  Found 52 models, 3 seeds, 170 data tests, 1 source, 892 macros, 4 unit tests",
    "17:00:40  Finished running 3 seeds, 40 table models, 170 data tests in 0 hours 0 minutes and "
    "38.2 seconds (38.2s).",
    "17:00:40  Completed with 1 error, 0 partial successes, and 0 warnings:",
    "17:00:40  Done. PASS=213 WARN=0 ERROR=1 SKIP=4 NO-OP=0 TOTAL=218",
    "17:00:12  12 of 218 ERROR creating sql table model main.int_addresses_geocoded .... [ERROR in 1.20s]",
    "17:00:13  13 of 218 FAIL 3 not_null_ranking_cluster_id ................... [FAIL 3 in 0.05s]",
    "17:00:14  14 of 218 WARN 1 accepted_values_stg_x ........................ [WARN 1 in 0.05s]",
]
DEBUG_LINES = [
    "17:00:03  1 of 218 START seed file main.ipc_technology_fields ................. [RUN]",
    "17:00:03  1 of 218 OK loaded seed file main.ipc_technology_fields ............ [INSERT 666 in 0.21s]",
    "17:00:05  7 of 218 PASS not_null_stg_patents_application_id .................. [PASS in 0.04s]",
    "17:00:06  9 of 218 OK created sql table model main.int_cells_weighted ......... [OK in 0.31s]",
]


@pytest.mark.parametrize("line", INFO_LINES)
def test_what_an_operator_reads_stays_at_info(line: str) -> None:
    assert dbt_line_level(line) == logging.INFO


@pytest.mark.parametrize("line", DEBUG_LINES)
def test_per_node_progress_goes_to_debug(line: str) -> None:
    assert dbt_line_level(line) == logging.DEBUG


def test_a_killed_dbt_is_reported_as_killed_not_with_an_earlier_runs_failure(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dbt killed mid-model (the kernel's out-of-memory killer sends SIGKILL) writes no
    run_results.json: the error says it was killed and shows its last lines, not the failure
    an earlier run left in the file."""
    from stclusters.build import transform
    from stclusters.config import RunParams

    params = RunParams(edition=2023, workspace_dir=str(tmp_path / "ws"))
    stale = params.workspace / "dbt" / "target" / "run_results.json"
    stale.parent.mkdir(parents=True)
    stale.write_text(
        '{"results": [{"unique_id": "model.stclusters.old_model", "status": "error", "message": "old"}]}'
    )
    # a real process that starts a model and is then killed by SIGKILL
    fake = tmp_path / "dbt"
    fake.write_text("#!/bin/sh\necho '1 of 9 START sql table model main.int_cells_clustered'\nkill -9 $$\n")
    fake.chmod(0o755)
    monkeypatch.setattr(transform, "dbt_executable", lambda: str(fake))
    with pytest.raises(transform.TransformError) as err:
        transform.run_dbt(params, "build")
    message = str(err.value)
    assert "(exit -9)" in message and "killed by signal 9" in message
    assert "int_cells_clustered" in message
    assert "old_model" not in message


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("3GB", 3 * 10**9),
        ("3 gb", 3 * 10**9),
        ("3000MB", 3 * 10**9),
        ("2.5GiB", int(2.5 * 2**30)),
        ("512KiB", 512 * 2**10),
        ("1000", 1000),
    ],
)
def test_memory_limit_bytes_reads_duckdbs_sizes(limit: str, expected: int) -> None:
    from stclusters.build.transform import memory_limit_bytes

    assert memory_limit_bytes(limit) == expected


def test_memory_limit_as_a_share_of_the_machine() -> None:
    import os

    from stclusters.build.transform import memory_limit_bytes

    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_limit_bytes("50%") == pytest.approx(total / 2, rel=1e-9)


@pytest.mark.parametrize("limit", ["3 gigs", "GB", "-1GB", "3GB; drop table x", ""])
def test_a_memory_limit_that_is_not_a_size_is_refused_with_the_forms_it_takes(limit: str) -> None:
    from stclusters.build.transform import memory_limit_bytes

    with pytest.raises(ValueError, match=r"duckdb_memory_limit .*e\.g\. '3GB'"):
        memory_limit_bytes(limit)


@pytest.mark.parametrize(
    ("rows", "limit", "expected"),
    [
        (0, "3GB", 1),  # nothing loaded yet: one query
        (51_188_443, "3GB", 1),  # scale 1 of make bench, a GII-size edition
        (60_000_000, "3GB", 1),
        (60_000_001, "3GB", 2),
        (256_012_398, "3GB", 5),  # scale 5
        (256_012_398, "12GB", 2),  # a bigger machine needs fewer passes
        (256_012_398, "1GB", 13),
    ],
)
def test_document_buckets_grow_with_the_rows_loaded_and_shrink_with_memory(
    tmp_path, rows: int, limit: str, expected: int
) -> None:
    from stclusters.build.transform import document_buckets
    from stclusters.config import RunParams
    from stclusters.handover import LoadStats

    params = RunParams(edition=2023, workspace_dir=str(tmp_path / "ws"), duckdb_memory_limit=limit)
    if rows:
        split = rows // 10
        LoadStats(
            {
                "patents.csv.gz": {"layer": "patents", "rows_loaded": split, "rows_quarantined": 0},
                "publications.csv.gz": {
                    "layer": "publications",
                    "rows_loaded": rows - split,
                    "rows_quarantined": 0,
                },
            }
        ).write(params)
    assert document_buckets(params) == expected


def test_document_buckets_set_by_hand_win_over_the_rule(tmp_path) -> None:
    from stclusters.build.transform import document_buckets
    from stclusters.config import RunParams

    params = RunParams(edition=2023, workspace_dir=str(tmp_path / "ws"), document_buckets=3)
    assert document_buckets(params) == 3
