"""Output review: every generated output with its review state and scores, and the sign-off itself
(release, withhold) through `outputs.signoff`, which holds the rules (roles, four-eyes, the
near-copy flag only legal overrides)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from stylevault.governance.catalogue.models import OUTPUT_STATES
from stylevault.governance.catalogue.output_models import GenerationOutput, GenerationRun
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.outputs import listing as output_listing
from stylevault.governance.outputs import signoff as outputs
from stylevault.governance.web.desk import Form, Me, NotFound, catalogue_of, render, session_of, text

router = APIRouter()
LIST_LIMIT = 200


@router.get("/outputs", response_class=HTMLResponse)
def output_list(request: Request, me: Me):
    params = request.query_params
    state = (params.get("state") if params.get("state") is not None else "pending").strip() or None
    flagged = {"1": True, "0": False}.get(params.get("flagged") or "")
    with catalogue_of(request).read() as session:
        rows = output_listing.listing(session, state=state, flagged=flagged, limit=LIST_LIMIT)
    return render(
        request,
        "outputs.html",
        me,
        rows=rows,
        state=state,
        flagged=flagged,
        states=OUTPUT_STATES,
        limit=LIST_LIMIT,
    )


@router.post("/outputs/{output_id}/{action}")
def output_decide(request: Request, output_id: str, action: str, me: Me, form: Form):
    if not output_id.isdigit() or len(output_id) > 12:
        raise NotFound(f"no output {output_id!r}")
    catalogue = catalogue_of(request)
    with catalogue.read() as session:
        found = session.get(GenerationOutput, int(output_id))
        if found is None:
            raise NotFound(f"no output {output_id}")
        run_id, ordinal = session.get(GenerationRun, found.run_id).run_id, found.ordinal
    reason = text(form, "reason")
    with catalogue.write() as session:
        if action == "release":
            result = outputs.release(session, me.actor, [output_id], reason, text(form, "override"))
        elif action == "withhold":
            result = outputs.withhold(session, me.actor, [output_id], reason)
        else:
            raise BadInput(f"action: release or withhold, got {action!r}")
        if result["refused"]:
            raise Refused(f"output {output_id}: {result['refused'][0]['reason']}")
    state = "released" if action == "release" else "withheld"
    session_of(request).say(f"Output {output_id} {state}.")
    return RedirectResponse(f"/runs/{run_id}#output-{ordinal}", status_code=303)
