"""The files the tasks hand each other: where they live, what they hold, how they are written.

Every task is its own process; what one step leaves for the next is a file in the edition's
workspace (``<workspace_dir>/<edition>/``) or publication (``<output_dir>/<edition>/``):

============================  ==============  =================================================
file                          written by      read by
============================  ==============  =================================================
``landing/landed.json``       pull            load, publish (manifest inputs), clean-workspace
``load_stats.json``           load            publish (rows loaded / quarantined per file)
``validation/latest.json``    the gate        report, publish, ``python -m stclusters where``
``report/report.json``        report          publish (the rendered files and their sha256)
``<edition>/manifest.json``   publish         verify, the next edition's gate and diff
============================  ==============  =================================================

Each has a typed record here (:class:`LandedInputs`, :class:`LoadStats`, :class:`GateSummary`,
:class:`ReportRecord`, :class:`Manifest`) with ``read``/``write`` and no other reader or writer
in the package. The records keep the files' JSON exactly as it was (same keys, same order, same
bytes): they are views of the JSON, not a new format. Also here, the one atomic writer
(:func:`write_json_atomic`, :func:`write_text_atomic`), the one checksum (:func:`sha256_file`)
and the one export convention of the published tables (:func:`export_tables`: CSV with ``\\n``
line ends and ``%.10g`` floats), which the gate applies to what it validates and publish to
what it publishes.

This module imports nothing of the package but ``stclusters.config``: every step can use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stclusters.config import RunParams

if TYPE_CHECKING:
    import duckdb

LANDED_FILE = "landed.json"
LOAD_STATS_FILE = "load_stats.json"
GATE_SUMMARY_FILE = "latest.json"
REPORT_RECORD_FILE = "report.json"
# The published report page (written by stclusters.report, copied by publish)
REPORT = "report.html"
MANIFEST = "manifest.json"

# The published tables and the query that exports each (sorted: same data, same bytes).
EXPORTS = {
    "ranking.csv": "select * from main.ranking order by rank",
    "clusters.csv": "select * from main.clusters order by rank",
    "cluster_cells.csv": "select * from main.cluster_cells order by rank, cell",
}
DATA_FILES = tuple(EXPORTS)
CSV_FLOAT_FORMAT = "%.10g"

# Parameters that place or tune a run without shaping its data: a gate run with other values
# still vouches for the data (params_fingerprint), and they are a publication's run fields.
RUN_ONLY_PARAMETERS = frozenset(
    {
        "republish",
        "output_dir",
        "workspace_dir",
        "duckdb_memory_limit",
        "duckdb_threads",
        "dbt_threads",
        "document_buckets",
        "task_timeout_minutes",
        "lock_wait_seconds",
        "keep_validation_runs",
    }
)


# --- paths ---------------------------------------------------------------------------------------


def landing_dir(params: RunParams) -> Path:
    return params.workspace / "landing"


def landed_path(params: RunParams) -> Path:
    return landing_dir(params) / LANDED_FILE


def load_stats_path(params: RunParams) -> Path:
    return params.workspace / LOAD_STATS_FILE


def validation_dir(params: RunParams) -> Path:
    return params.workspace / "validation"


def gate_summary_path(params: RunParams) -> Path:
    return validation_dir(params) / GATE_SUMMARY_FILE


def report_dir(params: RunParams) -> Path:
    """Where the report task renders the report and its analyst outputs for publish to copy."""
    return params.workspace / "report"


def manifest_path(edition_dir: Path) -> Path:
    return edition_dir / MANIFEST


# --- writing and checking ------------------------------------------------------------------------


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename: a reader sees
    the old file or the new one, never a part (the temporary is removed if the write fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def json_text(data: Any, *, sort_keys: bool = True) -> str:
    """The hand-over files' JSON: two-space indent, one trailing newline."""
    return json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n"


def write_json_atomic(path: Path, data: Any, *, sort_keys: bool = True) -> None:
    write_text_atomic(path, json_text(data, sort_keys=sort_keys))


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sql_str(value: str | Path) -> str:
    """A SQL string literal (single quotes doubled), for DuckDB statements that take no
    parameters (COPY ... TO, read_* table functions in DDL)."""
    return "'" + str(value).replace("'", "''") + "'"


