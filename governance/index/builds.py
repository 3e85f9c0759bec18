"""Cleared index builds (DESIGN.md rules 6 and 7): build, verify, and going stale.

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
one the policy refuses, expired, opted out. Revocations and licence changes mark it at once;
`verify` re-judges every member on the day and marks what time alone changed (expiry).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
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
    IndexBuild,
    IndexMember,
    Licence,
    Source,
    StyleSet,
    StyleSetVersion,
    StyleSetVersionMember,
    utcnow,
)
from stylevault.governance.curation import clearance
from stylevault.governance.curation.stylesets import resolve_version
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.index import copyhash, encoders
from stylevault.governance.pictures import imaging
from stylevault.governance.rules import policy_texts
from stylevault.governance.rules.policy import REASON_TEXT, Policy, load_policy

FORMAT = "stylevault-index/1"
MANIFEST = "manifest.json"
FILES = ("vectors.npy", "index.usearch", "members.jsonl")
HASHES = "phashes.npy"  # (N, 19) uint64 member and crop phashes for the near-copy check; optional
HNSW_THRESHOLD = 10_000  # below this many members search is exact; from here on HNSW
HNSW = {"connectivity": 16, "expansion_add": 128, "expansion_search": 64}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- build


def _image_reader(session: Session, version_id: int, shas: list[str]) -> Callable[[str], object]:
    """read(sha256) -> upright RGB image, from the first source file whose bytes still hash to it."""
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
    out = Path(out).absolute()
    if out.exists():
        raise BadInput(
            f"--out {out}: already exists; an index is never overwritten (choose a new folder; "
            f"{liveness.interrupted_hint(out)})"
        )
    if not out.parent.is_dir():
        raise BadInput(f"--out {out}: folder {out.parent} does not exist")
    on = on or date.today()
    policy = load_policy(policy_name)
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
        cache = encoders.EmbeddingCache(catalogue.store, encoder)
        shas = [m["sha256"] for m in members]
        cached = cache.get(shas)
        reader = _image_reader(session, version.id, [sha for sha in shas if sha not in cached])
        try:
            vectors, embedded = encoders.embed(
                encoder,
                cache,
                shas,
                reader,
                progress=(lambda n: progress(n, len(shas))) if progress else None,
            )
        finally:
            cache.close()
        hashes = copyhash.member_hashes(catalogue.store, _with_phash(session, version.id, members))
        names = {
            "actor": actor.name,
            "styleset": styleset.name,
            "version": version.version,
            "members_sha256": version.members_sha256,
            "version_id": version.id,
        }
    index_id = uuid.uuid4().hex
    search = "exact" if len(members) < HNSW_THRESHOLD else "hnsw"
    tmp = out.parent / f".{out.name}.tmp-{index_id}"
    with liveness.held(catalogue, "index", index_id):  # `doctor` leaves a live build's folders alone
        tmp.mkdir()
        try:
            manifest = _write(
                tmp, index_id, members, vectors, hashes, search, encoder, policy, check, revision, names, on
            )
            manifest_sha256 = sha256_file(tmp / MANIFEST)
            with catalogue.write() as session:
                _lock_members(session, names["version_id"])
                _still_cleared(session, policy, ref, on, members)
                actor = actors.require(session, actor_name, "index.build")
                policy_texts.record(session, policy)
                record = IndexBuild(
                    index_id=index_id,
                    path=str(out),
                    styleset_version_id=names["version_id"],
                    policy=policy.name,
                    policy_sha256=policy.hash,
                    encoder_id=encoder.id,
                    encoder_weights_sha256=encoder.weights_sha256,
                    manifest_sha256=manifest_sha256,
                    members=len(members),
                    search=search,
                    built_by=actor.id,
                )
                session.add(record)
                session.flush()
                session.execute(
                    sa.insert(IndexMember.__table__),
                    [
                        {"build_id": record.id, "image_id": m["image_id"], "position": i}
                        for i, m in enumerate(members)
                    ],
                )
                audit.record(
                    session,
                    actor.name,
                    [
                        audit.Change(
                            "index.build",
                            "index",
                            index_id,
                            None,
                            {
                                "path": str(out),
                                "styleset": f"{names['styleset']}@{names['version']}",
                                "policy": policy.name,
                                "policy_sha256": policy.hash,
                                "encoder": encoder.id,
                                "manifest_sha256": manifest_sha256,
                                "members": len(members),
                                "excluded": check.excluded,
                                "catalogue_revision": manifest["catalogue_revision"],
                            },
                        )
                    ],
                )
                os.replace(tmp, out)  # inside the transaction: if the rename fails, nothing is recorded
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Built(index_id, str(out), manifest_sha256, len(members), embedded, search, check.excluded)


def _lock_members(session: Session, version_id: int) -> None:
    """Share-lock the version's image rows, then their licence rows (id order, images before
    licences, as review and licence changes take theirs) until the record commits: a revocation or
    licence change either committed first, and the recheck below sees it, or waits for the record,
    and its restale then finds this index. (SQLite's writer lock already serialises the two.)"""
    vm, image, lic = StyleSetVersionMember.__table__, Image.__table__, Licence.__table__
    for table, key in ((image, image.c.id), (lic, lic.c.image_id)):
        session.execute(
            sa.select(key)
            .select_from(table.join(vm, vm.c.image_id == key))
            .where(vm.c.version_id == version_id)
            .order_by(key)
            .with_for_update(read=True, of=table)
        )


def _still_cleared(session: Session, policy: Policy, ref: str, on: date, members: list[dict]) -> None:
    """Embedding takes time: refuse to record a build if the cleared set moved meanwhile."""
    now = [m["image_id"] for m in clearance.members(session, policy, ref, cleared=True, on=on)]
    if now != [m["image_id"] for m in members]:
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


def _write(
    tmp: Path, index_id, members, vectors, hashes, search, encoder, policy, check, revision, names, on
) -> dict:
    import numpy as np

    matrix = write_vectors(tmp, vectors)
    np.save(tmp / HASHES, hashes)
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
        "built_by": names["actor"],
        "judged_on": on.isoformat(),
        "styleset": {
            "name": names["styleset"],
            "version": names["version"],
            "members_sha256": names["members_sha256"],
        },
        "policy": {"name": policy.name, "sha256": policy.hash},
        "encoder": encoder.describe(),
        "catalogue_revision": revision,
        "search": {"kind": search, "metric": "cos", "dtype": "f16", "hnsw_threshold": HNSW_THRESHOLD, **HNSW},
        "count": len(members),
        "dim": int(matrix.shape[1]),
        "centroid": [round(float(x), 7) for x in centroid(matrix)],
        "excluded": check.excluded,
        "member_ids": [m["image_id"] for m in members],
        "member_sha256": [m["sha256"] for m in members],
        "near_copy": copyhash.describe(),
        "files": {name: sha256_file(tmp / name) for name in (*FILES, HASHES)},
    }
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


