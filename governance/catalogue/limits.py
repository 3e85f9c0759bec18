"""How much of a file's or a manifest's text the catalogue keeps in its rows and audit events.

A metadata value over MAX_TEXT_CHARS (a 20 MB EXIF Artist, an XMP field, a manifest column) is kept
whole in the content store, named by its sha256, and cut to MAX_TEXT_CHARS in the rows and events
that carry it, ending in an ellipsis; the source's raw metadata then says so under `truncated`:
which field, how long the whole value is and the sha256 that finds it (store.text_path). Without
the cap one such value was stored three times (source column, raw metadata, audit log) and shipped
whole to every desk page that shows the source.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from stylevault.governance.catalogue import store

MAX_TEXT_CHARS = 4096
ELLIPSIS = "…"


def cap(value: str | None, store_root: Path, field: str, truncated: dict[str, dict]) -> str | None:
    """`value`, or its first MAX_TEXT_CHARS characters when longer: then the whole value is put in
    the content store and `truncated[field]` records its length and sha256."""
    if value is None or len(value) <= MAX_TEXT_CHARS:
        return value
    data = value.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(data).hexdigest()
    store.put_text(store_root, digest, data)
    truncated[field] = {"chars": len(value), "sha256": digest}
    return cut(value)


def cut(text: str) -> str:
    """At most MAX_TEXT_CHARS characters, ending in an ellipsis when cut: for a message (a rejection's
    detail quoting a value) that needs no whole copy."""
    return text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - len(ELLIPSIS)] + ELLIPSIS


def cap_tree(tree, store_root: Path, field: str, truncated: dict[str, dict]):
    """A copy of a JSON tree (dicts, lists, scalars) with every string over the limit capped; each
    is named by its place, e.g. `embedded.xmp.dc:creator` or `manifest.notes[2]`. Manifest rows are
    nested at most manifest.MAX_DEPTH deep, so the recursion is bounded."""
    if isinstance(tree, str):
        return cap(tree, store_root, field, truncated)
    if isinstance(tree, dict):
        return {key: cap_tree(value, store_root, f"{field}.{key}", truncated) for key, value in tree.items()}
    if isinstance(tree, list):
        return [cap_tree(value, store_root, f"{field}[{n}]", truncated) for n, value in enumerate(tree)]
    return tree
