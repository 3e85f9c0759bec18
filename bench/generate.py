"""Images/s of `stylevault generate` against a direct diffusers loop on the same UNet, VAE, DDIM
scheduler, steps, batch and guidance, measured in the same run, and where the difference goes.

    python bench/generate.py [--steps 20] [-n 4] [--k 10] [--guidance 5.0] [--repeat 3] [--images 48]
                             [--latent-size 32] [--channels 64 128] [--out bench/out]

Setup, rebuilt on every run under --out/generate-run/: a SQLite catalogue, --images generated 64x64
PNGs ingested with a CC0 manifest by a steward, approved by a legal reviewer, published as style set
`bench@1`, a tiny open_clip encoder with seeded random weights (generation.clip.untrained_encoder), a
cleared `commercial` index, and an untrained RDM from stylevault.generation.model.create_untrained with a
larger latent than the tests' (so that sampling dominates, as it does with a real model).

"ours" is one in-process `outputs.runs.generate` call, everything the CLI does after its
imports: actor check, index verification, encoder load, model load (safetensors read + weights sha256),
retrieval, guided DDIM sampling, decode, the output scores and near-copy check (issue 7), PNG + sidecar
+ notice files, and the catalogue transaction. "direct" is the loop a diffusers pipeline runs, on
modules and inputs prepared beforehand (the same context [text; neighbours], zero unconditional context
and seeded noise): the doubled batch through the UNet, guidance, DDIMScheduler.step, VAE decode, PIL
images. Each of --repeat rounds runs the direct loop, a plain `generate` and a `generate` with the
functions it calls wrapped in timers (exclusive time: a part's timed sub-parts are rows of their own),
in a rotating order, because other jobs share this machine; reported are the best call of each path, the
median of the rounds' ratios (which the 5 % verdict uses) and the median of each part, and the images of
the two paths must agree. Python start-up and the lazy imports the CLI pays once per process are not
counted. The fixed costs do not grow with steps or image size, so a real model (1.3 B parameters, 50
steps at 48x48 latents) makes them relatively far smaller, except the model and encoder loads, which
read and hash every weight on each call (see bench/gpu_rdm768.py --model-load).
Not a test: it prints tables and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import math
import os
import shutil
import statistics
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SEED = 20240611
PROMPT = "a pastel circle on stripes"
TARGET_OVERHEAD = 0.05
GENERATE_ITSELF = "generate itself (actor, --out and request checks, output check)"
ACTORS = {"admin": ["admin"], "sam": ["steward"], "lee": ["legal"], "gia": ["generator"]}


# ---------------------------------------------------------------- the setup


def picture(index: int):
    """A 64x64 picture, the same for the same index: a gradient with a few shapes."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng([SEED, index])
    ramp = np.linspace(0.0, 1.0, 64)[None, :, None]
    low, high = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    image = Image.fromarray((low + (high - low) * ramp).repeat(64, axis=0).astype(np.uint8), "RGB")
    pen = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = (int(v) for v in rng.integers(0, 40, 2))
        box = [x0, y0, x0 + int(rng.integers(8, 24)), y0 + int(rng.integers(8, 24))]
        (pen.ellipse if rng.random() < 0.5 else pen.rectangle)(
            box, fill=tuple(int(c) for c in rng.integers(0, 256, 3))
        )
    return image


@dataclass
class Setup:
    catalogue: object  # stylevault.governance.catalogue.db.Catalogue
    index_dir: Path
    model_dir: Path
    runs: Path  # one empty folder per generate call goes here


