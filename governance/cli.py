"""The `stylevault` command line: a thin Typer layer over the catalogue functions.

Every list/show/report command takes --json. Exit status: 0 success, 1 a refused operation (role,
four-eyes, verification), 2 bad usage or input. Errors are one line on stderr.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from governance.errors import BadInput, Refused, StylevaultError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="stylevault: a data-governance-first manager of style databases for retrieval-augmented diffusion.",
)
users_app = typer.Typer(no_args_is_help=True, help="Actors and their roles (admin only).")
images_app = typer.Typer(no_args_is_help=True, help="List and inspect catalogued images.")
licence_app = typer.Typer(no_args_is_help=True, help="Record verified licences (legal).")
review_app = typer.Typer(no_args_is_help=True, help="Approve, reject or revoke images (legal).")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
report_app = typer.Typer(no_args_is_help=True, help="Reports for legal.")
styleset_app = typer.Typer(
    no_args_is_help=True, help="Curate style sets and publish frozen versions (steward)."
)
policy_app = typer.Typer(no_args_is_help=True, help="Which members a policy clears for which use.")
app.add_typer(users_app, name="users")
app.add_typer(images_app, name="images")
app.add_typer(licence_app, name="licence")
app.add_typer(review_app, name="review")
app.add_typer(audit_app, name="audit")
app.add_typer(report_app, name="report")
app.add_typer(styleset_app, name="styleset")
app.add_typer(policy_app, name="policy")

out = Console(soft_wrap=True)
if not out.is_terminal:
    out.width = 200  # piped output: do not truncate tables to a guessed 80 columns
err = Console(stderr=True, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class Settings:
    db: str | None = None
    actor: str | None = None
    store: str | None = None


settings = Settings()


@app.callback()
def _global(
    db: Annotated[
        str | None,
        typer.Option("--db", envvar="STYLEVAULT_DB", help="Catalogue URL (default sqlite:///stylevault.db)."),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--as", envvar="STYLEVAULT_USER", help="The actor making changes.")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", envvar="STYLEVAULT_STORE", help="Content store (default: beside a SQLite file)."
        ),
    ] = None,
) -> None:
    settings.db, settings.actor, settings.store = db, actor, store


def handled(fn):
    """Turn stylevault's errors into a one-line message and the documented exit status."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import sqlalchemy.exc

        try:
            return fn(*args, **kwargs)
        except StylevaultError as exc:
            err.print(f"stylevault: {exc}", markup=False, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except sqlalchemy.exc.IntegrityError as exc:
            detail = str(exc.orig).splitlines()[0]
            err.print(f"stylevault: refused by the catalogue's constraints: {detail}", markup=False)
            raise typer.Exit(1) from None
        except sqlalchemy.exc.DataError as exc:
            detail = str(exc.orig).splitlines()[0]
            err.print(f"stylevault: the catalogue refused a value: {detail}", markup=False)
            raise typer.Exit(2) from None
        except sqlalchemy.exc.OperationalError as exc:
            detail = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
            err.print(f"stylevault: catalogue unavailable: {detail}", markup=False)
            raise typer.Exit(2) from None

    return wrapper


def catalogue(*, current: bool = True):
    from governance.catalogue import Catalogue

    cat = Catalogue.open(settings.db, settings.store)
    if current:
        cat.require_current()
    return cat


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_plain, ensure_ascii=False) + "\n")


def print_table(rows: list[dict], columns: list[str], title: str | None = None) -> None:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=60)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)


# ------------------------------------------------------------------ init and users


@app.command()
@handled
def init(
    admin: Annotated[str | None, typer.Option(help="On a new catalogue, create this first admin.")] = None,
) -> None:
    """Create or upgrade the catalogue (alembic upgrade head)."""
    from governance import actors
    from governance.models import Actor

    cat = catalogue(current=False)
    before = cat.revision()
    cat.upgrade()
    cat.store.mkdir(parents=True, exist_ok=True)
    message = f"catalogue {cat.safe_url} at revision {cat.revision()}"
    message += " (created)" if before is None else (" (upgraded)" if before != cat.revision() else "")
    if admin:
        with cat.write() as session:
            if session.scalars(Actor.__table__.select().limit(1)).first() is not None:
                raise Refused(
                    "--admin: the catalogue already has actors; an admin adds more with `users add`"
                )
            actors.add(session, None, admin, ["admin"])
        message += f"; admin {admin!r} created"
    out.print(message, markup=False, highlight=False)


