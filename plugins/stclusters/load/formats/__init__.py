"""Adapters from real export formats to the canonical dumps (docs/data-formats.md).

``convert(fmt, paths, layer, out_csv_gz)`` picks the adapter named by ``fmt`` (the ``format:``
of the layer in config/sources.yml) or, for ``auto``, the one :func:`sniff` finds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from stclusters.load.formats import canonical, geopat, openalex, patentsview, patstat, regpat, wos
from stclusters.load.formats.base import ConversionReport, FormatError, QuarantinedRecord
from stclusters.load.formats.sniff import FORMATS, sniff

Adapter = Callable[[list[Path], str, Path], ConversionReport]
ADAPTERS: dict[str, Adapter] = {
    "canonical": canonical.convert,
    "wos": wos.convert,
    "openalex": openalex.convert,
    "patentsview": patentsview.convert,
    "regpat": regpat.convert,
    "patstat": patstat.convert,
    "geopat": geopat.convert,
}


def resolve_format(paths: Sequence[Path], declared: str = "auto") -> str:
    """The declared format, or the one every file sniffs as when ``auto``."""
    if declared != "auto":
        if declared not in ADAPTERS:
            raise FormatError(f"unknown format {declared!r} (known: {', '.join(ADAPTERS)}, auto)")
        return declared
    if not paths:
        raise FormatError("no input files to sniff")
    found = {Path(p): sniff(Path(p)) for p in paths}
    kinds = set(found.values())
    if len(kinds) > 1:
        detail = ", ".join(f"{p.name}: {k}" for p, k in found.items())
        raise FormatError(f"input files are of different formats ({detail}); convert them separately")
    return kinds.pop()


def convert(
    fmt: str, paths: Sequence[Path], layer: str, out_csv_gz: Path, years: tuple[int, int] | None = None
) -> ConversionReport:
    """Convert ``paths`` (one layer's landed files) to one canonical ``out_csv_gz``.

    ``years`` (first, last publication year of the layer's windows) lets an adapter that reads
    large dumps skip documents outside them before parsing (OpenAlex snapshots); the others
    keep every document and leave the window to the pipeline."""
    files = [Path(p) for p in paths]
    kind = resolve_format(files, fmt)
    if kind == "openalex":
        return openalex.convert(files, layer, Path(out_csv_gz), years=years)
    return ADAPTERS[kind](files, layer, Path(out_csv_gz))


__all__ = ["ADAPTERS", "FORMATS", "ConversionReport", "FormatError", "QuarantinedRecord", "convert", "sniff"]
