"""Audited generation (DESIGN.md rule 8): the actor and the index checked, the plugin run, every output
written with its provenance chunks and recorded with its run, neighbours, scores and attribution."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit, liveness
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import Source, utcnow
from stylevault.governance.catalogue.output_models import (
    GenerationOutput,
    GenerationRun,
    IndexBuild,
    OutputNeighbour,
)
from stylevault.governance.door import GENERATORS, Output, Recorder, Request, load, settle
from stylevault.governance.errors import Refused
from stylevault.governance.index.encoders import load_encoder
from stylevault.governance.index.handle import IndexHandle
from stylevault.governance.outputs import credentials, files
from stylevault.governance.outputs import signoff as output_review
from stylevault.governance.outputs.scoring import Scorer


def licence_url(spdx: str | None) -> str | None:
    """Where a licence's text lives: the Creative Commons deed for CC ids, else the SPDX page."""
    if not spdx or spdx.startswith("LicenseRef-") or " " in spdx:
        return None
    if spdx in ("CC0-1.0", "CC-PDM-1.0"):
        return f"https://creativecommons.org/publicdomain/{'zero' if spdx == 'CC0-1.0' else 'mark'}/1.0/"
    parts = spdx.split("-")
    at = next((i for i, part in enumerate(parts) if part[:1].isdigit()), None)
    if parts[0] == "CC" and at is not None and at >= 2:
        elements, version, port = "-".join(parts[1:at]).lower(), parts[at], "/".join(parts[at + 1 :]).lower()
        return f"https://creativecommons.org/licenses/{elements}/{version}/" + (f"{port}/" if port else "")
    return f"https://spdx.org/licenses/{spdx}.html"


def _sources(session: Session, image_ids: list[int]) -> dict[int, dict]:
    """The first source of each image: creator, title and where it came from, for attribution."""
    s = Source.__table__
    found: dict[int, dict] = {}
    rows = session.execute(
        sa.select(s.c.image_id, s.c.creator, s.c.title, s.c.url, s.c.collection)
        .where(s.c.image_id.in_(image_ids))
        .order_by(s.c.id)
    )
    for row in rows:
        found.setdefault(row.image_id, dict(row._mapping))
    return found


def notice(records: list[dict]) -> str:
    """What the licences of the images that shaped each output ask of whoever uses it."""
    lines = ["# Attribution notice", ""]
    for record in records:
        lines += [f"## {record['output']['file']} (stylevault run {record['run_id']})", ""]
        if not record["neighbours"]:
            lines += ["No catalogue image was retrieved for this output (k = 0).", ""]
            continue
        share_alike = []
        for n in record["neighbours"]:
            title = f"\u201c{n['title']}\u201d" if n.get("title") else f"image {n['image_id']}"
            by = f" by {n['creator']}" if n.get("creator") else ""
            where = f", {n['source_url']}" if n.get("source_url") else ""
            url = licence_url(n["licence"])
            licence = f"{n['licence']}" + (f" ({url})" if url else "")
            owed = ", ".join(n["obligations"]) or "nothing"
            credit = (
                f" Credit: {n['attribution']}."
                if n.get("attribution") and "attribution" in n["obligations"]
                else ""
            )
            lines.append(f"{n['rank']}. {title}{by}{where}; licence {licence}; owed: {owed}.{credit}")
            if "share-alike" in n["obligations"]:
                share_alike.append(n["licence"])
        lines.append("")
        if share_alike:
            lines += [
                f"Share-alike: this output was shaped by {', '.join(sorted(set(share_alike)))} images; "
                "if it is an adaptation of them, share it under the same licence.",
                "",
            ]
    return "\n".join(lines)


@dataclass
class Generated:
    run_id: str
    out: str
    files: list[str]
    record: dict

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "out": self.out,
            "files": self.files,
            "outputs": self.record["outputs"],
        }


def generate(
    catalogue: Catalogue,
    actor_name: str | None,
    request: Request,
    index_dir: str | os.PathLike,
    model_dir: str | os.PathLike,
    out: str | os.PathLike,
    *,
    generator: str = GENERATORS.default,
    device: str | None = None,
) -> Generated:
    """Generate `request.n` images from a verified index and record where each came from."""

    with catalogue.read() as session:  # before any image is made; checked again where it is recorded
        actor = actors.require(session, actor_name, "generate").name
    out = liveness.fresh_out(
        out, "exists and is not an empty folder; outputs are never overwritten", empty_ok=True
    )
    handle = IndexHandle.open(catalogue, index_dir)
    request.check(len(handle))
    encoder = load_encoder(handle.manifest["encoder"]["spec"], device=device)
    handle.require_encoder(encoder.id)
    plugin = load(GENERATORS, generator)
    model = plugin.load_model(Path(model_dir), device=device)
    request = settle(plugin, model, request)
    request.check(len(handle))
    recorder = Recorder()
    outputs = plugin.generate(model, request, handle, encoder, recorder)
    _check_outputs(outputs, request, handle)
    scores = Scorer(handle, encoder).score(
        [o.image for o in outputs], request.prompt, [[n.image_id for n in o.neighbours] for o in outputs]
    )
    return _record(catalogue, actor, generator, request, handle, model, recorder, outputs, out, scores)


