"""Publish the cluster profiles next to the ranking: profiles, links and trends as Parquet.

The marts are built by dbt (``profiles``, ``links``, ``cluster_trends``; definitions in
docs/profiles.md); this module only copies them out of the edition's DuckDB file, in a fixed row
order so that the same data gives the same rows. ``publish.publish_edition`` calls
:func:`write_outputs` on its staging folder.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from stclusters.config import RunParams

log = logging.getLogger(__name__)


class ProfilesError(RuntimeError):
    """A profile mart is missing from the edition's database; the message names file and table."""


@dataclass(frozen=True)
class ProfileTable:
    """One published file: the mart it comes from and the order of its rows."""

    file_name: str
    mart: str
    order_by: str


PROFILE_TABLES: tuple[ProfileTable, ...] = (
    ProfileTable("profiles.parquet", "profiles", "cluster_rank, layer, facet, item_rank"),
    ProfileTable("links.parquet", "links", "layer, cluster_a_rank, cluster_b_rank"),
    ProfileTable("trends.parquet", "cluster_trends", "cluster_rank, layer, publication_year"),
)


def write_outputs(params: RunParams, dest: Path) -> list[Path]:
    """Write profiles.parquet, links.parquet and trends.parquet from the edition's marts into
    ``dest``; returns the paths written."""
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        return write_tables(con, dest, database=params.duckdb_path)
    finally:
        con.close()


def write_tables(con: duckdb.DuckDBPyConnection, dest: Path, database: Path | None = None) -> list[Path]:
    """Copy each profile mart of ``con`` to a Parquet file in ``dest`` (one COPY per mart, no
    data through Python)."""
    dest.mkdir(parents=True, exist_ok=True)
    tables = con.sql("select table_name from duckdb_tables() where schema_name = 'main'").fetchall()
    present = {row[0] for row in tables}
    written = []
    for table in PROFILE_TABLES:
        if table.mart not in present:
            raise ProfilesError(
                f"{database or 'database'}: table main.{table.mart} not found; build it with "
                f"`dbt build --select +{table.mart}` before publishing {table.file_name}"
            )
        path = dest / table.file_name
        target = str(path).replace("'", "''")
        con.execute(
            f"copy (select * from main.{table.mart} order by {table.order_by}) "
            f"to '{target}' (format parquet, compression zstd)"
        ).fetchall()
        # fetchall, not fetchone: duckdb 2 keeps a half-read result open and refuses the next query
        n_rows = con.execute(f"select count(*) from main.{table.mart}").fetchall()[0][0]
        log.info("wrote %s: %d rows from main.%s", path, n_rows, table.mart)
        written.append(path)
    return written


__all__ = ["PROFILE_TABLES", "ProfileTable", "ProfilesError", "write_outputs", "write_tables"]
