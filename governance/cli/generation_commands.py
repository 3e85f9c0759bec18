"""Commands for generation and its audit: generate, model import-compvis, provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from stylevault.governance.cli.apps import (
    JsonFlag,
    app,
    catalogue,
    handled,
    model_app,
    provenance_app,
    settings,
)
from stylevault.governance.cli.output import err, out, print_json, print_table
from stylevault.governance.door import GENERATORS, Request, load
from stylevault.governance.errors import BadInput
from stylevault.governance.outputs import files, provenance, runs
from stylevault.governance.shipped import shipped_model
from stylevault.governance.views import images


@app.command()
@handled
def generate(
    prompt: str,
    index: Annotated[Path, typer.Option(help="A cleared index folder (verified before use).")],
    model: Annotated[
        str,
        typer.Option(
            help="A model folder (stylevault-rdm, e.g. from model import-compvis), or stylevault:WORLD "
            "for a world's shipped model (stylevault:demo)."
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="A new (or empty) folder for the outputs.")],
    k: Annotated[int, typer.Option(help="Neighbours retrieved per prompt; 0 = text only.")] = 10,
    seed: Annotated[int, typer.Option(help="Image i starts from noise seeded seed + i.")] = 0,
    steps: Annotated[int, typer.Option(help="Sampling steps.")] = 50,
    guidance: Annotated[
        float | None,
        typer.Option(
            help="Classifier-free guidance scale (1 = none; default: the generator's recommendation for "
            "the model)."
        ),
    ] = None,
    sampler: Annotated[
        str | None,
        typer.Option(
            help="One of the generator's samplers (default: its first; an unknown name lists them)."
        ),
    ] = None,
    negative: Annotated[
        str | None, typer.Option(help="A negative prompt for the unconditional branch.")
    ] = None,
    n: Annotated[int, typer.Option("-n", help="Images to make.")] = 1,
    generator: Annotated[
        str, typer.Option(help="The generator plugin (entry point in stylevault.generators).")
    ] = GENERATORS.default,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when there is one).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Generate images from a prompt and a cleared index; every output's sources go on record."""

    request = Request(
        prompt=prompt,
        negative=negative,
        seed=seed,
        steps=steps,
        guidance=guidance,
        k=k,
        sampler=sampler,
        n=n,
    )
    folder = shipped_model(model, "rdm") or Path(model).expanduser().resolve()
    made = runs.generate(
        catalogue(), settings.actor, request, index, folder, out_dir, generator=generator, device=device
    )
    if as_json:
        print_json(made.as_dict())
        return
    out.print(
        f"run {made.run_id}: {len(made.files)} images in {made.out} (attribution notice: "
        f"{Path(made.out) / files.NOTICE})",
    )


@model_app.command("import-compvis")
@handled
def model_import_compvis(
    ckpt: Annotated[Path, typer.Argument(help="The official CompVis checkpoint (model.ckpt).")],
    config: Annotated[Path, typer.Option(help="Its YAML config.")],
    out_dir: Annotated[Path, typer.Option("--out", help="A new folder for the converted model.")],
    weights: Annotated[str, typer.Option(help="ema (what the reference samples with) or raw.")] = "ema",
    generator: Annotated[
        str, typer.Option(help="The generator plugin that converts it.")
    ] = GENERATORS.default,
) -> None:
    """Convert an official RDM checkpoint into a stylevault model folder (EMA weights by default)."""

    if weights not in ("ema", "raw"):
        raise BadInput(f"--weights: ema or raw, not {weights!r}")
    folder = load(GENERATORS, generator).import_model("compvis", ckpt, config, out_dir, weights=weights)
    out.print(f"imported {ckpt} ({weights} weights) into {folder}")


@provenance_app.command("show")
@handled
def provenance_show(file: Path, as_json: JsonFlag = False) -> None:
    """An output's record: prompt, parameters, model, index, every neighbour with its licence."""

    with catalogue().read() as session:
        record = provenance.show(session, file).as_dict()
    if as_json:
        print_json(record)
        return
    index, styleset = record["index"], record["index"]["styleset"]
    lines = [
        f"{record['output']['file']}: run {record['run_id']} by {record['actor']} at {record['created_at']}",
        f"  prompt {record['prompt']!r}"
        + (f", negative {record['negative']!r}" if record["negative"] else ""),
        f"  seed {record['seed']}, {record['sampler']} {record['steps']} steps, "
        f"guidance {record['guidance']}, k {record['k']}",
        f"  model {record['model']['id']}",
        f"  index {index['index_id']} ({styleset['name']}@{styleset['version']} "
        f"under {index['policy']['name']}), manifest sha256 {index['manifest_sha256'][:16]}",
    ]
    if record["index_now"]["stale"]:
        lines.append(f"  the index is now STALE: {record['index_now']['stale_reason']}")
    lines += _review_lines(record)
    out.print(*lines)
    print_table(
        [{**row, "obligations": ", ".join(row["obligations"])} for row in record["neighbours"]],
        ["rank", "image_id", "score", "licence", "obligations", "attribution"],
    )


def _review_lines(record: dict) -> list[str]:
    """Output review: the state, the near-copy scores and the decisions, for `provenance show`."""
    review, scores = record["review"], record["scores"]
    lines = [f"  review: {review['state']}" + (" (FLAGGED)" if review["flagged"] else "")]
    if scores and scores["status"] == "scored":
        lines.append(
            f"  scores: prompt {scores['prompt_alignment']:.3f}, "
            f"style centroid {scores['style_centroid']:.3f}; nearest member cosine "
            f"{scores['nearest_cosine']:.4f} (image {scores['nearest_cosine_image_id']}), "
            f"phash {scores['nearest_hash_distance']} bits (image {scores['nearest_hash_image_id']})"
        )
    elif scores:
        lines.append(f"  scores missing: {scores['detail']}")
    lines += [f"  flag: {flag}" for flag in (scores or {}).get("flags", [])]
    lines += [
        f"  {d['at']} {d['actor']} {d['action']} -> {d['to_state']}"
        + (f" ({d['reason']})" if d["reason"] else "")
        for d in record["decisions"]
    ]
    return lines


@provenance_app.command("affected")
@handled
def provenance_affected(image: str, as_json: JsonFlag = False) -> None:
    """Every output that retrieved IMAGE (id, sha256 or a 12+ digit prefix)."""

    with catalogue().read() as session:
        image_id = images.resolve(session, image).id
        rows = provenance.affected(session, image_id)
    if as_json:
        print_json(rows)
        return
    print_table(rows, ["run_id", "ordinal", "rank", "score", "actor", "created_at", "path"])
    out.print(f"{len(rows)} outputs retrieved image {image_id}")


@provenance_app.command("reproduce")
@handled
def provenance_reproduce(file: Path, as_json: JsonFlag = False) -> None:
    """Generate the output again from its record on the CPU; exit 1 unless the pixels match."""

    result = provenance.reproduce(catalogue(), file)
    if as_json:
        print(json.dumps(result, indent=2))
    elif result["same"]:
        out.print(
            f"reproduced {file}: identical pixels (sha256 {result['reproduced_pixels_sha256'][:16]})",
        )
    else:
        err.print(
            f"stylevault: {file} was NOT reproduced: pixels sha256 {result['reproduced_pixels_sha256'][:16]}"
            f" != recorded {result['recorded_pixels_sha256'][:16]}",
        )
    if not result["same"]:
        raise typer.Exit(1)
