"""The dbt project's shape, read from dbt itself (``dbt parse`` and ``dbt ls --selector``):
the build steps' selectors, the contracts on the published marts, the exposures, the docs
overview, and the copies of stclusters.schema's definitions the project holds."""

from __future__ import annotations

import json
import math

import duckdb
import pytest
import yaml

from stclusters.config import DBT_PROJECT_DIR, RunParams, resolve
from stclusters.load import land
from stclusters.schema import (
    COLUMNS,
    LANDED_COLUMNS,
    LAYERS,
    counted_document_type_keys,
    landed_type,
)

# The build steps in the order the DAG runs them (each `dbt build --selector <step>`).
STEPS = ("geocode", "cluster", "rank", "profiles", "gate")
BUILT = ("model", "seed", "test", "unit_test")
CONTRACTED = ("ranking", "clusters", "cluster_cells", "profiles")


@pytest.fixture(scope="module")
def dbt(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module: pytest.MonkeyPatch):
    """``dbt parse`` once, then ``dbt ls`` per selector on the parsed manifest (in process)."""
    from dbt.cli.main import dbtRunner

    tmp = tmp_path_factory.mktemp("dbt_project")
    # profiles.yml has no defaults of its own: the run parameters give them (config.RunParams).
    for key, value in RunParams().dbt_profile_env().items():
        monkeypatch_module.setenv(key, value)
    monkeypatch_module.setenv("STCLUSTERS_DUCKDB_PATH", str(tmp / "parse.duckdb"))
    monkeypatch_module.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    common = [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target-path",
        str(tmp / "target"),
        "--log-path",
        str(tmp / "logs"),
        "--quiet",
    ]
    parsed = dbtRunner().invoke(["parse", *common])
    assert parsed.success, parsed.exception
    runner = dbtRunner(manifest=parsed.result)

    def ls(*selection: str) -> dict[str, str]:
        """unique_id -> resource_type of what ``dbt ls <selection>`` lists."""
        keys = ["--output", "json", "--output-keys", "unique_id", "resource_type"]
        res = runner.invoke(["ls", *selection, *keys, *common])
        assert res.success, res.exception
        return {n["unique_id"]: n["resource_type"] for n in map(json.loads, res.result)}

    manifest = json.loads((tmp / "target" / "manifest.json").read_text(encoding="utf-8"))
    return ls, manifest


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _built(nodes: dict[str, str]) -> set[str]:
    return {uid for uid, kind in nodes.items() if kind in BUILT}


def test_the_steps_selectors_cover_every_model_seed_and_test_exactly_once(dbt) -> None:
    ls, manifest = dbt
    assert tuple(manifest["selectors"]) == STEPS
    everything = _built(ls())
    seen: dict[str, str] = {}
    for step in STEPS:
        for uid in _built(ls("--selector", step)):
            assert uid not in seen, f"{uid} is selected by both {seen[uid]} and {step}"
            seen[uid] = step
    assert set(seen) == everything, f"selected by no step: {sorted(everything - set(seen))}"
    assert {uid.split(".")[0] for uid in everything} == {"model", "seed", "test", "unit_test"}


def test_each_step_reads_only_its_own_or_earlier_steps(dbt) -> None:
    """Run in the order of STEPS, each `dbt build --selector` finds its inputs built."""
    ls, manifest = dbt
    step_of = {uid: i for i, step in enumerate(STEPS) for uid in _built(ls("--selector", step))}
    for uid, i in step_of.items():
        for parent in manifest["parent_map"].get(uid, []):
            if parent.startswith("source."):
                continue
            assert step_of[parent] <= i, f"{uid} ({STEPS[i]}) reads {parent} ({STEPS[step_of[parent]]})"


def test_models_sit_in_their_steps_folders(dbt) -> None:
    _, manifest = dbt
    folders = {
        n["original_file_path"].split("/")[1] + "/" + n["original_file_path"].split("/")[2]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["original_file_path"].startswith("models/intermediate/")
    }
    assert folders == {f"intermediate/{f}" for f in ("geocoding", "cells", "clusters", "ranking", "profiles")}
    marts = {
        n["name"]: n["original_file_path"].split("/")[2]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["original_file_path"].startswith("models/marts/")
    }
    assert {m for m, kind in marts.items() if kind == "gate"} == {"check_summaries", "geocoding_coverage"}
    assert set(CONTRACTED) <= {m for m, kind in marts.items() if kind == "published"}


def test_the_published_marts_enforce_a_contract_with_every_columns_type(dbt) -> None:
    _, manifest = dbt
    for name in CONTRACTED:
        node = manifest["nodes"][f"model.stclusters.{name}"]
        assert node["contract"]["enforced"], name
        untyped = [c for c, col in node["columns"].items() if not col.get("data_type")]
        assert node["columns"] and untyped == [], f"{name}: columns without data_type: {untyped}"


