"""`stylevault demo`: the catalogue flow end to end, offline, on a procedural style world, with the
demo models stylevault trained itself on that world; and `build_demo_models`, which trains them.

The world and the models are reached through the entry-point group `stylevault.worlds` (ours is
`demo`, in the `generation` package): governance never imports generation. The licences are
simulated and say so in their source metadata. The demo drives the same functions the CLI calls,
as the actors a real team would have: an admin, a steward who ingests, two legal reviewers (the
steward also holds the legal role, to show four-eyes refusing it) and a generator.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.curation import clearance, stylesets
from stylevault.governance.door import Request
from stylevault.governance.errors import Refused
from stylevault.governance.index import builds as index
from stylevault.governance.index import verification
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import licence_decisions, reports, review
from stylevault.governance.outputs import files, provenance, training
from stylevault.governance.outputs import listing as output_listing
from stylevault.governance.outputs import runs as output_runs
from stylevault.governance.outputs import signoff as outputs
from stylevault.governance.rules.policy_files import load_policy
from stylevault.governance.shipped import load_world
from stylevault.governance.views import images

MANIFEST_COLUMNS = [
    "path",
    "source_url",
    "collection",
    "creator",
    "title",
    "licence",
    "attribution",
    "opt_out",
    "licence_expires",
    "note",
    "caption",
    "content_caption",
    "style",
    "palette",
    "texture",
    "shape",
    "colour",
    "size",
    "position",
]


# A tiny open_clip architecture with random weights: what the first index of the training world is
# built with (training the encoder needs the cleared member list, not good embeddings).
UNTRAINED_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
CLIP_PREPROCESS = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}


def untrained_encoder(folder: Path, seed: int = 0) -> Path:
    """An open_clip model with random (seeded) weights, saved in open_clip's local-dir layout."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    if (folder / "open_clip_model.safetensors").is_file():
        return folder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CLIP(**UNTRAINED_CLIP)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(weights, folder / "open_clip_model.safetensors")
    config = {"model_cfg": UNTRAINED_CLIP, "preprocess_cfg": CLIP_PREPROCESS}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    return folder


