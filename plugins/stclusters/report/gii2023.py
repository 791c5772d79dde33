"""This edition beside the published GII 2023 table (mart ``gii_comparison``): the rows as the
report reads them, why each notable difference arises (``explain``), the summary facts, and
the table's cells with what differs as printed. The markup is ``templates/gii2023.html.j2``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from stclusters.config import RunParams
from stclusters.report.formatting import printed, ratio
from stclusters.report.marts import ranking_records

COMPARISON_FILE = "gii_comparison.csv"  # written only when the gii_comparison mart has rows
ROUNDING_POINTS = 0.05  # the published scores are printed to one decimal


def comparison_records(comparison: pd.DataFrame) -> list[dict[str, Any]]:
    """The gii_comparison rows as plain dicts, integer columns as int (pandas makes a nullable
    integer column float when an unmatched row leaves it empty)."""
    rows = ranking_records(comparison)
    for row in rows:
        for key in ("our_rank", "our_cluster_id", "matched_geonameid", "rank_difference"):
            if isinstance(row.get(key), float):
                row[key] = int(row[key])
    return rows


def write_comparison_csv(path: Path, comparison: pd.DataFrame) -> None:
    # The same CSV conventions as publish's tables: same data, same bytes.
    comparison.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")


# --- why a row differs --------------------------------------------------------------------------


def _split_pairs(text: Any, sep: str = ";", inner: str = "|") -> list[list[str]]:
    """'a|b|0.5;c|d|0.2' -> [['a', 'b', '0.5'], ['c', 'd', '0.2']] (None or '' -> [])."""
    if not text:
        return []
    return [part.split(inner) for part in str(text).split(sep)]


def _strip_state(place: str) -> str:
    """'Boston, MA' -> 'Boston' (the state code the names carry after US places)."""
    head, _, tail = place.rpartition(", ")
    return head if head and len(tail) == 2 and tail.isupper() else place


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def _name_notes(row: Mapping[str, Any], params: RunParams) -> list[str]:
    """Why our name differs from the published one, place by place."""
    notes = []
    ours = [_strip_state(p) for p in str(row["our_name"]).split("–")]
    our_shares = {name: float(share) for name, share in _split_pairs(row.get("our_place_shares"))}
    published = _split_pairs(row.get("published_place_shares"))
    gazetteer_names = {gaz for _, gaz, _ in published if gaz}
    for text, gaz, share in published:
        if not gaz:
            notes.append(f"{text} is not in the gazetteer for {row['published_economies']}")
        elif gaz in ours:
            if gaz != text:
                notes.append(f"GeoNames' main name for {text} is “{gaz}”")
        elif not share or float(share) == 0.0:
            notes.append(f"{text} is not part of this cluster")
        elif float(share) < params.name_min_share:
            notes.append(
                f"{text} brings {_pct(float(share))} of the score, below name_min_share "
                f"{_pct(params.name_min_share)}: not in the name"
            )
        else:
            notes.append(
                f"{text} brings {_pct(float(share))} of the score but three larger places fill the name"
            )
    for place in ours:
        if place not in gazetteer_names:
            share = our_shares.get(place)
            brings = "is one of its largest places" if share is None else f"brings {_pct(share)} of the score"
            threshold = _pct(params.name_min_share)
            notes.append(f"{place} {brings} (≥ name_min_share {threshold}): added to the name")
    if not notes and [gaz for _, gaz, _ in published] != ours[: len(published)]:
        notes.append("the same places in another order (ours by score contribution)")
    return notes


def _economy_notes(row: Mapping[str, Any], params: RunParams) -> list[str]:
    """Why our economies differ: each country's share of the score against economy_min_share."""
    shares = {cc: float(v) for cc, v in _split_pairs(row.get("our_economy_shares"), inner=":")}
    ours = str(row["our_economies"] or "").split("/")
    published = str(row["published_economies"]).split("/")
    notes = [
        f"{cc} brings {_pct(shares.get(cc, 0.0))} of the score (≥ economy_min_share "
        f"{_pct(params.economy_min_share)}): listed"
        for cc in ours
        if cc and cc not in published
    ]
    notes += [
        f"{cc} brings {_pct(shares.get(cc, 0.0))} of the score, below economy_min_share "
        f"{_pct(params.economy_min_share)}: not listed"
        for cc in published
        if cc not in ours
    ]
    if not notes and ours != published:
        notes.append("the same economies in another order (ours by share of the score)")
    return notes


def score_differs(row: Mapping[str, Any]) -> bool:
    """Our score printed at one decimal is not the published one."""
    return row.get("our_score") is not None and printed(row["our_score"]) != printed(row["published_score"])


