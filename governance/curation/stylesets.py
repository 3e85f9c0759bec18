"""Style sets: named sets of images that stewards curate and publish as frozen versions.

A style set has a working membership that `add` and `remove` edit. `publish` freezes it as version N:
each member's id and the sha256 its bytes had, plus a fingerprint of the whole list. Versions are
immutable (database triggers refuse UPDATE and DELETE); `NAME@N` names version N, `NAME` the latest.
Every change is an audit event. Membership changes are set-based statements, so adding a whole
collection of a million images is one INSERT ... SELECT.
"""

from __future__ import annotations

import hashlib
import re

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.models import (
    Actor,
    Image,
    Licence,
    Source,
    StyleSet,
    StyleSetMember,
    StyleSetVersion,
    StyleSetVersionMember,
    utcnow,
)
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.views.images import resolve_many

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
AUDIT_IDS_LIMIT = 1000  # beyond this an audit event records the count and a hash of the ids


def parse_ref(ref: str) -> tuple[str, int | None]:
    """`NAME` or `NAME@N`."""
    name, at, version = ref.partition("@")
    if not NAME.match(name):
        raise BadInput(f"style set {ref!r}: a name is letters, digits, '.', '_' or '-' (up to 100)")
    if not at:
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise BadInput(f"style set {ref!r}: a version is NAME@N with N = 1, 2, ...")
    return name, int(version)


def _find(session: Session, name: str) -> StyleSet:
    styleset = session.scalars(sa.select(StyleSet).where(StyleSet.name == name)).first()
    if styleset is None:
        raise BadInput(f"style set {name!r} does not exist (create it with `stylevault styleset create`)")
    return styleset


def _editable(session: Session, ref: str) -> StyleSet:
    name, version = parse_ref(ref)
    if version is not None:
        raise Refused(f"{ref} is a published version and cannot change; edit {name} and publish again")
    return _find(session, name)


def resolve_version(session: Session, ref: str) -> tuple[StyleSet, StyleSetVersion]:
    """The version `NAME@N` names, or the latest published version of `NAME`."""
    name, number = parse_ref(ref)
    styleset = _find(session, name)
    query = sa.select(StyleSetVersion).where(StyleSetVersion.styleset_id == styleset.id)
    if number is None:
        version = session.scalars(query.order_by(StyleSetVersion.version.desc()).limit(1)).first()
        if version is None:
            raise BadInput(
                f"style set {name!r} has no published version yet (run `stylevault styleset publish`)"
            )
    else:
        version = session.scalars(query.where(StyleSetVersion.version == number)).first()
        if version is None:
            raise BadInput(f"style set version {ref} does not exist")
    return styleset, version


def _ids_for_audit(ids: list[int]) -> dict:
    ids = sorted(ids)
    if len(ids) <= AUDIT_IDS_LIMIT:
        return {"count": len(ids), "image_ids": ids}
    digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()
    return {"count": len(ids), "image_ids_sha256": digest}


def create(session: Session, actor_name: str | None, name: str, description: str | None = None) -> dict:
    actor = actors.require(session, actor_name, "styleset.edit")
    parse_ref(name)
    if "@" in name:
        raise BadInput(f"style set name {name!r}: '@' separates a name from a version")
    if session.scalars(sa.select(StyleSet.id).where(StyleSet.name == name)).first() is not None:
        raise BadInput(f"style set {name!r} already exists")
    styleset = StyleSet(name=name, description=description, owner_id=actor.id)
    session.add(styleset)
    session.flush()
    state = {"name": name, "description": description, "owner": actor.name}
    audit.record(session, actor.name, [audit.Change("styleset.create", "styleset", name, None, state)])
    return state


