"""The file line the load step gives a row is computed from the row's position in
raw.<layer>_rows, so the load must keep file order while DuckDB reads a large file in parallel.
Checked on a generated world of 4.7 M author-address rows (stclusters.synthetic.worldgen, scale 0.1): a
join in the load's row checks once let DuckDB insert such a file out of order (most sampled
lines wrong) while small files stayed in order."""

from __future__ import annotations

import csv
import gzip
import io
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from stclusters.load.land import layer_inputs, load_database

pytestmark = pytest.mark.e2e


def test_lines_of_a_world_scale_file_match_the_file(tmp_path: Path) -> None:
    out = tmp_path / "world"
    subprocess.run(
        [sys.executable, "-m", "stclusters.synthetic.worldgen", "--scale", "0.1", "--out", str(out)],
        check=True,
    )
    path = out / "publications.csv.gz"
    db = tmp_path / "edition.duckdb"
    load_database(db, layer_inputs({"publications": [path]}), {}, max_quarantine_share=1.0, threads=2)
    con = duckdb.connect(str(db), read_only=True)
    n_rows = con.execute("select count(*) from raw.publications").fetchall()[0][0]
    assert n_rows > 4_000_000
    sampled = {
        line: (article_id, seq)
        for article_id, seq, line in con.execute(
            "select article_id, address_seq, source_line from raw.publications "
            "using sample reservoir(300 rows) repeatable (7)"
        ).fetchall()
    }
    con.close()
    lines = {}
    # the file's own line numbers, read with Python (the dumps have no embedded line breaks)
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        for number, text in enumerate(fh, start=1):
            if number in sampled:
                record = next(csv.reader(io.StringIO(text)))
                lines[number] = (record[0].strip(), int(record[3]))
    wrong = {n: (sampled[n], lines.get(n)) for n in sampled if lines.get(n) != sampled[n]}
    assert not wrong, (
        f"{len(wrong)} of {len(sampled)} sampled rows carry another line: {list(wrong.items())[:3]}"
    )
