"""What the demo and the training of its models both start from: the team of actors, and the
manifest format the world's rows are written in."""

from __future__ import annotations

import csv
from pathlib import Path

from stylevault.governance.catalogue import actors
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.ingest import manifest

MANIFEST_COLUMNS = [
    *(name for name in manifest.COLUMNS if name != "evidence"),
    "note",
    "caption",
    "content_caption",
    "style",
    "palette",
    "texture",
    "shape",
    "colour",
    "size",
    "position",
]


def write_manifest(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def team(catalogue: Catalogue) -> None:
    """An admin, a steward who also holds the legal role (to show four-eyes refusing it), a legal
    reviewer and a generator."""
    with catalogue.write() as session:
        if actors.find(session, "admin") is None:
            actors.add(session, None, "admin", ["admin"])
            actors.add(session, "admin", "sam", ["steward", "legal"])
            actors.add(session, "admin", "lee", ["legal"])
            actors.add(session, "admin", "gia", ["generator"])
