"""dbt-duckdb plugin: registers stclusters' Python functions as DuckDB UDFs on every connection
dbt opens (profiles.yml: ``plugins: [{module: stclusters.build.dbt_plugin}]``).

UDFs are vectorised (arrow): DuckDB hands them whole vectors, and the models apply them to
distinct keys (address strings, locations, cells), never to every address row.
"""

from __future__ import annotations

import contextlib
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin

from stclusters.reference import gazetteer, h3grid

UDFS: dict[str, tuple[Any, list[str], str]] = {
    "stc_normalize_name": (gazetteer.normalize_name_array, ["VARCHAR"], "VARCHAR"),
    "stc_h3_cell": (h3grid.arrow_latlng_to_cell, ["DOUBLE", "DOUBLE", "INTEGER"], "BIGINT"),
    "stc_h3_lat": (h3grid.arrow_cell_to_lat, ["BIGINT"], "DOUBLE"),
    "stc_h3_lng": (h3grid.arrow_cell_to_lng, ["BIGINT"], "DOUBLE"),
}


def register_udfs(conn: Any) -> None:
    """Register the UDFs on a DuckDB connection (also used by tests and the land step)."""
    for name, (fn, params, returns) in UDFS.items():
        with contextlib.suppress(Exception):  # not registered yet on this connection
            conn.remove_function(name)
        conn.create_function(
            name,
            _unannotated(fn, len(params)),
            params,
            returns,
            type="arrow",
            null_handling="special",
            side_effects=False,
        )


def _unannotated(fn: Any, arity: int) -> Any:
    # DuckDB evaluates a UDF's annotations and counts its parameters; ours name pyarrow types
    # imported for type checking only, so hand it a plain wrapper of the right arity.
    wrappers = {
        1: lambda a: fn(a),
        2: lambda a, b: fn(a, b),
        3: lambda a, b, c: fn(a, b, c),
    }
    return wrappers[arity]


class Plugin(BasePlugin):
    def configure_connection(self, conn: Any) -> None:
        register_udfs(conn)
