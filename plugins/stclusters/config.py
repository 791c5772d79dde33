"""Run parameters: the one schema of every parameter, its default, bounds and choices.

``RunParams`` (a pydantic dataclass) is the single source of truth. From it come: the
validation of a run's conf, of the ``STCLUSTERS_<NAME>`` environment variables and of the source
sets' ``params``; the DAG's trigger form (:func:`dag_params`); and the README's parameter table
(:func:`markdown_table`, ``python -m stclusters.config --markdown``). Tests check the DAG and the
README against it.

A run's parameters are resolved once, at the edge, in this order (later wins):

1. the defaults of :class:`RunParams` below;
2. the ``params`` of the chosen source set in ``config/sources.yml``;
3. environment variables ``STCLUSTERS_<NAME>`` (e.g. ``STCLUSTERS_TOP_N=50``);
4. the DAG run's conf (``make run CONF='{...}'`` or ``airflow dags test st_clusters --conf``).

An unknown conf key, source set parameter or ``STCLUSTERS_*`` variable is an error that names it
and suggests the closest known name. ``STCLUSTERS_*`` variables that are not run parameters are
listed in :data:`OTHER_ENV_VARS` with the module that reads each.

This module is imported when the DAG file is parsed: it imports nothing heavy (pydantic and
PyYAML only; tests/dags checks it).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

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

# Every STCLUSTERS_* variable that is not a run parameter, and who reads it. Any other
# STCLUSTERS_* variable in a run's environment is an error (a typo would otherwise be ignored).
OTHER_ENV_VARS: dict[str, str] = {
    "STCLUSTERS_HOME": "the repository root (config.REPO_ROOT); set by the deployment",
    "STCLUSTERS_SOURCES_FILE": "another sources file instead of config/sources.yml",
    OUTPUT_ROOTS_ENV: "folders under which a run's conf may place output_dir",
    WORKSPACE_ROOTS_ENV: "folders under which a run's conf may place workspace_dir",
    "STCLUSTERS_AIRFLOW_POOL": "the Airflow pool of the DuckDB tasks (dags/st_clusters.py)",
    "STCLUSTERS_AIRFLOW_POOL_SLOTS": "slots of that pool (docker-compose's init job)",
    "STCLUSTERS_LOG_LEVEL": "level of the noisy libraries' loggers (tasks.py)",
    "STCLUSTERS_RUN_ID": "the run lock's owner outside Airflow (runlock.py)",
    "STCLUSTERS_CODE_VERSION": "the code version written in the manifest (publish)",
    "STCLUSTERS_SIGNING_KEY": "Ed25519 private key (PEM text) that signs the manifest (publish)",
    "STCLUSTERS_SIGNING_KEY_FILE": "file of that key (publish)",
    "STCLUSTERS_VERIFY_KEY_FILE": "public key that verify checks the signature with (publish)",
    "STCLUSTERS_DUCKDB_PATH": "the edition's DuckDB file, set for dbt's profile (build)",
    "STCLUSTERS_DATA_DIR": "host folder of the dumps (docker compose, .env)",
    "STCLUSTERS_IMAGE_TAG": "tag of the Airflow image (docker compose, .env)",
    "STCLUSTERS_REAL_CORPUS": "folder of the real-data test corpus (tests, tools)",
    "STCLUSTERS_SAMPLE_DIR": "another copy of the sample (tests)",
    "STCLUSTERS_CHROMIUM": "the browser of the report's browser test (tests)",
    "STCLUSTERS_BENCH_DIR": "data root of the benchmark (bench/run.py)",
}

# Read when the DAG file is parsed (the tasks' execution_timeout), so a run cannot change it:
# from the environment or the default only, never from a conf or a source set.
ENVIRONMENT_ONLY = frozenset({"task_timeout_minutes"})


class ConfigError(ValueError):
    """A parameter or the sources file is wrong; the message names the setting and its origin."""


Share = Annotated[float, Field(ge=0, le=1)]
Positive = Annotated[float, Field(gt=0)]
AtLeastOne = Annotated[int, Field(ge=1)]
Uris = str | list[str] | None


@dataclass(
    frozen=True,
    config=ConfigDict(use_attribute_docstrings=True, extra="forbid", coerce_numbers_to_str=True),
)
class RunParams:
    """Everything that determines one edition's run. Each field's docstring is its description in
    the README's table and in the DAG's trigger form."""

    edition: Annotated[int, Field(ge=1900, le=2100)] = 2023
    """GII edition year; the data windows follow from it. Scheduled and backfill runs build the
    year of their logical date."""
    source_set: str = "sample"
    """Entry of `config/sources.yml` giving the dumps, their formats and parameter overrides."""
    patents_uri: Uris = None
    """Patent dump(s): path, `file://`, `http(s)://`, `s3://`, glob or list; `{edition}` is filled
    in; null = from the source set."""
    publications_uri: Uris = None
    """Publication dump(s), as `patents_uri`."""
    eps_km: Positive = 13.0
    """DBSCAN radius, great-circle km, both layers."""
    min_patents: Positive = 2000.0
    """Minimum fractional patents within `eps_km` of a core location."""
    min_publications: Positive = 6000.0
    """Minimum fractional articles within `eps_km` of a core location."""
    h3_resolution: Annotated[int, Field(ge=0, le=15)] = 8
    """H3 resolution of the cells the clustering runs on."""
    top_n: AtLeastOne = 100
    """Number of clusters published."""
    name_min_share: Share = 0.10
    """A cluster's 2nd and 3rd places join its name when each brings at least this share of its
    score."""
    economy_min_share: Share = 0.05
    """An economy is listed for a cluster when it brings at least this share of its score."""
    profiles_top_k: AtLeastOne = 5
    """Items kept per cluster and facet in the profiles (applicants, fields, partners)."""
    robustness: Literal["off", "fast", "full"] = "fast"
    """Rank intervals (docs/methodology.md, "Rank intervals"): `off`, `fast` (normal-approximation
    bootstrap, 5 parameter variations) or `full` (exact bootstrap, 9 variations)."""
    output_dir: str = "output"
    """Publications go to `<output_dir>/<edition>/` (relative to the repository); a run's conf may
    only choose a folder under `STCLUSTERS_OUTPUT_ROOTS` (default: the repository), never the
    workspace or a folder containing it (docs/operations.md, "Where a run may write")."""
    workspace_dir: str = "workspace"
    """Per-edition working area: landing files, DuckDB file, dbt artefacts, validation runs; from a
    run's conf only under `STCLUSTERS_WORKSPACE_ROOTS` (default: the repository)."""
    window_years: AtLeastOne = 5
    """Length of each layer's window, in publication years."""
    patents_window_lag: Annotated[int, Field(ge=0)] = 1
    """The patent window ends this many years before the edition (GII 2023: 2018–2022)."""
    publications_window_lag: Annotated[int, Field(ge=0)] = 2
    """The article window ends this many years before the edition (GII 2023: 2017–2021)."""
    min_geocoded_share: Share = 0.9
    """Gate: geocoding coverage required per layer and per major country."""
    major_country_min_share: Share = 0.05
    """Gate: countries with at least this share of a layer's weight must each reach
    `min_geocoded_share`."""
    stability_max_rank_move: Annotated[int, Field(ge=0)] = 10
    """Gate warning: a previous top-10 cluster moving more than this many ranks (or vanishing)."""
    max_quarantine_share: Share = 0.01
    """Load fails when a file's share of quarantined rows is above this."""
    max_input_gib: Positive = 20.0
    """Pull refuses a landed file above this many GiB once decompressed (bounded reads)."""
    max_out_of_window_share: Share = 0.0
    """Gate: share of a dump's documents allowed outside the edition's window."""
    republish: bool = False
    """Allow replacing an already published edition with different data (the old one is
    archived)."""
    duckdb_memory_limit: str = "3GB"
    """DuckDB `memory_limit` of the edition's database, for the load step and dbt (a scale-1
    edition then peaks under 4 GB with dbt and Python, docs/performance.md)."""
    duckdb_threads: AtLeastOne = 2
    """DuckDB threads, for the load step and dbt (also the robustness variations re-clustered at
    once, while DuckDB waits)."""
    document_buckets: Annotated[int, Field(ge=0)] = 0
    """The models that work document by document (weights, documents' clusters, links,
    collaboration scopes) are built in this many passes, each over one bucket of documents, so
    that each pass's hash tables fit `duckdb_memory_limit` (docs/performance.md, "Buckets of
    documents"). 0: one bucket per 20 M address rows loaded per GB of the memory limit (a
    GII-size edition at 3GB: 1, one query per model)."""
    dbt_threads: AtLeastOne = 1
    """dbt models built at once. Each model already runs on every DuckDB thread; models built
    side by side share the memory limit and spill (docs/performance.md)."""
    max_count_drop: Share = 0.5
    """Gate (critical): a layer's document count may fall at most this share below the previous
    published edition of the same source set."""
    max_count_jump: Annotated[float, Field(ge=0)] = 1.0
    """Gate warning: a layer's document count rising more than this share above the previous
    published edition."""
    task_timeout_minutes: AtLeastOne = 240
    """`execution_timeout` of every DAG task; read when the DAG file is parsed, so only from the
    environment (`STCLUSTERS_TASK_TIMEOUT_MINUTES`)."""
    lock_wait_seconds: Annotated[int, Field(ge=0)] = 0
    """A second run of the same edition waits this long for the running one, then fails naming it
    (docs/operations.md, "Run lock")."""
    keep_validation_runs: AtLeastOne = 5
    """Validation runs kept per edition workspace; older run folders are removed when the gate
    runs."""

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

    def dbt_profile_env(self) -> dict[str, str]:
        """The variables dbt_project/profiles.yml reads; it has no defaults of its own."""
        return {
            "STCLUSTERS_DUCKDB_PATH": str(self.duckdb_path),
            "STCLUSTERS_DUCKDB_THREADS": str(self.duckdb_threads),
            "STCLUSTERS_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
            "STCLUSTERS_DBT_THREADS": str(self.dbt_threads),
        }

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _under_repo(path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


PARAM_FIELDS = {f.name: f for f in dataclasses.fields(RunParams)}


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest known name, else the list of known names."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f" (known: {', '.join(known)})"


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
        raise ConfigError(f"{path}: no source set {name!r}{did_you_mean(name, sets)}")
    return sets[name] or {}


@cache
def _field_adapter(name: str) -> TypeAdapter:
    """Validates one field's value alone: its type, bounds and choices (RunParams' config)."""
    info = RunParams.__pydantic_fields__[name]
    kind = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return TypeAdapter(kind, config=RunParams.__pydantic_config__)


_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _coerce(name: str, value: Any, origin: str) -> Any:
    """Check and cast one value from YAML, the environment or a run conf against the schema."""
    if name not in PARAM_FIELDS:
        raise ConfigError(f"{origin}: unknown parameter {name!r}{did_you_mean(name, PARAM_FIELDS)}")
    try:
        return _field_adapter(name).validate_python(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        ctx = error.get("ctx") or {}
        bound = next((f"{sign} {_number(ctx[key])}" for key, sign in _BOUNDS.items() if key in ctx), None)
        if bound:
            problem = f"{name} must be {bound}, got {value!r}"
        elif error["type"] == "literal_error":
            problem = f"{name} must be one of {ctx.get('expected')}, got {value!r}"
        else:
            problem = f"parameter {name!r} = {value!r} is not a valid {type_name(name)}"
        raise ConfigError(f"{origin}: {problem}") from exc


def env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The run parameters set by ``STCLUSTERS_<NAME>`` variables, checked; any other
    ``STCLUSTERS_*`` variable not in OTHER_ENV_VARS is an error naming the closest known one."""
    by_variable = {ENV_PREFIX + name.upper(): name for name in PARAM_FIELDS}
    values = {}
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX) or variable in OTHER_ENV_VARS:
            continue
        name = by_variable.get(variable)
        if name is None:
            raise ConfigError(
                f"environment: unknown variable {variable}"
                f"{did_you_mean(variable, [*by_variable, *OTHER_ENV_VARS])}; "
                'STCLUSTERS_<NAME> sets the run parameter <name> (README, "Configuration")'
            )
        if environ[variable] != "":  # an empty variable is not set
            values[name] = _coerce(name, environ[variable], f"environment {variable}")
    return values


def _run_values(values: Mapping[str, Any], origin: str) -> dict[str, Any]:
    """A conf's or a source set's parameters, checked; null or "" means "not set" (the trigger
    form's empty fields)."""
    return {k: _coerce(k, v, origin) for k, v in values.items() if v is not None and v != ""}


def _check_environment_only(values: Mapping[str, Any], origin: str, from_env: Mapping[str, Any]) -> None:
    """A run may repeat an environment-only parameter (a conf made from a manifest's parameters)
    but not change it: the DAG was parsed with the environment's value or the default."""
    for name in sorted(ENVIRONMENT_ONLY & set(values)):
        parsed = from_env.get(name, PARAM_FIELDS[name].default)
        if values[name] != parsed:
            raise ConfigError(
                f"{origin}: {name} = {values[name]!r}, but the DAG file was parsed with {parsed!r}: "
                f"a run cannot change it; set {ENV_PREFIX + name.upper()} in the environment of the "
                "DAG processor and the workers"
            )


def resolve(conf: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> RunParams:
    """Resolve a run's parameters from defaults, source set, environment and conf."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    from_env = env_values(environ)
    from_conf = _run_values(conf or {}, "run conf")
    _check_environment_only(from_conf, "run conf", from_env)
    set_name = from_conf.get("source_set") or from_env.get("source_set") or RunParams.source_set
    entry = source_set(set_name)
    for layer in ("patents", "publications"):
        spec = entry.get(layer) or {}
        if isinstance(spec, dict) and spec.get("uri"):
            values[f"{layer}_uri"] = spec["uri"]
    origin = f"{sources_file()}: source_sets.{set_name}.params"
    from_set = _run_values(entry.get("params") or {}, origin)
    _check_environment_only(from_set, origin, from_env)
    values.update(from_set)
    values.update(from_env)
    values.update(from_conf)
    values["source_set"] = set_name
    try:
        params = RunParams(**values)
    except ValidationError as exc:  # every value was checked alone; kept for a clear message
        raise ConfigError(f"invalid parameters: {exc}") from exc
    check_paths(params, set(from_conf) & {"output_dir", "workspace_dir"})
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


def format_params(p: RunParams) -> str:
    return json.dumps(p.as_dict(), sort_keys=True, default=str)


def source_format(p: RunParams, layer: str) -> str:
    """The declared format of a layer's dump in the chosen source set ('canonical' by default)."""
    spec = source_set(p.source_set).get(layer) or {}
    return (spec.get("format") if isinstance(spec, dict) else None) or "canonical"


# --- the schema's other outputs: the DAG's trigger form and the README's table ----------------

_TYPE_NAMES = {
    "integer": "int",
    "number": "float",
    "string": "str",
    "boolean": "bool",
    "array": "list of str",
    "null": "null",
}


@cache
def schema_properties() -> dict[str, dict[str, Any]]:
    """Each parameter's JSON schema (type, default, bounds, choices, description), from pydantic."""
    return TypeAdapter(RunParams).json_schema()["properties"]


def json_types(name: str) -> list[str]:
    """The JSON types a parameter accepts (``null`` included when null is a valid value)."""
    prop = schema_properties()[name]
    types = [p["type"] for p in prop["anyOf"]] if "anyOf" in prop else [prop["type"]]
    return sorted(types, key=lambda t: t != "null")  # null first, as Airflow's docs write it


def type_name(name: str) -> str:
    names = [_TYPE_NAMES[t] for t in json_types(name) if t != "null"]
    if "null" in json_types(name):
        names.append("null")
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


_SCHEMA_BOUNDS = {"exclusiveMinimum": ">", "minimum": ">=", "exclusiveMaximum": "<", "maximum": "<="}


def _bounds(name: str) -> dict[str, Any]:
    prop = schema_properties()[name]
    return {k: prop[k] for k in (*_SCHEMA_BOUNDS, "enum") if k in prop}


def _default_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _allowed_text(name: str) -> str:
    """The README's "allowed" cell: bounds, choices or any."""
    b = _bounds(name)
    if name == "source_set":
        return "a source set of `config/sources.yml`"
    if PARAM_FIELDS[name].type == "bool":
        return "`true`, `false`"
    if "enum" in b:
        return ", ".join(f"`{v}`" for v in b["enum"])
    if "minimum" in b and "maximum" in b:
        return f"{b['minimum']} to {b['maximum']}"
    parts = [f"{sign} {b[key]}" for key, sign in _SCHEMA_BOUNDS.items() if key in b]
    return ", ".join(parts) or "any"


def description(name: str) -> str:
    """The parameter's docstring on one line (the README's and the trigger form's text)."""
    return " ".join(schema_properties()[name]["description"].split())


def markdown_table() -> str:
    """The README's parameter table (``python -m stclusters.config --markdown``)."""
    lines = ["| parameter | default | type | allowed | meaning |", "|---|---|---|---|---|"]
    for name, f in PARAM_FIELDS.items():
        cells = [f"`{name}`", f"`{_default_text(f.default)}`", type_name(name), _allowed_text(name)]
        lines.append("| " + " | ".join([*cells, description(name)]) + " |")
    return "\n".join(lines)


def dag_task_timeout(environ: Mapping[str, str] | None = None) -> timedelta:
    """Every DAG task's execution_timeout: task_timeout_minutes from the environment (checked
    like any run parameter) or the schema's default; read when the DAG file is parsed."""
    env = os.environ if environ is None else environ
    variable = ENV_PREFIX + "TASK_TIMEOUT_MINUTES"
    minutes = (
        _coerce("task_timeout_minutes", env[variable], f"environment {variable}")
        if env.get(variable, "") != ""
        else RunParams.task_timeout_minutes
    )
    return timedelta(minutes=minutes)


def dag_params(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The DAG's Params: every parameter a run may set, typed, with its bounds and choices (the
    source sets of the sources file, read now). Each defaults to null, which means "not set": the
    run then takes the source set's, the environment's or the schema's value, and the form's text
    says which. Called when the DAG file is parsed; reads the sources file and the environment."""
    from airflow.sdk import Param

    environ = os.environ if environ is None else environ
    sets = load_sources()["source_sets"]
    params = {}
    for name, f in PARAM_FIELDS.items():
        if name in ENVIRONMENT_ONLY:
            continue
        schema = _bounds(name)
        if name == "source_set":
            schema["enum"] = sorted(sets)
        if "enum" in schema:
            schema["enum"] = [None, *schema["enum"]]
        types = json_types(name)
        if "array" in types:
            schema["items"] = {"type": "string"}
        default = "the source set's" if f.default is None else _default_text(f.default)
        text = f"{description(name).replace('`', '')} Empty: {default}"
        overrides = [
            f"source set {set_name}: {_default_text(entry['params'][name])}"
            for set_name, entry in sorted(sets.items())
            if isinstance((entry or {}).get("params"), dict) and name in entry["params"]
        ]
        variable = ENV_PREFIX + name.upper()
        if variable in environ:
            overrides.append(f"{variable}={environ[variable]} (overrides the source set)")
        if overrides:
            text += "; " + "; ".join(overrides)
        params[name] = Param(
            None, type=types if "null" in types else ["null", *types], description=text + ".", **schema
        )
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stclusters.config",
        description="Print the resolved run parameters (JSON), the README's table or dbt's variables.",
    )
    parser.add_argument("--conf", default="{}", help="a run conf (JSON), as the DAG receives it")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="the README's parameter table")
    out.add_argument(
        "--dbt-env",
        action="store_true",
        help="NAME=VALUE lines of the variables dbt_project/profiles.yml reads (make lint, make docs)",
    )
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table())
        return 0
    try:
        params = resolve(json.loads(args.conf))
    except (ConfigError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.dbt_env:
        print("\n".join(f"{k}={v}" for k, v in params.dbt_profile_env().items()))
    else:
        print(json.dumps(params.as_dict(), indent=2, sort_keys=True))
    return 0


__all__ = [
    "DBT_PROJECT_DIR",
    "OTHER_ENV_VARS",
    "REPO_ROOT",
    "ConfigError",
    "RunParams",
    "allowed_roots",
    "check_paths",
    "dag_params",
    "did_you_mean",
    "env_values",
    "format_params",
    "load_sources",
    "markdown_table",
    "resolve",
    "source_format",
    "source_set",
]


if __name__ == "__main__":
    sys.exit(main())
