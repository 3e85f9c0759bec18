"""Does swapping the database move the style while the prompt keeps the content?

    python bench/style_swap.py [--prompts 24] [--n 2] [--steps 25] [--out bench/out/style_swap]
                               [--gallery docs/style_swap.png] [--models DIR] [--threads 1]
                               [--guidance 1.0] [--k 4] [--validation]

Databases: one style set per style, each the world's 72 contents rendered in that style with seeds
the demo models never trained on, ingested, approved, published and indexed under the commercial
policy with the shipped demo encoder: three training styles and the four held-out styles (palette
and texture combinations never seen by either model, though each part is seen in other styles).
Every content prompt is generated against every database under three conditions, measured in the
same run with the same model, seeds and sampler:

- retrieval: the product: k = 4 neighbours retrieved from that database;
- text only: k = 0, the prompt alone (the baseline that shows what the text carries by itself);
- random style: k = 4 neighbours retrieved for the same prompt from a database of another, randomly
  chosen style (the baseline that shows the style follows the neighbours, not the prompt).

The judge is a small CNN with four heads (palette of 8, texture of 8, shape of 3, colour of 4) trained
here on fresh renders of all 64 styles, with blur, noise and colour jitter so that it judges the look
rather than exact pixels. It never sees a generated image; its accuracy on clean renders it did not
train on is printed beside the table. Style accuracy: the judged palette and texture are both the
database's (chance 1/64). Content accuracy: shape and colour both as the prompt asks (chance 1/12).
Not a test: it prints tables and asserts nothing.

`--validation` is the split settings such as the guidance scale are chosen on: the databases are
rendered with other seeds (VALIDATION_SEED) and the prompts are drawn from the 48 contents the
default 24 leave out, so a setting is never chosen on the images it is then reported on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from stylevault.generation import world
from stylevault.governance.catalogue import actors
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.curation import stylesets
from stylevault.governance.demo.setting import write_manifest
from stylevault.governance.door import GENERATORS, Recorder, Request, load
from stylevault.governance.index import builds as index
from stylevault.governance.index.encoders import load_encoder
from stylevault.governance.index.handle import IndexHandle
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import review

DATABASES = ("candy-stripes", "ink-dots", "dusk-gradient", *world.HELD_OUT)
DB_SEED = 1000  # database renders: seeds the models never trained on (training used 0 and 1)
VALIDATION_SEED = 2000  # --validation: database renders for choosing settings, never the bench's
JUDGE_SEED = 5000  # judge training renders; its test renders use JUDGE_SEED + 500 onwards
K = 4
GUIDANCE = 1.0  # chosen on a validation split (other seeds and prompts): see the README
STYLES = list(world.STYLES)
PALETTES = list(world.PALETTES)
TEXTURES = list(world.TEXTURES)
SHAPES = list(world.SHAPES)
COLOURS = list(world.COLOURS)


# ---------------------------------------------------------------- the judge


class Judge(nn.Module):
    """A small CNN: 32x32 RGB -> logits for palette, texture, shape and colour."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 96, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        )  # fmt: skip
        self.palette = nn.Linear(384, len(PALETTES))
        self.texture = nn.Linear(384, len(TEXTURES))
        self.shape = nn.Linear(384, len(SHAPES))
        self.colour = nn.Linear(384, len(COLOURS))

    def forward(self, x):  # x: (B, 3, 32, 32) in [0, 1]
        h = self.body(x * 2 - 1)
        return self.palette(h), self.texture(h), self.shape(h), self.colour(h)