def setup(work: Path, images: int, latent_size: int, channels: tuple[int, ...]) -> Setup:
    """A catalogue with a published, approved, indexed style set and an untrained model, from scratch."""
    from stylevault.generation.clip import untrained_encoder
    from stylevault.generation.model import create_untrained, save_model
    from stylevault.governance.catalogue import actors
    from stylevault.governance.catalogue.db import Catalogue
    from stylevault.governance.curation import stylesets
    from stylevault.governance.index import builds as index
    from stylevault.governance.index.encoders import load_encoder
    from stylevault.governance.ingest.run import ingest
    from stylevault.governance.legal import review

    shutil.rmtree(work, ignore_errors=True)
    folder = work / "images"
    folder.mkdir(parents=True)
    rows = []
    for n in range(images):
        picture(n).save(folder / f"bench-{n:03d}.png")
        rows.append(
            {
                "path": f"bench-{n:03d}.png",
                "licence": "CC0",
                "creator": f"Bench Painter {n}",
                "title": f"Bench study {n}",
                "source_url": f"https://example.org/bench/{n}",
            }
        )
    manifest = work / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    catalogue = Catalogue.open(f"sqlite:///{work / 'catalogue.db'}", work / "catalogue.store")
    catalogue.upgrade()
    with catalogue.write() as session:
        for name, roles in ACTORS.items():
            actors.add(session, None if name == "admin" else "admin", name, roles)
    summary = ingest(catalogue, "sam", folder, manifest=manifest, progress=False)
    if summary.catalogued != images:
        raise SystemExit(f"ingest of {folder}: {summary.line()}")
    ids = [str(n) for n in range(1, images + 1)]
    with catalogue.write() as session:
        review.decide(session, "lee", "approve", ids, None)
        stylesets.create(session, "sam", "bench")
        stylesets.add(session, "sam", "bench", ids)
        stylesets.publish(session, "sam", "bench")
    spec = f"local-dir:{untrained_encoder(work / 'encoder', seed=0)}"
    index.build(catalogue, "sam", "bench@1", "commercial", spec, work / "index")
    context_dim = load_encoder(spec, device="cpu").dim
    parts = create_untrained(
        context_dim=context_dim, latent_size=latent_size, block_out_channels=channels, seed=0
    )
    save_model(*parts, work / "model")
    (work / "runs").mkdir()
    return Setup(catalogue, work / "index", work / "model", work / "runs")


# ---------------------------------------------------------------- the two paths


def request_of(args):
    from stylevault.governance.door import Request

    return Request(
        prompt=PROMPT, seed=SEED, steps=args.steps, guidance=args.guidance, k=args.k, sampler="ddim", n=args.n
    )


def ours(bench: Setup, request, name: str):
    """One `stylevault generate`, in process; the images are read back from the PNGs it wrote."""
    import numpy as np
    from PIL import Image

    from stylevault.governance.outputs import runs

    started = time.perf_counter()
    made = runs.generate(
        bench.catalogue, "gia", request, bench.index_dir, bench.model_dir, bench.runs / name, device="cpu"
    )
    seconds = time.perf_counter() - started
    pixels = np.stack([np.asarray(Image.open(Path(made.out) / file).convert("RGB")) for file in made.files])
    return seconds, pixels  # (n, H, W, 3) uint8


@dataclass
class Direct:
    """What a diffusers pipeline holds when its loop starts: modules and prepared tensors."""

    unet: object
    vae: object
    scheduler_config: dict
    scale_factor: float
    x_T: object  # (B, C, h, w) float32, image i from seed + i as the pipeline draws it
    context: object  # (B, 1 + k, D): [text token; neighbours, most similar first]
    uncond: object  # (B, 1 + k, D) zeros


def prepare_direct(bench: Setup, request) -> Direct:
    """The same modules (from the same folder) and the same inputs the pipeline builds."""
    import torch

    from stylevault.generation.model import load_model
    from stylevault.governance.index.encoders import load_encoder
    from stylevault.governance.index.handle import IndexHandle

    model = load_model(bench.model_dir, device="cpu")
    handle = IndexHandle.open(bench.catalogue, bench.index_dir)
    encoder = load_encoder(handle.manifest["encoder"]["spec"], device="cpu")
    query = encoder.encode_texts([request.prompt])  # (1, D) L2-normalised float32
    text = torch.from_numpy(query)[:, None, :]  # (1, 1, D)
    ids, _ = handle.search(query, request.k)  # (1, k)
    neighbours = torch.from_numpy(handle.vectors(ids))  # (1, k, D)
    neighbours = neighbours / neighbours.norm(dim=-1, keepdim=True)
    context = torch.cat([text, neighbours], dim=1).expand(request.n, -1, -1)  # (B, 1 + k, D)
    config = model.config
    shape = (1, config["latent_channels"], config["latent_size"], config["latent_size"])
    x_T = torch.cat(
        [
            torch.randn(shape, generator=torch.Generator("cpu").manual_seed(request.seed + i))
            for i in range(request.n)
        ]
    )
    return Direct(
        model.unet,
        model.vae,
        model.scheduler_config,
        config["scale_factor"],
        x_T,
        context,
        torch.zeros_like(context),
    )


