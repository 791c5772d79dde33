"""The hand-over files: one owner (stclusters.handover), the files' bytes as they were, and no
import circle anywhere in the package."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from stclusters import config, handover
from stclusters.handover import GateSummary, LandedInputs, LoadStats, Manifest, ReportRecord

PACKAGE = Path(handover.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_imports() -> dict[str, set[str]]:
    """Every module of the package -> the package's modules it imports (at any depth of the file:
    function-level imports count, since they run too). ``from a import b`` counts ``a.b`` when it
    is a module, else ``a``."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.update(
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                )
        # a package's __init__ runs before its modules: importing a.b imports a
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (its modules in order, the first repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


# Imports that close a circle and are left to their module's owner, each with why. The test fails
# when one of them is gone (remove it here) as well as on any other circle.
KNOWN_CIRCLE_EDGES: set[tuple[str, str]] = set()


def test_the_package_has_no_import_circle() -> None:
    graph = package_imports()
    assert "stclusters.gate.validate" in graph and "stclusters.publish.publish" in graph
    for source, target in KNOWN_CIRCLE_EDGES:
        assert target in graph[source], (
            f"{source} no longer imports {target}: drop it from KNOWN_CIRCLE_EDGES"
        )
        graph[source] = graph[source] - {target}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_publish_and_the_gate_share_handover_instead_of_importing_each_other() -> None:
    graph = package_imports()
    assert "stclusters.publish.publish" not in graph["stclusters.gate.validate"]
    assert "stclusters.gate.validate" not in graph["stclusters.publish.publish"]
    assert "stclusters.handover" in graph["stclusters.gate.validate"] & graph["stclusters.publish.publish"]


def test_the_cycle_finder_finds_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_handover_imports_no_step() -> None:
    assert package_imports()["stclusters.handover"] <= {"stclusters.config", "stclusters"}


def test_only_handover_defines_the_writer_checksum_and_sql_literal() -> None:
    """One atomic JSON writer, one sha256 of a file, one SQL string literal in the modules
    handover serves (load/formats keeps its own writers: another owner)."""
    names = {"_write_json_atomic", "_write_text_atomic", "sha256_file", "_sql_str", "export_tables"}
    owners = {
        _module_name(p): sorted(
            n.name
            for n in ast.walk(ast.parse(p.read_text()))
            if isinstance(n, ast.FunctionDef) and n.name in names
        )
        for p in PACKAGE.rglob("*.py")
        if "formats" not in p.parts
    }
    assert {m: n for m, n in owners.items() if n} == {"stclusters.handover": ["export_tables", "sha256_file"]}


@pytest.fixture
def params(tmp_path: Path) -> config.RunParams:
    return config.resolve(
        {"edition": 2023, "workspace_dir": str(tmp_path / "ws"), "output_dir": str(tmp_path / "out")}
    )


def test_landed_json_round_trips_byte_for_byte(params: config.RunParams) -> None:
    data = {
        "edition": 2023,
        "layers": {
            "patents": {
                "format": "canonical",
                "files": [{"path": "/x/p.csv", "sha256": "a" * 64, "uri": "file:///p.csv", "lines": 3}],
                "canonical": ["/x/p.csv"],
                "conversion": None,
            }
        },
        "gazetteer": {"places": {"path": "/x/g.parquet", "sha256": "b" * 64, "size": 1}},
    }
    # the writer's format before the records existed (tasks._write_json_atomic)
    before = json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"
    path = LandedInputs.from_dict(data).write(params)
    assert path.read_text() == before
    record = LandedInputs.read(params)
    assert record is not None and record.layers["patents"].sha256s == ["a" * 64]
    assert record.referenced_paths() == {Path("/x/p.csv")}
    assert not list(path.parent.glob("*.part"))


def test_gate_summary_keeps_summary_json_order(params: config.RunParams) -> None:
    data = {"passed": True, "run_id": "r1", "run_dir": "/x", "b": 1, "a": 2}
    GateSummary(data).write(params)
    text = handover.gate_summary_path(params).read_text()
    assert text == json.dumps(data, indent=2, default=str) + "\n"  # not sorted: summary.json's bytes
    assert handover.latest_summary(params) == data
    assert GateSummary.read(params).run_id == "r1"  # type: ignore[union-attr]


def test_load_stats_and_report_record(params: config.RunParams) -> None:
    assert LoadStats.read(params).files == {}
    stats = LoadStats({"/x/p.csv": {"layer": "patents", "rows_loaded": 4, "rows_quarantined": 1}})
    stats.write(params)
    assert LoadStats.read(params).rows_loaded() == 4 and LoadStats.read(params).rows_quarantined() == 1
    assert ReportRecord.read(params) is None
    ReportRecord(2023, "r1", "f" * 64, {"ranking.csv": "0" * 64}, {"report.html": "1" * 64}).write(params)
    assert ReportRecord.read(params) == ReportRecord(
        2023, "r1", "f" * 64, {"ranking.csv": "0" * 64}, {"report.html": "1" * 64}
    )


def test_manifest_reads_what_other_steps_need(tmp_path: Path) -> None:
    assert Manifest.read(tmp_path) is None
    (tmp_path / "manifest.json").write_text("{not json")
    assert Manifest.read(tmp_path) is None
    data = {
        "parameters": {"source_set": "sample"},
        "inputs": {
            "layers": {"patents": {"files": [{"sha256": "b"}, {"sha256": "a"}], "documents_landed": 7}}
        },
    }
    Manifest(data).write(tmp_path)
    manifest = Manifest.read(tmp_path)
    assert manifest is not None
    assert manifest.input_sha256s() == {"patents": ["a", "b"]}
    assert manifest.documents_landed() == {"patents": 7}
    assert (tmp_path / "manifest.json").read_text() == json.dumps(data, indent=2, sort_keys=True) + "\n"


def test_sql_str_doubles_quotes() -> None:
    assert handover.sql_str("it's") == "'it''s'"
    assert handover.sql_str(Path("/a'b")) == "'/a''b'"
