"""The demo trainer, registered as `demo` in the entry-point group `stylevault.trainers`: it trains
the demo world's encoder (`clip`, stylevault.generation.train_clip) and RDM (`rdm`,
stylevault.generation.train) on the door's `TrainingSet`."""

from __future__ import annotations

from pathlib import Path

from stylevault.generation.model import load_model
from stylevault.generation.options import ClipOptions, RDMOptions
from stylevault.generation.train import train_rdm
from stylevault.generation.train_clip import train_clip
from stylevault.governance.door import Trainer, TrainingSet
from stylevault.governance.errors import BadInput


class DemoTrainer(Trainer):
    name = "demo"
    options = {"clip": ClipOptions, "rdm": RDMOptions}

    def train(self, kind: str, data: TrainingSet, out: Path, options, *, progress: bool) -> dict:
        if kind == "clip":
            trained = train_clip(data, out, options, progress=progress)
            return {"encoder": f"local-dir:{out}", **trained}
        if kind == "rdm":
            encoder = data.encoder(options.pick_device())
            trained = train_rdm(data, encoder, out, options, progress=progress)
            model = load_model(out)
            return {"model_id": model.model_id, "weights_sha256": model.weights_sha256, **trained}
        raise BadInput(f"train: the demo trainer trains {', '.join(self.options)}, not {kind!r}")
