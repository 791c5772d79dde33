"""What every format adapter shares: the report, quarantine records and the canonical writer.

An adapter reads one export format and writes the canonical CSV of one layer
(``stclusters.schema``) gzip-compressed with mtime 0, so the same input gives the same bytes.
Records it cannot use are quarantined (file, line, field, reason), never dropped silently;
records the method does not count (e.g. reviews) are *excluded* and counted by reason.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import os
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from stclusters.schema import COLUMNS, LAYERS

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 4 * 1024 * 1024
"""The longest line read in Python, by the load step and by every adapter's reader: above DuckDB's
default max_line_size (2 MB), so such a line is never a row, and far above any real export's
line (a Web of Science record line, an OpenAlex work with thousands of authors). Text readers
count characters (at least one byte each), so one line costs at most a few times this in memory."""

QUARANTINE_COLUMNS = ("file", "line", "field", "reason", "value", "unit")

RECORD = "record"
ADDRESS = "address"
UNITS = (RECORD, ADDRESS)
"""What a quarantine line stands for: a whole record (an article, a work, an inventor row) or one
address of a record whose other addresses were written."""


class FormatError(ValueError):
    """An input cannot be read as the declared format at all (the whole file is refused)."""


@dataclass(frozen=True)
class QuarantinedRecord:
    file: str
    line: int
    field: str
    reason: str
    value: str = ""
    unit: str = RECORD

    @property
    def reason_key(self) -> str:
        """The reason without its detail ("unknown country: Atlantis" -> "unknown country")."""
        return self.reason.split(":")[0]

    def as_row(self) -> tuple[str, str, str, str, str, str]:
        return (self.file, str(self.line), self.field, self.reason, self.value[:200], self.unit)


def plural(unit: str) -> str:
    return f"{unit}es" if unit.endswith("s") else f"{unit}s"


def units(n: int, unit: str) -> str:
    """For messages: 1 record, 3 records, 1 address, 89 addresses."""
    return f"{n} {unit}" if n == 1 else f"{n} {plural(unit)}"


@dataclass
class ConversionReport:
    """What one conversion read, wrote, excluded and quarantined.

    Quarantine counts in two units kept apart: records (nothing of the record was written) and
    addresses (one address of a record whose other addresses were written). ``unlocated``
    counts addresses written with their country but without their place, because that part
    could not be read: they keep their share of the record as unlocated (docs/data-formats.md).
    """

    format: str
    layer: str
    inputs: list[Path]
    out_path: Path
    records_read: int = 0
    addresses_read: int = 0
    documents_written: int = 0
    rows_written: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    unlocated: Counter[str] = field(default_factory=Counter)
    records_with_lost_addresses: int = 0

    @property
    def quarantine_path(self) -> Path:
        return quarantine_path(self.out_path)

    def quarantined_count(self, unit: str) -> int:
        return sum(1 for q in self.quarantined if q.unit == unit)

    def quarantine_shares(self) -> dict[str, float]:
        """Per unit: quarantined records over records read, quarantined addresses over the
        addresses read in the records that were counted (0 when nothing was read)."""
        read = {RECORD: self.records_read, ADDRESS: self.addresses_read}
        return {u: (self.quarantined_count(u) / read[u] if read[u] else 0.0) for u in UNITS}

    @property
    def quarantine_share(self) -> float:
        """The larger of the two units' shares: what max_quarantine_share is compared with."""
        return max(self.quarantine_shares().values())

    def quarantine_by_reason(self) -> dict[str, dict[str, int]]:
        """{unit: {reason: count}} with reasons sorted, for landed.json and the manifest."""
        out: dict[str, dict[str, int]] = {}
        for unit in UNITS:
            found = Counter(q.reason_key for q in self.quarantined if q.unit == unit)
            if found:
                out[unit] = dict(sorted(found.items()))
        return out

    def counts(self) -> dict[str, object]:
        """The numbers of this conversion as plain JSON (landed.json and the manifest)."""
        return {
            "records_read": self.records_read,
            "addresses_read": self.addresses_read,
            "documents_written": self.documents_written,
            "rows_written": self.rows_written,
            "excluded": dict(sorted(self.excluded.items())),
            "quarantined": self.quarantine_by_reason(),
            "unlocated_addresses": dict(sorted(self.unlocated.items())),
            "records_with_lost_addresses": self.records_with_lost_addresses,
        }

    def quarantine(
        self, file: Path | str, line: int, field_name: str, reason: str, value: str = "", unit: str = RECORD
    ) -> None:
        self.quarantined.append(QuarantinedRecord(str(file), line, field_name, reason, value, unit))

    def reasons_text(self, limit: int = 5) -> str:
        """For messages: "C1: unknown country (3 addresses); UT: missing article id (1 record)"."""
        found = Counter((q.field, q.reason_key, q.unit) for q in self.quarantined)
        return "; ".join(f"{f}: {r} ({units(n, u)})" for (f, r, u), n in found.most_common(limit))

    def summary(self) -> str:
        excluded = ", ".join(f"{k}: {v}" for k, v in sorted(self.excluded.items())) or "none"
        unlocated = sum(self.unlocated.values())
        return (
            f"{self.format} -> {self.out_path.name}: {units(self.records_read, RECORD)} read, "
            f"{self.documents_written} documents / {self.rows_written} rows written, "
            f"excluded {{{excluded}}}, {units(self.quarantined_count(RECORD), RECORD)} and "
            f"{units(self.quarantined_count(ADDRESS), ADDRESS)} quarantined"
            + (f", {units(unlocated, ADDRESS)} written without their place" if unlocated else "")
        )


