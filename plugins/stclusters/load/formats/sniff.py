"""Tell an export's format from its first bytes, for ``format: auto`` in config/sources.yml."""

from __future__ import annotations

from pathlib import Path

from stclusters.load.formats import geopat, patstat, regpat
from stclusters.load.formats.base import FormatError, peek_bytes
from stclusters.load.formats.tables import split_header
from stclusters.schema import COLUMNS

FORMATS = ("canonical", "wos", "openalex", "patentsview", "regpat", "patstat", "geopat")
_CANONICAL_HINTS = {c for cols in COLUMNS.values() for c in cols[:2]}  # the id and date/year columns


def _decode(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    if len(head) >= 8 and head[1::2].count(0) > len(head) // 4:
        return head.decode("utf-16-le", errors="replace")
    return head.decode("utf-8", errors="replace").lstrip("\ufeff")


def sniff(path: Path) -> str:
    """One of :data:`FORMATS`; :class:`FormatError` naming the file when none fits."""
    path = Path(path)
    if path.is_dir():
        if any(p.name == "manifest" for p in path.rglob("manifest")) or any(path.rglob("part_*.gz")):
            return "openalex"  # a snapshot folder
        raise FormatError(f"{path}: a folder, but not an OpenAlex snapshot (no manifest, no part_*.gz)")
    head = peek_bytes(path, 8192)
    if not head.strip():
        raise FormatError(f"{path}: empty file: cannot tell its format")
    text = _decode(head)
    first = text.splitlines()[0] if text.splitlines() else ""
    if first.startswith(("FN ", "VR ", "PT ")):
        return "wos"
    cells = first.split("\t")
    if cells[0] == "PT" and "UT" in cells:
        return "wos"
    if first.lstrip().startswith(("{", "[")):
        # JSON lines, a saved API page ({"meta":..., "results": [...]}, maybe pretty-printed) or a
        # snapshot manifest ({"entries": [{"url": ".../part_000.gz", ...}]}): look past line 1.
        if any(hint in text for hint in ("openalex.org/", '"authorships"', '"geo"', '"entries"')):
            return "openalex"
        raise FormatError(
            f"{path}: JSON, but not OpenAlex works, institutions, an API page or a snapshot manifest "
            "(no openalex.org ids in its first 8 KB)"
        )
    names = {c.strip().strip('"') for c in cells}
    for source in (regpat, patstat, geopat):  # patent tables, told apart by their columns
        if source.recognises(split_header(first)[0]):
            return source.FORMAT
    if len(cells) > 1 and names & {"patent_id", "location_id", "rawlocation_id"}:
        return "patentsview"
    columns = {c.strip().strip('"') for c in first.split(",")}
    if columns & _CANONICAL_HINTS:
        return "canonical"  # the canonical adapter names any missing or unexpected column
    raise FormatError(
        f"{path}: cannot tell the format from line 1 ({first[:60]!r}); expected one of {', '.join(FORMATS)}: "
        "set format: in config/sources.yml"
    )
