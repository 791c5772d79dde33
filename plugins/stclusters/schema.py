"""The canonical dump formats (docs/data-formats.md): the contract between every source adapter,
the land step and the dbt staging models.

Both are CSV with a header row, UTF-8, optionally gzip-compressed (``.csv.gz``); an empty
field means missing. One row per inventor (patents) or per author address (publications).
"""

from __future__ import annotations

from typing import Final

LAYERS: Final = ("patents", "publications")

PATENT_COLUMNS: Final = (
    "application_id",  # PCT application number, e.g. WO2021123456; required
    "publication_date",  # YYYY-MM-DD; required
    "inventor_seq",  # 1..n within the application; required
    "city",
    "postal_code",
    "region",
    "country",  # ISO 3166-1 alpha-2; required
    "latitude",  # optional, decimal degrees (WGS84)
    "longitude",
    "applicant",
    "ipc",  # optional, ';'-separated IPC symbols
)

PUBLICATION_COLUMNS: Final = (
    "article_id",  # e.g. WOS:000123456700001; required
    "publication_year",  # YYYY; required
    "document_type",  # e.g. Article; only counted types reach the ranking
    "address_seq",  # 1..n within the article; required
    "organization",
    "city",
    "postal_code",
    "region",
    "country",  # ISO 3166-1 alpha-2; required
    "latitude",
    "longitude",
    "subject",  # optional, ';'-separated subject categories
)

COLUMNS: Final = {"patents": PATENT_COLUMNS, "publications": PUBLICATION_COLUMNS}

# The column holding each layer's document id and position of the address in the document.
DOCUMENT_ID: Final = {"patents": "application_id", "publications": "article_id"}
ADDRESS_SEQ: Final = {"patents": "inventor_seq", "publications": "address_seq"}

# The DuckDB type each column is landed as (raw.<layer>_rows); the others are varchar.
LANDED_TYPES: Final = {
    "publication_date": "date",
    "inventor_seq": "integer",
    "publication_year": "integer",
    "address_seq": "integer",
    "latitude": "double",
    "longitude": "double",
}

# Where each landed row came from, added by the land step after the layer's columns (the dbt
# sources raw.patents and raw.publications have COLUMNS[layer] + LANDED_COLUMNS).
LANDED_COLUMNS: Final = ("source_file", "source_line")


def landed_type(column: str) -> str:
    """The DuckDB type of a canonical column once landed."""
    return LANDED_TYPES.get(column, "varchar")


# What counts as a document (docs/methodology.md, "1. Data and windows"), defined here once:
# - a patent document is a PCT application published inside the patents window, a publication
#   one inside the publications window (the windows are run parameters: stclusters.config);
# - a publication counts only when its document type is one of COUNTED_DOCUMENT_TYPES. The
#   adapters that read typed sources (load/formats/wos.py, openalex.py) keep only those records
#   and write the type as spelled here; a canonical dump may carry other types, which are landed
#   and then left out by the models (macro is_counted, fed by the dbt var counted_document_types).
COUNTED_DOCUMENT_TYPES: Final = ("Article",)


def document_type_key(document_type: str) -> str:
    """The form the models compare a document type in (staging: ``lower(trim(document_type))``)."""
    return document_type.strip().lower()


def counted_document_type_keys() -> list[str]:
    """COUNTED_DOCUMENT_TYPES as the models compare them: the dbt var ``counted_document_types``."""
    return [document_type_key(t) for t in COUNTED_DOCUMENT_TYPES]
