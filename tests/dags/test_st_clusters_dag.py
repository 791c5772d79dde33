"""The DAG file: imports cleanly, no cycles, params match RunParams, yearly schedule."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stclusters.config import RunParams
from stclusters.pull import editions

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags["st_clusters"]  # get_dag() would query the metadata database


def test_dag_imports_with_its_tasks_in_order(dag) -> None:
    assert dag is not None
    order = [t.task_id for t in dag.topological_sort()]  # raises on a cycle
    assert order == ["edition", "pull", "load", "build", "validate", "publish"]
    assert {t.task_id for t in dag.get_task("edition").downstream_list} == {
        "pull", "load", "build", "validate", "publish"
    }  # fmt: skip


def test_params_are_runparams_fields_and_default_to_null(dag) -> None:
    names = {f.name for f in fields(RunParams)}
    assert set(dag.params) <= names
    assert {"edition", "republish", "top_n", "output_dir"} <= set(dag.params)
    assert all(dag.params[k] is None for k in dag.params)


def test_schedule_is_yearly_and_matches_editions(dag) -> None:
    assert dag.schedule == editions.SCHEDULE
    assert dag.catchup is False
    assert dag.max_active_runs >= 2
    from airflow.timetables.trigger import CronTriggerTimetable

    timetable = CronTriggerTimetable(editions.SCHEDULE, timezone="UTC")
    ticks, after = [], datetime(2018, 6, 1, tzinfo=UTC)
    for _ in range(3):
        after = timetable._get_next(after)
        ticks.append(after)
    assert [editions.edition_for_logical_date(t) for t in ticks] == [2019, 2020, 2021]
    assert all((t.month, t.day, t.hour) == (3, 1, 3) for t in ticks)


def test_dag_file_imports_nothing_of_ours_at_parse_time() -> None:
    text = (DAGS / "st_clusters.py").read_text()
    top = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert not [line for line in top if "stclusters" in line]


def test_duckdb_tasks_go_to_the_configured_pool_and_pull_stays_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    monkeypatch.setenv("STCLUSTERS_AIRFLOW_POOL", "stclusters_duckdb")
    dag = runpy.run_path(str(DAGS / "st_clusters.py"))["st_clusters"]()
    pools = {t.task_id: t.pool for t in dag.tasks}
    assert {pools[t] for t in ("load", "build", "validate", "publish")} == {"stclusters_duckdb"}
    assert pools["pull"] == pools["edition"] == "default_pool"  # network-bound / trivial
