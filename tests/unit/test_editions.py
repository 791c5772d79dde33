"""Edition from the run, windows from the edition."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from stclusters import config
from stclusters.config import RunParams
from stclusters.pull import editions


def test_gii_windows_match_the_published_editions() -> None:
    # GII 2024: PCT 2019-2023, SCIE 2018-2022; GII 2023 one year earlier (docs/operations.md).
    assert editions.windows(2024) == editions.EditionWindows(2024, (2019, 2023), (2018, 2022))
    assert editions.windows(2023) == editions.EditionWindows(2023, (2018, 2022), (2017, 2021))


def test_windows_follow_the_window_parameters() -> None:
    params = RunParams(window_years=3, patents_window_lag=2, publications_window_lag=3)
    w = editions.windows(2025, params)
    assert w.patents == (2021, 2023)
    assert w.publications == (2020, 2022)


def test_windows_table_has_one_row_per_edition_and_renders() -> None:
    rows = editions.windows_table(2019, 2021)
    assert [r.edition for r in rows] == [2019, 2020, 2021]
    table = editions.markdown_table(rows)
    assert "| 2020 | 2020-03-01 03:00 UTC | 2015–2019 | 2014–2018 |" in table.splitlines()


@pytest.mark.parametrize("run_type", ["scheduled", "backfill"])
def test_dated_runs_take_the_edition_from_the_logical_date(run_type: str) -> None:
    conf = editions.run_conf({"edition": None, "top_n": 5}, run_type, datetime(2021, 3, 1, 3, tzinfo=UTC))
    assert conf == {"edition": 2021, "top_n": 5}


def test_explicit_edition_wins_over_the_logical_date() -> None:
    conf = editions.run_conf({"edition": 2019}, "backfill", datetime(2021, 3, 1, tzinfo=UTC))
    assert conf["edition"] == 2019


@pytest.mark.parametrize("logical_date", [None, datetime(2026, 11, 27, tzinfo=UTC)])
def test_manual_runs_keep_the_configured_default(logical_date: datetime | None) -> None:
    # airflow dags test / a UI trigger: the logical date is "now" or absent, not an edition.
    conf = editions.run_conf({"edition": None}, "manual", logical_date)
    assert "edition" not in conf


def test_run_type_enum_is_understood() -> None:
    from airflow.utils.types import DagRunType

    conf = editions.run_conf({}, DagRunType.BACKFILL_JOB, datetime(2018, 3, 1, tzinfo=UTC))
    assert conf == {"edition": 2018}


def test_resolve_edition_validates_the_conf() -> None:
    class Run:
        run_type = "scheduled"

    # 2023: the edition the sample source set has data for (other years are skipped, below)
    context = {"params": {"top_n": 0}, "dag_run": Run(), "logical_date": datetime(2023, 3, 1, tzinfo=UTC)}
    with pytest.raises(ValueError, match="top_n"):
        editions.resolve_edition(context)
    context["params"] = {"top_n": 7}
    assert editions.resolve_edition(context) == {"top_n": 7, "edition": 2023}


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert editions.main(["--from", "2017", "--to", "2018"]) == 0
    out = capsys.readouterr().out
    assert "| 2017 | 2017-03-01 03:00 UTC | 2012–2016 | 2011–2015 |" in out


def test_a_dated_run_without_local_data_is_skipped_with_a_clear_message(tmp_path) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    conf = {"workspace_dir": str(tmp_path / "ws"), "output_dir": str(tmp_path / "out")}
    tick = datetime(2026, 3, 1, 3, tzinfo=UTC)  # the sample source set holds 2023 only
    context = {"params": conf, "dag_run": SimpleNamespace(run_type="scheduled"), "logical_date": tick}
    with pytest.raises(AirflowSkipException, match="edition 2026: source set 'sample' has no data"):
        editions.resolve_edition(context)
    # the sample's own edition runs; a manual run is never skipped (it fails in pull, loudly)
    assert editions.missing_local_data(config.resolve({**conf, "edition": 2023})) is None
    manual = {**context, "dag_run": SimpleNamespace(run_type="manual")}
    assert editions.resolve_edition(manual)["workspace_dir"] == conf["workspace_dir"]
