"""Import a CompVis/latent-diffusion RDM checkpoint (Lightning `model.ckpt` + its YAML) into a model folder.

The diffusers configs are derived from the YAML for any member of the family (levels, widths, attention
levels, heads, VAE attention levels), and every checkpoint key is either converted or knowingly ignored:
the schedule buffers, the EMA bookkeeping and the weight set not chosen. Names follow the module trees of
ldm/modules/diffusionmodules/openaimodel.py (UNetModel) and model.py (Encoder, Decoder) at the commit
that released the RDMs (a506df5); diffusers' single-file converters are not used because they match
keys by substring and silently drop the VAE's level attention.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from stylevault.generation.compvis_names import ema_key, gather, unet_names, vae_names
from stylevault.generation.model import empty_module, load_weights, save_model, training_schedule
from stylevault.governance.errors import BadInput

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
# LatentDiffusion's registered schedule buffers and LitEma's bookkeeping: derived or training-only.
SCHEDULE_BUFFERS = frozenset(
    {
        "betas",
        "alphas_cumprod",
        "alphas_cumprod_prev",
        "sqrt_alphas_cumprod",
        "sqrt_one_minus_alphas_cumprod",
        "log_one_minus_alphas_cumprod",
        "sqrt_recip_alphas_cumprod",
        "sqrt_recipm1_alphas_cumprod",
        "posterior_variance",
        "posterior_log_variance_clipped",
        "posterior_mean_coef1",
        "posterior_mean_coef2",
        "lvlb_weights",
        "logvar",
    }
)
EMA_BOOKKEEPING = frozenset({"model_ema.decay", "model_ema.num_updates"})

# openaimodel.UNetModel arguments this importer understands; anything else is refused by name.
_UNET_FIELDS = frozenset(
    {
        "image_size",
        "in_channels",
        "out_channels",
        "model_channels",
        "attention_resolutions",
        "num_res_blocks",
        "channel_mult",
        "dropout",
        "conv_resample",
        "dims",
        "num_classes",
        "use_checkpoint",
        "use_fp16",
        "num_heads",
        "num_head_channels",
        "num_heads_upsample",
        "use_scale_shift_norm",
        "resblock_updown",
        "use_new_attention_order",
        "use_spatial_transformer",
        "transformer_depth",
        "context_dim",
        "n_embed",
        "legacy",
        "use_linear_in_transformer",
    }
)
_DDCONFIG_FIELDS = frozenset(
    {
        "double_z",
        "z_channels",
        "resolution",
        "in_channels",
        "out_ch",
        "ch",
        "ch_mult",
        "num_res_blocks",
        "attn_resolutions",
        "dropout",
        "resamp_with_conv",
        "give_pre_end",
        "tanh_out",
        "use_linear_attn",
        "attn_type",
    }
)
# ldm's "linear" schedule is linear in sqrt(beta), diffusers' "scaled_linear"; "sqrt_linear" is linear.
_BETA_SCHEDULES = {"linear": "scaled_linear", "sqrt_linear": "linear"}


def import_compvis(ckpt, config, out, *, weights: str = "ema") -> Path:
    """Convert `ckpt` (+ its YAML `config`) into a model folder at `out`; EMA weights by default, as
    scripts/knn2img.py samples inside `ema_scope`."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    if weights not in ("ema", "raw"):
        raise BadInput(f"--weights: {weights!r} is neither 'ema' nor 'raw'")
    ckpt, config = Path(ckpt), Path(config)
    params = _LdmConfig(config)
    unet_config = unet_config_from_ldm(params)
    vae_config = vae_config_from_ldm(params)
    schedule = schedule_from_ldm(params)
    state = _read_checkpoint(ckpt)
    # With scale_by_std the factor was measured in training and saved as a buffer; it wins over the YAML.
    vae_config["scaling_factor"] = (
        float(state["scale_factor"]) if "scale_factor" in state else params.scale_factor
    )

    if weights == "ema" and not any(key.startswith("model_ema.") for key in state):
        raise BadInput(f"{ckpt}: has no EMA weights (model_ema.*); import with --weights raw")
    unet = empty_module(UNet2DConditionModel, unet_config, built_by=config)
    vae = empty_module(AutoencoderKL, vae_config, built_by=config)
    unet_compvis = unet_names(unet)
    unet_keys = {name: _unet_key(compvis, weights) for name, compvis in unet_compvis.items()}
    vae_keys = {name: VAE_PREFIX + compvis for name, compvis in vae_names(vae).items()}
    load_weights(unet, gather(state, unet, unet_keys), source=ckpt, built_by=config, names=unet_keys)
    load_weights(vae, gather(state, vae, vae_keys), source=ckpt, built_by=config, names=vae_keys)
    _check_betas(state, schedule, ckpt, config)

    # Account for every key: converted, or one of the known kinds that carry no inference weights.
    other = "raw" if weights == "ema" else "ema"
    ignored = SCHEDULE_BUFFERS | EMA_BOOKKEEPING | {_unet_key(c, other) for c in unet_compvis.values()}
    used = set(unet_keys.values()) | set(vae_keys.values()) | {"scale_factor"}
    leftover = [key for key in state if key not in used and key not in ignored]
    if leftover:
        more = f" (and {len(leftover) - 1} more)" if len(leftover) > 1 else ""
        raise BadInput(
            f"{ckpt}: unexpected key {leftover[0]}{more}, not part of the model {config} describes"
        )

    rdm_config = {
        "context_dim": unet_config["cross_attention_dim"],
        "latent_channels": unet_config["in_channels"],
        "latent_size": unet_config["sample_size"],
        "scale_factor": vae_config["scaling_factor"],
        "prediction_type": "epsilon",
        "source": {
            "kind": "compvis",
            "checkpoint": ckpt.name,
            "checkpoint_sha256": _file_sha256(ckpt),
            "config": config.name,
            "config_sha256": _file_sha256(config),
            "weights": weights,
        },
    }
    return save_model(unet.eval(), vae.eval(), schedule, rdm_config, out)


