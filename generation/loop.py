"""What the demo trainer's two loops share: progress, EMA weights, checkpoints, the learning-rate
schedule, the loop itself and the record a model card carries.

Checkpoints go to OUT.ckpt/ every `checkpoint_every` steps; `resume=True` carries on from there.
"""

from __future__ import annotations

import json
import math
import pickle
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from stylevault.generation.options import Options
from stylevault.governance.errors import BadInput


class Progress:
    """A rich progress bar with the running loss, or nothing; a line every 50 steps into a log."""

    def __init__(self, enabled: bool, what: str, total: int, done: int):
        self.bar = None
        self.what, self.total, self.done, self.began = what, total, done, time.monotonic()
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn(f"[bold]{what}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}"),
                TimeRemainingColumn(),
            )
            self.task = self.bar.add_task(what, total=total, completed=done, loss=float("nan"))
            self.bar.start()

    def step(self, loss: float) -> None:
        self.done += 1
        if self.bar:
            self.bar.update(self.task, advance=1, loss=loss)
            if not self.bar.console.is_terminal and self.done % 50 == 0:
                seconds = time.monotonic() - self.began
                print(
                    f"{self.what}: step {self.done}/{self.total} loss {loss:.4f} {seconds:.0f}s", flush=True
                )

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


class EMA:
    """Exponential moving average of the weights, with the usual warm-up (decay grows with steps)."""

    def __init__(self, module, decay: float):
        self.decay = decay
        self.shadow = {name: t.detach().clone().float() for name, t in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                self.shadow[name].mul_(decay).add_(tensor.float(), alpha=1 - decay)
            else:
                self.shadow[name].copy_(tensor)


class Checkpoint:
    """OUT.ckpt/state.pt: weights, EMA, optimiser, step and random states, written atomically."""

    def __init__(self, out: Path):
        self.folder = out.parent / f"{out.name}.ckpt"
        self.file = self.folder / "state.pt"

    def save(self, step: int, module, ema: EMA, optimiser, extra: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {
            "step": step,
            "module": module.state_dict(),
            "ema": ema.shadow,
            "optimiser": optimiser.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
            "extra": extra,
        }
        partial = self.file.with_suffix(".partial")
        torch.save(state, partial)
        partial.replace(self.file)

    def load(self, module, ema: EMA, optimiser, extra: dict) -> int:
        if not self.file.is_file():
            raise BadInput(f"--resume: no checkpoint at {self.file}")
        # weights_only: the unpickler admits tensors and plain containers only, so a planted
        # state.pt cannot run code; python_rng's tuples of ints and `extra`'s strings are plain data.
        try:
            state = torch.load(self.file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            said = [line.strip() for line in str(exc).splitlines() if "Unsupported" in line]
            raise BadInput(
                f"--resume: {self.file} holds more than tensors and plain data and was refused unread"
                f"{' (' + said[0] + ')' if said else ''}; delete it and start afresh"
            ) from None
        except (EOFError, RuntimeError, ValueError) as exc:
            message = f"--resume: {self.file} is not a readable checkpoint ({exc}); start afresh"
            raise BadInput(message) from None
        if state["extra"] != extra:
            raise BadInput(f"--resume: {self.file} was made for other data or settings; start afresh")
        module.load_state_dict(state["module"])
        ema.shadow = state["ema"]
        optimiser.load_state_dict(state["optimiser"])
        torch.set_rng_state(state["torch_rng"])
        random.setstate(state["python_rng"])
        return int(state["step"])


def learning_rate(options: Options, step: int) -> float:
    """Linear warm-up over the first 5% of steps, then cosine decay to a tenth."""
    warm = max(1, options.steps // 20)
    if step < warm:
        return options.lr * (step + 1) / warm
    done = (step - warm) / max(1, options.steps - warm)
    return options.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done)))


@dataclass
class Fitted:
    """What a finished loop leaves: the EMA weights and what the model card records of the run."""

    ema: EMA
    start: int  # the step it resumed at (0: from scratch)
    loss: float  # the last step's
    seconds: float


def fit(
    module,
    optimiser,
    loss_at: Callable[[int], torch.Tensor],
    *,
    options: Options,
    out: Path,
    what: str,
    extra: dict,
    progress: bool,
    clip_grad: float | None = None,
    after_step: Callable[[], None] | None = None,
) -> Fitted:
    """Run `options.steps` optimiser steps of `loss_at(step)` on `module` (resuming from OUT.ckpt/
    when asked, checkpointing every `checkpoint_every`), keeping an EMA of the weights."""
    ema = EMA(module, options.ema_decay)
    checkpoint = Checkpoint(out)
    start = checkpoint.load(module, ema, optimiser, extra) if options.resume else 0
    bar = Progress(progress, what, options.steps, start)
    began = time.monotonic()
    loss = torch.tensor(float("nan"))
    try:
        for step in range(start, options.steps):
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(options, step)
            loss = loss_at(step)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(module.parameters(), clip_grad)
            optimiser.step()
            if after_step is not None:
                after_step()
            ema.update(module, step)
            bar.step(loss.item())
            if (step + 1) % options.checkpoint_every == 0 and step + 1 < options.steps:
                checkpoint.save(step + 1, module, ema, optimiser, extra)
    finally:
        bar.close()
    return Fitted(ema, start, loss.item(), time.monotonic() - began)


def training_record(options: Options, device: str, fitted: Fitted, members: int) -> dict:
    return {
        "steps": options.steps,
        "resumed_at": fitted.start,
        "batch_size": options.batch_size,
        "lr": options.lr,
        "seed": options.seed,
        "ema_decay": options.ema_decay,
        "device": device,
        "torch": torch.__version__,
        "seconds": round(fitted.seconds, 1),
        "final_loss": round(fitted.loss, 5),
        "members": members,
    }


def card(kind: str, provenance: dict, training: dict) -> str:
    return (
        f"## Trained by stylevault ({kind})\n\n"
        "Trained on a cleared index build; the data it saw is exactly that index's members:\n\n"
        f"```json\n{json.dumps({'trained_on': provenance, 'training': training}, indent=2, sort_keys=True)}"
        "\n```\n"
    )


def check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BadInput(f"--out {out}: exists and is not empty; will not overwrite")
    if not out.parent.is_dir():
        raise BadInput(f"--out {out}: folder {out.parent} does not exist")


def start(options: Options) -> str:
    """Seed torch and Python's random from the options; returns the device to train on."""
    torch.manual_seed(options.seed)
    random.seed(options.seed)
    return options.pick_device()


def pixels(data, read_as) -> torch.Tensor:
    """Every member through `read_as` (a PIL image -> (C, H, W) tensor), stacked in index order."""
    return torch.stack([read_as(data.read(item.sha256)) for item in data.items])