def direct_loop(inputs: Direct, steps: int, guidance: float, clock: Clock | None = None):
    """The StableDiffusionPipeline loop: doubled batch [uncond; cond], eps_u + s (eps_c - eps_u)."""
    import numpy as np
    import torch
    from diffusers import DDIMScheduler
    from PIL import Image

    started = time.perf_counter()
    with torch.no_grad():
        scheduler = DDIMScheduler.from_config(inputs.scheduler_config)
        scheduler.set_timesteps(steps)
        latents = inputs.x_T * scheduler.init_noise_sigma
        embeds = torch.cat([inputs.uncond, inputs.context])  # (2B, 1 + k, D)
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
            eps_uncond, eps_cond = inputs.unet(model_input, t, encoder_hidden_states=embeds).sample.chunk(2)
            eps = eps_uncond + guidance * (eps_cond - eps_uncond)
            latents = scheduler.step(eps, t, latents).prev_sample
        looped = time.perf_counter()
        images = inputs.vae.decode(latents / inputs.scale_factor).sample  # (B, 3, H, W) in about [-1, 1]
        images = ((images + 1) / 2).clamp(0, 1)
        pixels = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        pictures = [Image.fromarray(np.ascontiguousarray(p), "RGB") for p in pixels]
    ended = time.perf_counter()
    if clock is not None:
        clock.spent["direct: denoising loop"] += looped - started
        clock.spent["direct: decode + PIL"] += ended - looped
    return ended - started, np.stack([np.asarray(p) for p in pictures])


# ---------------------------------------------------------------- the breakdown


class Clock:
    """Exclusive time per label: a timed call's time minus that of the timed calls inside it."""

    def __init__(self):
        self.spent: dict[str, float] = defaultdict(float)
        self._inner: list[float] = []

    def call(self, label: str, function, *args, **kwargs):
        started = time.perf_counter()
        self._inner.append(0.0)
        try:
            return function(*args, **kwargs)
        finally:
            elapsed = time.perf_counter() - started
            self.spent[label] += elapsed - self._inner.pop()
            if self._inner:
                self._inner[-1] += elapsed


def timed_parts():
    """(owner, attribute, label, shared with the direct loop) for each function `generate` reaches."""
    from stylevault.generation import model, sampling
    from stylevault.generation.plugin import RDMGenerator
    from stylevault.governance.index import builds as index
    from stylevault.governance.index import encoders
    from stylevault.governance.index.encoders import Encoder
    from stylevault.governance.index.handle import IndexHandle
    from stylevault.governance.outputs import files, runs
    from stylevault.governance.outputs.scoring import Scorer

    return [
        (index, "verify", "index verification (file hashes, manifest vs catalogue, clearance)", False),
        (IndexHandle, "__init__", "index handle open (memory maps, usearch view)", False),
        (encoders, "load_encoder", "encoder load (open_clip model, tokenizer, weights sha256)", False),
        (runs, "load", "generator lookup (entry points)", False),
        (RDMGenerator, "load_model", "model load (safetensors read, module build)", False),
        (model, "weights_sha256", "model weights sha256 (the model id)", False),
        (Encoder, "encode_texts", "prompt embedding (retrieval, then scoring)", False),
        (IndexHandle, "search", "index search (retrieval, then the nearest member)", False),
        (IndexHandle, "vectors", "retrieval: neighbour vectors", False),
        (RDMGenerator, "generate", "pipeline glue (checks, context, noise, PIL)", False),
        (sampling, "sample", "sampling: guided DDIM loop", True),
        (sampling, "decode", "VAE decode", True),
        (Scorer, "__init__", "scoring setup (member hashes, index centroid)", False),
        (Scorer, "score", "scoring: image embeddings, mirror, phash scan", False),
        (files, "png_bytes", "PNG encode with text chunks", False),
        (files, "pixels_sha256", "pixel sha256", False),
        (runs, "_record", "record: sources query, JSON, notice, files, rename", False),
        (runs, "_insert", "catalogue transaction (run, outputs, neighbours, audit)", False),
    ]


