"""Run parameters: the one place where every default lives.

A run's parameters are resolved once, at the edge, in this order (later wins):

1. the defaults of :class:`RunParams` below;
2. the ``params`` of the chosen source set in ``config/sources.yml``;
3. environment variables ``STCLUSTERS_<NAME>`` (e.g. ``STCLUSTERS_TOP_N=50``);
4. the DAG run's conf (``make run CONF='{...}'`` or ``airflow dags test st_clusters --conf``).

The README's configuration table lists the same fields; ``tests/unit/test_config.py`` checks
that the two agree.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from stclusters.schema import counted_document_type_keys

REPO_ROOT = Path(os.environ.get("STCLUSTERS_HOME", Path(__file__).resolve().parents[2]))
DEFAULT_SOURCES_FILE = REPO_ROOT / "config" / "sources.yml"


def sources_file() -> Path:
    """config/sources.yml, or the file named by STCLUSTERS_SOURCES_FILE (read at each call)."""
    return Path(os.environ.get("STCLUSTERS_SOURCES_FILE", DEFAULT_SOURCES_FILE))


DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

ENV_PREFIX = "STCLUSTERS_"

# Where a run's conf may place output_dir and workspace_dir: directories separated by os.pathsep,
# set by the deployment in its environment (never by a run). Default: the repository.
OUTPUT_ROOTS_ENV = "STCLUSTERS_OUTPUT_ROOTS"
WORKSPACE_ROOTS_ENV = "STCLUSTERS_WORKSPACE_ROOTS"


class ConfigError(ValueError):
    """A parameter or the sources file is wrong; the message names the setting and its origin."""


@dataclass(frozen=True)
class RunParams:
    """Everything that determines one edition's run. Field docs are the README's table."""

    edition: int = 2023
    """GII edition year; the data windows follow from it."""
    source_set: str = "sample"
    """Entry of config/sources.yml that gives the dumps and their formats."""
    patents_uri: str | None = None
    """Patent dump(s): path, file://, http(s):// or s3:// URI, or glob; {edition} is filled in."""
    publications_uri: str | None = None
    """Publication dump(s), as patents_uri."""
    eps_km: float = 13.0
    """DBSCAN radius (great-circle km), both layers."""
    min_patents: float = 2000.0
    """DBSCAN minimum fractional patent count within eps_km of a core location."""
    min_publications: float = 6000.0
    """DBSCAN minimum fractional article count within eps_km of a core location."""
    h3_resolution: int = 8
    """H3 resolution of the cells the clustering runs on."""
    top_n: int = 100
    """Number of clusters published."""
    name_min_share: float = 0.10
    """A cluster's 2nd and 3rd places join its name when each brings at least this share of its score."""
    economy_min_share: float = 0.05
    """An economy is listed for a cluster when it brings at least this share of its score."""
    profiles_top_k: int = 5
    """Items kept per cluster and facet in the profiles (applicants, fields, partners...)."""
    robustness: str = "fast"
    """Rank intervals: off, fast (normal-approximation bootstrap, 5 variations) or full (exact, 9)."""
    output_dir: str = "output"
    """Where editions are published: <output_dir>/<edition>/ (relative to the repo)."""
    workspace_dir: str = "workspace"
    """Per-edition working area: landing files, DuckDB file, dbt artefacts, validation runs."""
    window_years: int = 5
    """Length of each layer's window, in publication years."""
    patents_window_lag: int = 1
    """Patent window ends this many years before the edition (GII 2023: 2018-2022)."""
    publications_window_lag: int = 2
    """Article window ends this many years before the edition (GII 2023: 2017-2021)."""
    min_geocoded_share: float = 0.9
    """Gate: geocoding coverage required per layer and per major country."""
    major_country_min_share: float = 0.05
    """Gate: countries with at least this share of a layer's weight must each reach min_geocoded_share."""
    stability_max_rank_move: int = 10
    """Gate warning: a previous top-10 cluster moving more than this many ranks."""
    max_quarantine_share: float = 0.01
    """Load fails when a file's share of quarantined rows is above this."""
    max_input_gib: float = 20.0
    """Pull refuses a landed file above this many GiB once decompressed (bounded reads)."""
    max_out_of_window_share: float = 0.0
    """Gate: share of documents outside the edition's window tolerated in a dump."""
    republish: bool = False
    """Allow replacing an already published edition (the old one is archived)."""
    duckdb_memory_limit: str = "7GB"
    """DuckDB memory_limit for the edition's database."""
    duckdb_threads: int = 2
    """DuckDB threads."""
    max_count_drop: float = 0.5
    """Gate: largest tolerated fall of a layer's document count vs the previous edition of the source set."""
    max_count_jump: float = 1.0
    """Gate warning: a layer's document count rising more than this share above the previous edition."""
    task_timeout_minutes: int = 240
    """execution_timeout of every DAG task (read when the DAG file is parsed: environment or default only)."""
    lock_wait_seconds: int = 0
    """A second run of the same edition waits this long for the first to finish, then fails naming it."""
    keep_validation_runs: int = 5
    """Validation runs kept per edition workspace (older run folders are removed when the gate runs)."""

    # --- derived values -------------------------------------------------------------------
    @property
    def patents_window(self) -> tuple[int, int]:
        end = self.edition - self.patents_window_lag
        return end - self.window_years + 1, end

    @property
    def publications_window(self) -> tuple[int, int]:
        end = self.edition - self.publications_window_lag
        return end - self.window_years + 1, end

    @property
    def workspace(self) -> Path:
        return _under_repo(self.workspace_dir) / str(self.edition)

    @property
    def edition_output(self) -> Path:
        return _under_repo(self.output_dir) / str(self.edition)

    @property
    def duckdb_path(self) -> Path:
        return self.workspace / "stclusters.duckdb"

    def uri(self, layer: str) -> str | list[str]:
        """The layer's URI, or list of URIs (sources.yml allows a YAML list), edition filled in."""
        value = getattr(self, f"{layer}_uri")
        if not value:
            raise ConfigError(f"no {layer}_uri: set it in the run conf or in source set {self.source_set!r}")
        try:
            if isinstance(value, list | tuple):
                return [str(v).format(edition=self.edition) for v in value]
            return str(value).format(edition=self.edition)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{layer}_uri {value!r}: {exc.__class__.__name__} {exc} in its placeholders; the only "
                "placeholder allowed is {edition} (write {{ and }} for literal braces)"
            ) from exc

    def dbt_vars(self) -> dict[str, Any]:
        """The variables every dbt model reads (dbt_project.yml declares the same names)."""
        p0, p1 = self.patents_window
        a0, a1 = self.publications_window
        return {
            "edition": self.edition,
            "eps_km": self.eps_km,
            "min_patents": self.min_patents,
            "min_publications": self.min_publications,
            "h3_resolution": self.h3_resolution,
            "top_n": self.top_n,
            "name_min_share": self.name_min_share,
            "economy_min_share": self.economy_min_share,
            "profiles_top_k": self.profiles_top_k,
            "robustness": self.robustness,
            "patents_first_year": p0,
            "patents_last_year": p1,
            "publications_first_year": a0,
            "publications_last_year": a1,
            "counted_document_types": counted_document_type_keys(),
        }

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _under_repo(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


PARAM_FIELDS = {f.name: f for f in fields(RunParams)}


def load_sources(path: Path | None = None) -> dict[str, Any]:
    path = path or sources_file()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: sources file not found") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data.get("source_sets"), dict):
        raise ConfigError(f"{path}: field 'source_sets' must be a mapping of named source sets")
    return data


def source_set(name: str, path: Path | None = None) -> dict[str, Any]:
    path = path or sources_file()
    sets = load_sources(path)["source_sets"]
    if name not in sets:
        raise ConfigError(f"{path}: no source set {name!r} (known: {', '.join(sorted(sets))})")
    return sets[name] or {}


def _coerce(name: str, value: Any, origin: str) -> Any:
    """Cast a value from YAML, the environment or a run conf to the field's type."""
    f = PARAM_FIELDS.get(name)
    if f is None:
        raise ConfigError(f"{origin}: unknown parameter {name!r} (known: {', '.join(PARAM_FIELDS)})")
    if value is None or value == "":
        return None if "None" in str(f.type) else f.default
    kind = str(f.type)
    try:
        if kind.startswith("int"):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise ValueError
            return int(float(value))
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("bool"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{origin}: parameter {name!r} = {value!r} is not a valid {kind}") from exc


def resolve(conf: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> RunParams:
    """Resolve a run's parameters from defaults, source set, environment and conf."""
    conf = {k: v for k, v in (conf or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    env_values = {
        name: _coerce(name, environ[ENV_PREFIX + name.upper()], f"environment {ENV_PREFIX + name.upper()}")
        for name in PARAM_FIELDS
        if ENV_PREFIX + name.upper() in environ
    }
    conf_values = {k: _coerce(k, v, "run conf") for k, v in conf.items()}
    set_name = conf_values.get("source_set") or env_values.get("source_set") or RunParams.source_set
    entry = source_set(set_name)
    for layer in ("patents", "publications"):
        spec = entry.get(layer) or {}
        if isinstance(spec, dict) and spec.get("uri"):
            values[f"{layer}_uri"] = spec["uri"]
    for k, v in (entry.get("params") or {}).items():
        values[k] = _coerce(k, v, f"{sources_file()}: source_sets.{set_name}.params")
    values.update(env_values)
    values.update(conf_values)
    values["source_set"] = set_name
    params = RunParams(**values)
    _check(params)
    check_paths(params, set(conf_values) & {"output_dir", "workspace_dir"})
    return params


def allowed_roots(env_name: str, environ: Mapping[str, str] | None = None) -> list[Path]:
    """The deployment's roots for a conf-given folder: ``env_name`` (os.pathsep-separated), else
    the repository. Read from the process environment, never from a run's conf."""
    environ = os.environ if environ is None else environ
    text = environ.get(env_name, "")
    roots = [Path(r).expanduser().resolve() for r in text.split(os.pathsep) if r.strip()]
    return roots or [REPO_ROOT.resolve()]


def check_paths(p: RunParams, from_conf: set[str] | frozenset[str] = frozenset()) -> None:
    """output_dir and workspace_dir, resolved (symlinks and '..' followed): they must differ and
    neither may contain the other (a republish archives the output folder; a workspace inside it
    would be archived as a publication). The ones a run's conf sets (``from_conf``) must lie under
    the roots the deployment allows (STCLUSTERS_OUTPUT_ROOTS, STCLUSTERS_WORKSPACE_ROOTS)."""
    out = _under_repo(p.output_dir).resolve()
    ws = _under_repo(p.workspace_dir).resolve()
    if out == ws or out in ws.parents or ws in out.parents:
        raise ConfigError(
            f"output_dir {p.output_dir!r} ({out}) and workspace_dir {p.workspace_dir!r} ({ws}) must be "
            "different folders, neither inside the other: set one of them elsewhere"
        )
    for name, resolved, env_name in (
        ("output_dir", out, OUTPUT_ROOTS_ENV),
        ("workspace_dir", ws, WORKSPACE_ROOTS_ENV),
    ):
        if name not in from_conf:
            continue
        roots = allowed_roots(env_name)
        if not any(resolved == r or r in resolved.parents for r in roots):
            raise ConfigError(
                f"run conf: {name} {getattr(p, name)!r} resolves to {resolved}, outside the allowed "
                f"roots ({', '.join(map(str, roots))}). A run's conf may only choose folders under "
                f"the roots the deployment sets in {env_name} (os.pathsep-separated; default: the "
                "repository); ask the operator to add a root or leave the parameter unset"
            )


def _check(p: RunParams) -> None:
    problems = []
    if not 1900 <= p.edition <= 2100:
        problems.append(f"edition {p.edition} is not a year")
    if p.eps_km <= 0:
        problems.append(f"eps_km must be > 0, got {p.eps_km}")
    if p.min_patents <= 0 or p.min_publications <= 0:
        problems.append("min_patents and min_publications must be > 0")
    if not 0 <= p.h3_resolution <= 15:
        problems.append(f"h3_resolution must be 0..15, got {p.h3_resolution}")
    if not 0 <= p.name_min_share <= 1 or not 0 <= p.economy_min_share <= 1:
        problems.append("name_min_share and economy_min_share must be within [0, 1]")
    if p.profiles_top_k < 1:
        problems.append(f"profiles_top_k must be >= 1, got {p.profiles_top_k}")
    if p.robustness not in ("off", "fast", "full"):
        problems.append(f"robustness must be off, fast or full, got {p.robustness!r}")
    if p.max_input_gib <= 0:
        problems.append(f"max_input_gib must be > 0, got {p.max_input_gib}")
    if p.top_n < 1:
        problems.append(f"top_n must be >= 1, got {p.top_n}")
    if p.max_count_drop < 0 or p.max_count_drop > 1 or p.max_count_jump < 0:
        problems.append("max_count_drop must be within [0, 1] and max_count_jump >= 0")
    if p.task_timeout_minutes < 1 or p.keep_validation_runs < 1 or p.lock_wait_seconds < 0:
        problems.append("task_timeout_minutes and keep_validation_runs must be >= 1, lock_wait_seconds >= 0")
    for name in (
        "min_geocoded_share",
        "major_country_min_share",
        "max_quarantine_share",
        "max_out_of_window_share",
    ):
        if not 0 <= getattr(p, name) <= 1:
            problems.append(f"{name} must be within [0, 1]")
    if problems:
        raise ConfigError("invalid parameters: " + "; ".join(problems))


def format_params(p: RunParams) -> str:
    return json.dumps(p.as_dict(), sort_keys=True, default=str)


def source_format(p: RunParams, layer: str) -> str:
    """The declared format of a layer's dump in the chosen source set ('canonical' by default)."""
    spec = source_set(p.source_set).get(layer) or {}
    return (spec.get("format") if isinstance(spec, dict) else None) or "canonical"


__all__ = [
    "DBT_PROJECT_DIR",
    "REPO_ROOT",
    "ConfigError",
    "RunParams",
    "allowed_roots",
    "check_paths",
    "format_params",
    "load_sources",
    "resolve",
    "source_format",
    "source_set",
]
