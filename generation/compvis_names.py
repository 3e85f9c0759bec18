"""Where each tensor of our diffusers modules lives in a CompVis checkpoint: the UNet's names in
openaimodel.UNetModel, the VAE's in ldm's AutoencoderKL, and LitEma's dot-free EMA buffer names."""

from __future__ import annotations

from typing import NamedTuple

from stylevault.governance.errors import BadInput


class _Block(NamedTuple):
    compvis: str  # the CompVis module path a diffusers module path maps to
    renames: dict  # diffusers sub-module path -> CompVis sub-module path (the rest is identical)


_RESBLOCK = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
_SAME: dict = {}  # same inner names on both sides: plain layers, SpatialTransformer vs Transformer2DModel
_VAE_RESNET = {"conv_shortcut": "nin_shortcut"}
_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def unet_names(unet) -> dict[str, str]:
    """diffusers UNet2DConditionModel state-dict name -> openaimodel.UNetModel name, for every tensor."""
    config = unet.config
    levels, per_level = len(config.block_out_channels), config.layers_per_block
    blocks = {
        "conv_in": _Block("input_blocks.0.0", _SAME),
        "time_embedding.linear_1": _Block("time_embed.0", _SAME),
        "time_embedding.linear_2": _Block("time_embed.2", _SAME),
        "mid_block.resnets.0": _Block("middle_block.0", _RESBLOCK),
        "mid_block.attentions.0": _Block("middle_block.1", _SAME),
        "mid_block.resnets.1": _Block("middle_block.2", _RESBLOCK),
        "conv_norm_out": _Block("out.0", _SAME),
        "conv_out": _Block("out.2", _SAME),
    }
    index = 1  # input_blocks: [conv], then per level per_level x [ResBlock, (ST)], then a Downsample
    for level in range(levels):
        for j in range(per_level):
            blocks[f"down_blocks.{level}.resnets.{j}"] = _Block(f"input_blocks.{index}.0", _RESBLOCK)
            blocks[f"down_blocks.{level}.attentions.{j}"] = _Block(f"input_blocks.{index}.1", _SAME)
            index += 1
        if level < levels - 1:
            blocks[f"down_blocks.{level}.downsamplers.0.conv"] = _Block(f"input_blocks.{index}.0.op", _SAME)
            index += 1
    index = 0  # output_blocks: per level (deepest first) per_level + 1 x [ResBlock, (ST), (Upsample)]
    for up, block_type in enumerate(config.up_block_types):
        for j in range(per_level + 1):
            blocks[f"up_blocks.{up}.resnets.{j}"] = _Block(f"output_blocks.{index}.0", _RESBLOCK)
            blocks[f"up_blocks.{up}.attentions.{j}"] = _Block(f"output_blocks.{index}.1", _SAME)
            index += 1
        if up < levels - 1:
            slot = 2 if block_type.startswith("CrossAttn") else 1
            blocks[f"up_blocks.{up}.upsamplers.0.conv"] = _Block(
                f"output_blocks.{index - 1}.{slot}.conv", _SAME
            )
    return _names(unet, blocks)


def vae_names(vae) -> dict[str, str]:
    """diffusers AutoencoderKL state-dict name -> ldm AutoencoderKL name, for every tensor."""
    config = vae.config
    levels, per_level = len(config.block_out_channels), config.layers_per_block
    blocks = {"quant_conv": _Block("quant_conv", _SAME), "post_quant_conv": _Block("post_quant_conv", _SAME)}
    for side in ("encoder", "decoder"):
        blocks[f"{side}.conv_in"] = _Block(f"{side}.conv_in", _SAME)
        blocks[f"{side}.mid_block.resnets.0"] = _Block(f"{side}.mid.block_1", _VAE_RESNET)
        blocks[f"{side}.mid_block.attentions.0"] = _Block(f"{side}.mid.attn_1", _VAE_ATTENTION)
        blocks[f"{side}.mid_block.resnets.1"] = _Block(f"{side}.mid.block_2", _VAE_RESNET)
        blocks[f"{side}.conv_norm_out"] = _Block(f"{side}.norm_out", _SAME)
        blocks[f"{side}.conv_out"] = _Block(f"{side}.conv_out", _SAME)
    for level in range(levels):
        for j in range(per_level):
            blocks[f"encoder.down_blocks.{level}.resnets.{j}"] = _Block(
                f"encoder.down.{level}.block.{j}", _VAE_RESNET
            )
            blocks[f"encoder.down_blocks.{level}.attentions.{j}"] = _Block(
                f"encoder.down.{level}.attn.{j}", _VAE_ATTENTION
            )
        blocks[f"encoder.down_blocks.{level}.downsamplers.0.conv"] = _Block(
            f"encoder.down.{level}.downsample.conv", _SAME
        )
    for up in range(levels):  # diffusers lists the decoder from the deepest level; ldm indexes by level
        level = levels - 1 - up
        for j in range(per_level + 1):
            blocks[f"decoder.up_blocks.{up}.resnets.{j}"] = _Block(
                f"decoder.up.{level}.block.{j}", _VAE_RESNET
            )
            blocks[f"decoder.up_blocks.{up}.attentions.{j}"] = _Block(
                f"decoder.up.{level}.attn.{j}", _VAE_ATTENTION
            )
        blocks[f"decoder.up_blocks.{up}.upsamplers.0.conv"] = _Block(
            f"decoder.up.{level}.upsample.conv", _SAME
        )
    return _names(vae, blocks)


def ema_key(unet_name: str) -> str:
    """LitEma's buffer name for openaimodel parameter `unet_name`: "diffusion_model." + name, dots removed.
    Built forwards, since the dot-free name cannot be parsed back (input_blocks11 is 1.1 or 11)."""
    return "model_ema." + f"diffusion_model.{unet_name}".replace(".", "")


def _names(module, blocks: dict[str, _Block]) -> dict[str, str]:
    names = {}
    for name in module.state_dict():
        parts = name.split(".")
        for cut in range(len(parts) - 1, 0, -1):  # the longest block path that prefixes the name
            block = blocks.get(".".join(parts[:cut]))
            if block is not None:
                inner = ".".join(parts[cut:-1])
                names[name] = ".".join(
                    filter(None, (block.compvis, block.renames.get(inner, inner), parts[-1]))
                )
                break
        else:
            raise BadInput(f"{type(module).__name__} tensor {name} has no CompVis counterpart")
    return names


def gather(state: dict, module, keys: dict[str, str]) -> dict:
    """The checkpoint tensors for `module`, under its own names; 1x1 convs become Linear weights where
    the module has a Linear (ldm's VAE attention uses 1x1 convs for q, k, v and proj_out)."""
    expected = module.state_dict()
    gathered = {}
    for name, key in keys.items():
        if key not in state:
            continue  # load_weights names it as missing, with the shape the config builds
        tensor = state[key]
        if expected[name].ndim == 2 and tensor.ndim == 4 and tensor.shape[2:] == (1, 1):
            tensor = tensor[:, :, 0, 0]
        gathered[name] = tensor
    return gathered
