"""Cleared index builds (DESIGN.md rule 6): building one, and the records of builds.

`build` embeds the members of one frozen style-set version that one policy clears on the day, and
writes, to a temporary folder renamed into place at the end:

    vectors.npy     (N, D) float16, L2-normalised, row i = member i: the exact neighbour embeddings
    index.usearch   usearch index over the same rows (cosine); searched exactly below HNSW_THRESHOLD
    members.jsonl   row i: image id, sha256, licence, attribution, obligations
    manifest.json   what was built from what (style-set version, policy and its hash, encoder and its
                    weights hash, catalogue revision, build time), the members in order, and the
                    sha256 of every other file

The build is recorded in the catalogue (with every member) and the audit chain. A build goes stale,
recorded and audited, when one of its members stops being cleared: revoked, its licence changed to
one the policy refuses, expired, opted out. A change in an image's standing marks it at once
(governance/standing); `verify` (index/verification.py) re-judges every member on the day and marks
what time alone changed (expiry); index/staleness.py records the mark.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit, liveness
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import (
    Actor,
    Image,
    Licence,
    Source,
    StyleSet,
    StyleSetVersion,
    StyleSetVersionMember,
    utcnow,
)
from stylevault.governance.catalogue.output_models import IndexBuild, IndexMember
from stylevault.governance.curation import clearance
from stylevault.governance.curation.stylesets import resolve_version
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.index import copyhash, encoders, staleness
from stylevault.governance.pictures import imaging
from stylevault.governance.rules import policy_texts
from stylevault.governance.rules.policy import Policy
from stylevault.governance.rules.policy_files import load_policy

FORMAT = "stylevault-index/1"
MANIFEST = "manifest.json"
FILES = ("vectors.npy", "index.usearch", "members.jsonl")
HASHES = "phashes.npy"  # (N, 19) uint64 member and crop phashes for the near-copy check
HNSW_THRESHOLD = 10_000  # below this many members search is exact; from here on HNSW
HNSW = {"connectivity": 16, "expansion_add": 128, "expansion_search": 64}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- build


def member_reader(session: Session, version_id: int, shas: list[str]) -> Callable[[str], object]:
    """read(sha256) -> upright RGB image of one of `shas` (members of the style-set version), from the
    first source file whose bytes still hash to it; any other sha256 is refused. What an index build
    embeds and what a trainer is handed: images, never a path."""
    vm, source = StyleSetVersionMember.__table__, Source.__table__
    places: dict[str, list[str]] = {}
    wanted = set(shas)
    query = (
        sa.select(vm.c.sha256, source.c.path)
        .select_from(vm.join(source, source.c.image_id == vm.c.image_id))
        .where(vm.c.version_id == version_id, source.c.path.is_not(None))
        .order_by(source.c.id)
    )
    for sha, path in session.execute(query):
        if sha in wanted:
            places.setdefault(sha, []).append(path)

    def read(sha: str):
        if sha not in wanted:
            raise Refused(f"image sha256 {str(sha)[:16]}: not a member of the index")
        tried = places.get(sha, [])
        for path in tried:
            try:
                data = Path(path).read_bytes()
            except OSError:
                continue
            if hashlib.sha256(data).hexdigest() == sha:
                return imaging.decode(data).rgb
        looked = ", ".join(tried) or "no source has a file path"
        raise BadInput(
            f"image sha256 {sha[:16]}: no readable source file with these bytes (looked at: {looked})"
        )

    return read


@dataclass
class Built:
    index_id: str
    path: str
    manifest_sha256: str
    members: int
    embedded: int  # newly embedded; the rest came from the embedding cache
    search: str
    excluded: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class _Cleared:
    """What a build reads before it writes anything: who builds what, the members the policy clears
    on the day (in order), and their embeddings and near-copy hashes."""

    actor: str
    styleset: str
    version: int
    members_sha256: str
    version_id: int
    check: clearance.Check
    members: list[dict]
    revision: dict
    encoder: encoders.Encoder
    vectors: object  # (N, D) float32, row i = member i
    embedded: int
    hashes: object  # (N, 19) uint64


def build(
    catalogue: Catalogue,
    actor_name: str | None,
    ref: str,
    policy_name: str,
    encoder_spec: str,
    out: str | os.PathLike,
    *,
    allow_download: bool = False,
    on: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Built:
    """Build the cleared index of style-set version `ref` under `policy_name` into folder `out`."""

    encoders.require_generation_extra()
    out = liveness.fresh_out(
        out, "already exists; an index is never overwritten", advice="choose a new folder; "
    )
    on = on or date.today()
    policy = load_policy(policy_name)
    # 1. the cleared members, embedded (a read transaction: nothing is written yet)
    cleared = _gather(catalogue, actor_name, ref, policy, encoder_spec, allow_download, on, progress)
    index_id = uuid.uuid4().hex
    search = "exact" if len(cleared.members) < HNSW_THRESHOLD else "hnsw"
    with liveness.staged(catalogue, "index", index_id, out) as tmp:
        # 2. the index files, into the hidden folder
        manifest = _write(tmp, index_id, search, policy, on, cleared)
        manifest_sha256 = sha256_file(tmp / MANIFEST)
        with catalogue.write() as session:
            # 3. the record, if the cleared set held meanwhile; 4. the folder renamed into place
            record = _record_build(
                session,
                actor_name,
                ref,
                policy,
                on,
                cleared,
                index_id=index_id,
                out=out,
                search=search,
                manifest_sha256=manifest_sha256,
            )
            _audit_build(session, record, policy, cleared, manifest)
            os.replace(tmp, out)  # inside the transaction: if the rename fails, nothing is recorded
    return Built(
        index_id,
        str(out),
        manifest_sha256,
        len(cleared.members),
        cleared.embedded,
        search,
        cleared.check.excluded,
    )


def _gather(
    catalogue: Catalogue,
    actor_name: str | None,
    ref: str,
    policy: Policy,
    encoder_spec: str,
    allow_download: bool,
    on: date,
    progress: Callable[[int, int], None] | None,
) -> _Cleared:
    """Who may build, what the policy clears of version `ref` on the day (refused if nothing), and
    those members embedded (from the embedding cache where it has them) and near-copy hashed."""
    with catalogue.read() as session:
        actor = actors.require(session, actor_name, "index.build")
        styleset, version = resolve_version(session, ref)
        check = clearance.check(session, policy, ref, on=on)
        members = list(clearance.members(session, policy, ref, cleared=True, on=on))
        if not members:
            excluded = ", ".join(f"{n} {reason}" for reason, n in check.excluded.items())
            raise Refused(
                f"no member of {styleset.name}@{version.version} is cleared under {policy.name} "
                f"({excluded}); nothing to index"
            )
        revision = audit.revision(session)
        encoder = encoders.load_encoder(encoder_spec, allow_download=allow_download)
        vectors, embedded = _embed(catalogue, session, version.id, encoder, members, progress)
        hashes = copyhash.member_hashes(catalogue.store, _with_phash(session, version.id, members))
        return _Cleared(
            actor.name,
            styleset.name,
            version.version,
            version.members_sha256,
            version.id,
            check,
            members,
            revision,
            encoder,
            vectors,
            embedded,
            hashes,
        )


def _embed(catalogue: Catalogue, session: Session, version_id: int, encoder, members, progress):
    """(vectors, newly embedded): the members' embeddings, the images read only where the cache
    lacks them."""
    cache = encoders.EmbeddingCache(catalogue.store, encoder)
    shas = [m["sha256"] for m in members]
    cached = cache.get(shas)
    reader = member_reader(session, version_id, [sha for sha in shas if sha not in cached])
    try:
        return encoders.embed(
            encoder,
            cache,
            shas,
            reader,
            progress=(lambda n: progress(n, len(shas))) if progress else None,
        )
    finally:
        cache.close()


def _record_build(
    session: Session,
    actor_name: str | None,
    ref: str,
    policy: Policy,
    on: date,
    cleared: _Cleared,
    *,
    index_id: str,
    out: Path,
    search: str,
    manifest_sha256: str,
) -> IndexBuild:
    """The build and its members recorded, in the write transaction, once the members are locked and
    the actor's role and the cleared set are checked again."""
    _lock_members(session, cleared.version_id)
    actor = actors.require(session, actor_name, "index.build")
    policy_texts.record(session, policy)
    record = IndexBuild(
        index_id=index_id,
        path=str(out),
        styleset_version_id=cleared.version_id,
        policy=policy.name,
        policy_sha256=policy.hash,
        encoder_id=cleared.encoder.id,
        encoder_weights_sha256=cleared.encoder.weights_sha256,
        manifest_sha256=manifest_sha256,
        members=len(cleared.members),
        search=search,
        built_by=actor.id,
    )
    session.add(record)
    session.flush()
    session.execute(
        sa.insert(IndexMember.__table__),
        [
            {"build_id": record.id, "image_id": m["image_id"], "position": i}
            for i, m in enumerate(cleared.members)
        ],
    )
    _still_cleared(session, policy, ref, on, record)
    return record


