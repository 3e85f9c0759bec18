"""The filters of `images list`, declared once: `images list`, `licence set` and `review approve|reject`
choose images with the same options, read by the same query (images.listing_query)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer


class ApprovalState(StrEnum):
    pending = "pending"
    approved = "approved"
    rejected = "rejected"
    revoked = "revoked"


State = Annotated[ApprovalState | None, typer.Option(help="Approval state.")]
# `licence set` takes --licence for the licence it records, so there the SPDX filter is --spdx.
Spdx = Annotated[str | None, typer.Option("--licence", help="SPDX expression, any case.")]
SpdxFilter = Annotated[str | None, typer.Option("--spdx", help="Images whose SPDX expression is this.")]
Raw = Annotated[str | None, typer.Option(help="Licence exactly as found, e.g. Expat.")]
LicenceStatus = Annotated[
    str | None, typer.Option(help="missing, unrecognised, normalised, conflict, verified.")
]
Flagged = Annotated[bool, typer.Option("--flagged", help="Licences that need legal.")]
Collection = Annotated[str | None, typer.Option(help="Any source in this collection.")]
Expiring = Annotated[int | None, typer.Option(help="Licence expires within DAYS (or has).")]
Run = Annotated[int | None, typer.Option(help="First catalogued by this ingest run.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Say what would change; change nothing.")]


def filters(
    *,
    state: ApprovalState | None = None,
    spdx: str | None = None,
    raw: str | None = None,
    licence_status: str | None = None,
    flagged: bool = False,
    collection: str | None = None,
    expiring_within: int | None = None,
    run: int | None = None,
) -> dict:
    """The options as images.listing_query's keyword arguments."""
    return dict(
        state=state.value if state else None,
        spdx=spdx,
        raw=raw,
        licence_status=licence_status,
        flagged=flagged,
        collection=collection,
        expiring_within=expiring_within,
        run=run,
    )