@users_app.command("add")
@handled
def users_add(
    name: str,
    role: Annotated[list[str], typer.Option("--role", help="A role; repeat for several.")],
) -> None:
    """Add an actor with one or more roles."""
    from governance import actors

    with catalogue().write() as session:
        state = actors.add(session, settings.actor, name, role)
    out.print(f"added {state['name']} ({', '.join(state['roles'])})", markup=False)


@users_app.command("grant")
@handled
def users_grant(name: str, role: Annotated[list[str], typer.Option("--role")]) -> None:
    """Give an actor more roles."""
    from governance import actors

    with catalogue().write() as session:
        state = actors.grant(session, settings.actor, name, role)
    out.print(f"{state['name']}: {', '.join(state['roles'])}", markup=False)


@users_app.command("ungrant")
@handled
def users_ungrant(name: str, role: Annotated[list[str], typer.Option("--role")]) -> None:
    """Take roles away from an actor."""
    from governance import actors

    with catalogue().write() as session:
        state = actors.grant(session, settings.actor, name, role, revoke=True)
    out.print(f"{state['name']}: {', '.join(state['roles']) or '(no roles)'}", markup=False)


@users_app.command("disable")
@handled
def users_disable(name: str) -> None:
    """Disable an actor: it keeps its history but can no longer act."""
    from governance import actors

    with catalogue().write() as session:
        actors.set_disabled(session, settings.actor, name, True)
    out.print(f"{name} disabled", markup=False)


@users_app.command("list")
@handled
def users_list(as_json: JsonFlag = False) -> None:
    """List actors and their roles."""
    from governance import actors

    with catalogue().read() as session:
        rows = actors.listing(session)
    if as_json:
        print_json(rows)
        return
    print_table(
        [{**r, "roles": ", ".join(r["roles"])} for r in rows], ["name", "roles", "disabled", "created_at"]
    )


# ------------------------------------------------------------------ ingest


