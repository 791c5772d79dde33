"""The DAG file: imports cleanly, no cycles, params are the schema's (RunParams), yearly schedule."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from airflow.sdk.definitions.param import ParamValidationError

from stclusters import config
from stclusters.config import RunParams
from stclusters.pull import editions

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    return bag.dags["st_clusters"]  # get_dag() would query the metadata database


BUILD = ["build.geocode", "build.cluster", "build.rank", "build.profiles", "build.gate"]
ORDER = ["edition", "pull", "load", *BUILD, "validate", "report", "publish"]


def test_dag_imports_with_its_tasks_in_order(dag) -> None:
    assert dag is not None
    order = [t.task_id for t in dag.topological_sort()]  # raises on a cycle
    assert order == ORDER
    # one line: each task waits for the one before it (the DuckDB file has one writer at a time)
    for before, after in itertools.pairwise(ORDER[1:]):
        assert {t.task_id for t in dag.get_task(before).downstream_list} == {after}
    assert {t.task_id for t in dag.get_task("edition").downstream_list} == set(ORDER[1:])


def test_build_tasks_are_the_packages_build_steps_and_dbt_selectors(dag) -> None:
    import runpy

    import yaml

    from stclusters import tasks
    from stclusters.config import DBT_PROJECT_DIR

    steps = [s.__name__ for s in tasks.BUILD_STEPS]
    assert [f"build.{s}" for s in steps] == BUILD
    assert list(runpy.run_path(str(DAGS / "st_clusters.py"))["BUILD_STEPS"]) == steps
    selectors = yaml.safe_load((DBT_PROJECT_DIR / "selectors.yml").read_text())["selectors"]
    assert set(steps) <= {s["name"] for s in selectors}
    assert [s.__name__ for s in tasks.STEPS] == [
        "pull", "load", *steps, "validate_gate", "report", "publish_edition"
    ]  # fmt: skip


def test_every_task_has_a_timeout_and_the_last_releases_the_run_lock(dag) -> None:
    assert all(t.execution_timeout is not None for t in dag.tasks)
    from stclusters import tasks

    # the run lock (tasks._one_run_per_edition) is released by publish only: it is the last task
    assert dag.topological_sort()[-1].task_id == "publish"
    assert tasks.STEPS[-1] is tasks.publish_edition


def test_publish_declares_the_published_files_as_assets(dag) -> None:
    from stclusters import tasks

    outlets = dag.get_task("publish").outlets
    assert [a.name for a in outlets] == [f"stclusters/{name}" for name in tasks.PUBLISHED_ASSET_FILES]
    assert all(not t.outlets for t in dag.tasks if t.task_id != "publish")


def test_params_are_the_schemas_fields_typed_with_bounds_and_choices(dag) -> None:
    """Every run parameter is in the trigger form with the schema's type, bounds and choices; each
    starts null ("not set": the source set, environment or default decides) and says its default."""
    from pydantic import TypeAdapter

    schema = TypeAdapter(RunParams).json_schema()["properties"]
    assert set(dag.params) == set(schema) - config.ENVIRONMENT_ONLY
    sets = sorted(config.load_sources()["source_sets"])
    for name in dag.params:
        param, prop = dag.params.get_param(name), schema[name]
        assert param.value is None, name
        types = [p["type"] for p in prop["anyOf"]] if "anyOf" in prop else [prop["type"]]
        assert set(param.schema["type"]) == {"null", *types}, name
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            assert param.schema.get(key) == prop.get(key), (name, key)
        default = prop["default"]
        shown = (
            "the source set's"
            if default is None
            else str(default).lower()
            if isinstance(default, bool)
            else str(default)
        )
        assert f"Empty: {shown}" in param.description, name
    assert dag.params.get_param("robustness").schema["enum"] == [None, "off", "fast", "full"]
    assert dag.params.get_param("source_set").schema["enum"] == [None, *sets]
    assert "source set sample: 80" in dag.params.get_param("min_patents").description
    dag.params.validate()  # the empty form is valid
    with pytest.raises(ParamValidationError):
        dag.params.get_param("h3_resolution").resolve(16)
    with pytest.raises(ParamValidationError):
        dag.params.get_param("robustness").resolve("slow")
    assert dag.params.get_param("eps_km").resolve(12.5) == 12.5


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


def test_dag_file_imports_only_the_light_parameter_schema_at_parse_time() -> None:
    text = (DAGS / "st_clusters.py").read_text()
    top = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    assert [line for line in top if "stclusters" in line] == [
        "from stclusters.config import dag_params, dag_task_timeout"
    ]
    # beyond what the DAG file's own `import airflow.sdk` loads: the schema, pydantic and PyYAML
    code = (
        "import json, sys; import airflow.sdk; before = set(sys.modules); "
        "import stclusters.config as c; c.dag_params(); "
        "print(json.dumps(sorted({m.split('.')[0] for m in set(sys.modules) - before})))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    light = {"stclusters", "yaml", "_yaml", "pydantic", "pydantic_core", "argparse", "difflib"}
    assert set(json.loads(out)) <= light, out


def test_duckdb_tasks_go_to_the_configured_pool_and_pull_stays_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy

    monkeypatch.setenv("STCLUSTERS_AIRFLOW_POOL", "stclusters_duckdb")
    dag = runpy.run_path(str(DAGS / "st_clusters.py"))["st_clusters"]()
    pools = {t.task_id: t.pool for t in dag.tasks}
    assert {pools[t] for t in ("load", *BUILD, "validate", "report", "publish")} == {"stclusters_duckdb"}
    assert pools["pull"] == pools["edition"] == "default_pool"  # network-bound / trivial
