"""Training the demo models on a cleared index: a tiny open_clip encoder and a pixel-space RDM.

Both read their data from a `outputs.training.TrainingSet` (a verified index, its members'
captions from the catalogue, and the catalogue's own decode path), and write into their model card
the index, policy, style-set version and encoder they were trained on.

- `clip`: open_clip's CLIP from a custom JSON config, trained contrastively (Radford et al. 2021) on
  the members' captions. A third of the pairs caption content and style, a third the content alone
  (so a content prompt lands near that content in every style) and a third the style words alone (so
  images of one style lie together whatever they show, and a style query finds them); a batch holds
  many images of one caption, so the targets are every matching pair rather than the diagonal alone.
- `rdm`: a diffusers UNet2DConditionModel in pixel space (2x2 patches folded into channels),
  predicting the clean image, conditioned as the generation plugin conditions: [text token of the
  content caption; k members retrieved by text embedding, the image itself and its near-duplicates
  excluded] (Blattmann et al. 2022). The k are drawn afresh each step from the `neighbour_pool`
  nearest, so a neighbour set never singles out one training image; the query is the caption
  (`neighbours_by="caption"`) or only its style words (`"style"`: the neighbours share the style and
  not the content, which has to come from the text token). `text_to_time` also adds the text token
  to the timestep embedding (diffusers' projection class embedding). Condition dropout (an all-zero
  context) trains the unconditional branch of classifier-free guidance, and a share of text-only
  steps (k = 0) the text-only baseline. EMA weights are what is saved.

Checkpoints go to OUT.ckpt/ every `checkpoint_every` steps; `resume=True` carries on from there.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stylevault.governance.errors import BadInput

# A tiny open_clip: 32x32 images in 4x4 patches, 64-wide towers of 2 layers each.
CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 4, "head_width": 32},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}
CLIP_PREPROCESS = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}
# The pixel-space UNet on 2x2 patches: 12x16x16 -> 8x8 -> 4x4, cross-attention at the two coarser levels.
PATCH = 2
UNET_CHANNELS = (48, 96, 96)
RECOMMENDED_GUIDANCE = 1.0  # written into rdm.json `sampling.guidance` (README: style swap)
NEAR_DUPLICATE_BITS = 6  # phash Hamming distance at or under which two members count as near-duplicates


@dataclass
class Options:
    steps: int
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str | None = None
    checkpoint_every: int = 200
    resume: bool = False
    progress: bool = True
    k: int = 4  # neighbours in the RDM's context
    neighbour_pool: int = 16  # the k of each step are drawn from this many nearest
    neighbours_by: str = "caption"  # the query they are retrieved by: "caption" or "style" (NEIGHBOURS_BY)
    ema_decay: float = 0.995
    uncond_p: float = 0.1  # condition dropout, for classifier-free guidance
    text_only_p: float = 0.1  # steps trained with k = 0
    text_to_time: bool = False  # the text token also joins the timestep embedding (class_embed_type)

    def pick_device(self) -> str:
        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")


class _Progress:
    """A rich progress bar with the running loss, or nothing; a line every 50 steps into a log."""

    def __init__(self, enabled: bool, what: str, total: int, done: int):
        self.bar = None
        self.what, self.total, self.done, self.began = what, total, done, time.monotonic()
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn(f"[bold]{what}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeRemainingColumn(),
            )
            self.task = self.bar.add_task(what, total=total, completed=done, loss=float("nan"))
            self.bar.start()

    def step(self, loss: float) -> None:
        self.done += 1
        if self.bar:
            self.bar.update(self.task, advance=1, loss=loss)
            if not self.bar.console.is_terminal and self.done % 50 == 0:
                seconds = time.monotonic() - self.began
                print(
                    f"{self.what}: step {self.done}/{self.total} loss {loss:.4f} {seconds:.0f}s", flush=True
                )

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


class _EMA:
    """Exponential moving average of the weights, with the usual warm-up (decay grows with steps)."""

    def __init__(self, module, decay: float):
        self.decay = decay
        self.shadow = {name: t.detach().clone().float() for name, t in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                self.shadow[name].mul_(decay).add_(tensor.float(), alpha=1 - decay)
            else:
                self.shadow[name].copy_(tensor)


class _Checkpoint:
    """OUT.ckpt/state.pt: weights, EMA, optimiser, step and random states, written atomically."""

    def __init__(self, out: Path):
        self.folder = out.parent / f"{out.name}.ckpt"
        self.file = self.folder / "state.pt"

    def save(self, step: int, module, ema: _EMA, optimiser, extra: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {
            "step": step,
            "module": module.state_dict(),
            "ema": ema.shadow,
            "optimiser": optimiser.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "extra": extra,
        }
        partial = self.file.with_suffix(".partial")
        torch.save(state, partial)
        partial.replace(self.file)

    def load(self, module, ema: _EMA, optimiser, extra: dict) -> int:
        if not self.file.is_file():
            raise BadInput(f"--resume: no checkpoint at {self.file}")
        # weights_only: the unpickler admits tensors and plain containers only, so a planted
        # state.pt cannot run code; python_rng's tuples of ints and `extra`'s strings are plain data.
        try:
            state = torch.load(self.file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            said = [line.strip() for line in str(exc).splitlines() if "Unsupported" in line]
            raise BadInput(
                f"--resume: {self.file} holds more than tensors and plain data and was refused unread"
                f"{' (' + said[0] + ')' if said else ''}; delete it and start afresh"
            ) from None
        except (EOFError, RuntimeError, ValueError) as exc:
            message = f"--resume: {self.file} is not a readable checkpoint ({exc}); start afresh"
            raise BadInput(message) from None
        if state["extra"] != extra:
            raise BadInput(f"--resume: {self.file} was made for other data or settings; start afresh")
        module.load_state_dict(state["module"])
        ema.shadow = state["ema"]
        optimiser.load_state_dict(state["optimiser"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        return int(state["step"])


def _lr(options: Options, step: int) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to a tenth."""
    warm = max(1, options.steps // 20)
    if step < warm:
        return options.lr * (step + 1) / warm
    done = (step - warm) / max(1, options.steps - warm)
    return options.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))


