"""The validation gate's results as the report shows them: one row per expectation (observed
value, threshold, verdict), the report's "Validation" section and the page validation.html
(``templates/validation.html.j2``, self-contained)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from stclusters.report.formatting import number, plain
from stclusters.report.marts import json_value
from stclusters.report.render import validation_environment

VALIDATION_PAGE = "validation.html"
DATA_DOCS = "validation/data_docs/index.html"
STAGE_ORDER = {"raw": 0, "counted": 1, "ranking": 2}


def observed_text(result: Mapping[str, Any]) -> str:
    """What a gate expectation observed, as a value: the checked column's values by layer,
    country or cluster when the frame is small (``values``), else GX's observed value, else the
    number of failing rows."""
    values = result.get("values")
    if isinstance(values, Mapping):
        return "; ".join(f"{k}: {number(v)}" for k, v in values.items())
    if isinstance(values, list):
        return ", ".join(number(v) for v in values)
    if values is not None:
        return number(values)
    observed = result.get("observed")
    if isinstance(observed, Mapping) and "unexpected_count" in observed:
        n = json_value(observed["unexpected_count"]) or 0
        return f"{number(n)} failing row{'s' if n != 1 else ''}"
    return number(observed)


def threshold_text(result: Mapping[str, Any]) -> str:
    """What passes, from the expectation and its arguments ('0 ≤ quarantine_share ≤ 0.01')."""
    kind = str(result.get("expectation") or "")
    kw = result.get("kwargs") or {}
    col = str(kw.get("column") or "value")
    lo, hi = kw.get("min_value"), kw.get("max_value")
    if "lengths_to_be_between" in kind:
        col = f"length of {col}"
    if kind.endswith("_to_be_between"):
        if lo is not None and hi is not None:
            return f"{col} = {number(lo)}" if lo == hi else f"{number(lo)} ≤ {col} ≤ {number(hi)}"
        if lo is not None:
            return f"{col} ≥ {number(lo)}"
        if hi is not None:
            return f"{col} ≤ {number(hi)}"
    if kind == "expect_table_row_count_to_equal":
        return f"rows = {number(kw.get('value'))}"
    known = {
        "expect_column_values_to_be_unique": f"{col} unique",
        "expect_column_values_to_not_be_null": f"{col} not null",
        "expect_column_values_to_be_in_set": f"{col} in the allowed set",
        "expect_column_values_to_be_decreasing": f"{col} decreasing",
        "expect_column_values_to_not_match_regex": f"{col} does not match {kw.get('regex')}",
    }
    if kind in known:
        return known[kind]
    return ", ".join(f"{k}={plain(v)}" for k, v in kw.items())


def validation_rows(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    """One row per expectation of the gate: check id, stage, severity, observed value,
    threshold, verdict (pass, FAIL for a critical failure, warning otherwise)."""
    rows = []
    for r in summary.get("results") or []:
        ok = bool(r.get("success"))
        critical = r.get("severity", "critical") == "critical"
        verdict = "pass" if ok else ("FAIL" if critical else "warning")
        failing = r.get("failing_rows") or []
        rows.append(
            {
                "check": str(r.get("check") or f"{r.get('frame')}.{r.get('expectation')}"),
                "stage": str(r.get("stage") or r.get("frame") or ""),
                "severity": str(r.get("severity") or ""),
                "observed": observed_text(r),
                "threshold": threshold_text(r),
                "verdict": verdict,
                "css": "pass" if ok else ("fail" if critical else "warn"),
                "failing": "" if ok else "; ".join(plain(f) for f in failing[:10]),
            }
        )
    return rows


def validation_section(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The report's "Validation" section: the verdict, the counts, the failed checks' ids and
    the table of every expectation (the same table as validation.html)."""
    crit = summary.get("critical_failures") or []
    warns = summary.get("warnings") or []
    table = (
        validation_environment()
        .get_template("validation_table.html.j2")
        .render(rows=validation_rows(summary))
    )
    return {
        "passed": bool(summary.get("passed")),
        "n_expectations": summary.get("n_expectations", 0),
        "n_failed": summary.get("n_failed", 0),
        "n_critical": len(crit),
        "n_warnings": len(warns),
        "run_id": summary.get("run_id"),
        "page": VALIDATION_PAGE,
        "data_docs": DATA_DOCS,
        "failures": [
            (label, [r.get("check") for r in items])
            for label, items in (("Critical failures", crit), ("Warnings", warns))
            if items
        ],
        # Safe: rendered by the autoescaping validation environment (the table validation.html
        # shows, with its escaping).
        "table": Markup(table),
    }


def validation_page(edition: Any, summary: Mapping[str, Any]) -> str:
    """validation.html: the gate's verdict and every expectation, self-contained (no request
    leaves the file), published beside report.html for auditors without a network."""
    rows = validation_rows(summary)
    return (
        validation_environment()
        .get_template("validation.html.j2")
        .render(
            edition=edition,
            passed=bool(summary.get("passed")),
            n_expectations=summary.get("n_expectations", len(rows)),
            n_failed=summary.get("n_failed", 0),
            n_critical=len(summary.get("critical_failures") or []),
            n_warnings=len(summary.get("warnings") or []),
            run_id=summary.get("run_id"),
            suite_version=summary.get("suite_version"),
            stages=sorted((summary.get("stages") or {}).items(), key=lambda kv: STAGE_ORDER.get(kv[0], 9)),
            stability=summary.get("stability"),
            rows=rows,
            summary_md="validation/summary.md",
            summary_json="validation/summary.json",
            data_docs=DATA_DOCS,
        )
    )