def _check_outputs(outputs: list[Output], request: Request, handle) -> None:
    """A plugin's answer is checked before anything is written: one image per request, k
    neighbours each, every one a member of the index."""
    if len(outputs) != request.n:
        raise Refused(f"the generator returned {len(outputs)} images for -n {request.n}")
    for output in outputs:
        if len(output.neighbours) != request.k:
            raise Refused(f"the generator reported {len(output.neighbours)} neighbours for --k {request.k}")
        for neighbour in output.neighbours:
            handle.member(neighbour.image_id)


def _record(catalogue, actor, generator, request, handle, model, recorder, outputs, out, scores) -> Generated:
    """Each output written with its provenance (PNG chunks, a sidecar, the attribution notice) into
    a hidden folder, recorded with its run, then renamed into place."""
    run_id = uuid.uuid4().hex
    # 1. what every output's record shares: the run, the model, the index, the catalogue revision
    ids = sorted({n.image_id for o in outputs for n in o.neighbours})
    with catalogue.read() as session:
        sources = _sources(session, ids)
        revision = audit.revision(session)
    shared = _shared_record(run_id, actor, generator, request, handle, model, recorder, revision)
    # 2. each output's record and file bytes (signed where signing is configured)
    signing = credentials.configured()
    written = [
        _output_file(shared, request, model, handle, sources, ordinal, output, scores[ordinal], signing)
        for ordinal, output in enumerate(outputs)
    ]
    records = [record for _, _, record in written]
    attribution = notice(records)
    with liveness.staged(catalogue, "generate", run_id, out) as tmp:
        # 3. the files, into the hidden folder
        for name, data, record in written:
            (tmp / name).write_bytes(data)
            sidecar = {**record, "attribution_notice": attribution}
            (tmp / f"{name[:-4]}.json").write_text(json.dumps(sidecar, indent=1, sort_keys=True) + "\n")
        (tmp / files.NOTICE).write_text(attribution)
        # 4. the run recorded, and the folder renamed into place in its transaction
        with catalogue.write() as session:
            _insert(session, actor, generator, request, model, handle, out, shared, records, scores)
            if out.exists():
                out.rmdir()  # the empty folder the caller made
            os.replace(tmp, out)
    summary = {
        **shared,
        "outputs": [
            r["output"]
            | {"seed": r["seed"], "flagged": r["scores"]["flagged"], "flags": r["scores"]["flags"]}
            for r in records
        ],
    }
    return Generated(run_id, str(out), [name for name, _, _ in written], summary)


def _shared_record(run_id, actor, generator, request, handle, model, recorder, revision) -> dict:
    manifest = handle.manifest
    return {
        "format": files.FORMAT,
        "run_id": run_id,
        "created_at": audit.timestamp(utcnow()),
        "actor": actor,
        "generator": generator,
        "prompt": request.prompt,
        **request.parameters(),
        "model": {"id": model.model_id, "weights_sha256": model.weights_sha256, "path": str(model.path)},
        "index": {
            "index_id": manifest["index_id"],
            "manifest_sha256": handle.manifest_sha256,
            "path": str(handle.folder),
            "styleset": manifest["styleset"],
            "policy": manifest["policy"],
            "encoder_id": handle.encoder_id,
        },
        "catalogue_revision": revision,
        "plugin_notes": recorder.notes,
    }


def _neighbours(output: Output, handle, sources: dict[int, dict]) -> list[dict]:
    """The images that shaped one output, with what their licences ask and where they came from."""
    neighbours = []
    for n in output.neighbours:
        member, source = handle.member(n.image_id), sources.get(n.image_id, {})
        neighbours.append(
            {
                "rank": n.rank,
                "image_id": n.image_id,
                "sha256": member.sha256,
                "score": round(float(n.score), 6),
                "licence": member.licence,
                "relied_on": member.relied_on,
                "attribution": member.attribution,
                "obligations": list(member.obligations),
                "creator": source.get("creator"),
                "title": source.get("title"),
                "source_url": source.get("url"),
            }
        )
    return neighbours


