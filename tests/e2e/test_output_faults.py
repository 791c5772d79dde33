"""Faults on the output side of issue 18, with real processes: a publish killed with SIGKILL,
two runs of one edition at once, folders outside the deployment's roots, changed data over a
published edition, a republish killed between its two renames, edited manifests, and a task
past its execution_timeout in a real `airflow dags test`.

Each test names the fault-matrix row it covers (docs/operations.md, "Fault matrix")."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from httpserver import LoopbackServer, Route
from stclusters import config, runlock, tasks
from stclusters.gate import validate
from stclusters.publish import publish
from stclusters.report import step
from stclusters.runlock import RunLocked
from stclusters.schema import PUBLICATION_COLUMNS
from worlds import PATENT_YEARS, Base, share_gazetteer, signing_keypair, tree_hashes, world_rows, write_dump

pytestmark = pytest.mark.e2e


def _conf(params: config.RunParams) -> dict:
    return {k: v for k, v in params.as_dict().items() if v is not None}


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    env.pop("AIRFLOW_CTX_DAG_RUN_ID", None)
    return env


TIMEOUT_TEST = "test_fault_5_a_task_past_its_execution_timeout_is_failed_by_airflow"


@pytest.fixture(scope="module", autouse=True)
def dag_run_past_its_timeout(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict | None]:
    """`airflow dags test` (the DAG as Airflow runs it) with STCLUSTERS_TASK_TIMEOUT_MINUTES=1,
    whose pull reads from a server sending one byte every 5 s: under the 60 s read timeout, far
    from the 6 h download deadline, so only the task's execution_timeout stops it. The run waits
    ~75 s, mostly idle: it starts with the module and TIMEOUT_TEST, the module's last test,
    checks it, so the other tests run meanwhile. Not started when TIMEOUT_TEST is not selected."""
    if not any(item.name == TIMEOUT_TEST for item in request.session.items):
        yield None
        return
    root = tmp_path_factory.mktemp("task_timeout")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "STCLUSTERS_"))}
    env.update({k: os.environ[k] for k in (config.OUTPUT_ROOTS_ENV, config.WORKSPACE_ROOTS_ENV)})
    env.update(
        {
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(config.REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "airflow" / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "STCLUSTERS_TASK_TIMEOUT_MINUTES": "1",
            "STCLUSTERS_SOURCES_FILE": str(root / "sources.yml"),
        }
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    migrate = subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    publications = root / "publications.csv"
    publications.write_text(",".join(PUBLICATION_COLUMNS) + "\nWOS:1,2019,Article,1,Univ,Tokyo,,,JP,,,X\n")
    server = LoopbackServer(
        {"/patents.csv": Route(b"x" * 4096, chunk_size=1, chunk_delay_s=5)}, max_lifetime_s=900
    )
    with server, (root / "dags_test.log").open("w") as log:
        (root / "sources.yml").write_text(
            f"source_sets:\n  slow:\n    patents: {{uri: '{server.url('/patents.csv')}'}}\n"
            f"    publications: {{uri: '{publications}'}}\n"
        )
        conf = {
            "source_set": "slow",
            "edition": 2023,
            "workspace_dir": str(root / "ws"),
            "output_dir": str(root / "out"),
        }
        proc = subprocess.Popen(
            [airflow, "dags", "test", "st_clusters", "--conf", json.dumps(conf)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield {
                "proc": proc,
                "started": time.monotonic(),
                "log": root / "dags_test.log",
                "conf": conf,
                "server": server,
            }
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_fault_8_publish_killed_leaves_staging_that_the_next_run_removes(small_edition) -> None:
    params = small_edition()
    validate.run_gate(params)
    step.render_report(params)
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


def _verify_cli(output_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m stclusters verify` (what `make verify` runs) for edition 2023 of ``output_dir``."""
    env = _env()
    env.pop(publish.VERIFY_KEY_FILE_ENV, None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "stclusters",
            "verify",
            "--edition",
            "2023",
            "--output-dir",
            str(output_dir),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


# A republish killed at the instant between its two renames: the published edition already moved
# to the archive, the staged one not yet in its place (SIGKILL: no Python cleanup runs).
CRASH_BETWEEN_THE_RENAMES = """
import json, os, signal, sys
from pathlib import Path
from stclusters import tasks

rename = os.replace

def replace(src, dst, *args, **kwargs):
    if Path(src).name.startswith(".staging-") and list(Path(dst).parent.glob(".republish-*.json")):
        os.kill(os.getpid(), signal.SIGKILL)
    return rename(src, dst, *args, **kwargs)

os.replace = replace
tasks.publish_edition(json.loads(sys.argv[1]))
"""


def test_fault_3_8_9_changed_data_is_refused_a_crashed_republish_is_repaired_and_signed(
    published_base: Base, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """Fault-matrix rows 3 (changed profiles/inputs are not "unchanged"), 8 (a crash between the
    two renames of a republish) and 9 (a signed manifest edited with a file). The same edition
    is run again with other patent applicants (the ranking is the same, the profiles are not)
    into a copy of the base publication."""
    base = published_base
    out = base.root / "out-republish"
    shutil.copytree(base.out, out)
    edition, published = out / "2023", tree_hashes(base.out / "2023")
    conf = {
        **base.conf,
        "workspace_dir": str(share_gazetteer(base.root / "ws-globex", base.gazetteer)),
        "output_dir": str(out),
    }
    again = {**conf, "republish": True}
    # the source (same URI) now serves other applicants: the pull lands them, then the URI's
    # file is put back (the session's other tests read the base world)
    source = Path(base.conf["patents_uri"])
    original = source.read_bytes()
    try:
        write_dump(source, "patents", world_rows("patents", PATENT_YEARS, applicant="Globex"))
        # other inputs: refused right after the pull, nothing loaded or built
        with pytest.raises(publish.PublishError) as early:
            tasks.pull(conf)
        assert "already published" in str(early.value)
        assert "with other input files; pass republish=true" in str(early.value)
        assert "nothing was loaded or built" in str(early.value)
        assert not config.resolve(conf).duckdb_path.exists() and tree_hashes(edition) == published
        tasks.pull(again)
    finally:
        source.write_bytes(original)
    for task in (tasks.load, tasks.build, tasks.validate_gate, tasks.report):
        task(again)
    crash = subprocess.run(
        [sys.executable, "-c", CRASH_BETWEEN_THE_RENAMES, json.dumps(again)],
        env=_env(STCLUSTERS_RUN_ID=runlock.current_run_id()),  # this run's publish task
        timeout=300,
    )
    assert crash.returncode == -signal.SIGKILL
    [archived] = (out / "_archive" / "2023").iterdir()
    assert not edition.exists() and tree_hashes(archived) == published  # no current edition

    # the next publish of 2023 puts the archived version back, then compares: not "unchanged"
    caplog.set_level("WARNING", logger="stclusters")
    with pytest.raises(publish.PublishError) as refused:
        tasks.publish_edition(conf)
    assert "a republish stopped between its two renames" in caplog.text
    message = str(refused.value)
    assert "is already published" in message and "this run differs" in message
    for difference in ("profiles.parquet: changed", "inputs: layers patents changed", "republish=true"):
        assert difference in message, f"{difference} not in: {message}"
    assert "ranking.csv" not in message  # the same clusters
    assert tree_hashes(edition) == published and not archived.exists()
    assert not list(out.glob(".republish-*")) and not list(out.glob(".staging-*"))

    # republish=true archives the published version and publishes the new one, signed
    private, public = signing_keypair(tmp_path)
    monkeypatch.setenv(publish.SIGNING_KEY_FILE_ENV, str(private))
    assert tasks.publish_edition(again)["outcome"].startswith("republished")
    [archived] = (out / "_archive" / "2023").iterdir()
    assert tree_hashes(archived) == published
    assert tree_hashes(edition)["profiles.parquet"] != published["profiles.parquet"]
    ok = _verify_cli(out, "--public-key", str(public))
    assert ok.returncode == 0 and "(manifest signature verified)" in ok.stdout, ok.stdout + ok.stderr

    # a file and the manifest edited together: the checksums agree, the signature does not
    ranking = edition / "ranking.csv"
    ranking.write_text(ranking.read_text().replace("Tokyo", "Atlantis"))
    manifest = json.loads((edition / "manifest.json").read_text())
    manifest["files"]["ranking.csv"] = publish.sha256_file(ranking)
    manifest["validation"]["validated_files"]["ranking.csv"] = publish.sha256_file(ranking)
    (edition / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    forged = _verify_cli(out, "--public-key", str(public))
    assert forged.returncode == 1 and "manifest.json: BAD SIGNATURE" in forged.stdout, forged.stdout
    assert "ranking.csv: MODIFIED" not in forged.stdout  # the checksums alone would not tell
    unchecked = _verify_cli(out)
    assert unchecked.returncode == 1 and "signed, but no public key was given" in unchecked.stdout


def test_fault_9_verify_refuses_manifest_paths_outside_the_edition(published_base: Base) -> None:
    """A manifest listing ../secret.txt (with its true sha256) and /etc/hostname: `make verify`
    names both OUTSIDE and reads neither (following them, the first would check out)."""
    out = published_base.root / "out-outside"
    shutil.copytree(published_base.out, out)
    secret = out / "secret.txt"
    secret.write_text("not part of the edition\n")
    manifest_path = out / "2023" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../secret.txt"] = publish.sha256_file(secret)
    manifest["files"]["/etc/hostname"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    run = _verify_cli(out)
    assert run.returncode == 1
    problems = [line.strip() for line in run.stdout.splitlines() if line.strip().startswith("- ")]
    assert problems == [
        f"- ../secret.txt: OUTSIDE: the manifest lists a path outside {out / '2023'}; not read",
        f"- /etc/hostname: OUTSIDE: the manifest lists a path outside {out / '2023'}; not read",
    ], run.stdout


def test_fault_5_a_task_past_its_execution_timeout_is_failed_by_airflow(
    dag_run_past_its_timeout: dict,
) -> None:
    """Issue 18 item 5: a server that dribbles bytes kept a task busy with no deadline. Every
    task has execution_timeout = task_timeout_minutes (here 1): Airflow fails the pull after 60 s,
    the run fails, nothing is landed or published, and the run lock is released."""
    run = dag_run_past_its_timeout
    code = run["proc"].wait(timeout=300)  # without a timeout the pull would dribble on for hours
    elapsed = time.monotonic() - run["started"]
    log = run["log"].read_text()
    assert code != 0 and elapsed > 60, f"exit {code} after {elapsed:.0f} s; log at {run['log']}"
    assert "Process timed out" in log and "AirflowTaskTimeout" in log, log[-4000:]
    pull_part = log.split("[DAG TEST] starting task_id=pull")[1]
    assert "Process timed out" in pull_part.split("[DAG TEST] end task task_id=pull")[0]
    assert "starting task_id=load" not in log and "DagRun failed" in log
    assert run["server"].count("GET", "/patents.csv") == 1  # no read timeout, no retry: one slow GET
    workspace = Path(run["conf"]["workspace_dir"]) / "2023"
    assert not (Path(run["conf"]["output_dir"]) / "2023").exists()
    assert not [p for p in (workspace / "landing").rglob("*") if p.is_file()]  # nor landed.json
    assert not (workspace / runlock.OWNER_FILE).exists()  # a timeout is a failure: lock released