def _card(kind: str, provenance: dict, training: dict) -> str:
    return (
        f"## Trained by stylevault ({kind})\n\n"
        "Trained on a cleared index build; the data it saw is exactly that index's members:\n\n"
        f"```json\n{json.dumps({'trained_on': provenance, 'training': training}, indent=2, sort_keys=True)}"
        "\n```\n"
    )


# ---------------------------------------------------------------- the encoder


def _pixels(data, read_as) -> torch.Tensor:
    return torch.stack([read_as(data.read(item.sha256)) for item in data.items])


def train_clip(data, out: Path, options: Options) -> dict:
    """Train CLIP_CONFIG contrastively on the members' captions; save it in open_clip's local-dir
    layout with a model card. Returns the encoder's description."""
    import open_clip
    from safetensors.torch import save_file

    out = Path(out)
    _check_out(out)
    captions = data.metadata("caption")
    contents = data.metadata("content_caption")
    device = options.pick_device()
    torch.manual_seed(options.seed)
    random.seed(options.seed)
    model = open_clip.CLIP(**CLIP_CONFIG).to(device)
    preprocess = open_clip.image_transform(
        CLIP_CONFIG["vision_cfg"]["image_size"], is_train=False, **CLIP_PREPROCESS
    )
    tokenizer = open_clip.tokenize
    images = _pixels(data, preprocess)  # (N, 3, 32, 32), normalised
    styles = [style_words(caption, content) for caption, content in zip(captions, contents, strict=True)]
    texts = sorted(set(captions) | set(contents) | set(styles))
    text_index = {text: i for i, text in enumerate(texts)}
    tokens = tokenizer(texts, context_length=CLIP_CONFIG["text_cfg"]["context_length"])  # (T, L)
    full = torch.tensor([text_index[c] for c in captions])  # (N,) each image's full caption
    short = torch.tensor([text_index[c] for c in contents])  # (N,) its content-only caption
    look = torch.tensor([text_index[s] for s in styles])  # (N,) its style words
    optimiser = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=0.05)
    ema = _EMA(model, options.ema_decay)
    checkpoint = _Checkpoint(out)
    extra = {"kind": "clip", "index": data.provenance["index"]["manifest_sha256"], "steps": options.steps}
    start = checkpoint.load(model, ema, optimiser, extra) if options.resume else 0
    bar = _Progress(options.progress, "train clip", options.steps, start)
    began = time.monotonic()
    loss = torch.tensor(float("nan"))
    model.train()
    try:
        for step in range(start, options.steps):
            batch = torch.randint(len(images), (min(options.batch_size, len(images)),))
            # A third of the pairs caption content and style, a third content alone, a third style alone.
            kind = torch.randint(3, (len(batch),))
            chosen = torch.stack([full[batch], short[batch], look[batch]])[kind, torch.arange(len(batch))]
            # An image matches a text when the text is its full caption, its content or its style words.
            match = (
                (full[batch][:, None] == chosen[None, :])
                | (short[batch][:, None] == chosen[None, :])
                | (look[batch][:, None] == chosen[None, :])
            )
            match = match.float().to(device)  # (B images, B texts)
            for group in optimiser.param_groups:
                group["lr"] = _lr(options, step)
            image_features = model.encode_image(images[batch].to(device), normalize=True)  # (B, D)
            text_features = model.encode_text(tokens[chosen].to(device), normalize=True)  # (B, D)
            logits = model.logit_scale.exp() * image_features @ text_features.T  # (B, B)
            loss = (
                -(match / match.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
                - (match.T / match.T.sum(1, keepdim=True) * logits.T.log_softmax(1)).sum(1).mean()
            ) / 2
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            ema.update(model, step)
            bar.step(loss.item())
            if (step + 1) % options.checkpoint_every == 0 and step + 1 < options.steps:
                checkpoint.save(step + 1, model, ema, optimiser, extra)
    finally:
        bar.close()
    seconds = time.monotonic() - began
    out.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.to(torch.float16).contiguous() for name, tensor in ema.shadow.items()}
    save_file(weights, out / "open_clip_model.safetensors")
    config = {"model_cfg": CLIP_CONFIG, "preprocess_cfg": CLIP_PREPROCESS}
    (out / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")
    training = _training_record(options, device, seconds, start, loss.item(), len(images))
    training["captions"] = len(texts)
    (out / "training.json").write_text(
        json.dumps({"trained_on": data.provenance, "training": training}, indent=2, sort_keys=True) + "\n"
    )
    (out / "README.md").write_text(
        "# A tiny open_clip encoder trained by stylevault\n\n"
        f"open_clip `CLIP` from the config in `open_clip_config.json` (embed_dim {CLIP_CONFIG['embed_dim']}, "
        f"{sum(t.numel() for t in weights.values()) / 1e6:.1f}M parameters, stored in float16), "
        "trained contrastively on the captions of a procedural, licence-clean style world. "
        "Load it with `--encoder local-dir:PATH`.\n\n" + _card("clip", data.provenance, training)
    )
    return {"path": str(out), "training": training}


def _training_record(options: Options, device: str, seconds: float, start: int, loss: float, n: int) -> dict:
    return {
        "steps": options.steps,
        "resumed_at": start,
        "batch_size": options.batch_size,
        "lr": options.lr,
        "seed": options.seed,
        "ema_decay": options.ema_decay,
        "device": device,
        "torch": torch.__version__,
        "seconds": round(seconds, 1),
        "final_loss": round(loss, 5),
        "members": n,
    }


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"--out {out}: exists and is not empty; will not overwrite")
    if not out.parent.is_dir():
        raise BadInput(f"--out {out}: folder {out.parent} does not exist")