def _output_file(
    shared, request, model, handle, sources, ordinal, output, scores, signing
) -> tuple[str, bytes, dict]:
    """(file name, PNG bytes with provenance chunks, record) of output `ordinal`."""
    run_id = shared["run_id"]
    name = f"{run_id[:8]}-{ordinal:02d}.png"
    chunks = {
        "run": run_id,
        "output": str(ordinal),
        "manifest_sha256": handle.manifest_sha256,
        "prompt": request.prompt,
        "parameters": json.dumps(
            {**request.parameters(), "seed": output.seed, "model": model.model_id}, sort_keys=True
        ),
    }
    record = {
        **shared,
        "ordinal": ordinal,
        "seed": output.seed,
        "neighbours": _neighbours(output, handle, sources),
        "output": {"file": name},
        "scores": scores.as_dict(),
    }
    data = files.png_bytes(output.image, chunks)
    if signing:  # signed before hashing: the recorded sha256 is the file's, manifest included
        data = credentials.sign_png(data, record)
    record["output"] |= {
        "sha256": hashlib.sha256(data).hexdigest(),
        "pixels_sha256": files.pixels_sha256(output.image),
        "c2pa": signing,
    }
    return name, data, record


def _insert(session, actor, generator, request, model, handle, out, shared, records, scores_of) -> None:
    """The run, its outputs, their neighbours and scores, and the audit entry, in one write
    transaction that checks the actor's role and the index's standing again."""
    actor_row = actors.require(session, actor, "generate")  # in the transaction that records the run
    build = _live_build(session, handle)
    run = GenerationRun(
        run_id=shared["run_id"],
        actor_id=actor_row.id,
        generator=generator,
        prompt=request.prompt,
        negative=request.negative,
        seed=request.seed,
        sampler=request.sampler,
        steps=request.steps,
        guidance=request.guidance,
        k=request.k,
        n=request.n,
        model_id=model.model_id,
        model_weights_sha256=model.weights_sha256,
        model_path=str(model.path),
        index_build_id=build.id,
        manifest_sha256=handle.manifest_sha256,
        encoder_id=handle.encoder_id,
        out_dir=str(out),
        record=shared,
    )
    session.add(run)
    session.flush()
    for record, scores in zip(records, scores_of, strict=True):
        _insert_output(session, run.id, out, record, scores)
    _audit_run(session, actor, model, handle, shared, records)


def _live_build(session: Session, handle) -> IndexBuild:
    """The index's build row, locked; refused if it went stale while the images were being made."""
    build = session.scalars(
        sa.select(IndexBuild)
        .where(IndexBuild.index_id == handle.manifest["index_id"])
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    if build.stale:  # a revocation landed while the images were being made
        raise Refused(f"index {handle.folder} went stale during the run: {build.stale_reason}")
    return build


def _insert_output(session: Session, run_id: int, out: Path, record: dict, scores) -> None:
    row = GenerationOutput(
        run_id=run_id,
        ordinal=record["ordinal"],
        seed=record["seed"],
        path=str(out / record["output"]["file"]),
        sha256=record["output"]["sha256"],
        pixels_sha256=record["output"]["pixels_sha256"],
    )
    session.add(row)
    session.flush()
    if record["neighbours"]:
        session.execute(
            sa.insert(OutputNeighbour.__table__),
            [
                {
                    "output_id": row.id,
                    "rank": n["rank"],
                    "image_id": n["image_id"],
                    "sha256": n["sha256"],
                    "score": n["score"],
                    "licence": n["licence"],
                    "attribution": n["attribution"],
                    "obligations": n["obligations"],
                }
                for n in record["neighbours"]
            ],
        )
    output_review.record_scores(session, row.id, scores)


def _audit_run(session: Session, actor: str, model, handle, shared: dict, records: list[dict]) -> None:
    audit.record(
        session,
        actor,
        [
            audit.Change(
                "generate.run",
                "run",
                shared["run_id"],
                None,
                {
                    "index_id": handle.manifest["index_id"],
                    "manifest_sha256": handle.manifest_sha256,
                    "model": model.model_id,
                    "prompt": shared["prompt"],
                    "outputs": [r["output"]["sha256"] for r in records],
                    "flagged": [r["output"]["sha256"] for r in records if r["scores"]["flagged"]],
                    "neighbours": sorted({n["image_id"] for r in records for n in r["neighbours"]}),
                },
            )
        ],
    )