def _audit_build(
    session: Session, record: IndexBuild, policy: Policy, cleared: _Cleared, manifest: dict
) -> None:
    audit.record(
        session,
        cleared.actor,
        [
            audit.Change(
                "index.build",
                "index",
                record.index_id,
                None,
                {
                    "path": record.path,
                    "styleset": f"{cleared.styleset}@{cleared.version}",
                    "policy": policy.name,
                    "policy_sha256": policy.hash,
                    "encoder": cleared.encoder.id,
                    "manifest_sha256": record.manifest_sha256,
                    "members": len(cleared.members),
                    "excluded": cleared.check.excluded,
                    "catalogue_revision": manifest["catalogue_revision"],
                },
            )
        ],
    )


def _lock_members(session: Session, version_id: int) -> None:
    """Share-lock the version's image rows, then their licence rows (id order, images before
    licences, as review and licence changes take theirs) until the record commits: a revocation or
    licence change either committed first, and the recheck below sees it, or waits for the record,
    and its re-judging (governance/standing) then finds this index. (SQLite's writer lock already
    serialises the two.)"""
    vm, image, lic = StyleSetVersionMember.__table__, Image.__table__, Licence.__table__
    for table, key in ((image, image.c.id), (lic, lic.c.image_id)):
        session.execute(
            sa.select(key)
            .select_from(table.join(vm, vm.c.image_id == key))
            .where(vm.c.version_id == version_id)
            .order_by(key)
            .with_for_update(read=True, of=table)
        )


