"""`stylevault train demo-models`: a world's shipped models trained again, by the world's own recipe
(the door's `Recipe`), the way a user would train theirs, every step on record in a catalogue."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.curation import stylesets
from stylevault.governance.demo.setting import team, write_manifest
from stylevault.governance.door import World
from stylevault.governance.index import builds as index
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import review
from stylevault.governance.outputs import training
from stylevault.governance.shipped import load_world
from stylevault.governance.views import images


def _publish_world(
    catalogue: Catalogue, world: World, work: Path, per_content: int, console: Console
) -> None:
    """Render the world's training styles (CC0 by construction), ingest, approve (four-eyes) and
    publish them as `world@1`; done once per work folder."""
    data = work / "world"
    if (work / "world.csv").is_file():
        return
    rows = world.write(data, world.training_styles, per_content=per_content)
    for row in rows:
        row.update(
            collection="stylevault-world",
            creator="stylevault (procedural)",
            licence="CC0-1.0",
            source_url=f"stylevault:world/{row['path']}",
            note="rendered by stylevault's procedural world: licence-clean by construction",
        )
    write_manifest(work / "world.csv", rows)
    summary = ingest(catalogue, "sam", data, manifest=work / "world.csv", source="world", progress=False)
    console.print(f"world: {summary.line()}", markup=False)
    with catalogue.write() as session:
        ids = [str(row["id"]) for row in images.list_images(session, state="pending")]
        review.decide(session, "lee", "approve", ids, None)
        stylesets.create(session, "sam", "world", "the training styles of the demo world")
        stylesets.add(session, "sam", "world", collection="stylevault-world")
        stylesets.publish(session, "sam", "world", "training data of the demo models")


def build_demo_models(
    work: Path,
    out: Path,
    *,
    world: str = "demo",
    per_content: int | None = None,
    options: dict[str, dict] | None = None,
    device: str | None = None,
    resume: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> dict:
    """Train the world's models by its recipe, every step on record in a catalogue in `work`:
    publish its training styles as `world@1`, build its commercial index with an untrained encoder,
    train the encoder on it, build the index again with the trained encoder, and train the model on
    that one. `options` (kind -> options) replace the recipe's. Writes `out/ENCODER_KIND` and
    `out/MODEL_KIND`, each with the manifest of the index it was trained on."""
    console = console or Console()
    plugin = load_world(world)
    recipe = plugin.recipe
    options = options or recipe.options
    work, out = Path(work).absolute(), Path(out).absolute()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    catalogue = Catalogue.open(f"sqlite:///{work / 'stylevault.db'}")
    catalogue.upgrade()
    team(catalogue)
    _publish_world(catalogue, plugin, work, per_content or recipe.per_content, console)
    first, second = work / "index-untrained", work / "index-clip"
    if not first.is_dir():
        encoder = f"local-dir:{plugin.untrained_encoder(work / 'untrained-clip')}"
        index.build(catalogue, "sam", "world", "commercial", encoder, first)
    common = {"device": device, "resume": resume, "progress": progress, "trainer": recipe.trainer}
    results = {}
    for kind, folder in ((recipe.encoder, first), (recipe.model, second)):
        if kind == recipe.model and not second.is_dir():
            encoder = f"local-dir:{out / recipe.encoder}"
            index.build(catalogue, "sam", "world", "commercial", encoder, second)
        started = time.monotonic()
        results[kind] = training.train(catalogue, "gia", kind, folder, out / kind, **common, **options[kind])
        elapsed = time.monotonic() - started
        console.print(f"{kind} {results[kind]['model_id']} in {elapsed:.0f}s", markup=False)
        (out / kind / "index-manifest.json").write_bytes((folder / index.MANIFEST).read_bytes())
    catalogue.dispose()
    return results