def explain(row: Mapping[str, Any], params: RunParams) -> list[str]:
    """Short reasons for the notable differences of one gii_comparison row (none when ours prints
    the same rank, name, economies and score)."""
    place = row["matched_place"]
    if row.get("our_cluster_id") is None:
        if row.get("matched_geonameid") is None:
            economy = str(row["published_economies"]).split("/")[0]
            return [f"{place} is not in the gazetteer for {economy}: no match"]
        return [f"no cluster of this edition holds {place} (GeoNames {row['matched_gazetteer_name']})"]
    notes = []
    if (row.get("n_published_matched") or 0) > 1:
        notes.append(
            f"{row['n_published_matched']} published clusters fall in our {row['our_name']}: "
            "this edition joins clusters that WIPO keeps apart"
        )
    if not row["name_matches"]:
        notes += _name_notes(row, params)
    if not row["economies_match"]:
        notes += _economy_notes(row, params)
    move = row.get("rank_difference") or 0
    if move:
        places = f"{abs(move)} place{'s' if abs(move) > 1 else ''}"
        notes.append(f"ranked {places} {'lower' if move > 0 else 'higher'} ({row['our_rank']})")
    if score_differs(row):
        parts = [
            f"{label} {printed(row[ours])} % vs {printed(row[theirs])} %"
            for label, ours, theirs in (
                ("PCT", "our_pct_share", "published_pct_share"),
                ("articles", "our_pub_share", "published_articles_share"),
            )
            if printed(row[ours]) != printed(row[theirs])
        ]
        diff, published = float(row["score_difference"]), float(row["published_score"])
        if not parts and abs(diff) < 2 * ROUNDING_POINTS:
            # both shares print the same: only the rounding of the published score separates us
            side = "below" if diff < 0 else "above"
            ours = float(row["our_score"])
            notes.append(
                f"score {ours:.3f} prints as {printed(ours)}, just {side} the "
                f"range {published - ROUNDING_POINTS:.2f}–{published + ROUNDING_POINTS:.2f} that the "
                f"published {printed(published)} stands for"
            )
        else:
            notes.append(f"score {diff:+.2f} points" + (f" ({'; '.join(parts)})" if parts else ""))
    return notes


# --- what the report shows ----------------------------------------------------------------------


def summary_facts(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    """(label, value) facts above the table: matches, and how many print the same."""
    matched = [r for r in rows if r.get("our_cluster_id") is not None]
    facts: list[tuple[str, Any]] = [
        ("published clusters", len(rows)),
        ("matched", len(matched)),
        ("same rank", sum(1 for r in matched if not r.get("rank_difference"))),
        ("same name", sum(1 for r in matched if r["name_matches"])),
        ("same economies", sum(1 for r in matched if r["economies_match"])),
        ("same printed score", sum(1 for r in matched if not score_differs(r))),
    ]
    worst = max(matched, key=lambda r: abs(r["score_difference"] or 0), default=None)
    if worst is not None:
        largest = f"{worst['score_difference']:+.2f} ({worst['published_name']})"
        facts.append(("largest score difference, points", largest))
    return facts


def table_row(r: Mapping[str, Any], params: RunParams) -> dict[str, Any]:
    """One row of the comparison table: the published cells, ours as (text, differs as printed)
    or None when unmatched, the ratios, and the explanations."""
    ours = None
    if r.get("our_cluster_id") is not None:
        move = r.get("rank_difference") or 0
        arrow = "=" if not move else (f"▼{move}" if move > 0 else f"▲{-move}")
        ours = [
            (r["our_rank"], bool(move)),
            (r["our_name"], not r["name_matches"]),
            (r["our_economies"], not r["economies_match"]),
            (printed(r["our_score"]), score_differs(r)),
            (arrow, bool(move)),
            (f"{r['score_difference']:+.2f}", score_differs(r)),
        ]
    return {
        "published_rank": r["published_rank"],
        "our_rank": r.get("our_rank"),
        "published": [
            r["published_rank"],
            r["published_name"],
            r["published_economies"],
            printed(r["published_score"]),
        ],
        "ours": ours,
        "ratios": [ratio(r.get("pct_share_ratio")), ratio(r.get("pub_share_ratio"))],
        "notes": explain(r, params),
    }


def section(rows: Sequence[Mapping[str, Any]], params: RunParams) -> dict[str, Any] | None:
    """What the section "Compared with the published GII 2023 table" shows; None without rows."""
    if not rows:
        return None
    return {
        "file": COMPARISON_FILE,
        "facts": summary_facts(rows),
        "rows": [table_row(r, params) for r in rows],
    }
