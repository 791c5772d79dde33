"""How the report prints numbers: shares as the GII prints them, counts, percentage points and
the values the gate checked. Plain text only (the templates escape it)."""

from __future__ import annotations

import json
from typing import Any

from stclusters.report.marts import json_value

DASH = "–"  # printed for a missing value


def share_pct(value: Any) -> str:
    """A share as the GII prints it: percent with one decimal (0.1013 -> '10.1')."""
    v = json_value(value)
    return DASH if v is None else f"{v * 100:.1f}"


def count(value: Any) -> str:
    """A (fractional) count rounded, with thousands separators."""
    v = json_value(value)
    return DASH if v is None else f"{v:,.0f}"


def points(value: Any, digits: int = 2, sign: bool = True) -> str:
    """A share (0.0146) as percentage points ('+1.46'); None -> '–'."""
    v = json_value(value)
    if v is None:
        return DASH
    return f"{v * 100:+.{digits}f}" if sign else f"{v * 100:.{digits}f}"


def printed(value: Any) -> str:
    """A percent value as the GII prints it (one decimal)."""
    v = json_value(value)
    return DASH if v is None else f"{v:.1f}"


def ratio(value: Any) -> str:
    v = json_value(value)
    return DASH if v is None else f"{v:.2f}"


def number(value: Any) -> str:
    """A checked value as a reader wants it: integers with separators, other numbers to 4
    significant digits (0.001975638 -> '0.001976', 1.0 -> '1')."""
    v = json_value(value)
    if isinstance(v, bool) or v is None:
        return DASH if v is None else str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{int(v):,}" if v.is_integer() and abs(v) < 1e15 else f"{v:.4g}"
    return str(v)


def plain(value: Any) -> str:
    """Any value as one line of text: containers as sorted JSON, None as ''."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return "" if value is None else str(value)
