"""Parameter resolution: defaults < source set < environment < run conf, checked once at the edge."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from stclusters import config
from stclusters.config import ConfigError, RunParams, resolve

REPO = Path(__file__).resolve().parents[2]


def test_defaults_and_sample_source_set() -> None:
    p = resolve({}, environ={})
    assert p.edition == 2023
    assert p.source_set == "sample"
    assert p.uri("patents") == "data/sample/2023/patents.csv.gz"
    # the sample source set scales the thresholds
    assert p.min_patents == 80 and p.min_publications == 40
    assert p.top_n == 100


def test_gii_windows() -> None:
    p = resolve({"edition": 2023}, environ={})
    assert p.patents_window == (2018, 2022)
    assert p.publications_window == (2017, 2021)
    p24 = resolve({"edition": 2024}, environ={})
    assert p24.patents_window == (2019, 2023)
    assert p24.publications_window == (2018, 2022)


def test_precedence_env_over_source_set_and_conf_over_env() -> None:
    env = {"STCLUSTERS_MIN_PATENTS": "123", "STCLUSTERS_TOP_N": "7"}
    assert resolve({}, environ=env).min_patents == 123
    p = resolve({"top_n": 9, "min_patents": None}, environ=env)
    assert p.top_n == 9  # conf wins
    assert p.min_patents == 123  # null in the conf means "not set"


def test_bad_values_name_the_parameter_and_origin() -> None:
    with pytest.raises(ConfigError, match=r"environment STCLUSTERS_TOP_N: parameter 'top_n' = 'many'"):
        resolve({}, environ={"STCLUSTERS_TOP_N": "many"})
    with pytest.raises(ConfigError, match=r"run conf: unknown parameter 'topn'"):
        resolve({"topn": 3}, environ={})
    with pytest.raises(ConfigError, match="eps_km must be > 0"):
        resolve({"eps_km": 0}, environ={})
    with pytest.raises(ConfigError, match="no source set 'nope'"):
        resolve({"source_set": "nope"}, environ={})


def test_dbt_vars_carry_the_windows() -> None:
    v = resolve({"edition": 2021}, environ={}).dbt_vars()
    assert (v["patents_first_year"], v["patents_last_year"]) == (2016, 2020)
    assert (v["publications_first_year"], v["publications_last_year"]) == (2015, 2019)


def test_readme_configuration_table_lists_every_parameter_with_its_default() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z_0-9]+)` \| `([^`]*)` \|", readme, flags=re.M))
    for name, field in config.PARAM_FIELDS.items():
        assert name in rows, f"README configuration table lacks {name}"
        default = "null" if field.default is None else str(field.default).lower()
        assert rows[name].lower() == default, f"README default of {name}: {rows[name]} != {default}"
    assert set(rows) <= set(config.PARAM_FIELDS), set(rows) - set(config.PARAM_FIELDS)


def test_run_params_is_frozen() -> None:
    p = RunParams()
    with pytest.raises(AttributeError):
        p.top_n = 3  # type: ignore[misc]


def test_output_and_workspace_must_differ_and_not_contain_each_other(tmp_path: Path) -> None:
    same = str(tmp_path / "shared")
    with pytest.raises(ConfigError, match="must be different folders"):
        resolve({"output_dir": same, "workspace_dir": same}, environ={})
    with pytest.raises(ConfigError, match="neither inside the other"):
        resolve(
            {"output_dir": str(tmp_path / "out"), "workspace_dir": str(tmp_path / "out" / "ws")}, environ={}
        )
    # '..' and symlinks are resolved before the comparison
    (tmp_path / "out").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "out")
    with pytest.raises(ConfigError, match="must be different folders"):
        resolve({"output_dir": str(tmp_path / "out"), "workspace_dir": str(tmp_path / "alias")}, environ={})
    with pytest.raises(ConfigError, match="must be different folders"):
        resolve(
            {"output_dir": str(tmp_path / "x" / ".." / "out"), "workspace_dir": str(tmp_path / "out")},
            environ={},
        )


def test_conf_folders_must_lie_under_the_deployment_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(config.OUTPUT_ROOTS_ENV, raising=False)
    monkeypatch.delenv(config.WORKSPACE_ROOTS_ENV, raising=False)
    # default root: the repository; "../../etc" escapes it
    with pytest.raises(
        ConfigError, match=r"run conf: output_dir '\.\./\.\./etc' resolves to .*outside the allowed"
    ):
        resolve({"output_dir": "../../etc"}, environ={})
    with pytest.raises(ConfigError, match=r"workspace_dir .* STCLUSTERS_WORKSPACE_ROOTS"):
        resolve({"workspace_dir": str(tmp_path / "ws")}, environ={})
    assert (
        resolve({"output_dir": "output/sub"}, environ={}).edition_output == REPO / "output" / "sub" / "2023"
    )
    monkeypatch.setenv(config.OUTPUT_ROOTS_ENV, f"/nonexistent-root{os.pathsep}{tmp_path}")
    monkeypatch.setenv(config.WORKSPACE_ROOTS_ENV, str(tmp_path))
    p = resolve({"output_dir": str(tmp_path / "out"), "workspace_dir": str(tmp_path / "ws")}, environ={})
    assert p.edition_output == tmp_path / "out" / "2023"
    with pytest.raises(ConfigError, match="outside the allowed roots"):
        resolve({"output_dir": str(tmp_path / ".." / "elsewhere")}, environ={})
    # the deployment's own settings (environment, source set) are not restricted
    monkeypatch.setenv(config.OUTPUT_ROOTS_ENV, str(tmp_path / "only-here"))
    outside = resolve({}, environ={"STCLUSTERS_OUTPUT_DIR": str(tmp_path / "deployment-out")})
    assert outside.output_dir == str(tmp_path / "deployment-out")


def test_new_parameters_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_count_drop"):
        resolve({"max_count_drop": 1.5}, environ={})
    with pytest.raises(ConfigError, match="keep_validation_runs"):
        resolve({"keep_validation_runs": 0}, environ={})


def test_dag_task_timeout_default_is_the_run_parameter_default() -> None:
    text = (REPO / "dags" / "st_clusters.py").read_text(encoding="utf-8")
    default = re.search(r'"STCLUSTERS_TASK_TIMEOUT_MINUTES", "(\d+)"', text)
    assert default and int(default.group(1)) == RunParams.task_timeout_minutes
    assert '"execution_timeout": TASK_TIMEOUT' in text


def test_every_dag_task_has_the_execution_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import runpy
    from datetime import timedelta

    monkeypatch.setenv("STCLUSTERS_TASK_TIMEOUT_MINUTES", "7")
    dag = runpy.run_path(str(REPO / "dags" / "st_clusters.py"))["st_clusters"]()
    assert {t.task_id: t.execution_timeout for t in dag.tasks} == {
        t.task_id: timedelta(minutes=7) for t in dag.tasks
    }
    assert len(dag.tasks) == 6
