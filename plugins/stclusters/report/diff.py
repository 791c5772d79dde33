"""Edition diff: how this edition's ranking compares with the previous published edition.

Written into every publication as ``edition_diff.json`` (the summary and one row per cluster)
and ``edition_diff.csv`` (the rows). Previous edition = the latest edition before this one that
is published under the same ``output_dir`` (normally E-1; the diff names the one it used).

Matching: a cluster of this edition is the continuation of the previous cluster it shares the
most H3 cells with (previous cells brought to this edition's resolution), one to one, greedily
by number of shared cells; clusters that share no cell are matched by identical name.
Entries (exits) are clusters in this (the previous) edition's top_n without a counterpart in
the other's top_n.

Decomposition of a matched cluster's score change (score = share of world patents + share of
world articles), through one counterfactual: the previous footprint measured on this edition's
data, ``S(prev cells, new data)``:

- ``data_effect = S(prev cells, new data) - S(prev cells, prev data)``: same footprint, new
  documents (volumes and world totals);
- ``footprint_effect = S(new cells, new data) - S(prev cells, new data)``: the cluster grew or
  shrank. With the same scoring parameters in both editions (all of RESULT_PARAMETERS but
  top_n, which only cuts the list) this is data too (densities crossed the threshold); when
  they differ it is attributed to the parameters (an upper bound: the part of it that new data
  would have caused anyway is not separated).

Edition totals add up the absolute effects over matched clusters. Entries and exits are
attributed to data when the parameters are equal, to the parameters when only ``top_n``
changed and the move is explained by it, and are left "unattributed" otherwise.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import h3.api.basic_int as h3i

from stclusters.build import robustness
from stclusters.config import RunParams

log = logging.getLogger(__name__)

DIFF_JSON = "edition_diff.json"
DIFF_CSV = "edition_diff.csv"
MANIFEST = "manifest.json"

# Parameters that change the published ranking for the same input data. The others (paths,
# gate thresholds, DuckDB resources, republish) leave the ranking as it is; the input dumps and
# the edition are the data.
RESULT_PARAMETERS = (
    "eps_km",
    "min_patents",
    "min_publications",
    "h3_resolution",
    "top_n",
    "window_years",
    "patents_window_lag",
    "publications_window_lag",
)
IGNORED_PARAMETERS = (
    "edition",
    "output_dir",
    "workspace_dir",
    "republish",
    "duckdb_memory_limit",
    "duckdb_threads",
    "dbt_threads",
    "document_buckets",
)


@dataclass
class Cluster:
    cluster_id: str
    rank: int
    name: str
    score: float
    pct_share: float
    pub_share: float
    cells: frozenset[int]


@dataclass
class Row:
    status: str  # "stay", "entry", "exit"
    name: str | None
    rank: int | None
    previous_name: str | None
    previous_rank: int | None
    rank_change: int | None  # positive = moved up
    score: float | None
    previous_score: float | None
    score_change: float | None
    data_effect: float | None
    footprint_effect: float | None
    shared_cells: int
    attributed_to: str  # "data", "parameters", "data and parameters", "unattributed"
    # the move lies within both editions' rank intervals (stclusters.build.robustness); None = no intervals
    within_intervals: bool | None = None


# --- reading editions ------------------------------------------------------------------------


def previous_published(output_root: Path, edition: int) -> Path | None:
    """The folder of the latest published edition before ``edition`` (one with a manifest)."""
    if not output_root.is_dir():
        return None
    years = [int(p.name) for p in output_root.iterdir() if p.name.isdigit() and (p / MANIFEST).is_file()]
    earlier = [y for y in years if y < edition]
    return output_root / str(max(earlier)) if earlier else None


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_clusters(clusters_csv: Path, cells_csv: Path) -> list[Cluster]:
    """Every ranked cluster of an edition (clusters.csv) with its cells (cluster_cells.csv)."""
    cells: dict[str, set[int]] = {}
    for line, row in enumerate(_read_csv(cells_csv), start=2):
        try:
            cells.setdefault(row["cluster_id"], set()).add(int(row["cell"]))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{cells_csv}:{line}: field cluster_id/cell: {exc}") from exc
    out = []
    for line, row in enumerate(_read_csv(clusters_csv), start=2):
        try:
            out.append(
                Cluster(
                    cluster_id=row["cluster_id"],
                    rank=int(row["rank"]),
                    name=row["name"],
                    score=float(row["score"]),
                    pct_share=float(row["pct_share"] or 0),
                    pub_share=float(row["pub_share"] or 0),
                    cells=frozenset(cells.get(row["cluster_id"], ())),
                )
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"{clusters_csv}:{line}: {exc}") from exc
    return sorted(out, key=lambda c: c.rank)


def _export_current(params: RunParams, dest: Path) -> tuple[Path, Path]:
    """This edition's clusters and cells: from the staging folder when publish has exported them,
    else straight from the edition's DuckDB file."""
    clusters_csv, cells_csv = dest / "clusters.csv", dest / "cluster_cells.csv"
    if clusters_csv.exists() and cells_csv.exists():
        return clusters_csv, cells_csv
    tmp = params.workspace / "diff"
    tmp.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        con.sql("select * from main.clusters").df().to_csv(tmp / "clusters.csv", index=False)
        con.sql("select * from main.cluster_cells").df().to_csv(tmp / "cluster_cells.csv", index=False)
    finally:
        con.close()
    return tmp / "clusters.csv", tmp / "cluster_cells.csv"


