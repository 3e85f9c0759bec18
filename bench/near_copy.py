"""The near-copy check (outputs.scoring) on copies of database images and on novel images.

    python bench/near_copy.py [--members 200] [--novel 200] [--encoder SPEC] [--policy commercial]
                              [--size 128] [--out bench/out/near_copy]

A real catalogue is made in a temporary folder: `members` procedural pictures (gradient background,
a texture, several shapes, from a seed) are ingested as CC0, approved by a second actor, published
as a style set and built into a cleared index with the encoder (default: the untrained demo encoder
stylevault makes offline; pass a trained one as `local-dir:PATH`). Then, for every member, five kinds
of copy are scored against the index by the same Scorer that `stylevault generate` uses:

    exact    the member's own pixels
    crop     a random crop keeping 70-90 % of the area, resized back to the full size
    colour   brightness, contrast and saturation each moved by up to 10 %
    jpeg     re-encoded as JPEG at quality 40-70
    mirror   flipped left to right

and `novel` pictures drawn from seeds outside the database are scored the same way. Each check is
judged at the policy's thresholds (`outputs:` in policies/POLICY.yaml): cosine (nearest member's cosine
at or above near_copy_cosine), hash (the output's phash, or its mirror's, within near_copy_hash bits of
a member's own phash or of one of its 18 crop hashes, governance/copyhash.py),
and both combined (either one flags). Reported: recall on each kind of copy and the false-flag rate
on the novel pictures, plus, per check, the threshold that keeps false flags at or under 1 % on this
run's novel pictures and the recall it would give. Also: the scoring time per output (embedding the
output and its mirror, one nearest-neighbour search, the phash scan) next to the time of one small
generation on the same machine. Not a test: it prints tables and asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

KINDS = ("exact", "crop", "colour", "jpeg", "mirror")
TARGET_RECALL, TARGET_FALSE = 0.95, 0.01


def picture(seed: int, size: int) -> Image.Image:
    """A procedural picture: a two-colour gradient, a texture (stripes, dots or noise), shapes."""
    rng = random.Random(seed)
    a = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    b = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    t = np.linspace(0, 1, size, dtype=np.float32)
    ramp = t[None, :, None] if rng.random() < 0.5 else t[:, None, None]
    pixels = a * (1 - ramp) + b * ramp + np.zeros((size, size, 3), dtype=np.float32)
    texture = rng.choice(("stripes", "dots", "noise"))
    if texture == "stripes":
        period = rng.randrange(6, 20)
        pixels[(np.arange(size) // period % 2 == 0)] *= 0.8
    elif texture == "noise":
        pixels += np.random.default_rng(seed).normal(0, 12, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(image)
    if texture == "dots":
        step = rng.randrange(8, 20)
        for y in range(0, size, step):
            for x in range(0, size, step):
                pen.ellipse([x, y, x + 2, y + 2], fill=(255, 255, 255))
    for _ in range(rng.randrange(3, 7)):
        x0, y0 = rng.randrange(size), rng.randrange(size)
        w, h = rng.randrange(size // 8, size // 2), rng.randrange(size // 8, size // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = rng.choice((pen.rectangle, pen.ellipse))
        shape([x0, y0, x0 + w, y0 + h], fill=colour, outline=(0, 0, 0), width=rng.randrange(0, 4))
    return image


def variant(image: Image.Image, kind: str, rng: random.Random) -> Image.Image:
    size = image.size
    if kind == "exact":
        return image.copy()
    if kind == "crop":
        side = (rng.uniform(0.70, 0.90)) ** 0.5  # area 70-90 %
        w, h = int(size[0] * side), int(size[1] * side)
        x, y = rng.randrange(size[0] - w + 1), rng.randrange(size[1] - h + 1)
        return image.crop((x, y, x + w, y + h)).resize(size, Image.Resampling.BICUBIC)
    if kind == "colour":
        out = ImageEnhance.Brightness(image).enhance(rng.uniform(0.9, 1.1))
        out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.9, 1.1))
        return ImageEnhance.Color(out).enhance(rng.uniform(0.9, 1.1))
    if kind == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=rng.randrange(40, 71))
        return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    if kind == "mirror":
        return ImageOps.mirror(image)
    raise ValueError(kind)


def build(work: Path, members: int, size: int, encoder: str, policy: str):
    from stylevault.governance.catalogue import actors
    from stylevault.governance.catalogue.db import Catalogue
    from stylevault.governance.curation import stylesets
    from stylevault.governance.index import builds as index
    from stylevault.governance.ingest.run import ingest
    from stylevault.governance.legal import review

    folder = work / "in"
    folder.mkdir()
    rows = []
    for n in range(members):
        picture(n, size).save(folder / f"{n:05d}.png")
        rows.append({"path": f"{n:05d}.png", "licence": "CC0"})
    with (work / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "licence"])
        writer.writeheader()
        writer.writerows(rows)
    catalogue = Catalogue.open(f"sqlite:///{work / 'bench.db'}")
    catalogue.upgrade()
    with catalogue.write() as session:
        actors.add(session, None, "admin", ["admin"])
        actors.add(session, "admin", "sam", ["steward"])
        actors.add(session, "admin", "lee", ["legal"])
    ingest(catalogue, "sam", folder, manifest=work / "manifest.csv", progress=False)
    with catalogue.write() as session:
        review.decide(session, "lee", "approve", [str(i) for i in range(1, members + 1)], None)
        stylesets.create(session, "sam", "bench")
        stylesets.add(session, "sam", "bench", [str(i) for i in range(1, members + 1)])
        stylesets.publish(session, "sam", "bench")
    index.build(catalogue, "sam", "bench", policy, encoder, work / "index", progress=False)
    return catalogue, work / "index"


def measure(scorer, images: list[Image.Image]) -> tuple[np.ndarray, np.ndarray, float]:
    """(nearest cosine, nearest phash distance) per image, and the seconds per image."""
    started = time.perf_counter()
    scores = []
    for start in range(0, len(images), 16):
        batch = images[start : start + 16]
        scores += scorer.score(batch, "a picture", [[] for _ in batch])
    seconds = (time.perf_counter() - started) / len(images)
    cosine = np.array([s.nearest_cosine for s in scores])
    distance = np.array([s.nearest_hash_distance for s in scores])
    return cosine, distance, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--novel", type=int, default=200)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--encoder", default=None, help="default: the untrained demo encoder")
    parser.add_argument("--policy", default="commercial")
    parser.add_argument("--out", type=Path, default=Path("bench/out/near_copy"))
    args = parser.parse_args()

    from stylevault.governance.index.encoders import load_encoder
    from stylevault.governance.index.handle import IndexHandle
    from stylevault.governance.outputs.scoring import Scorer
    from stylevault.governance.rules.policy_files import load_policy

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        encoder_spec = args.encoder
        if encoder_spec is None:
            from stylevault.generation.clip import untrained_encoder

            encoder_spec = f"local-dir:{untrained_encoder(work / 'encoder')}"
        catalogue, folder = build(work, args.members, args.size, encoder_spec, args.policy)
        handle = IndexHandle.open(catalogue, folder)
        encoder = load_encoder(encoder_spec, device="cpu")
        policy = load_policy(args.policy)
        scorer = Scorer(handle, encoder, policy)
        rng = random.Random(7)
        originals = [picture(n, args.size) for n in range(args.members)]
        results = {}
        for kind in KINDS:
            images = [variant(image, kind, rng) for image in originals]
            results[kind] = measure(scorer, images)
        novel = [picture(1_000_000 + n, args.size) for n in range(args.novel)]
        results["novel"] = measure(scorer, novel)
        catalogue.dispose()

    limits = scorer.thresholds
    cos_limit, hash_limit = limits["near_copy_cosine"], limits["near_copy_hash"]

    def flags(kind):
        cosine, distance, _ = results[kind]
        by_cosine, by_hash = cosine >= cos_limit, distance <= hash_limit
        return {"cosine": by_cosine, "hash": by_hash, "both": by_cosine | by_hash}

    print(
        f"near-copy check: {args.members} members ({args.size} px), {args.novel} novel pictures, "
        f"encoder {encoder.id}, policy {policy.name} (cosine >= {cos_limit}, phash <= {hash_limit} bits)"
    )
    header = "| check | " + " | ".join(f"recall {k}" for k in KINDS) + " | recall all | false flags (novel) |"
    print(header)
    print("|" + "---|" * (len(KINDS) + 3))
    table = {}
    for check in ("cosine", "hash", "both"):
        recalls = [float(flags(kind)[check].mean()) for kind in KINDS]
        overall = float(np.mean(np.concatenate([flags(kind)[check] for kind in KINDS])))
        false = float(flags("novel")[check].mean())
        table[check] = {"recall": dict(zip(KINDS, recalls, strict=True)), "all": overall, "false": false}
        print(f"| {check} | " + " | ".join(f"{r:.3f}" for r in recalls) + f" | {overall:.3f} | {false:.3f} |")

    # The thresholds this run's novel pictures allow at <= 1 % false flags, and what they catch.
    novel_cos, novel_hash, _ = results["novel"]
    copies_cos = np.concatenate([results[k][0] for k in KINDS])
    copies_hash = np.concatenate([results[k][1] for k in KINDS])
    cos_at = float(np.quantile(novel_cos, 1 - TARGET_FALSE, method="higher")) + 1e-6
    hash_at = int(np.quantile(novel_hash, TARGET_FALSE, method="lower")) - 1
    calibrated = {
        "cosine_threshold": round(cos_at, 6),
        "hash_threshold": hash_at,
        "recall_cosine": float((copies_cos >= cos_at).mean()),
        "recall_hash": float((copies_hash <= hash_at).mean()),
        "recall_both": float(((copies_cos >= cos_at) | (copies_hash <= hash_at)).mean()),
        "false_both": float(((novel_cos >= cos_at) | (novel_hash <= hash_at)).mean()),
    }
    print(
        f"\nat <= 1 % false flags on these novel pictures: cosine >= {cos_at:.4f} catches "
        f"{calibrated['recall_cosine']:.3f} of the copies, phash <= {hash_at} catches "
        f"{calibrated['recall_hash']:.3f}, both {calibrated['recall_both']:.3f} "
        f"(false flags {calibrated['false_both']:.3f})"
    )
    print(
        f"cosine of novel pictures to their nearest member: median {np.median(novel_cos):.4f}, "
        f"max {novel_cos.max():.4f}; of crops: median {np.median(results['crop'][0]):.4f}"
    )
    print(f"phash distance of novel pictures: min {novel_hash.min()}, median {np.median(novel_hash):.0f}")
    seconds = np.mean([results[kind][2] for kind in (*KINDS, "novel")])
    print(f"scoring time per output (CPU, batches of 16): {seconds * 1000:.1f} ms")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "near_copy.json").write_text(
        json.dumps(
            {
                "members": args.members,
                "novel": args.novel,
                "size": args.size,
                "encoder": encoder.id,
                "policy": {"name": policy.name, "sha256": policy.hash, **limits},
                "table": table,
                "calibrated": calibrated,
                "seconds_per_output": seconds,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
