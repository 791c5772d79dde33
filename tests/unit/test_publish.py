"""Publication: only what the gate validated, atomically, with a manifest that verify re-checks."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stclusters import config, handover
from stclusters.gate import validate
from stclusters.handover import sha256_file
from stclusters.publish import publish
from stclusters.publish.publish import PublishError
from stclusters.report import step
from worlds import signing_keypair


def publish_edition(params: config.RunParams) -> dict:
    """The report task, then publish, as the DAG runs them."""
    step.render_report(params)
    return publish.publish_edition(params)


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def published(small_edition) -> config.RunParams:
    params = small_edition()
    validate.run_gate(params)
    assert publish_edition(params)["outcome"] == "published"
    return params


def test_manifest_counts_quarantine_per_unit_and_reason_never_summing_units(small_edition) -> None:
    """A lost record and a lost address are different units (issue 17, item 11): the manifest
    gives each unit per reason, and rows_quarantined counts only the layer's rows (addresses)."""
    import duckdb

    params = small_edition()
    con = duckdb.connect(str(params.duckdb_path))
    try:
        con.execute(
            "insert into raw.quarantine (layer, source_file, source_line, field, reason, raw_record, unit) "
            "values ('publications', 'x.txt', 3, 'C1', 'no country', '', 'address'), "
            "('publications', 'x.txt', 9, 'C1', 'no country', '', 'address'), "
            "('publications', 'x.txt', 20, '*', 'C1 and RP empty', '', 'record')"
        )
    finally:
        con.close()
    layer = publish._inputs(params)["layers"]["publications"]
    assert layer["quarantined"] == {"address": {"no country": 2}, "record": {"C1 and RP empty": 1}}
    assert layer["rows_quarantined"] == 2


def test_manifest_records_inputs_versions_validation_and_checksums(published: config.RunParams) -> None:
    target = published.edition_output
    manifest = json.loads((target / "manifest.json").read_text())
    patents = manifest["inputs"]["layers"]["patents"]
    assert patents["rows_loaded"] == 5 and patents["rows_quarantined"] == 0
    assert manifest["parameters"]["top_n"] == 3
    assert manifest["code_version"]["git_commit"]
    assert {"apache-airflow", "dbt-core", "duckdb", "great-expectations", "h3"} <= set(
        manifest["package_versions"]
    )
    assert all(manifest["package_versions"][p] for p in ("dbt-core", "duckdb", "great-expectations", "h3"))
    v = manifest["validation"]
    assert v["passed"] is True and v["checks"]["ranking.score_is_pct_plus_pub"] == "pass"
    assert (target / v["data_docs"]).is_file() and (target / v["summary"]).is_file()
    assert manifest["files"]["ranking.csv"] == v["validated_files"]["ranking.csv"]
    assert set(manifest["files"]) == {
        str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()
    } - {"manifest.json"}
    assert publish.verify(target) == []


def test_rerun_leaves_the_publication_byte_for_byte(published: config.RunParams) -> None:
    before = tree_hashes(published.edition_output)
    assert publish_edition(published)["outcome"].startswith("unchanged")
    assert tree_hashes(published.edition_output) == before