# ---------------------------------------------------------------- the RDM


def _nearest_excluding(data, encoder, queries: list[str], k: int) -> np.ndarray:
    """For each member, the image ids of the k members nearest the text embedding of its query
    (`queries[i]` for member i), the member itself and its near-duplicates (phash within
    NEAR_DUPLICATE_BITS) excluded: (N, k) int64. Each distinct query is embedded and searched once."""
    handle = data.handle
    ids = np.array([item.image_id for item in data.items], dtype=np.int64)
    phash = {item.image_id: int(item.phash, 16) for item in data.items}
    distinct = sorted(set(queries))
    wanted = min(len(handle), k * 2 + 8)
    found, _ = handle.search(encoder.encode_texts(distinct), wanted)  # (Q, wanted), nearest first
    by_query = dict(zip(distinct, found, strict=True))
    chosen = np.zeros((len(ids), k), dtype=np.int64)
    for row, (me, query) in enumerate(zip(ids, queries, strict=True)):
        keep = [
            int(c)
            for c in by_query[query]
            if c != me and bin(phash[int(c)] ^ phash[int(me)]).count("1") > NEAR_DUPLICATE_BITS
        ][:k]
        if len(keep) < k:
            raise BadInput(
                f"image {me}: fewer than {k} of the {wanted} members of index {handle.folder} nearest "
                f"{query!r} are neither it nor a near-duplicate"
            )
        chosen[row] = keep
    return chosen


def neighbours(data, encoder, k: int) -> np.ndarray:
    """For each member, the k members nearest its caption's text embedding, the member itself and its
    near-duplicates excluded: (N, k) int64.

    Generation retrieves by the prompt's text embedding, so training does too. The caption names the
    style as well as the content, and searched in an index of many styles it finds what a content
    prompt finds in a database of one style: members of that style, of whatever content the encoder's
    text side puts near it."""
    return _nearest_excluding(data, encoder, data.metadata("caption"), k)