def renders(seed: int, per: int):
    """Every content in every style, `per` seeds each: images (N, 3, 32, 32) in [0, 1] and labels."""
    chosen = world.samples(STYLES, per_content=per, seed=seed)
    images = torch.stack(
        [torch.from_numpy(np.asarray(s.image(), np.float32) / 255).permute(2, 0, 1) for s in chosen]
    )
    labels = torch.tensor(
        [
            [
                PALETTES.index(world.STYLES[s.style].palette),
                TEXTURES.index(world.STYLES[s.style].texture),
                SHAPES.index(s.content.shape),
                COLOURS.index(s.content.colour),
            ]
            for s in chosen
        ]
    )
    return images, labels


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Blur, noise and colour jitter of the strength a small generator's outputs show."""
    b = len(x)
    sigma = torch.rand(b, generator=generator) * 1.2
    blurred = torch.stack([_blur(image, float(s)) for image, s in zip(x, sigma, strict=True)])
    gain = 1 + (torch.rand(b, 3, 1, 1, generator=generator) - 0.5) * 0.2
    noise = torch.randn(x.shape, generator=generator) * torch.rand(b, 1, 1, 1, generator=generator) * 0.08
    return (blurred * gain + noise).clamp(0, 1)


def _blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma < 0.3:
        return image
    taps = torch.arange(-2, 3, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = F.pad(image[None], (2, 2, 2, 2), mode="replicate")
    across = F.conv2d(padded, kernel.view(1, 1, 1, 5).repeat(3, 1, 1, 1), groups=3)
    return F.conv2d(across, kernel.view(1, 1, 5, 1).repeat(3, 1, 1, 1), groups=3)[0]


def train_judge(steps: int) -> tuple[Judge, dict]:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    images, labels = renders(JUDGE_SEED, 1)  # 64 styles x 72 contents = 4608
    judge = Judge()
    optimiser = torch.optim.AdamW(judge.parameters(), lr=2e-3)
    for _ in range(steps):
        batch = torch.randint(len(images), (128,), generator=generator)
        logits = judge(augment(images[batch], generator))
        loss = sum(F.cross_entropy(out, labels[batch, i]) for i, out in enumerate(logits))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    judge.eval()
    test_images, test_labels = renders(JUDGE_SEED + 500, 1)
    with torch.no_grad():
        predicted = torch.stack([out.argmax(1) for out in judge(test_images)], dim=1)
    accuracy = {
        name: round(float((predicted[:, i] == test_labels[:, i]).float().mean()), 3)
        for i, name in enumerate(("palette", "texture", "shape", "colour"))
    }
    accuracy["style"] = round(float((predicted[:, :2] == test_labels[:, :2]).all(1).float().mean()), 3)
    return judge, accuracy


# ---------------------------------------------------------------- the databases


def build_databases(work: Path, encoder_dir: Path, seed: int = DB_SEED) -> dict[str, Path]:
    catalogue = Catalogue.open(f"sqlite:///{work / 'stylevault.db'}")
    catalogue.upgrade()
    with catalogue.write() as session:
        actors.add(session, None, "admin", ["admin"])
        actors.add(session, "admin", "sam", ["steward"])
        actors.add(session, "admin", "lee", ["legal"])
        actors.add(session, "admin", "gia", ["generator"])
    rows = []
    for style in DATABASES:
        for row in world.write(work / "data", world.samples([style], seed=seed)):
            rows.append({**row, "collection": style, "licence": "CC0-1.0"})
    ingest(catalogue, "sam", work / "data", manifest=write_manifest(work / "data.csv", rows), progress=False)
    with catalogue.write() as session:
        review.decide(session, "lee", "approve", [str(i) for i in range(1, len(rows) + 1)], None)
        for style in DATABASES:
            stylesets.create(session, "sam", style)
            stylesets.add(session, "sam", style, collection=style)
            stylesets.publish(session, "sam", style)
    folders = {}
    for style in DATABASES:
        folders[style] = work / f"index-{style}"
        index.build(catalogue, "sam", style, "commercial", f"local-dir:{encoder_dir}", folders[style])
    return catalogue, folders


# ---------------------------------------------------------------- the run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--n", type=int, default=2, help="images per prompt, database and condition")
    parser.add_argument("--steps", type=int, default=25, help="DDIM steps")
    parser.add_argument("--judge-steps", type=int, default=1600)
    parser.add_argument("--guidance", type=float, default=GUIDANCE, help="classifier-free guidance scale")
    parser.add_argument("--k", type=int, default=K, help="neighbours retrieved (the demo RDM trained on 4)")
    parser.add_argument(
        "--validation",
        action="store_true",
        help="the validation split for choosing settings: databases rendered with other seeds, and "
        "prompts outside the bench's default 24",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/out/style_swap"))
    parser.add_argument("--gallery", type=Path, default=None, help="also write the gallery PNG here")
    parser.add_argument(
        "--models", type=Path, default=None, help="folder with clip/ and rdm/ (default: shipped)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (the models are tiny: one is fastest on 2 cores)",
    )
    args = parser.parse_args()
    began = time.monotonic()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    models = (
        {"encoder": args.models / "clip", "rdm": args.models / "rdm"}
        if args.models
        else world.DemoWorld().models()
    )

    judge, judge_accuracy = train_judge(args.judge_steps)
    print(f"judge (clean renders it never trained on): {json.dumps(judge_accuracy)}", flush=True)

    catalogue, folders = build_databases(
        args.out, models["encoder"], VALIDATION_SEED if args.validation else DB_SEED
    )
    handles = {style: IndexHandle.open(catalogue, folder) for style, folder in folders.items()}
    encoder = load_encoder(f"local-dir:{models['encoder']}", device="cpu")
    plugin = load(GENERATORS)
    model = plugin.load_model(models["rdm"], device="cpu")
    # A seeded sample of the contents: every shape, colour, size and position appears among 24.
    contents = random.Random(0).sample(world.CONTENTS, min(args.prompts, len(world.CONTENTS)))
    if args.validation:  # prompts the bench never uses (with its default 24), on other database renders
        reported = set(random.Random(0).sample(world.CONTENTS, 24))
        unused = [c for c in world.CONTENTS if c not in reported]
        contents = random.Random(1).sample(unused, min(args.prompts, len(unused)))
    rng = random.Random(0)
    conditions = ("retrieval", "text only", "random style")
    results = []  # one row per generated image
    gallery = {}
    generated = time.monotonic()
    for number, content in enumerate(contents):
        for style in DATABASES:
            other = rng.choice([s for s in DATABASES if s != style])
            for condition in conditions:
                handle = handles[other if condition == "random style" else style]
                k = 0 if condition == "text only" else args.k
                request = Request(
                    prompt=content.caption,
                    k=k,
                    steps=args.steps,
                    guidance=args.guidance,
                    n=args.n,
                    seed=number * 10,
                )
                outputs = plugin.generate(model, request, handle, encoder, Recorder())
                pixels = torch.stack(
                    [
                        torch.from_numpy(np.asarray(o.image, np.float32) / 255).permute(2, 0, 1)
                        for o in outputs
                    ]
                )
                with torch.no_grad():
                    palette_logits, texture_logits, shape_logits, colour_logits = judge(pixels)
                for i in range(len(outputs)):
                    results.append(
                        {
                            "prompt": content.caption,
                            "database": style,
                            "held_out": style in world.HELD_OUT,
                            "condition": condition,
                            "neighbours_from": other if condition == "random style" else style,
                            "style": f"{PALETTES[int(palette_logits[i].argmax())]}-"
                            f"{TEXTURES[int(texture_logits[i].argmax())]}",
                            "shape": SHAPES[int(shape_logits[i].argmax())],
                            "colour": COLOURS[int(colour_logits[i].argmax())],
                            "want_shape": content.shape,
                            "want_colour": content.colour,
                        }
                    )
                gallery[content.caption, style, condition] = outputs[0].image
        print(f"prompt {number + 1}/{len(contents)}: {time.monotonic() - generated:.0f}s", flush=True)
    seconds = time.monotonic() - generated
    (args.out / "results.json").write_text(json.dumps(results, indent=1))

    def rate(rows, test) -> str:
        return f"{sum(map(test, rows)) / len(rows):.2f}" if rows else "-"

    header = (
        "| condition | style acc. (all) | style acc. (training styles) | style acc. (held-out styles) "
        "| content acc. (shape and colour) | shape | colour | style = neighbours' style |"
    )
    lines = [header, "|" + " --- |" * 8]
    for condition in conditions:
        rows = [r for r in results if r["condition"] == condition]
        right_style = lambda r: r["style"] == r["database"]  # noqa: E731
        follows = lambda r: r["style"] == r["neighbours_from"]  # noqa: E731
        lines.append(
            f"| {condition} | {rate(rows, right_style)} "
            f"| {rate([r for r in rows if not r['held_out']], right_style)} "
            f"| {rate([r for r in rows if r['held_out']], right_style)} "
            f"| {rate(rows, lambda r: r['shape'] == r['want_shape'] and r['colour'] == r['want_colour'])} "
            f"| {rate(rows, lambda r: r['shape'] == r['want_shape'])} "
            f"| {rate(rows, lambda r: r['colour'] == r['want_colour'])} "
            f"| {'-' if condition == 'text only' else rate(rows, follows)} |"
        )
    per_db = [
        "| database | held out | style acc. (retrieval) | palette | texture | content acc. (retrieval) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for style in DATABASES:
        rows = [r for r in results if r["condition"] == "retrieval" and r["database"] == style]
        per_db.append(
            f"| {style} | {'yes' if style in world.HELD_OUT else 'no'} "
            f"| {rate(rows, lambda r: r['style'] == r['database'])} "
            f"| {rate(rows, same_part('palette'))} | {rate(rows, same_part('texture'))} "
            f"| {rate(rows, lambda r: r['shape'] == r['want_shape'] and r['colour'] == r['want_colour'])} |"
        )
    summary = (
        f"{len(contents)} prompts x {len(DATABASES)} databases x {len(conditions)} conditions x "
        f"{args.n} images = {len(results)} images, {args.steps} DDIM steps, guidance {args.guidance}, "
        f"k {args.k}; generation took "
        f"{seconds:.0f}s on {cpu_name()} ({os.cpu_count()} cores, "
        f"torch threads {torch.get_num_threads()}); whole run {time.monotonic() - began:.0f}s"
    )
    text = "\n".join(lines) + "\n\n" + "\n".join(per_db) + "\n\n" + summary + "\n"
    text += f"judge accuracy on clean renders: {json.dumps(judge_accuracy)}\n"
    (args.out / "table.md").write_text(text)
    print(text)
    if args.gallery:
        write_gallery(gallery, contents[:6], args.gallery)
        print(f"gallery: {args.gallery}")
    catalogue.dispose()


def same_part(part: str):
    """A test of a result row: the judged style's `part` (palette or texture) is the database's."""
    return lambda r: getattr(world.STYLES[r["style"]], part) == getattr(world.STYLES[r["database"]], part)


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def write_gallery(cells: dict, contents, out: Path) -> None:
    """Rows: prompts; columns: the database under retrieval, then text only (k = 0) for reference."""
    from PIL import Image, ImageDraw

    side, label, head = 72, 250, 28
    columns = [(style, "retrieval") for style in DATABASES] + [(DATABASES[0], "text only")]
    grid = Image.new("RGB", (label + side * len(columns), head + side * len(contents)), (255, 255, 255))
    pen = ImageDraw.Draw(grid)
    for c, (style, condition) in enumerate(columns):
        name = style if condition == "retrieval" else "text only"
        name += " *" if style in world.HELD_OUT and condition == "retrieval" else ""
        pen.text((label + c * side + 2, 4), name[:11], fill=(0, 0, 0))
        pen.text((label + c * side + 2, 15), name[11:], fill=(0, 0, 0))
    for r, content in enumerate(contents):
        pen.text((4, head + r * side + side // 2 - 6), content.caption, fill=(0, 0, 0))
        for c, (style, condition) in enumerate(columns):
            tile = cells[content.caption, style, condition].resize((side, side), Image.Resampling.NEAREST)
            grid.paste(tile, (label + c * side, head + r * side))
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)


if __name__ == "__main__":
    main()
