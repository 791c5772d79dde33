"""Faults on the output side of issue 18, with real processes: a publish killed with SIGKILL,
two runs of one edition at once, folders outside the deployment's roots.

Each test names the fault-matrix row it covers (docs/operations.md, "Fault matrix")."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stclusters import config, runlock, tasks
from stclusters.gate import validate
from stclusters.publish import publish
from stclusters.runlock import RunLocked

pytestmark = pytest.mark.e2e


def _conf(params: config.RunParams) -> dict:
    return {k: v for k, v in params.as_dict().items() if v is not None}


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.pop("AIRFLOW_CTX_DAG_RUN_ID", None)
    return env


def _wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_fault_8_publish_killed_leaves_staging_that_the_next_run_removes(small_edition) -> None:
    params = small_edition()
    validate.run_gate(params)
    root = params.edition_output.parent
    code = "import json, sys; from stclusters import tasks; tasks.publish_edition(json.loads(sys.argv[1]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(_conf(params))], env=_env(STCLUSTERS_RUN_ID="manual__killed")
    )
    try:
        _wait_for(
            lambda: any((s / "ranking.csv").exists() for s in root.glob(".staging-2023-*")), "staging", proc
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert list(root.glob(".staging-2023-*")), "the kill left no staging folder"
    assert not params.edition_output.exists()
    # the killed run's task died holding the workspace: the next run takes over, cleans, publishes
    outcome = tasks.publish_edition(_conf(params))["outcome"]
    assert outcome == "published"
    assert not list(root.glob(".staging-2023-*"))
    assert publish.verify(params.edition_output) == []


def test_run_lock_second_run_of_the_same_edition_is_refused_naming_the_first(small_edition) -> None:
    params = small_edition()
    code = "import json, sys; from stclusters import tasks; tasks.validate_gate(json.loads(sys.argv[1]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, json.dumps(_conf(params))], env=_env(STCLUSTERS_RUN_ID="manual__first")
    )
    try:
        _wait_for(
            lambda: (runlock.read_owner(params.workspace) or {}).get("run_id") == "manual__first",
            "the first run's gate",
            proc,
        )
        with pytest.raises(RunLocked) as info:
            tasks.build(_conf(params))
        message = str(info.value)
        assert "run manual__first (task validate_gate" in message and "started " in message
        assert "pid " in message and "did not start" in message
    finally:
        assert proc.wait(timeout=300) == 0
    # the first run is between two tasks now: a second run is still refused until it publishes
    with pytest.raises(RunLocked, match="manual__first"):
        tasks.validate_gate(_conf(params))


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"output_dir": "../../etc"}, "outside the allowed roots"),
        (
            {"output_dir": "/tmp/stclusters-same", "workspace_dir": "/tmp/stclusters-same"},
            "must be different",
        ),
        ({"output_dir": "output", "workspace_dir": "output/ws"}, "neither inside the other"),
    ],
)
def test_fault_7_paths_are_refused_before_anything_runs(
    conf: dict, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(config.OUTPUT_ROOTS_ENV, raising=False)
    monkeypatch.delenv(config.WORKSPACE_ROOTS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(config.ConfigError, match=message):
        tasks.pull(conf)
    run = subprocess.run(
        [sys.executable, "-m", "stclusters", "run", "--conf", json.dumps(conf)],
        env={
            k: v for k, v in _env().items() if k not in (config.OUTPUT_ROOTS_ENV, config.WORKSPACE_ROOTS_ENV)
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0 and message in run.stderr
    assert not (config.REPO_ROOT / "output" / "ws").exists()
