"""Verifying an index folder: every file hash, the manifest against the catalogue's record and members,
the arrays' shapes, and every member re-judged on the day under the policy text the index was built
under (`clearance.not_cleared`, one SELECT): what time alone changed, an expiry, is marked stale here.
An expiry reopens no released output; governance/standing says why."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import Image
from stylevault.governance.catalogue.output_models import IndexBuild, IndexMember
from stylevault.governance.errors import BadInput
from stylevault.governance.index import staleness
from stylevault.governance.index.builds import FILES, FORMAT, HASHES, MANIFEST, sha256_file
from stylevault.governance.rules import policy_texts


@dataclass
class Verification:
    ok: bool
    folder: str
    index_id: str | None = None
    problems: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)  # reported, not problems: a changed policy file
    stale: str | None = None
    manifest: dict | None = None

    def as_dict(self) -> dict:
        summary = None
        if self.manifest:
            keys = ("index_id", "styleset", "policy", "count", "dim", "search", "built_at", "built_by")
            summary = {key: self.manifest.get(key) for key in keys}
            summary["encoder"] = self.manifest.get("encoder", {}).get("id")
        return {
            "ok": self.ok,
            "folder": self.folder,
            "index_id": self.index_id,
            "problems": self.problems,
            "differences": self.differences,
            "stale": self.stale,
            "manifest": summary,
        }


def read_manifest(folder: Path) -> tuple[dict, str]:
    path = folder / MANIFEST
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{folder}: not an index folder ({MANIFEST}: {exc.strerror})") from exc
    try:
        manifest = json.loads(data)
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadInput(f"{path}: not a {FORMAT} manifest")
    return manifest, hashlib.sha256(data).hexdigest()


def verify(
    catalogue: Catalogue, folder: str | os.PathLike, *, on: date | None = None, actor: str | None = None
) -> Verification:
    """Check every file hash, the manifest against the catalogue, and that every member is still
    cleared on the day; a newly found reason to be stale is recorded. Reports every problem found."""
    on = on or date.today()
    folder = Path(folder)
    result = Verification(ok=False, folder=str(folder))
    manifest, manifest_sha256 = read_manifest(folder)
    result.manifest, result.index_id = manifest, manifest.get("index_id")
    problems = result.problems
    files = manifest.get("files", {})
    for name in (*FILES, HASHES):
        path = folder / name
        if name not in files:
            problems.append(f"{name}: not listed in the manifest")
        elif not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != files[name]:
            problems.append(f"{name}: sha256 differs from the manifest (tampered or damaged)")
    extra = sorted(p.name for p in folder.iterdir() if p.name not in (*FILES, HASHES, MANIFEST))
    if extra:
        problems.append(f"files the manifest does not list: {', '.join(extra)}")
    ids, shas = manifest.get("member_ids", []), manifest.get("member_sha256", [])
    if len(ids) != manifest.get("count") or len(shas) != len(ids):
        problems.append("manifest: member lists do not match its count")
    with catalogue.read() as session:
        record = session.scalars(sa.select(IndexBuild).where(IndexBuild.index_id == result.index_id)).first()
        if record is None:
            problems.append(f"index {result.index_id} is not recorded in this catalogue")
        else:
            if record.manifest_sha256 != manifest_sha256:
                problems.append("manifest.json differs from the one recorded at build time (edited?)")
            problems += _against_catalogue(session, record, ids, shas)
            if record.stale:
                result.stale = record.stale_reason
    if not problems and record is not None and not record.stale:
        reason = _live_staleness(catalogue, record, on, result)
        if reason:
            with catalogue.write() as session:
                fresh = session.get(IndexBuild, record.id)
                staleness.mark_stale(session, actor or "system:index-verify", [fresh], reason)
            result.stale = reason
    if result.stale:
        problems.append(f"stale: {result.stale}")
    if len(problems) == bool(result.stale):  # the files are sound: check the arrays they hold
        problems += _check_arrays(folder, manifest)
    result.ok = not problems
    return result


def _against_catalogue(session: Session, record: IndexBuild, ids: list[int], shas: list[str]) -> list[str]:
    member, image = IndexMember.__table__, Image.__table__
    rows = session.execute(
        sa.select(member.c.position, member.c.image_id, image.c.sha256)
        .select_from(member.join(image, image.c.id == member.c.image_id))
        .where(member.c.build_id == record.id)
        .order_by(member.c.position)
    ).all()
    if [r.image_id for r in rows] != list(ids) or [r.sha256 for r in rows] != list(shas):
        return ["the manifest's members differ from the members recorded at build time"]
    return []


def _live_staleness(catalogue: Catalogue, record: IndexBuild, on: date, result: Verification) -> str | None:
    """Why a member is no longer cleared on `on` under the policy the build was made under. A policy
    file that differs now is a difference to report; a build that cannot be judged is a problem, and
    neither is a reason to mark it stale: the file is whatever the caller's search path finds."""
    with catalogue.read() as session:
        policy = policy_texts.built_under(session, record)
        if isinstance(policy, str):
            result.problems.append(f"cannot be judged: {policy}")
            return None
        difference = policy_texts.file_difference(record)
        if difference:
            result.differences.append(difference)
        return staleness.no_longer_cleared(session, record, policy, staleness.members_of(record), on)


def _check_arrays(folder: Path, manifest: dict) -> list[str]:
    import numpy as np
    from usearch.index import Index

    vectors = np.load(folder / "vectors.npy", mmap_mode="r")
    expected = (manifest["count"], manifest["dim"])
    if vectors.shape != expected or vectors.dtype != np.float16:
        return [f"vectors.npy: {vectors.dtype} {vectors.shape}, the manifest says float16 {expected}"]
    index = Index.restore(str(folder / "index.usearch"), view=True)
    if index is None or index.size != manifest["count"] or index.ndim != manifest["dim"]:
        return ["index.usearch: does not hold the manifest's members"]
    hashes = np.load(folder / HASHES, mmap_mode="r")
    per_member = manifest.get("near_copy", {}).get("per_member")
    if hashes.dtype != np.uint64 or hashes.shape != (manifest["count"], per_member):
        return [
            f"{HASHES}: {hashes.dtype} {hashes.shape}, "
            f"the manifest says uint64 ({manifest['count']}, {per_member})"
        ]
    return []
