"""Training the demo RDM on a cleared index: a pixel-space UNet conditioned as the generator conditions.

It reads its data from the door's `TrainingSet` (a verified index, its members' captions from the
catalogue, a reader of member images and the index's own encoder), and writes into its model card
the index, policy, style-set version and encoder it was trained on.

A diffusers UNet2DConditionModel in pixel space (2x2 patches folded into channels), predicting the
clean image, conditioned as the generation plugin conditions: [text token of the content caption; k
members retrieved by text embedding, the image itself and its near-duplicates excluded] (Blattmann et
al. 2022). The k are drawn afresh each step from the `neighbour_pool` nearest, so a neighbour set
never singles out one training image; the query is the caption (`neighbours_by="caption"`) or only its
style words (`"style"`: the neighbours share the style and not the content, which has to come from the
text token). `text_to_time` also adds the text token to the timestep embedding (diffusers' projection
class embedding). Condition dropout (an all-zero context) trains the unconditional branch of
classifier-free guidance, and a share of text-only steps (k = 0) the text-only baseline. EMA weights
are what is saved.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from stylevault.generation import loop
from stylevault.generation.model import save_model, training_schedule
from stylevault.generation.options import RDMOptions
from stylevault.generation.sampling import denoise
from stylevault.governance.door import Encoder, TrainingSet
from stylevault.governance.errors import BadInput

# The pixel-space UNet on 2x2 patches: 12x16x16 -> 8x8 -> 4x4, cross-attention at the two coarser levels.
PATCH = 2
UNET_CHANNELS = (48, 96, 96)
RECOMMENDED_GUIDANCE = 1.0  # written into rdm.json `sampling.guidance` (README: style swap)
NEAR_DUPLICATE_BITS = 6  # phash Hamming distance at or under which two members count as near-duplicates


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
    schedule = training_schedule(beta_start=1e-4, beta_end=0.02, beta_schedule="linear")
    return {**schedule, "prediction_type": "sample", "clip_sample": True}


@dataclass
class _Examples:
    """What the RDM trains on, prepared once: each member's patched pixels, its content caption's
    text token, and the embeddings of its pool of neighbours."""

    images: torch.Tensor  # (N, 12, 16, 16) in [-1, 1]: what the UNet denoises
    text: torch.Tensor  # (N, D)
    pool_embeds: torch.Tensor  # (N, P, D), L2-normalised

    @classmethod
    def of(cls, data: TrainingSet, encoder: Encoder, options: RDMOptions) -> _Examples:
        find, _ = NEIGHBOURS_BY[options.neighbours_by]
        to_pixels = lambda image: torch.from_numpy(np.asarray(image, np.float32) / 127.5 - 1).permute(2, 0, 1)  # noqa: E731
        images = loop.pixels(data, to_pixels)  # (N, 3, 32, 32) in [-1, 1]
        if images.shape[1:] != (3, 32, 32):
            raise BadInput(
                f"index {data.handle.folder}: members must be 32x32 RGB, got {tuple(images.shape[1:])}"
            )
        text = torch.from_numpy(encoder.encode_texts(data.metadata("content_caption")))  # (N, D)
        pool = find(data, encoder, options.neighbour_pool)  # (N, P) image ids
        pool_embeds = torch.from_numpy(data.handle.vectors(pool))  # (N, P, D)
        pool_embeds = pool_embeds / pool_embeds.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return cls(F.pixel_unshuffle(images, PATCH), text, pool_embeds)

    def context(self, batch: torch.Tensor, options: RDMOptions) -> torch.Tensor:
        """[text token; k neighbours drawn from the pool] (B, 1 + k, D), with text-only steps and
        condition dropout (an all-zero context) as the options ask."""
        drawn = torch.rand(len(batch), self.pool_embeds.shape[1]).argsort(dim=1)[:, : options.k]  # (B, k)
        neighbour_embeds = self.pool_embeds[batch[:, None], drawn]  # (B, k, D)
        context = torch.cat([self.text[batch][:, None, :], neighbour_embeds], dim=1)  # (B, 1 + k, D)
        if random.random() < options.text_only_p:
            context = context[:, :1]  # k = 0: the text-only baseline is a trained case
        dropped = torch.rand(len(batch)) < options.uncond_p
        return torch.where(dropped[:, None, None], torch.zeros_like(context), context)


def _check(data: TrainingSet, encoder: Encoder, options: RDMOptions) -> None:
    if encoder.id != data.handle.encoder_id:
        raise BadInput(f"encoder {encoder.id} is not the index's own ({data.handle.encoder_id})")
    if options.neighbours_by not in NEIGHBOURS_BY:
        raise BadInput(f"--neighbours-by: {options.neighbours_by!r} is not one of {', '.join(NEIGHBOURS_BY)}")
    if options.neighbour_pool < options.k:
        raise BadInput(f"neighbour_pool {options.neighbour_pool} is smaller than k {options.k}")


def train_rdm(
    data: TrainingSet, encoder: Encoder, out: Path, options: RDMOptions, *, progress: bool = True
) -> dict:
    """Train the pixel-space RDM on `data` (its index's own `encoder` embeds the captions); save a
    stylevault-rdm folder of the EMA weights whose card records what it was trained on."""
    from diffusers import DDPMScheduler

    out = Path(out)
    loop.check_out(out)
    _check(data, encoder, options)
    device = loop.start(options)
    examples = _Examples.of(data, encoder, options)
    unet = rdm_unet(encoder.dim, options.seed, text_to_time=options.text_to_time).to(device).train()
    schedule = pixel_schedule()
    alphas = DDPMScheduler.from_config(schedule).alphas_cumprod.to(device)  # (T,)

    def loss_at(step: int) -> torch.Tensor:
        batch = torch.randint(len(examples.images), (min(options.batch_size, len(examples.images)),))
        x_0 = examples.images[batch].to(device)  # (B, 12, 16, 16)
        context = examples.context(batch, options).to(device)
        t = torch.randint(0, len(alphas), (len(batch),), device=device)
        noise = torch.randn_like(x_0)
        a = alphas[t][:, None, None, None]
        x_t = a.sqrt() * x_0 + (1 - a).sqrt() * noise
        return F.mse_loss(denoise(unet, x_t, t, context), x_0)  # x0-prediction

    optimiser = torch.optim.AdamW(unet.parameters(), lr=options.lr, weight_decay=0.0)
    extra = {"kind": "rdm", "index": data.provenance["index"]["manifest_sha256"], "steps": options.steps}
    fitted = loop.fit(
        unet,
        optimiser,
        loss_at,
        options=options,
        out=out,
        what="train rdm",
        extra=extra,
        progress=progress,
        clip_grad=1.0,
    )
    unet.load_state_dict(
        {name: t.to(unet.dtype) if t.is_floating_point() else t for name, t in fitted.ema.shadow.items()}
    )
    training = loop.training_record(options, device, fitted, len(examples.images))
    training.update(
        k=options.k,
        neighbour_pool=options.neighbour_pool,
        neighbours_by=NEIGHBOURS_BY[options.neighbours_by][1],
        uncond_p=options.uncond_p,
        text_only_p=options.text_only_p,
        text_to_time=options.text_to_time,
    )
    # The card prints `source`: what it was trained on.
    save_model(unet.to("cpu").eval(), None, schedule, _rdm_config(data, encoder, training), out)
    return {"path": str(out), "training": training}


def _rdm_config(data: TrainingSet, encoder: Encoder, training: dict) -> dict:
    return {
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
