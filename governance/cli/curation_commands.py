"""Commands for curation: style sets and policies."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer

from stylevault.governance.cli.apps import (
    JsonFlag,
    catalogue,
    handled,
    index_app,
    policy_app,
    settings,
    styleset_app,
)
from stylevault.governance.cli.output import (
    _plain,
    err,
    out,
    print_json,
    print_json_array,
    print_table,
)
from stylevault.governance.curation import clearance, stylesets
from stylevault.governance.errors import BadInput
from stylevault.governance.index import builds as index
from stylevault.governance.index import verification
from stylevault.governance.rules.licences import parse_date
from stylevault.governance.rules.policy_files import list_policies, load_policy
from stylevault.governance.rules.vocabulary import REASON_TEXT
from stylevault.governance.views import images

# ------------------------------------------------------------------ style sets


@styleset_app.command("create")
@handled
def styleset_create(
    name: str, description: Annotated[str | None, typer.Option(help="What the style set is for.")] = None
) -> None:
    """Create an empty style set, owned by the acting steward."""

    state = catalogue().transact(lambda session: stylesets.create(session, settings.actor, name, description))
    out.print(f"created style set {state['name']} (owner {state['owner']})")


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

    result = catalogue().transact(
        lambda session: stylesets.add(session, settings.actor, name, image or [], collection=collection)
    )
    if as_json:
        print_json(result)
    else:
        out.print(f"{result['name']}: {result['added']} added, {result['members']} members")


@styleset_app.command("remove")
@handled
def styleset_remove(
    name: str,
    image: Annotated[list[str], typer.Argument(help="Image ids, sha256s or 12+ digit prefixes.")],
    as_json: JsonFlag = False,
) -> None:
    """Remove images from the working membership."""

    result = catalogue().transact(lambda session: stylesets.remove(session, settings.actor, name, image))
    if as_json:
        print_json(result)
    else:
        out.print(f"{result['name']}: {result['removed']} removed, {result['members']} members")


@styleset_app.command("publish")
@handled
def styleset_publish(
    name: str,
    note: Annotated[str | None, typer.Option(help="What changed, kept with the version.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Freeze the working membership as the next version, NAME@N."""

    result = catalogue().transact(lambda session: stylesets.publish(session, settings.actor, name, note))
    if as_json:
        print_json(result)
    else:
        out.print(
            f"published {result['name']}@{result['version']}: {result['members']} members, "
            f"fingerprint {result['members_sha256'][:16]}",
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
        )
        for sign, key in (("+", "added"), ("-", "removed")):
            for row in data[key]:
                out.print(f"  {sign} {row['image_id']} {row['sha256']}")
        return
    out.print(
        f"{data['name']}: {data['description'] or ''} (owner {data['owner']}, "
        f"{data['working_members']} working members)",
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

    loaded = load_policy(policy)
    data = {"sha256": loaded.hash, "path": str(loaded.path), **loaded.model_dump(mode="json")}
    if as_json:
        print_json(data)
        return
    out.print(f"{loaded.name}: {loaded.description}", f"  {loaded.path}", f"  sha256 {loaded.hash}")
    out.print(
        f"  requires {loaded.required_state}; settled licences: {', '.join(loaded.settled_statuses)}; "
        f"opt-outs: {loaded.opt_out}; data-mining reservations: {loaded.data_mining_reservation}",
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
        )
        for reason, count in result.excluded.items():
            out.print(f"  {count:>8} excluded: {REASON_TEXT[reason]} [{reason}]")
        if result.expiring_soon:
            out.print(f"  {result.expiring_soon:>8} cleared, but the licence expires soon")
        if summary:
            return
        for row in clearance.members(session, loaded, styleset, cleared=False, on=day):
            out.print(
                f"  excluded {row['image_id']:>8} {row['sha256'][:16]}  {row['reason']}: {row['detail']}",
            )
        for row in clearance.members(session, loaded, styleset, cleared=True, on=day):
            owed = ", ".join(row["obligations"]) or "nothing owed"
            out.print(f"  cleared  {row['image_id']:>8} {row['sha256'][:16]}  {row['spdx']} ({owed})")


# ------------------------------------------------------------------ indexes


@index_app.command("build")
@handled
def index_build(
    styleset: Annotated[str, typer.Option(metavar="NAME[@N]", help="A published style-set version.")],
    policy: Annotated[str, typer.Option(help="The policy that decides which members are cleared.")],
    encoder: Annotated[str, typer.Option(help="MODEL@PRETRAINED, hf-hub:ORG/REPO or local-dir:PATH.")],
    out_dir: Annotated[Path, typer.Option("--out", help="A new folder for the index.")],
    allow_download: Annotated[
        bool, typer.Option("--allow-download", help="Fetch encoder weights if missing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Embed the cleared members of a style-set version and write a usearch index with its manifest."""

    progress = _embedding_progress()
    with progress or nullcontext():
        built = index.build(
            catalogue(),
            settings.actor,
            styleset,
            policy,
            encoder,
            out_dir,
            allow_download=allow_download,
            progress=progress.advance if progress else None,
        )
    if as_json:
        print_json(built.as_dict())
        return
    excluded = ", ".join(f"{n} {reason}" for reason, n in built.excluded.items()) or "none"
    out.print(
        f"built index {built.index_id} in {built.path}: {built.members} members ({built.search} search), "
        f"{built.embedded} newly embedded; excluded: {excluded}; "
        f"manifest sha256 {built.manifest_sha256[:16]}",
    )


class _EmbeddingProgress:
    def __init__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=True
        )
        self.task = None

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

    def advance(self, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task("embedding", total=total)
        self.bar.advance(self.task, done)


def _embedding_progress():
    return _EmbeddingProgress() if sys.stderr.isatty() else None


@index_app.command("verify")
@handled
def index_verify(
    folder: Path,
    on: Annotated[str | None, typer.Option(help="Judge the members as of this date (default today).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check every hash, the manifest against the catalogue, and that every member is still cleared."""

    result = verification.verify(
        catalogue(), folder, on=parse_date(on, "--on") if on else None, actor=settings.actor
    )
    if as_json:
        print_json(result.as_dict())
    elif result.ok:
        for difference in result.differences:
            err.print(f"stylevault: index {folder}: {difference}")
        m = result.manifest
        out.print(
            f"index {result.index_id} verified: {m['count']} members of {m['styleset']['name']}@"
            f"{m['styleset']['version']} under {m['policy']['name']}, encoder {m['encoder']['id']}",
        )
    else:
        for problem in result.problems + result.differences:
            err.print(f"stylevault: index {folder}: {problem}")
    if not result.ok:
        raise typer.Exit(1)


@index_app.command("list")
@handled
def index_list(
    image: Annotated[str | None, typer.Option(help="Only indexes that hold this image.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Index builds with their style-set version, policy, encoder and whether they are stale."""

    with catalogue().read() as session:
        image_id = images.resolve(session, image).id if image else None
        rows = index.listing(session, image_id=image_id)
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            {**r, "styleset": f"{r['styleset']}@{r['version']}", "stale": r["stale_reason"] or ""}
            for r in rows
        ],
        ["index_id", "styleset", "policy", "members", "search", "encoder_id", "built_at", "stale", "path"],
    )
