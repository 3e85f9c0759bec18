"""Training on a cleared index: a model has provenance the way an output does.

A trainer plugin (entry-point group `stylevault.trainers`; ours is `demo`, in the `generation`
package) is handed a `TrainingSet`: the verified, read-only handle of a cleared index build, its
members with their source metadata (captions among it) from the catalogue, and a reader that
decodes each member through the same path index builds use. Nothing outside the index's members is
offered, so what a model saw is exactly what one policy cleared in one frozen style-set version. The
trainer writes `provenance` (index id and manifest hash, policy name and hash, style-set version,
encoder id, catalogue revision) into the model's card; the core checks the actor and records the
training in the audit chain.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import Image, Source
from stylevault.governance.curation.stylesets import resolve_version
from stylevault.governance.errors import BadInput
from stylevault.governance.index import builds as index_builds
from stylevault.governance.index.handle import IndexHandle

GROUP = "stylevault.trainers"
DEFAULT = "demo"
PERMISSION = "generate"  # training draws on cleared data the way generation does: the generator role


@dataclass(frozen=True)
class Item:
    """One member of the index, in index order."""

    image_id: int
    sha256: str
    phash: str  # 16 hex digits, for near-duplicate checks
    metadata: dict  # the manifest row of its first source (unknown columns included)


@dataclass
class TrainingSet:
    handle: Any  # stylevault.governance.index.handle.IndexHandle, verified
    items: list[Item]
    read: Callable[[str], Any]  # sha256 -> PIL RGB image, through imaging.decode
    provenance: dict

    def metadata(self, field: str) -> list[str]:
        """One source-metadata value per member, in index order; a member without it is an error."""
        values = []
        for item in self.items:
            value = item.metadata.get(field)
            if not isinstance(value, str) or not value.strip():
                raise BadInput(
                    f"image {item.image_id}: its source metadata has no {field!r}, which training needs"
                )
            values.append(value)
        return values


class Trainer(Protocol):
    name: str
    kinds: tuple[str, ...]

    def train(self, kind: str, data: TrainingSet, out: Path, **options) -> dict:
        """Train a model of `kind` on `data` into the new folder `out`; returns at least `model_id`,
        `weights_sha256` and `path`."""
        ...


def load(name: str = DEFAULT) -> Trainer:
    found = {entry.name: entry for entry in entry_points(group=GROUP)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise BadInput(
            f"no trainer {name!r} in entry-point group {GROUP} (installed: {known}); "
            "install stylevault with the generation extra: pip install 'stylevault[generation]'"
        )
    return found[name].load()()


def open_set(catalogue: Catalogue, actor_name: str | None, index_dir: str | os.PathLike) -> TrainingSet:
    """The members of a verified cleared index, ready to train on; refused like generation is (a
    stale, tampered or unknown index; an actor without the generator role)."""

    with catalogue.read() as session:
        actors.require(session, actor_name, PERMISSION)
    handle = IndexHandle.open(catalogue, index_dir)
    manifest = handle.manifest
    ids = [int(i) for i in manifest["member_ids"]]
    shas = list(manifest["member_sha256"])
    with catalogue.read() as session:
        _, version = resolve_version(
            session, f"{manifest['styleset']['name']}@{manifest['styleset']['version']}"
        )
        hashes: dict[int, str] = {}
        metadata: dict[int, dict] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            hashes.update(session.execute(sa.select(Image.id, Image.phash).where(Image.id.in_(part))).all())
            s = Source.__table__
            rows = session.execute(
                sa.select(s.c.image_id, s.c.raw_metadata).where(s.c.image_id.in_(part)).order_by(s.c.id)
            )
            for image_id, raw in rows:
                metadata.setdefault(image_id, dict((raw or {}).get("manifest") or {}))
        read = index_builds._image_reader(session, version.id, shas)
    items = [Item(i, sha, hashes[i], metadata.get(i, {})) for i, sha in zip(ids, shas, strict=True)]
    provenance = {
        "index": {
            "id": manifest["index_id"],
            "manifest_sha256": handle.manifest_sha256,
            "built_at": manifest["built_at"],
            "judged_on": manifest["judged_on"],
        },
        "styleset": manifest["styleset"],
        "policy": manifest["policy"],
        "encoder": manifest["encoder"]["id"],
        "catalogue_revision": manifest["catalogue_revision"],
        "members": len(items),
    }
    return TrainingSet(handle, items, read, provenance)


def train(
    catalogue: Catalogue,
    actor_name: str | None,
    kind: str,
    index_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    trainer: str = DEFAULT,
    **options,
) -> dict:
    """Train a `kind` model on the cleared index `index_dir` into `out`, and put it on record."""
    plugin = load(trainer)
    if kind not in plugin.kinds:
        raise BadInput(f"train: {trainer} trains {', '.join(plugin.kinds)}, not {kind!r}")
    out = Path(out).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"--out {out}: exists and is not empty; a model is never overwritten")
    data = open_set(catalogue, actor_name, index_dir)
    result = plugin.train(kind, data, out, **options)
    with catalogue.write() as session:
        actor = actors.require(session, actor_name, PERMISSION)
        after = {"kind": kind, "path": str(out), "trainer": trainer, **data.provenance}
        after["weights_sha256"] = result["weights_sha256"]
        audit.record(
            session, actor.name, [audit.Change("model.train", "model", result["model_id"], None, after)]
        )
    return {**result, "trained_on": data.provenance}
