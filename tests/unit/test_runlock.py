"""One run at a time per edition workspace: a second run fails at once (or after waiting) with a
message naming the other run, instead of a DuckDB catalog error; dead runs do not block."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stclusters import config, runlock
from stclusters.runlock import RunLocked

HOLDER = """
import sys, time
from pathlib import Path
from stclusters import config, runlock
params = config.resolve({"workspace_dir": sys.argv[1], "output_dir": sys.argv[2]})
with runlock.hold(params, sys.argv[5], release_on_success=sys.argv[5] == "publish"):
    Path(sys.argv[3]).write_text("holding")
    while not Path(sys.argv[4]).exists():
        time.sleep(0.05)
"""


def _params(tmp_path: Path, **conf: object) -> config.RunParams:
    return config.resolve(
        {"workspace_dir": str(tmp_path / "ws"), "output_dir": str(tmp_path / "out"), **conf}
    )


def _start_holder(tmp_path: Path, run_id: str, task: str = "build") -> tuple[subprocess.Popen, Path]:
    held, release = tmp_path / "held", tmp_path / "release"
    env = {**os.environ, "STCLUSTERS_RUN_ID": run_id}
    env.pop("AIRFLOW_CTX_DAG_RUN_ID", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLDER,
            str(tmp_path / "ws"),
            str(tmp_path / "out"),
            str(held),
            str(release),
            task,
        ],
        env=env,
    )
    deadline = time.monotonic() + 60
    while not held.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "holder did not start"
        time.sleep(0.05)
    return proc, release


def test_second_run_fails_at_once_naming_the_running_one(tmp_path: Path) -> None:
    proc, release = _start_holder(tmp_path, "scheduled__2023-03-01")
    try:
        start = time.monotonic()
        with pytest.raises(RunLocked) as info, runlock.hold(_params(tmp_path), "pull"):
            pass
        assert time.monotonic() - start < 5
        message = str(info.value)
        assert "run scheduled__2023-03-01 (task build" in message and f"pid {proc.pid}" in message
        assert "started 20" in message and ".run-owner.json" in message
    finally:
        release.write_text("go")
        proc.wait(timeout=60)
    # the holder's task ended normally: its run is between two tasks, still the owner
    owner = runlock.read_owner(_params(tmp_path).workspace)
    assert owner and owner["run_id"] == "scheduled__2023-03-01" and owner["in_task"] is False
    with pytest.raises(RunLocked, match="scheduled__2023-03-01"), runlock.hold(_params(tmp_path), "pull"):
        pass


def test_second_run_waits_when_asked_then_runs(tmp_path: Path) -> None:
    proc, release = _start_holder(tmp_path, "manual__a", task="publish")
    workspace = _params(tmp_path).workspace
    try:
        # the first run ends (its last task releases the workspace) while the second waits
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import time, pathlib, sys; time.sleep(1.5); pathlib.Path(sys.argv[1]).write_text('go')",
                str(release),
            ]
        )
        with runlock.hold(_params(tmp_path, lock_wait_seconds=30), "pull") as owner:
            assert owner["run_id"] == runlock.current_run_id()
    finally:
        proc.wait(timeout=60)
    assert runlock.read_owner(workspace)["run_id"] == runlock.current_run_id()


def test_a_dead_run_does_not_block(tmp_path: Path) -> None:
    params = _params(tmp_path)
    params.workspace.mkdir(parents=True)
    record = {
        "run_id": "manual__dead",
        "pid": 1,
        "host": "h",
        "task": "load",
        "started_at": "2026-01-01T00:00:00Z",
    }
    # killed inside a task: in_task true but nobody holds the flock
    (params.workspace / runlock.OWNER_FILE).write_text(
        json.dumps({**record, "heartbeat_at": "2026-12-01T00:00:00Z", "in_task": True})
    )
    with runlock.hold(params, "pull", release_on_success=True):
        pass
    assert runlock.read_owner(params.workspace) is None
    # between two tasks for longer than task_timeout_minutes: over
    (params.workspace / runlock.OWNER_FILE).write_text(
        json.dumps({**record, "heartbeat_at": "2020-01-01T00:00:00Z", "in_task": False})
    )
    with runlock.hold(params, "pull"):
        pass


def test_a_failed_task_releases_the_workspace(tmp_path: Path) -> None:
    params = _params(tmp_path)
    with pytest.raises(ValueError), runlock.hold(params, "build"):
        raise ValueError("dbt failed")
    assert runlock.read_owner(params.workspace) is None
