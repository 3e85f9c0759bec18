"""Style sets: browse members as a grid, add and remove, publish, diff two versions, check a policy."""

from __future__ import annotations

import itertools
import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from stylevault.governance.curation import clearance, stylesets
from stylevault.governance.errors import BadInput
from stylevault.governance.rules.policy_files import list_policies, load_policy
from stylevault.governance.rules.vocabulary import REASON_TEXT
from stylevault.governance.web.desk import (
    Form,
    Me,
    catalogue_of,
    quoted,
    render,
    session_of,
    text,
    whole_number,
)
from stylevault.governance.web.queries import styleset_or_404, working_members

router = APIRouter()
GRID_PAGE = 60
EXCLUSIONS_PAGE = 200
REFS = re.compile(r"[\s,]+")


@router.get("/stylesets", response_class=HTMLResponse)
def styleset_list(request: Request, me: Me):
    with catalogue_of(request).read() as session:
        rows = stylesets.listing(session)
    return render(request, "stylesets.html", me, rows=rows)


@router.post("/stylesets")
def styleset_create(request: Request, me: Me, form: Form):
    name = text(form, "name", required="name: give the style set a name", limit=100)
    description = text(form, "description")
    catalogue_of(request).transact(lambda session: stylesets.create(session, me.actor, name, description))
    session_of(request).say(f"Style set {name} created.")
    return RedirectResponse(f"/stylesets/{quoted(name)}", status_code=303)


@router.get("/stylesets/{name}", response_class=HTMLResponse)
def styleset_page(request: Request, name: str, me: Me):
    after = whole_number(request.query_params.get("after"), "after")
    with catalogue_of(request).read() as session:
        found = styleset_or_404(session, name)
        info = stylesets.show(session, found.name)
        grid = working_members(session, found, after=after, size=GRID_PAGE)
    policies = [p.name for p in list_policies()]
    return render(request, "styleset.html", me, s=info, grid=grid, after=after, policies=policies)


@router.post("/stylesets/{name}/{action}")
def styleset_change(
    request: Request,
    name: str,
    action: str,
    me: Me,
    form: Form,
):
    """add (image refs and/or a collection), remove (ticked members), publish (with a note)."""
    catalogue = catalogue_of(request)
    with catalogue.read() as session:
        found = styleset_or_404(session, name).name
    if action == "add":
        refs = [r for r in REFS.split(text(form, "images", limit=100_000) or "") if r]
        collection = text(form, "collection")
        result = catalogue.transact(
            lambda session: stylesets.add(session, me.actor, found, refs, collection=collection)
        )
        message = f"{result['added']} added; {result['members']} members."
    elif action == "remove":
        picked = [v for v in form.getlist("image") if isinstance(v, str)]
        if not picked:
            raise BadInput("image: tick at least one member to remove")
        result = catalogue.transact(lambda session: stylesets.remove(session, me.actor, found, picked))
        message = f"{result['removed']} removed; {result['members']} members."
    elif action == "publish":
        note = text(form, "note")
        result = catalogue.transact(lambda session: stylesets.publish(session, me.actor, found, note))
        message = f"Published {found}@{result['version']} with {result['members']} members."
    else:
        raise BadInput(f"action: add, remove or publish, got {action!r}")
    session_of(request).say(message)
    return RedirectResponse(f"/stylesets/{quoted(found)}", status_code=303)


@router.get("/stylesets/{name}/diff", response_class=HTMLResponse)
def styleset_diff(request: Request, name: str, me: Me):
    params = request.query_params
    old = whole_number(params.get("from"), "from (version)", minimum=1)
    new = whole_number(params.get("to"), "to (version)", minimum=1)
    if old is None or new is None:
        raise BadInput("from, to: give two version numbers")
    with catalogue_of(request).read() as session:
        found = styleset_or_404(session, name)
        result = stylesets.diff(session, found.name, f"{old}..{new}")
    return render(request, "styleset_diff.html", me, d=result)


@router.get("/stylesets/{name}/check", response_class=HTMLResponse)
def styleset_check(request: Request, name: str, me: Me):
    """A policy check of a version: counts, then every excluded member with its reason (paged)."""
    params = request.query_params
    policy_name = (params.get("policy") or "").strip()
    if not policy_name:
        raise BadInput("policy: choose a policy")
    if policy_name not in {p.name for p in list_policies()}:
        raise BadInput(f"policy: unknown policy {policy_name!r}")
    version = whole_number(params.get("version"), "version", minimum=1)
    page = whole_number(params.get("page"), "page", minimum=1) or 1
    policy = load_policy(policy_name)
    with catalogue_of(request).read() as session:
        found = styleset_or_404(session, name)
        ref = found.name if version is None else f"{found.name}@{version}"
        result = clearance.check(session, policy, ref)
        excluded = list(
            itertools.islice(
                clearance.members(session, policy, ref, cleared=False),
                (page - 1) * EXCLUSIONS_PAGE,
                page * EXCLUSIONS_PAGE,
            )
        )
    total_excluded = sum(result.excluded.values())
    return render(
        request,
        "styleset_check.html",
        me,
        c=result,
        excluded=excluded,
        reasons=REASON_TEXT,
        page=page,
        has_next=page * EXCLUSIONS_PAGE < total_excluded,
        total_excluded=total_excluded,
    )
