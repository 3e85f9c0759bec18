"""Worlds and the models they ship, found through the entry-point group `stylevault.worlds`.

A shipped model has a name that works from any folder: `stylevault:WORLD` (for example
`stylevault:demo`) names that world's shipped encoder as `--encoder` and its shipped RDM as
`--model`, wherever the package is installed. A relative folder would work only from where it was
typed, and an index records its encoder's spec for every later load.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from stylevault.governance.errors import BadInput

WORLD_GROUP = "stylevault.worlds"
PREFIX = "stylevault:"


def load_world(name: str = "demo"):
    """The demo world registered as `name`: renders the collections and knows the shipped models."""
    found = {entry.name: entry for entry in entry_points(group=WORLD_GROUP)}
    if name not in found:
        raise BadInput(
            f"no demo world {name!r} in entry-point group {WORLD_GROUP}; "
            "install stylevault with the generation extra: pip install 'stylevault[generation]'"
        )
    return found[name].load()()


def shipped_model(text: str, kind: str) -> Path | None:
    """The folder `stylevault:WORLD` names for `kind` ("encoder" or "rdm"), or None for other text."""
    if not text.startswith(PREFIX):
        return None
    world = text[len(PREFIX) :]
    if not world:
        raise BadInput(f"{text!r}: name a world after stylevault: (e.g. stylevault:demo)")
    return load_world(world).models()[kind]
