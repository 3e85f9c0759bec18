"""Driving the web desk in tests: a FastAPI test client signed in as a catalogue actor, forms sent with
their page's CSRF token, and the six-image review queue most desk tests start from."""

from __future__ import annotations

import functools
import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.models import ActorPassword, Image
from stylevault.governance.web import passwords
from stylevault.governance.web.app import create_app
from stylevault.governance.web.config import WebConfig

SECRET = b"test secret key for the web desk, 32+ bytes"
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


@functools.cache
def password_hash() -> str:
    return passwords._hasher().hash(PASSWORD)


def give_passwords(catalogue, names):
    """The rows `passwords.set_password` writes, with one hash made once: argon2 is slow by design
    (tested through set_password and the CLI below)."""
    with catalogue.write() as session:
        admin = actors.find(session, "admin")
        for name in names:
            actor = actors.find(session, name)
            session.add(ActorPassword(actor_id=actor.id, hash=password_hash(), set_by=admin.id))


def client_for(catalogue, **config) -> TestClient:
    app = create_app(catalogue, WebConfig(secret_key=SECRET, **config))
    return TestClient(app, follow_redirects=False)


def csrf_of(response) -> str:
    found = CSRF.search(response.text)
    assert found, f"no CSRF token on {response.url}"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD):
    token = csrf_of(client.get("/signin"))
    return client.post("/signin", data={"csrf": token, "name": name, "password": password, "next": "/queue"})


def post(client: TestClient, page: str, action: str, **fields):
    """Submit a form the way a browser does: with the CSRF token of the page it sits on."""
    return client.post(action, data={"csrf": csrf_of(client.get(page)), **fields})


def refusals(catalogue, kind: str | None = None) -> list[dict]:
    with catalogue.read() as session:
        events = audit.log(session, action="web.refused")
    return [e for e in events if kind is None or e["after"]["kind"] == kind]


def states(catalogue) -> dict[int, str]:
    with catalogue.read() as session:
        return dict(session.execute(sa.select(Image.id, Image.state).order_by(Image.id)).all())
