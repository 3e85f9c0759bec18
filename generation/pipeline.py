"""The text-guided retrieval-augmented diffusion pipeline (Blattmann et al. 2022, arXiv 2207.13038).

prompt → CLIP text embedding, L2-normalised (1, D) → the k nearest cleared images of the index →
context [text token; k neighbour embeddings, most similar first] (B, 1 + k, D) → latent denoising
with classifier-free guidance (unconditional branch: an all-zero context of the same shape, or the
negative prompt's token followed by zeros) → decode. The neighbour embeddings come from the index's
exact vector file. Seeded per image, so image i of a run depends only on (seed + i) and the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from stylevault.generation.model import RDMModel
from stylevault.generation.sampling import decode, guided, make_scheduler, sample
from stylevault.governance.door import Encoder, Index, Neighbour, Output, Recorder, Request
from stylevault.governance.errors import BadInput, Refused


def _unit(vectors: torch.Tensor) -> torch.Tensor:
    return vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)


@dataclass
class RDMPipeline:
    model: RDMModel
    encoder: Encoder  # the index's own

    @torch.no_grad()
    def __call__(self, request: Request, index: Index, recorder: Recorder) -> list[Output]:
        """`request` is settled (guidance and sampler named)."""
        model, config = self.model, self.model.config
        device = next(model.unet.parameters()).device
        dtype = next(model.unet.parameters()).dtype

        # 1. Check inputs: the model's context width is the encoder's embedding width.
        if config["context_dim"] != self.encoder.dim:
            raise BadInput(
                f"--model {model.path}: context_dim {config['context_dim']} does not fit the index's encoder "
                f"{self.encoder.id} ({self.encoder.dim} dims)"
            )
        trained_with = config.get("encoder_id")
        if trained_with and trained_with != self.encoder.id:
            raise Refused(
                f"--model {model.path} was trained with encoder {trained_with}, the index uses "
                f"{self.encoder.id}"
            )
        batch, k = request.n, request.k

        # 2. Encode the prompt: (1, D) L2-normalised float32.
        query = self.encoder.encode_texts([request.prompt])
        text = torch.from_numpy(query)[:, None, :].expand(batch, 1, -1)  # (B, 1, D)

        # 3. Retrieve the k nearest cleared images; their exact embeddings from the vector file.
        if k:
            ids, scores = index.search(query, k)  # (1, k) image ids and cosine scores
            neighbour_embeds = _unit(torch.from_numpy(index.vectors(ids)))  # (1, k, D)
            neighbour_embeds = neighbour_embeds.expand(batch, k, -1)  # (B, k, D)
            neighbours = [Neighbour(rank + 1, int(ids[0, rank]), float(scores[0, rank])) for rank in range(k)]
        else:
            neighbour_embeds = text.new_zeros(batch, 0, text.shape[-1])
            neighbours = []

        # 4. Context (B, 1 + k, D), and the unconditional branch of the same shape.
        context = torch.cat([text, neighbour_embeds], dim=1).to(device, dtype)
        if request.negative:
            negative = torch.from_numpy(self.encoder.encode_texts([request.negative]))[:, None, :]
            uncond = torch.cat([negative.expand(batch, 1, -1), torch.zeros_like(neighbour_embeds)], dim=1)
            uncond = uncond.to(device, dtype)
        else:
            uncond = torch.zeros_like(context)

        # 5. Starting noise, one generator per image: (B, C, H, W).
        shape = (1, config["latent_channels"], config["latent_size"], config["latent_size"])
        seeds = [request.seed + i for i in range(batch)]
        x_T = torch.cat([torch.randn(shape, generator=torch.Generator("cpu").manual_seed(s)) for s in seeds])
        x_T = x_T.to(device, dtype)

        # 6. Denoise with classifier-free guidance.
        scheduler = make_scheduler(model.scheduler_config, request.sampler)
        latents = sample(
            guided(model.unet, request.guidance), scheduler, x_T, context, uncond, steps=request.steps
        )

        # 7. Decode to images in [0, 1] and hand them back with their neighbours.
        images = decode(model.vae, latents, config["scale_factor"], patch_size=config.get("patch_size", 1))
        pixels = (images.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        recorder.note("device", str(device))
        recorder.note("dtype", str(dtype).removeprefix("torch."))
        recorder.note("latent_shape", list(shape[1:]))
        return [
            Output(Image.fromarray(np.ascontiguousarray(pixels[i]), "RGB"), seeds[i], list(neighbours))
            for i in range(batch)
        ]
