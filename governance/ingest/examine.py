"""Reading one offered file once: its sha256, a full decode, its rights metadata, its perceptual
hash and its thumbnail in the store. Runs in worker processes, so it takes and returns plain data."""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from stylevault.governance.catalogue import store
from stylevault.governance.ingest.offers import open_inside
from stylevault.governance.pictures import imaging
from stylevault.governance.pictures.rights import read_rights

# Decoding reads a file whole; one over this is rejected as too-large, hashed in chunks and never held
# in memory. The largest picture Pillow decodes (2 x MAX_IMAGE_PIXELS, 179 million pixels) is rarely
# stored larger in any accepted format.
MAX_FILE_BYTES = 512 << 20
# A file over this is first shown to Pillow's format checks, which read only its header: a large
# non-image (a video, an archive beside the pictures) is refused without being read whole.
SNIFF_BYTES = 16 << 20
CHUNK_BYTES = 1 << 20


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


def _streamed(handle, reason: str, detail: str) -> Failed:
    """Refuse a file without holding it: its sha256 is read in chunks from the start."""
    handle.seek(0)
    digest = hashlib.sha256()
    while block := handle.read(CHUNK_BYTES):
        digest.update(block)
    return Failed(reason, detail, digest.hexdigest())


def examine(folder: str, relative: str, store_root: Path) -> Examined | Failed:
    """Read the file `relative` below `folder` once (offers.open_inside: no symlink followed): hash
    it, decode it, read its rights, store its thumbnail."""
    try:
        fd = open_inside(folder, relative)
    except OSError as exc:
        return _unopenable(exc)
    try:
        with open(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_FILE_BYTES:
                over = f"{size} bytes, over ingest's limit of {MAX_FILE_BYTES >> 20} MiB for one file"
                return _streamed(handle, "too-large", over)
            if size > SNIFF_BYTES:
                try:
                    imaging.identify(handle)
                except imaging.DecodeFailure as failure:
                    return _streamed(handle, failure.reason, failure.detail)
            data = handle.read(size + 1)  # a byte more shows a file that grew since fstat looked
    except OSError as exc:
        return Failed("unreadable", f"cannot read: {exc.strerror or exc}")
    if len(data) != size:
        return Failed("unreadable", f"it changed size while it was read (fstat said {size} bytes)")
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
