"""stclusters.synthetic.worldgen: a small world on the real gazetteer, read back with DuckDB and loaded by
the real land step."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pytest

from stclusters.load import land
from stclusters.reference.gazetteer import PLACES_FILE
from stclusters.schema import PATENT_COLUMNS, PUBLICATION_COLUMNS
from stclusters.synthetic import worldgen
from worlds import gazetteer_files

SCALE = 0.001  # 1,400 applications, 10,000 articles


@pytest.fixture(scope="module")
def gazetteer_dir(gazetteer_cache: Path) -> Path:
    return gazetteer_files(gazetteer_cache)  # the session's real build (tests/conftest.py)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, gazetteer_dir: Path) -> worldgen.GeneratedWorld:
    return worldgen.generate_world(tmp_path_factory.mktemp("world"), SCALE, gazetteer_dir=gazetteer_dir)


def _sql(query: str) -> list[tuple]:
    return duckdb.sql(query).fetchall()


def _read(path: Path) -> str:
    return f"read_csv('{path}', header = true, all_varchar = true)"


def test_headers_are_the_canonical_columns(world: worldgen.GeneratedWorld) -> None:
    assert land.read_header(world.files["patents"]) == list(PATENT_COLUMNS)
    assert land.read_header(world.files["publications"]) == list(PUBLICATION_COLUMNS)


def test_sizes_follow_the_scale(world: worldgen.GeneratedWorld) -> None:
    assert world.documents == {"patents": 1400, "publications": 10000}
    for layer, doc, mean in (("patents", "application_id", 3.0), ("publications", "article_id", 4.7)):
        n_rows, n_docs = _sql(f"select count(*), count(distinct {doc}) from {_read(world.files[layer])}")[0]
        assert n_rows == world.rows[layer]
        assert n_docs == world.documents[layer]
        # mean addresses per document: the target within sampling error (sd ~2 / sqrt(n))
        assert abs(n_rows / n_docs - mean) < 4 * 2.2 / math.sqrt(n_docs), (layer, n_rows / n_docs)


def test_address_numbers_run_from_one_without_gaps(world: worldgen.GeneratedWorld) -> None:
    bad = _sql(
        f"""select article_id from {_read(world.files["publications"])}
        group by article_id
        having min(address_seq::int) <> 1 or max(address_seq::int) <> count(*)
            or count(distinct address_seq) <> count(*)"""
    )
    assert bad == []
    (max_seq,) = _sql(f"select max(inventor_seq::int) from {_read(world.files['patents'])}")[0]
    assert 1 < max_seq <= 8


def test_dates_in_the_edition_windows(world: worldgen.GeneratedWorld) -> None:
    (lo, hi, bad) = _sql(
        f"""select min(publication_date), max(publication_date),
                   count(*) filter (where try_strptime(publication_date, '%Y-%m-%d') is null)
            from {_read(world.files["patents"])}"""
    )[0]
    assert lo >= "2018-01-01" and hi <= "2022-12-31" and bad == 0
    assert _sql(
        f"select min(publication_year), max(publication_year) from {_read(world.files['publications'])}"
    )[0] == ("2017", "2021")


def test_places_are_gazetteer_places_mostly_located(
    world: worldgen.GeneratedWorld, gazetteer_dir: Path
) -> None:
    places = gazetteer_dir / PLACES_FILE
    # every named city (spelling aside) is a gazetteer place of the row's country, except the
    # deliberate unknown towns, which are about unknown_place_share of the rows
    (total, unknown, with_coords, us_rows, us_with_state) = _sql(
        f"""
        with rows as (select * from {_read(world.files["publications"])}),
        known as (
            select distinct lower(strip_accents(name)) as key, country_code
            from read_parquet('{places}')
        )
        select
            count(*),
            count(*) filter (where known.key is null),
            count(*) filter (where rows.latitude is not null),
            count(*) filter (where rows.country = 'US'),
            count(*) filter (where rows.country = 'US' and length(rows.region) = 2)
        from rows
        left join known
            on lower(strip_accents(rows.city)) = known.key and rows.country = known.country_code
        """
    )[0]
    assert unknown / total == pytest.approx(0.005, abs=0.003)
    assert with_coords / total == pytest.approx(0.15, abs=0.02)
    assert us_rows > 0 and us_with_state == us_rows


def test_big_science_cities_get_the_most(world: worldgen.GeneratedWorld) -> None:
    top = [
        c
        for (c,) in _sql(
            f"""select country from {_read(world.files["patents"])}
            group by country order by count(*) desc limit 5"""
        )
    ]
    assert {"US", "JP"} <= set(top)


def test_the_land_step_loads_every_row(world: worldgen.GeneratedWorld, tmp_path: Path) -> None:
    stats = land.load_database(
        tmp_path / "edition.duckdb",
        land.layer_inputs({layer: [path] for layer, path in world.files.items()}),
        {},
    )
    by_layer = {s["layer"]: s for s in stats.values()}
    for layer in ("patents", "publications"):
        assert by_layer[layer]["rows_quarantined"] == 0
        assert by_layer[layer]["rows_loaded"] == world.rows[layer]


def test_same_arguments_same_rows(
    world: worldgen.GeneratedWorld, gazetteer_dir: Path, tmp_path: Path
) -> None:
    again = worldgen.generate_world(tmp_path, SCALE, gazetteer_dir=gazetteer_dir, threads=1)
    for layer, path in world.files.items():
        diff = _sql(
            f"""select count(*) from (
                (select * from {_read(path)} except all select * from {_read(again.files[layer])})
                union all
                (select * from {_read(again.files[layer])} except all select * from {_read(path)}))"""
        )[0][0]
        assert diff == 0, layer
    other_seed = worldgen.generate_world(
        tmp_path / "seed", SCALE, worldgen.WorldSpec(scale=SCALE, seed=7), gazetteer_dir=gazetteer_dir
    )
    assert other_seed.rows["publications"] != world.rows["publications"]


def test_address_count_distribution_has_the_requested_mean() -> None:
    rng = np.random.default_rng(1)
    for mean, cap in ((3.0, 8), (4.7, 12)):
        theta = worldgen._geometric_theta(mean, cap)
        k = np.minimum(cap, 1 + np.floor(-np.log(1 - rng.random(400_000)) * theta))
        assert k.mean() == pytest.approx(mean, abs=0.02)
        assert k.max() == cap


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        worldgen.generate_world(tmp_path, 0)
    with pytest.raises(ValueError, match="between 1 and the cap"):
        worldgen._geometric_theta(9.0, 8)
