"""`stylevault demo`: the catalogue flow end to end, offline, on images it draws itself.

The licences are simulated and say so in their source metadata. The demo drives the same
functions the CLI calls, as the actors a real team would have: an admin, a steward who ingests,
and two legal reviewers (the steward also holds the legal role, to show four-eyes refusing it).
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw
from rich.console import Console

from governance import (
    actors,
    audit,
    clearance,
    images,
    index,
    licences,
    provenance,
    reports,
    review,
    stylesets,
)
from governance.catalogue import Catalogue
from governance.errors import Refused
from governance.generators import Request
from governance.generators import load as load_generator
from governance.ingest import ingest
from governance.policy import load_policy

# (collection, creator, licence as a source might write it, extra manifest columns)
COLLECTIONS = [
    ("pastel-commons", "Ada Example", "CC0", {}),
    ("ink-studies", "Ben Example", "CC BY 4.0", {"attribution": "Ink Studies by Ben Example (simulated)"}),
    ("night-market", "Cleo Example", "https://creativecommons.org/licenses/by-nc/4.0/", {}),
    ("partner-acme", "ACME Images", "LicenseRef-ACME-Partner-2026", {"licence_expires": "2027-01-31"}),
    ("found-online", "unknown", "free for personal use", {}),
    ("opted-out", "Dee Example", "CC-BY-4.0", {"opt_out": "true"}),
]
PALETTES = [
    [(244, 194, 194), (194, 226, 244), (250, 240, 200)],
    [(20, 20, 20), (90, 90, 90), (240, 240, 235)],
    [(255, 60, 120), (40, 220, 255), (15, 10, 40)],
    [(200, 120, 40), (60, 110, 60), (240, 230, 210)],
    [(120, 40, 160), (250, 200, 0), (30, 30, 30)],
    [(0, 120, 200), (250, 250, 250), (200, 0, 0)],
]


def draw(seed: int, palette: list[tuple[int, int, int]]) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", (64, 64), palette[2])
    pen = ImageDraw.Draw(image)
    for step in range(0, 64, 8):
        pen.line([(0, step), (64, step)], fill=palette[1], width=1)
    x, y, r = rng.randint(16, 48), rng.randint(16, 48), rng.randint(8, 14)
    shape = rng.choice(["ellipse", "rectangle"])
    getattr(pen, shape)([x - r, y - r, x + r, y + r], fill=palette[0], outline=palette[1], width=2)
    return image


# A tiny open_clip architecture: enough to embed and index, small enough to make in a second.
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
    torch.manual_seed(seed)
    model = open_clip.CLIP(**UNTRAINED_CLIP)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(weights, folder / "open_clip_model.safetensors")
    config = {"model_cfg": UNTRAINED_CLIP, "preprocess_cfg": CLIP_PREPROCESS}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2))
    return folder


def make_collection(folder: Path) -> Path:
    """Images with a manifest, plus the kind of mess a real folder has."""
    rows = []
    for number, (collection, creator, licence, extra) in enumerate(COLLECTIONS):
        for n in range(3):
            name = f"{collection}/{collection}-{n}.png"
            (folder / collection).mkdir(parents=True, exist_ok=True)
            draw(number * 10 + n, PALETTES[number]).save(folder / name)
            rows.append(
                {
                    "path": name,
                    "collection": collection,
                    "creator": creator,
                    "title": f"{collection} #{n}",
                    "licence": licence,
                    "source_url": f"https://example.org/{name}",
                    "note": "simulated licence for the stylevault demo",
                    **extra,
                }
            )
    # The same bytes under a second name, a text file posing as a JPEG, and a path leaving the folder.
    (folder / "pastel-commons" / "copy-of-0.png").write_bytes(
        (folder / "pastel-commons/pastel-commons-0.png").read_bytes()
    )
    rows.append(
        {
            "path": "pastel-commons/copy-of-0.png",
            "collection": "pastel-commons",
            "licence": "CC0",
            "note": "simulated: the same image listed twice",
        }
    )
    (folder / "notes.jpg").write_text("this is not an image\n")
    rows.append({"path": "notes.jpg", "note": "simulated: a text file named .jpg"})
    rows.append({"path": "../outside.png", "note": "simulated: a path outside the folder"})
    manifest = folder / "manifest.csv"
    columns = [
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
    ]
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def run_demo(folder: Path | None, console: Console) -> Path:
    work = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="stylevault-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "collection"
    data.mkdir(exist_ok=True)
    manifest = make_collection(data)
    catalogue = Catalogue.open(f"sqlite:///{work / 'stylevault.db'}")
    catalogue.upgrade()

    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    say(f"stylevault demo in {work}")
    with catalogue.write() as session:
        if actors.find(session, "admin") is None:
            actors.add(session, None, "admin", ["admin"])
            actors.add(session, "admin", "sam", ["steward", "legal"])
            actors.add(session, "admin", "lee", ["legal"])
    say("actors: admin (admin), sam (steward + legal), lee (legal)")

    summary = ingest(catalogue, "sam", data, manifest=manifest, source="demo", progress=False)
    say("1. sam ingests the collection: " + summary.line())

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
        unknown = images.resolve(session, str(flagged[0]["id"]))
        lee = actors.require(session, "lee", "licence.set")
        licences.set_licence(
            session,
            catalogue.store,
            lee,
            unknown,
            licence="LicenseRef-Personal-Use-Only",
            evidence="https://example.org/terms",
            note="simulated: read the site's terms",
        )
        results = review.decide(session, "lee", "approve", settled, None)
        review.decide(session, "lee", "reject", [str(unknown.id)], "personal use only")
    say(
        f"4. lee records the unknown licence as LicenseRef-Personal-Use-Only and rejects it; "
        f"approves {sum(r['changed'] for r in results)} images with settled licences"
    )

    with catalogue.write() as session:
        revoked = review.decide(session, "lee", "revoke", [settled[0]], "simulated takedown request")
    say(f"5. lee revokes image {revoked[0]['id']} after a (simulated) takedown request")

    with catalogue.read() as session:
        report = reports.licence_report(session)
    report_path = work / "licence-report.md"
    report_path.write_text(reports.render(report, "md"))
    say(f"6. licence report: {report_path}")
    for entry in report["by_licence"]:
        counts = ", ".join(
            f"{entry[s]} {s}" for s in ("approved", "pending", "rejected", "revoked") if entry[s]
        )
        say(f"     {entry['licence']}: {counts}")
    with catalogue.write() as session:
        stylesets.create(session, "sam", "demo-mix", "every demo collection")
        for collection, *_ in COLLECTIONS:
            stylesets.add(session, "sam", "demo-mix", collection=collection)
        published = stylesets.publish(session, "sam", "demo-mix", "all collections")
    say(f"7. sam publishes style set demo-mix@{published['version']} with {published['members']} images")
    for name in ("commercial", "research"):
        with catalogue.read() as session:
            check = clearance.check(session, load_policy(name), "demo-mix")
        reasons = ", ".join(f"{count} {reason}" for reason, count in check.excluded.items())
        say(f"     under {name}: {check.cleared} of {check.members} cleared; excluded: {reasons}")

    encoder = f"local-dir:{untrained_encoder(work / 'untrained-clip')}"
    first = index.build(catalogue, "sam", "demo-mix", "commercial", encoder, work / "index-1")
    say(
        f"8. sam builds the commercial index of demo-mix@1: {first.members} cleared members in {first.path}"
        " (with an untrained tiny encoder made on the spot: it shows the governance, not the pictures)"
    )
    gone = json.loads((work / "index-1" / "manifest.json").read_text())["member_ids"][0]
    with catalogue.write() as session:
        review.decide(session, "lee", "revoke", [str(gone)], "simulated licence withdrawal")
    stale = index.verify(catalogue, work / "index-1").stale
    say(f"9. lee revokes image {gone}: the index is now stale ({stale})")
    second = index.build(catalogue, "sam", "demo-mix", "commercial", encoder, work / "index-2")
    say(
        f"10. sam rebuilds: {second.members} members in {second.path}, image {gone} left out, "
        f"{second.embedded} images embedded anew (the rest came from the embedding cache)"
    )

    with catalogue.write() as session:
        actors.add(session, "admin", "gia", ["generator"])
    plugin = load_generator()
    model = plugin.untrained_model(work / "untrained-rdm", context_dim=32)
    request = Request(prompt="a pastel circle on stripes", k=3, steps=4, n=2, seed=1)
    made = provenance.generate(
        catalogue, "gia", request, work / "index-2", model, work / "outputs", device="cpu"
    )
    say(
        f"11. gia generates {len(made.files)} images in {made.out} (an untrained model: noise, but on record)"
    )
    with catalogue.read() as session:
        shown = provenance.show(session, Path(made.out) / made.files[0])
        ranks = ", ".join(f"image {n['image_id']} ({n['licence']})" for n in shown["neighbours"])
        say(f"     provenance of {made.files[0]}: model {shown['model']['id']}, neighbours {ranks}")
        first = shown["neighbours"][0]["image_id"]
        say(
            f"     provenance affected {first}: {len(provenance.affected(session, first))} outputs "
            f"retrieved it; attribution notice in {Path(made.out) / provenance.NOTICE}"
        )

    with catalogue.read() as session:
        verification = audit.verify(session)
    say(f"12. audit chain: {'intact' if verification.ok else 'BROKEN'}, {verification.events} events")
    say(
        f"catalogue: {catalogue.safe_url}; "
        f"try: stylevault --db sqlite:///{work / 'stylevault.db'} images list"
    )
    catalogue.dispose()
    return work