def _still_cleared(session: Session, policy: Policy, ref: str, on: date, record: IndexBuild) -> None:
    """Embedding takes time: refuse to record a build if the cleared set moved meanwhile. Asked of
    the members just recorded (the refusal rolls them back): none of them may have lost its
    clearance (`clearance.not_cleared`) and no other member of the version may have gained it."""
    held = staleness.members_of(record)
    lost = clearance.not_cleared(session, policy, record.styleset_version_id, among=held, on=on, limit=1)
    if lost or clearance.check(session, policy, ref, on=on).cleared != record.members:
        raise Refused("the cleared members changed while the index was being built; run the build again")


def write_vectors(folder: Path, vectors):
    """vectors.npy (float16) and index.usearch over its rows (key = row); returns the float16 matrix.

    Rows are keyed by position, so a search result maps to members through the manifest's order."""
    import numpy as np
    from usearch.index import Index

    matrix = np.ascontiguousarray(vectors, dtype=np.float16)  # (N, D)
    np.save(folder / "vectors.npy", matrix)
    index = Index(ndim=matrix.shape[1], metric="cos", dtype="f16", **HNSW)
    # copy=False: usearch reads the rows from `matrix`, which outlives the save (1.7 GiB less at 1M x 768).
    index.add(np.arange(len(matrix), dtype=np.uint64), matrix, copy=False)
    index.save(str(folder / "index.usearch"))
    return matrix


CENTROID_CHUNK = 65536  # rows of the float16 vector file summed at a time


