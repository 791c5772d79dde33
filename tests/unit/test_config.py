"""Parameter resolution: defaults < source set < environment < run conf, checked once at the edge."""

from __future__ import annotations

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
