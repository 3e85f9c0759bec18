"""Commands of the catalogue core: init, users, images, report (ingest and demo have modules of their
own, so that a read command imports neither; legal's licence and review commands are in legal_commands,
the audit commands in audit_commands)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from stylevault.governance.catalogue import actors
from stylevault.governance.cli import selection
from stylevault.governance.cli.apps import (
    JsonFlag,
    app,
    catalogue,
    handled,
    images_app,
    report_app,
    settings,
    users_app,
)
from stylevault.governance.cli.output import (
    out,
    print_document,
    print_image_lines,
    print_json,
    print_json_array,
    print_table,
)
from stylevault.governance.legal import reports
from stylevault.governance.views import images

# ------------------------------------------------------------------ init and users


@app.command()
@handled
def init(
    admin: Annotated[str | None, typer.Option(help="On a new catalogue, create this first admin.")] = None,
) -> None:
    """Create or upgrade the catalogue (alembic upgrade head)."""

    cat = catalogue(current=False)
    before = cat.revision()
    cat.upgrade()
    cat.store.mkdir(parents=True, exist_ok=True)
    message = f"catalogue {cat.safe_url} at revision {cat.revision()}"
    message += " (created)" if before is None else (" (upgraded)" if before != cat.revision() else "")
    if admin:
        with cat.write() as session:
            actors.add(session, None, admin, ["admin"])
        message += f"; admin {admin!r} created"
    out.print(message)


@users_app.command("add")
@handled
def users_add(
    name: str,
    role: Annotated[list[str], typer.Option("--role", help="A role; repeat for several.")],
) -> None:
    """Add an actor with one or more roles."""

    with catalogue().write() as session:
        state = actors.add(session, settings.actor, name, role)
    out.print(f"added {state['name']} ({', '.join(state['roles'])})")


@users_app.command("grant")
@handled
def users_grant(name: str, role: Annotated[list[str], typer.Option("--role")]) -> None:
    """Give an actor more roles."""

    with catalogue().write() as session:
        state = actors.grant(session, settings.actor, name, role)
    out.print(f"{state['name']}: {', '.join(state['roles'])}")


@users_app.command("ungrant")
@handled
def users_ungrant(name: str, role: Annotated[list[str], typer.Option("--role")]) -> None:
    """Take roles away from an actor."""

    with catalogue().write() as session:
        state = actors.grant(session, settings.actor, name, role, revoke=True)
    out.print(f"{state['name']}: {', '.join(state['roles']) or '(no roles)'}")


@users_app.command("disable")
@handled
def users_disable(name: str) -> None:
    """Disable an actor: it keeps its history but can no longer act."""

    with catalogue().write() as session:
        actors.set_disabled(session, settings.actor, name, True)
    out.print(f"{name} disabled")


@users_app.command("list")
@handled
def users_list(as_json: JsonFlag = False) -> None:
    """List actors and their roles."""

    with catalogue().read() as session:
        rows = actors.listing(session)
    if as_json:
        print_json(rows)
        return
    print_table(
        [{**r, "roles": ", ".join(r["roles"])} for r in rows], ["name", "roles", "disabled", "created_at"]
    )


# ------------------------------------------------------------------ images


@images_app.command("list")
@handled
@selection.with_filters()
def images_list(
    filters: dict | None = None,  # the filter options (selection.with_filters)
    limit: Annotated[int | None, typer.Option(help="At most N images (default: all).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List images with their approval state, licence and first source; every match unless --limit."""

    with catalogue().read() as session:
        rows = (row.as_dict() for row in images.iter_images(session, limit=limit, **filters))
        count = print_json_array(rows) if as_json else print_image_lines(rows)
    if not as_json:
        out.print(f"{count} images")


@images_app.command("show")
@handled
def images_show(image: str, as_json: JsonFlag = False) -> None:
    """Everything about one image: sources, licence, rights metadata, history."""

    with catalogue().read() as session:
        data = images.show(session, images.resolve(session, image)).as_dict()
    if as_json:
        print_json(data)
        return
    lic = data["licence"] or {}
    out.print(f"image {data['id']}  sha256 {data['sha256']}")
    out.print(
        f"  {data['format']} {data['width']}x{data['height']} {data['mode']}, {data['size_bytes']} bytes, "
        f"phash {data['phash']}",
    )
    decided = f" by {data['state_by']}" + (f": {data['state_reason']}" if data["state_reason"] else "")
    out.print(
        f"  state {data['state']}"
        + (decided if data["state_by"] else "")
        + f"; ingested by {data['ingested_by']} (run {data['ingest_run']})",
    )
    out.print(
        f"  licence {lic.get('spdx') or '-'} [{lic.get('status')}] raw: {lic.get('raw')!r}"
        + (f"  note: {lic['note']}" if lic.get("note") else ""),
    )
    for key in ("attribution", "evidence", "expires_on", "verified_by", "opt_out", "data_mining"):
        if lic.get(key):
            out.print(f"    {key}: {lic[key]}")
    for via in lic.get("via") or []:
        out.print(f"    via: {via}")
    for source in data["sources"]:
        out.print(f"  source {source['locator']}")
        for key in ("collection", "creator", "title", "licence_raw", "attribution"):
            if source.get(key):
                out.print(f"    {key}: {source[key]}")
        for via in source.get("licence_via") or []:
            out.print(f"      via: {via}")
        references = source["metadata"].get("file", {}).get("external_references")
        if references:
            out.print(f"    external references (not fetched): {', '.join(references)}")
        embedded = source["metadata"].get("embedded")
        if embedded:
            out.print(f"    embedded: {json.dumps(embedded, ensure_ascii=False)}")
    for event in data["history"]:
        out.print(f"  #{event['seq']} {event['at']} {event['actor']} {event['action']}")


@images_app.command("rejections")
@handled
def images_rejections(
    run: Annotated[int | None, typer.Option(help="Only this ingest run.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason, e.g. decode-error.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N rows.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Files ingest refused, with the reason: nothing offered is dropped silently."""

    with catalogue().read() as session:
        rows = images.rejections(session, run=run, reason=reason, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["run", "path", "reason", "detail"])
    out.print(f"{len(rows)} rejected files")


@images_app.command("runs")
@handled
def images_runs(
    limit: Annotated[int | None, typer.Option(min=1, help="Newest N runs.")] = None, as_json: JsonFlag = False
) -> None:
    """Ingest runs with their reconciled counts."""

    with catalogue().read() as session:
        rows = images.runs(session, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(
        rows,
        ["id", "actor", "status", "started_at", "offered", "catalogued", "duplicates", "rejected", "root"],
    )


# ------------------------------------------------------------------ reports


class ReportFormat(StrEnum):
    md = "md"
    csv = "csv"
    json = "json"


@report_app.command("licences")
@handled
def report_licences(
    fmt: Annotated[ReportFormat, typer.Option("--format", help="md, csv or json.")] = ReportFormat.md,
    expiring_within: Annotated[int, typer.Option(min=0, help="Days ahead counted as expiring.")] = 90,
    as_json: JsonFlag = False,
) -> None:
    """Licences by approval state, licences that need legal, expiring licences, opt-outs."""

    with catalogue().read() as session:
        report = reports.licence_report(session, expiring_within=expiring_within)
    if as_json or fmt is ReportFormat.json:
        print_json(report)
    else:
        print_document(reports.render(report, fmt.value))
