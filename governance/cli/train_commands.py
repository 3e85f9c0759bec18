"""`stylevault train`: demo-scale encoders and RDMs trained from a cleared index, on record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stylevault.governance.cli.apps import JsonFlag, app, catalogue, handled, settings
from stylevault.governance.cli.output import out, print_json
from stylevault.governance.demo.run import build_demo_models
from stylevault.governance.errors import BadInput
from stylevault.governance.outputs import training

train_app = typer.Typer(
    no_args_is_help=True, help="Train demo-scale encoders and RDMs from a cleared index (generator role)."
)
app.add_typer(train_app, name="train")

IndexOption = Annotated[Path, typer.Option("--index", help="The cleared index to train on (verified first).")]
OutOption = Annotated[Path, typer.Option("--out", help="A new folder for the model.")]
StepsOption = Annotated[int, typer.Option(help="Optimiser steps.")]
BatchOption = Annotated[int, typer.Option("--batch-size", help="Examples per step.")]
LrOption = Annotated[float, typer.Option("--lr", help="Peak learning rate (warm-up, then cosine decay).")]
SeedOption = Annotated[int, typer.Option(help="Seeds the weights and the batches.")]
DeviceOption = Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda when there is one).")]
ResumeOption = Annotated[
    bool, typer.Option("--resume", help="Carry on from OUT.ckpt/ (same index, same steps).")
]
EveryOption = Annotated[int, typer.Option("--checkpoint-every", help="Write OUT.ckpt/ every N steps.")]
TrainerOption = Annotated[str, typer.Option(help="The trainer plugin (entry point in stylevault.trainers).")]
TextToTimeOption = Annotated[
    bool,
    typer.Option(
        "--text-to-time/--no-text-to-time",
        help="Also add the caption's embedding to the UNet's timestep embedding (every block sees it).",
    ),
]
NeighboursByOption = Annotated[
    str,
    typer.Option(
        help="Retrieve the RDM's training neighbours by the caption ('caption') or by its style words "
        "('style': neighbours of the same style, any content)."
    ),
]
PoolOption = Annotated[int, typer.Option(help="The RDM's k of each step are drawn from this many nearest.")]


def _train(kind: str, index: Path, out_dir: Path, as_json: bool, trainer: str, **options) -> None:

    if options["steps"] < 1:
        raise BadInput(f"--steps: must be at least 1, got {options['steps']}")
    result = training.train(catalogue(), settings.actor, kind, index, out_dir, trainer=trainer, **options)
    if as_json:
        print_json(result)
        return
    on = result["trained_on"]
    out.print(
        f"trained {kind} {result['model_id']} into {result['path']} on index {on['index']['id']} "
        f"({on['styleset']['name']}@{on['styleset']['version']} under {on['policy']['name']}, "
        f"{on['members']} members, manifest sha256 {on['index']['manifest_sha256'][:16]})",
    )


@train_app.command("clip")
@handled
def train_clip(
    index: IndexOption,
    out_dir: OutOption,
    steps: StepsOption = 300,
    batch_size: BatchOption = 128,
    lr: LrOption = 1e-3,
    seed: SeedOption = 0,
    device: DeviceOption = None,
    resume: ResumeOption = False,
    checkpoint_every: EveryOption = 200,
    trainer: TrainerOption = "demo",
    as_json: JsonFlag = False,
) -> None:
    """Train a tiny open_clip encoder contrastively on the members' captions (source metadata
    `caption` and `content_caption`); saved in open_clip's local-dir layout."""
    _train(
        "clip",
        index,
        out_dir,
        as_json,
        trainer,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        resume=resume,
        checkpoint_every=checkpoint_every,
        progress=not as_json,
    )


@train_app.command("rdm")
@handled
def train_rdm(
    index: IndexOption,
    out_dir: OutOption,
    steps: StepsOption = 1500,
    batch_size: BatchOption = 32,
    lr: LrOption = 1e-3,
    k: Annotated[
        int, typer.Option(help="Neighbours in the context (the image and near-duplicates excluded).")
    ] = 4,
    text_to_time: TextToTimeOption = False,
    neighbours_by: NeighboursByOption = "caption",
    neighbour_pool: PoolOption = 16,
    seed: SeedOption = 0,
    device: DeviceOption = None,
    resume: ResumeOption = False,
    checkpoint_every: EveryOption = 200,
    trainer: TrainerOption = "demo",
    as_json: JsonFlag = False,
) -> None:
    """Train a pixel-space RDM on the index, conditioned on the caption's token and k retrieved
    neighbours (the index's own encoder embeds both); saved as a stylevault-rdm folder of EMA weights."""
    _train(
        "rdm",
        index,
        out_dir,
        as_json,
        trainer,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        k=k,
        text_to_time=text_to_time,
        neighbours_by=neighbours_by,
        neighbour_pool=neighbour_pool,
        seed=seed,
        device=device,
        resume=resume,
        checkpoint_every=checkpoint_every,
        progress=not as_json,
    )


@train_app.command("demo-models")
@handled
def train_demo_models(
    out_dir: OutOption,
    work: Annotated[Path, typer.Option(help="Where the training catalogue, world and indexes go.")],
    clip_steps: Annotated[int, typer.Option(help="Encoder steps.")] = 3000,
    rdm_steps: Annotated[int, typer.Option(help="RDM steps.")] = 8000,
    per_content: Annotated[int, typer.Option(help="Images of each content in each training style.")] = 2,
    text_to_time: TextToTimeOption = True,
    neighbours_by: NeighboursByOption = "style",
    neighbour_pool: PoolOption = 32,
    device: DeviceOption = None,
    resume: ResumeOption = False,
) -> None:
    """Train the shipped demo models from scratch, every step on record in a catalogue in --work:
    render the world's training styles, ingest, approve, publish, index, train the encoder, index
    again with it, train the RDM."""

    results = build_demo_models(
        work,
        out_dir,
        clip_steps=clip_steps,
        rdm_steps=rdm_steps,
        per_content=per_content,
        rdm_options={
            "text_to_time": text_to_time,
            "neighbours_by": neighbours_by,
            "neighbour_pool": neighbour_pool,
        },
        device=device,
        resume=resume,
        console=out.console,
    )
    for kind, result in results.items():
        out.print(f"{kind}: {result['model_id']} in {result['path']}")