def write_manifest(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _team(catalogue: Catalogue) -> None:
    with catalogue.write() as session:
        if actors.find(session, "admin") is None:
            actors.add(session, None, "admin", ["admin"])
            actors.add(session, "admin", "sam", ["steward", "legal"])
            actors.add(session, "admin", "lee", ["legal"])
            actors.add(session, "admin", "gia", ["generator"])


# ---------------------------------------------------------------- training the demo models


# How the shipped RDM was trained (README: the demo world and the demo models).
DEMO_RDM = {"text_to_time": True, "neighbours_by": "style", "neighbour_pool": 32}


def build_demo_models(
    work: Path,
    out: Path,
    *,
    clip_steps: int = 3000,
    rdm_steps: int = 8000,
    per_content: int = 2,
    clip_batch: int = 128,
    rdm_batch: int = 32,
    rdm_options: dict | None = None,
    device: str | None = None,
    resume: bool = False,
    progress: bool = True,
    console: Console | None = None,
) -> dict:
    """Train the demo models the way a user would train theirs, every step on record in a catalogue
    in `work`: render the training styles of the world (CC0 by construction), ingest, approve
    (four-eyes), publish `world@1`, build its commercial index with an untrained encoder, train the
    encoder on it, build the index again with the trained encoder, and train the RDM on that one.
    Writes `out/clip` and `out/rdm`, each with the manifest of the index it was trained on."""
    console = console or Console()
    world = load_world()
    work, out = Path(work).absolute(), Path(out).absolute()
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    catalogue = Catalogue.open(f"sqlite:///{work / 'stylevault.db'}")
    catalogue.upgrade()
    _team(catalogue)
    data = work / "world"
    if not (work / "world.csv").is_file():
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
    first, second = work / "index-untrained", work / "index-clip"
    if not first.is_dir():
        encoder = f"local-dir:{untrained_encoder(work / 'untrained-clip')}"
        index.build(catalogue, "sam", "world", "commercial", encoder, first)
    options = {"device": device, "resume": resume, "progress": progress}
    results = {}
    started = time.monotonic()
    results["clip"] = training.train(
        catalogue,
        "gia",
        "clip",
        first,
        out / "clip",
        steps=clip_steps,
        batch_size=clip_batch,
        lr=1e-3,
        **options,
    )
    console.print(f"encoder {results['clip']['model_id']} in {time.monotonic() - started:.0f}s", markup=False)
    if not second.is_dir():
        index.build(catalogue, "sam", "world", "commercial", f"local-dir:{out / 'clip'}", second)
    started = time.monotonic()
    results["rdm"] = training.train(
        catalogue,
        "gia",
        "rdm",
        second,
        out / "rdm",
        steps=rdm_steps,
        batch_size=rdm_batch,
        lr=1e-3,
        **options,
        **(DEMO_RDM if rdm_options is None else rdm_options),
    )
    console.print(f"rdm {results['rdm']['model_id']} in {time.monotonic() - started:.0f}s", markup=False)
    for name, folder in (("clip", first), ("rdm", second)):
        (out / name / "index-manifest.json").write_bytes((folder / index.MANIFEST).read_bytes())
    catalogue.dispose()
    return results


# ---------------------------------------------------------------- the demo

# (collection, world style, creator, licence as a source might write it, extra manifest columns)
COLLECTIONS = [
    ("pastel-commons", "candy-stripes", "Ada Example", "CC0", {}),
    (
        "ink-studies",
        "ink-dots",
        "Ben Example",
        "CC BY 4.0",
        {"attribution": "Ink Studies by Ben Example (simulated)"},
    ),
    ("night-market", "night-grid", "Cleo Example", "https://creativecommons.org/licenses/by-nc/4.0/", {}),
    (
        "partner-acme",
        "dusk-gradient",
        "ACME Images",
        "LicenseRef-ACME-Partner-2026",
        {"licence_expires": "2027-01-31"},
    ),
    ("found-online", "static-noise", "unknown", "free for personal use", {}),
    ("opted-out", "mint-checks", "Dee Example", "CC-BY-4.0", {"opt_out": "true"}),
]
# The style sets generated from, each with the policy that clears it; night-market's style is one the
# demo models never saw in training.
SHOWN = [
    ("pastel", "pastel-commons", "commercial"),
    ("ink", "ink-studies", "commercial"),
    ("night", "night-market", "research"),
]
PROMPTS = [
    "a large red circle in the centre",
    "a large blue square on the left",
    "a small yellow triangle on the right",
    "a large green triangle in the centre",
]
# Guidance 1.0 (the conditional model alone): the shipped demo RDM keeps content and style best there
# on a validation split, and stronger guidance pushes its clean-image predictions off their colours.
K, STEPS, GUIDANCE, SEED = 4, 25, 1.0, 7


@dataclass
class Size:
    """How much the demo makes: all of it by default, a little for the tests."""

    contents: int | None = None  # contents per collection (None: every content of the world)
    prompts: int = len(PROMPTS)
    steps: int = STEPS


QUICK = Size(contents=12, prompts=2, steps=3)


def make_collections(world, folder: Path, size: Size) -> Path:
    """Each collection drawn in its own style, with its simulated licence, plus the kind of mess a
    real folder has; returns the manifest."""
    contents = None if size.contents is None else world.contents[: size.contents]
    rows = []
    for collection, style, creator, licence, extra in COLLECTIONS:
        for row in world.write(folder / collection, [style], contents=contents):
            rows.append(
                {
                    **row,
                    "path": f"{collection}/{row['path']}",
                    "collection": collection,
                    "creator": creator,
                    "licence": licence,
                    "source_url": f"https://example.org/{collection}/{row['path']}",
                    "note": "simulated licence for the stylevault demo",
                    **extra,
                }
            )
    first = rows[0]["path"]
    (folder / "pastel-commons" / "copy-of-first.png").write_bytes((folder / first).read_bytes())
    rows.append(
        {
            "path": "pastel-commons/copy-of-first.png",
            "collection": "pastel-commons",
            "licence": "CC0",
            "note": "simulated: the same image listed twice",
        }
    )
    (folder / "notes.jpg").write_text("this is not an image\n")
    rows.append({"path": "notes.jpg", "note": "simulated: a text file named .jpg"})
    rows.append({"path": "../outside.png", "note": "simulated: a path outside the folder"})
    return write_manifest(folder / "manifest.csv", rows)


def gallery(cells: dict[tuple[str, str], Path], prompts: list[str], columns: list[str], out: Path) -> Path:
    """A PNG grid, prompt by row and style set by column, each output scaled up 3x (nearest)."""
    from PIL import Image, ImageDraw

    side, label, head = 96, 230, 20
    grid = Image.new("RGB", (label + side * len(columns), head + side * len(prompts)), (255, 255, 255))
    pen = ImageDraw.Draw(grid)
    for c, column in enumerate(columns):
        pen.text((label + c * side + 4, 4), column, fill=(0, 0, 0))
    for r, prompt in enumerate(prompts):
        pen.text((4, head + r * side + side // 2 - 6), prompt, fill=(0, 0, 0))
        for c, column in enumerate(columns):
            with Image.open(cells[prompt, column]) as image:
                tile = image.convert("RGB").resize((side, side), Image.Resampling.NEAREST)
            grid.paste(tile, (label + c * side, head + r * side))
    grid.save(out)
    return out


def _review_outputs(catalogue: Catalogue, say) -> None:
    """Step 10: every output was scored when it was made; gia may not release its own work, lee
    releases what is not flagged, and what is flagged waits for a closer look."""
    with catalogue.read() as session:
        made = output_listing.listing(session)
    flagged = [r for r in made if r["flagged"]]
    alignment = sorted(r["prompt_alignment"] for r in made if r["prompt_alignment"] is not None)
    median = f"{alignment[len(alignment) // 2]:.2f}" if alignment else "-"
    say(
        f"10. output review: {len(made)} outputs scored at generation (median prompt alignment {median}); "
        f"{len(flagged)} flagged as possible near-copies of a member"
    )
    try:
        with catalogue.write() as session:
            outputs.release(session, "gia", [str(made[0]["output_id"])])
    except Refused as refusal:
        say(f"     gia releases its own output: refused ({refusal})")
    clear = [str(r["output_id"]) for r in made if not r["flagged"]]
    if clear:
        with catalogue.write() as session:
            done = outputs.release(session, "lee", clear, "demo: checked by eye")
        say(f"     lee (legal) releases the {len(done['released'])} outputs that are not flagged")
    for row in flagged[:3]:
        cosine = "-" if row["nearest_cosine"] is None else f"{row['nearest_cosine']:.3f}"
        say(
            f"     output {row['output_id']} stays pending: nearest member cosine "
            f"{cosine}, hash distance {row['nearest_hash_distance']} "
            "(release needs legal's --override REASON)"
        )
    if len(flagged) > 3:
        say(f"     ... and {len(flagged) - 3} more flagged outputs pending")


@contextmanager
def _one_thread():
    """The demo models are tiny: intra-op threads cost more than they save (one UNet call of the demo
    RDM took 37 ms on one thread and 870 ms on two, on this project's shared 2-core machine)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def run_demo(folder: Path | None, console: Console, *, size: Size | None = None) -> Path:
    with _one_thread():
        return _run_demo(folder, console, size or Size())


def _run_demo(folder: Path | None, console: Console, size: Size) -> Path:
    started = time.monotonic()
    world = load_world()
    models = world.models()
    work = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="stylevault-demo-"))
    work = work.absolute()
    work.mkdir(parents=True, exist_ok=True)
    data = work / "collection"
    data.mkdir(exist_ok=True)
    manifest = make_collections(world, data, size)
    catalogue = Catalogue.open(f"sqlite:///{work / 'stylevault.db'}")
    catalogue.upgrade()

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    say(f"stylevault demo in {work}")
    _team(catalogue)
    say("actors: admin (admin), sam (steward + legal), lee (legal), gia (generator)")
    say(
        "collections: "
        + ", ".join(f"{c} ({style}, {licence})" for c, style, _, licence, _ in COLLECTIONS)
        + "; every licence is simulated and says so in its source metadata"
    )

    summary = ingest(catalogue, "sam", data, manifest=manifest, source="demo", progress=False)
    say("1. sam ingests the collections: " + summary.line())

    with catalogue.read() as session:
        flagged = images.list_images(session, flagged=True)
        pending = images.list_images(session, state="pending")
    say(
        f"2. licences flagged for legal: {len(flagged)} "
        f"({', '.join(sorted({str(r['licence_raw']) for r in flagged}))})"
    )

    settled = [str(r["id"]) for r in pending if r["licence_status"] in ("normalised", "verified")]
    try:
        with catalogue.write() as session:
            review.decide(session, "sam", "approve", settled, None)
    except Refused as refusal:
        say(f"3. sam tries to approve what sam ingested: refused ({refusal})")

    with catalogue.write() as session:
        for row in flagged:
            licence_decisions.set_licence(
                session,
                catalogue.store,
                "lee",
                images.resolve(session, str(row["id"])),
                licence="LicenseRef-Personal-Use-Only",
                evidence="https://example.org/terms",
                note="simulated: read the site's terms",
            )
        results = review.decide(session, "lee", "approve", settled, None)
        review.decide(session, "lee", "reject", [str(r["id"]) for r in flagged], "personal use only")
    say(
        f"4. lee records the unknown licences as LicenseRef-Personal-Use-Only and rejects those "
        f"{len(flagged)}; "
        f"approves {len(results.changed)} images with settled licences"
    )

    with catalogue.read() as session:
        report = reports.licence_report(session)
    report_path = work / "licence-report.md"
    report_path.write_text(reports.render(report, "md"))
    say(f"5. licence report: {report_path}")
    for entry in report["by_licence"]:
        counts = ", ".join(
            f"{entry[s]} {s}" for s in ("approved", "pending", "rejected", "revoked") if entry[s]
        )
        say(f"     {entry['licence']}: {counts}")

    with catalogue.write() as session:
        stylesets.create(session, "sam", "demo-mix", "every demo collection")
        for collection, *_ in COLLECTIONS:
            stylesets.add(session, "sam", "demo-mix", collection=collection)
        mix = stylesets.publish(session, "sam", "demo-mix", "all collections")
        for name, collection, _ in SHOWN:
            stylesets.create(session, "sam", name, f"the {collection} collection")
            stylesets.add(session, "sam", name, collection=collection)
            stylesets.publish(session, "sam", name, "for the demo")
    say(
        f"6. sam publishes demo-mix@{mix['version']} ({mix['members']} images) and one style set per look: "
        + ", ".join(f"{name}@1 ({collection})" for name, collection, _ in SHOWN)
    )
    for name in ("commercial", "research"):
        with catalogue.read() as session:
            check = clearance.check(session, load_policy(name), "demo-mix")
        reasons = ", ".join(f"{count} {reason}" for reason, count in check.excluded.items())
        say(f"     demo-mix under {name}: {check.cleared} of {check.members} cleared; excluded: {reasons}")
    with catalogue.read() as session:
        night = clearance.check(session, load_policy("commercial"), "night")
    say(
        f"     night under commercial: {night.cleared} of {night.members} cleared "
        f"({', '.join(f'{n} {r}' for r, n in night.excluded.items())}), so night is indexed for research only"
    )

    encoder = f"local-dir:{models['encoder']}"
    built = {}
    for name, _, policy in SHOWN:
        built[name] = index.build(catalogue, "sam", name, policy, encoder, work / f"index-{name}")
    say(
        "7. sam builds the cleared indexes with the demo encoder: "
        + ", ".join(f"{name} under {policy} ({built[name].members} members)" for name, _, policy in SHOWN)
    )

    prompts = PROMPTS[: size.prompts]
    (work / "outputs").mkdir(exist_ok=True)
    cells: dict[tuple[str, str], Path] = {}
    runs = {}
    for name, _, _ in SHOWN:
        for number, prompt in enumerate(prompts):
            request = Request(prompt=prompt, k=K, steps=size.steps, guidance=GUIDANCE, seed=SEED)
            made = output_runs.generate(
                catalogue,
                "gia",
                request,
                work / f"index-{name}",
                models["rdm"],
                work / "outputs" / f"{name}-{number}",
            )
            cells[prompt, name] = Path(made.out) / made.files[0]
            runs[prompt, name] = made
    say(
        f"8. gia generates the same {len(prompts)} prompts against each style set (k {K}, "
        f"{size.steps} DDIM steps, guidance {GUIDANCE}, seed {SEED}) with the demo RDM: "
        f"{len(cells)} images in {work / 'outputs'}"
    )
    grid = gallery(cells, prompts, [name for name, _, _ in SHOWN], work / "gallery.png")
    say(f"     gallery (prompt x style set): {grid}")

    first = runs[prompts[0], SHOWN[0][0]]
    output = cells[prompts[0], SHOWN[0][0]]
    with catalogue.read() as session:
        shown = provenance.show(session, output)
        ranks = ", ".join(f"image {n['image_id']} ({n['licence']})" for n in shown["neighbours"])
        say(
            f"9. provenance of {output.name}: model {shown['model']['id']}, "
            f"index {shown['index']['index_id'][:12]}"
        )
        say(f"     prompt {shown['prompt']!r}; neighbours {ranks}")
        gone = shown["neighbours"][0]["image_id"]
        say(
            f"     provenance affected {gone}: {len(provenance.affected(session, gone))} outputs "
            "retrieved it; "
            f"attribution notice in {Path(first.out) / files.NOTICE}"
        )

    _review_outputs(catalogue, say)

    with catalogue.read() as session:
        released = output_listing.listing(session, state="released")
    # Revoke what a released pastel output retrieved, if there is one, so the reopening shows.
    pastel = [r["output_id"] for r in released if r["styleset"] == f"{SHOWN[0][0]}@1"]
    if pastel:
        gone = provenance.show_neighbours(catalogue, pastel[0])[0]["image_id"]
    with catalogue.write() as session:
        review.decide(session, "lee", "revoke", [str(gone)], "simulated takedown request")
    stale = verification.verify(catalogue, work / "index-pastel").stale
    with catalogue.read() as session:
        was_released = {r["output_id"] for r in released}
        reopened = [
            r for r in output_listing.listing(session, state="pending") if r["output_id"] in was_released
        ]
    say(
        f"11. lee revokes image {gone} after a (simulated) takedown request: index-pastel is now "
        f"stale ({stale}); released outputs that retrieved it, pending again: {len(reopened)}"
    )
    try:
        output_runs.generate(
            catalogue,
            "gia",
            Request(prompt=prompts[0], k=K, steps=1),
            work / "index-pastel",
            models["rdm"],
            work / "outputs" / "refused",
        )
    except Refused as refusal:
        say(f"     gia generates from it: refused ({str(refusal).partition(' refused: ')[2].split(':')[0]})")
    rebuilt = index.build(catalogue, "sam", "pastel", "commercial", encoder, work / "index-pastel-2")
    say(
        f"12. sam rebuilds: {rebuilt.members} members in {rebuilt.path}, image {gone} left out, "
        f"{rebuilt.embedded} images embedded anew (the rest came from the embedding cache)"
    )

    with catalogue.read() as session:
        chain = audit.verify(session)
    say(f"13. audit chain: {'intact' if chain.ok else 'BROKEN'}, {chain.events} events")
    say(
        f"catalogue: {catalogue.safe_url}; "
        f"try: stylevault --db sqlite:///{work / 'stylevault.db'} images list"
    )
    say(f"gallery: {grid}  (the demo took {time.monotonic() - started:.0f}s)")
    catalogue.dispose()
    return work
