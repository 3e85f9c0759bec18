"""`stylevault ingest`: catalogue a folder or a manifest of files (its own module, so that a read
command never imports the ingest workers, PIL or numpy)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from stylevault.governance.cli.apps import JsonFlag, app, catalogue, handled, settings
from stylevault.governance.cli.output import out, print_json
from stylevault.governance.ingest.run import ingest as run_ingest


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

    workers = workers or len(os.sched_getaffinity(0))
    summary = run_ingest(
        catalogue(), settings.actor, path, manifest=manifest, source=source, licence=licence, workers=workers
    )
    if as_json:
        print_json(summary.as_dict())
    else:
        out.print(summary.line())