def add(
    session: Session,
    actor_name: str | None,
    ref: str,
    images: list[str] | None = None,
    *,
    collection: str | None = None,
) -> dict:
    """Add images (ids, sha256s, prefixes) and/or every image with a source in `collection`."""
    actor = actors.require(session, actor_name, "styleset.edit")
    styleset = _editable(session, ref)
    if not images and not collection:
        raise BadInput("styleset add: name images, or --collection")
    member = StyleSetMember.__table__
    candidates: list[sa.Select] = []
    if images:
        ids = [image.id for image in resolve_many(session, images)]
        candidates.append(
            sa.select(Image.__table__.c.id.label("image_id")).where(Image.__table__.c.id.in_(ids))
        )
    if collection:
        s = Source.__table__
        found = session.execute(sa.select(sa.func.count()).where(s.c.collection == collection)).scalar()
        if not found:
            raise BadInput(f"--collection: no image has a source in collection {collection!r}")
        candidates.append(sa.select(s.c.image_id).where(s.c.collection == collection))
    wanted = sa.union(*candidates).subquery() if len(candidates) > 1 else candidates[0].subquery()
    new = (
        sa.select(wanted.c.image_id)
        .distinct()
        .where(
            ~sa.exists().where(member.c.styleset_id == styleset.id, member.c.image_id == wanted.c.image_id)
        )
    )
    added = list(session.execute(new).scalars())
    if added:
        now = utcnow()
        session.execute(
            sa.insert(member).from_select(
                ["styleset_id", "image_id", "added_by", "added_at"],
                sa.select(
                    sa.literal(styleset.id), new.subquery().c.image_id, sa.literal(actor.id), sa.literal(now)
                ),
            )
        )
        audit.record(
            session,
            actor.name,
            [audit.Change("styleset.add", "styleset", styleset.name, None, _ids_for_audit(added))],
        )
    return {"name": styleset.name, "added": len(added), "members": _count(session, styleset.id)}


def remove(session: Session, actor_name: str | None, ref: str, images: list[str]) -> dict:
    actor = actors.require(session, actor_name, "styleset.edit")
    styleset = _editable(session, ref)
    ids = [image.id for image in resolve_many(session, images)]
    member = StyleSetMember.__table__
    present = list(
        session.execute(
            sa.select(member.c.image_id).where(
                member.c.styleset_id == styleset.id, member.c.image_id.in_(ids)
            )
        ).scalars()
    )
    missing = sorted(set(ids) - set(present))
    if missing:
        raise BadInput(f"image {missing[0]} is not a member of {styleset.name}")
    session.execute(sa.delete(member).where(member.c.styleset_id == styleset.id, member.c.image_id.in_(ids)))
    audit.record(
        session,
        actor.name,
        [audit.Change("styleset.remove", "styleset", styleset.name, _ids_for_audit(present), None)],
    )
    return {"name": styleset.name, "removed": len(present), "members": _count(session, styleset.id)}


def _count(session: Session, styleset_id: int) -> int:
    member = StyleSetMember.__table__
    return session.execute(sa.select(sa.func.count()).where(member.c.styleset_id == styleset_id)).scalar()


def members_sha256(rows) -> str:
    """Fingerprint of a membership: sha256 over "image_id:sha256" lines in image-id order."""
    digest = hashlib.sha256()
    for image_id, sha256 in rows:
        digest.update(f"{image_id}:{sha256}\n".encode())
    return digest.hexdigest()


def publish(session: Session, actor_name: str | None, ref: str, note: str | None = None) -> dict:
    """Freeze the working membership as the next version; refuse an empty or unchanged one."""
    actor = actors.require(session, actor_name, "styleset.edit")
    styleset = _editable(session, ref)
    # Lock the style set row so two publishes of one set cannot both take version N.
    session.execute(sa.select(StyleSet.id).where(StyleSet.id == styleset.id).with_for_update(key_share=True))
    member, image = StyleSetMember.__table__, Image.__table__
    current = (
        sa.select(member.c.image_id, image.c.sha256)
        .join(image, image.c.id == member.c.image_id)
        .where(member.c.styleset_id == styleset.id)
        .order_by(member.c.image_id)
    )
    rows = session.execute(current).all()
    if not rows:
        raise Refused(f"{styleset.name} has no members to publish")
    fingerprint = members_sha256(rows)
    latest = session.scalars(
        sa.select(StyleSetVersion)
        .where(StyleSetVersion.styleset_id == styleset.id)
        .order_by(StyleSetVersion.version.desc())
        .limit(1)
    ).first()
    if latest is not None and latest.members_sha256 == fingerprint:
        raise Refused(f"{styleset.name} has not changed since {styleset.name}@{latest.version}")
    version = StyleSetVersion(
        styleset_id=styleset.id,
        version=(latest.version + 1) if latest else 1,
        members=len(rows),
        members_sha256=fingerprint,
        note=note,
        published_by=actor.id,
    )
    session.add(version)
    session.flush()
    frozen = current.subquery()
    session.execute(
        sa.insert(StyleSetVersionMember.__table__).from_select(
            ["version_id", "image_id", "sha256"],
            sa.select(sa.literal(version.id), frozen.c.image_id, frozen.c.sha256),
        )
    )
    state = {
        "version": version.version,
        "members": version.members,
        "members_sha256": fingerprint,
        "note": note,
    }
    audit.record(
        session,
        actor.name,
        [audit.Change("styleset.publish", "styleset", f"{styleset.name}@{version.version}", None, state)],
    )
    return {"name": styleset.name, **state}


