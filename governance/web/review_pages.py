"""The review queue and one image's review page: approve, reject, revoke, set the licence."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData

from stylevault.governance.catalogue.models import APPROVAL_STATES, LICENCE_STATUSES
from stylevault.governance.errors import BadInput
from stylevault.governance.legal import licence_decisions, review
from stylevault.governance.views import images
from stylevault.governance.web.desk import (
    Form,
    Me,
    Visitor,
    catalogue_of,
    render,
    session_of,
    text,
    whole_number,
)
from stylevault.governance.web.queries import QueueFilter, image_or_404, neighbour_in_queue, queue_page

router = APIRouter()
URL = re.compile(r"^https?://\S+$", re.I)


@router.get("/queue", response_class=HTMLResponse)
def queue(request: Request, me: Me):
    params = request.query_params
    filters = QueueFilter(params)
    after = whole_number(params.get("after"), "after")
    before = whole_number(params.get("before"), "before")
    size = request.app.state.config.page_size
    with catalogue_of(request).read() as session:
        page = queue_page(session, filters, after=after, before=before, size=size)
    return render(
        request,
        "queue.html",
        me,
        filters=filters,
        q=filters.query_string(),
        page=page,
        states=APPROVAL_STATES,
        licence_statuses=LICENCE_STATUSES,
    )


@router.post("/queue/decide")
def decide_many(request: Request, me: Me, form: Form):
    """Approve or reject the ticked images of a queue page: all of them or none (review.decide)."""
    filters = _carried_filters(form)
    decision = text(form, "decision", required="decision: approve or reject")
    if decision not in ("approve", "reject"):
        raise BadInput(f"decision: approve or reject, got {decision!r}")
    picked = [value for value in form.getlist("image") if isinstance(value, str) and value.isdigit()]
    if not picked:
        raise BadInput("image: tick at least one image")
    reason = text(form, "reason")
    results = catalogue_of(request).transact(
        lambda session: review.decide(session, me.actor, decision, picked, reason)
    )
    changed = len(results.changed)
    session_of(request).say(f"{changed} image{'' if changed == 1 else 's'} {review.TARGET[decision]}.")
    return RedirectResponse(f"/queue?{filters.query_string()}", status_code=303)


@router.get("/images/{image_id}", response_class=HTMLResponse)
def image_page(request: Request, image_id: str, me: Me):
    filters = QueueFilter(request.query_params)
    with catalogue_of(request).read() as session:
        image = image_or_404(session, image_id)
        data = images.show(session, image)
        following = neighbour_in_queue(session, filters, image.id, forward=True)
        preceding = neighbour_in_queue(session, filters, image.id, forward=False)
    return render(
        request,
        "image.html",
        me,
        image=data,
        q=filters.query_string(),
        next_id=following,
        previous_id=preceding,
    )


@router.post("/images/{image_id}/{decision}")
def decide_one(
    request: Request,
    image_id: str,
    decision: str,
    me: Me,
    form: Form,
):
    """approve, reject or revoke one image; after a decision the next image of the queue opens."""
    filters = _carried_filters(form)
    catalogue = catalogue_of(request)
    with catalogue.read() as session:
        image = image_or_404(session, image_id)
    if decision == "licence":
        return _set_licence(request, me, image.id, form, filters)
    if decision not in review.TARGET:
        raise BadInput(f"decision: approve, reject, revoke or licence, got {decision!r}")
    reason = text(form, "reason")
    catalogue.transact(lambda session: review.decide(session, me.actor, decision, [str(image.id)], reason))
    session_of(request).say(f"Image {image.id} {review.TARGET[decision]}.")
    with catalogue.read() as session:
        following = neighbour_in_queue(session, filters, image.id, forward=True)
    q = filters.query_string()
    if following is None:
        session_of(request).say(f"Image {image.id} {review.TARGET[decision]}. Nothing more in this queue.")
        return RedirectResponse(f"/queue?{q}", status_code=303)
    return RedirectResponse(f"/images/{following}?{q}", status_code=303)


def _set_licence(request: Request, me: Visitor, image_id: int, form: FormData, filters: QueueFilter):
    needed = "licence: give an SPDX expression (LicenseRef-... for a contract)"
    licence = text(form, "licence", required=needed)
    evidence = text(form, "evidence")
    # A local path here would reach the server's filesystem: the web desk takes URLs only.
    if evidence is not None and not URL.match(evidence):
        raise BadInput(f"evidence: give an http(s) URL, got {evidence!r}")
    attribution, expires, note = (
        text(form, "attribution"),
        text(form, "expires", limit=20),
        text(form, "note"),
    )
    catalogue = catalogue_of(request)

    def set_licence(session):
        return licence_decisions.set_licence(
            session,
            catalogue.store,
            me.actor,
            images.resolve(session, str(image_id)),
            licence=licence,
            evidence=evidence,
            attribution=attribution,
            expires=expires,
            note=note,
        )

    state = catalogue.transact(set_licence)
    session_of(request).say(f"Image {image_id}: licence {state['spdx']} verified.")
    return RedirectResponse(f"/images/{image_id}?{filters.query_string()}", status_code=303)


def _carried_filters(form: FormData) -> QueueFilter:
    """The queue filters a form carries back (hidden field `q`), checked like the query string."""
    q = text(form, "q", limit=4000) or ""
    return QueueFilter(dict(parse_qsl(q, keep_blank_values=True)))
