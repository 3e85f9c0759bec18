"""The reference generator, registered as `rdm` in the entry-point group `stylevault.generators`."""

from __future__ import annotations

from pathlib import Path

from stylevault.generation.compvis import import_compvis
from stylevault.generation.model import RDMModel, load_model
from stylevault.generation.pipeline import RDMPipeline
from stylevault.generation.sampling import SAMPLERS
from stylevault.governance.door import Encoder, Generator, Index, Output, Recorder, Request, settle
from stylevault.governance.errors import BadInput


class RDMGenerator(Generator):
    """Text-guided retrieval-augmented diffusion over a cleared index (stylevault.generation.pipeline)."""

    name = "rdm"
    samplers = SAMPLERS
    default_guidance = 5.0  # the reference RDM's scale (CompVis knn2img.py), for a model that recommends none

    def load_model(self, path: Path, *, device: str | None = None) -> RDMModel:
        import torch

        return load_model(path, device=device or ("cuda" if torch.cuda.is_available() else "cpu"))

    def recommended_guidance(self, model: RDMModel) -> float:
        """rdm.json's `sampling.guidance`, when the model's maker recommends one."""
        guidance = (model.config.get("sampling") or {}).get("guidance")
        return self.default_guidance if guidance is None else float(guidance)

    def generate(
        self, model: RDMModel, request: Request, index: Index, encoder: Encoder, recorder: Recorder
    ) -> list[Output]:
        return RDMPipeline(model, encoder)(settle(self, model, request), index, recorder)

    def import_model(self, fmt: str, source: Path, config: Path | None, out: Path, **options) -> Path:
        if fmt != "compvis":
            raise BadInput(f"model import: unknown format {fmt!r} (known: compvis)")
        if config is None:
            raise BadInput("--config: the CompVis checkpoint's YAML config is required")
        return import_compvis(source, config, out, weights=options.get("weights", "ema"))
