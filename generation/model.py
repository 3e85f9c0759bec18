"""stylevault's RDM model folder: diffusers modules, the training schedule and a small JSON that ties them.

    DIR/rdm.json                          format, space, context_dim, latent_channels, latent_size,
                                          scale_factor, prediction_type, source (how the folder was made)
    DIR/unet/                             UNet2DConditionModel.save_pretrained
    DIR/vae/                              AutoencoderKL.save_pretrained (latent space only)
    DIR/scheduler/scheduler_config.json   the DDIM training schedule (samplers are built from it)
    DIR/README.md                         a short model card

The model id recorded in provenance is the hash of the weights, not of the folder's path or JSON.

`space` is "latent" (the default, as the reference RDMs: the UNet denoises VAE latents) or "pixel" (the
UNet denoises RGB images in [-1, 1] directly: no vae/, scale_factor 1; the small demo models, which are
too small for an autoencoder to pay for itself). A pixel-space model may fold each `patch_size` x
`patch_size` block of pixels into channels (pixel unshuffle, exact and invertible): latent_channels is
then 3 * patch_size ** 2 and latent_size the image side / patch_size, so the UNet runs on a quarter of
the positions at patch_size 2 (the patching of Hoogeboom et al. 2023, "simple diffusion").
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from stylevault.governance import door
from stylevault.governance.errors import BadInput

FORMAT = "stylevault-rdm/1"
SPACES = ("latent", "pixel")
# What the UNet predicts: the noise (the reference RDMs) or the clean sample (the pixel-space demo models).
PREDICTIONS = ("epsilon", "sample")
WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"


@dataclass
class RDMModel:
    path: Path
    config: dict  # rdm.json
    unet: object  # diffusers UNet2DConditionModel, eval mode
    vae: object | None  # diffusers AutoencoderKL, eval mode; None in pixel space
    scheduler_config: dict  # scheduler/scheduler_config.json
    weights_sha256: str

    @property
    def model_id(self) -> str:
        return f"rdm@sha256:{self.weights_sha256[:16]}"


def weights_sha256(unet_state: dict, vae_state: dict) -> str:
    """The model's identity: the door's tensor hash over both state dicts, names prefixed unet./vae."""
    merged = {f"unet.{name}": t for name, t in unet_state.items()}
    merged.update({f"vae.{name}": t for name, t in vae_state.items()})
    return door.weights_sha256(merged)


def training_schedule(
    *,
    num_train_timesteps: int = 1000,
    beta_start: float = 0.0015,
    beta_end: float = 0.015,
    beta_schedule: str = "scaled_linear",
) -> dict:
    """The DDIMScheduler config that reproduces CompVis DDIM sampling (ldm/models/diffusion/ddim.py):
    "uniform" timesteps range(0, T, T // S) + 1, ᾱ_prev of the last step = ᾱ_0, no clipping."""
    return {
        "_class_name": "DDIMScheduler",
        "num_train_timesteps": num_train_timesteps,
        "beta_start": beta_start,
        "beta_end": beta_end,
        "beta_schedule": beta_schedule,
        "steps_offset": 1,
        "set_alpha_to_one": False,
        "clip_sample": False,
        "timestep_spacing": "leading",
        "prediction_type": "epsilon",
    }


def load_model(path, *, device="cpu", dtype=torch.float32) -> RDMModel:
    """Load a folder written by `save_model`, from local files only. Every tensor is checked against
    the module its config.json builds before anything is loaded."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    path = Path(path)
    if not path.is_dir():
        raise BadInput(f"{path}: not a model folder")
    config = _read_json(path / "rdm.json")
    scheduler_config = _read_json(path / "scheduler" / "scheduler_config.json")
    pixel = config.get("space") == "pixel"
    unet_state = _read_weights(path / "unet")
    vae_state = {} if pixel else _read_weights(path / "vae")
    digest = weights_sha256(unet_state, vae_state)  # of the tensors as stored, whatever dtype we run in
    unet = _load_module(UNet2DConditionModel, path / "unet", unet_state, device, dtype)
    vae = None if pixel else _load_module(AutoencoderKL, path / "vae", vae_state, device, dtype)
    check_config(config, unet.config, vae and vae.config, scheduler_config, where=path)
    return RDMModel(path, config, unet.eval(), vae and vae.eval(), scheduler_config, digest)


def save_model(unet, vae, scheduler_config: dict, rdm_config: dict, out) -> Path:
    """Write a model folder; it appears complete or not at all (written beside `out`, then renamed).
    `vae` is None for a pixel-space model."""
    from diffusers import DDIMScheduler

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"{out}: exists and is not empty; will not overwrite")
    config = {"format": FORMAT, **{k: v for k, v in rdm_config.items() if k != "format"}}
    check_config(config, unet.config, vae and vae.config, scheduler_config, where=out)
    digest = weights_sha256(unet.state_dict(), vae.state_dict() if vae is not None else {})

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.partial"
    try:
        staging.mkdir()
        unet.save_pretrained(staging / "unet", safe_serialization=True)
        if vae is not None:
            vae.save_pretrained(staging / "vae", safe_serialization=True)
        DDIMScheduler.from_config(scheduler_config).save_config(staging / "scheduler")
        (staging / "rdm.json").write_text(json.dumps(config, indent=2) + "\n")
        (staging / "README.md").write_text(_model_card(config, unet.config, vae and vae.config, digest))
        os.replace(staging, out)  # an empty `out` is replaced; POSIX rename of a directory is atomic
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def create_untrained(
    *,
    context_dim: int,
    latent_channels: int = 4,
    latent_size: int = 8,
    block_out_channels: tuple[int, ...] = (32, 64),
    seed: int = 0,
):
    """Tiny real diffusers modules with seeded random weights, for tests and demos (diffusers'
    get_dummy_components pattern): a UNet with cross-attention at every level, head width 8, and a VAE
    with the same widths (so it downsamples by 2 ** (levels - 1)). Returns the arguments of `save_model`
    except `out`."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    levels = len(block_out_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=latent_size,
            in_channels=latent_channels,
            out_channels=latent_channels,
            layers_per_block=1,
            block_out_channels=tuple(block_out_channels),
            down_block_types=("CrossAttnDownBlock2D",) * levels,
            up_block_types=("CrossAttnUpBlock2D",) * levels,
            cross_attention_dim=context_dim,
            attention_head_dim=tuple(c // 8 for c in block_out_channels),  # diffusers: heads per level
            norm_num_groups=32,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            latent_channels=latent_channels,
            block_out_channels=tuple(block_out_channels),
            down_block_types=("DownEncoderBlock2D",) * levels,
            up_block_types=("UpDecoderBlock2D",) * levels,
            layers_per_block=1,
            norm_num_groups=32,
            sample_size=latent_size * 2 ** (levels - 1),
        )
    rdm_config = {
        "context_dim": context_dim,
        "latent_channels": latent_channels,
        "latent_size": latent_size,
        "scale_factor": vae.config.scaling_factor,
        "prediction_type": "epsilon",
        "source": {"kind": "untrained", "seed": seed},
    }
    return unet.eval(), vae.eval(), training_schedule(), rdm_config


def check_config(config: dict, unet_config, vae_config, scheduler_config: dict, *, where) -> None:
    """rdm.json is well formed and agrees with the module and scheduler configs beside it (`vae_config`
    is None for a pixel-space model)."""
    rdm = f"{where}/rdm.json"
    if config.get("format") != FORMAT:
        raise BadInput(f"{rdm}: format is {config.get('format')!r}, expected {FORMAT!r}")
    space = config.get("space", "latent")
    if space not in SPACES:
        raise BadInput(f"{rdm}: space is {space!r}, expected one of {', '.join(SPACES)}")
    for field in ("context_dim", "latent_channels", "latent_size"):
        value = config.get(field)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise BadInput(f"{rdm}: {field} must be a positive integer, got {value!r}")
    scale = config.get("scale_factor")
    if not isinstance(scale, int | float) or isinstance(scale, bool) or not scale > 0:
        raise BadInput(f"{rdm}: scale_factor must be a positive number, got {scale!r}")
    prediction = config.get("prediction_type")
    if prediction not in PREDICTIONS:
        raise BadInput(
            f"{rdm}: prediction_type is {prediction!r}; supported: {', '.join(map(repr, PREDICTIONS))}"
        )
    if not isinstance(config.get("source"), dict):
        raise BadInput(f"{rdm}: source must be an object saying how the model was made")
    if (space == "pixel") != (vae_config is None):
        raise BadInput(
            f"{rdm}: space {space!r} " + ("has no vae/" if vae_config is None else "takes no vae/")
        )
    checks = [
        ("context_dim", "unet/config.json cross_attention_dim", unet_config.cross_attention_dim),
        ("latent_channels", "unet/config.json in_channels", unet_config.in_channels),
        ("latent_channels", "unet/config.json out_channels", unet_config.out_channels),
    ]
    if space == "pixel":
        patch = config.get("patch_size", 1)
        if not isinstance(patch, int) or isinstance(patch, bool) or patch <= 0:
            raise BadInput(f"{rdm}: patch_size must be a positive integer, got {patch!r}")
        checks += [
            ("latent_channels", f"RGB at patch_size {patch}", 3 * patch**2),
            ("scale_factor", "pixel space", 1.0),
        ]
    else:
        checks += [("latent_channels", "vae/config.json latent_channels", vae_config.latent_channels)]
    for field, theirs_name, theirs in checks:
        if config[field] != theirs:
            raise BadInput(f"{rdm}: {field} {config[field]} does not match {theirs_name} {theirs}")
    if vae_config is not None and not math.isclose(scale, vae_config.scaling_factor, rel_tol=1e-9):
        theirs = vae_config.scaling_factor
        raise BadInput(f"{rdm}: scale_factor {scale} does not match vae/config.json scaling_factor {theirs}")
    schedule = f"{where}/scheduler/scheduler_config.json"
    for field in ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule"):
        if field not in scheduler_config:
            raise BadInput(f"{schedule}: missing {field}")
    if scheduler_config.get("prediction_type", "epsilon") != prediction:
        raise BadInput(
            f"{schedule}: prediction_type is {scheduler_config.get('prediction_type', 'epsilon')!r}, "
            f"not {prediction!r} as rdm.json says"
        )


def empty_module(cls, config: dict, *, built_by):
    """`cls` built from `config` on the meta device: its state dict gives names and shapes, no memory."""
    try:
        with torch.device("meta"):
            return cls.from_config(config)
    except Exception as exc:  # diffusers raises ValueError, TypeError, KeyError... for bad configs
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"{built_by}: does not build a {cls.__name__}: {message}") from exc


