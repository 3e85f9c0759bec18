"""Index builds with their policy and stale state; generation runs with their outputs, the neighbours
each retrieved and the attribution notice."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from stylevault.governance.index import builds as index
from stylevault.governance.web.desk import Me, catalogue_of, render, whole_number
from stylevault.governance.web.queries import run_detail, runs

router = APIRouter()
RUNS_PAGE = 50


@router.get("/indexes", response_class=HTMLResponse)
def index_list(request: Request, me: Me):
    with catalogue_of(request).read() as session:
        rows = index.listing(session)
    return render(request, "indexes.html", me, rows=list(reversed(rows)))


@router.get("/runs", response_class=HTMLResponse)
def run_list(request: Request, me: Me):
    before = whole_number(request.query_params.get("before"), "before")
    with catalogue_of(request).read() as session:
        page = runs(session, before=before, size=RUNS_PAGE)
    return render(request, "runs.html", me, page=page)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, me: Me):
    with catalogue_of(request).read() as session:
        detail = run_detail(session, run_id)
    return render(request, "run.html", me, d=detail)
