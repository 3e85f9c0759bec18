"""`stylevault demo`: the catalogue flow end to end, offline, on a procedural style world, with the
demo models stylevault trained itself on that world (stylevault.governance.demo.models trains them).

The world and its models are reached through the door (entry-point group `stylevault.worlds`; ours
is `demo`, in the `generation` package): governance never imports generation. The licences are
simulated and say so in their source metadata. The demo drives the same functions the CLI calls,
as the actors a real team would have (stylevault.governance.demo.setting), one step at a time; a
`Demo` carries what the steps share.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.curation import clearance, stylesets
from stylevault.governance.demo.material import COLLECTIONS, gallery, make_collections
from stylevault.governance.demo.setting import team
from stylevault.governance.door import Request
from stylevault.governance.errors import Refused
from stylevault.governance.index import builds as index
from stylevault.governance.index import verification
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import licence_decisions, reports, review
from stylevault.governance.outputs import files, provenance
from stylevault.governance.outputs import listing as output_listing
from stylevault.governance.outputs import runs as output_runs
from stylevault.governance.outputs import signoff as outputs
from stylevault.governance.rules.policy_files import load_policy
from stylevault.governance.shipped import load_world
from stylevault.governance.upkeep import log_check
from stylevault.governance.views import images

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


@dataclass
class Demo:
    """What the steps share: where the demo works, its catalogue and the world's models, and what
    the earlier steps made for the later ones."""

    work: Path
    catalogue: Catalogue
    models: dict[str, Path]
    size: Size
    say: Callable[[str], None]
    encoder: str = ""  # the spec the indexes are built with
    prompts: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], Path] = field(default_factory=dict)  # (prompt, style set) -> PNG
    runs: dict = field(default_factory=dict)  # (prompt, style set) -> output_runs.Generated
    grid: Path | None = None
    nearest: int | None = None  # the first output's nearest neighbour


def run_demo(folder: Path | None, console: Console, *, size: Size | None = None) -> Path:
    started = time.monotonic()
    world = load_world()
    work = (Path(folder) if folder else Path(tempfile.mkdtemp(prefix="stylevault-demo-"))).absolute()
    work.mkdir(parents=True, exist_ok=True)
    (work / "collection").mkdir(exist_ok=True)
    size = size or Size()
    manifest = make_collections(world, work / "collection", size.contents)
    catalogue = Catalogue.open(f"sqlite:///{work / 'stylevault.db'}")
    catalogue.upgrade()
    demo = Demo(
        work, catalogue, world.models(), size, lambda text: console.print(text, markup=False, highlight=False)
    )
    with world.running():
        _introduce(demo)
        _ingest_and_review(demo, manifest)
        _report_and_publish(demo)
        _index_and_generate(demo)
        _show_provenance(demo)
        _review_outputs(demo)
        _revoke_and_rebuild(demo)
    _close(demo, started)
    return work


def _introduce(demo: Demo) -> None:
    demo.say(f"stylevault demo in {demo.work}")
    team(demo.catalogue)
    demo.say("actors: admin (admin), sam (steward + legal), lee (legal), gia (generator)")
    demo.say(
        "collections: "
        + ", ".join(f"{c} ({style}, {licence})" for c, style, _, licence, _ in COLLECTIONS)
        + "; every licence is simulated and says so in its source metadata"
    )


def _ingest_and_review(demo: Demo, manifest: Path) -> None:
    """Steps 1-4: sam ingests; the unknown licences are flagged; four-eyes refuses sam's own
    approval; lee records the unknown licences, rejects them and approves the settled ones."""
    catalogue, say = demo.catalogue, demo.say
    summary = ingest(
        catalogue, "sam", demo.work / "collection", manifest=manifest, source="demo", progress=False
    )
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


def _report_and_publish(demo: Demo) -> None:
    """Steps 5-6: the licence report; sam publishes the mix and one style set per look, and what
    each policy clears of them."""
    catalogue, say = demo.catalogue, demo.say
    with catalogue.read() as session:
        report = reports.licence_report(session)
    report_path = demo.work / "licence-report.md"
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


def _index_and_generate(demo: Demo) -> None:
    """Steps 7-8: the cleared indexes, built with the world's encoder; the same prompts against
    each, with the world's model, and the gallery of them."""
    catalogue, say, work = demo.catalogue, demo.say, demo.work
    demo.encoder = f"local-dir:{demo.models['encoder']}"
    built = {}
    for name, _, policy in SHOWN:
        built[name] = index.build(catalogue, "sam", name, policy, demo.encoder, work / f"index-{name}")
    say(
        "7. sam builds the cleared indexes with the demo encoder: "
        + ", ".join(f"{name} under {policy} ({built[name].members} members)" for name, _, policy in SHOWN)
    )

    demo.prompts = PROMPTS[: demo.size.prompts]
    (work / "outputs").mkdir(exist_ok=True)
    for name, _, _ in SHOWN:
        for number, prompt in enumerate(demo.prompts):
            request = Request(prompt=prompt, k=K, steps=demo.size.steps, guidance=GUIDANCE, seed=SEED)
            made = output_runs.generate(
                catalogue,
                "gia",
                request,
                work / f"index-{name}",
                demo.models["rdm"],
                work / "outputs" / f"{name}-{number}",
            )
            demo.cells[prompt, name] = Path(made.out) / made.files[0]
            demo.runs[prompt, name] = made
    say(
        f"8. gia generates the same {len(demo.prompts)} prompts against each style set (k {K}, "
        f"{demo.size.steps} DDIM steps, guidance {GUIDANCE}, seed {SEED}) with the demo RDM: "
        f"{len(demo.cells)} images in {work / 'outputs'}"
    )
    demo.grid = gallery(demo.cells, demo.prompts, [name for name, _, _ in SHOWN], work / "gallery.png")
    say(f"     gallery (prompt x style set): {demo.grid}")


