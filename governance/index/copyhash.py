"""Perceptual hashes of index members for the near-copy check: each member's own phash (the one ingest
recorded) and the phashes of 18 crops of its thumbnail (imaging.crop_phashes), as a (N, 19) uint64
matrix that an index build writes as `phashes.npy`.

A phash alone misses most crops of an image (a 70-90 % crop moved the hash 16 bits of 64 on median in
bench/near_copy.py); against the crops' hashes a cropped copy lands within a few bits of one of them.
Crop hashes depend only on the thumbnail's bytes, so they are cached by image sha256 in the content
store (`hashes/crops-<version>.sqlite`) and a rebuild does not compute them again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from stylevault.governance.catalogue import store
from stylevault.governance.errors import BadInput
from stylevault.governance.pictures import imaging

VERSION = f"phash-crops-{len(imaging.CROP_AREAS)}x{imaging.CROP_GRID}x{imaging.CROP_GRID}-v1"
PER_MEMBER = 1 + len(imaging.CROP_AREAS) * imaging.CROP_GRID**2


def describe() -> dict:
    return {
        "hashes": VERSION,
        "per_member": PER_MEMBER,
        "crop_areas": list(imaging.CROP_AREAS),
        "grid": imaging.CROP_GRID,
    }


def _cache(root: Path) -> store.ArrayCache:
    """Crop hashes by image sha256 in the content store; deleting the file costs time only."""
    return store.ArrayCache(root / "hashes" / f"{VERSION}.sqlite", "crops", "hashes", np.uint64)


def _from_thumbnail(root: Path, sha256: str) -> np.ndarray:
    from PIL import Image

    path = store.thumbnail_path(root, sha256)
    try:
        with Image.open(path) as thumb:
            return np.array(imaging.crop_phashes(thumb.convert("RGB")), dtype=np.uint64)
    except OSError as exc:
        raise BadInput(f"thumbnail of image {sha256[:16]} in the content store ({path}): {exc}") from exc


def member_hashes(
    root: Path, members: list[dict], *, progress: Callable[[int], None] | None = None
) -> np.ndarray:
    """(N, PER_MEMBER) uint64 for members (dicts with sha256 and phash), in order: column 0 is the
    phash ingest recorded, the rest the crop hashes, cached."""
    cache = _cache(root)
    try:
        shas = [m["sha256"] for m in members]
        known = cache.get(shas)
        fresh: dict[str, np.ndarray] = {}
        for sha in dict.fromkeys(shas):
            if sha not in known:
                fresh[sha] = _from_thumbnail(root, sha)
                if len(fresh) >= 500:
                    cache.put(fresh)
                    known.update(fresh)
                    if progress:
                        progress(len(fresh))
                    fresh = {}
        cache.put(fresh)
        known.update(fresh)
        if progress and fresh:
            progress(len(fresh))
    finally:
        cache.close()
    matrix = np.zeros((len(members), PER_MEMBER), dtype=np.uint64)
    for row, member in enumerate(members):
        matrix[row, 0] = int(member["phash"], 16)
        matrix[row, 1:] = known[member["sha256"]]
    return matrix


def nearest(hashes: np.ndarray, bits: int) -> tuple[int, int]:
    """(distance, row) of the member with a hash (own or crop) nearest to `bits`; hashes (N, H)."""
    distances = np.bitwise_count(hashes ^ np.uint64(bits)).min(axis=1)
    row = int(np.argmin(distances))
    return int(distances[row]), row
