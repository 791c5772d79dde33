"""The clusters' shapes: H3 cells dissolved into polygons, the country outlines the maps draw,
and clusters.geojson."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h3
import pandas as pd

from stclusters.report.marts import ranking_records

Ring = list[tuple[float, float]]  # (longitude, latitude) pairs, GeoJSON order
Polygon = list[Ring]  # outer ring, then holes
MultiPolygon = list[Polygon]


def footprint(cells: Sequence[int]) -> MultiPolygon:
    """A cluster's H3 cells dissolved into polygons (GeoJSON order: lon, lat; rings closed)."""
    shape = h3.cells_to_geo([h3.int_to_str(int(c)) for c in sorted(set(cells))])
    coords = shape["coordinates"] if shape["type"] == "MultiPolygon" else [shape["coordinates"]]
    return [[_unwrap([(float(x), float(y)) for x, y in ring]) for ring in poly] for poly in coords]


def _unwrap(ring: Ring) -> Ring:
    """Keep a ring that crosses the antimeridian contiguous (longitudes beyond 180 instead of a jump)."""
    xs = [x for x, _ in ring]
    if max(xs) - min(xs) <= 180:
        return ring
    return [(x + 360 if x < 0 else x, y) for x, y in ring]


def country_outlines() -> list[MultiPolygon]:
    """Country outlines (Natural Earth 110m via the countryinfo package; files shipped in the wheel)."""
    from countryinfo import CountryInfo

    outlines: list[MultiPolygon] = []
    for _, info in sorted(CountryInfo.all().items()):
        for feature in (info.get("geoJSON") or {}).get("features", []):
            geom = feature.get("geometry") or {}
            if geom.get("type") == "Polygon":
                outlines.append([_rings(geom["coordinates"])])
            elif geom.get("type") == "MultiPolygon":
                outlines.append([_rings(p) for p in geom["coordinates"]])
    return outlines


def _rings(polygon: Iterable[Iterable[Sequence[float]]]) -> Polygon:
    return [[(float(p[0]), float(p[1])) for p in ring] for ring in polygon]


def geojson_collection(ranking: pd.DataFrame, shapes: Mapping[int, MultiPolygon]) -> dict[str, Any]:
    """One MultiPolygon feature per ranked cluster, properties = its ranking row."""
    features = []
    for row in ranking_records(ranking):
        shape = shapes.get(int(row["cluster_id"]), [])
        features.append(
            {
                "type": "Feature",
                "id": row["rank"],
                "properties": row,
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [
                        [[[round(x, 6), round(y, 6)] for x, y in ring] for ring in poly] for poly in shape
                    ],
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_geojson(path: Path, collection: Mapping[str, Any]) -> None:
    # One feature a line: small diffs between editions, still valid JSON for every reader.
    features = ",\n".join(
        json.dumps(f, ensure_ascii=False, separators=(",", ":")) for f in collection["features"]
    )
    path.write_text('{"type":"FeatureCollection","features":[\n' + features + "\n]}\n", encoding="utf-8")