@dataclass(frozen=True)
class CellData:
    """One edition's located documents per H3 cell and its world totals: what the counterfactual
    score of a footprint needs."""

    patents: dict[int, float]
    publications: dict[int, float]
    world_patents: float
    world_publications: float

    def score(self, cells: frozenset[int]) -> float:
        p = sum(self.patents.get(c, 0.0) for c in cells)
        a = sum(self.publications.get(c, 0.0) for c in cells)
        return (p / self.world_patents if self.world_patents else 0.0) + (
            a / self.world_publications if self.world_publications else 0.0
        )


def read_cell_data(duckdb_path: Path, clusters: list[Cluster], clusters_csv: Path) -> CellData | None:
    """Per-cell weights from the edition's DuckDB (int_cells_weighted); world totals from the
    published counts and shares (count / share), so that they include every counted document,
    geocoded or not, exactly as the ranking does."""
    if not duckdb_path.exists():
        return None
    try:
        con = duckdb.connect(str(duckdb_path), read_only=True)
    except duckdb.Error as exc:
        log.warning("%s: cannot open for the edition diff (%s); no decomposition", duckdb_path, exc)
        return None
    try:
        rows = con.sql("select layer, cell, weight from main.int_cells_weighted").fetchall()
    except duckdb.Error as exc:
        log.warning("%s: no int_cells_weighted (%s); no decomposition", duckdb_path, exc)
        return None
    finally:
        con.close()
    by_layer: dict[str, dict[int, float]] = {"patents": {}, "publications": {}}
    for layer, cell, weight in rows:
        by_layer.setdefault(layer, {})[int(cell)] = float(weight)
    world_p = world_a = 0.0
    for row in _read_csv(clusters_csv):
        if not world_p and float(row["pct_share"] or 0) > 0:
            world_p = float(row["pct_count"]) / float(row["pct_share"])
        if not world_a and float(row["pub_share"] or 0) > 0:
            world_a = float(row["pub_count"]) / float(row["pub_share"])
    return CellData(by_layer["patents"], by_layer["publications"], world_p, world_a)


# --- comparing -------------------------------------------------------------------------------


def at_resolution(cells: frozenset[int], resolution: int) -> frozenset[int]:
    """Cells brought to another H3 resolution (parents when coarser, children when finer)."""
    out: set[int] = set()
    for c in cells:
        r = h3i.get_resolution(c)
        if r == resolution:
            out.add(c)
        elif r > resolution:
            out.add(h3i.cell_to_parent(c, resolution))
        else:
            out.update(h3i.cell_to_children(c, resolution))
    return frozenset(out)


def cells_resolution(clusters: list[Cluster], default: int) -> int:
    """The H3 resolution this edition's cells are at (read from the cells themselves)."""
    cell = next((c for cl in clusters for c in cl.cells), None)
    return h3i.get_resolution(cell) if cell is not None else default


