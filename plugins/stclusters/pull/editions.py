"""Editions and the calendar: which edition a DAG run builds, and which data windows it covers.

The DAG runs once a year (``SCHEDULE``). A scheduled or backfill run builds the edition named by
the year of its logical date: the run of 1 March 2024 builds GII 2024. A manual run (``airflow
dags test``, a trigger from the UI or the API) has no meaningful logical date in Airflow 3 (it
may be absent, or "now"), so it builds the edition given in its conf, else the configured
default (environment ``STCLUSTERS_EDITION``, the source set, then ``RunParams.edition``). An
``edition`` in the run conf always wins.

The windows follow from the edition through ``RunParams`` (the one place that computes them):
patents ``[E - patents_window_lag - window_years + 1, E - patents_window_lag]`` and articles the
same with ``publications_window_lag``; GII 2023 reads PCT 2018-2022 and SCIE 2017-2021.

``python -m stclusters.pull.editions --from 2017 --to 2026`` prints the edition -> windows table
(docs/operations.md holds a copy).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stclusters import config
from stclusters.config import RunParams

log = logging.getLogger(__name__)

# 03:00 UTC on 1 March, once a year. By March every PCT application published in E-1 is in the
# dumps (PCT publishes weekly; the bulk files for a year are complete in January) and SCIE has
# indexed the bulk of E-2's articles (the reason WIPO lags articles one more year), while the
# GII itself is released in September: the ranking is ready months before it is needed.
SCHEDULE = "0 3 1 3 *"

# Run types whose logical date names the edition (Airflow's DagRunType values).
DATED_RUN_TYPES = frozenset({"scheduled", "backfill"})


def edition_for_logical_date(logical_date: datetime) -> int:
    """The edition a scheduled or backfill run builds: the calendar year of its logical date."""
    return logical_date.year


def run_conf(
    params: Mapping[str, Any], run_type: str | None, logical_date: datetime | None
) -> dict[str, Any]:
    """The conf every task receives: the run's non-null params, plus the edition when the run is
    scheduled or a backfill and no edition was given explicitly."""
    conf = {k: v for k, v in params.items() if v is not None}
    kind = _run_type_name(run_type)
    if "edition" not in conf and kind in DATED_RUN_TYPES and logical_date is not None:
        conf["edition"] = edition_for_logical_date(logical_date)
    return conf


def _run_type_name(run_type: Any) -> str | None:
    """DagRunType is a str enum; the Task SDK may hand over the enum or its value."""
    if run_type is None:
        return None
    return str(getattr(run_type, "value", run_type))


def resolve_edition(context: Mapping[str, Any]) -> dict[str, Any]:
    """Body of the DAG's first task: decide the edition from the run, validate every parameter
    once (a bad conf fails here, before anything is pulled) and return the conf for the other
    tasks. Logs the edition and its windows."""
    dag_run = context.get("dag_run")
    run_type = getattr(dag_run, "run_type", None)
    logical_date = context.get("logical_date")
    conf = run_conf(context.get("params") or {}, run_type, logical_date)
    params = config.resolve(conf)
    missing = missing_local_data(params) if _run_type_name(run_type) in DATED_RUN_TYPES else None
    if missing:
        from airflow.sdk.exceptions import AirflowSkipException

        # Skipping the first task skips the others: the run ends as skipped, not failed.
        raise AirflowSkipException(
            f"edition {params.edition}: source set {params.source_set!r} has no data for this edition "
            f"({missing}); nothing to build, the run is skipped. Build an edition that has data with a "
            "backfill over its year or `make run CONF='{\"edition\": ...}'` (docs/operations.md)"
        )
    log.info(
        "run type %s, logical date %s -> edition %s; patents %s-%s, articles %s-%s",
        _run_type_name(run_type),
        logical_date,
        params.edition,
        *params.patents_window,
        *params.publications_window,
    )
    return conf


def missing_local_data(params: RunParams) -> str | None:
    """Why the edition's local input files are missing (the first layer's reason), or None when
    every layer's files exist or a layer is remote (checked by the pull, not here). A scheduled
    run for a year the source set has no dumps for (the embedded sample holds 2023 only) is then
    skipped instead of failing."""
    from stclusters.pull import sources

    for layer in ("patents", "publications"):
        uri = params.uri(layer)
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme not in ("", "file"):
            continue
        try:
            sources.resolve(uri)
        except sources.SourceError as exc:
            return str(exc)
    return None


@dataclass(frozen=True)
class EditionWindows:
    edition: int
    patents: tuple[int, int]
    publications: tuple[int, int]


def windows(edition: int, params: RunParams | None = None) -> EditionWindows:
    """The data windows of an edition under the given window parameters (defaults otherwise)."""
    p = dataclasses.replace(params or RunParams(), edition=edition)
    return EditionWindows(edition, p.patents_window, p.publications_window)


def windows_table(first: int, last: int, params: RunParams | None = None) -> list[EditionWindows]:
    return [windows(e, params) for e in range(first, last + 1)]


def markdown_table(rows: list[EditionWindows]) -> str:
    lines = [
        "| edition | scheduled run (logical date) | patents (PCT, published) | articles (SCIE, published) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.edition} | {r.edition}-03-01 03:00 UTC | {r.patents[0]}–{r.patents[1]} "
            f"| {r.publications[0]}–{r.publications[1]} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stclusters.pull.editions", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--from", dest="first", type=int, required=True, help="first edition")
    parser.add_argument("--to", dest="last", type=int, required=True, help="last edition")
    parser.add_argument("--conf", default="{}", help="run conf (JSON) with window parameters")
    args = parser.parse_args(argv)
    try:
        conf = json.loads(args.conf)
    except json.JSONDecodeError as exc:
        parser.error(f"--conf is not valid JSON: {exc}")
    print(markdown_table(windows_table(args.first, args.last, config.resolve(conf))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
