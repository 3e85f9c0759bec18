"""The filters of `images list`, declared once: `images list`, `licence set` and `review approve|reject`
choose images with the same options (`with_filters` adds them to a command), read by the same query
(images.listing_query)."""

from __future__ import annotations

import functools
import inspect
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


def _filter_parameters(spdx: str) -> list[inspect.Parameter]:
    """The filter options as a command's parameters, in the order `--help` lists them; the SPDX
    filter is --licence, or --spdx (`spdx="spdx"`) where the command records a licence of its own."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    declared = [
        ("state", State, None),
        (spdx, Spdx if spdx == "licence" else SpdxFilter, None),
        ("raw", Raw, None),
        ("licence_status", LicenceStatus, None),
        ("flagged", Flagged, False),
        ("collection", Collection, None),
        ("expiring_within", Expiring, None),
        ("run", Run, None),
    ]
    return [
        inspect.Parameter(name, keyword, annotation=kind, default=value) for name, kind, value in declared
    ]


def with_filters(*, spdx: str = "licence"):
    """Decorate a Typer command that has a parameter `filters`: the filter options take its place on
    the command line, and the command is handed them as one dict (`filters()`)."""

    def decorate(command):
        signature = inspect.signature(command, eval_str=True)
        added = _filter_parameters(spdx)
        before = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()]
        at = [p.name for p in before].index("filters")
        parameters = before[:at] + added + before[at + 1 :]

        @functools.wraps(command)
        def wrapper(**options):
            chosen = {p.name: options.pop(p.name) for p in added}
            chosen["spdx"] = chosen.pop(spdx)
            return command(**options, filters=filters(**chosen))

        wrapper.__signature__ = signature.replace(parameters=parameters)
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
        return wrapper

    return decorate


def chosen(filters: dict) -> bool:
    """Whether any filter is given."""
    return any(v is not None and v is not False for v in filters.values())


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
    options = dict(locals())
    return options | {"state": state.value if state else None}
