"""Training the demo encoder: open_clip's CLIP from CLIP_CONFIG, trained contrastively (Radford et
al. 2021) on the members' captions of a `TrainingSet`.

A third of the pairs caption content and style, a third the content alone (so a content prompt lands
near that content in every style) and a third the style words alone (so images of one style lie
together whatever they show, and a style query finds them); a batch holds many images of one
caption, so the targets are every matching pair rather than the diagonal alone.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from stylevault.generation import loop
from stylevault.generation.clip import CLIP_CONFIG, CLIP_PREPROCESS, save_encoder
from stylevault.generation.options import ClipOptions
from stylevault.generation.train import style_words
from stylevault.governance.door import TrainingSet


class _Captions:
    """Every distinct text the encoder learns (full captions, content captions, style words),
    tokenised once, and for each member the index of each of its three texts."""

    def __init__(self, data: TrainingSet, tokenizer):
        captions, contents = data.metadata("caption"), data.metadata("content_caption")
        styles = [style_words(caption, content) for caption, content in zip(captions, contents, strict=True)]
        self.texts = sorted(set(captions) | set(contents) | set(styles))
        where = {text: i for i, text in enumerate(self.texts)}
        length = CLIP_CONFIG["text_cfg"]["context_length"]
        self.tokens = tokenizer(self.texts, context_length=length)  # (T, L)
        self.full = torch.tensor([where[c] for c in captions])  # (N,) each image's full caption
        self.short = torch.tensor([where[c] for c in contents])  # (N,) its content-only caption
        self.look = torch.tensor([where[s] for s in styles])  # (N,) its style words

    def draw(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One text per image of `batch` and the (B images, B texts) match matrix: an image matches a
        text when the text is its full caption, its content or its style words."""
        kind = torch.randint(3, (len(batch),))
        own = torch.stack([self.full[batch], self.short[batch], self.look[batch]])  # (3, B)
        chosen = own[kind, torch.arange(len(batch))]
        match = (own[:, :, None] == chosen[None, None, :]).any(0)
        return chosen, match.float()


def _contrastive(logits: torch.Tensor, match: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE against every matching pair (B, B)."""
    images = -(match / match.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    texts = -(match.T / match.T.sum(1, keepdim=True) * logits.T.log_softmax(1)).sum(1).mean()
    return (images + texts) / 2


def train_clip(data: TrainingSet, out: Path, options: ClipOptions, *, progress: bool = True) -> dict:
    """Train CLIP_CONFIG contrastively on the members' captions; save it in open_clip's local-dir
    layout with a model card. Returns the folder and the training record."""
    import open_clip

    out = Path(out)
    loop.check_out(out)
    device = loop.start(options)
    model = open_clip.CLIP(**CLIP_CONFIG).to(device)
    size = CLIP_CONFIG["vision_cfg"]["image_size"]
    images = loop.pixels(data, open_clip.image_transform(size, is_train=False, **CLIP_PREPROCESS))
    captions = _Captions(data, open_clip.tokenize)  # images: (N, 3, 32, 32), normalised

    def loss_at(step: int) -> torch.Tensor:
        batch = torch.randint(len(images), (min(options.batch_size, len(images)),))
        chosen, match = captions.draw(batch)
        image_features = model.encode_image(images[batch].to(device), normalize=True)  # (B, D)
        text_features = model.encode_text(captions.tokens[chosen].to(device), normalize=True)  # (B, D)
        logits = model.logit_scale.exp() * image_features @ text_features.T  # (B, B)
        return _contrastive(logits, match.to(device))

    def clamp_scale() -> None:
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))

    optimiser = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=0.05)
    extra = {"kind": "clip", "index": data.provenance["index"]["manifest_sha256"], "steps": options.steps}
    model.train()
    fitted = loop.fit(
        model,
        optimiser,
        loss_at,
        options=options,
        out=out,
        what="train clip",
        extra=extra,
        progress=progress,
        after_step=clamp_scale,
    )
    weights = {name: tensor.to(torch.float16).contiguous() for name, tensor in fitted.ema.shadow.items()}
    save_encoder(out, weights, CLIP_CONFIG)
    training = loop.training_record(options, device, fitted, len(images))
    training["captions"] = len(captions.texts)
    (out / "training.json").write_text(
        json.dumps({"trained_on": data.provenance, "training": training}, indent=2, sort_keys=True) + "\n"
    )
    (out / "README.md").write_text(
        "# A tiny open_clip encoder trained by stylevault\n\n"
        f"open_clip `CLIP` from the config in `open_clip_config.json` (embed_dim {CLIP_CONFIG['embed_dim']}, "
        f"{sum(t.numel() for t in weights.values()) / 1e6:.1f}M parameters, stored in float16), "
        "trained contrastively on the captions of a procedural, licence-clean style world. "
        "Load it with `--encoder local-dir:PATH`.\n\n" + loop.card("clip", data.provenance, training)
    )
    return {"path": str(out), "training": training}
