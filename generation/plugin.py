"""The reference generator, registered as `rdm` in the entry-point group `stylevault.generators`."""

from __future__ import annotations

from pathlib import Path

from stylevault.governance.door import Output, Recorder, Request, resolve_guidance
from stylevault.governance.errors import BadInput


class RDMGenerator:
    """Text-guided retrieval-augmented diffusion over a cleared index (stylevault.generation.pipeline)."""

    name = "rdm"

    def load_model(self, path: Path, *, device: str | None = None):
        import torch

        from stylevault.generation.model import load_model

        return load_model(path, device=device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def recommended_guidance(self, model) -> float | None:
        """rdm.json's `sampling.guidance`, when the model's maker recommends one."""
        return (model.config.get("sampling") or {}).get("guidance")

    def generate(self, model, request: Request, index, encoder, recorder: Recorder) -> list[Output]:
        from stylevault.generation.pipeline import RDMPipeline

        return RDMPipeline(model, encoder)(resolve_guidance(self, model, request), index, recorder)

    def import_model(self, fmt: str, source: Path, config: Path | None, out: Path, **options) -> Path:
        if fmt != "compvis":
            raise BadInput(f"model import: unknown format {fmt!r} (known: compvis)")
        if config is None:
            raise BadInput("--config: the CompVis checkpoint's YAML config is required")
        from stylevault.generation.compvis import import_compvis

        return import_compvis(source, config, out, weights=options.get("weights", "ema"))

    def untrained_model(self, out: Path, *, context_dim: int, seed: int = 0) -> Path:
        from stylevault.generation.model import create_untrained, save_model

        return save_model(*create_untrained(context_dim=context_dim, seed=seed), out)
