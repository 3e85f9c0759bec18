"""The reference 768x768 text RDM (random weights): s/image of our sampler against the same UNet in a
plain diffusers loop, fp32 and bf16, SDPA attention, channels-last; on the GPU when there is one.

    python bench/gpu_rdm768.py [--size 768] [--steps 50] [--batch 4] [--dtypes fp32 bf16] [--repeat 3]
                               [--k 10] [--guidance 5.0] [--model-load] [--out bench/out] [--json FILE]

The model is built from the facts of CompVis/latent-diffusion configs/retrieval-augmented-diffusion/
768x768.yaml (reference notes section 1.1), written as a YAML of that schema and turned into diffusers
configs by stylevault.generation.compvis (unet_config_from_ldm, vae_config_from_ldm, schedule_from_ldm), so it
is exactly the architecture `stylevault model import-compvis` produces; its UNet should have about
1.335 B parameters. Weights are seeded random (diffusers' own initialisation).

"ours" is stylevault.generation.sampling.sample(guided(unet, scale), make_scheduler(schedule, "ddim"), ...),
what the pipeline runs; "direct" is the StableDiffusionPipeline loop on the same UNet and inputs:
DDIMScheduler from the same schedule, the doubled batch [uncond; cond] concatenated once, guidance,
scheduler.step. The context is (B, 1 + k, 768): unit random vectors standing in for the text token
and k neighbours (knn2img's default k is 10); the unconditional context is zeros. Both paths use
AttnProcessor2_0 (torch SDPA) in the UNet and the VAE and channels-last weights. The two paths are
interleaved, best of --repeat (and the median of the rounds' ratios), after a 2-step warm-up of
each; the VAE decode (the same call in both) is timed apart. --model-load also saves the fp32 model
as a stylevault model folder and times stylevault.generation.model.load_model, which every `stylevault
generate` call pays (reading and hashing the weights), then deletes the folder.

Without a GPU the defaults shrink to 256x256 (16x16 latents), 5 steps and batch 1, so that it
finishes in minutes on a few CPU cores; the output says so. Not a test: it prints tables and asserts
nothing about time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import time
from pathlib import Path

SEED = 20240611
EXPECTED_UNET_PARAMS = 1.335e9  # reference notes section 1.1, computed from the config
# configs/retrieval-augmented-diffusion/768x768.yaml, model section, as the reference notes give it.
LDM_768 = {
    "model": {
        "base_learning_rate": 1.0e-4,
        "target": "ldm.models.diffusion.ddpm.LatentDiffusion",
        "params": {
            "linear_start": 0.0015,
            "linear_end": 0.015,
            "num_timesteps_cond": 1,
            "log_every_t": 200,
            "timesteps": 1000,
            "first_stage_key": "jpg",
            "cond_stage_key": "nix",
            "image_size": 48,
            "channels": 16,
            "cond_stage_trainable": False,
            "conditioning_key": "crossattn",
            "monitor": "val/loss_simple_ema",
            "scale_by_std": False,
            "scale_factor": 0.22765929,
            "unet_config": {
                "target": "ldm.modules.diffusionmodules.openaimodel.UNetModel",
                "params": {
                    "image_size": 48,
                    "in_channels": 16,
                    "out_channels": 16,
                    "model_channels": 448,
                    "attention_resolutions": [4, 2, 1],
                    "num_res_blocks": 2,
                    "channel_mult": [1, 2, 3, 4],
                    "use_scale_shift_norm": False,
                    "resblock_updown": False,
                    "num_head_channels": 32,
                    "use_spatial_transformer": True,
                    "transformer_depth": 1,
                    "context_dim": 768,
                    "use_checkpoint": True,
                },
            },
            "first_stage_config": {
                "target": "ldm.models.autoencoder.AutoencoderKL",
                "params": {
                    "embed_dim": 16,
                    "monitor": "val/rec_loss",
                    "ddconfig": {
                        "double_z": True,
                        "z_channels": 16,
                        "resolution": 256,
                        "in_channels": 3,
                        "out_ch": 3,
                        "ch": 128,
                        "ch_mult": [1, 1, 2, 2, 4],
                        "num_res_blocks": 2,
                        "attn_resolutions": [16],
                        "dropout": 0.0,
                    },
                    "lossconfig": {"target": "torch.nn.Identity"},
                },
            },
            "cond_stage_config": {"target": "torch.nn.Identity"},
        },
    }
}
GPU_DEFAULTS = {"size": 768, "steps": 50, "batch": 4, "repeat": 3, "dtypes": ["fp32", "bf16"]}
CPU_DEFAULTS = {"size": 256, "steps": 5, "batch": 1, "repeat": 3, "dtypes": ["fp32", "bf16"]}
DOWNSAMPLING = 16  # the kl-f16 first stage: knn2img's latent shape is [16, H // 16, W // 16]


def device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name()
    found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    cpu = found[1].strip() if found else platform.processor() or platform.machine()
    return f"{cpu} ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def build(out: Path, device: str):
    """The UNet, the VAE and the DDIM schedule, through the importer's config functions."""
    import torch
    import yaml
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor2_0

    from stylevault.generation.compvis import (
        _LdmConfig,
        schedule_from_ldm,
        unet_config_from_ldm,
        vae_config_from_ldm,
    )

    out.mkdir(parents=True, exist_ok=True)
    config_file = out / "rdm768x768.yaml"
    config_file.write_text(yaml.safe_dump(LDM_768, sort_keys=False))
    ldm = _LdmConfig(config_file)  # the importer reads the YAML file; there is no dict entry point
    unet_config, vae_config = unet_config_from_ldm(ldm), vae_config_from_ldm(ldm)
    vae_config["scaling_factor"] = ldm.scale_factor  # as import_compvis does without a scale_factor buffer
    schedule = schedule_from_ldm(ldm)
    torch.manual_seed(SEED)
    with torch.device(device):  # initialise in place: a GPU does 1.3 B random weights in a moment
        unet = UNet2DConditionModel.from_config(unet_config).eval()
        vae = AutoencoderKL.from_config(vae_config).eval()
    for module in (unet, vae):
        module.set_attn_processor(AttnProcessor2_0())
        module.to(memory_format=torch.channels_last)
    return unet, vae, schedule, unet_config, vae_config


