"""Actors and their roles, and the role check every write goes through (DESIGN.md rule 5)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import ROLES, Actor, ActorPassword, ActorRole
from stylevault.governance.errors import BadInput, Refused

# Which roles may perform each write. Admin manages actors and nothing else: separation of duties.
PERMISSIONS = {
    "actors.manage": {"admin"},
    "ingest": {"steward"},
    "licence.set": {"legal"},
    "licence.alias": {"legal"},
    "review": {"legal"},
    "styleset.edit": {"steward"},
    "index.build": {"steward"},
    "doctor.repair": {"steward"},  # quarantining unrecorded indexes and outputs, closing dead runs
    "generate": {"generator"},
    # Output review: legal or a reviewer signs outputs off; only legal overrides a near-copy flag.
    "output.release": {"legal", "reviewer"},
    "output.score": {"legal", "reviewer", "generator"},
    # Signing the audit head: the admin or legal, who keep the key and the checkpoint file.
    "audit.checkpoint": {"admin", "legal"},
}


def roles_of(session: Session, actor: Actor) -> list[str]:
    return sorted(session.exec(select(ActorRole.role).where(ActorRole.actor_id == actor.id)).all())


def find(session: Session, name: str) -> Actor | None:
    return session.exec(select(Actor).where(Actor.name == name)).first()


def require(session: Session, name: str | None, permission: str) -> Actor:
    """The named actor, if it exists, is enabled and holds a role that grants `permission`."""
    if not name:
        raise BadInput("no actor: pass --as NAME or set STYLEVAULT_USER")
    actor = find(session, name)
    if actor is None:
        raise Refused(f"unknown actor {name!r}: an admin adds actors with `stylevault users add`")
    if actor.disabled:
        raise Refused(f"actor {name!r} is disabled")
    allowed = PERMISSIONS[permission]
    if not allowed.intersection(roles_of(session, actor)):
        needs = " or ".join(sorted(allowed))
        raise Refused(f"actor {name!r} may not {permission}: it needs the {needs} role")
    return actor


def _check_roles(roles: list[str]) -> list[str]:
    if not roles:
        raise BadInput("--role: give at least one role")
    for role in roles:
        if role not in ROLES:
            raise BadInput(f"--role: unknown role {role!r} (roles: {', '.join(ROLES)})")
    return sorted(set(roles))


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 200 or any(ch.isspace() for ch in name):
        raise BadInput(f"actor name {name!r}: 1-200 characters, no spaces")
    return name


def add(session: Session, by: str | None, name: str, roles: list[str]) -> dict:
    """Create an actor. `by` is the admin doing it; None only when `init --admin` bootstraps the
    first actor of an empty catalogue."""
    if by is None and session.scalars(select(Actor.id).limit(1)).first() is not None:
        raise Refused("--admin: the catalogue already has actors; an admin adds more with `users add`")
    roles = _check_roles(roles)
    name = _check_name(name)
    if by is not None:
        require(session, by, "actors.manage")
    if find(session, name) is not None:
        raise BadInput(f"actor {name!r} already exists")
    actor = Actor(name=name)
    session.add(actor)
    session.flush()
    for role in roles:
        session.add(ActorRole(actor_id=actor.id, role=role))
    state = {"name": name, "roles": roles}
    audit.record(session, by or "system:init", [audit.Change("actor.add", "actor", name, None, state)])
    return state


def grant(session: Session, by: str, name: str, roles: list[str], *, revoke: bool = False) -> dict:
    require(session, by, "actors.manage")
    roles = _check_roles(roles)
    actor = find(session, name)
    if actor is None:
        raise BadInput(f"unknown actor {name!r}")
    before = roles_of(session, actor)
    if revoke:
        for role in roles:
            row = session.get(ActorRole, (actor.id, role))
            if row is not None:
                session.delete(row)
    else:
        for role in set(roles) - set(before):
            session.add(ActorRole(actor_id=actor.id, role=role))
    session.flush()
    after = roles_of(session, actor)
    if before != after:
        action = "actor.revoke_role" if revoke else "actor.grant_role"
        audit.record(session, by, [audit.Change(action, "actor", name, {"roles": before}, {"roles": after})])
    return {"name": name, "roles": after}


def set_disabled(session: Session, by: str, name: str, disabled: bool) -> dict:
    require(session, by, "actors.manage")
    actor = find(session, name)
    if actor is None:
        raise BadInput(f"unknown actor {name!r}")
    if actor.disabled != disabled:
        before, after = {"disabled": actor.disabled}, {"disabled": disabled}
        actor.disabled = disabled
        session.add(actor)
        ended = end_sessions(session, actor) if disabled else None
        if ended:  # a session from before must not come back to life when the actor is enabled again
            before["session_generation"], after["session_generation"] = ended
        action = "actor.disable" if disabled else "actor.enable"
        audit.record(session, by, [audit.Change(action, "actor", name, before, after)])
    return {"name": name, "disabled": disabled}


def end_sessions(session: Session, actor: Actor) -> tuple[int, int] | None:
    """Move the actor's session generation on, so that every desk session made before is refused
    (stylevault.governance.web.desk checks it on each request). One UPDATE, so two at once both count.
    The generation before and after, for the caller's audit event; None for an actor without a
    password, who has no desk session to end."""
    session.flush()
    after = session.execute(
        sa.update(ActorPassword)
        .where(ActorPassword.actor_id == actor.id)
        .values(session_generation=ActorPassword.session_generation + 1)
        .returning(ActorPassword.session_generation)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return None if after is None else (after - 1, after)


def session_generation(session: Session, actor: Actor) -> int | None:
    """The generation a desk session of `actor` must carry; None without a password."""
    return session.execute(
        sa.select(ActorPassword.session_generation).where(ActorPassword.actor_id == actor.id)
    ).scalar_one_or_none()


def listing(session: Session) -> list[dict]:
    rows = session.exec(select(Actor).order_by(Actor.name)).all()
    return [
        {"name": a.name, "roles": roles_of(session, a), "disabled": a.disabled, "created_at": a.created_at}
        for a in rows
    ]
