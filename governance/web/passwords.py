"""Actors' passwords for the web desk: argon2id hashes (RFC 9106), one row per actor.

Setting one is an admin's write and an audit event that records that a password was set, never the
password or its hash; it ends every desk session the actor had. Checking one takes the same time
whether or not the actor exists.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.models import Actor, ActorPassword, utcnow
from stylevault.governance.errors import BadInput

MIN_LENGTH = 8
MAX_LENGTH = 1024


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@cache
def _decoy() -> str:
    """A hash to check against when there is no actor, so a wrong name costs what a wrong password does."""
    return _hasher().hash("stylevault: no such actor")


def check_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise BadInput(f"password: at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise BadInput(f"password: at most {MAX_LENGTH} characters")
    if "\0" in password:
        raise BadInput("password: must not contain a NUL character")
    return password


def set_password(session: Session, by: str | None, name: str, password: str) -> dict:
    """An admin sets the password `name` signs in to the web desk with."""
    admin = actors.require(session, by, "actors.manage")
    check_password(password)
    actor = actors.find(session, name)
    if actor is None:
        raise BadInput(f"unknown actor {name!r}")
    stored = session.get(ActorPassword, actor.id, with_for_update=True)
    had = stored is not None
    if stored is None:
        stored = ActorPassword(actor_id=actor.id, hash="", set_by=admin.id)
    stored.hash, stored.set_by, stored.set_at = _hasher().hash(password), admin.id, utcnow()
    session.add(stored)
    # A new password ends the actor's sessions: whoever knew the old one is signed out everywhere.
    generation_before, generation = actors.end_sessions(session, actor)
    before = {"password_set": had, "session_generation": generation_before}
    after = {"password_set": True, "session_generation": generation}
    audit.record(session, admin.name, [audit.Change("actor.password_set", "actor", name, before, after)])
    return {"name": name, "password_set": True, "replaced": had}


def authenticate(session: Session, name: str, password: str) -> Actor | None:
    """The enabled actor `name` if `password` is theirs; None for any other outcome."""
    actor = actors.find(session, name) if name else None
    row = session.get(ActorPassword, actor.id) if actor is not None and not actor.disabled else None
    stored = row.hash if row is not None else None
    try:
        _hasher().verify(stored or _decoy(), password)
    except (VerificationError, InvalidHashError):
        return None
    return actor if stored else None
