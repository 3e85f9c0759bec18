"""The verified, read-only index handle that the core hands a generation plugin.

Opening verifies the folder first (every file hash, the manifest against the catalogue, every
member still cleared) and refuses a stale, tampered or unverifiable index. Nothing large is copied
into memory: the vectors and the member lines are memory-mapped, and the usearch index is a
memory-mapped view. Neighbour embeddings come from the exact vector file, not reconstructed from
the index.
"""

from __future__ import annotations

import json
import mmap
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.index import builds as index
from stylevault.governance.index import verification


@dataclass(frozen=True)
class Member:
    """What the catalogue knew about one indexed image at build time, for provenance and attribution."""

    position: int
    image_id: int
    sha256: str
    licence: str | None
    relied_on: str | None
    attribution: str | None
    obligations: tuple[str, ...]


class IndexHandle:
    """Search a verified index: `search(query (B, D), k) -> (image ids (B, k), cosine (B, k))`,
    `vectors(image ids (B, k)) -> (B, k, D)` float32, and `member(image id)` for licence and
    attribution."""

    def __init__(
        self, folder: Path, manifest: dict, manifest_sha256: str, *, expansion_search: int | None = None
    ):
        from usearch.index import Index

        self.folder = folder
        self.manifest = manifest
        self.manifest_sha256 = manifest_sha256
        self.encoder_id: str = manifest["encoder"]["id"]
        self.dim: int = manifest["dim"]
        self.exact = manifest["search"]["kind"] == "exact"
        self._vectors = np.load(folder / "vectors.npy", mmap_mode="r")  # (N, D) float16, read-only
        self._index = Index.restore(str(folder / "index.usearch"), view=True)
        # The build's setting unless the caller trades speed for recall (HNSW indexes only).
        self._index.expansion_search = expansion_search or manifest["search"]["expansion_search"]
        # (N, 19) uint64: each member's phash and its crops' (index.copyhash).
        self.hashes = np.load(folder / index.HASHES, mmap_mode="r")
        self._ids = np.asarray(manifest["member_ids"], dtype=np.int64)  # position -> image id
        self._order = np.argsort(self._ids, kind="stable")  # sorted ids -> position
        self._sorted_ids = self._ids[self._order]
        with open(folder / "members.jsonl", "rb") as handle:
            self._lines = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        ends = np.flatnonzero(np.frombuffer(self._lines, dtype=np.uint8) == ord("\n"))
        self._starts = np.concatenate(([0], ends[:-1] + 1))  # line i of members.jsonl = member i

    @classmethod
    def open(
        cls,
        catalogue: Catalogue,
        folder: str | os.PathLike,
        *,
        on: date | None = None,
        expansion_search: int | None = None,
        allow_stale: bool = False,
    ) -> IndexHandle:
        """Verify, then open; a stale, tampered or unknown index is refused with the first reason.

        `allow_stale` is for auditors reproducing a past run: the files and the manifest must still
        verify, but members that have stopped being cleared since do not stop the reading."""
        folder = Path(folder)
        result = verification.verify(catalogue, folder, on=on)
        problems = [p for p in result.problems if not (allow_stale and p.startswith("stale: "))]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise Refused(f"index {folder} refused: {problems[0]}{more}")
        manifest, manifest_sha256 = verification.read_manifest(folder)
        return cls(folder, manifest, manifest_sha256, expansion_search=expansion_search)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def member_ids(self) -> np.ndarray:
        """Image ids in index order (position -> image id)."""
        return self._ids

    def require_encoder(self, encoder_id: str) -> None:
        """Queries must come from the encoder the index was built with."""
        if encoder_id != self.encoder_id:
            raise Refused(f"index {self.folder} was built with encoder {self.encoder_id}, not {encoder_id}")

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """query: (B, D) float32, L2-normalised -> image ids (B, k) int64 and cosine similarity (B, k)
        float32, most similar first."""
        query = np.asarray(query, dtype=np.float32)
        if query.ndim != 2 or query.shape[1] != self.dim:
            raise BadInput(f"query: expected shape (B, {self.dim}), got {query.shape}")
        if not 1 <= k <= len(self):
            raise BadInput(f"k: must be between 1 and {len(self)} (the members of this index), got {k}")
        matches = self._index.search(query, k, exact=self.exact)
        positions = np.asarray(matches.keys, dtype=np.int64).reshape(len(query), k)
        scores = 1.0 - np.asarray(matches.distances, dtype=np.float32).reshape(len(query), k)
        return self._ids[positions], scores

    def _positions(self, image_ids: np.ndarray) -> np.ndarray:
        image_ids = np.asarray(image_ids, dtype=np.int64)
        found = np.searchsorted(self._sorted_ids, image_ids).clip(0, len(self._ids) - 1)
        missing = self._sorted_ids[found] != image_ids
        if missing.any():
            raise BadInput(f"image {image_ids[missing].flat[0]} is not a member of index {self.folder}")
        return self._order[found]

    def vectors(self, image_ids: np.ndarray) -> np.ndarray:
        """image ids (B, k) -> their embeddings (B, k, D) float32, from the exact vector file."""
        positions = self._positions(image_ids)
        return np.asarray(self._vectors[positions.reshape(-1)], dtype=np.float32).reshape(
            *positions.shape, self.dim
        )

    def centroid(self) -> np.ndarray:
        """(D,) float32: the members' mean direction, as the build recorded it in the manifest."""
        return np.asarray(self.manifest["centroid"], dtype=np.float32)

    def member(self, image_id: int) -> Member:
        position = int(self._positions(np.array([image_id]))[0])
        start = int(self._starts[position])
        end = self._lines.find(b"\n", start)
        row = json.loads(self._lines[start:end])
        return Member(
            row["position"],
            row["image_id"],
            row["sha256"],
            row["licence"],
            row["relied_on"],
            row["attribution"],
            tuple(row["obligations"]),
        )
