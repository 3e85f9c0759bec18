"""Samplers as plain functions over a denoiser callable (k-diffusion style), plus the VAE's two ends.

A denoiser is `denoiser(x, t, context, uncond) -> eps`; classifier-free guidance is the wrapper that
makes one from a UNet, and any diffusers scheduler drives it.
"""

from __future__ import annotations

import torch

from stylevault.governance.errors import BadInput

SAMPLERS = ("ddim", "dpmsolver++")


def denoise(unet, x, t, context):
    """One UNet pass. A UNet built with `class_embed_type="projection"` also takes the context's first
    token (the text embedding) as its class label, added to the timestep embedding so that every
    ResNet block sees the prompt; an all-zero context (the unconditional branch) gives a zero label."""
    if getattr(unet, "config", {}).get("class_embed_type") == "projection":
        return unet(x, t, encoder_hidden_states=context, class_labels=context[:, 0]).sample
    return unet(x, t, encoder_hidden_states=context).sample


def guided(unet, scale: float):
    """Classifier-free guidance (Ho & Salimans 2022) as CompVis ddim.py does it: one UNet pass on the
    doubled batch [uncond; cond], unconditional first, eps = eps_u + scale * (eps_c - eps_u). A scale of
    1.0 is the conditional model alone, so only that branch runs."""

    def denoiser(x, t, context, uncond):
        # x: (B, C, H, W); t: scalar or (B,) timesteps; context, uncond: (B, 1 + k, D)
        if scale == 1.0:
            return denoise(unet, x, t, context)
        t = torch.as_tensor(t, device=x.device)
        t = torch.cat([t, t]) if t.ndim else t
        eps = denoise(unet, torch.cat([x, x]), t, torch.cat([uncond, context]))
        eps_uncond, eps_cond = eps.chunk(2)  # (B, C, H, W) each
        return eps_uncond + scale * (eps_cond - eps_uncond)

    return denoiser


def make_scheduler(scheduler_config: dict, sampler: str):
    """A fresh scheduler over the model's training schedule: DDIM with eta 0 and the schedule's own
    "leading" timesteps (parity with CompVis knn2img.py), or DPM-Solver++ (Lu et al. 2022, multistep,
    second order) for fewer steps, with "trailing" timesteps that start at T - 1 (Lin et al. 2024,
    arXiv 2305.08891). diffusers' "leading" for this solver starts at (T // (S + 1)) * S + 1: 941 of
    1000 at 20 steps, 751 at 250, so more steps would drift further from the ODE solution."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    if sampler == "ddim":
        return DDIMScheduler.from_config(scheduler_config)
    if sampler == "dpmsolver++":
        return DPMSolverMultistepScheduler.from_config(
            scheduler_config, algorithm_type="dpmsolver++", timestep_spacing="trailing"
        )
    raise BadInput(f"--sampler: {sampler!r} is not one of {', '.join(SAMPLERS)}")


@torch.no_grad()
def sample(denoiser, scheduler, x_T, context, uncond, *, steps: int, generator=None):
    """Integrate from the noise x_T (B, C, H, W) to x_0 in `steps` scheduler steps. DDIM (eta 0) and
    DPM-Solver++ draw no noise; `generator` is handed to schedulers that do."""
    scheduler.set_timesteps(steps, device=x_T.device)
    x = x_T * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        eps = denoiser(scheduler.scale_model_input(x, t), t, context, uncond)
        x = scheduler.step(eps, t, x, generator=generator).prev_sample
    return x


@torch.no_grad()
def decode(vae, latents, scale_factor: float, *, patch_size: int = 1):
    """Diffusion-space latents (B, C, h, w) -> images (B, 3, H, W) in [0, 1], as knn2img.py:
    clamp((decode(z / scale_factor) + 1) / 2, 0, 1). Without a VAE (pixel space) the latents are the
    image in [-1, 1], its patch_size x patch_size blocks folded into channels."""
    if vae is None:
        images = torch.nn.functional.pixel_shuffle(latents, patch_size)  # (B, 3, h * p, w * p)
    else:
        images = vae.decode(latents / scale_factor).sample  # (B, 3, H, W) in about [-1, 1]
    return ((images + 1) / 2).clamp(0, 1)


@torch.no_grad()
def encode(vae, images, scale_factor: float):
    """Images (B, 3, H, W) in [0, 1] -> diffusion-space latents (B, C, h, w), deterministically:
    scale_factor * the posterior mean (the reference draws a sample instead)."""
    posterior = vae.encode(images * 2 - 1).latent_dist
    return posterior.mean * scale_factor
