"""The app factory: sessions middleware, security headers, error pages, sign-in and the page routers."""

from __future__ import annotations

import math

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.errors import BadInput, Busy, Refused
from stylevault.governance.legal import review
from stylevault.governance.web import (
    actor_pages,
    assets,
    audit_pages,
    bulk_pages,
    output_pages,
    passwords,
    review_pages,
    run_pages,
    styleset_pages,
)
from stylevault.governance.web.config import WebConfig
from stylevault.governance.web.desk import (
    HERE,
    CsrfRefused,
    Form,
    NotFound,
    SignInRequired,
    catalogue_of,
    error_page,
    header_actor,
    local_path,
    render,
    session_of,
    text,
)
from stylevault.governance.web.sessions import COOKIE, EXPIRED, Sessions, record_refusal
from stylevault.governance.web.throttle import SignInThrottle

SECURITY_HEADERS = {
    # No inline script or style anywhere: the desk's one script is /static/desk.js.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def create_app(catalogue: Catalogue, config: WebConfig) -> FastAPI:
    """The web desk over `catalogue` (already migrated to the code's head)."""

    app = FastAPI(title="stylevault review desk", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.catalogue = catalogue
    app.state.config = config
    app.state.sessions = Sessions(config.secret_key, config.session_seconds)
    app.state.throttle = SignInThrottle(
        config.signin_attempts, config.signin_window_seconds, config.signin_client_attempts
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def sessions_and_headers(request: Request, call_next):
        sessions: Sessions = request.app.state.sessions
        request.state.session = sessions.load(request.cookies.get(COOKIE))
        request.state.actor = None
        response = await call_next(request)
        session = session_of(request)
        if session.changed:
            response.set_cookie(
                COOKIE,
                sessions.dump(session),
                httponly=True,
                samesite="strict",
                secure=config.secure_cookies or request.url.scheme == "https",
                path="/",
            )
        response.headers.update(SECURITY_HEADERS)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    _error_pages(app)
    app.include_router(_signin_routes())
    for module in (
        review_pages,
        bulk_pages,
        styleset_pages,
        run_pages,
        output_pages,
        audit_pages,
        actor_pages,
        assets,
    ):
        app.include_router(module.router)
    return app


def _where(request: Request) -> str:
    return f"{request.method} {request.url.path}"


def _error_pages(app: FastAPI) -> None:
    # Sync handlers: Starlette runs them in its thread pool, where the audit write may block.
    @app.exception_handler(SignInRequired)
    def sign_in_required(request: Request, exc: SignInRequired):
        session = session_of(request)
        expired = session.expired_actor
        if exc.quiet:
            return Response("sign in first", status_code=401, media_type="text/plain")
        if expired:
            reason = session.expired_because
            record_refusal(catalogue_of(request), expired, "session", _where(request), reason)
            session.say(f"Your session {'expired' if reason == EXPIRED else 'was ended'}: sign in again.")
        elif request.method != "GET":
            record_refusal(catalogue_of(request), None, "session", _where(request), str(exc))
            session.say("Sign in first.")
        # After signing in, a page comes back; a refused form does not resubmit itself.
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if request.method != "GET":
            target = "/queue"
        return RedirectResponse(f"/signin?next={_quote(target)}", status_code=303)

    @app.exception_handler(CsrfRefused)
    def csrf_refused(request: Request, exc: CsrfRefused):
        actor = request.state.actor or session_of(request).actor
        record_refusal(catalogue_of(request), actor, "csrf", _where(request), str(exc))
        message = "This form was not sent from a current page of this desk: reload the page and retry."
        return error_page(request, 403, "Refused", message)

    @app.exception_handler(Refused)
    def refused(request: Request, exc: Refused):
        record_refusal(catalogue_of(request), request.state.actor, "rule", _where(request), str(exc))
        if isinstance(exc, review.Unsettled):
            # The desk has the form on the image's page: point there, not to the CLI.
            message = exc.explain("with the Set the licence form on its page")
            form = (f"/images/{exc.image_id}#licence-form", f"Set the licence of image {exc.image_id}")
            return error_page(request, 403, "Refused", message, link=form)
        return error_page(request, 403, "Refused", str(exc))

    @app.exception_handler(Busy)
    def busy(request: Request, exc: Busy):
        record_refusal(catalogue_of(request), request.state.actor, "busy", _where(request), str(exc))
        message = "The catalogue was busy with other changes and nothing was changed: send the form again."
        return error_page(request, 503, "Busy", message)

    @app.exception_handler(sa.exc.OperationalError)
    def unavailable(request: Request, exc: sa.exc.OperationalError):
        detail = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
        return error_page(request, 503, "Catalogue unavailable", f"Nothing was changed: {detail}")

    @app.exception_handler(BadInput)
    def bad_input(request: Request, exc: BadInput):
        return error_page(request, 400, "Not accepted", str(exc))

    @app.exception_handler(NotFound)
    def not_found(request: Request, exc: NotFound):
        return error_page(request, 404, "Not found", str(exc))

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError):
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}" for e in exc.errors()
        )
        return error_page(request, 400, "Not accepted", problems)

    @app.exception_handler(StarletteHTTPException)
    def http_error(request: Request, exc: StarletteHTTPException):
        return error_page(request, exc.status_code, "Error", str(exc.detail))

    @app.exception_handler(sa.exc.IntegrityError)
    def constraint(request: Request, exc: sa.exc.IntegrityError):
        detail = str(exc.orig).splitlines()[0]
        message = f"refused by the catalogue's constraints: {detail}"
        record_refusal(catalogue_of(request), request.state.actor, "rule", _where(request), message)
        return error_page(request, 409, "Refused", message)


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="/")


