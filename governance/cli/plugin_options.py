"""Command-line options rendered from a plugin's options dataclass: one `--option` per field, its
type from the annotation, its help from `field.metadata["help"]`, a bool as `--flag/--no-flag`.
The core knows no plugin's options; it reads them off the dataclass the plugin declares."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import click

from stylevault.governance.door import TrainingOptions

TYPES = {int: click.INT, float: click.FLOAT, str: click.STRING, Path: click.Path(path_type=Path)}
SHARED = {f.name for f in dataclasses.fields(TrainingOptions)}  # listed after a kind's own


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def fields(cls: type) -> list[dataclasses.Field]:
    """The dataclass's fields, its own first, then those every trainer's options share."""
    found = dataclasses.fields(cls)
    return [f for f in found if f.name not in SHARED] + [f for f in found if f.name in SHARED]


def option(cls: type, name: str, *, spelled: str | None = None, default=dataclasses.MISSING) -> click.Option:
    """The option for field `name` of `cls`, spelled `--spelled` (default: the field's name), with
    `default` (default: the field's), passed to the command as `spelled`."""
    spelled = spelled or name
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    kind = _plain(typing.get_type_hints(cls)[name])
    if default is dataclasses.MISSING:
        default = field.default
    help = field.metadata.get("help")
    if kind is bool:
        return click.Option(
            [f"{flag(spelled)}/--no-{flag(spelled)[2:]}", spelled],
            default=default,
            help=help,
            show_default=True,
        )
    if kind not in TYPES:
        raise TypeError(f"{cls.__name__}.{name}: options of type {kind} cannot be rendered")
    return click.Option(
        [flag(spelled), spelled], type=TYPES[kind], default=default, help=help, show_default=True
    )


def _plain(annotation):
    """`X | None` -> X; anything else as it is."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
