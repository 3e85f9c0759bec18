"""Training on a cleared index: a model has provenance the way an output does.

A trainer plugin (the door's `Trainer`, entry-point group `stylevault.trainers`; ours is `demo`, in
the `generation` package) is handed a `TrainingSet`: the verified, read-only handle of a cleared
index build, its members with their source metadata (captions among it) from the catalogue, a reader
of member images through the same path index builds use, and the index's own encoder. Nothing
outside the index's members is offered, so what a model saw is exactly what one policy cleared in
one frozen style-set version. The trainer writes `provenance` (index id and manifest hash, policy
name and hash, style-set version, encoder id, catalogue revision) into the model's card; the core
checks the actor, builds the trainer's options and records the training in the audit chain.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import sqlalchemy as sa

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import Image, Source
from stylevault.governance.curation.stylesets import resolve_version
from stylevault.governance.door import TRAINERS, Item, Trainer, TrainingSet, load
from stylevault.governance.errors import BadInput
from stylevault.governance.index import builds as index_builds
from stylevault.governance.index.encoders import load_encoder
from stylevault.governance.index.handle import IndexHandle

PERMISSION = "generate"  # training draws on cleared data the way generation does: the generator role


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
        read = index_builds.member_reader(session, version.id, shas)
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
    spec = manifest["encoder"]["spec"]

    def encoder(device: str | None):
        loaded = load_encoder(spec, device=device)
        handle.require_encoder(loaded.id)
        return loaded

    return TrainingSet(handle, items, read, encoder, provenance)


def build_options(plugin: Trainer, kind: str, options: dict):
    """The trainer's options dataclass for `kind`, from `options`; an unknown option is named."""
    if kind not in plugin.options:
        raise BadInput(f"train: {plugin.name} trains {', '.join(plugin.options)}, not {kind!r}")
    cls = plugin.options[kind]
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise BadInput(f"train {kind}: unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return cls(**options)


def train(
    catalogue: Catalogue,
    actor_name: str | None,
    kind: str,
    index_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    trainer: str | None = None,
    progress: bool = True,
    **options,
) -> dict:
    """Train a `kind` model on the cleared index `index_dir` into `out`, and put it on record;
    `options` are the fields of the trainer's options dataclass for `kind`."""
    plugin = load(TRAINERS, trainer)
    settings = build_options(plugin, kind, options)
    out = Path(out).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"--out {out}: exists and is not empty; a model is never overwritten")
    data = open_set(catalogue, actor_name, index_dir)
    result = plugin.train(kind, data, out, settings, progress=progress)
    if "encoder" in result:  # named as an index would name it
        encoder = load_encoder(result.pop("encoder"), device="cpu")
        result = {"model_id": encoder.id, "weights_sha256": encoder.weights_sha256, **result}
    with catalogue.write() as session:
        actor = actors.require(session, actor_name, PERMISSION)
        after = {"kind": kind, "path": str(out), "trainer": plugin.name, **data.provenance}
        after["weights_sha256"] = result["weights_sha256"]
        audit.record(
            session, actor.name, [audit.Change("model.train", "model", result["model_id"], None, after)]
        )
    return {**result, "trained_on": data.provenance}