def _show_provenance(demo: Demo) -> None:
    """Step 9: where the first output came from, and every output that retrieved its nearest."""
    first = demo.runs[demo.prompts[0], SHOWN[0][0]]
    output = demo.cells[demo.prompts[0], SHOWN[0][0]]
    with demo.catalogue.read() as session:
        shown = provenance.show(session, output).as_dict()
        ranks = ", ".join(f"image {n['image_id']} ({n['licence']})" for n in shown["neighbours"])
        demo.say(
            f"9. provenance of {output.name}: model {shown['model']['id']}, "
            f"index {shown['index']['index_id'][:12]}"
        )
        demo.say(f"     prompt {shown['prompt']!r}; neighbours {ranks}")
        demo.nearest = gone = shown["neighbours"][0]["image_id"]
        demo.say(
            f"     provenance affected {gone}: {len(provenance.affected(session, gone))} outputs "
            "retrieved it; "
            f"attribution notice in {Path(first.out) / files.NOTICE}"
        )


def _review_outputs(demo: Demo) -> None:
    """Step 10: every output was scored when it was made; gia may not release its own work, lee
    releases what is not flagged, and what is flagged waits for a closer look."""
    catalogue, say = demo.catalogue, demo.say
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


def _revoke_and_rebuild(demo: Demo) -> None:
    """Steps 11-12: lee revokes what a released pastel output retrieved (the index goes stale and
    the output is reopened), generation from it is refused, and sam rebuilds it without."""
    catalogue, say, work = demo.catalogue, demo.say, demo.work
    with catalogue.read() as session:
        released = output_listing.listing(session, state="released")
    # Revoke what a released pastel output retrieved, if there is one, so the reopening shows.
    pastel = [r["output_id"] for r in released if r["styleset"] == f"{SHOWN[0][0]}@1"]
    gone = provenance.show_neighbours(catalogue, pastel[0])[0]["image_id"] if pastel else demo.nearest
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
            Request(prompt=demo.prompts[0], k=K, steps=1),
            work / "index-pastel",
            demo.models["rdm"],
            work / "outputs" / "refused",
        )
    except Refused as refusal:
        say(f"     gia generates from it: refused ({str(refusal).partition(' refused: ')[2].split(':')[0]})")
    rebuilt = index.build(catalogue, "sam", "pastel", "commercial", demo.encoder, work / "index-pastel-2")
    say(
        f"12. sam rebuilds: {rebuilt.members} members in {rebuilt.path}, image {gone} left out, "
        f"{rebuilt.embedded} images embedded anew (the rest came from the embedding cache)"
    )


def _close(demo: Demo, started: float) -> None:
    """Step 13: the audit log verifies (its chain, and the tables replayed against it); where to look
    next."""
    with demo.catalogue.read() as session:
        checked = log_check.verify_log(session)
    chain, replayed = checked.chain, checked.replay
    demo.say(
        f"13. audit chain: {'intact' if chain.ok else 'BROKEN'}, {chain.events} events; replayed against "
        f"{replayed.rows} table rows: "
        + ("they agree" if replayed.ok else f"{len(replayed.findings)} disagree ({checked.failure})")
    )
    demo.say(
        f"catalogue: {demo.catalogue.safe_url}; "
        f"try: stylevault --db sqlite:///{demo.work / 'stylevault.db'} images list"
    )
    demo.say(f"gallery: {demo.grid}  (the demo took {time.monotonic() - started:.0f}s)")
    demo.catalogue.dispose()
