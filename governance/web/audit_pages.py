"""The audit log with filters and a verify button (the chain and the replay, as `stylevault audit
verify` checks them), and the licence report."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from stylevault.governance.errors import BadInput
from stylevault.governance.legal import reports
from stylevault.governance.upkeep import log_check
from stylevault.governance.views import images
from stylevault.governance.web.desk import Me, catalogue_of, render, whole_number

router = APIRouter()
AUDIT_LIMIT = 200
AUDIT_MAX = 5000
FINDINGS_SHOWN = 10  # of the replay's findings, the first few the page lists


@router.get("/audit", response_class=HTMLResponse)
def audit_log(request: Request, me: Me):
    params = request.query_params
    actor = (params.get("actor") or "").strip() or None
    action = (params.get("action") or "").strip() or None
    target = (params.get("target") or "").strip() or None
    limit = whole_number(params.get("limit"), "limit", minimum=1) or AUDIT_LIMIT
    if limit > AUDIT_MAX:
        raise BadInput(f"limit: at most {AUDIT_MAX} events a page")
    verification = None
    with catalogue_of(request).read() as session:
        events = images.audit_events(session, target=target, action=action, actor=actor, limit=limit)
        if params.get("verify"):  # what `stylevault audit verify` proves, less the checkpoint file
            verification = log_check.verify_log(session)
    return render(
        request,
        "audit.html",
        me,
        events=events,
        verification=verification,
        findings_shown=FINDINGS_SHOWN,
        f={"actor": actor or "", "action": action or "", "target": target or "", "limit": limit},
    )


@router.get("/reports/licences", response_class=HTMLResponse)
def licence_report(request: Request, me: Me):
    params = request.query_params
    days = whole_number(params.get("expiring"), "expiring (days)")
    fmt = params.get("format")
    with catalogue_of(request).read() as session:
        report = reports.licence_report(session, expiring_within=90 if days is None else days)
    if fmt in ("md", "csv"):
        body = reports.render(report, fmt)
        media = "text/markdown" if fmt == "md" else "text/csv"
        name = f"licence-report-{report['generated_on']}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(body, media_type=f"{media}; charset=utf-8", headers=headers)
    if fmt not in (None, ""):
        raise BadInput(f"format: md or csv, got {fmt!r}")
    return render(request, "report.html", me, r=report)