def inputs(batch: int, k: int, latent: int, device: str, dtype):
    """Seeded noise (B, 16, h, w), a unit random context (B, 1 + k, 768) and its zero twin."""
    import torch

    generator = torch.Generator("cpu").manual_seed(SEED)
    x_T = torch.randn((batch, 16, latent, latent), generator=generator)
    context = torch.randn((batch, 1 + k, 768), generator=generator)
    context = context / context.norm(dim=-1, keepdim=True)
    return x_T.to(device, dtype), context.to(device, dtype), torch.zeros_like(context).to(device, dtype)


def ours(unet, schedule, x_T, context, uncond, steps: int, guidance: float):
    from stylevault.generation.sampling import guided, make_scheduler, sample

    return sample(guided(unet, guidance), make_scheduler(schedule, "ddim"), x_T, context, uncond, steps=steps)


def direct(unet, schedule, x_T, context, uncond, steps: int, guidance: float):
    """A plain diffusers loop (StableDiffusionPipeline.__call__'s denoising loop)."""
    import torch
    from diffusers import DDIMScheduler

    with torch.no_grad():
        scheduler = DDIMScheduler.from_config(schedule)
        scheduler.set_timesteps(steps, device=x_T.device)
        latents = x_T * scheduler.init_noise_sigma
        embeds = torch.cat([uncond, context])  # (2B, 1 + k, 768)
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(torch.cat([latents] * 2), t)
            eps_uncond, eps_cond = unet(model_input, t, encoder_hidden_states=embeds).sample.chunk(2)
            eps = eps_uncond + guidance * (eps_cond - eps_uncond)
            latents = scheduler.step(eps, t, latents).prev_sample
    return latents


def timed(device: str, function, /, *args, **kwargs):
    """Seconds of function(*args, **kwargs), waiting for the GPU's queued work at both ends."""
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    result = function(*args, **kwargs)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, result


def peak_memory_mib(device: str) -> float:
    """Peak GPU memory allocated by torch, or this process's peak RSS (Linux VmHWM) on a CPU."""
    import torch

    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)[1]) / 1024


