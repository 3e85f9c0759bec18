"""The Typer applications the command modules fill, and what every command shares (`handled`,
`catalogue`, `settings`, `JsonFlag`); the root group and its global options are cli.root's."""

from __future__ import annotations

import functools
from typing import Annotated

import typer

from stylevault.governance.catalogue.db import Catalogue, sqlite_file
from stylevault.governance.cli.output import err
from stylevault.governance.cli.root import COMMANDS, settings
from stylevault.governance.errors import StylevaultError

# The top-level commands (init, ingest, serve...) are registered here by their modules; the
# `stylevault` root group (cli.root) lists them and the groups below from its table, loading each
# module on first use. A group's help is the table's, so the root's listing and the group agree.
app = typer.Typer(add_completion=False)


def _group(name: str) -> typer.Typer:
    return typer.Typer(no_args_is_help=True, add_completion=False, help=COMMANDS[name].help)


users_app = _group("users")
images_app = _group("images")
licence_app = _group("licence")
review_app = _group("review")
audit_app = _group("audit")
report_app = _group("report")
styleset_app = _group("styleset")
policy_app = _group("policy")
index_app = _group("index")
model_app = _group("model")
provenance_app = _group("provenance")
outputs_app = _group("outputs")
licence_alias_app = typer.Typer(
    no_args_is_help=True, help="The licence alias table: shipped aliases and the site's own (legal)."
)
licence_app.add_typer(licence_alias_app, name="alias")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def handled(fn):
    """Turn stylevault's errors into a one-line message and the documented exit status."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import sqlalchemy.exc

        try:
            return fn(*args, **kwargs)
        except StylevaultError as exc:
            err.print(f"stylevault: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except sqlalchemy.exc.IntegrityError as exc:
            detail = str(exc.orig).splitlines()[0]
            err.print(f"stylevault: refused by the catalogue's constraints: {detail}")
            raise typer.Exit(1) from None
        except sqlalchemy.exc.DataError as exc:
            detail = str(exc.orig).splitlines()[0]
            err.print(f"stylevault: the catalogue refused a value: {detail}")
            raise typer.Exit(2) from None
        except sqlalchemy.exc.OperationalError as exc:
            detail = str(exc.orig).splitlines()[0] if exc.orig else str(exc)
            err.print(f"stylevault: catalogue unavailable: {detail}")
            raise typer.Exit(2) from None

    return wrapper


def catalogue(*, current: bool = True):
    cat = Catalogue.open(settings.db, settings.store)
    if current:
        cat.require_current()
    if settings.store is None and sqlite_file(cat.url) is None and not cat.store.exists():
        # A PostgreSQL catalogue has no file to put its store beside: say where it goes, once.
        err.print(
            f"stylevault: content store {cat.store} (thumbnails, evidence, caches) does not exist yet and "
            "will be made here; set --store or STYLEVAULT_STORE to keep it in one place for every user",
        )
    return cat