def export_tables(con: duckdb.DuckDBPyConnection, dest: Path) -> dict[str, str]:
    """Write the published tables as CSV with stable formatting (same data, same bytes); returns
    each file's sha256. The gate calls it on the data it validates, publish on what it publishes."""
    dest.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name, sql in EXPORTS.items():
        frame = con.sql(sql).df()
        frame.to_csv(dest / name, index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n")
        hashes[name] = sha256_file(dest / name)
    return hashes


def params_fingerprint(params: RunParams) -> str:
    """sha256 of the parameters that shape the data: publish refuses a gate run with other ones."""
    data = {k: v for k, v in params.as_dict().items() if k not in RUN_ONLY_PARAMETERS}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


# --- landed.json (pull -> load, publish) ---------------------------------------------------------


@dataclass(frozen=True)
class LandedLayer:
    """One layer of landed.json: the landed files (uri, path, size, sha256, fetched_at, reused,
    decompressed_bytes, lines, expected_rows), the canonical files the load reads, and a format
    adapter's conversion counts (None for canonical dumps)."""

    format: str
    files: list[dict[str, Any]]
    canonical: list[str]
    conversion: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "files": self.files,
            "canonical": self.canonical,
            "conversion": self.conversion,
        }

    @property
    def sha256s(self) -> list[str]:
        return [f["sha256"] for f in self.files]


@dataclass(frozen=True)
class LandedInputs:
    """landed.json: what the pull step landed for the edition."""

    edition: int | None  # None: a record written by hand without it (clean-workspace reads it)
    layers: dict[str, LandedLayer] = field(default_factory=dict)
    gazetteer: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> path, sha256, size

    def as_dict(self) -> dict[str, Any]:
        return {
            "edition": self.edition,
            "layers": {name: layer.as_dict() for name, layer in self.layers.items()},
            "gazetteer": self.gazetteer,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LandedInputs:
        return cls(
            edition=data.get("edition"),
            layers={
                name: LandedLayer(
                    format=v.get("format", "canonical"),
                    files=list(v.get("files") or []),
                    canonical=list(v.get("canonical") or []),
                    conversion=v.get("conversion"),
                )
                for name, v in (data.get("layers") or {}).items()
            },
            gazetteer=dict(data.get("gazetteer") or {}),
        )

    def write(self, params: RunParams) -> Path:
        path = landed_path(params)
        write_json_atomic(path, self.as_dict())
        return path

    @classmethod
    def read(cls, params: RunParams) -> LandedInputs | None:
        """The edition's landed.json, or None when nothing was landed."""
        return cls.read_file(landed_path(params))

    @classmethod
    def read_file(cls, path: Path) -> LandedInputs | None:
        return cls.from_dict(read_json(path)) if path.is_file() else None

    def referenced_paths(self) -> set[Path]:
        """Every landing file this record names: landed dumps, canonical files, an adapter's
        quarantine file (landing retention keeps these and their sidecars)."""
        paths: set[Path] = set()
        for layer in self.layers.values():
            paths.update(Path(f["path"]) for f in layer.files)
            paths.update(Path(c) for c in layer.canonical)
            if (layer.conversion or {}).get("quarantine_file"):
                paths.add(Path(layer.conversion["quarantine_file"]))  # type: ignore[index]
        return paths


# --- load_stats.json (load -> publish) -----------------------------------------------------------


@dataclass(frozen=True)
class LoadStats:
    """load_stats.json: per loaded (canonical) file, its layer, rows loaded and quarantined,
    quarantine share and the expected rows its landed record declared."""

    files: dict[str, dict[str, Any]]

    def write(self, params: RunParams) -> Path:
        path = load_stats_path(params)
        write_json_atomic(path, self.files)
        return path

    @classmethod
    def read(cls, params: RunParams) -> LoadStats:
        """The edition's load statistics (empty when the load has not run)."""
        path = load_stats_path(params)
        return cls(read_json(path) if path.is_file() else {})

    def rows_loaded(self) -> int:
        return sum(s["rows_loaded"] for s in self.files.values())

    def rows_quarantined(self) -> int:
        return sum(s["rows_quarantined"] for s in self.files.values())


# --- validation/latest.json (gate -> report, publish) --------------------------------------------


@dataclass(frozen=True)
class GateSummary:
    """validation/latest.json: a copy of the newest gate run's summary.json. The typed fields are
    those the other steps decide on; ``data`` is the whole summary (the report renders it)."""

    data: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.data.get("passed"))

    @property
    def run_id(self) -> str | None:
        return self.data.get("run_id")

    @property
    def run_dir(self) -> Path:
        return Path(self.data["run_dir"])

    @property
    def params_fingerprint(self) -> str | None:
        return self.data.get("params_fingerprint")

    @property
    def validated_files(self) -> dict[str, str]:
        return dict(self.data.get("validated_files") or {})

    def write(self, params: RunParams) -> Path:
        # summary.json's own format (no sorted keys): latest.json is its byte copy
        path = gate_summary_path(params)
        write_json_atomic(path, self.data, sort_keys=False)
        return path

    @classmethod
    def read(cls, params: RunParams) -> GateSummary | None:
        path = gate_summary_path(params)
        return cls(read_json(path)) if path.is_file() else None

    def copy_reports(self, dest: Path) -> None:
        """Copy the run's summaries, suites and Data Docs next to a publication."""
        dest.mkdir(parents=True, exist_ok=True)
        for name in ("summary.json", "summary.md"):
            shutil.copy2(self.run_dir / name, dest / name)
        suites = sorted((self.run_dir / "gx").rglob("expectations/*.json"))
        if suites:
            (dest / "suites").mkdir(exist_ok=True)
            for s in suites:
                shutil.copy2(s, dest / "suites" / s.name)
        if self.data.get("data_docs"):
            shutil.copytree(Path(self.data["data_docs"]).parent, dest / "data_docs", dirs_exist_ok=True)