# ---------------------------------------------------------------- going stale


def _stale(session: Session, actor: str | None, builds: list[IndexBuild], reason: str) -> list[str]:
    marked = []
    now = utcnow()
    for record in builds:
        if record.stale:
            continue
        record.stale, record.stale_reason, record.stale_at = True, reason, now
        session.add(record)
        marked.append(record.index_id)
    session.flush()
    audit.record(
        session,
        actor,
        [
            audit.Change(
                "index.stale", "index", index_id, {"stale": False}, {"stale": True, "reason": reason}
            )
            for index_id in marked
        ],
    )
    return marked


def holding(session: Session, image_ids: list[int] | sa.Select) -> list[str]:
    """The fresh indexes that hold any of `image_ids` (what a change to them would re-judge)."""
    member = IndexMember.__table__
    held = sa.select(member.c.build_id).where(member.c.image_id.in_(image_ids))
    query = sa.select(IndexBuild.index_id).where(~IndexBuild.stale, IndexBuild.id.in_(held))
    return list(session.scalars(query.order_by(IndexBuild.id)))


def restale(
    session: Session, actor: str | None, image_ids: list[int], why: str, on: date | None = None
) -> list[str]:
    """Re-judge `image_ids` in every fresh index that holds them, under that index's policy; mark
    stale each index in which one of them is no longer cleared. Returns the index ids marked."""
    if not image_ids:
        return []
    on = on or date.today()
    member = IndexMember.__table__
    builds = session.scalars(
        sa.select(IndexBuild)
        .where(~IndexBuild.stale)
        .where(IndexBuild.id.in_(sa.select(member.c.build_id).where(member.c.image_id.in_(image_ids))))
    ).all()
    marked = []
    for record in builds:
        held = list(
            session.execute(
                sa.select(member.c.image_id).where(
                    member.c.build_id == record.id, member.c.image_id.in_(image_ids)
                )
            ).scalars()
        )
        reason = _no_longer_cleared(session, record, held, on)
        if reason:
            marked += _stale(session, actor, [record], f"{why}: {reason}")
    return marked


def _no_longer_cleared(session: Session, record: IndexBuild, image_ids: list[int], on: date) -> str | None:
    policy = policy_texts.built_under(session, record)
    if isinstance(policy, str):
        return policy
    image, lic = Image.__table__, Licence.__table__
    rows = session.execute(
        sa.select(
            image.c.id,
            image.c.state,
            lic.c.status,
            lic.c.spdx,
            lic.c.opt_out,
            lic.c.data_mining,
            lic.c.expires_on,
        )
        .select_from(image.join(lic, lic.c.image_id == image.c.id))
        .where(image.c.id.in_(image_ids))
        .order_by(image.c.id)
    ).all()
    for row in rows:
        decision = policy.decide(
            state=row.state,
            licence_status=row.status,
            spdx=row.spdx,
            opt_out=row.opt_out,
            data_mining=row.data_mining,
            expires_on=row.expires_on,
            today=on,
        )
        if not decision.cleared:
            why = decision.detail or REASON_TEXT[decision.reason]
            return f"image {row.id} is no longer cleared under {record.policy} ({why})"
    return None


# ---------------------------------------------------------------- verify


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
        if name == HASHES and name not in files and not path.exists():
            continue  # an index built before the near-copy hashes: scoring falls back to the catalogue
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
                _stale(session, actor or "system:index-verify", [fresh], reason)
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
        version = session.get(StyleSetVersion, record.styleset_version_id)
        styleset = session.get(StyleSet, version.styleset_id)
        ref = f"{styleset.name}@{version.version}"
        member = IndexMember.__table__
        held = set(
            session.execute(sa.select(member.c.image_id).where(member.c.build_id == record.id)).scalars()
        )
        for row in clearance.members(session, policy, ref, cleared=False, on=on):
            if row["image_id"] in held:
                return f"image {row['image_id']} is no longer cleared under {policy.name} ({row['detail']})"
    return None


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
    if (folder / HASHES).exists():
        hashes = np.load(folder / HASHES, mmap_mode="r")
        per_member = manifest.get("near_copy", {}).get("per_member")
        if hashes.dtype != np.uint64 or hashes.shape != (manifest["count"], per_member):
            return [
                f"{HASHES}: {hashes.dtype} {hashes.shape}, "
                f"the manifest says uint64 ({manifest['count']}, {per_member})"
            ]
    return []


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