class _LdmConfig:
    """The YAML's `model.params`, with errors that name the file and the dotted field."""

    def __init__(self, file: Path):
        import yaml

        self.file = file
        if not file.is_file():
            raise BadInput(f"{file}: missing")
        try:
            root = yaml.safe_load(file.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise BadInput(f"{file}: not valid YAML ({str(exc).splitlines()[0]})") from exc
        self.params = self.section(root, "model.params")
        if self.params.get("conditioning_key", "crossattn") != "crossattn":
            raise BadInput(f"{file}: model.params.conditioning_key must be 'crossattn' (an RDM)")
        if self.params.get("parameterization", "eps") != "eps":
            raise BadInput(f"{file}: model.params.parameterization: only 'eps' is supported")
        self.unet = self.section(self.params, "unet_config.params", "model.params")
        self.first_stage = self.section(self.params, "first_stage_config.params", "model.params")
        self.ddconfig = self.section(self.first_stage, "ddconfig", "model.params.first_stage_config.params")
        self.check_target("unet_config", "openaimodel.UNetModel")
        self.check_target("first_stage_config", "autoencoder.AutoencoderKL")
        self.scale_factor = self.number(self.params, "scale_factor", "model.params", default=1.0)

    def section(self, mapping, path: str, where: str = "") -> dict:
        for part in path.split("."):
            where = f"{where}.{part}" if where else part
            mapping = mapping.get(part) if isinstance(mapping, dict) else None
            if not isinstance(mapping, dict):
                raise BadInput(f"{self.file}: {where} is missing or not a mapping")
        return mapping

    def check_target(self, section: str, suffix: str) -> None:
        target = self.params[section].get("target", "")
        if not str(target).endswith(suffix):
            raise BadInput(f"{self.file}: model.params.{section}.target is {target!r}, expected ...{suffix}")

    def number(self, mapping: dict, field: str, where: str, *, default=None, kind=(int, float)):
        value = mapping.get(field, default)
        if value is None or isinstance(value, bool) or not isinstance(value, kind):
            what = "an integer" if kind is int else "a number"
            raise BadInput(f"{self.file}: {where}.{field} must be {what}, got {value!r}")
        return value

    def ints(self, mapping: dict, field: str, where: str, *, default=None) -> list[int]:
        value = mapping.get(field, default)
        if not isinstance(value, list | tuple) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise BadInput(f"{self.file}: {where}.{field} must be a list of integers, got {value!r}")
        return list(value)

    def unknown(self, mapping: dict, known: frozenset, where: str) -> None:
        for field in mapping:
            if field not in known:
                raise BadInput(f"{self.file}: {where}.{field} is not understood by this importer")

    def refuse_unless(self, mapping: dict, field: str, where: str, allowed, default) -> None:
        value = mapping.get(field, default)
        if value not in allowed:
            raise BadInput(f"{self.file}: {where}.{field} = {value!r} is not supported")


def unet_config_from_ldm(ldm: _LdmConfig) -> dict:
    """UNet2DConditionModel config for an openaimodel.UNetModel with SpatialTransformers."""
    p, where = ldm.unet, "model.params.unet_config.params"
    ldm.unknown(p, _UNET_FIELDS, where)
    ldm.refuse_unless(p, "use_spatial_transformer", where, (True,), False)
    ldm.refuse_unless(p, "dims", where, (2,), 2)
    ldm.refuse_unless(p, "conv_resample", where, (True,), True)
    ldm.refuse_unless(p, "resblock_updown", where, (False,), False)
    ldm.refuse_unless(p, "num_classes", where, (None,), None)
    ldm.refuse_unless(p, "n_embed", where, (None,), None)
    model_channels = ldm.number(p, "model_channels", where, kind=int)
    channel_mult = ldm.ints(p, "channel_mult", where, default=[1, 2, 4, 8])
    if not channel_mult or channel_mult[0] != 1:
        # openaimodel's input conv is model_channels wide; diffusers' conv_in is block_out_channels[0] wide.
        raise BadInput(f"{ldm.file}: {where}.channel_mult must start with 1, got {channel_mult}")
    attention_resolutions = ldm.ints(p, "attention_resolutions", where)
    context_dim = ldm.number(p, "context_dim", where, kind=int)
    depth = ldm.number(p, "transformer_depth", where, default=1, kind=int)
    channels = [model_channels * mult for mult in channel_mult]

    # Heads per level as openaimodel computes them: a fixed head width (num_head_channels) or a fixed
    # head count (num_heads). diffusers' attention_head_dim is really the head count per level, and the
    # middle block takes the last level's.
    num_heads = p.get("num_heads", -1)
    num_head_channels = p.get("num_head_channels", -1)
    if num_head_channels != -1:
        ldm.number(p, "num_head_channels", where, kind=int)
        for width in channels:
            if width % num_head_channels:
                raise BadInput(
                    f"{ldm.file}: {where}.num_head_channels {num_head_channels} does not divide {width}"
                )
        heads = [width // num_head_channels for width in channels]
    elif num_heads != -1:
        ldm.number(p, "num_heads", where, kind=int)
        # openaimodel gives the up path num_heads_upsample heads of width ch // num_heads; diffusers can't.
        ldm.refuse_unless(p, "num_heads_upsample", where, (-1, num_heads), -1)
        heads = [num_heads] * len(channels)
    else:
        raise BadInput(f"{ldm.file}: {where} sets neither num_heads nor num_head_channels")

    # Attention at level l when its downsampling rate 2**l is listed; the up path mirrors it.
    has_attention = [2**level in attention_resolutions for level in range(len(channels))]
    return {
        "sample_size": ldm.number(p, "image_size", where, kind=int),
        "in_channels": ldm.number(p, "in_channels", where, kind=int),
        "out_channels": ldm.number(p, "out_channels", where, kind=int),
        "block_out_channels": channels,
        "layers_per_block": ldm.number(p, "num_res_blocks", where, kind=int),
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in has_attention],
        "up_block_types": ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(has_attention)],
        "cross_attention_dim": context_dim,
        "attention_head_dim": heads,
        "transformer_layers_per_block": depth,
        "use_linear_projection": bool(p.get("use_linear_in_transformer", False)),
        "resnet_time_scale_shift": "scale_shift" if p.get("use_scale_shift_norm", False) else "default",
        "flip_sin_to_cos": True,  # timestep_embedding is [cos | sin]
        "freq_shift": 0,
        "norm_num_groups": 32,
        "norm_eps": 1e-5,
        "act_fn": "silu",
    }


