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
