"""`stylevault train`: models trained from a cleared index, on record.

`stylevault train [--trainer NAME] KIND` has one command per kind the trainer trains, its options
rendered from the kind's options dataclass (stylevault.governance.cli.plugin_options); the trainer is
loaded only when a `train` command runs or lists its help. `train demo-models` retrains a world's
shipped models by the world's own recipe, its options rendered the same way.
"""

from __future__ import annotations

from pathlib import Path

import click
import typer
from typer.core import TyperGroup

from stylevault.governance.cli import plugin_options
from stylevault.governance.cli.apps import catalogue, handled, settings
from stylevault.governance.cli.output import err, out, print_json
from stylevault.governance.demo.models import build_demo_models
from stylevault.governance.door import TRAINERS, Trainer, World, load
from stylevault.governance.errors import StylevaultError
from stylevault.governance.outputs import training
from stylevault.governance.shipped import load_world


def _or_exit(make):
    """A plugin from `make()`, or the one-line error and its exit status when it is not installed."""
    try:
        return make()
    except StylevaultError as exc:
        err.print(f"stylevault: {exc}")
        raise typer.Exit(exc.exit_code) from None


def _chosen(ctx: click.Context) -> Trainer:
    return _or_exit(lambda: load(TRAINERS, ctx.params.get("trainer")))


class _TrainGroup(TyperGroup):
    """The kinds of the chosen trainer, then demo-models."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*_chosen(ctx).options, "demo-models"]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name == "demo-models":
            return _demo_models_command()
        plugin = _chosen(ctx)
        return _kind_command(plugin, name) if name in plugin.options else None


train_app = typer.Typer(
    cls=_TrainGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Train models from a cleared index (generator role); each kind's options are its trainer's.",
)


@train_app.callback()
def _choose_trainer(
    trainer: str = typer.Option(
        TRAINERS.default, help="The trainer plugin (entry point in stylevault.trainers)."
    ),
) -> None:
    """Train models from a cleared index (generator role); each kind's options are its trainer's."""


def _kind_command(plugin: Trainer, kind: str):
    cls = plugin.options[kind]

    @handled
    def run(index: Path, out_dir: Path, as_json: bool, **options) -> None:
        actor, progress = settings.actor, not as_json
        result = training.train(
            catalogue(), actor, kind, index, out_dir, trainer=plugin.name, progress=progress, **options
        )
        if as_json:
            print_json(result)
            return
        on = result["trained_on"]
        out.print(
            f"trained {kind} {result['model_id']} into {result['path']} on index {on['index']['id']} "
            f"({on['styleset']['name']}@{on['styleset']['version']} under {on['policy']['name']}, "
            f"{on['members']} members, manifest sha256 {on['index']['manifest_sha256'][:16]})",
        )

    parameters = [
        plugin_options.given("index", Path, "--index", "The cleared index to train on (verified first)."),
        plugin_options.given("out_dir", Path, "--out", "A new folder for the model."),
        *(plugin_options.option(cls, name) for name in plugin_options.fields(cls)),
        plugin_options.given("as_json", bool, "--json", "Print JSON instead of a line.", default=False),
    ]
    return plugin_options.command(kind, run, parameters, cls.__doc__)


def _recipe_options(world: World, trainer: Trainer) -> list:
    """One option per setting of the world's recipe, defaulting to it: `--FIELD` where one kind sets
    the field, `--KIND-FIELD` where both do (`--clip-steps`, `--rdm-steps`, `--text-to-time`)."""
    recipe = world.recipe
    kinds = (recipe.encoder, recipe.model)
    rendered = []
    for kind in kinds:
        for name, value in recipe.options[kind].items():
            shared = sum(name in recipe.options[other] for other in kinds) > 1
            spelled = f"{kind}_{name}" if shared else name
            cls = trainer.options[kind]
            rendered.append(plugin_options.option(cls, name, spelled=spelled, default=value))
    return rendered


def _demo_models_command():
    """`train demo-models`, rendered from the demo world's recipe when it is first asked for."""
    world = _or_exit(lambda: load_world("demo"))
    trainer = _or_exit(lambda: load(TRAINERS, world.recipe.trainer))
    recipe = world.recipe

    @handled
    def run(out_dir: Path, work: Path, per_content: int, device: str | None, resume: bool, **given) -> None:
        options = {kind: dict(recipe.options[kind]) for kind in (recipe.encoder, recipe.model)}
        for kind, chosen in options.items():
            for name in chosen:
                chosen[name] = given.get(f"{kind}_{name}", given.get(name))
        results = build_demo_models(
            work,
            out_dir,
            per_content=per_content,
            options=options,
            device=device,
            resume=resume,
            console=out.console,
        )
        for kind, result in results.items():
            out.print(f"{kind}: {result['model_id']} in {result['path']}")

    parameters = [
        plugin_options.given("out_dir", Path, "--out", "A new folder for the models."),
        plugin_options.given("work", Path, "--work", "Where the training catalogue, world and indexes go."),
        plugin_options.given(
            "per_content",
            int,
            "--per-content",
            "Images of each content in each training style.",
            default=recipe.per_content,
        ),
        *_recipe_options(world, trainer),
        plugin_options.option(trainer.options[recipe.model], "device"),
        plugin_options.option(trainer.options[recipe.model], "resume"),
    ]
    help = (
        "Train the shipped demo models from scratch, every step on record in a catalogue in --work: "
        "render the world's training styles, ingest, approve, publish, index, train the encoder, index "
        "again with it, train the model."
    )
    return plugin_options.command("demo-models", run, parameters, help)