@contextmanager
def timing(clock: Clock, parts):
    """Wrap each part in `clock` for the duration; restores the originals afterwards."""
    saved = []
    try:
        for owner, name, label, _shared in parts:
            static = inspect.getattr_static(owner, name)
            original = getattr(owner, name)

            def timed(*args, _original=original, _label=label, **kwargs):
                return clock.call(_label, _original, *args, **kwargs)

            saved.append((owner, name, static))
            setattr(
                owner, name, staticmethod(timed) if isinstance(static, classmethod | staticmethod) else timed
            )
        yield clock
    finally:
        for owner, name, static in reversed(saved):
            setattr(owner, name, static)


def wrapped(bench: Setup, request, name: str) -> dict[str, float]:
    """One generate call with its parts wrapped in timers: exclusive seconds per part, plus "total"."""
    from stylevault.governance.outputs import runs

    clock = Clock()
    with timing(clock, timed_parts()):
        started = time.perf_counter()
        clock.call(
            GENERATE_ITSELF,
            runs.generate,
            bench.catalogue,
            "gia",
            request,
            bench.index_dir,
            bench.model_dir,
            bench.runs / name,
            device="cpu",
        )
        total = time.perf_counter() - started
    return {**clock.spent, "total": total}


# ---------------------------------------------------------------- the report


def _thread_note() -> str:
    import torch

    return f"torch {torch.__version__}, {torch.get_num_threads()} threads on {os.cpu_count()} CPU cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--steps", type=int, default=20, help="DDIM steps")
    parser.add_argument("-n", type=int, default=4, help="images per call (the UNet batch is 2n)")
    parser.add_argument("--k", type=int, default=10, help="neighbours retrieved")
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of the three timed calls (best of)")
    parser.add_argument("--images", type=int, default=48, help="catalogue images in the index")
    parser.add_argument("--latent-size", type=int, default=32)
    parser.add_argument("--channels", type=int, nargs="+", default=[64, 128], help="UNet/VAE block widths")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    if args.k > args.images:
        parser.error("--k: at most --images")
    if args.repeat < 1:
        parser.error("--repeat: at least 1")

    work = args.out / "generate-run"
    print(f"setting up {args.images} images, an index and a model under {work} ...", flush=True)
    bench = setup(work, args.images, args.latent_size, tuple(args.channels))
    request = request_of(args)
    inputs = prepare_direct(bench, request)
    unet_params = sum(p.numel() for p in inputs.unet.parameters())
    vae_params = sum(p.numel() for p in inputs.vae.parameters())

    print("warming up both paths ...", flush=True)
    ours(bench, request, "warm-up")
    direct_loop(inputs, args.steps, args.guidance)
    # Each round: the direct loop, a plain generate and a generate with its parts timed, in a rotating
    # order, so that whatever else runs on the machine falls on all three alike.
    calls = {"direct": [], "ours": [], "wrapped": []}
    direct_parts: dict[str, list[float]] = defaultdict(list)
    parts: dict[str, list[float]] = defaultdict(list)
    for attempt in range(args.repeat):
        print(f"round {attempt + 1} of {args.repeat} ...", flush=True)
        order = ["direct", "ours", "wrapped"]
        for path in order[attempt % 3 :] + order[: attempt % 3]:
            if path == "direct":
                clock = Clock()
                seconds, direct_pixels = direct_loop(inputs, args.steps, args.guidance, clock)
                for label, spent in clock.spent.items():
                    direct_parts[label].append(spent)
            elif path == "ours":
                seconds, ours_pixels = ours(bench, request, f"ours-{attempt}")
            else:
                spent = wrapped(bench, request, f"wrapped-{attempt}")
                seconds = spent.pop("total")
                for label, value in spent.items():
                    parts[label].append(value)
            calls[path].append(seconds)
    differ = int(abs(ours_pixels.astype(int) - direct_pixels.astype(int)).max())
    if ours_pixels.shape != direct_pixels.shape or differ > 1:
        raise SystemExit(
            f"the paths disagree: shapes {ours_pixels.shape} {direct_pixels.shape}, max {differ}"
        )
    report(args, calls, direct_parts, parts, ours_pixels.shape, differ, unet_params, vae_params)


