"""The provenance of every output (DESIGN.md rules 7 and 8), read back.

`show` finds an output's record from a file: its chunks, checked against the recorded file or pixel
hash (outputs/files.py), or its file hash or the hash of its pixels alone (which survives stripped
metadata); `affected` lists every output that retrieved an image; `reproduce` generates a run again
and compares pixel hashes. Generation itself, which writes the records, is outputs/runs.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import Actor
from stylevault.governance.catalogue.output_models import (
    GenerationOutput,
    GenerationRun,
    IndexBuild,
    OutputNeighbour,
)
from stylevault.governance.door import GENERATORS, Recorder, Request, load
from stylevault.governance.errors import Refused
from stylevault.governance.index.encoders import load_encoder
from stylevault.governance.index.handle import IndexHandle
from stylevault.governance.outputs import files
from stylevault.governance.outputs import listing as output_listing
from stylevault.governance.views.shapes import OutputView

# ---------------------------------------------------------------- audit tools


def show(session: Session, path: str | os.PathLike) -> OutputView:
    """An output's whole record, found from its file, with the image's state now."""
    return output_listing.views(session, [files.find_output(session, path)])[0]


def affected(session: Session, image_id: int) -> list[dict]:
    """Every output that retrieved the image: what a takedown or revocation has to reach."""
    o, r, n, a = (
        GenerationOutput.__table__,
        GenerationRun.__table__,
        OutputNeighbour.__table__,
        Actor.__table__,
    )
    query = (
        sa.select(
            r.c.run_id,
            o.c.ordinal,
            o.c.path,
            o.c.sha256,
            n.c.rank,
            n.c.score,
            r.c.prompt,
            r.c.created_at,
            a.c.name.label("actor"),
        )
        .select_from(
            n.join(o, o.c.id == n.c.output_id).join(r, r.c.id == o.c.run_id).join(a, a.c.id == r.c.actor_id)
        )
        .where(n.c.image_id == image_id)
        .order_by(r.c.id, o.c.ordinal)
    )
    return [dict(row._mapping) for row in session.execute(query)]


def reproduce(catalogue: Catalogue, path: str | os.PathLike, *, device: str | None = "cpu") -> dict:
    """Generate the output's run again from its record (on the CPU) and compare pixel hashes."""

    with catalogue.read() as session:
        output = files.find_output(session, path)
        run = session.get(GenerationRun, output.run_id)
        build = session.get(IndexBuild, run.index_build_id)
    handle = IndexHandle.open(catalogue, build.path, allow_stale=True)
    if handle.manifest_sha256 != run.manifest_sha256:
        raise Refused(f"index {build.path} is not the one the run used (manifest sha256 differs)")
    plugin = load(GENERATORS, run.generator)
    model = plugin.load_model(Path(run.model_path), device=device)
    if model.weights_sha256 != run.model_weights_sha256:
        raise Refused(f"model {run.model_path} has other weights than the run used ({model.model_id})")
    request = Request(
        prompt=run.prompt,
        negative=run.negative,
        seed=run.seed,
        steps=run.steps,
        guidance=run.guidance,
        k=run.k,
        sampler=run.sampler,
        n=run.n,
    )
    encoder = load_encoder(handle.manifest["encoder"]["spec"], device=device)
    handle.require_encoder(encoder.id)
    outputs = plugin.generate(model, request, handle, encoder, Recorder())
    again = files.pixels_sha256(outputs[output.ordinal].image)
    return {
        "run_id": run.run_id,
        "ordinal": output.ordinal,
        "recorded_pixels_sha256": output.pixels_sha256,
        "reproduced_pixels_sha256": again,
        "same": again == output.pixels_sha256,
        "neighbours_same": [n.image_id for n in outputs[output.ordinal].neighbours]
        == [n["image_id"] for n in show_neighbours(catalogue, output.id)],
    }


def show_neighbours(catalogue: Catalogue, output_id: int) -> list[dict]:
    with catalogue.read() as session:
        return [
            dict(row._mapping)
            for row in session.execute(
                sa.select(OutputNeighbour.image_id, OutputNeighbour.rank)
                .where(OutputNeighbour.output_id == output_id)
                .order_by(OutputNeighbour.rank)
            )
        ]