def version_members(session: Session, version: StyleSetVersion) -> list[dict]:
    """The members of a version with their current state and licence (one SELECT)."""
    vm, image, lic = StyleSetVersionMember.__table__, Image.__table__, Licence.__table__
    query = (
        sa.select(vm.c.image_id, vm.c.sha256, image.c.state, lic.c.spdx, lic.c.status.label("licence_status"))
        .select_from(vm.join(image, image.c.id == vm.c.image_id).join(lic, lic.c.image_id == vm.c.image_id))
        .where(vm.c.version_id == version.id)
        .order_by(vm.c.image_id)
    )
    return [dict(row._mapping) for row in session.execute(query)]


def diff(session: Session, name: str, spec: str) -> dict:
    """Members added and removed between two versions, `A..B`."""
    old_ref, dots, new_ref = spec.partition("..")
    if not dots or not old_ref.isdigit() or not new_ref.isdigit():
        raise BadInput(f"--diff {spec!r}: expected two versions as A..B, e.g. 2..3")
    _, old = resolve_version(session, f"{name}@{old_ref}")
    _, new = resolve_version(session, f"{name}@{new_ref}")
    vm = StyleSetVersionMember.__table__

    def only_in(first: StyleSetVersion, second: StyleSetVersion) -> list[dict]:
        inner = vm.alias("other")
        query = (
            sa.select(vm.c.image_id, vm.c.sha256)
            .where(vm.c.version_id == first.id)
            .where(~sa.exists().where(inner.c.version_id == second.id, inner.c.image_id == vm.c.image_id))
            .order_by(vm.c.image_id)
        )
        return [dict(row._mapping) for row in session.execute(query)]

    return {
        "name": name,
        "from": old.version,
        "to": new.version,
        "added": only_in(new, old),
        "removed": only_in(old, new),
    }


def show(session: Session, ref: str, *, members: bool = False) -> dict:
    name, number = parse_ref(ref)
    styleset = _find(session, name)
    owner = session.get(Actor, styleset.owner_id)
    names = dict(session.execute(sa.select(Actor.id, Actor.name)).all())
    versions = session.scalars(
        sa.select(StyleSetVersion)
        .where(StyleSetVersion.styleset_id == styleset.id)
        .order_by(StyleSetVersion.version)
    ).all()
    result = {
        "name": styleset.name,
        "description": styleset.description,
        "owner": owner.name if owner else None,
        "created_at": styleset.created_at,
        "working_members": _count(session, styleset.id),
        "versions": [
            {
                "version": v.version,
                "members": v.members,
                "members_sha256": v.members_sha256,
                "note": v.note,
                "published_by": names.get(v.published_by),
                "published_at": v.published_at,
            }
            for v in versions
        ],
    }
    if number is not None or members:
        if number is None and not versions:
            result["members"] = []
        else:
            _, version = resolve_version(session, ref)
            result["version"] = version.version
            result["members"] = version_members(session, version)
    return result


def listing(session: Session) -> list[dict]:
    s, v, a = StyleSet.__table__, StyleSetVersion.__table__, Actor.__table__
    latest = sa.select(sa.func.max(v.c.version)).where(v.c.styleset_id == s.c.id).scalar_subquery()
    member = StyleSetMember.__table__
    working = sa.select(sa.func.count()).where(member.c.styleset_id == s.c.id).scalar_subquery()
    query = (
        sa.select(
            s.c.name,
            s.c.description,
            a.c.name.label("owner"),
            latest.label("latest_version"),
            working.label("working_members"),
        )
        .select_from(s.join(a, a.c.id == s.c.owner_id))
        .order_by(s.c.name)
    )
    return [dict(row._mapping) for row in session.execute(query)]
