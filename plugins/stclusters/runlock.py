"""One run at a time per edition workspace.

Two runs of the same edition share ``<workspace_dir>/<edition>/`` (landing, DuckDB file,
validation runs): the second must not start writing while the first is between two of its
tasks. In Airflow every task is its own process, so no single process can hold a lock for the
whole run. The lock therefore has two parts:

- ``.run.lock``: a file locked with ``flock`` for the duration of each task (the kernel releases
  it when the task's process ends, even on SIGKILL);
- ``.run-owner.json``: the owner record (run id, host, pid, task, start time, last heartbeat,
  ``in_task``), written under the flock by every task and removed at the end of ``publish`` or
  when a task fails.

A task of run B finds:

- the flock held: a task of another run is executing now -> wait up to ``lock_wait_seconds``,
  then fail naming that run;
- the flock free and an owner record of run A with ``in_task`` true: A's task died without
  cleaning up (a living task holds the flock), so A is over: B takes the workspace;
- the flock free and an owner record of run A between two tasks (``in_task`` false): A is alive
  unless its last heartbeat is older than ``task_timeout_minutes`` (no task of A can have run
  since); B waits up to ``lock_wait_seconds``, then fails naming A;
- no owner record, or its own: B (re)writes the record and goes on.

The run id is Airflow's (``AIRFLOW_CTX_DAG_RUN_ID``, set in every task process), else
``STCLUSTERS_RUN_ID``, else one per process (``python -m stclusters run``, tests).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stclusters.config import RunParams

log = logging.getLogger(__name__)

LOCK_FILE = ".run.lock"
OWNER_FILE = ".run-owner.json"
POLL_SECONDS = 1.0
_PROCESS_RUN_ID = f"local-{socket.gethostname()}-{os.getpid()}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"


class RunLocked(RuntimeError):
    """Another run of the same edition holds the edition's workspace."""


def current_run_id() -> str:
    return os.environ.get("AIRFLOW_CTX_DAG_RUN_ID") or os.environ.get("STCLUSTERS_RUN_ID") or _PROCESS_RUN_ID


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_owner(workspace: Path) -> dict[str, Any] | None:
    try:
        return json.loads((workspace / OWNER_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        return {"run_id": "unknown (unreadable owner record)", "in_task": True}


def _write_owner(workspace: Path, record: dict[str, Any]) -> None:
    tmp = workspace / f"{OWNER_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, workspace / OWNER_FILE)


def describe(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "another run (no owner record)"
    return (
        f"run {owner.get('run_id')} (task {owner.get('task')}, pid {owner.get('pid')} on "
        f"{owner.get('host')}, started {owner.get('started_at')}, last active {owner.get('heartbeat_at')})"
    )


def _is_stale(owner: dict[str, Any], stale_after_s: float) -> bool:
    """Called with the flock held, so no task of the owner is executing."""
    if owner.get("in_task"):
        return True  # its task died holding the workspace: the kernel freed the flock
    try:
        last = datetime.strptime(owner["heartbeat_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (KeyError, TypeError, ValueError):
        return True
    return (datetime.now(UTC) - last).total_seconds() > stale_after_s


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise


@contextlib.contextmanager
def hold(params: RunParams, task: str, *, release_on_success: bool = False) -> Iterator[dict[str, Any]]:
    """Hold the edition's workspace for one task of the current run (see the module docstring).

    Raises RunLocked, naming the other run, when another run holds it for longer than
    ``params.lock_wait_seconds``. The owner record is removed when the task fails, and when it
    succeeds with ``release_on_success`` (the last task, publish)."""
    workspace = params.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    run_id = current_run_id()
    stale_after = params.task_timeout_minutes * 60.0
    deadline = time.monotonic() + params.lock_wait_seconds
    fd = os.open(workspace / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        owner = _claim(fd, workspace, run_id, task, stale_after, deadline)
        try:
            yield owner
        except BaseException:
            _remove_owner(workspace, run_id)
            raise
        if release_on_success:
            _remove_owner(workspace, run_id)
        else:
            _write_owner(workspace, {**owner, "in_task": False, "heartbeat_at": _now()})
    finally:
        os.close(fd)  # releases the flock


def _claim(fd: int, workspace: Path, run_id: str, task: str, stale_after: float, deadline: float) -> dict:
    waited = False
    while True:
        if _try_flock(fd):
            owner = read_owner(workspace)
            if owner is None or owner.get("run_id") == run_id or _is_stale(owner, stale_after):
                if owner is not None and owner.get("run_id") != run_id:
                    log.warning(
                        "edition workspace %s: taking over from %s (it is over)", workspace, describe(owner)
                    )
                ours = owner is not None and owner.get("run_id") == run_id
                record = {
                    "run_id": run_id,
                    "host": socket.gethostname(),
                    "pid": os.getpid(),
                    "task": task,
                    "started_at": owner.get("started_at") if ours and owner else _now(),
                    "heartbeat_at": _now(),
                    "in_task": True,
                }
                _write_owner(workspace, record)
                return record
            fcntl.flock(fd, fcntl.LOCK_UN)
        else:
            owner = read_owner(workspace)
        if time.monotonic() >= deadline:
            raise RunLocked(
                f"edition workspace {workspace} is in use by {describe(owner)}; this run ({run_id}, task "
                f"{task}) did not start. Wait for that run to finish (or fail), or raise lock_wait_seconds "
                f"to wait for it. If that run is gone (its Airflow run is failed), remove "
                f"{workspace / OWNER_FILE}"
            )
        if not waited:
            log.info("edition workspace %s is in use by %s; waiting", workspace, describe(owner))
            waited = True
        time.sleep(POLL_SECONDS)


def _remove_owner(workspace: Path, run_id: str) -> None:
    owner = read_owner(workspace)
    if owner is not None and owner.get("run_id") == run_id:
        (workspace / OWNER_FILE).unlink(missing_ok=True)
