"""What each section of report.html shows, prepared as plain data for the templates
(``templates/report.html.j2`` and the macros it imports): the headline, the ranking table and its
economy filter, the profiles, the edition diff, the parameters and the data provenance. No
markup here: the templates lay the data out and escape it."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from stclusters.build import robustness
from stclusters.config import RunParams
from stclusters.reference import countries
from stclusters.report import figures
from stclusters.report.formatting import count, plain, points, share_pct
from stclusters.report.marts import EditionTables, json_value, ranking_records, read_json, read_robustness

# --- headline -----------------------------------------------------------------------------------


def headline(
    params: RunParams, tables: EditionTables, records: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """(label, value) facts under the title."""
    p0, p1 = params.patents_window
    a0, a1 = params.publications_window
    docs = {r["layer"]: r.get("documents_counted") for r in ranking_records(tables.checks)}
    top = records[0] if records else None
    facts = [
        ("clusters found", f"{tables.n_clusters:,}"),
        ("ranked", f"{len(records):,} (top_n {params.top_n})"),
        (f"PCT applications {p0}–{p1}", count(docs.get("patents"))),
        (f"articles {a0}–{a1}", count(docs.get("publications"))),
        ("top 10 share of PCT, %", share_pct(sum(float(r["pct_share"] or 0) for r in records[:10]))),
        ("top 10 share of articles, %", share_pct(sum(float(r["pub_share"] or 0) for r in records[:10]))),
    ]
    if top:
        facts.insert(0, ("first", f"{top['name']} ({share_pct(top['score'])})"))
    return facts


# --- ranking ------------------------------------------------------------------------------------

COLUMNS = (
    # (header, key, kind) kind: num = numeric sort, text = text sort
    ("Rank", "rank", "num"),
    ("Cluster", "name", "text"),
    ("Economy", "economies", "text"),
    ("PCT applications", "pct_count", "num"),
    ("Articles", "pub_count", "num"),
    ("PCT %", "pct_share", "num"),
    ("Articles %", "pub_share", "num"),
    ("Score", "score", "num"),
    ("Documents per million inhabitants", "documents_per_million", "num"),
    ("Intensity rank", "intensity_rank", "num"),
    ("Rank range", robustness.RANGE_KEY, "num"),  # shown when the ranking has rank intervals
)


def economy_codes(economies: Any) -> list[str]:
    """'CN/HK' -> ['CN', 'HK'] (the ranking's economies column; None or '' -> [])."""
    return [c for c in str(economies or "").split("/") if c]


@functools.cache
def _country_names() -> dict[str, str]:
    # GeoNames' English names, from the same countries file stclusters.reference.countries reads.
    data = json.loads(Path(countries.countries_file()).read_text(encoding="utf-8"))
    return {code.upper(): str(c.get("name") or code) for code, c in data.items()}


def economy_name(code: str) -> str:
    """An ISO alpha-2 code's English name (GeoNames), or the code itself when unknown."""
    return _country_names().get(code.upper(), code)


def cluster_anchor(row: Mapping[str, Any]) -> str:
    """The fragment that links to a ranked cluster's profile: ``cluster-<cluster_id>``."""
    return f"cluster-{row['cluster_id']}"


def _cell(key: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """One cell of the ranking table: its kind (``templates/ranking.html.j2``) and its values."""
    v = row.get(key)
    if key == robustness.RANGE_KEY:
        return range_cell(row)
    if key == "economies":
        codes = economy_codes(v)
        return {
            "kind": "economies",
            "value": v,
            "codes": " ".join(codes),
            "shares": row.get("economy_shares"),
            "mark": " ⇄" if row.get("cross_border") else "",
            "names": ", ".join(economy_name(c) for c in codes),
        }
    if key == "name":
        return {"kind": "name", "value": v, "anchor": cluster_anchor(row)}
    if key in {"pct_share", "pub_share", "score"}:
        shown = share_pct(v)
    elif key in {"pct_count", "pub_count", "documents_per_million"}:
        shown = count(v)
    elif key in {"rank", "intensity_rank"}:
        shown = "–" if v is None else str(v)
    else:
        shown = v
    return {"kind": "value", "sort": v, "shown": shown}


def range_cell(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ranking table's "Rank range" cell: the widest of both intervals and the label; the
    title gives each interval. Sorts by the interval's width (None: no intervals for this row)."""
    values = [row.get(c) for c in robustness.INTERVAL_COLUMNS]
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return {"kind": "range", "width": None}
    s_lo, s_hi, m_lo, m_hi = (int(v) for v in values)
    lo, hi = min(s_lo, m_lo), max(s_hi, m_hi)
    return {
        "kind": "range",
        "width": hi - lo,
        "shown": str(lo) if lo == hi else f"{lo}–{hi}",
        "title": f"sampling (90% bootstrap): {s_lo}–{s_hi}; method (parameter variations): {m_lo}–{m_hi}",
        "label": str(row.get("rank_label") or ""),
    }


def ranking_table(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The sortable ranking: its columns (the rank range only with rank intervals) and rows."""
    columns = [c for c in COLUMNS if c[1] != robustness.RANGE_KEY or robustness.has_intervals(records)]
    return {
        "columns": [
            {"label": label, "kind": kind, "sort": "ascending" if key == "rank" else "none"}
            for label, key, kind in columns
        ],
        "rows": [
            {
                "rank": r["rank"],
                "cluster_id": r["cluster_id"],
                "economies": " ".join(economy_codes(r.get("economies"))),
                "cells": [_cell(key, r) for _, key, _ in columns],
            }
            for r in records
        ],
    }


def economy_options(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ranking's economy filter: every economy of a ranked cluster, by name, with the number
    of ranked clusters it appears in."""
    n: dict[str, int] = {}
    for r in records:
        for code in economy_codes(r.get("economies")):
            n[code] = n.get(code, 0) + 1
    ordered = sorted(n, key=lambda c: (economy_name(c).lower(), c))
    return [{"code": c, "name": economy_name(c), "n": n[c]} for c in ordered]


# --- rank intervals ----------------------------------------------------------------------------

ROBUSTNESS_STATUSES = ("same", "split", "merged", "vanished")


def robustness_section(duckdb_path: Path, records: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The section "How sure is each rank?" (mart ``robustness``, stclusters.build.robustness):
    how many ranks carry each label, what every parameter variation did to the published
    clusters, and the clusters that split, merged or vanished in one. None when the edition has
    no rank intervals."""
    table = read_robustness(duckdb_path)
    if table is None or table.empty or not robustness.has_intervals(records):
        return None
    labels = pd.Series([r.get("rank_label") for r in records]).value_counts()
    order = ["stable"] + [f"±{k}" for k in range(1, robustness.MAX_PLUS_MINUS + 1)] + ["uncertain"]
    statuses = ROBUSTNESS_STATUSES
    counts = pd.crosstab(table["variation"], table["status"]).reindex(columns=statuses, fill_value=0)
    moved = table.assign(move=(table["variation_rank"] - table["rank"]).abs())
    biggest = moved.groupby("variation")["move"].max()
    events = table[table["status"] != "same"]
    return {
        "max_plus_minus": robustness.MAX_PLUS_MINUS,
        "labels": [(k, int(labels[k])) for k in order if k in labels],
        "statuses": statuses,
        "variations": [
            {
                "name": v,
                "counts": [int(counts.loc[v, s]) for s in statuses],
                "largest_move": "" if pd.isna(biggest.get(v)) else int(biggest[v]),
            }
            for v in counts.index
        ],
        "events": [
            [
                int(e.rank),
                str(e.name),
                e.variation,
                e.status,
                "" if pd.isna(e.variation_rank) else int(e.variation_rank),
                str(e.merged_with or ""),
            ]
            for e in events.itertuples()
        ],
    }


# --- the edition diff ---------------------------------------------------------------------------

DIFF_TOP_MOVES = 5
DIFF_COLUMNS = (
    "Rank",
    "Previous rank",
    "Move",
    "Cluster",
    "Status",
    "Score, %",
    "Previous score, %",
    "Score change, points",
    "Data effect, points",
    "Footprint effect, points",
    "Attributed to",
)


def _diff_name(r: Mapping[str, Any]) -> str:
    return str(r.get("name") or r.get("previous_name") or "?")


def diff_section(diff: Any) -> dict[str, Any]:
    """What the section "Changes since the previous edition" shows of edition_diff.json
    (stclusters.report.diff): a summary first (entries, exits, the biggest moves, how much of the
    score change is data and how much parameters), then one row per cluster, then the method as
    prose. ``kind`` says which of these the file allows."""
    if not diff:
        return {"kind": "none"}
    if not isinstance(diff, Mapping):
        return {"kind": "raw", "text": plain(diff)}
    method = method_prose(diff.get("method") or "")
    if diff.get("previous_edition") is None:
        note = diff.get("note") or "no earlier edition is published in this output folder: nothing to compare"
        return {"kind": "no_previous", "note": note, "method": method}
    rows = [r for r in diff.get("clusters") or [] if isinstance(r, Mapping)]
    return {"kind": "full", **diff_summary(diff, rows), "rows": diff_rows(rows), "method": method}


def diff_summary(diff: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    summ = diff.get("summary") or {}
    score = summ.get("score_change") or {}
    prev = diff.get("previous_edition")
    adjacent = "" if diff.get("previous_is_adjacent", True) else " (not the edition just before)"
    share = json_value(score.get("share_from_data"))
    effect = "–" if share is None else f"{share * 100:.0f} % data · {(1 - share) * 100:.0f} % parameters"
    facts = [
        ("compared with edition", f"{prev}{adjacent}"),
        ("entries", summ.get("entries", 0)),
        ("exits", summ.get("exits", 0)),
        ("moved up · down · same", f"{summ.get('moved_up', 0)} · {summ.get('moved_down', 0)} · "
         f"{summ.get('same_rank', 0)}"),
        ("score change from", effect),
    ]  # fmt: skip
    stays = [r for r in rows if r.get("status") == "stay" and r.get("rank_change")]
    moves = sorted(stays, key=lambda r: (-abs(r["rank_change"]), r.get("rank") or 0))[:DIFF_TOP_MOVES]
    changed = (diff.get("parameters_changed") or {}).get("result") or {}
    return {
        "facts": facts,
        "entries": [
            {"name": _diff_name(r), "rank": r.get("rank")} for r in rows if r.get("status") == "entry"
        ],
        "exits": [
            {"name": _diff_name(r), "previous_rank": r.get("previous_rank")}
            for r in rows
            if r.get("status") == "exit"
        ],
        "moves": [
            {
                "name": _diff_name(r),
                "change": json_value(r["rank_change"]),
                "previous_rank": r.get("previous_rank"),
                "rank": r.get("rank"),
            }
            for r in moves
        ],
        "decomposed": score.get("decomposed_clusters"),
        "from_data": points(score.get("from_data"), sign=False),
        "from_parameters": points(score.get("from_parameters"), sign=False),
        "attributed_to": score.get("footprint_attributed_to"),
        "changed": [(k, plain(v)) for k, v in sorted(changed.items())],
    }


def diff_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One readable row per cluster in either top list: ranks, move, scores in points."""
    out = []
    for r in rows:
        renamed = r.get("previous_name") and r.get("name") and r["previous_name"] != r["name"]
        out.append(
            {
                "status": r.get("status"),
                "rank": r.get("rank") or "–",
                "previous_rank": r.get("previous_rank") or "–",
                "change": json_value(r.get("rank_change")),
                "name": _diff_name(r),
                "was": r["previous_name"] if renamed else None,
                "numbers": [
                    points(r.get("score"), sign=False),
                    points(r.get("previous_score"), sign=False),
                    points(r.get("score_change")),
                    points(r.get("data_effect")),
                    points(r.get("footprint_effect")),
                ],
                "attributed_to": r.get("attributed_to"),
            }
        )
    return out


def method_prose(text: str) -> list[dict[str, Any]]:
    """A module docstring as prose blocks: paragraphs joined (no line wrapped mid-sentence),
    "- " items as a list; each text as (is_code, text) segments, ``literals`` as code."""
    blocks = []
    for para in (p.strip() for p in text.split("\n\n")):
        if not para:
            continue
        lines = para.splitlines()
        if lines[0].lstrip().startswith("- "):
            items, current = [], []
            for line in lines:
                if line.lstrip().startswith("- ") and current:
                    items.append(" ".join(current))
                    current = []
                current.append(line.strip().removeprefix("- "))
            items.append(" ".join(current))
            blocks.append({"list": True, "items": [_code_segments(i) for i in items]})
        else:
            blocks.append(
                {"list": False, "items": [_code_segments(" ".join(line.strip() for line in lines))]}
            )
    return blocks


def _code_segments(text: str) -> list[tuple[bool, str]]:
    # ``x`` (reStructuredText literal) -> (True, "x"); the text around it -> (False, ...).
    return [(i % 2 == 1, part) for i, part in enumerate(text.split("``"))]


# --- profiles -----------------------------------------------------------------------------------

# (layer, facet, heading) of the ranked facets, in the order the page shows them.
PROFILE_FACETS = (
    ("patents", "applicant", "Top applicant"),
    ("patents", "technology_field", "Top technology field"),
    ("publications", "organization", "Top organization"),
    ("publications", "science_field", "Top science field"),
)
FACET_TITLES = {
    "applicant": "Applicants (% of PCT applications)",
    "technology_field": "Technology fields (WIPO, % of PCT applications)",
    "organization": "Organizations (% of articles)",
    "science_field": "Science fields (% of articles)",
}
LAYER_LABELS = figures.LAYER_LABELS
SCOPES = figures.SCOPES
TOP_PARTNERS = 3
PROFILE_COLUMNS = (
    "Rank",
    "Cluster",
    *(heading for _, _, heading in PROFILE_FACETS),
    "PCT: local · domestic · international, %",
    "Articles: local · domestic · international, %",
    "Top partner clusters",
    "By year",
)


@dataclass(frozen=True)
class ProfileItem:
    """One row of the profiles mart: an item with its fractional count and its share."""

    item: str
    count: float
    share: float | None


@dataclass
class ClusterProfile:
    """What the report shows of one ranked cluster's profile."""

    facets: dict[tuple[str, str], list[ProfileItem]]  # (layer, facet) -> items, item_rank order
    trends: dict[str, list[tuple[int, float]]]  # layer -> (publication_year, document_count)

    def top(self, layer: str, facet: str) -> ProfileItem | None:
        items = self.facets.get((layer, facet)) or []
        return items[0] if items else None

    def collaboration(self, layer: str) -> dict[str, ProfileItem]:
        return {i.item: i for i in self.facets.get((layer, "collaboration"), [])}

    def partners(self, n: int = TOP_PARTNERS) -> list[str]:
        """The n partner clusters with the largest mean link share over the two layers (a link's
        share of the cluster's count compares across layers; raw link weights do not)."""
        mean: dict[str, float] = {}
        for layer in LAYER_LABELS:
            for i in self.facets.get((layer, "partner"), []):
                mean[i.item] = mean.get(i.item, 0.0) + (i.share or 0.0) / len(LAYER_LABELS)
        return [name for name, _ in sorted(mean.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def cluster_profiles(profiles: pd.DataFrame, trends: pd.DataFrame) -> dict[int, ClusterProfile]:
    """The profile and trend rows grouped per cluster_id (rows arrive in item_rank / year order)."""
    out: dict[int, ClusterProfile] = {}
    for r in ranking_records(profiles):
        prof = out.setdefault(int(r["cluster_id"]), ClusterProfile({}, {}))
        prof.facets.setdefault((r["layer"], r["facet"]), []).append(
            ProfileItem(str(r["item"]), float(r["item_count"] or 0.0), r["item_share"])
        )
    for r in ranking_records(trends):
        prof = out.setdefault(int(r["cluster_id"]), ClusterProfile({}, {}))
        prof.trends.setdefault(r["layer"], []).append(
            (int(r["publication_year"]), float(r["document_count"] or 0.0))
        )
    return out


def _ranked_items(items: Sequence[ProfileItem], what: str) -> list[dict[str, str]]:
    return [{"item": i.item, "share": share_pct(i.share), "title": f"{i.count:,.1f} {what}"} for i in items]


def profile_detail(profile: ClusterProfile) -> dict[str, Any]:
    """The expanded profile of one cluster: top-k of each facet, collaboration, partners, years."""
    years = sorted({y for series in profile.trends.values() for y, _ in series})
    by_layer = {layer: dict(series) for layer, series in profile.trends.items()}
    collaboration = []
    for layer in LAYER_LABELS:
        scopes = profile.collaboration(layer)
        collaboration.append(
            (LAYER_LABELS[layer], [share_pct(scopes[s].share) if s in scopes else "–" for s in SCOPES])
        )
    return {
        "facets": [
            (FACET_TITLES[facet], _ranked_items(profile.facets.get((layer, facet), []), LAYER_LABELS[layer]))
            for layer, facet, _ in PROFILE_FACETS
        ],
        "collaboration": collaboration,
        "partners": [
            (LAYER_LABELS[layer], _ranked_items(profile.facets.get((layer, "partner"), []), "link weight"))
            for layer in LAYER_LABELS
        ],
        "years": [
            (
                y,
                [
                    count(by_layer.get(layer, {}).get(y)) if y in by_layer.get(layer, {}) else ""
                    for layer in LAYER_LABELS
                ],
            )
            for y in years
        ],
    }


def profiles_table(
    records: Sequence[Mapping[str, Any]], profiles: Mapping[int, ClusterProfile]
) -> list[dict[str, Any]]:
    """One summary row per ranked cluster (its detail row beside it in the template)."""
    rows = []
    for r in records:
        prof = profiles.get(int(r["cluster_id"]), ClusterProfile({}, {}))
        tops = [prof.top(layer, facet) for layer, facet, _ in PROFILE_FACETS]
        rows.append(
            {
                "rank": r["rank"],
                "anchor": cluster_anchor(r),
                "cluster_id": r["cluster_id"],
                "name": r["name"],
                "tops": [None if t is None else {"item": t.item, "share": share_pct(t.share)} for t in tops],
                "collaboration": [
                    figures.collaboration_bar(prof.collaboration(layer)) for layer in LAYER_LABELS
                ],
                "partners": prof.partners(),
                "sparkline": figures.sparkline(prof.trends),
                "detail": profile_detail(prof),
            }
        )
    return rows


# --- parameters and provenance ------------------------------------------------------------------


def kv_items(items: Iterable[tuple[Any, Any]]) -> list[tuple[Any, str]]:
    """(key, value) rows of a two-column table, values as one line of text."""
    return [(k, plain(v)) for k, v in items]


def records_table(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A table of dict rows: every key once, in order of appearance; values as text."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {"keys": keys, "rows": [[plain(r.get(k)) for k in keys] for r in rows]}


def provenance(params: RunParams, manifest: Mapping[str, Any] | None) -> dict[str, Any]:
    """Landed files (URI, sha256, size, fetch time, rows loaded/quarantined) and the gazetteer;
    from the manifest when publish passes it, else from the workspace's landing records."""
    if manifest and manifest.get("inputs"):
        out = dict(manifest["inputs"])
    else:
        landed = read_json(params.workspace / "landing" / "landed.json") or {}
        stats = read_json(params.workspace / "load_stats.json") or {}
        layers = {}
        for layer, entry in sorted((landed.get("layers") or {}).items()):
            files = []
            for f in entry.get("files", []):
                s = stats.get(f.get("path"), {})
                files.append(
                    {
                        "uri": f.get("uri"),
                        "sha256": f.get("sha256"),
                        "size": f.get("size"),
                        "fetched_at": f.get("fetched_at"),
                        "rows_loaded": s.get("rows_loaded"),
                        "rows_quarantined": s.get("rows_quarantined"),
                    }
                )
            layers[layer] = {"format": entry.get("format"), "files": files}
        out = {"layers": layers, "gazetteer": landed.get("gazetteer", {})}
    if manifest:
        for key in ("code_version", "package_versions"):
            if manifest.get(key):
                out[key] = manifest[key]
    return out


def provenance_section(prov: Mapping[str, Any], tables: EditionTables) -> dict[str, Any]:
    """The provenance tables: landed dumps, gazetteer, documents and geocoding, code, packages
    (each None when there is nothing to show)."""
    dumps = []
    for layer, entry in sorted((prov.get("layers") or {}).items()):
        for f in entry.get("files", []):
            dumps.append(
                {
                    "layer": layer,
                    "format": entry.get("format"),
                    "uri": f.get("uri"),
                    "sha256": (f.get("sha256") or "")[:16] + "…",
                    "bytes": count(f.get("size")),
                    "fetched at": f.get("fetched_at"),
                    "rows loaded": count(f.get("rows_loaded")),
                    "rows quarantined": count(f.get("rows_quarantined")),
                }
            )
    gaz = prov.get("gazetteer") or {}
    checks = []
    cov = {r["layer"]: r for r in ranking_records(tables.coverage)}
    for r in ranking_records(tables.checks):
        c = cov.get(r["layer"], {})
        checks.append(
            {
                "layer": r["layer"],
                "documents landed": count(r.get("documents_landed")),
                "documents counted": count(r.get("documents_counted")),
                "geocoded (weight share, %)": share_pct(c.get("geocoded_share")),
                "addresses geocoded, %": share_pct(c.get("address_geocoded_share")),
                "out of window": count(r.get("documents_out_of_window")),
                "duplicates": count(r.get("documents_duplicated")),
            }
        )
    code, pkgs = prov.get("code_version"), prov.get("package_versions")
    return {
        "dumps": records_table(dumps) if dumps else None,
        "gazetteer": records_table(
            [
                {"table": k, "sha256": (v.get("sha256") or "")[:16] + "…", "bytes": count(v.get("size"))}
                for k, v in sorted(gaz.items())
            ]
        )
        if gaz
        else None,
        "checks": records_table(checks) if checks else None,
        "code": kv_items(sorted(code.items())) if code else None,
        "packages": kv_items(sorted(pkgs.items())) if pkgs else None,
    }