def _signin_routes():
    from fastapi import APIRouter

    router = APIRouter()

    @router.get("/", include_in_schema=False)
    def home():
        return RedirectResponse("/queue", status_code=303)

    @router.get("/signin", response_class=HTMLResponse)
    def signin_form(request: Request, next: str = "/queue"):
        session = session_of(request)
        if session.actor or header_actor(request):
            return RedirectResponse(local_path(next, "/queue"), status_code=303)
        return render(request, "signin.html", None, next=local_path(next, "/queue"))

    @router.post("/signin")
    def signin(request: Request, form: Form):
        name = text(form, "name", limit=200) or ""
        password = form.get("password")
        target = local_path(text(form, "next", limit=2000), "/queue")
        session = session_of(request)
        catalogue = catalogue_of(request)
        throttle: SignInThrottle = request.app.state.throttle
        client = request.client.host if request.client else "unknown"
        wait = throttle.attempt(name, client)
        if wait > 0:
            minutes = max(1, math.ceil(wait / 60))
            reason = f"too many sign-ins for {name!r} or from {client}; refused for {minutes} more minutes"
            record_refusal(catalogue, None, "signin", _where(request), reason)
            error = f"Too many failed sign-ins: try again in {minutes} minutes."
            return render(request, "signin.html", None, 429, next=target, name=name, error=error)
        with catalogue.read() as db:
            actor = passwords.authenticate(db, name, password if isinstance(password, str) else "")
            generation = actors.session_generation(db, actor) if actor is not None else None
        if actor is None:
            record_refusal(catalogue, None, "signin", _where(request), f"wrong name or password for {name!r}")
            return render(
                request, "signin.html", None, 401, next=target, name=name, error="Wrong name or password."
            )
        throttle.succeeded(name, client)
        session.sign_in(actor.name, generation)
        with catalogue.write() as db:
            audit.record(db, actor.name, [audit.Change("web.signin", "actor", actor.name, None, None)])
        return RedirectResponse(target, status_code=303)

    @router.post("/signout")
    def signout(request: Request, form: Form):
        """Ends every session the actor has, here and in any other browser (or copied cookie)."""
        session = session_of(request)
        if session.actor:
            with catalogue_of(request).write() as db:
                actor = actors.find(db, session.actor)
                current = actors.session_generation(db, actor) if actor is not None else None
                if current is not None and current == session.generation:
                    before, after = actors.end_sessions(db, actor)
                    change = audit.Change(
                        "web.signout",
                        "actor",
                        actor.name,
                        {"session_generation": before},
                        {"session_generation": after},
                    )
                    audit.record(db, actor.name, [change])
        session.sign_out()
        session.say("Signed out.")
        return RedirectResponse("/signin", status_code=303)

    return router
