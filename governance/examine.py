"""Reading one offered file once: its sha256, a full decode, its rights metadata, its perceptual
hash and its thumbnail in the store. Runs in worker processes, so it takes and returns plain data."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from governance import imaging, store
from governance.rights import read_rights


@dataclass
class Examined:
    sha256: str
    size_bytes: int
    format: str
    mode: str
    width: int
    height: int
    orientation: int
    frames: int
    phash: str
    rights: dict
    licence_candidates: list[str]
    creator: str | None
    attribution: str | None
    title: str | None
    data_mining: str | None
    mining_reserved: bool
    references: list[str]  # an SVG's references to other files or URLs: recorded, never fetched


@dataclass
class Failed:
    reason: str
    detail: str
    sha256: str | None = None


def examine(path: str, store_root: Path) -> Examined | Failed:
    """Read a file once: hash it, decode it, read its rights, store its thumbnail."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return Failed("unreadable", f"cannot read: {exc.strerror or exc}")
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        decoded = imaging.decode(data)
    except imaging.DecodeFailure as failure:
        return Failed(failure.reason, failure.detail, sha256)
    rights = read_rights(decoded.original)
    thumb = imaging.thumbnail(decoded.rgb)
    if not store.thumbnail_path(store_root, sha256).exists():
        store.put_thumbnail(store_root, sha256, imaging.jpeg(thumb))
    return Examined(
        sha256=sha256,
        size_bytes=len(data),
        format=decoded.format,
        mode=decoded.mode,
        width=decoded.width,
        height=decoded.height,
        orientation=decoded.orientation,
        frames=decoded.frames,
        phash=imaging.phash(thumb),
        rights=rights.as_dict(),
        licence_candidates=rights.licence_candidates,
        creator=rights.creator,
        attribution=rights.attribution,
        title=rights.title,
        data_mining=rights.data_mining,
        mining_reserved=rights.mining_reserved,
        references=decoded.references,
    )
