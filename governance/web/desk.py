"""What every page shares: the signed-in visitor, the CSRF-checked form, rendering, refusals."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.datastructures import FormData

from stylevault.governance.catalogue import actors
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.web.sessions import CSRF_FIELD, ENDED, Session, Sessions

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
SHA256 = re.compile(r"^[0-9a-f]{64}$")
WEB_URL = re.compile(r"^https?://[^\s\"'<>]+$", re.I)
STORED_EVIDENCE = re.compile(r"^store:evidence/([0-9a-f]{64}(?:\.[a-z0-9]{1,10})?)(?: \((.*)\))?$")


class SignInRequired(Exception):
    """No signed-in actor: pages redirect to the sign-in form, assets answer 401."""

    def __init__(self, message: str | None = None, *, quiet: bool = False):
        super().__init__(message or "sign in first")
        self.quiet = quiet


class CsrfRefused(Exception):
    """A form without the session's CSRF token: forged, or from a page of an older session."""


class NotFound(Exception):
    """An id in the path that names nothing (404)."""


@dataclass(frozen=True)
class Visitor:
    actor: str
    roles: tuple[str, ...]
    via_header: bool = False

    def may(self, permission: str) -> bool:
        """For showing or hiding controls only; the governance function checks the role itself."""
        return bool(actors.PERMISSIONS[permission].intersection(self.roles))


def catalogue_of(request: Request) -> Catalogue:
    return request.app.state.catalogue


def session_of(request: Request) -> Session:
    return request.state.session


def header_actor(request: Request) -> str | None:
    """The actor the trusted proxy's header names; None when no header is configured or sent. The
    header from any other address is refused: anyone could send it, only the proxy is believed."""
    config = request.app.state.config
    if not config.trusted_header:
        return None
    name = (request.headers.get(config.trusted_header) or "").strip() or None
    client = request.client.host if request.client else None
    if name is not None and not config.from_trusted_proxy(client):
        raise Refused(f"the {config.trusted_header} header came from {client}, not from the trusted proxy")
    return name


def _visitor(request: Request, *, quiet: bool) -> Visitor:
    config = request.app.state.config
    session = session_of(request)
    name = header_actor(request)
    via_header = name is not None
    name = name or session.actor
    if not name:
        raise SignInRequired(quiet=quiet)
    with catalogue_of(request).read() as db:
        actor = actors.find(db, name)
        if actor is None or actor.disabled:
            if via_header and not quiet:
                # Not a sign-in problem the form could solve: the proxy vouches for someone we do not know.
                raise Refused(f"the {config.trusted_header} header names {name!r}, not an enabled actor")
            session.sign_out()
            raise SignInRequired(f"actor {name!r} is unknown or disabled", quiet=quiet)
        current = None if via_header else actors.session_generation(db, actor)
        if not via_header and (current is None or session.generation != current):
            session.ended(ENDED)
            raise SignInRequired(ENDED, quiet=quiet)
        roles = tuple(actors.roles_of(db, actor))
    request.state.actor = name
    return Visitor(name, roles, via_header)


def visitor(request: Request) -> Visitor:
    """The signed-in actor of a page or a form (dependency)."""
    return _visitor(request, quiet=False)


def asset_visitor(request: Request) -> Visitor:
    """The signed-in actor of a thumbnail or output request: refused with 401, never audited (a page of
    fifty thumbnails with an expired cookie is one refusal, recorded by the page)."""
    return _visitor(request, quiet=True)


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's (dependency)."""
    form = await request.form()
    sessions: Sessions = request.app.state.sessions
    if not sessions.csrf_ok(session_of(request), form.get(CSRF_FIELD)):
        raise CsrfRefused("the form's CSRF token is missing or does not match this session")
    return form


def text(form: FormData, name: str, *, required: str | None = None, limit: int = 2000) -> str | None:
    """A stripped text field, None when empty; `required` is the message when it must be given."""
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise BadInput(f"{name}: expected text, not a file")
    value = (value or "").strip()
    if len(value) > limit:
        raise BadInput(f"{name}: at most {limit} characters")
    if not value:
        if required:
            raise BadInput(required)
        return None
    return value


def whole_number(value: str | None, name: str, *, minimum: int = 0) -> int | None:
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if not value.isdigit() or int(value) < minimum:
        raise BadInput(f"{name}: a whole number of at least {minimum}, got {value!r}")
    return int(value)


def local_path(target: str | None, default: str = "/") -> str:
    """A redirect target from the request, kept on this site (no //host or scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def render(request: Request, template: str, me: Visitor | None, status_code: int = 200, **context):
    session = session_of(request)
    sessions: Sessions = request.app.state.sessions
    return templates.TemplateResponse(
        request,
        template,
        {
            "me": me,
            "csrf": sessions.csrf_token(session),
            "csrf_field": CSRF_FIELD,
            "flash": session.take_flash(),
            **context,
        },
        status_code=status_code,
    )


def error_page(
    request: Request, status_code: int, title: str, message: str, link: tuple[str, str] | None = None
) -> HTMLResponse:
    """An error page; `link` (a path on this desk, its label) is where to put the problem right."""
    me = None
    if getattr(request.state, "actor", None):
        me = Visitor(request.state.actor, ())
    return render(request, "error.html", me, status_code, title=title, message=message, remedy=link)


def thumb_url(sha256: str) -> str:
    return f"/thumbs/{sha256}.jpg"


def quoted(value: str) -> str:
    return quote(value, safe="")


def link(url: str | None):
    """An outside link for an http(s) URL; anything else (javascript:, a path) stays plain text."""
    if url and WEB_URL.match(url):
        return Markup('<a href="{0}" rel="noopener noreferrer" target="_blank">{0}</a>').format(url)
    return url or ""


def evidence_link(reference: str):
    """Licence evidence: a URL as given, or a file in the store by its hash
    (licence_decisions.set_licence)."""
    stored = STORED_EVIDENCE.match(reference)
    if stored:
        name, label = stored.group(1), stored.group(2) or stored.group(1)
        return Markup('<a href="/evidence/{}">{}</a>').format(name, label)
    return link(reference)


templates.env.globals.update(thumb_url=thumb_url, quoted=quoted, link=link, evidence_link=evidence_link)


Me = Annotated[Visitor, Depends(visitor)]
AssetMe = Annotated[Visitor, Depends(asset_visitor)]
Form = Annotated[FormData, Depends(checked_form)]
