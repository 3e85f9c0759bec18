"""The demo world's tiny open_clip encoders: their configs and open_clip's local-dir layout.

`untrained_encoder` is what the first index of a world is built with (training the encoder needs the
cleared member list, not good embeddings) and what the tests embed with; `train_clip` trains
CLIP_CONFIG (stylevault.generation.train_clip).
"""

from __future__ import annotations

import json
from pathlib import Path

# A tiny open_clip: 32x32 images in 4x4 patches, 64-wide towers of 2 layers each.
CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 4, "head_width": 32},
    "text_cfg": {"context_length": 24, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}
# Smaller still, with random weights: 8x8 patches, 32-wide towers of one layer.
UNTRAINED_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
CLIP_PREPROCESS = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]}
WEIGHTS = "open_clip_model.safetensors"


def save_encoder(folder: Path, weights: dict, model_cfg: dict) -> Path:
    """Write `weights` and `model_cfg` in open_clip's local-dir layout (`--encoder local-dir:FOLDER`)."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(weights, folder / WEIGHTS)
    config = {"model_cfg": model_cfg, "preprocess_cfg": CLIP_PREPROCESS}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return folder


def untrained_encoder(folder: Path, seed: int = 0) -> Path:
    """UNTRAINED_CLIP with random (seeded) weights in `folder`; a folder that has them is kept."""
    import open_clip
    import torch

    folder = Path(folder)
    if (folder / WEIGHTS).is_file():
        return folder
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.CLIP(**UNTRAINED_CLIP)
    weights = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    return save_encoder(folder, weights, UNTRAINED_CLIP)