def latest_summary(params: RunParams) -> dict | None:
    """The newest gate summary as a plain dict (validation/latest.json), or None."""
    summary = GateSummary.read(params)
    return summary.data if summary else None


# --- report/report.json (report -> publish) ------------------------------------------------------


@dataclass(frozen=True)
class ReportRecord:
    """report/report.json: what the report task rendered, for which gate run and from which
    exported tables; publish copies exactly these files (each checked against its sha256)."""

    edition: int
    gate_run_id: str | None
    params_fingerprint: str
    tables: dict[str, str]  # the exported tables the report and diff read: name -> sha256
    files: dict[str, str]  # rendered file (relative to report_dir) -> sha256

    def write(self, params: RunParams) -> Path:
        path = report_dir(params) / REPORT_RECORD_FILE
        write_json_atomic(path, self.__dict__)
        return path

    @classmethod
    def read(cls, params: RunParams) -> ReportRecord | None:
        path = report_dir(params) / REPORT_RECORD_FILE
        return cls(**read_json(path)) if path.is_file() else None


# --- manifest.json (publish -> verify, the next edition) -----------------------------------------


@dataclass(frozen=True)
class Manifest:
    """An edition's manifest.json (schema in docs/data-formats.md). ``data`` is the whole
    manifest; the typed accessors are what other steps read from it."""

    data: dict[str, Any]

    @classmethod
    def read(cls, edition_dir: Path) -> Manifest | None:
        """The manifest of a published edition folder, or None (absent or unreadable)."""
        try:
            data = read_json(manifest_path(edition_dir))
        except (OSError, ValueError):
            return None
        return cls(data) if isinstance(data, dict) else None

    def write(self, edition_dir: Path) -> Path:
        # not atomic on its own: publish writes it into a staging folder renamed as a whole
        path = manifest_path(edition_dir)
        path.write_text(json_text(self.data), encoding="utf-8")
        return path

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.data.get("parameters") or {})

    @property
    def files(self) -> dict[str, str]:
        return dict(self.data.get("files") or {})

    @property
    def published_at(self) -> str | None:
        return self.data.get("published_at")

    def input_layers(self) -> dict[str, dict[str, Any]]:
        return dict((self.data.get("inputs") or {}).get("layers") or {})

    def input_sha256s(self) -> dict[str, list[str]]:
        """Each layer's landed files' sha256, sorted."""
        return {
            layer: sorted(f.get("sha256") or "" for f in entry.get("files", []))
            for layer, entry in self.input_layers().items()
        }

    def documents_landed(self) -> dict[str, int]:
        return {
            layer: entry["documents_landed"]
            for layer, entry in self.input_layers().items()
            if entry.get("documents_landed")
        }
