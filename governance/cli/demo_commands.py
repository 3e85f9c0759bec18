"""`stylevault demo`: the catalogue flow end to end, offline (its own module, so that no other command
imports the demo's world, ingest and index builds)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stylevault.governance.cli.apps import app, handled
from stylevault.governance.cli.output import out
from stylevault.governance.demo.run import run_demo


@app.command()
@handled
def demo(
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Work here instead of a new temporary folder.")
    ] = None,
) -> None:
    """The catalogue flow end to end, offline, on generated images with simulated licences."""

    run_demo(folder, out.console)
