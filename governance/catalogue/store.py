"""The content-addressed store beside the catalogue: thumbnails, licence evidence and metadata values
too long for the catalogue's rows, named by hash.

Files are written to a temporary name and renamed into place, so a crash never leaves a half-written
file under a valid name; writing the same content twice is a no-op.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import numpy as np


def _place(root: Path, kind: str, digest: str, suffix: str) -> Path:
    return root / kind / digest[:2] / f"{digest}{suffix}"


def _write_atomic(target: Path, data: bytes) -> None:
    if target.exists():
        return
    tmp = target.parent / f".tmp-{os.getpid()}-{target.name}"
    try:
        try:
            tmp.write_bytes(data)
        except FileNotFoundError:  # the first file under this prefix: make its folder
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def thumbnail_path(root: Path, sha256: str) -> Path:
    """Thumbnails are named by the sha256 of the original image's bytes."""
    return _place(root, "thumbs", sha256, ".jpg")


def put_thumbnail(root: Path, sha256: str, jpeg: bytes) -> Path:
    target = thumbnail_path(root, sha256)
    _write_atomic(target, jpeg)
    return target


def text_path(root: Path, sha256: str) -> Path:
    """A metadata value too long for the catalogue's rows, whole, as UTF-8 (catalogue.limits)."""
    return _place(root, "text", sha256, ".txt")


def put_text(root: Path, sha256: str, data: bytes) -> Path:
    target = text_path(root, sha256)
    _write_atomic(target, data)
    return target


def put_evidence(root: Path, source: Path) -> str:
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    _write_atomic(_place(root, "evidence", digest, source.suffix.lower()), data)
    return digest


class ArrayCache:
    """Arrays by image sha256 in a SQLite file of the content store (one `table` of sha256 -> `column`
    blobs of `dtype`). It is a cache: deleting the file only costs time."""

    def __init__(self, path: Path, table: str, column: str, dtype):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path, self._table, self._column, self._dtype = path, table, column, dtype
        self._db = sqlite3.connect(path, timeout=60)
        self._db.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (sha256 TEXT PRIMARY KEY, {column} BLOB NOT NULL)"
        )

    def get(self, shas: list[str]) -> dict[str, np.ndarray]:
        found = {}
        for start in range(0, len(shas), 500):
            part = shas[start : start + 500]
            marks = ",".join("?" * len(part))
            query = f"SELECT sha256, {self._column} FROM {self._table} WHERE sha256 IN ({marks})"
            for sha, blob in self._db.execute(query, part):
                found[sha] = np.frombuffer(blob, dtype=self._dtype)
        return found

    def put(self, rows: dict[str, np.ndarray]) -> None:
        with self._db:
            self._db.executemany(
                f"INSERT OR REPLACE INTO {self._table} VALUES (?, ?)",
                [(sha, np.ascontiguousarray(v, dtype=self._dtype).tobytes()) for sha, v in rows.items()],
            )

    def close(self) -> None:
        self._db.close()
