"""Sessions, CSRF tokens and the audit record of a refused request.

A session is a signed cookie (itsdangerous, HMAC-SHA1 over the JSON payload): HttpOnly,
SameSite=Strict, Secure over https or when configured. It holds a random session id, the signed-in
actor, the time of sign-in and the actor's session generation at sign-in; it expires a fixed time
after sign-in, however active the session, and ends as soon as the actor's generation moves on
(sign-out, a new password, disabling: `catalogue.actors.end_sessions`), which every request checks.
The CSRF token of a form is an HMAC of the session id, so it cannot be made without the secret and
changes when the session does (sign-in rotates the id).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

from itsdangerous import BadSignature, URLSafeSerializer

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.db import Catalogue

COOKIE = "stylevault_session"
EXPIRED = "the session expired"
ENDED = "the session was ended: its actor signed out, got a new password or was disabled"
CSRF_FIELD = "csrf"


@dataclass
class Session:
    sid: str
    actor: str | None = None
    signed_in_at: float | None = None
    generation: int | None = None  # the actor's session generation when they signed in
    flash: str | None = None
    expired_actor: str | None = None  # the cookie named this actor, but its session had run out
    expired_because: str = EXPIRED
    changed: bool = field(default=False, repr=False)

    @classmethod
    def new(cls) -> Session:
        return cls(sid=secrets.token_urlsafe(24), changed=True)

    def sign_in(self, actor: str, generation: int) -> None:
        """A new session id on sign-in, so a session id planted before it is worth nothing after."""
        self.sid, self.actor, self.signed_in_at = secrets.token_urlsafe(24), actor, time.time()
        self.generation, self.expired_actor, self.changed = generation, None, True

    def sign_out(self) -> None:
        self.sid, self.actor, self.signed_in_at = secrets.token_urlsafe(24), None, None
        self.generation, self.changed = None, True

    def ended(self, reason: str) -> None:
        """The cookie's session is no longer good (the actor signed out elsewhere, got a new password
        or was disabled): anonymous from here, and the refusal says why."""
        actor = self.actor
        self.sign_out()
        self.expired_actor, self.expired_because = actor, reason

    def say(self, message: str) -> None:
        """A one-time message for the next page."""
        self.flash, self.changed = message, True

    def take_flash(self) -> str | None:
        message = self.flash
        if message is not None:
            self.flash, self.changed = None, True
        return message


class Sessions:
    def __init__(self, secret_key: bytes, lifetime_seconds: int):
        self._serializer = URLSafeSerializer(secret_key, salt="stylevault.session")
        self._csrf_key = hashlib.sha256(b"stylevault.csrf\0" + secret_key).digest()
        self.lifetime = lifetime_seconds

    def load(self, cookie: str | None, now: float | None = None) -> Session:
        """The session a cookie carries; a new anonymous one for a missing, forged or expired cookie."""
        if not cookie:
            return Session.new()
        try:
            data = self._serializer.loads(cookie)
        except BadSignature:
            return Session.new()
        if not isinstance(data, dict) or not isinstance(data.get("sid"), str):
            return Session.new()
        generation = data.get("gen")
        session = Session(
            sid=data["sid"],
            actor=data.get("actor"),
            signed_in_at=data.get("at"),
            generation=generation if isinstance(generation, int) else None,
            flash=data.get("flash"),
        )
        now = time.time() if now is None else now
        if session.actor and (session.signed_in_at is None or now - session.signed_in_at > self.lifetime):
            expired = Session.new()
            expired.expired_actor = session.actor
            return expired
        return session

    def dump(self, session: Session) -> str:
        return self._serializer.dumps(
            {
                "sid": session.sid,
                "actor": session.actor,
                "at": session.signed_in_at,
                "gen": session.generation,
                "flash": session.flash,
            }
        )

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._csrf_key, session.sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, token: object) -> bool:
        return isinstance(token, str) and hmac.compare_digest(token, self.csrf_token(session))


def record_refusal(catalogue: Catalogue, actor: str | None, kind: str, where: str, reason: str) -> None:
    """A refused web request goes on the audit chain in its own transaction (the refused one, if any,
    was rolled back). `kind`: csrf, session, role, rule, signin, busy."""
    change = audit.Change("web.refused", "request", where[:128], None, {"kind": kind, "reason": reason[:500]})
    with catalogue.write() as session:
        audit.record(session, actor, [change])
