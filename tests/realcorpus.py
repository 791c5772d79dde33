"""Where the real-export corpus is on this machine.

The provenance (repository, path, commit, licence, sha256 of each file) is committed in
tests/fixtures/real/corpus.yml; the exported files are not (they are other projects' data:
tests/fixtures/real/README.md, "Where the files live"). They are looked for in
$STCLUSTERS_REAL_CORPUS, then tests/fixtures/real/ (git-ignored copies), then
../shared/real-data/corpus/ beside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

PROVENANCE = Path(__file__).resolve().parent / "fixtures" / "real"
ENTRIES: list[dict] = yaml.safe_load((PROVENANCE / "corpus.yml").read_text(encoding="utf-8"))["files"]


def corpus_dir() -> Path:
    """The first folder that holds the corpus files; the last one tried when none does."""
    env = os.environ.get("STCLUSTERS_REAL_CORPUS")
    tried = [Path(env)] if env else []
    tried += [PROVENANCE, PROVENANCE.parents[2].parent / "shared" / "real-data" / "corpus"]
    return next((d for d in tried if (d / ENTRIES[0]["file"]).is_file()), tried[-1])


CORPUS = corpus_dir()
# For a test module's pytestmark: skip, saying where to put the files, when they are absent.
needs_corpus = pytest.mark.skipif(
    not (CORPUS / ENTRIES[0]["file"]).is_file(),
    reason=f"the real-export corpus is not on this machine: put the files listed in {PROVENANCE}/corpus.yml "
    "in ../shared/real-data/corpus/ or set STCLUSTERS_REAL_CORPUS",
)
