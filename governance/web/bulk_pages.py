"""One decision for a whole filtered queue: record one licence, approve or reject every image it
holds. The desk first shows what would change (the core's dry run) and how many images; the
confirmation carries that count, and is refused if the queue no longer holds exactly those."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.legal import licence_decisions, review
from stylevault.governance.views import images
from stylevault.governance.web.desk import Form, Me, catalogue_of, render, session_of, text, whole_number
from stylevault.governance.web.review_pages import URL, _carried_filters

router = APIRouter()
ACTIONS = ("licence", "approve", "reject")


@router.post("/queue/bulk")
def decide_queue(request: Request, me: Me, form: Form):
    """Without `expected`: the dry run and a confirmation page. With it: the decision, applied only
    if it changes exactly the `expected` images the confirmation page showed."""
    filters = _carried_filters(form)
    action = text(form, "decision", required="decision: licence, approve or reject")
    if action not in ACTIONS:
        raise BadInput(f"decision: licence, approve or reject, got {action!r}")
    expected = whole_number(form.get("expected"), "expected")
    fields = {
        name: text(form, name, limit=20 if name == "expires" else 2000)
        for name in ("licence", "evidence", "reason", "expires")
    }
    if fields["evidence"] is not None and not URL.match(fields["evidence"]):
        raise BadInput(f"evidence: give an http(s) URL, got {fields['evidence']!r}")
    dry_run = expected is None
    catalogue = catalogue_of(request)

    def work(session):
        if action == "licence":
            needed = "licence: give an SPDX expression (LicenseRef-... for a contract)"
            licence = text(form, "licence", required=needed)
            outcome = licence_decisions.record_verified(
                session,
                catalogue.store,
                me.actor,
                images.matching_ids(**filters.listing_args()),
                licence=licence,
                evidence=fields["evidence"],
                expires=fields["expires"],
                note=fields["reason"],
                dry_run=dry_run,
            )
            count, skipped = len(outcome.images), []
        else:
            outcome = review.decide_matching(
                session, me.actor, action, filters.listing_args(), fields["reason"], dry_run=dry_run
            )
            count, skipped = len(outcome.changed), outcome.skipped
        if not dry_run and count != expected:
            # Raised inside the transaction: nothing of it is kept.
            raise Refused(
                f"the queue now gives {count} images to change, not the {expected} you confirmed: "
                "look at it again"
            )
        return outcome, count, skipped

    outcome, count, skipped = catalogue.transact(work)
    q = filters.query_string()
    if dry_run:
        return render(
            request,
            "bulk_confirm.html",
            me,
            action=action,
            count=count,
            skipped=skipped,
            filters=filters,
            fields=fields,
            outcome=outcome,
            q=q,
        )
    done = "recorded as " + outcome.spdx if action == "licence" else review.TARGET[action]
    more = f"; {len(skipped)} skipped" if skipped else ""
    if action == "licence" and outcome.stale_indexes:
        more += f"; indexes now stale: {', '.join(outcome.stale_indexes)}"
    if action == "licence" and outcome.reopened_outputs:
        more += "; released outputs back to pending: " + ", ".join(map(str, outcome.reopened_outputs))
    session_of(request).say(f"{count} image{'' if count == 1 else 's'} {done}{more}.")
    return RedirectResponse(f"/queue?{q}", status_code=303)