def test_verify_names_modified_missing_and_unlisted_files(
    published: config.RunParams, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(published.edition_output, copy)
    with (copy / "ranking.csv").open("a") as fh:
        fh.write("99,Atlantis\n")
    (copy / "validation" / "summary.md").unlink()
    (copy / "extra.txt").write_text("x")
    problems = publish.verify(copy)
    assert any(p.startswith("ranking.csv: MODIFIED") for p in problems)
    assert any(p.startswith("validation/summary.md: MISSING") for p in problems)
    assert any(p.startswith("extra.txt: UNLISTED") for p in problems)
    assert len(problems) == 3


def test_verify_cli_exit_codes(published: config.RunParams) -> None:
    env = dict(os.environ)
    cmd = [
        sys.executable,
        "-m",
        "stclusters",
        "verify",
        "--edition",
        "2023",
        "--output-dir",
        published.output_dir,
    ]
    ok = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (published.edition_output / "clusters.csv").write_text("tampered\n")
    bad = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "clusters.csv: MODIFIED" in bad.stdout


def test_data_changed_after_the_gate_is_refused(small_edition, edition_sql) -> None:
    params = small_edition()
    validate.run_gate(params)
    edition_sql(params, "update main.cluster_cells set pct_count = pct_count + 1 where rank = 1")
    with pytest.raises(PublishError, match=r"data changed after validation .*cluster_cells\.csv"):
        publish_edition(params)
    assert not params.edition_output.exists()


def test_failed_or_missing_validation_is_refused(small_edition, edition_sql) -> None:
    params = small_edition()
    with pytest.raises(PublishError, match="no validation ran"):
        publish_edition(params)
    edition_sql(params, "update main.ranking set score = score + 1 where rank = 3")
    with pytest.raises(validate.GateFailed):
        validate.run_gate(params)
    with pytest.raises(PublishError, match=r"failed \(.*ranking\.score_is_pct_plus_pub.*nothing published"):
        publish_edition(params)
    assert not params.edition_output.exists()


def test_gate_with_other_parameters_is_refused(small_edition) -> None:
    params = small_edition()
    validate.run_gate(params)
    other = config.resolve({**{k: v for k, v in params.as_dict().items() if v is not None}, "eps_km": 20.0})
    with pytest.raises(PublishError, match="other parameters"):
        publish_edition(other)


def test_different_data_needs_republish_and_archives(published: config.RunParams, edition_sql) -> None:
    before = tree_hashes(published.edition_output)
    for table in ("clusters", "ranking"):
        edition_sql(published, f"update main.{table} set name = 'Tokyo' where rank = 1")
    validate.run_gate(published)
    with pytest.raises(PublishError, match="republish=true"):
        publish_edition(published)
    assert tree_hashes(published.edition_output) == before
    again = config.resolve(
        {**{k: v for k, v in published.as_dict().items() if v is not None}, "republish": True}
    )
    assert publish_edition(again)["outcome"].startswith("republished")
    archived = list((published.edition_output.parent / "_archive" / "2023").iterdir())
    assert len(archived) == 1 and tree_hashes(archived[0]) == before
    assert "Tokyo," in (published.edition_output / "ranking.csv").read_text()
    assert publish.verify(published.edition_output) == []


def _published_inputs(params: config.RunParams) -> dict[str, list[str]]:
    manifest = json.loads((params.edition_output / "manifest.json").read_text())
    return {
        layer: [f["sha256"] for f in entry["files"]] for layer, entry in manifest["inputs"]["layers"].items()
    }


def test_a_republish_conflict_is_known_before_the_build(published: config.RunParams) -> None:
    inputs = _published_inputs(published)
    conf = {k: v for k, v in published.as_dict().items() if v is not None}
    # the same inputs and parameters: publish would find the same data (unchanged), not refuse
    assert publish.refusal_before_build(published, inputs) is None
    # other data-shaping parameters or other input files: publish would refuse
    reason = publish.refusal_before_build(config.resolve({**conf, "eps_km": 20.0}), inputs)
    assert reason and "eps_km" in reason and "republish=true" in reason
    other_inputs = {**inputs, "patents": ["0" * 64]}
    assert "input files" in (publish.refusal_before_build(published, other_inputs) or "")
    # parameters that do not shape the data, or republish=true: no refusal
    assert publish.refusal_before_build(config.resolve({**conf, "duckdb_threads": 1}), inputs) is None
    assert publish.refusal_before_build(config.resolve({**conf, "republish": True}), other_inputs) is None


def _with(params: config.RunParams, **changes: object) -> config.RunParams:
    return config.resolve({**{k: v for k, v in params.as_dict().items() if v is not None}, **changes})


def test_a_change_in_any_published_file_or_input_is_not_unchanged(
    published: config.RunParams, edition_sql
) -> None:
    before = tree_hashes(published.edition_output)
    # the profiles change, the three validated CSVs do not: still a different publication
    edition_sql(published, "update main.profiles set item = 'Someone Else' where cluster_rank = 1")
    with pytest.raises(PublishError, match=r"profiles\.parquet: changed.*republish=true"):
        publish_edition(published)
    assert tree_hashes(published.edition_output) == before
    edition_sql(
        published,
        "update main.profiles set item = case when layer = 'patents' then 'Acme' else 'Univ' end "
        "where cluster_rank = 1",
    )
    assert publish_edition(published)["outcome"].startswith("unchanged")
    # an input with other bytes (its sha256), every published file the same
    edition_sql(published, "update raw.landed_files set sha256 = repeat('0', 64) where layer = 'patents'")
    with pytest.raises(PublishError, match=r"inputs: layers patents changed"):
        publish_edition(published)
    outcome = publish_edition(_with(published, republish=True))["outcome"]
    assert outcome.startswith("republished")
    manifest = json.loads((published.edition_output / "manifest.json").read_text())
    assert {f["sha256"] for f in manifest["inputs"]["layers"]["patents"]["files"]} == {"0" * 64}


def test_report_differs_only_in_run_fields_between_runs(published: config.RunParams) -> None:
    """A second gate run (new run id) and other run-only parameters: still 'unchanged'."""
    validate.run_gate(published)
    other = _with(published, duckdb_threads=3, duckdb_memory_limit="1GB")
    assert publish_edition(other)["outcome"].startswith("unchanged")


def test_stale_staging_is_removed_and_an_interrupted_republish_is_rolled_back(
    published: config.RunParams,
) -> None:
    target = published.edition_output
    before = tree_hashes(target)
    stale = target.parent / ".staging-2023-4194999"
    (stale / "validation").mkdir(parents=True)
    (stale / "ranking.csv").write_text("half written\n")
    # the first rename of a republish, then a crash: no current edition, only the archive
    archived = publish._archive_current(published, target)
    assert not target.exists() and archived.is_dir()
    assert publish_edition(published)["outcome"].startswith("unchanged")
    assert not stale.exists()
    assert tree_hashes(target) == before
    assert not list(target.parent.glob(".republish-*")) and not archived.exists()
    assert publish.verify(target) == []


def _edit_file_and_manifest(edition: Path) -> None:
    """An attacker's edit: a published file and its sha256 in the manifest, together."""
    ranking = edition / "ranking.csv"
    ranking.write_text(ranking.read_text().replace("Tokyo", "Atlantis"))
    manifest = json.loads((edition / "manifest.json").read_text())
    manifest["files"]["ranking.csv"] = sha256_file(ranking)
    manifest["validation"]["validated_files"]["ranking.csv"] = sha256_file(ranking)
    (edition / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def test_signed_manifest_catches_a_file_and_manifest_edited_together(
    small_edition, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = signing_keypair(tmp_path)
    monkeypatch.setenv(publish.SIGNING_KEY_FILE_ENV, str(private))
    params = small_edition()
    validate.run_gate(params)
    publish_edition(params)
    edition = params.edition_output
    assert (edition / "manifest.json.sig").is_file()
    assert publish.verify(edition, public) == []
    assert any("no public key was given" in p for p in publish.verify(edition))
    unsigned = tmp_path / "unsigned"
    shutil.copytree(edition, unsigned)
    (unsigned / "manifest.json.sig").unlink()
    assert any("MISSING: a public key was given" in p for p in publish.verify(unsigned, public))
    _edit_file_and_manifest(unsigned)
    assert publish.verify(unsigned) == []  # unsigned: the consistent forgery goes unnoticed
    _edit_file_and_manifest(edition)
    assert [p for p in publish.verify(edition, public) if "BAD SIGNATURE" in p]
    env = dict(os.environ)
    env.pop(publish.SIGNING_KEY_FILE_ENV, None)
    cmd = [
        sys.executable,
        "-m",
        "stclusters",
        "verify",
        "--edition",
        "2023",
        "--output-dir",
        params.output_dir,
    ]
    bad = subprocess.run([*cmd, "--public-key", str(public)], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and "BAD SIGNATURE" in bad.stdout


def test_verify_refuses_manifest_paths_outside_the_edition(
    published: config.RunParams, tmp_path: Path
) -> None:
    copy = tmp_path / "copy" / "2023"
    shutil.copytree(published.edition_output, copy)
    secret = tmp_path / "copy" / "secret.txt"
    secret.write_text("not part of the edition\n")
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["../secret.txt"] = sha256_file(secret)
    manifest["files"]["/etc/hostname"] = "0" * 64
    (copy / "manifest.json").write_text(json.dumps(manifest))
    problems = publish.verify(copy)
    assert sorted(p.split(":")[0] for p in problems if "OUTSIDE" in p) == ["../secret.txt", "/etc/hostname"]
    assert len(problems) == 2


def test_a_previous_edition_published_later_keeps_the_rerun_unchanged(published: config.RunParams) -> None:
    """A backfill may publish E-1 after E: E's re-run then has another edition diff (and report),
    but the same inputs and data files: unchanged, the published diff and report are kept."""
    target = published.edition_output
    before = tree_hashes(target)
    shutil.copytree(target, target.parent / "2022")
    assert publish_edition(published)["outcome"].startswith("unchanged")
    assert tree_hashes(target) == before


def test_the_reports_validation_section_is_a_run_field() -> None:
    """A backfill publishes editions in any order: the gate of a re-run may see a previous
    edition the first run did not (stability, completeness), so the report's validation section
    differs between two runs of the same inputs; nothing else in it may."""
    page = (
        '<h1>Edition</h1><section id="validation"><h2>Validation</h2>{v}</section>'
        '<section id="parameters"><td>eps_km</td><td>{eps}</td></section>'
    )
    first = page.format(v="stability: skipped, no previous edition", eps="13.0")
    second = page.format(v="stability: 10 of 10 still ranked", eps="13.0")
    other = page.format(v="stability: skipped, no previous edition", eps="14.0")
    assert publish.mask_run_fields(first, {}) == publish.mask_run_fields(second, {})
    assert publish.mask_run_fields(first, {}) != publish.mask_run_fields(other, {})


def test_publish_copies_only_the_report_rendered_from_what_it_publishes(small_edition) -> None:
    params = small_edition()
    validate.run_gate(params)
    with pytest.raises(PublishError, match="no report was rendered"):
        publish.publish_edition(params)
    step.render_report(params)
    validate.run_gate(params)  # a newer gate run: the report is the previous run's
    with pytest.raises(PublishError, match="rendered for gate run"):
        publish.publish_edition(params)
    step.render_report(params)
    rendered = handover.report_dir(params) / "report.html"
    rendered.write_text(rendered.read_text(encoding="utf-8") + "<!-- edited -->", encoding="utf-8")
    with pytest.raises(PublishError, match="changed after the report task rendered it"):
        publish.publish_edition(params)
    assert not params.edition_output.exists()
    assert not list(params.edition_output.parent.glob(".staging-*"))
    step.render_report(params)
    assert publish.publish_edition(params)["outcome"] == "published"
    # publish renders nothing: the published pages are the report task's bytes
    rendered_dir = handover.report_dir(params)
    for name in ("report.html", "validation.html"):
        assert (params.edition_output / name).read_bytes() == (rendered_dir / name).read_bytes()