def test_exposures_name_the_report_and_the_published_files(dbt) -> None:
    _, manifest = dbt
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    assert set(exposures) == {"report", "published_files"}
    for exposure in exposures.values():
        for uid in exposure["depends_on"]["nodes"]:
            assert uid in manifest["nodes"], uid
    published = {uid.rsplit(".", 1)[1] for uid in exposures["published_files"]["depends_on"]["nodes"]}
    assert set(CONTRACTED) <= published


def test_dbt_docs_have_an_overview_page(dbt) -> None:
    _, manifest = dbt
    assert "doc.stclusters.__overview__" in manifest["docs"]
    assert "selectors.yml" in manifest["docs"]["doc.stclusters.__overview__"]["block_contents"]


def test_the_raw_sources_list_schemas_columns(dbt) -> None:
    _, manifest = dbt
    for layer in LAYERS:
        source = manifest["sources"][f"source.stclusters.raw.{layer}"]
        assert tuple(source["columns"]) == COLUMNS[layer] + LANDED_COLUMNS, layer


def test_the_landed_rows_have_schemas_columns_and_types() -> None:
    """raw.<layer>_rows (DDL) and the typed select that fills it both follow stclusters.schema."""
    con = duckdb.connect()
    con.execute(land._RAW_DDL)
    for layer in LAYERS:
        rows = con.execute(
            "select column_name, lower(data_type) from information_schema.columns "
            "where table_schema = 'raw' and table_name = ? order by ordinal_position",
            [f"{layer}_rows"],
        ).fetchall()
        canonical = [(c, landed_type(c)) for c in COLUMNS[layer]]
        assert rows[: len(canonical)] == canonical, layer
        assert [c for c, _ in rows[len(canonical) : len(canonical) + 1]] == [LANDED_COLUMNS[0]]
        as_text = ", ".join(f"cast(null as varchar) as {c}" for c in COLUMNS[layer])
        typed = con.execute(f"select {land._TYPED_SELECT[layer]} from (select {as_text}) as t limit 0")
        assert [(d[0], str(d[1]).lower()) for d in typed.description] == canonical, layer


def test_the_counted_document_types_reach_the_models_from_schema() -> None:
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    assert project["vars"]["counted_document_types"] == counted_document_type_keys()
    assert resolve({}, environ={}).dbt_vars()["counted_document_types"] == counted_document_type_keys()


def test_openalex_keeps_schemas_counted_types_in_their_canonical_spelling() -> None:
    from stclusters.load.formats import openalex
    from stclusters.schema import COUNTED_DOCUMENT_TYPES

    assert {t.lower(): t for t in COUNTED_DOCUMENT_TYPES} == openalex.COUNTED_TYPES


def test_exact_sum_is_one_rule_in_sql_and_python_and_ignores_row_order() -> None:
    """The macro and the Python models' helper write the same SQL, and that SQL gives the same
    bits for the same values in any order (a plain sum of doubles does not: at world scale two
    runs of one edition published different last digits)."""
    import random

    import jinja2
    import pandas as pd

    from stclusters.build.transform import exact_sum

    macro_src = (DBT_PROJECT_DIR / "macros" / "exact_sum.sql").read_text(encoding="utf-8")
    macros = jinja2.Environment().from_string(macro_src).module
    rendered = " ".join(str(macros.exact_sum("w")).split())
    assert rendered == exact_sum("w")
    filtered = " ".join(str(macros.exact_sum("w", "w > 0")).split())
    assert filtered == exact_sum("w").replace(")) as double)", ")) filter (where w > 0) as double)")

    rng = random.Random(7)
    values = [1.0 / rng.randint(1, 12) * rng.choice([1, 1e-7, 3e3]) for _ in range(200_000)]
    con = duckdb.connect()
    con.register("frame", pd.DataFrame({"i": range(len(values)), "w": values}))  # executemany: ~20 s
    con.execute("create table v as select i::integer as i, w::double as w from frame")
    totals, plain = set(), set()
    for order in ("i", "-i", "hash(i)", "w", "-w"):
        con.execute(f"create or replace table o as select w from v order by {order}")
        for threads in (1, 4):
            con.execute(f"set threads = {threads}")
            totals.add(con.execute(f"select {exact_sum('w')} from o").fetchone()[0])
            plain.add(con.execute("select sum(w) from o").fetchone()[0])
    assert len(plain) > 1  # the values are ones whose plain sum moves with the order
    assert len(totals) == 1
    assert abs(totals.pop() - math.fsum(values)) <= 1e-9 * math.fsum(values)
