"""Byte-identical reruns: the sample edition run twice on the same inputs, with DuckDB at 1 and 3
threads, into two workspaces and two output folders, publishes the same bytes in every file.

Compared byte for byte: every published file but the run records (publish.RUN_RECORDS: the
manifest, its signature, validation/ with GX's Data Docs); report.html after masking its run
fields (publish.mask_run_fields: validation run id, fetch times, run-only parameters); the
manifest without its run fields (publish.MANIFEST_RUN_FIELDS). docs/operations.md,
"Byte-identical reruns".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stclusters.publish import publish

pytestmark = pytest.mark.e2e


def _run(root: Path, name: str, threads: int) -> Path:
    conf = {
        "workspace_dir": str(root / f"ws-{name}"),
        "output_dir": str(root / f"out-{name}"),
        "duckdb_threads": threads,
    }
    env = {**os.environ, "STCLUSTERS_CODE_VERSION": "e2e"}
    run = subprocess.run(
        [sys.executable, "-m", "stclusters", "run", "--conf", json.dumps(conf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    (root / f"{name}.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, f"run {name} failed; log {root / f'{name}.log'}:\n{run.stderr[-3000:]}"
    return root / f"out-{name}" / "2023"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("rerun_bytes")
    return _run(root, "a", threads=1), _run(root, "b", threads=3)


def _files(edition: Path) -> list[str]:
    return sorted(p.relative_to(edition).as_posix() for p in edition.rglob("*") if p.is_file())


def test_every_published_data_file_is_byte_identical(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    # the same files (validation/ holds GX pages named by run timestamps: run records)
    assert [f for f in _files(a) if not f.startswith("validation/")] == [
        f for f in _files(b) if not f.startswith("validation/")
    ]
    compared = [f for f in _files(a) if not publish.is_run_record(f) and f != publish.REPORT]
    # every kind the issue names is among them
    assert {Path(f).suffix for f in compared} >= {".csv", ".parquet", ".geojson", ".png", ".json"}
    different = [f for f in compared if (a / f).read_bytes() != (b / f).read_bytes()]
    assert different == [], f"differ between the 1-thread and the 3-thread run: {different}"


def test_report_differs_only_in_its_run_fields(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    texts = [
        publish.mask_run_fields((e / "report.html").read_text(encoding="utf-8"), _manifest(e)) for e in (a, b)
    ]
    assert texts[0] == texts[1]


def _manifest(edition: Path) -> dict:
    return json.loads((edition / "manifest.json").read_text(encoding="utf-8"))


def test_manifest_differs_only_in_its_run_fields(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    ma, mb = _manifest(a), _manifest(b)
    assert ma["parameters"]["duckdb_threads"] == 1 and mb["parameters"]["duckdb_threads"] == 3
    assert publish.manifest_without_run_fields(ma) == publish.manifest_without_run_fields(mb)
    # and the second run, published over the first, is "unchanged"
    assert publish.publication_differences(a, b) == []
