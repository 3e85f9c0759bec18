"""The `stylevault` root group: the global options, and every command and group listed from a static
table, its command module imported only when that command runs or shows its own help.

`stylevault --help` reads the names and one-line helps from `COMMANDS` and imports no command module
(none of the catalogue, sqlalchemy, fastapi, numpy...); `stylevault images show 1` imports
catalogue_commands and what it needs, nothing else. This module imports nothing of ours but the table's
modules by name, so it stays light; `apps` (what the command modules share) reads `settings` from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

_PACKAGE = "stylevault.governance.cli."


@dataclass(frozen=True)
class Entry:
    """One name under `stylevault`: its help as the root's help lists it (the first paragraph of the
    command's docstring, or the group's help), the command modules that fill it, and for a group the
    Typer app ("module:attribute") that holds its commands; a plain command is the one of that name
    on `apps.app`."""

    help: str
    modules: tuple[str, ...]
    group: str | None = None


# In the order `stylevault --help` lists them (the commands, then the groups).
COMMANDS: dict[str, Entry] = {
    "init": Entry("Create or upgrade the catalogue (alembic upgrade head).", ("catalogue_commands",)),
    "ingest": Entry(
        "Catalogue images: each file ends catalogued, a recognised duplicate, or rejected with a reason.",
        ("ingest_commands",),
    ),
    "demo": Entry(
        "The catalogue flow end to end, offline, on generated images with simulated licences.",
        ("demo_commands",),
    ),
    "doctor": Entry(
        "Find index and output folders the catalogue never recorded, temp folders and dead ingest runs.",
        ("doctor_commands",),
    ),
    "generate": Entry(
        "Generate images from a prompt and a cleared index; every output's sources go on record.",
        ("generation_commands",),
    ),
    "serve": Entry(
        "The web review desk: review queue, style sets, indexes and runs, audit and reports.",
        ("web_commands",),
    ),
    "users": Entry(
        "Actors and their roles (admin only).", ("catalogue_commands", "password_commands"), "apps:users_app"
    ),
    "images": Entry("List and inspect catalogued images.", ("catalogue_commands",), "apps:images_app"),
    "licence": Entry(
        "Record verified licences and licence aliases (legal).",
        ("legal_commands", "licence_commands"),
        "apps:licence_app",
    ),
    "review": Entry("Approve, reject or revoke images (legal).", ("legal_commands",), "apps:review_app"),
    "audit": Entry(
        "The hash-chained audit log: verify, log, signed checkpoints.", ("audit_commands",), "apps:audit_app"
    ),
    "report": Entry("Reports for legal.", ("catalogue_commands",), "apps:report_app"),
    "styleset": Entry(
        "Curate style sets and publish frozen versions (steward).",
        ("curation_commands",),
        "apps:styleset_app",
    ),
    "policy": Entry(
        "Which members a policy clears for which use.", ("curation_commands",), "apps:policy_app"
    ),
    "index": Entry("Cleared indexes: build, verify, list.", ("curation_commands",), "apps:index_app"),
    "model": Entry(
        "Generation models: import official checkpoints.", ("generation_commands",), "apps:model_app"
    ),
    "provenance": Entry(
        "Where an output came from, and what an image affected.",
        ("generation_commands",),
        "apps:provenance_app",
    ),
    "outputs": Entry(
        "Output review: scores, near-copy flags, release sign-off (legal, reviewer).",
        ("output_commands",),
        "apps:outputs_app",
    ),
    "train": Entry(
        "Train models from a cleared index (generator role); each kind's options are its trainer's.",
        ("train_commands",),
        "train_commands:train_app",
    ),
}


def load(name: str) -> Any:
    """The click command or group `name`, its command modules imported."""
    entry = COMMANDS[name]
    for module in entry.modules:
        importlib.import_module(_PACKAGE + module)
    module, _, attribute = (entry.group or "apps:app").partition(":")
    built = typer.main.get_group(getattr(importlib.import_module(_PACKAGE + module), attribute))
    if entry.group is None:
        return built.commands[name]
    built.name = name
    return built


class _Loaded(Mapping):
    """The root's commands by name: every name in the table, each loaded when first looked up; while
    the root prints its help, a name not loaded yet is a stand-in that carries only its help."""

    def __init__(self) -> None:
        self.loaded: dict[str, Any] = {}
        self.listing = False

    def __getitem__(self, name: str) -> Any:
        if name in self.loaded:
            return self.loaded[name]
        if name not in COMMANDS:
            raise KeyError(name)
        if self.listing:
            return TyperCommand(name=name, help=COMMANDS[name].help)
        self.loaded[name] = load(name)
        return self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class _Root(TyperGroup):
    """A TyperGroup whose commands are the table's, each imported on first use."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Loaded()

    def list_commands(self, ctx) -> list[str]:
        return list(COMMANDS)

    def format_help(self, ctx, formatter) -> None:
        self.commands.listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self.commands.listing = False


app = typer.Typer(
    cls=_Root,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="stylevault: a data-governance-first manager of style databases for retrieval-augmented diffusion.",
)


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
