"""Commands for curation: style sets and policies."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from governance.cli import (
    JsonFlag,
    catalogue,
    handled,
    policy_app,
    settings,
    styleset_app,
)
from governance.cli.output import (
    _plain,
    out,
    print_json,
    print_json_array,
    print_table,
)
from governance.errors import BadInput

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
