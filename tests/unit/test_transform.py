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
