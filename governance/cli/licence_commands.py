"""Commands of legal's licence alias table: licence alias add|list|remove, licence rederive."""

from __future__ import annotations

from typing import Annotated

import typer

from stylevault.governance.cli.apps import (
    JsonFlag,
    catalogue,
    handled,
    licence_alias_app,
    licence_app,
    settings,
)
from stylevault.governance.cli.output import out, print_json, print_table
from stylevault.governance.legal import alias_edits


def _print_change(verb: str, state: dict) -> None:
    count = len(state["rederived"])
    out.print(
        f"alias {state['text']!r} -> {state['spdx']} {verb}; {count} automatic licence"
        f"{'' if count == 1 else 's'} re-derived"
        + (f": images {', '.join(map(str, state['rederived']))}" if count else "")
    )


@licence_alias_app.command("add")
@handled
def alias_add(
    text: Annotated[
        str, typer.Argument(help="The licence as sources write it, e.g. 'GPL-2+ with Font exception'.")
    ],
    spdx: Annotated[str, typer.Option(help="The SPDX expression it means exactly.")],
    why: Annotated[str, typer.Option(help="Why it means that: where legal read it.")],
    as_json: JsonFlag = False,
) -> None:
    """Add a site alias (legal); the automatic licences it changes are re-derived at once."""

    with catalogue().write() as session:
        state = alias_edits.add(session, settings.actor, text, spdx, why)
    if as_json:
        print_json(state)
    else:
        _print_change("added", state)


@licence_alias_app.command("remove")
@handled
def alias_remove(
    text: Annotated[str, typer.Argument(help="The site alias's text.")], as_json: JsonFlag = False
) -> None:
    """Remove a site alias (legal); the licences it produced are re-derived without it."""

    with catalogue().write() as session:
        state = alias_edits.remove(session, settings.actor, text)
    if as_json:
        print_json(state)
    else:
        _print_change("removed", state)


@licence_alias_app.command("list")
@handled
def alias_list(as_json: JsonFlag = False) -> None:
    """Every alias in force: the shipped table, then the site's own."""

    with catalogue().read() as session:
        rows = alias_edits.listing(session)
    if as_json:
        print_json(rows)
        return
    shown = [{**row, "means": row["spdx"] or f"(ambiguous) {row['ambiguous']}"} for row in rows]
    print_table(shown, ["origin", "text", "means", "why", "added_by"])
    out.print(f"{len(rows)} aliases")


@licence_app.command("rederive")
@handled
def licence_rederive(as_json: JsonFlag = False) -> None:
    """Derive every automatic licence again with the aliases in force (after an upgrade; legal)."""

    with catalogue().write() as session:
        changed = alias_edits.rederive_all(session, settings.actor)
    if as_json:
        print_json({"rederived": changed})
    else:
        out.print(f"{len(changed)} automatic licences changed")