def measure(unet, vae, schedule, scale_factor: float, args, device: str, dtype_name: str) -> dict:
    """Warm up, then interleave the two paths `repeat` times; the decode is timed once per round."""
    import torch

    from stylevault.generation.sampling import decode

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    unet.to(dtype)
    vae.to(dtype)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    latent = args.size // DOWNSAMPLING
    x_T, context, uncond = inputs(args.batch, args.k, latent, device, dtype)
    for path in (ours, direct):
        path(unet, schedule, x_T, context, uncond, 2, args.guidance)
    times: dict[str, list[float]] = {"ours": [], "direct": []}
    decodes = []
    for attempt in range(args.repeat):
        print(f"  {dtype_name}: round {attempt + 1} of {args.repeat} ...", flush=True)
        order = (
            (("direct", direct), ("ours", ours)) if attempt % 2 == 0 else (("ours", ours), ("direct", direct))
        )
        for name, path in order:
            seconds, latents = timed(
                device, path, unet, schedule, x_T, context, uncond, args.steps, args.guidance
            )
            times[name].append(seconds)
            if name == "ours":
                ours_latents = latents
            else:
                direct_latents = latents
        with torch.no_grad():
            seconds, images = timed(device, decode, vae, ours_latents, scale_factor)
        decodes.append(seconds)
    difference = (ours_latents.float() - direct_latents.float()).abs().max().item()
    best = {name: min(values) for name, values in times.items()}
    batch = args.batch
    return {
        "dtype": dtype_name,
        "ours_s_per_call": best["ours"],
        "direct_s_per_call": best["direct"],
        "ours_s_per_image": best["ours"] / batch,
        "direct_s_per_image": best["direct"] / batch,
        "ratio": best["ours"] / best["direct"],
        "ratio_median_of_rounds": statistics.median(
            o / d for o, d in zip(times["ours"], times["direct"], strict=True)
        ),
        "ours_all_s": times["ours"],
        "direct_all_s": times["direct"],
        "decode_s_per_image": min(decodes) / batch,
        "total_s_per_image": (best["ours"] + min(decodes)) / batch,
        "max_latent_difference": difference,
        "finite": bool(torch.isfinite(ours_latents).all() and torch.isfinite(images).all()),
        "image_shape": list(images.shape[1:]),
        "peak_memory_mib": peak_memory_mib(device),
    }


def read_weights(folder: Path) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    from stylevault.generation.model import WEIGHTS_FILE

    return load_file(folder / "unet" / WEIGHTS_FILE), load_file(folder / "vae" / WEIGHTS_FILE)


def model_load(unet, vae, schedule, unet_config, out: Path, device: str) -> dict:
    """Save as a stylevault model folder (fp32), then time what `generate` pays to load it."""
    import torch

    from stylevault.generation import model as rdm

    unet.to(torch.float32)
    vae.to(torch.float32)
    folder = out / "rdm768-model"
    shutil.rmtree(folder, ignore_errors=True)
    rdm_config = {
        "context_dim": unet_config["cross_attention_dim"],
        "latent_channels": unet_config["in_channels"],
        "latent_size": unet_config["sample_size"],
        "scale_factor": vae.config.scaling_factor,
        "prediction_type": "epsilon",
        "source": {"kind": "untrained", "seed": SEED, "config": "bench/gpu_rdm768.py LDM_768"},
    }
    try:
        print("  saving the model folder ...", flush=True)
        seconds_save, _ = timed(device, rdm.save_model, unet, vae, schedule, rdm_config, folder)
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
        loads = []
        for attempt in range(2):  # the second read comes from the page cache, as repeated runs do
            print(f"  load_model {attempt + 1} of 2 ...", flush=True)
            seconds, loaded = timed(device, rdm.load_model, folder, device=device)
            loads.append(seconds)
            del loaded
        # load_model's two biggest steps on their own: reading the safetensors files, hashing the tensors.
        seconds_read, states = timed("cpu", read_weights, folder)
        seconds_hash, _ = timed("cpu", rdm.weights_sha256, *states)
        del states
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "folder_bytes": size,
        "save_s": seconds_save,
        "load_model_s": loads,
        "read_weights_s": seconds_read,
        "weights_sha256_s": seconds_hash,
    }


