"""The gate's critical check on addresses geocoded to a place in another country than the one
read from the export (check_summaries.other_country_share, docs/geocoding.md)."""

from __future__ import annotations

import re

import pytest

from stclusters.gate import validate
from stclusters.gate.validate import GateFailed


def test_good_edition_has_no_address_in_another_country(small_edition) -> None:
    params = small_edition()
    result = validate.run_gate(params)
    summary = validate.latest_summary(params)
    assert result["passed"] is True and summary is not None
    assert "counted.address_in_other_country" in {r["check"] for r in summary["results"]}


def test_addresses_in_another_country_block_the_edition(small_edition, edition_sql) -> None:
    params = small_edition()
    edition_sql(
        params,
        "update main.check_summaries set addresses_in_other_country = 3, other_country_share = 0.2"
        " where layer = 'publications'",
    )
    with pytest.raises(GateFailed, match=re.escape("counted.address_in_other_country")):
        validate.run_gate(params)