def match(current: list[Cluster], previous: list[Cluster]) -> dict[str, tuple[str, int]]:
    """current cluster_id -> (previous cluster_id, shared cells), one to one."""
    pairs = sorted(
        (
            (len(c.cells & p.cells), c.rank, p.rank, c.cluster_id, p.cluster_id)
            for c in current
            for p in previous
            if c.cells & p.cells
        ),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    out: dict[str, tuple[str, int]] = {}
    used: set[str] = set()
    for shared, _, _, cid, pid in pairs:
        if cid not in out and pid not in used:
            out[cid] = (pid, shared)
            used.add(pid)
    by_name = {p.name: p for p in previous if p.cluster_id not in used}
    for c in current:
        p = by_name.get(c.name)
        if c.cluster_id not in out and p is not None and p.cluster_id not in used:
            out[c.cluster_id] = (p.cluster_id, 0)
            used.add(p.cluster_id)
    return out


def changed_parameters(previous: dict[str, Any], current: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Parameters that differ, split into those that change the ranking and the others."""
    result, other = {}, {}
    for name in sorted(set(previous) | set(current)):
        if name in IGNORED_PARAMETERS or previous.get(name) == current.get(name):
            continue
        entry = {"previous": previous.get(name), "current": current.get(name)}
        (result if name in RESULT_PARAMETERS else other)[name] = entry
    return {"result": result, "other": other}


def compare(
    current: list[Cluster],
    previous: list[Cluster],
    top_n: int,
    previous_top_n: int,
    params_changed: dict[str, Any],
    cell_data: CellData | None,
    resolution: int,
) -> list[Row]:
    """One row per cluster in either edition's top_n (entries, exits and stays)."""
    pairs = match(current, previous)
    prev_by_id = {p.cluster_id: p for p in previous}
    same_params = not params_changed
    only_top_n = set(params_changed) == {"top_n"}
    # top_n only cuts the list: it changes no cluster's footprint or score.
    same_scoring = not (set(params_changed) - {"top_n"})
    rows: list[Row] = []
    matched_prev: set[str] = set()
    for c in current:
        p = prev_by_id.get(pairs.get(c.cluster_id, ("", 0))[0])
        in_now = c.rank <= top_n
        in_before = p is not None and p.rank <= previous_top_n
        if p is not None:
            matched_prev.add(p.cluster_id)
        if not in_now and not in_before:
            continue
        if in_now and in_before:
            assert p is not None
            data_eff = foot_eff = None
            if cell_data is not None:
                counterfactual = cell_data.score(at_resolution(p.cells, resolution))
                # Published scores carry 10 significant digits: round away the residue.
                data_eff, foot_eff = round(counterfactual - p.score, 10), round(c.score - counterfactual, 10)
            owner = "data" if same_scoring else ("data and parameters" if cell_data else "unattributed")
            rows.append(
                Row(
                    "stay",
                    c.name,
                    c.rank,
                    p.name,
                    p.rank,
                    p.rank - c.rank,
                    c.score,
                    p.score,
                    c.score - p.score,
                    data_eff,
                    foot_eff,
                    pairs[c.cluster_id][1],
                    owner,
                )
            )
        elif in_now:
            owner = _move_owner(same_params, only_top_n, p is not None and p.rank <= top_n)
            rows.append(
                Row(
                    "entry",
                    c.name,
                    c.rank,
                    p.name if p else None,
                    p.rank if p else None,
                    (p.rank - c.rank) if p else None,
                    c.score,
                    p.score if p else None,
                    (c.score - p.score) if p else None,
                    None,
                    None,
                    pairs.get(c.cluster_id, ("", 0))[1],
                    owner,
                )
            )
        else:
            assert p is not None
            owner = _move_owner(same_params, only_top_n, c.rank <= previous_top_n)
            rows.append(
                Row(
                    "exit",
                    c.name,
                    c.rank,
                    p.name,
                    p.rank,
                    p.rank - c.rank,
                    c.score,
                    p.score,
                    c.score - p.score,
                    None,
                    None,
                    pairs[c.cluster_id][1],
                    owner,
                )
            )
    for p in previous:
        if p.cluster_id not in matched_prev and p.rank <= previous_top_n:
            owner = "data" if same_params else "unattributed"
            rows.append(
                Row("exit", None, None, p.name, p.rank, None, None, p.score, None, None, None, 0, owner)
            )
    return sorted(rows, key=lambda r: (r.rank is None, r.rank or 0, r.previous_rank or 0))


def _move_owner(same_params: bool, only_top_n: bool, explained_by_top_n: bool) -> str:
    """An entry or exit whose rank would have been inside (outside) the other edition's cut:
    with only top_n changed, it is the cut that moved, not the cluster."""
    if same_params:
        return "data"
    if only_top_n and explained_by_top_n:
        return "parameters"
    return "unattributed"


def summarize(rows: list[Row], params_changed: dict[str, Any]) -> dict[str, Any]:
    stays = [r for r in rows if r.status == "stay"]
    decomposed = [r for r in stays if r.data_effect is not None]
    data_abs = sum(abs(r.data_effect or 0) for r in decomposed)
    foot_abs = sum(abs(r.footprint_effect or 0) for r in decomposed)
    scoring_changed = bool(set(params_changed) - {"top_n"})
    from_data = data_abs + (0.0 if scoring_changed else foot_abs)
    from_params = foot_abs if scoring_changed else 0.0
    total = from_data + from_params
    return {
        "stays": len(stays),
        "entries": sum(r.status == "entry" for r in rows),
        "exits": sum(r.status == "exit" for r in rows),
        "moved_up": sum((r.rank_change or 0) > 0 for r in stays),
        "moved_down": sum((r.rank_change or 0) < 0 for r in stays),
        "same_rank": sum(r.rank_change == 0 for r in stays),
        "score_change": {
            "decomposed_clusters": len(decomposed),
            "abs_data_effect": data_abs,
            "abs_footprint_effect": foot_abs,
            "from_data": from_data,
            "from_parameters": from_params,
            "share_from_data": (from_data / total) if total else None,
            "footprint_attributed_to": "parameters" if scoring_changed else "data",
        },
    }


# --- writing ---------------------------------------------------------------------------------


def write_edition_diff(params: RunParams, dest: Path) -> Path:
    """Write edition_diff.json and edition_diff.csv into ``dest`` (the publication's staging
    folder) and return the json's path. With no earlier published edition, the diff says so."""
    clusters_csv, cells_csv = _export_current(params, dest)
    current = read_clusters(clusters_csv, cells_csv)
    prev_dir = previous_published(params.edition_output.parent, params.edition)
    doc: dict[str, Any] = {
        "edition": params.edition,
        "previous_edition": None,
        "method": __doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
    }
    rows: list[Row] = []
    if prev_dir is None:
        doc["note"] = "no earlier edition is published in this output folder: nothing to compare"
    else:
        manifest = json.loads((prev_dir / MANIFEST).read_text(encoding="utf-8"))
        prev_params = manifest.get("parameters") or {}
        changed = changed_parameters(prev_params, params.as_dict())
        previous = read_clusters(prev_dir / "clusters.csv", prev_dir / "cluster_cells.csv")
        cell_data = read_cell_data(params.duckdb_path, current, clusters_csv)
        rows = compare(
            current,
            previous,
            params.top_n,
            int(prev_params.get("top_n", params.top_n)),
            changed["result"],
            cell_data,
            cells_resolution(current, params.h3_resolution),
        )
        # --- rank intervals (stclusters.build.robustness) ---
        now_iv = robustness.read_ranking_intervals(dest / "ranking.csv", params.duckdb_path)
        before_iv = robustness.read_ranking_intervals(prev_dir / "ranking.csv")
        for r in rows:
            r.within_intervals = robustness.move_within_intervals(r.rank, r.previous_rank, now_iv, before_iv)
        # --- end rank intervals ---
        doc.update(
            previous_edition=int(manifest.get("edition", prev_dir.name)),
            previous_published_at=manifest.get("published_at"),
            previous_is_adjacent=int(prev_dir.name) == params.edition - 1,
            windows={
                "previous": manifest.get("windows"),
                "current": {"patents": params.patents_window, "publications": params.publications_window},
            },
            parameters_changed=changed,
            summary=summarize(rows, changed["result"]),
        )
        doc["summary"]["moves_within_intervals"] = sum(
            r.within_intervals is True for r in rows if r.status == "stay" and r.rank_change
        )
    doc["clusters"] = [asdict(r) for r in rows]
    dest.mkdir(parents=True, exist_ok=True)
    _write_csv(dest / DIFF_CSV, rows)
    out = dest / DIFF_JSON
    _write_atomic(out, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    log.info("edition %s: diff against %s written to %s", params.edition, doc["previous_edition"], out)
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def _write_csv(path: Path, rows: list[Row]) -> None:
    names = list(Row.__dataclass_fields__)
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(names)
        for r in rows:
            writer.writerow([_fmt(getattr(r, n)) for n in names])
    os.replace(tmp, path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
