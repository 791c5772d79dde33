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
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from stclusters.schema import COLUMNS, LAYERS

log = logging.getLogger(__name__)

QUARANTINE_COLUMNS = ("file", "line", "field", "reason", "value")


class FormatError(ValueError):
    """An input cannot be read as the declared format at all (the whole file is refused)."""


@dataclass(frozen=True)
class QuarantinedRecord:
    file: str
    line: int
    field: str
    reason: str
    value: str = ""

    def as_row(self) -> tuple[str, str, str, str, str]:
        return (self.file, str(self.line), self.field, self.reason, self.value[:200])


@dataclass
class ConversionReport:
    """What one conversion read, wrote, excluded and quarantined."""

    format: str
    layer: str
    inputs: list[Path]
    out_path: Path
    records_read: int = 0
    documents_written: int = 0
    rows_written: int = 0
    excluded: Counter[str] = field(default_factory=Counter)
    quarantined: list[QuarantinedRecord] = field(default_factory=list)

    @property
    def quarantine_path(self) -> Path:
        return quarantine_path(self.out_path)

    @property
    def quarantine_share(self) -> float:
        """Quarantined records over records read (0 when nothing was read)."""
        return len(self.quarantined) / self.records_read if self.records_read else 0.0

    def quarantine(self, file: Path | str, line: int, field_name: str, reason: str, value: str = "") -> None:
        self.quarantined.append(QuarantinedRecord(str(file), line, field_name, reason, value))

    def summary(self) -> str:
        excluded = ", ".join(f"{k}: {v}" for k, v in sorted(self.excluded.items())) or "none"
        return (
            f"{self.format} -> {self.out_path.name}: {self.records_read} records read, "
            f"{self.documents_written} documents / {self.rows_written} rows written, "
            f"excluded {{{excluded}}}, {len(self.quarantined)} quarantined"
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
        reasons = Counter(q.reason.split(":")[0] for q in report.quarantined)
        log.warning(
            "%d records quarantined (%s), see %s",
            len(report.quarantined),
            ", ".join(f"{r}: {n}" for r, n in reasons.most_common()),
            report.quarantine_path,
        )
    return report


def open_text(path: Path, encoding: str = "utf-8") -> IO[str]:
    """Open a text input, gzip or not, decoding with replacement so one bad byte costs one record.

    Lines holding U+FFFD afterwards are quarantined by the adapters as broken encoding.
    """
    # The caller closes the returned wrapper, which closes the file under it.
    raw: IO[bytes] = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")


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
    except (OSError, EOFError) as exc:
        raise FormatError(f"{path}: cannot read: {exc}") from exc


BROKEN = "\ufffd"
