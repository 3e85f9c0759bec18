"""Worlds and the models they ship, found through the door (entry-point group `stylevault.worlds`).

A shipped model has a name that works from any folder: `stylevault:WORLD` (for example
`stylevault:demo`) names that world's shipped encoder as `--encoder` and its shipped RDM as
`--model`, wherever the package is installed. A relative folder would work only from where it was
typed, and an index records its encoder's spec for every later load.
"""

from __future__ import annotations

from pathlib import Path

from stylevault.governance.door import WORLDS, World, load
from stylevault.governance.errors import BadInput

PREFIX = "stylevault:"


def load_world(name: str = "demo") -> World:
    """The world registered as `name`: renders the collections and knows the shipped models."""
    return load(WORLDS, name)


def shipped_model(text: str, kind: str) -> Path | None:
    """The folder `stylevault:WORLD` names for `kind` ("encoder" or "rdm"), or None for other text."""
    if not text.startswith(PREFIX):
        return None
    world = text[len(PREFIX) :]
    if not world:
        raise BadInput(f"{text!r}: name a world after stylevault: (e.g. stylevault:demo)")
    return load_world(world).models()[kind]