def vae_config_from_ldm(ldm: _LdmConfig) -> dict:
    """AutoencoderKL config for ldm.models.autoencoder.AutoencoderKL, attention levels included."""
    d, where = ldm.ddconfig, "model.params.first_stage_config.params.ddconfig"
    ldm.unknown(d, _DDCONFIG_FIELDS, where)
    ldm.refuse_unless(d, "double_z", where, (True,), True)
    ldm.refuse_unless(d, "resamp_with_conv", where, (True,), True)
    ldm.refuse_unless(d, "give_pre_end", where, (False,), False)
    ldm.refuse_unless(d, "tanh_out", where, (False,), False)
    ldm.refuse_unless(d, "use_linear_attn", where, (False,), False)
    ldm.refuse_unless(d, "attn_type", where, ("vanilla",), "vanilla")
    ch = ldm.number(d, "ch", where, kind=int)
    ch_mult = ldm.ints(d, "ch_mult", where)
    if not ch_mult or ch_mult[0] != 1:
        raise BadInput(f"{ldm.file}: {where}.ch_mult must start with 1, got {ch_mult}")
    z_channels = ldm.number(d, "z_channels", where, kind=int)
    embed_dim = ldm.number(ldm.first_stage, "embed_dim", "model.params.first_stage_config.params", kind=int)
    if embed_dim != z_channels:
        raise BadInput(
            f"{ldm.file}: model.params.first_stage_config.params.embed_dim {embed_dim} differs from "
            f"ddconfig.z_channels {z_channels}; diffusers' AutoencoderKL has one latent width"
        )
    resolution = ldm.number(d, "resolution", where, kind=int)
    attn_resolutions = ldm.ints(d, "attn_resolutions", where)
    # Encoder and Decoder put attention in level i when the *nominal* resolution // 2**i is listed.
    has_attention = [resolution // 2**level in attn_resolutions for level in range(len(ch_mult))]
    return {
        "in_channels": ldm.number(d, "in_channels", where, kind=int),
        "out_channels": ldm.number(d, "out_ch", where, kind=int),
        "block_out_channels": [ch * mult for mult in ch_mult],
        "layers_per_block": ldm.number(d, "num_res_blocks", where, kind=int),
        "down_block_types": ["AttnDownEncoderBlock2D" if a else "DownEncoderBlock2D" for a in has_attention],
        "up_block_types": [
            "AttnUpDecoderBlock2D" if a else "UpDecoderBlock2D" for a in reversed(has_attention)
        ],
        "latent_channels": z_channels,
        "norm_num_groups": 32,
        "act_fn": "silu",
        "sample_size": resolution,
    }


def schedule_from_ldm(ldm: _LdmConfig) -> dict:
    """The DDIM training schedule from LatentDiffusion's timesteps, linear_start/end and beta_schedule."""
    p, where = ldm.params, "model.params"
    if "given_betas" in p:
        raise BadInput(f"{ldm.file}: {where}.given_betas is not supported")
    schedule = p.get("beta_schedule", "linear")
    if schedule not in _BETA_SCHEDULES:
        raise BadInput(
            f"{ldm.file}: {where}.beta_schedule {schedule!r} is not supported (linear, sqrt_linear)"
        )
    return training_schedule(
        num_train_timesteps=ldm.number(p, "timesteps", where, default=1000, kind=int),
        beta_start=float(ldm.number(p, "linear_start", where, default=1e-4)),
        beta_end=float(ldm.number(p, "linear_end", where, default=2e-2)),
        beta_schedule=_BETA_SCHEDULES[schedule],
    )


def _unet_key(compvis_name: str, weights: str) -> str:
    return ema_key(compvis_name) if weights == "ema" else UNET_PREFIX + compvis_name


def _check_betas(state: dict, schedule: dict, ckpt: Path, config: Path) -> None:
    """The checkpoint's own schedule buffer, where present, is the one the YAML describes."""
    import torch
    from diffusers import DDIMScheduler

    if "betas" not in state:
        return
    ours = DDIMScheduler.from_config(schedule).betas.double()  # (T,)
    theirs = state["betas"].double()
    if theirs.shape != ours.shape or not torch.allclose(theirs, ours, rtol=1e-5, atol=1e-9):
        raise BadInput(
            f"{ckpt}: betas {_ends(theirs)} disagree with the schedule {config} describes {_ends(ours)} "
            "(model.params.timesteps, linear_start, linear_end, beta_schedule)"
        )


def _ends(betas) -> str:
    return f"({len(betas)} steps, {betas[0].item():.6g} .. {betas[-1].item():.6g})"


def _read_checkpoint(ckpt: Path) -> dict:
    import torch

    if not ckpt.is_file():
        raise BadInput(f"{ckpt}: missing")
    try:
        checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and weights_only errors have no common base class
        raise BadInput(f"{ckpt}: not a loadable checkpoint ({str(exc).strip().splitlines()[0]})") from exc
    state = checkpoint.get("state_dict") if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise BadInput(f"{ckpt}: no state_dict (expected a PyTorch Lightning checkpoint)")
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise BadInput(f"{ckpt}: state_dict[{key!r}] is not a tensor")
    return state


def _file_sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
