"""st_clusters: rank an edition's science and technology clusters.

pull -> load -> build (dbt) -> validate (Great Expectations gate) -> publish

Every task body is one call into plugins/stclusters/tasks.py. Parameters left empty (null) take
their value from config/sources.yml, the environment or the defaults in
plugins/stclusters/config.py (README, "Configuration").
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, task


def _param(description: str, kind: str = "string") -> Param:
    return Param(None, type=["null", kind], description=description)


PARAMS = {
    "edition": _param("GII edition year (default 2023).", "integer"),
    "source_set": _param("Entry of config/sources.yml (default: sample)."),
    "patents_uri": _param("Patent dump URI(s); default from the source set."),
    "publications_uri": _param("Publication dump URI(s); default from the source set."),
    "eps_km": _param("DBSCAN radius in km (default 13).", "number"),
    "min_patents": _param("Minimum fractional patents within eps_km of a core location.", "number"),
    "min_publications": _param("Minimum fractional articles within eps_km of a core location.", "number"),
    "h3_resolution": _param("H3 resolution of the clustering grid.", "integer"),
    "top_n": _param("Number of clusters published (default 100).", "integer"),
    "output_dir": _param("Publication folder (default output/)."),
    "republish": _param("Replace an already published edition (archived), default false.", "boolean"),
}


def _conf(context: dict) -> dict:
    return {k: v for k, v in context["params"].items() if v is not None}


@dag(
    dag_id="st_clusters",
    description="Find and rank S&T clusters (GII method) for one edition",
    schedule=None,
    start_date=pendulum.datetime(2017, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=3,
    params=PARAMS,
    tags=["stclusters"],
    default_args={"retries": 0},
)
def st_clusters():
    @task
    def pull(**context) -> dict:
        from stclusters import tasks

        return tasks.pull(_conf(context))

    @task
    def load(**context) -> dict:
        from stclusters import tasks

        return tasks.load(_conf(context))

    @task
    def build(**context) -> dict:
        from stclusters import tasks

        return tasks.build(_conf(context))

    @task
    def validate(**context) -> dict:
        from stclusters import tasks

        return tasks.validate_gate(_conf(context))

    @task
    def publish(**context) -> dict:
        from stclusters import tasks

        return tasks.publish_edition(_conf(context))

    pull() >> load() >> build() >> validate() >> publish()


st_clusters()
