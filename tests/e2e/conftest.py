"""Session fixture of the e2e fault tests: one small world pulled, built, validated and published
once (tests/worlds.py), which test_gate_faults.py and test_output_faults.py read and copy but
never change. The gazetteer cache every test shares is in tests/conftest.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stclusters.publish.publish import verify
from worlds import (
    ARTICLE_YEARS,
    EDITION,
    PATENT_YEARS,
    Base,
    run_edition,
    share_gazetteer,
    tree_hashes,
    world_rows,
    write_dump,
)


@pytest.fixture(scope="session")
def published_base(tmp_path_factory: pytest.TempPathFactory, gazetteer_cache: Path) -> Base:
    """Edition 2023 of the small world through the real task bodies (pull, load, dbt build,
    gate, publish) into ``out/``; its hashes are recorded so that tests can prove it unchanged."""
    root = tmp_path_factory.mktemp("published_base")
    good = {
        "patents": world_rows("patents", PATENT_YEARS),
        "publications": world_rows("publications", ARTICLE_YEARS),
    }
    dumps = {
        layer: write_dump(root / "dumps" / f"{layer}.csv.gz", layer, rows) for layer, rows in good.items()
    }
    conf = {
        "edition": EDITION,
        "patents_uri": str(dumps["patents"]),
        "publications_uri": str(dumps["publications"]),
        "min_patents": 50,
        "min_publications": 50,
        # the default, stated: the sample source set (the default one) tolerates 5%
        "max_out_of_window_share": 0.0,
        "top_n": 4,
        "workspace_dir": str(share_gazetteer(root / "ws-base", gazetteer_cache)),
        "output_dir": str(root / "out"),
    }
    result = run_edition(conf)
    assert result["validate_gate"]["passed"] is True
    assert result["publish_edition"]["outcome"] == "published"
    out = root / "out"
    assert verify(out / str(EDITION)) == []
    landed = json.loads((root / "ws-base" / str(EDITION) / "landing" / "landed.json").read_text())
    return Base(root, conf, out, landed, tree_hashes(out), good, gazetteer_cache)
