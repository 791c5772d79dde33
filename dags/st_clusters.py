"""st_clusters: rank an edition's science and technology clusters, once a year.

edition -> pull -> load -> build (dbt) -> validate (Great Expectations gate) -> publish

Every task body is one call into the package. The first task decides the edition (conf, else
the logical date's year for scheduled and backfill runs, else the configured default; see
plugins/stclusters/pull/editions.py) and hands the resolved conf to the others. The params are
generated from the schema in plugins/stclusters/config.py; those left empty (null) take their
value from config/sources.yml, the environment or the schema's defaults (README,
"Configuration"). Schedule, backfills, concurrency and re-publishing: docs/operations.md.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

# The parameter schema (pydantic and PyYAML only; tests/dags checks that it stays that light).
from stclusters.config import dag_params

# Kept literal (not imported from stclusters.pull.editions.SCHEDULE) so that parsing this file imports
# nothing of ours but the parameter schema; tests/dags checks that both agree.
SCHEDULE = "0 3 1 3 *"
# The tasks that hold a DuckDB file open and use its memory_limit; an operator who runs many
# editions at once creates a pool and names it here (docs/operations.md, "Concurrency").
DUCKDB_POOL = os.environ.get("STCLUSTERS_AIRFLOW_POOL", "default_pool")
# Every task's execution_timeout: RunParams.task_timeout_minutes (README), from the environment
# only, since it is read when this file is parsed; tests/unit/test_config.py checks the default.
TASK_TIMEOUT = timedelta(minutes=int(os.environ.get("STCLUSTERS_TASK_TIMEOUT_MINUTES", "240")))


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

    @task(pool=DUCKDB_POOL)
    def build(conf: dict) -> dict:
        from stclusters import tasks

        return tasks.build(conf)

    @task(pool=DUCKDB_POOL)
    def validate(conf: dict) -> dict:
        from stclusters import tasks

        return tasks.validate_gate(conf)

    @task(pool=DUCKDB_POOL)
    def publish(conf: dict) -> dict:
        from stclusters import tasks

        return tasks.publish_edition(conf)

    conf = edition()
    pull(conf) >> load(conf) >> build(conf) >> validate(conf) >> publish(conf)


st_clusters()