def load_weights(module, state: dict, *, source, built_by, names: dict | None = None):
    """Load `state` into a module from `empty_module`, after checking every tensor against it: the first
    missing key or mismatching shape (in module order) or unexpected key is named. `names` maps module
    names to the keys as `source` spells them, for messages."""
    names = names or {}
    expected = module.state_dict()
    for name, want in expected.items():
        key = names.get(name, name)
        if name not in state:
            raise BadInput(f"{source}: missing {key} {_shape(want)} (built by {built_by})")
        if state[name].shape != want.shape:
            raise BadInput(
                f"{source}: {key} has shape {_shape(state[name])}, {built_by} builds {_shape(want)}"
            )
    unexpected = [name for name in state if name not in expected]
    if unexpected:
        raise BadInput(
            f"{source}: unexpected {names.get(unexpected[0], unexpected[0])} (not built by {built_by})"
        )
    module.load_state_dict(state, strict=True, assign=True)
    return module


def _read_weights(folder: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights_file = folder / WEIGHTS_FILE
    if not weights_file.is_file():
        raise BadInput(f"{weights_file}: missing")
    try:
        return load_file(weights_file)
    except (SafetensorError, OSError) as exc:
        raise BadInput(f"{weights_file}: not a readable safetensors file ({exc})") from exc


def _load_module(cls, folder: Path, state: dict, device, dtype):
    config_file = folder / "config.json"
    module = empty_module(cls, _read_json(config_file), built_by=config_file)
    # Cast before loading: the module is empty, and nothing is copied when device and dtype already fit.
    state = {
        name: tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)
        for name, tensor in state.items()
    }
    return load_weights(module, state, source=folder / WEIGHTS_FILE, built_by=config_file)


