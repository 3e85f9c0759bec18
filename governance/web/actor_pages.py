"""Actors for admins: who exists, their roles, whether they can sign in; add, disable, set passwords.

Everyone signed in may read the list; every change goes through `stylevault.governance.catalogue.actors` and
`stylevault.governance.web.passwords`, which require the admin role and write the audit events."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from stylevault.governance.catalogue import actors
from stylevault.governance.catalogue.models import ROLES, Actor, ActorPassword
from stylevault.governance.errors import BadInput
from stylevault.governance.web import passwords
from stylevault.governance.web.desk import Form, Me, catalogue_of, quoted, render, session_of, text

router = APIRouter()


@router.get("/actors", response_class=HTMLResponse)
def actor_list(request: Request, me: Me):
    with catalogue_of(request).read() as session:
        rows = actors.listing(session)
        with_password = set(
            session.execute(
                sa.select(Actor.name).join(ActorPassword, ActorPassword.actor_id == Actor.id)
            ).scalars()
        )
    for row in rows:
        row["password_set"] = row["name"] in with_password
    return render(request, "actors.html", me, rows=rows, roles=ROLES)


@router.post("/actors")
def actor_add(request: Request, me: Me, form: Form):
    name = text(form, "name", required="name: give the actor a name", limit=200)
    roles = [r for r in form.getlist("role") if isinstance(r, str)]
    with catalogue_of(request).write() as session:
        state = actors.add(session, me.actor, name, roles)
    session_of(request).say(f"Added {state['name']} ({', '.join(state['roles'])}).")
    return RedirectResponse("/actors", status_code=303)


@router.post("/actors/{name}/{action}")
def actor_change(request: Request, name: str, action: str, me: Me, form: Form):
    """password (a new one, typed twice), disable, enable."""
    with catalogue_of(request).write() as session:
        if action == "password":
            password = form.get("password")
            if not isinstance(password, str) or password != form.get("again"):
                raise BadInput("password: the two entries differ")
            passwords.set_password(session, me.actor, name, password)
            message = f"Password set for {name}."
        elif action in ("disable", "enable"):
            actors.set_disabled(session, me.actor, name, action == "disable")
            message = f"{name} {action}d."
        else:
            raise BadInput(f"action: password, disable or enable, got {action!r}")
    session_of(request).say(message)
    return RedirectResponse(f"/actors#actor-{quoted(name)}", status_code=303)
