"""The content-addressed store beside the catalogue: thumbnails and licence evidence, named by hash.

Files are written to a temporary name and renamed into place, so a crash never leaves a half-written
file under a valid name; writing the same content twice is a no-op.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


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


def put_evidence(root: Path, source: Path) -> str:
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    _write_atomic(_place(root, "evidence", digest, source.suffix.lower()), data)
    return digest
