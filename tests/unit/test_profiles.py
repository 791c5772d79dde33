"""Cluster profiles: organization-name normalisation (the dbt macro itself, rendered and run in
DuckDB), the IPC-technology concordance seed, and the Parquet export of the profile marts."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import jinja2
import pyarrow.parquet as pq
import pytest

from stclusters.config import DBT_PROJECT_DIR
from stclusters.publish import profiles

MACRO = DBT_PROJECT_DIR / "macros" / "normalize_organization.sql"
SEED = DBT_PROJECT_DIR / "seeds" / "ipc_technology_fields.csv"


# --- name normalisation -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def normalize() -> object:
    """normalize_organization() as dbt renders it, applied by DuckDB to one string."""
    sql = (
        jinja2.Environment().from_string(MACRO.read_text() + "{{ normalize_organization('name') }}").render()
    )
    con = duckdb.connect()

    def run(name: str | None) -> str | None:
        return con.execute(f"select {sql} from (select ?::varchar as name)", [name]).fetchall()[0][0]

    return run


@pytest.mark.parametrize(
    ("spellings", "key"),
    [
        (
            ["Mitsubishi Electric Corp.", "MITSUBISHI ELECTRIC CORPORATION", "Mitsubishi Electric"],
            "mitsubishi electric",
        ),
        (
            ["Huawei Technologies Co., Ltd.", "HUAWEI TECHNOLOGIES CO LTD", "Huawei Technologies"],
            "huawei technologies",
        ),
        (["University of Tokyo", "The University of Tokyo", "Univ Tokyo", "UNIV TOKYO"], "university tokyo"),
        (["Siemens AG", "SIEMENS AKTIENGESELLSCHAFT AG"], None),
        (["Novo Nordisk A/S", "Novo Nordisk AS"], "novo nordisk"),
        (["STMicroelectronics S.p.A.", "STMicroelectronics SpA"], "stmicroelectronics"),
        (["Kabushiki Kaisha Toshiba", "Toshiba Corp."], "toshiba"),
        (["Université Paris-Saclay", "Universite Paris Saclay"], "universite paris saclay"),
        (["L'Oréal", "L’Oreal S.A."], "loreal"),
    ],
)
def test_spellings_of_one_organization_share_a_key(normalize, spellings: list[str], key: str | None) -> None:
    keys = {normalize(s) for s in spellings}
    assert len(keys) == 1 or key is None, keys
    if key is not None:
        assert keys == {key}


def test_different_organizations_keep_different_keys(normalize) -> None:
    names = [
        "Sony Group Corp.",
        "Sony Corp.",
        "LG Electronics Inc.",
        "LG Chem Ltd.",
        "Tokyo Institute of Technology",
        "University of Tokyo",
        "東京大学",
        "서울대학교",
    ]
    keys = [normalize(n) for n in names]
    assert len(set(keys)) == len(names), keys
    # non-Latin scripts are kept, not erased as punctuation
    assert normalize("東京大学") == "東京大学"


@pytest.mark.parametrize("empty", [None, "", "   ", "Co., Ltd.", "Inc."])
def test_names_with_nothing_left_are_null(normalize, empty: str | None) -> None:
    assert normalize(empty) is None


def test_legal_forms_only_go_at_the_ends(normalize) -> None:
    # "AG" inside a name is a word, not a legal form; "Co" at the end is
    assert normalize("AG Solar Systems GmbH") == "ag solar systems"
    assert normalize("Johnson & Johnson") == "johnson johnson"
    assert normalize("Canon Inc.") == "canon"


# --- the IPC-technology concordance ---------------------------------------------------------


@pytest.fixture(scope="module")
def concordance() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"create table c as select * from read_csv('{SEED}', header = true, all_varchar = true)")
    con.execute(
        """create table concordance as select ipc_subclass, try_cast(main_group_from as integer) as lo,
        try_cast(main_group_to as integer) as hi, cast(field_number as integer) as field_number,
        field_name, sector from c"""
    )
    return con


def _field(con: duckdb.DuckDBPyConnection, subclass: str, group: int) -> int | None:
    row = con.execute(
        """select field_number from concordance
        where ipc_subclass = ? and (lo is null or ? between lo and hi)
        order by lo is null limit 1""",
        [subclass, group],
    ).fetchall()
    return row[0][0] if row else None


def test_seed_has_wipo_35_fields_in_5_sectors(concordance) -> None:
    fields = concordance.execute(
        "select distinct field_number, field_name, sector from concordance"
    ).fetchall()
    assert sorted(f[0] for f in fields) == list(range(1, 36)), "each field has exactly one name and sector"
    sectors = {n: s for n, _, s in fields}
    assert {sectors[n] for n in range(1, 9)} == {"Electrical engineering"}
    assert {sectors[n] for n in range(9, 14)} == {"Instruments"}
    assert {sectors[n] for n in range(14, 25)} == {"Chemistry"}
    assert {sectors[n] for n in range(25, 33)} == {"Mechanical engineering"}
    assert {sectors[n] for n in range(33, 36)} == {"Other fields"}
    names = dict((n, name) for n, name, _ in fields)
    assert names[4] == "Digital communication" and names[6] == "Computer technology"


def test_seed_rows_are_well_formed(concordance) -> None:
    with SEED.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {len(r["ipc_subclass"]) for r in rows} == {4}
    keys = [(r["ipc_subclass"], r["main_group_from"]) for r in rows]
    assert len(keys) == len(set(keys))
    # every subclass with main-group ranges also has a row for the rest of it, and ranges don't overlap
    overlaps = concordance.execute(
        """select a.ipc_subclass from concordance a join concordance b
        on a.ipc_subclass = b.ipc_subclass and a.lo < b.lo and a.hi >= b.lo"""
    ).fetchall()
    assert overlaps == []
    orphans = concordance.execute(
        """select ipc_subclass from concordance where lo is not null
        except select ipc_subclass from concordance where lo is null"""
    ).fetchall()
    assert orphans == []


@pytest.mark.parametrize(
    ("subclass", "group", "field"),
    [
        ("G06F", 16, 6),  # computer technology
        ("G06N", 3, 6),
        ("G06Q", 10, 7),  # IT methods for management
        ("H04L", 5, 4),  # digital communication
        ("H04W", 72, 4),
        ("H04N", 21, 4),  # H04N 21: interactive television -> digital communication
        ("H04N", 19, 2),  # the rest of H04N: audio-visual
        ("H04N", 1, 3),  # H04N 1: scanning, fax -> telecommunications
        ("H04B", 7, 3),
        ("H01L", 21, 8),  # semiconductors
        ("H10K", 50, 8),
        ("H01M", 10, 1),  # electrical machinery
        ("G01N", 33, 11),  # analysis of biological materials
        ("G01N", 21, 10),  # the rest of G01N: measurement
        ("A61B", 5, 13),  # medical technology
        ("A61K", 31, 16),  # pharmaceuticals
        ("A61K", 8, 14),  # A61K 8: cosmetics -> organic fine chemistry
        ("C12N", 15, 15),  # biotechnology
        ("B01D", 53, 24),  # B01D 45-53: gas cleaning -> environmental technology
        ("B01D", 15, 23),  # the rest of B01D: chemical engineering
        ("E01F", 8, 24),
        ("E01F", 9, 35),
        ("B60W", 30, 32),  # transport
        ("F16H", 57, 31),
        ("A63F", 13, 33),
        ("E04B", 1, 35),
    ],
)
def test_known_symbols_map_to_their_wipo_field(concordance, subclass: str, group: int, field: int) -> None:
    assert _field(concordance, subclass, group) == field


def test_every_sample_world_symbol_is_classified(concordance) -> None:
    # the embedded sample writes these symbols; none may fall through to "unclassified"
    from stclusters.synthetic import sample

    symbols = [s for codes in sample.FIELD_IPC.values() for s in codes]
    missing = [s for s in symbols if _field(concordance, s[:4], int(s[4:].split("/")[0])) is None]
    assert missing == []


# --- export -------------------------------------------------------------------------------------


def _marts(path: Path, with_links: bool = True) -> None:
    con = duckdb.connect(str(path))
    con.execute(
        """create table profiles as select * from (values
        (2, 7, 'Munich', 'patents', 'applicant', 1, 'Siemens AG', 'siemens', 3.0, 0.5),
        (1, 3, 'Tokyo', 'patents', 'applicant', 2, 'NEC Corp.', 'nec', 1.0, 0.1),
        (1, 3, 'Tokyo', 'patents', 'applicant', 1, 'Mitsubishi Electric Corp.', 'mitsubishi electric',
         5.0, 0.5))
        t(cluster_rank, cluster_id, cluster_name, layer, facet, item_rank, item, item_key, item_count,
          item_share)"""
    )
    if with_links:
        con.execute(
            """create table links as select * from (values
            ('patents', 1, 3, 'Tokyo', 2, 7, 'Munich', 0.25, 1, 0.1, 0.2))
            t(layer, cluster_a_rank, cluster_a_id, cluster_a_name, cluster_b_rank, cluster_b_id,
              cluster_b_name, link_weight, n_documents, share_of_a, share_of_b)"""
        )
    con.execute(
        """create table cluster_trends as select * from (values
        (1, 3, 'Tokyo', 'patents', 2019, 2.0, 10.0, 0.2),
        (1, 3, 'Tokyo', 'patents', 2018, 3.0, 10.0, 0.3))
        t(cluster_rank, cluster_id, cluster_name, layer, publication_year, document_count, world_count,
          world_share)"""
    )
    con.close()


def test_write_tables_exports_every_mart_in_a_fixed_order(tmp_path: Path) -> None:
    db = tmp_path / "e.duckdb"
    _marts(db)
    con = duckdb.connect(str(db), read_only=True)
    written = profiles.write_tables(con, tmp_path / "out")
    again = profiles.write_tables(con, tmp_path / "again")
    con.close()
    assert [p.name for p in written] == ["profiles.parquet", "links.parquet", "trends.parquet"]
    table = pq.read_table(written[0]).to_pylist()
    assert [(r["cluster_rank"], r["item_rank"]) for r in table] == [(1, 1), (1, 2), (2, 1)]
    assert table[0]["item"] == "Mitsubishi Electric Corp."
    trends = pq.read_table(written[2]).to_pylist()
    assert [r["publication_year"] for r in trends] == [2018, 2019]
    # same data, same bytes: a re-run of publish compares files by hash
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in again]


def test_a_missing_mart_is_named(tmp_path: Path) -> None:
    db = tmp_path / "e.duckdb"
    _marts(db, with_links=False)
    con = duckdb.connect(str(db), read_only=True)
    with pytest.raises(profiles.ProfilesError, match=r"e\.duckdb: table main\.links not found"):
        profiles.write_tables(con, tmp_path / "out", database=db)
    con.close()
