"""Reading one offered file once: its sha256, a full decode, its rights metadata, its perceptual
hash and its thumbnail in the store. Runs in worker processes, so it takes and returns plain data."""

from __future__ import annotations

import errno
import hashlib
from dataclasses import dataclass
from pathlib import Path

from governance import imaging, store
from governance.offers import open_inside
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


@dataclass
class Failed:
    reason: str
    detail: str
    sha256: str | None = None


def _unopenable(exc: OSError) -> Failed:
    """Why a checked file could not be opened safely: most often, it changed after the checks."""
    if exc.errno == errno.ELOOP:
        return Failed("unreadable", "it became a symlink after it was checked (not followed)")
    if exc.errno == errno.ENOTDIR:
        return Failed(
            "unreadable",
            "a folder on its path became a symlink or a file after it was checked (not followed)",
        )
    if exc.errno == errno.ENOENT:
        return Failed("missing-file", "gone when it was read")
    if exc.errno in (errno.EINVAL, errno.EISDIR):
        return Failed("not-a-file", "not a regular file when it was read")
    return Failed("unreadable", f"cannot read: {exc.strerror or exc}")


def examine(folder: str, relative: str, store_root: Path) -> Examined | Failed:
    """Read the file `relative` below `folder` once (offers.open_inside: no symlink followed): hash
    it, decode it, read its rights, store its thumbnail."""
    try:
        fd = open_inside(folder, relative)
    except OSError as exc:
        return _unopenable(exc)
    try:
        with open(fd, "rb") as handle:
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
    )