def centroid(matrix):
    """The L2-normalised mean direction of the rows of `matrix` (N, D), summed in float64 a chunk at a
    time (a memory map is never read whole): the style centroid outputs are scored against."""
    import numpy as np

    total = np.zeros(matrix.shape[1], dtype=np.float64)
    for start in range(0, len(matrix), CENTROID_CHUNK):
        total += np.asarray(matrix[start : start + CENTROID_CHUNK], dtype=np.float64).sum(axis=0)
    norm = np.linalg.norm(total)
    return (total / norm if norm > 0 else total).astype(np.float32)


def _with_phash(session: Session, version_id: int, members: list[dict]) -> list[dict]:
    """The members with the phash ingest recorded for each (one join over the version's members)."""
    vm, image = StyleSetVersionMember.__table__, Image.__table__
    phash = dict(
        session.execute(
            sa.select(image.c.id, image.c.phash)
            .select_from(vm.join(image, image.c.id == vm.c.image_id))
            .where(vm.c.version_id == version_id)
        ).all()
    )
    return [{"sha256": m["sha256"], "phash": phash[m["image_id"]]} for m in members]


def _write(tmp: Path, index_id: str, search: str, policy: Policy, on: date, cleared: _Cleared) -> dict:
    """The index files and their manifest, written into `tmp`; returns the manifest."""
    import numpy as np

    members = cleared.members
    matrix = write_vectors(tmp, cleared.vectors)
    np.save(tmp / HASHES, cleared.hashes)
    with open(tmp / "members.jsonl", "w", encoding="utf-8") as handle:
        for position, member in enumerate(members):
            handle.write(
                json.dumps(
                    {
                        "position": position,
                        "image_id": member["image_id"],
                        "sha256": member["sha256"],
                        "licence": member["spdx"],
                        "relied_on": member["relied_on"],
                        "attribution": member["attribution"],
                        "obligations": member["obligations"],
                    },
                    sort_keys=True,
                )
                + "\n"
            )
    manifest = {
        "format": FORMAT,
        "index_id": index_id,
        "built_at": audit.timestamp(utcnow()),
        "built_by": cleared.actor,
        "judged_on": on.isoformat(),
        "styleset": {
            "name": cleared.styleset,
            "version": cleared.version,
            "members_sha256": cleared.members_sha256,
        },
        "policy": {"name": policy.name, "sha256": policy.hash},
        "encoder": cleared.encoder.describe(),
        "catalogue_revision": cleared.revision,
        "search": {"kind": search, "metric": "cos", "dtype": "f16", "hnsw_threshold": HNSW_THRESHOLD, **HNSW},
        "count": len(members),
        "dim": int(matrix.shape[1]),
        "centroid": [round(float(x), 7) for x in centroid(matrix)],
        "excluded": cleared.check.excluded,
        "member_ids": [m["image_id"] for m in members],
        "member_sha256": [m["sha256"] for m in members],
        "near_copy": copyhash.describe(),
        "files": {name: sha256_file(tmp / name) for name in (*FILES, HASHES)},
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


# ---------------------------------------------------------------- listing


def listing(session: Session, *, image_id: int | None = None) -> list[dict]:
    """Index builds, oldest first; with `image_id`, only those that hold that image (what a
    takedown has to reach)."""
    b, v, s, a = IndexBuild.__table__, StyleSetVersion.__table__, StyleSet.__table__, Actor.__table__
    query = (
        sa.select(
            b.c.index_id,
            b.c.path,
            s.c.name.label("styleset"),
            v.c.version,
            b.c.policy,
            b.c.encoder_id,
            b.c.members,
            b.c.search,
            a.c.name.label("built_by"),
            b.c.built_at,
            b.c.stale,
            b.c.stale_reason,
        )
        .select_from(
            b.join(v, v.c.id == b.c.styleset_version_id)
            .join(s, s.c.id == v.c.styleset_id)
            .join(a, a.c.id == b.c.built_by)
        )
        .order_by(b.c.id)
    )
    if image_id is not None:
        member = IndexMember.__table__
        query = query.where(sa.exists().where(member.c.build_id == b.c.id, member.c.image_id == image_id))
    return [dict(row._mapping) for row in session.execute(query)]