def quarantine_path(out_csv_gz: Path) -> Path:
    return out_csv_gz.with_name(out_csv_gz.name + ".quarantine.csv")


def check_layer(fmt: str, layer: str, allowed: tuple[str, ...]) -> None:
    if layer not in LAYERS:
        raise FormatError(f"unknown layer {layer!r} (known: {', '.join(LAYERS)})")
    if layer not in allowed:
        raise FormatError(f"format {fmt!r} holds {'/'.join(allowed)}, not {layer}")


@contextmanager
def atomic_output(path: Path, binary: bool = True) -> Iterator[IO]:
    """Open a temporary file beside ``path``; rename it over ``path`` only if the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(
            fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": ""})
        ) as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class CanonicalWriter:
    """Writes canonical rows (dicts) of one layer as deterministic gzip CSV."""

    def __init__(self, raw: IO[bytes], layer: str) -> None:
        self.columns = COLUMNS[layer]
        # mtime=0 and no file name in the gzip header: identical input gives identical bytes.
        self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
        self._text = io.TextIOWrapper(self._gz, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text, lineterminator="\n")
        self._csv.writerow(self.columns)
        self.rows = 0

    def write(self, row: dict[str, object]) -> None:
        self._csv.writerow(["" if row.get(c) is None else row.get(c) for c in self.columns])
        self.rows += 1

    def close(self) -> None:
        self._text.flush()
        self._text.detach()
        self._gz.close()


@contextmanager
def canonical_output(out_csv_gz: Path, layer: str) -> Iterator[CanonicalWriter]:
    with atomic_output(out_csv_gz) as raw:
        writer = CanonicalWriter(raw, layer)
        yield writer
        writer.close()


def write_quarantine(report: ConversionReport) -> Path:
    """Write ``<out>.quarantine.csv`` (always, header only when nothing was quarantined)."""
    path = report.quarantine_path
    with atomic_output(path, binary=False) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(QUARANTINE_COLUMNS)
        for q in report.quarantined:
            w.writerow(q.as_row())
    return path


def finish(report: ConversionReport) -> ConversionReport:
    report.quarantined.sort(key=lambda q: (q.file, q.line))
    write_quarantine(report)
    log.info("%s", report.summary())
    if report.quarantined:
        log.warning("quarantined: %s; see %s", report.reasons_text(limit=20), report.quarantine_path)
    return report


def open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    """Open a text input, gzip or not, decoding with replacement so one bad byte costs one record.

    Lines holding U+FFFD afterwards are quarantined by the adapters as broken encoding.
    """
    # The caller closes the returned wrapper, which closes the file under it.
    raw: IO[bytes] = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")


@contextmanager
def readable(path: Path) -> Iterator[None]:
    """Turn the errors of a cut or corrupt gzip into a FormatError that names the file and says
    what to do (nothing is written then: the output is atomic)."""
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise FormatError(
            f"{path}: truncated or corrupt gzip ({exc or type(exc).__name__}): the download or copy "
            "was cut; fetch the file again (gzip -t checks it)"
        ) from exc


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def peek_bytes(path: Path, n: int = 4096) -> bytes:
    """The first ``n`` bytes of a file's content (decompressed when gzip)."""
    try:
        if is_gzip(path):
            with gzip.open(path, "rb") as fh:
                return fh.read(n)
        with open(path, "rb") as fh:
            return fh.read(n)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise FormatError(
            f"{path}: truncated or corrupt gzip ({exc or type(exc).__name__}): fetch the file again "
            "(gzip -t checks it)"
        ) from exc
    except OSError as exc:
        raise FormatError(f"{path}: cannot read: {exc}") from exc


class LineTooLong(FormatError):
    """A line longer than MAX_LINE_BYTES: refused without reading it into memory."""


def line_too_long(path: Path | str, number: int, what: str = "line") -> str:
    return (
        f"{path}: line {number}: {what} longer than {MAX_LINE_BYTES} characters (MAX_LINE_BYTES, the cap "
        "on one line read): no export writes such a line; the file is corrupt or not this format "
        "(e.g. a run of NUL bytes without a line end): fetch or export it again"
    )


def capped_readline(fh: IO[str], path: Path | str, number: int, what: str = "line") -> str:
    """One line of at most MAX_LINE_BYTES characters (its line end included or not); LineTooLong
    naming the file and line otherwise, after reading MAX_LINE_BYTES + 1 characters at most."""
    line = fh.readline(MAX_LINE_BYTES + 1)
    if len(line) > MAX_LINE_BYTES and not line.endswith(("\n", "\r")):
        raise LineTooLong(line_too_long(path, number, what))
    return line


def skip_rest_of_line(fh: IO[str]) -> None:
    """Read past the rest of an overlong line in bounded pieces (for formats where one line is
    one record and a refused line can be quarantined)."""
    while piece := fh.readline(MAX_LINE_BYTES + 1):
        if piece.endswith(("\n", "\r")):
            return


def capped_lines(fh: IO[str], path: Path | str, start: int = 1) -> Iterator[tuple[int, str]]:
    """(line number, line) like ``enumerate(fh, start)``, but each line capped at MAX_LINE_BYTES
    characters: a longer line raises LineTooLong (file, line, cap), never an unbounded read."""
    number = start
    while line := capped_readline(fh, path, number):
        yield number, line
        number += 1


BROKEN = "\ufffd"