def report(args, calls, direct_parts, parts, shape, differ, unet_params, vae_params) -> None:
    n, (h, w) = args.n, shape[1:3]
    best = {path: min(seconds) for path, seconds in calls.items()}
    median = {path: statistics.median(seconds) for path, seconds in calls.items()}
    paired = [o / d - 1 for o, d in zip(calls["ours"], calls["direct"], strict=True)]
    print(
        f"\n`stylevault generate` against a direct diffusers loop: {n} images of {w}x{h} per call, "
        f"{args.steps} DDIM steps, guidance {args.guidance} (UNet batch {2 * n}), k {args.k} of "
        f"{args.images} index members; untrained RDM, latent {args.latent_size}x{args.latent_size}, widths "
        f"{tuple(args.channels)} (UNet {unet_params / 1e6:.1f} M, VAE {vae_params / 1e6:.1f} M parameters); "
        f"{_thread_note()}; {args.repeat} interleaved rounds. The images agree (max pixel difference "
        f"{differ}).\n"
    )
    print(
        f"| path | s per call, best | s per call, median | images/s, best | overhead, best vs best "
        f"| overhead, median of rounds | median <= {TARGET_OVERHEAD:.0%} |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    print(
        f"| direct diffusers loop | {best['direct']:.3f} | {median['direct']:.3f} "
        f"| {n / best['direct']:.3f} | - | - | - |"
    )
    overhead = best["ours"] / best["direct"] - 1
    print(
        f"| stylevault generate | {best['ours']:.3f} | {median['ours']:.3f} | {n / best['ours']:.3f} "
        f"| {overhead:+.1%} | {statistics.median(paired):+.1%} | "
        f"{'yes' if statistics.median(paired) <= TARGET_OVERHEAD else 'no'} |"
    )
    rounds = "; ".join(f"{d:.2f} / {o:.2f}" for d, o in zip(calls["direct"], calls["ours"], strict=True))
    print(f"\nEach round, direct / ours, s: {rounds}.")

    part = {label: statistics.median(values) for label, values in parts.items()}
    shared_labels = {label for _, _, label, shared in timed_parts() if shared}
    shared = sum(seconds for label, seconds in part.items() if label in shared_labels)
    fixed = sum(seconds for label, seconds in part.items() if label not in shared_labels)
    loop = statistics.median(direct_parts["direct: denoising loop"])
    decode = statistics.median(direct_parts["direct: decode + PIL"])
    print(
        f"\nWhere a generate call's time goes: exclusive seconds per part (a part's timed sub-parts are "
        f"rows of their own), median of {args.repeat} calls with the parts wrapped in timers (wrapped "
        f"call {statistics.median(calls['wrapped']):.3f} s, median). The last column is against the same "
        f"calls' sampling + decode ({shared:.3f} s), the work the direct loop does too (rows in italics).\n"
    )
    print("| part | s per call | ms per image | % of sampling + decode |")
    print("|---|---:|---:|---:|")
    for label, seconds in sorted(part.items(), key=lambda item: -item[1]):
        name = f"*{label}*" if label in shared_labels else label
        print(f"| {name} | {seconds:.4f} | {1000 * seconds / n:.1f} | {seconds / shared:.1%} |")
    print(
        f"| **sum of the parts the direct loop does not do** | **{fixed:.4f}** | **{1000 * fixed / n:.1f}** "
        f"| **{fixed / shared:.1%}** |"
    )
    for label, seconds in (("denoising loop", loop), ("decode + PIL", decode)):
        print(
            f"| *for comparison, the direct loop's {label} (median)* | {seconds:.4f} "
            f"| {1000 * seconds / n:.1f} | {seconds / shared:.1%} |"
        )

    per_step = loop / args.steps
    needed = fixed / TARGET_OVERHEAD
    steps_needed = math.ceil(max(needed - decode, 0) / per_step)
    print(
        f"\nThe parts the direct loop does not do cost about {fixed:.3f} s per call whatever the steps, "
        f"batch or image size, except the model load (it reads and hashes every weight, "
        f"{unet_params / 1e6:.1f} M + {vae_params / 1e6:.1f} M parameters here) and the encoder load "
        f"(likewise). They stay under {TARGET_OVERHEAD:.0%} once a call's sampling and decode take "
        f"{needed:.1f} s (here about "
        f"{steps_needed} steps at {1000 * per_step:.0f} ms per step). A real model makes the rest "
        "negligible; for its load, see bench/gpu_rdm768.py --model-load."
    )


if __name__ == "__main__":
    main()
