"""The DAG's report task: render the edition's report from the validated data, before publish.

Into ``<workspace>/<edition>/report/`` (stclusters.handover.report_dir): the published tables
exported as publish exports them (the edition diff reads them), the comparison with the previous
published edition (stclusters.report.diff), then the report and its analyst outputs
(stclusters.report.report: report.html, validation.html, figures, ...). ``report.json`` records
the gate run, the parameters and the tables they were rendered from, and every rendered file's
sha256: publish copies exactly these files, and refuses a report that is not of the data it
publishes. A failure or a slow render shows in Airflow as the report task.
"""

from __future__ import annotations

import logging
import shutil

import duckdb

from stclusters import handover
from stclusters.config import RunParams
from stclusters.handover import DATA_FILES, REPORT_RECORD_FILE, GateSummary, ReportRecord
from stclusters.publish import publish
from stclusters.report import diff, report

log = logging.getLogger(__name__)


def render_report(params: RunParams) -> dict:
    """Render the report of the edition's latest passed gate run; returns a small summary."""
    summary = publish.check_validated(params, GateSummary.read(params))
    dest = handover.report_dir(params)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    con = duckdb.connect(str(params.duckdb_path), read_only=True)
    try:
        tables = handover.export_tables(con, dest)
    finally:
        con.close()
    publish.check_same_as_validated(params, tables, summary)
    diff.write_edition_diff(params, dest)
    report.write_outputs(params, dest, summary.data, publish.provenance(params))
    skip = {*DATA_FILES, REPORT_RECORD_FILE}
    files = {
        p.relative_to(dest).as_posix(): handover.sha256_file(p)
        for p in sorted(dest.rglob("*"))
        if p.is_file() and p.relative_to(dest).as_posix() not in skip
    }
    ReportRecord(
        edition=params.edition,
        gate_run_id=summary.run_id,
        params_fingerprint=handover.params_fingerprint(params),
        tables=tables,
        files=files,
    ).write(params)
    log.info("edition %s: report rendered into %s (%d files)", params.edition, dest, len(files))
    return {"edition": params.edition, "path": str(dest), "files": sorted(files)}
