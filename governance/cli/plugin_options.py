"""Command-line options rendered from a plugin's options dataclass: one `--option` per field, its
type from the annotation, its help from `field.metadata["help"]`, a bool as `--flag/--no-flag`.
The core knows no plugin's options; it reads them off the dataclass the plugin declares."""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Annotated

import typer

from stylevault.governance.door import TrainingOptions

SHARED = {f.name for f in dataclasses.fields(TrainingOptions)}  # listed after a kind's own


def fields(cls: type) -> list[str]:
    """The dataclass's field names, its own first, then those every trainer's options share."""
    found = [f.name for f in dataclasses.fields(cls)]
    return [name for name in found if name not in SHARED] + [name for name in found if name in SHARED]


def option(
    cls: type, name: str, *, spelled: str | None = None, default=dataclasses.MISSING
) -> inspect.Parameter:
    """The option for field `name` of `cls`, spelled `--spelled` (default: the field's name) and
    passed to the command as `spelled`, with `default` (default: the field's)."""
    spelled = spelled or name
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    kind = _plain(typing.get_type_hints(cls)[name])
    if kind not in (int, float, str, bool):
        raise TypeError(f"{cls.__name__}.{name}: options of type {kind} cannot be rendered")
    dashed = spelled.replace("_", "-")
    declared = f"--{dashed}/--no-{dashed}" if kind is bool else f"--{dashed}"
    if default is dataclasses.MISSING:
        default = field.default
    hint = kind if default is not None else kind | None
    annotation = Annotated[hint, typer.Option(declared, help=field.metadata.get("help"))]
    return inspect.Parameter(spelled, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def given(
    name: str, annotation, declared: str, help: str, default=inspect.Parameter.empty
) -> inspect.Parameter:
    """A fixed option of a rendered command, `--declared` (required when it has no default)."""
    annotation = Annotated[annotation, typer.Option(declared, help=help)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def command(name: str, run: Callable[..., None], parameters: list[inspect.Parameter], help: str | None):
    """A Typer command `name` with these options, calling `run(**values)`."""

    def invoke(**values) -> None:
        run(**values)

    invoke.__signature__ = inspect.Signature(parameters)  # typer reads the options off the signature
    invoke.__annotations__ = {}
    single = typer.Typer(add_completion=False)
    single.command(name, help=" ".join((help or "").split()) or None)(invoke)
    return typer.main.get_command(single)


def _plain(annotation):
    """`X | None` -> X; anything else as it is."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
