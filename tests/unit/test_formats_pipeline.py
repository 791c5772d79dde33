"""How a conversion reaches the pipeline: the quarantine gate's message and counts per unit and
reason (landed.json, then the manifest), the layer's windows, and URIs given as a YAML list."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from stclusters import tasks
from stclusters.config import resolve
from stclusters.load import land

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FAULTS = FIXTURES / "wos" / "faults-savedrecs.txt"
SNAPSHOT = FIXTURES / "openalex" / "snapshot"


def test_quarantine_gate_counts_records_and_addresses_apart(tmp_path: Path) -> None:
    params = resolve({"max_quarantine_share": 0.2}, environ={})
    # 12 records, 3 of them quarantined (25% of records); 1 of 9 addresses (11%)
    with pytest.raises(land.LoadError) as err:
        tasks._to_canonical(params, "wos", "publications", [FAULTS], tmp_path)
    message = str(err.value)
    assert "25.0% of records, 11.1% of addresses" in message
    assert "C1: unknown country (1 address)" in message and "UT: missing article id (1 record)" in message
    assert "records)" not in message.split("C1: unknown country")[1].split(";")[0]


def test_conversion_counts_per_unit_and_reason(tmp_path: Path) -> None:
    params = resolve({"max_quarantine_share": 0.5}, environ={})
    [out], conversion = tasks._to_canonical(params, "wos", "publications", [FAULTS], tmp_path)
    assert out.exists()
    assert conversion["quarantined"] == {
        "record": {"missing article id": 1, "no address": 1, "unparseable year": 1},
        "address": {"unknown country": 1},
    }
    assert (conversion["records_read"], conversion["addresses_read"]) == (12, 9)
    assert conversion["unlocated_addresses"] == {"broken encoding": 1}
    assert conversion["records_with_lost_addresses"] == 1


def test_the_publication_window_reaches_the_openalex_adapter(tmp_path: Path) -> None:
    params = resolve({"edition": 2023, "max_quarantine_share": 1.0}, environ={})  # window 2017-2021
    [out], conversion = tasks._to_canonical(params, "openalex", "publications", [SNAPSHOT], tmp_path)
    assert conversion["excluded"] == {"publication year outside 2017-2021": 1}
    with gzip.open(out, "rt") as fh:
        assert len(fh.read().splitlines()) == 3  # header + two works of 2019 and 2020


def test_uri_as_a_yaml_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = tmp_path / "a-2023.txt", tmp_path / "b.txt"
    shutil.copy(FAULTS, a)
    shutil.copy(FAULTS, b)
    sources = tmp_path / "sources.yml"
    sources.write_text(
        "source_sets:\n"
        "  listed:\n"
        "    publications:\n"
        "      format: wos\n"
        "      uri:\n"
        f"        - '{tmp_path}/a-{{edition}}.txt'\n"
        f"        - '{b}'\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("STCLUSTERS_SOURCES_FILE", str(sources))
    params = resolve({"source_set": "listed", "edition": 2023}, environ={})
    assert params.uri("publications") == [str(a), str(b)]