def style_words(caption: str, content: str) -> str:
    """What the caption says beyond its content: `a red circle on the left, ink dots style` with the
    content `a red circle on the left` gives `ink dots style`; a caption that does not begin with its
    content is used whole."""
    if content and caption.startswith(content):
        return caption[len(content) :].lstrip(" ,;:-") or caption
    return caption


def style_neighbours(data, encoder, k: int) -> np.ndarray:
    """For each member, the k members nearest the text embedding of its caption's style words, the
    member itself and its near-duplicates excluded: (N, k) int64.

    The query names the style and no content, so the members it finds share the member's style (what
    a database of one style holds) and show whatever content: the neighbours can teach the RDM the
    style, but not the content, which has to come from the text token."""
    captions, contents = data.metadata("caption"), data.metadata("content_caption")
    words = [style_words(caption, content) for caption, content in zip(captions, contents, strict=True)]
    return _nearest_excluding(data, encoder, words, k)


# --neighbours-by: how the training neighbours are found, and how the model card says so.
NEIGHBOURS_BY = {
    "caption": (neighbours, "caption text embedding"),
    "style": (
        style_neighbours,
        "text embedding of the caption's style words (the caption less its content caption)",
    ),
}


def rdm_unet(context_dim: int, seed: int, *, text_to_time: bool = False):
    from diffusers import UNet2DConditionModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DConditionModel(
            sample_size=32 // PATCH,
            in_channels=3 * PATCH**2,
            out_channels=3 * PATCH**2,
            layers_per_block=1,
            block_out_channels=UNET_CHANNELS,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=context_dim,
            attention_head_dim=tuple(c // 24 for c in UNET_CHANNELS),  # diffusers: heads per level
            norm_num_groups=16,
            class_embed_type="projection" if text_to_time else None,
            projection_class_embeddings_input_dim=context_dim if text_to_time else None,
        )


def pixel_schedule() -> dict:
    """DDPM's linear schedule (Ho et al. 2020), the usual one for pixel space, with the UNet predicting
    the clean sample and samplers clipping it to [-1, 1]: on flat procedural images a few thousand CPU
    steps teach x0-prediction clean outputs where eps-prediction still leaves visible noise."""
    from stylevault.generation.model import training_schedule

    schedule = training_schedule(beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
    return {**schedule, "prediction_type": "sample", "clip_sample": True}


def train_rdm(data, encoder, out: Path, options: Options) -> dict:
    """Train the pixel-space RDM on `data` (its index's own `encoder` embeds the captions); save a
    stylevault-rdm folder of the EMA weights whose card records what it was trained on."""
    from diffusers import DDPMScheduler

    from stylevault.generation.model import save_model
    from stylevault.generation.sampling import denoise

    out = Path(out)
    _check_out(out)
    if encoder.id != data.handle.encoder_id:
        raise BadInput(f"encoder {encoder.id} is not the index's own ({data.handle.encoder_id})")
    if options.neighbours_by not in NEIGHBOURS_BY:
        raise BadInput(f"--neighbours-by: {options.neighbours_by!r} is not one of {', '.join(NEIGHBOURS_BY)}")
    if options.neighbour_pool < options.k:
        raise BadInput(f"neighbour_pool {options.neighbour_pool} is smaller than k {options.k}")
    find, described = NEIGHBOURS_BY[options.neighbours_by]
    device = options.pick_device()
    torch.manual_seed(options.seed)
    random.seed(options.seed)
    to_pixels = lambda image: torch.from_numpy(np.asarray(image, np.float32) / 127.5 - 1).permute(2, 0, 1)  # noqa: E731
    images = _pixels(data, to_pixels)  # (N, 3, 32, 32) in [-1, 1]
    if images.shape[1:] != (3, 32, 32):
        raise BadInput(
            f"index {data.handle.folder}: members must be 32x32 RGB, got {tuple(images.shape[1:])}"
        )
    images = F.pixel_unshuffle(images, PATCH)  # (N, 12, 16, 16): what the UNet denoises
    text = torch.from_numpy(encoder.encode_texts(data.metadata("content_caption")))  # (N, D)
    pool = find(data, encoder, options.neighbour_pool)  # (N, P) image ids
    pool_embeds = torch.from_numpy(data.handle.vectors(pool))  # (N, P, D)
    pool_embeds = pool_embeds / pool_embeds.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    unet = rdm_unet(encoder.dim, options.seed, text_to_time=options.text_to_time).to(device).train()
    schedule = pixel_schedule()
    noise_schedule = DDPMScheduler.from_config(schedule)
    alphas = noise_schedule.alphas_cumprod.to(device)  # (T,)
    optimiser = torch.optim.AdamW(unet.parameters(), lr=options.lr, weight_decay=0.0)
    ema = _EMA(unet, options.ema_decay)
    checkpoint = _Checkpoint(out)
    extra = {"kind": "rdm", "index": data.provenance["index"]["manifest_sha256"], "steps": options.steps}
    start = checkpoint.load(unet, ema, optimiser, extra) if options.resume else 0
    bar = _Progress(options.progress, "train rdm", options.steps, start)
    began = time.monotonic()
    loss = torch.tensor(float("nan"))
    try:
        for step in range(start, options.steps):
            batch = torch.randint(len(images), (min(options.batch_size, len(images)),))
            x_0 = images[batch].to(device)  # (B, 12, 16, 16)
            drawn = torch.rand(len(batch), pool.shape[1]).argsort(dim=1)[:, : options.k]  # (B, k)
            neighbour_embeds = pool_embeds[batch[:, None], drawn]  # (B, k, D)
            context = torch.cat([text[batch][:, None, :], neighbour_embeds], dim=1)  # (B, 1 + k, D)
            if random.random() < options.text_only_p:
                context = context[:, :1]  # k = 0: the text-only baseline is a trained case
            dropped = torch.rand(len(batch)) < options.uncond_p
            context = torch.where(dropped[:, None, None], torch.zeros_like(context), context).to(device)
            t = torch.randint(0, len(alphas), (len(batch),), device=device)
            noise = torch.randn_like(x_0)
            a = alphas[t][:, None, None, None]
            x_t = a.sqrt() * x_0 + (1 - a).sqrt() * noise
            for group in optimiser.param_groups:
                group["lr"] = _lr(options, step)
            loss = F.mse_loss(denoise(unet, x_t, t, context), x_0)  # x0-prediction
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            optimiser.step()
            ema.update(unet, step)
            bar.step(loss.item())
            if (step + 1) % options.checkpoint_every == 0 and step + 1 < options.steps:
                checkpoint.save(step + 1, unet, ema, optimiser, extra)
    finally:
        bar.close()
    seconds = time.monotonic() - began
    unet.load_state_dict(
        {name: t.to(unet.dtype) if t.is_floating_point() else t for name, t in ema.shadow.items()}
    )
    unet = unet.to("cpu").eval()
    training = _training_record(options, device, seconds, start, loss.item(), len(images))
    training.update(
        k=options.k,
        neighbour_pool=options.neighbour_pool,
        neighbours_by=described,
        uncond_p=options.uncond_p,
        text_only_p=options.text_only_p,
        text_to_time=options.text_to_time,
    )
    rdm_config = {
        "space": "pixel",
        "patch_size": PATCH,
        "context_dim": encoder.dim,
        "latent_channels": 3 * PATCH**2,
        "latent_size": 32 // PATCH,
        "scale_factor": 1.0,
        "prediction_type": "sample",
        "encoder_id": encoder.id,
        # What `stylevault generate` uses unless told otherwise: on a validation split the demo RDM kept
        # content and style best without guidance; stronger guidance pushes its colours off.
        "sampling": {"guidance": RECOMMENDED_GUIDANCE},
        "source": {"kind": "trained", "trained_on": data.provenance, "training": training},
    }
    save_model(unet, None, schedule, rdm_config, out)  # the card prints `source`: what it was trained on
    return {"path": str(out), "training": training}


class DemoTrainer:
    """The trainer registered as `demo` in the entry-point group `stylevault.trainers`."""

    name = "demo"
    kinds = ("clip", "rdm")

    def train(self, kind: str, data, out: Path, **options) -> dict:
        from stylevault.governance.index.encoders import load_encoder

        settings = Options(**options)
        if kind == "clip":
            trained = train_clip(data, out, settings)
            encoder = load_encoder(f"local-dir:{out}", device="cpu")
            return {"model_id": encoder.id, "weights_sha256": encoder.weights_sha256, **trained}
        if kind == "rdm":
            from stylevault.generation.model import load_model

            spec = data.handle.manifest["encoder"]["spec"]
            trained = train_rdm(data, load_encoder(spec, device=settings.pick_device()), out, settings)
            model = load_model(out)
            return {"model_id": model.model_id, "weights_sha256": model.weights_sha256, **trained}
        raise BadInput(f"train: the demo trainer trains {', '.join(self.kinds)}, not {kind!r}")
