"""st_clusters: rank an edition's science and technology clusters, once a year.

edition -> pull -> load -> build [geocode -> cluster -> rank -> profiles -> gate]
        -> validate (Great Expectations gate) -> report -> publish

The build group's tasks are one dbt selection each (dbt_project/selectors.yml), so a failing or
slow step shows where it happens. The report task renders report.html and validation.html into
the workspace; publish copies them with the tables and declares the published files as Assets
(one event per publication, its extra naming the edition and the file).

Every task body is one call into the package. The first task decides the edition (conf, else
the logical date's year for scheduled and backfill runs, else the configured default; see
plugins/stclusters/pull/editions.py) and hands the resolved conf to the others. The params are
generated from the schema in plugins/stclusters/config.py; those left empty (null) take their
value from config/sources.yml, the environment or the schema's defaults (README,
"Configuration"). Schedule, backfills, concurrency and re-publishing: docs/operations.md.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Asset, chain, dag, task, task_group

# The parameter schema (pydantic and PyYAML only; tests/dags checks that it stays that light).
from stclusters.config import dag_params, dag_task_timeout

# Kept literal (not imported from stclusters.pull.editions.SCHEDULE) so that parsing this file imports
# nothing of ours but the parameter schema; tests/dags checks that both agree.
SCHEDULE = "0 3 1 3 *"
# The tasks that hold a DuckDB file open and use its memory_limit; an operator who runs many
# editions at once creates a pool and names it here (docs/operations.md, "Concurrency").
DUCKDB_POOL = os.environ.get("STCLUSTERS_AIRFLOW_POOL", "default_pool")
# Every task's execution_timeout: RunParams.task_timeout_minutes (README), from the environment
# only, since it is read when this file is parsed; tests/unit/test_config.py checks the default.
TASK_TIMEOUT = dag_task_timeout()


# The published files, as Assets: one stable name per file whatever the edition and output
# folder; each event's extra names the edition and the file's path and sha256
# (stclusters.tasks.published_assets). tests/dags checks the list against the package's.
PUBLISHED_FILES = ("ranking.csv", "clusters.csv", "cluster_cells.csv", "report.html", "manifest.json")
PUBLISHED_ASSETS = {
    name: Asset(name=f"stclusters/{name}", uri=f"x-stclusters://published/{name}", group="stclusters")
    for name in PUBLISHED_FILES
}
# The build's steps, in the order the data flows: each is a task running one dbt selector.
BUILD_STEPS = ("geocode", "cluster", "rank", "profiles", "gate")


@dag(
    dag_id="st_clusters",
    description="Find and rank S&T clusters (GII method), one edition a year",
    schedule=SCHEDULE,
    # The first GII edition with clusters; backfills cannot go further back.
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    # Unpausing runs only the latest edition; past editions are built by explicit backfills.
    catchup=False,
    # Scheduled and manual runs at once; a backfill sets its own (airflow backfill create
    # --max-active-runs). Each run has its own workspace and DuckDB file, so runs never share a lock.
    max_active_runs=3,
    # Every run parameter, typed, with its bounds and choices; an empty field means "not set".
    params=dag_params(),
    tags=["stclusters"],
    default_args={"retries": 0, "execution_timeout": TASK_TIMEOUT},
)
def st_clusters():
    @task
    def edition(**context) -> dict:
        from stclusters.pull import editions

        return editions.resolve_edition(context)

    @task
    def pull(conf: dict) -> dict:
        from stclusters import tasks

        return tasks.pull(conf)

    @task(pool=DUCKDB_POOL)
    def load(conf: dict) -> dict:
        from stclusters import tasks

        return tasks.load(conf)

    def dbt_step(name: str):
        @task(task_id=name, pool=DUCKDB_POOL)
        def step(conf: dict) -> dict:
            from stclusters import tasks

            return tasks.build_step(name, conf)

        return step

    @task_group(group_id="build")
    def build(conf: dict) -> None:
        chain(*(dbt_step(name)(conf) for name in BUILD_STEPS))

    @task(pool=DUCKDB_POOL)
    def validate(conf: dict) -> dict:
        from stclusters import tasks

        return tasks.validate_gate(conf)

    @task(pool=DUCKDB_POOL)
    def report(conf: dict) -> dict:
        from stclusters import tasks

        return tasks.report(conf)

    @task(pool=DUCKDB_POOL, outlets=list(PUBLISHED_ASSETS.values()))
    def publish(conf: dict, *, outlet_events=None) -> dict:
        from stclusters import tasks

        result = tasks.publish_edition(conf)
        for name, extra in tasks.published_assets(result).items():
            outlet_events[PUBLISHED_ASSETS[name]].extra = extra
        return result

    conf = edition()
    pull(conf) >> load(conf) >> build(conf) >> validate(conf) >> report(conf) >> publish(conf)


st_clusters()
