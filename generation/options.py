"""The demo trainer's options, one dataclass per kind: the CLI renders a `--option` per field (its
help from the field's metadata), the core builds the dataclass and hands it to the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field

from stylevault.governance.door import TrainingOptions
from stylevault.governance.errors import BadInput


def _option(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class Options(TrainingOptions):
    """What both kinds share: the optimiser, the seed and the checkpoints (OUT.ckpt/), besides the
    device and `resume` (carry on from OUT.ckpt/) of every trainer's options."""

    steps: int = _option(300, "Optimiser steps.")
    batch_size: int = _option(64, "Examples per step.")
    lr: float = _option(1e-3, "Peak learning rate (warm-up, then cosine decay).")
    seed: int = _option(0, "Seeds the weights and the batches.")
    checkpoint_every: int = _option(200, "Write OUT.ckpt/ every N steps.")
    ema_decay: float = _option(0.995, "Decay of the exponential moving average of the weights (saved).")

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise BadInput(f"--steps: must be at least 1, got {self.steps}")

    def pick_device(self) -> str:
        import torch

        return self.device or ("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class ClipOptions(Options):
    """Train a tiny open_clip encoder contrastively on the members' captions (source metadata
    `caption` and `content_caption`); saved in open_clip's local-dir layout."""

    batch_size: int = _option(128, "Examples per step.")


@dataclass
class RDMOptions(Options):
    """Train a pixel-space RDM on the index, conditioned on the caption's token and k retrieved
    neighbours (the index's own encoder embeds both); saved as a stylevault-rdm folder of EMA weights."""

    steps: int = _option(1500, "Optimiser steps.")
    batch_size: int = _option(32, "Examples per step.")
    k: int = _option(4, "Neighbours in the context (the image and near-duplicates excluded).")
    neighbour_pool: int = _option(16, "The RDM's k of each step are drawn from this many nearest.")
    neighbours_by: str = _option(
        "caption",
        "Retrieve the RDM's training neighbours by the caption ('caption') or by its style words "
        "('style': neighbours of the same style, any content).",
    )
    text_to_time: bool = _option(
        False, "Also add the caption's embedding to the UNet's timestep embedding (every block sees it)."
    )
    uncond_p: float = _option(0.1, "Condition dropout, for classifier-free guidance.")
    text_only_p: float = _option(0.1, "Share of steps trained with k = 0 (the text-only baseline).")
