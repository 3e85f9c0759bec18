"""The Typer applications, the global options and what every command shares (`handled`, `catalogue`)."""

from __future__ import annotations

import functools
from typing import Annotated

import typer

from stylevault.governance.catalogue.db import Catalogue, sqlite_file
from stylevault.governance.cli.output import err
from stylevault.governance.errors import StylevaultError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="stylevault: a data-governance-first manager of style databases for retrieval-augmented diffusion.",
)
users_app = typer.Typer(no_args_is_help=True, help="Actors and their roles (admin only).")
images_app = typer.Typer(no_args_is_help=True, help="List and inspect catalogued images.")
licence_app = typer.Typer(no_args_is_help=True, help="Record verified licences and licence aliases (legal).")
review_app = typer.Typer(no_args_is_help=True, help="Approve, reject or revoke images (legal).")
audit_app = typer.Typer(
    no_args_is_help=True, help="The hash-chained audit log: verify, log, signed checkpoints."
)
report_app = typer.Typer(no_args_is_help=True, help="Reports for legal.")
styleset_app = typer.Typer(
    no_args_is_help=True, help="Curate style sets and publish frozen versions (steward)."
)
policy_app = typer.Typer(no_args_is_help=True, help="Which members a policy clears for which use.")
index_app = typer.Typer(no_args_is_help=True, help="Cleared indexes: build, verify, list.")
model_app = typer.Typer(no_args_is_help=True, help="Generation models: import official checkpoints.")
provenance_app = typer.Typer(
    no_args_is_help=True, help="Where an output came from, and what an image affected."
)
app.add_typer(users_app, name="users")
app.add_typer(images_app, name="images")
app.add_typer(licence_app, name="licence")
licence_alias_app = typer.Typer(
    no_args_is_help=True, help="The licence alias table: shipped aliases and the site's own (legal)."
)
licence_app.add_typer(licence_alias_app, name="alias")
app.add_typer(review_app, name="review")
app.add_typer(audit_app, name="audit")
app.add_typer(report_app, name="report")
app.add_typer(styleset_app, name="styleset")
app.add_typer(policy_app, name="policy")
app.add_typer(index_app, name="index")
app.add_typer(model_app, name="model")
app.add_typer(provenance_app, name="provenance")
outputs_app = typer.Typer(
    no_args_is_help=True, help="Output review: scores, near-copy flags, release sign-off (legal, reviewer)."
)
app.add_typer(outputs_app, name="outputs")

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
