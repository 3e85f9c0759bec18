"""Scores for every output, computed by the core with the index's own encoder (not by the plugin).

- prompt alignment: cosine of the output's image embedding and the prompt's text embedding;
- style similarity: mean cosine to the neighbours the output retrieved, and cosine to the centroid of
  every vector of the index (the cleared members of the style-set version it was built from);
- the near-copy check: the highest cosine to ANY member of the index (one nearest-neighbour search,
  exact below the HNSW threshold), and the smallest perceptual-hash (64-bit phash, the same function
  ingest uses) Hamming distance to any member's phash or to the phash of one of its 18 crops (the
  index's phashes.npy, governance/copyhash.py), each with the member it points to. The output's
  mirror image is checked as well: a mirrored copy is still a copy.

An output is flagged when either distance crosses the policy's `outputs:` thresholds; the thresholds
are recorded with the scores, with the policy's name and hash.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps

from stylevault.governance.errors import BadInput
from stylevault.governance.index import copyhash
from stylevault.governance.pictures import imaging
from stylevault.governance.rules.policy import Policy
from stylevault.governance.rules.policy_files import load_policy


@dataclass
class Scores:
    status: str  # "scored" | "missing"
    detail: str | None = None
    encoder_id: str | None = None
    prompt_alignment: float | None = None
    style_neighbours: float | None = None
    style_centroid: float | None = None
    nearest_cosine: float | None = None
    nearest_cosine_image_id: int | None = None
    nearest_hash_distance: int | None = None
    nearest_hash_image_id: int | None = None
    policy_name: str | None = None
    policy_sha256: str | None = None
    thresholds: dict = field(default_factory=dict)
    flagged: bool = False
    flags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def missing(detail: str) -> Scores:
    """Scores that could not be computed (the index or the file is gone): recorded, and held for review."""
    return Scores(status="missing", detail=detail, flagged=True, flags=[f"not scored: {detail}"])


def thresholds_of(policy: Policy) -> dict:
    rules = policy.outputs
    return {
        "near_copy_cosine": rules.near_copy_cosine,
        "near_copy_hash": rules.near_copy_hash,
        "signoff_required": rules.signoff_required,
    }


class Scorer:
    """Scores outputs against one verified index. Built once per run: it takes the members' phashes
    and the index's centroid from the index itself."""

    def __init__(self, handle, encoder, policy: Policy | None = None):
        self.handle = handle
        self.encoder = encoder
        self.problem: str | None = None
        if policy is None:
            try:
                policy = load_policy(handle.manifest["policy"]["name"])
            except BadInput as exc:
                self.problem = f"no thresholds: {exc}"
        self.policy = policy
        self.thresholds = thresholds_of(policy) if policy else {}
        # Each member's phash and its crops' (index.copyhash), in the index's member order.
        self.hash_ids, self.hashes = handle.member_ids, handle.hashes
        self.centroid = handle.centroid()  # (D,), recorded by the build

    def nearest_hash(self, image: PILImage.Image, mirror: PILImage.Image) -> tuple[int, int, bool]:
        """(distance, image id, mirrored) of the member whose phash is closest to the image's or its
        mirror's."""
        best = (65, -1, False)
        for mirrored, picture in ((False, image), (True, mirror)):
            distance, row = copyhash.nearest(self.hashes, int(imaging.phash(imaging.thumbnail(picture)), 16))
            if distance < best[0]:
                best = (distance, int(self.hash_ids[row]), mirrored)
        return best

    def score(self, images: list[PILImage.Image], prompt: str, neighbours: list[list[int]]) -> list[Scores]:
        """Scores of each image (with the neighbour ids it retrieved) of one prompt."""
        rgb = [image.convert("RGB") for image in images]
        mirrors = [ImageOps.mirror(image) for image in rgb]
        embedded = self.encoder.encode_images(rgb + mirrors)  # (2B, D), L2-normalised
        plain = embedded[: len(rgb)]
        text = self.encoder.encode_texts([prompt])[0]
        ids, cosines = self.handle.search(embedded, 1)
        results = []
        for n, image in enumerate(rgb):
            scores = Scores(
                status="scored",
                encoder_id=self.encoder.id,
                prompt_alignment=round(float(plain[n] @ text), 6),
                style_centroid=round(float(plain[n] @ self.centroid), 6),
                policy_name=self.policy.name if self.policy else None,
                policy_sha256=self.policy.hash if self.policy else None,
                thresholds=dict(self.thresholds),
            )
            if neighbours[n]:
                vectors = self.handle.vectors(np.array(neighbours[n]))  # (k, D)
                scores.style_neighbours = round(float((vectors @ plain[n]).mean()), 6)
            pick = n if cosines[n, 0] >= cosines[len(rgb) + n, 0] else len(rgb) + n
            scores.nearest_cosine = round(float(cosines[pick, 0]), 6)
            scores.nearest_cosine_image_id = int(ids[pick, 0])
            cosine_mirrored = pick != n
            distance, hash_id, hash_mirrored = self.nearest_hash(image, mirrors[n])
            scores.nearest_hash_distance, scores.nearest_hash_image_id = distance, hash_id
            self._judge(scores, cosine_mirrored, hash_mirrored)
            results.append(scores)
        return results

    def _judge(self, scores: Scores, cosine_mirrored: bool, hash_mirrored: bool) -> None:
        if self.problem:
            scores.flagged, scores.flags = True, [self.problem]
            return
        limit_cosine, limit_hash = self.thresholds["near_copy_cosine"], self.thresholds["near_copy_hash"]
        if scores.nearest_cosine >= limit_cosine:
            how = " (mirrored)" if cosine_mirrored else ""
            scores.flags.append(
                f"near copy: cosine {scores.nearest_cosine:.4f}{how} to image "
                f"{scores.nearest_cosine_image_id} is at or above {limit_cosine}"
            )
        if scores.nearest_hash_distance <= limit_hash:
            how = " (mirrored)" if hash_mirrored else ""
            scores.flags.append(
                f"near copy: phash distance {scores.nearest_hash_distance}{how} to image "
                f"{scores.nearest_hash_image_id} is at or below {limit_hash}"
            )
        scores.flagged = bool(scores.flags)
