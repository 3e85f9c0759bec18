"""`stylevault doctor`: what killed runs left behind, found and (with --repair) tidied up."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stylevault.governance.cli.apps import JsonFlag, app, catalogue, handled, settings
from stylevault.governance.cli.output import out, print_json
from stylevault.governance.upkeep import doctor as checkup


@app.command("doctor")
@handled
def doctor(
    folder: Annotated[
        list[Path] | None,
        typer.Argument(help="Folders to look in, besides those of recorded indexes and runs."),
    ] = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Quarantine orphaned folders, remove temp ones, close dead runs.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Find index and output folders the catalogue never recorded, temp folders and dead ingest runs."""

    cat = catalogue()
    findings = checkup.examine(cat, folder or [])
    if repair:
        checkup.repair(cat, settings.actor, findings)
    if as_json:
        print_json([f.as_dict() for f in findings])
    elif not findings:
        out.print("nothing to repair")
    else:
        for f in findings:
            done = f"repaired: {f.repair}" if f.repaired else f"--repair would {f.repair}"
            out.print(f"{f.kind}: {f.target}: {f.detail}; {done}")
    if any(not f.repaired for f in findings):
        raise typer.Exit(1)