def report(args, device, name, reduced, seconds_build, unet_params, vae_params, results, loading) -> None:
    import torch

    latent = args.size // DOWNSAMPLING
    label = (" -- NO GPU" if device == "cpu" else "") + (" -- REDUCED SIZE" if reduced else "")
    flags = (
        f"TF32 matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN TF32 {torch.backends.cudnn.allow_tf32}"
        if device == "cuda"
        else f"{torch.get_num_threads()} threads"
    )
    memory = "peak GPU memory allocated" if device == "cuda" else "peak RSS of the process so far"
    print(
        f"\nRDM 768x768 architecture (random weights) on {name}{label}: {args.size}x{args.size} images "
        f"({latent}x{latent}x16 latents), {args.steps} DDIM steps, batch {args.batch} (UNet batch "
        f"{2 * args.batch}), guidance {args.guidance}, context 1 + {args.k} tokens; SDPA "
        f"(AttnProcessor2_0), channels-last; {flags}; best of {args.repeat} interleaved calls; model "
        f"built in {seconds_build:.1f} s.\nUNet {unet_params:,} parameters ({unet_params / 1e9:.3f} B; "
        "the reference "
        f"notes compute about {EXPECTED_UNET_PARAMS / 1e9:.3f} B); VAE {vae_params:,} "
        f"({vae_params / 1e6:.1f} M).\n"
    )
    print(
        "| dtype | ours s/image | direct s/image | ours / direct | ours / direct, median of rounds "
        "| s/step (ours) | decode s/image "
        f"| ours + decode s/image | max latent difference | {memory}, MiB |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        finite = "" if r["finite"] else " (non-finite output)"
        print(
            f"| {r['dtype']} | {r['ours_s_per_image']:.3f} | {r['direct_s_per_image']:.3f} "
            f"| {r['ratio']:.3f} | {r['ratio_median_of_rounds']:.3f} "
            f"| {r['ours_s_per_call'] / args.steps:.3f} | {r['decode_s_per_image']:.3f} "
            f"| {r['total_s_per_image']:.3f} | {r['max_latent_difference']:.2e}{finite} "
            f"| {r['peak_memory_mib']:.0f} |"
        )
    if loading:
        load = min(loading["load_model_s"])
        first = results[0]
        per_call = first["ours_s_per_call"] + first["decode_s_per_image"] * args.batch
        loads = ", ".join(f"{seconds:.1f}" for seconds in loading["load_model_s"])
        print(
            f"\nModel folder ({loading['folder_bytes'] / 2**30:.2f} GiB, fp32): save "
            f"{loading['save_s']:.1f} s; stylevault.generation.model.load_model {loads} s, of "
            f"which reading the safetensors files takes {loading['read_weights_s']:.1f} s and hashing the "
            f"tensors (the model id) {loading['weights_sha256_s']:.1f} s. Every `stylevault generate` call "
            "pays the load: "
            f"{load / per_call:.0%} on top of one {first['dtype']} call of this size "
            f"({per_call:.1f} s, sampling + decode)."
        )


def main() -> None:
    import diffusers
    import torch

    diffusers.utils.logging.set_verbosity_error()  # its dtype-cast notice, once per module and dtype
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--size", type=int, help="image side in pixels (768 on a GPU, 256 on a CPU)")
    parser.add_argument("--steps", type=int, help="DDIM steps (50 on a GPU, 5 on a CPU)")
    parser.add_argument("--batch", type=int, help="images per call (4 on a GPU, 1 on a CPU)")
    parser.add_argument("--repeat", type=int, help="timed calls of each path (default 3)")
    parser.add_argument("--dtypes", nargs="+", choices=["fp32", "bf16"], help="default: fp32 bf16")
    parser.add_argument("--k", type=int, default=10, help="neighbour tokens in the context")
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--model-load", action="store_true", help="also time load_model of the full model")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    defaults = GPU_DEFAULTS if device == "cuda" else CPU_DEFAULTS
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.size % DOWNSAMPLING or (args.size // DOWNSAMPLING) % 8:
        parser.error(f"--size: a multiple of {DOWNSAMPLING * 8} (latents pass three 2x downsamplings)")
    reduced = (args.size, args.steps, args.batch) != (768, 50, 4)
    name = device_name(device)
    print(f"device: {name}; torch {torch.__version__}, diffusers {diffusers.__version__}", flush=True)
    if reduced:
        where = "NO GPU: " if device == "cpu" else ""
        print(
            f"{where}a REDUCED run at {args.size}x{args.size}, {args.steps} steps, batch {args.batch} "
            "(the reference is 768x768, 50 steps, batch 4)",
            flush=True,
        )
    print("building the model ...", flush=True)
    seconds_build, (unet, vae, schedule, unet_config, _) = timed(device, build, args.out, device)
    unet_params = sum(p.numel() for p in unet.parameters())
    vae_params = sum(p.numel() for p in vae.parameters())
    scale_factor = vae.config.scaling_factor
    results = []
    for dtype_name in args.dtypes:
        print(f"measuring {dtype_name} ...", flush=True)
        results.append(measure(unet, vae, schedule, scale_factor, args, device, dtype_name))
    loading = model_load(unet, vae, schedule, unet_config, args.out, device) if args.model_load else None

    report(args, device, name, reduced, seconds_build, unet_params, vae_params, results, loading)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        summary = {
            "device": name,
            "device_kind": device,
            "reduced": reduced,
            "torch": torch.__version__,
            "diffusers": diffusers.__version__,
            "size": args.size,
            "latent": args.size // DOWNSAMPLING,
            "steps": args.steps,
            "batch": args.batch,
            "k": args.k,
            "guidance": args.guidance,
            "repeat": args.repeat,
            "unet_params": unet_params,
            "vae_params": vae_params,
            "build_s": seconds_build,
            "results": results,
            "model_load": loading,
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