@app.command()
@handled
def ingest(
    path: Annotated[
        Path, typer.Argument(help="A folder (or one file); with --manifest, the folder its paths start from.")
    ],
    manifest: Annotated[
        Path | None, typer.Option(help="CSV (with header) or JSON Lines, one row per file.")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="Where these files come from; the default collection.")
    ] = None,
    licence: Annotated[str | None, typer.Option(help="Licence for files whose row states none.")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Processes reading files (default: one per CPU core).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Catalogue images: each file ends catalogued, a recognised duplicate, or rejected with a reason."""
    from governance.ingest import ingest as run_ingest

    workers = workers or len(os.sched_getaffinity(0))
    summary = run_ingest(
        catalogue(), settings.actor, path, manifest=manifest, source=source, licence=licence, workers=workers
    )
    if as_json:
        print_json(summary.as_dict())
    else:
        out.print(summary.line(), markup=False, highlight=False)


# ------------------------------------------------------------------ images


class ApprovalState(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    revoked = "revoked"


@images_app.command("list")
@handled
def images_list(
    state: Annotated[ApprovalState | None, typer.Option(help="Approval state.")] = None,
    licence: Annotated[str | None, typer.Option(help="Exact SPDX expression.")] = None,
    licence_status: Annotated[
        str | None, typer.Option(help="missing, unrecognised, normalised, conflict, verified.")
    ] = None,
    flagged: Annotated[bool, typer.Option("--flagged", help="Licences that need legal.")] = False,
    collection: Annotated[str | None, typer.Option(help="Any source in this collection.")] = None,
    expiring_within: Annotated[int | None, typer.Option(help="Licence expires within DAYS (or has).")] = None,
    run: Annotated[int | None, typer.Option(help="First catalogued by this ingest run.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most N images (default: all).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List images with their approval state and licence; every match unless --limit."""
    from governance import images

    filters = dict(
        state=state.value if state else None,
        spdx=licence,
        licence_status=licence_status,
        flagged=flagged,
        collection=collection,
        expiring_within=expiring_within,
        run=run,
        limit=limit,
    )
    with catalogue().read() as session:
        rows = images.iter_images(session, **filters)
        count = print_json_array(rows) if as_json else print_image_lines(rows)
    if not as_json:
        out.print(f"{count} images", markup=False)


IMAGE_LINE = (
    "{id:>8}  {sha256:16}  {format:5}  {size:>11}  {state:9}  "
    "{licence_status:12}  {expires:10}  {opt:3}  {licence}"
)


def print_image_lines(rows) -> int:
    """Fixed-width lines, written as they stream in (a table would hold every row first)."""
    write = sys.stdout.write
    write(
        IMAGE_LINE.format(
            id="id",
            sha256="sha256",
            format="fmt",
            size="size",
            state="state",
            licence_status="licence",
            expires="expires",
            opt="opt",
            licence="SPDX / raw",
        )
        + "\n"
    )
    count = 0
    for row in rows:
        licence = row["spdx"] or (f"? {row['licence_raw']}" if row["licence_raw"] else "-")
        write(
            IMAGE_LINE.format(
                id=row["id"],
                sha256=row["sha256"][:16],
                format=row["format"],
                size=f"{row['width']}x{row['height']}",
                state=row["state"],
                licence_status=row["licence_status"],
                expires=str(row["expires_on"] or ""),
                opt="yes" if row["opt_out"] else "",
                licence=licence,
            )
            + "\n"
        )
        count += 1
    return count


def print_json_array(rows) -> int:
    """A JSON array written element by element, so any number of rows streams."""
    write = sys.stdout.write
    count = 0
    for row in rows:
        write(("[\n" if count == 0 else ",\n") + json.dumps(row, default=_plain, ensure_ascii=False))
        count += 1
    write("[]\n" if count == 0 else "\n]\n")
    return count


@images_app.command("show")
@handled
def images_show(image: str, as_json: JsonFlag = False) -> None:
    """Everything about one image: sources, licence, rights metadata, history."""
    from governance import images

    with catalogue().read() as session:
        data = images.show(session, images.resolve(session, image))
    if as_json:
        print_json(data)
        return
    lic = data["licence"] or {}
    out.print(f"image {data['id']}  sha256 {data['sha256']}", markup=False)
    out.print(
        f"  {data['format']} {data['width']}x{data['height']} {data['mode']}, {data['size_bytes']} bytes, "
        f"phash {data['phash']}",
        markup=False,
    )
    decided = f" by {data['state_by']}" + (f": {data['state_reason']}" if data["state_reason"] else "")
    out.print(
        f"  state {data['state']}"
        + (decided if data["state_by"] else "")
        + f"; ingested by {data['ingested_by']} (run {data['ingest_run']})",
        markup=False,
    )
    out.print(
        f"  licence {lic.get('spdx') or '-'} [{lic.get('status')}] raw: {lic.get('raw')!r}"
        + (f"  note: {lic['note']}" if lic.get("note") else ""),
        markup=False,
    )
    for key in ("attribution", "evidence", "expires_on", "verified_by", "opt_out", "data_mining"):
        if lic.get(key):
            out.print(f"    {key}: {lic[key]}", markup=False)
    for source in data["sources"]:
        out.print(f"  source {source['locator']}", markup=False)
        for key in ("collection", "creator", "title", "licence_raw", "attribution"):
            if source.get(key):
                out.print(f"    {key}: {source[key]}", markup=False)
        embedded = source["metadata"].get("embedded")
        if embedded:
            out.print(f"    embedded: {json.dumps(embedded, ensure_ascii=False)}", markup=False)
    for event in data["history"]:
        out.print(f"  #{event['seq']} {event['at']} {event['actor']} {event['action']}", markup=False)


@images_app.command("rejections")
@handled
def images_rejections(
    run: Annotated[int | None, typer.Option(help="Only this ingest run.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason, e.g. decode-error.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N rows.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Files ingest refused, with the reason: nothing offered is dropped silently."""
    from governance import images

    with catalogue().read() as session:
        rows = images.rejections(session, run=run, reason=reason, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["run", "path", "reason", "detail"])
    out.print(f"{len(rows)} rejected files", markup=False)


@images_app.command("runs")
@handled
def images_runs(
    limit: Annotated[int | None, typer.Option(min=1, help="Newest N runs.")] = None, as_json: JsonFlag = False
) -> None:
    """Ingest runs with their reconciled counts."""
    from governance import images

    with catalogue().read() as session:
        rows = images.runs(session, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table(
        rows,
        ["id", "actor", "status", "started_at", "offered", "catalogued", "duplicates", "rejected", "root"],
    )


# ------------------------------------------------------------------ licence and review


@licence_app.command("set")
@handled
def licence_set(
    image: str,
    licence: Annotated[str, typer.Option(help="SPDX expression; LicenseRef-<name> for contracts.")],
    evidence: Annotated[str | None, typer.Option(help="URL, or a file copied into the store.")] = None,
    attribution: Annotated[str | None, typer.Option(help="Attribution text the licence requires.")] = None,
    expires: Annotated[str | None, typer.Option(help="Expiry date, YYYY-MM-DD.")] = None,
    note: Annotated[str | None, typer.Option(help="Why; kept with the licence.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Record a verified licence for an image (legal)."""
    from governance import actors, images, licences

    cat = catalogue()
    with cat.write() as session:
        actor = actors.require(session, settings.actor, "licence.set")
        target = images.resolve(session, image)
        image_id = target.id
        state = licences.set_licence(
            session,
            cat.store,
            actor,
            target,
            licence=licence,
            evidence=evidence,
            attribution=attribution,
            expires=expires,
            note=note,
        )
    if as_json:
        print_json({"id": image_id, **state})
    else:
        out.print(f"image {image_id}: licence {state['spdx']} verified", markup=False)


def _review(decision: str, refs: list[str], reason: str | None, as_json: bool) -> None:
    from governance import review

    with catalogue().write() as session:
        results = review.decide(session, settings.actor, decision, refs, reason)
    if as_json:
        print_json(results)
        return
    changed = [r for r in results if r["changed"]]
    unchanged = [r for r in results if not r["changed"]]
    out.print(
        f"{len(changed)} {review.TARGET[decision]}"
        + (f", {len(unchanged)} already {review.TARGET[decision]}" if unchanged else ""),
        markup=False,
    )


Images = Annotated[list[str], typer.Argument(help="Image ids, sha256s or sha256 prefixes (12+ digits).")]
Reason = Annotated[str | None, typer.Option(help="Why; required except for a first approval.")]


@review_app.command("approve")
@handled
def review_approve(image: Images, reason: Reason = None, as_json: JsonFlag = False) -> None:
    """Approve images (legal; not the actor who ingested them)."""
    _review("approve", image, reason, as_json)


@review_app.command("reject")
@handled
def review_reject(image: Images, reason: Reason = None, as_json: JsonFlag = False) -> None:
    """Reject pending images."""
    _review("reject", image, reason, as_json)


@review_app.command("revoke")
@handled
def review_revoke(image: Images, reason: Reason = None, as_json: JsonFlag = False) -> None:
    """Revoke images (licence withdrawn, takedown, opt-out)."""
    _review("revoke", image, reason, as_json)


# ------------------------------------------------------------------ style sets


@styleset_app.command("create")
@handled
def styleset_create(
    name: str, description: Annotated[str | None, typer.Option(help="What the style set is for.")] = None
) -> None:
    """Create an empty style set, owned by the acting steward."""
    from governance import stylesets

    with catalogue().write() as session:
        state = stylesets.create(session, settings.actor, name, description)
    out.print(f"created style set {state['name']} (owner {state['owner']})", markup=False)


@styleset_app.command("add")
@handled
def styleset_add(
    name: str,
    image: Annotated[
        list[str] | None, typer.Argument(help="Image ids, sha256s or 12+ digit prefixes.")
    ] = None,
    collection: Annotated[
        str | None, typer.Option(help="Every image with a source in this collection.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Add images to the working membership (NAME, never a published NAME@N)."""
    from governance import stylesets

    with catalogue().write() as session:
        result = stylesets.add(session, settings.actor, name, image or [], collection=collection)
    if as_json:
        print_json(result)
    else:
        out.print(f"{result['name']}: {result['added']} added, {result['members']} members", markup=False)


@styleset_app.command("remove")
@handled
def styleset_remove(
    name: str,
    image: Annotated[list[str], typer.Argument(help="Image ids, sha256s or 12+ digit prefixes.")],
    as_json: JsonFlag = False,
) -> None:
    """Remove images from the working membership."""
    from governance import stylesets

    with catalogue().write() as session:
        result = stylesets.remove(session, settings.actor, name, image)
    if as_json:
        print_json(result)
    else:
        out.print(f"{result['name']}: {result['removed']} removed, {result['members']} members", markup=False)


@styleset_app.command("publish")
@handled
def styleset_publish(
    name: str,
    note: Annotated[str | None, typer.Option(help="What changed, kept with the version.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Freeze the working membership as the next version, NAME@N."""
    from governance import stylesets

    with catalogue().write() as session:
        result = stylesets.publish(session, settings.actor, name, note)
    if as_json:
        print_json(result)
    else:
        out.print(
            f"published {result['name']}@{result['version']}: {result['members']} members, "
            f"fingerprint {result['members_sha256'][:16]}",
            markup=False,
        )


@styleset_app.command("show")
@handled
def styleset_show(
    ref: Annotated[str, typer.Argument(metavar="NAME[@N]")],
    diff: Annotated[str | None, typer.Option(help="Members added and removed between versions A..B.")] = None,
    members: Annotated[bool, typer.Option("--members", help="List the members of the version.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """A style set, its versions, and (NAME@N or --members) a version's members."""
    from governance import stylesets

    with catalogue().read() as session:
        if diff:
            name, version = stylesets.parse_ref(ref)
            if version is not None:
                raise BadInput(f"--diff: give the style set's name, not {ref}")
            data = stylesets.diff(session, name, diff)
        else:
            data = stylesets.show(session, ref, members=members)
    if as_json:
        print_json(data)
        return
    if diff:
        out.print(
            f"{data['name']} {data['from']}..{data['to']}: +{len(data['added'])} -{len(data['removed'])}",
            markup=False,
        )
        for sign, key in (("+", "added"), ("-", "removed")):
            for row in data[key]:
                out.print(f"  {sign} {row['image_id']} {row['sha256']}", markup=False)
        return
    out.print(
        f"{data['name']}: {data['description'] or ''} (owner {data['owner']}, "
        f"{data['working_members']} working members)",
        markup=False,
    )
    print_table(data["versions"], ["version", "members", "published_by", "published_at", "note"])
    if "members" in data:
        print_table(
            data["members"],
            ["image_id", "sha256", "state", "spdx", "licence_status"],
            title=f"{data['name']}@{data.get('version')}",
        )


@styleset_app.command("list")
@handled
def styleset_list(as_json: JsonFlag = False) -> None:
    """Every style set with its latest version."""
    from governance import stylesets

    with catalogue().read() as session:
        rows = stylesets.listing(session)
    if as_json:
        print_json(rows)
    else:
        print_table(rows, ["name", "latest_version", "working_members", "owner", "description"])


# ------------------------------------------------------------------ policies


@policy_app.command("list")
@handled
def policy_list(as_json: JsonFlag = False) -> None:
    """The policies found (STYLEVAULT_POLICIES, ./policies, then the shipped ones)."""
    from governance.policy import list_policies

    rows = [
        {"name": p.name, "description": p.description, "sha256": p.hash, "path": str(p.path)}
        for p in list_policies()
    ]
    if as_json:
        print_json(rows)
    else:
        print_table(
            [{**r, "sha256": r["sha256"][:16]} for r in rows], ["name", "description", "sha256", "path"]
        )


@policy_app.command("show")
@handled
def policy_show(policy: str, as_json: JsonFlag = False) -> None:
    """A policy's rules, its file and its content hash."""
    from governance.policy import load_policy

    loaded = load_policy(policy)
    data = {"sha256": loaded.hash, "path": str(loaded.path), **loaded.model_dump(mode="json")}
    if as_json:
        print_json(data)
        return
    out.print(f"{loaded.name}: {loaded.description}\n  {loaded.path}\n  sha256 {loaded.hash}", markup=False)
    out.print(
        f"  requires {loaded.required_state}; settled licences: {', '.join(loaded.settled_statuses)}; "
        f"opt-outs: {loaded.opt_out}; data-mining reservations: {loaded.data_mining_reservation}",
        markup=False,
    )
    rules = [
        {
            "match": ", ".join(rule.match),
            "decision": rule.decision,
            "obligations": ", ".join(rule.obligations),
            "reason": rule.reason,
        }
        for rule in loaded.licences
    ]
    rules.append(
        {"match": "(anything else)", "decision": loaded.default.decision, "reason": loaded.default.reason}
    )
    print_table(rules, ["match", "decision", "obligations", "reason"])


@policy_app.command("check")
@handled
def policy_check(
    policy: str,
    styleset: Annotated[str, typer.Option(metavar="NAME[@N]", help="A published style-set version.")],
    on: Annotated[str | None, typer.Option(help="Judge as of this date, YYYY-MM-DD (default today).")] = None,
    summary: Annotated[bool, typer.Option("--summary", help="Counts only, no member lists.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Which members of a style-set version the policy clears, and why each other one is excluded."""
    from governance import clearance
    from governance.licences import parse_date
    from governance.policy import REASON_TEXT, load_policy

    loaded = load_policy(policy)
    day = parse_date(on, "--on") if on else None
    with catalogue().read() as session:
        result = clearance.check(session, loaded, styleset, on=day)
        if as_json:
            sys.stdout.write("{\n" + json.dumps(result.as_dict(), default=_plain)[1:-1])
            if not summary:
                for key, cleared in (("cleared_members", True), ("excluded_members", False)):
                    sys.stdout.write(f', "{key}": ')
                    print_json_array(clearance.members(session, loaded, styleset, cleared=cleared, on=day))
            sys.stdout.write("\n}\n")
            return
        out.print(
            f"{result.styleset}@{result.version} under {result.policy} (sha256 {result.policy_sha256[:16]}), "
            f"on {result.on}: {result.cleared} of {result.members} cleared",
            markup=False,
        )
        for reason, count in result.excluded.items():
            out.print(f"  {count:>8} excluded: {REASON_TEXT[reason]} [{reason}]", markup=False)
        if result.expiring_soon:
            out.print(f"  {result.expiring_soon:>8} cleared, but the licence expires soon", markup=False)
        if summary:
            return
        for row in clearance.members(session, loaded, styleset, cleared=False, on=day):
            out.print(
                f"  excluded {row['image_id']:>8} {row['sha256'][:16]}  {row['reason']}: {row['detail']}",
                markup=False,
            )
        for row in clearance.members(session, loaded, styleset, cleared=True, on=day):
            owed = ", ".join(row["obligations"]) or "nothing owed"
            out.print(
                f"  cleared  {row['image_id']:>8} {row['sha256'][:16]}  {row['spdx']} ({owed})", markup=False
            )


# ------------------------------------------------------------------ audit and reports


@audit_app.command("verify")
@handled
def audit_verify(as_json: JsonFlag = False) -> None:
    """Walk the chain; exit 1 at the first edited, deleted, inserted or reordered event."""
    from governance import audit

    with catalogue().read() as session:
        result = audit.verify(session)
    if as_json:
        print_json(result.as_dict())
    elif result.ok:
        out.print(f"audit chain intact: {result.events} events, head {result.head_hash}", markup=False)
    else:
        err.print(
            f"stylevault: audit chain broken at event {result.broken_at}: {result.problem}", markup=False
        )
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("log")
@handled
def audit_log(
    target: Annotated[str | None, typer.Option(help="TYPE:ID (e.g. actor:alice), or an IMAGE.")] = None,
    action: Annotated[str | None, typer.Option(help="Action or prefix, e.g. review.")] = None,
    actor: Annotated[str | None, typer.Option(help="Events by this actor.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Newest N events.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Audit events, newest first."""
    from governance import audit, images

    with catalogue().read() as session:
        target_type = target_id = None
        if target and ":" in target:
            target_type, target_id = target.split(":", 1)
        elif target:
            target_type, target_id = "image", str(images.resolve(session, target).id)
        events = audit.log(
            session, target_type=target_type, target_id=target_id, action=action, actor=actor, limit=limit
        )
    if as_json:
        print_json(events)
        return
    print_table(
        [
            {**e, "change": json.dumps(e["after"], ensure_ascii=False)[:80] if e["after"] else ""}
            for e in events
        ],
        ["seq", "at", "actor", "action", "target", "change"],
    )


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
    from governance import reports

    with catalogue().read() as session:
        report = reports.licence_report(session, expiring_within=expiring_within)
    if as_json or fmt is ReportFormat.json:
        print_json(report)
    else:
        sys.stdout.write(reports.render(report, fmt.value))


# ------------------------------------------------------------------ demo


@app.command()
@handled
def demo(
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Work here instead of a new temporary folder.")
    ] = None,
) -> None:
    """The catalogue flow end to end, offline, on generated images with simulated licences."""
    from governance.demo import run_demo

    run_demo(folder, out)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