def _read_json(file: Path) -> dict:
    if not file.is_file():
        raise BadInput(f"{file}: missing")
    try:
        data = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise BadInput(f"{file}: expected a JSON object")
    return data


def _shape(tensor) -> str:
    return str(tuple(tensor.shape))


def _model_card(config: dict, unet_config, vae_config, digest: str) -> str:
    source = json.dumps(config["source"], indent=2, sort_keys=True)
    c, size = config["latent_channels"], config["latent_size"]
    prediction = {"epsilon": "eps-prediction", "sample": "x0-prediction"}[config["prediction_type"]]
    if vae_config is None:
        kind = "pixel-space"
        patch = config.get("patch_size", 1)
        space = (
            f"It denoises {size * patch}x{size * patch} RGB images in [-1, 1] directly (no autoencoder), "
            f"each {patch}x{patch} patch folded into channels ({c}x{size}x{size}); {prediction}."
        )
        vae = "- VAE: none (pixel space)"
    else:
        kind = "latent"
        space = (
            f"Latents are {c}x{size}x{size} at the native resolution, scale factor "
            f"{config['scale_factor']}; {prediction}."
        )
        vae = (
            f"- VAE: block_out_channels {list(vae_config.block_out_channels)}, "
            f"blocks {list(vae_config.down_block_types)}"
        )
    return f"""# Retrieval-augmented {kind} diffusion model (stylevault format {FORMAT})

Model id: `rdm@sha256:{digest[:16]}` (sha256 over every UNet and VAE tensor, names prefixed `unet.`/`vae.`:
`{digest}`).

A {kind} diffusion UNet with cross-attention over a context of (B, 1 + k, {config["context_dim"]}) tokens:
an L2-normalised CLIP text embedding followed by k retrieved image embeddings (Blattmann et al. 2022,
arXiv 2204.11824 and 2207.13038). {space}

- UNet: block_out_channels {list(unet_config.block_out_channels)}, layers_per_block \
{unet_config.layers_per_block}, blocks {list(unet_config.down_block_types)}
{vae}
- Scheduler: the DDIM training schedule in `scheduler/`; samplers are built from it.

How it was made:

```json
{source}
```
"""
