"""The generation plugin boundary: what a generator is given, what it returns, how it is found.

governance declares the interface and never imports a generator; implementations register under
the entry-point group `stylevault.generators` (ours is `rdm`, in the `generation` package), so a
third party can ship another. A generator is handed a verified, read-only `IndexHandle`, the index's
own encoder and a `Recorder` for the parameters it wants on record; it returns images plus the
neighbours each one was conditioned on. The core writes the run record (DESIGN.md rule 8): a plugin
has no other way to write the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from stylevault.governance.errors import BadInput

GROUP = "stylevault.generators"
DEFAULT = "rdm"


DEFAULT_GUIDANCE = 5.0  # the reference RDM's scale, for a model that recommends none


def resolve_guidance(plugin, model, request: Request) -> Request:
    """The request with its guidance settled: as asked, else the model's recommendation (a plugin's
    `recommended_guidance(model)`, when it has one), else DEFAULT_GUIDANCE."""
    if request.guidance is not None:
        return request
    recommend = getattr(plugin, "recommended_guidance", None)
    guidance = recommend(model) if recommend is not None else None
    return replace(request, guidance=float(DEFAULT_GUIDANCE if guidance is None else guidance))


@dataclass(frozen=True)
class Request:
    """One `stylevault generate` call, checked by the core before any plugin sees it."""

    prompt: str
    negative: str | None = None
    seed: int = 0
    steps: int = 50
    guidance: float | None = None  # None: the model's recommended guidance (see resolve_guidance)
    k: int = 10
    sampler: str = "ddim"
    n: int = 1

    def check(self, members: int) -> None:
        if not self.prompt.strip():
            raise BadInput("PROMPT: empty")
        if not 0 <= self.k <= min(members, 64):
            raise BadInput(f"--k: must be between 0 and {min(members, 64)} (the index has {members} members)")
        if not 1 <= self.steps <= 1000:
            raise BadInput(f"--steps: must be between 1 and 1000, got {self.steps}")
        if self.guidance is not None and not 1.0 <= self.guidance <= 30.0:
            raise BadInput(f"--guidance: must be between 1.0 (no guidance) and 30.0, got {self.guidance}")
        if not 1 <= self.n <= 64:
            raise BadInput(f"-n: must be between 1 and 64, got {self.n}")
        if not 0 <= self.seed < 2**63:
            raise BadInput(f"--seed: must be between 0 and 2**63 - 1, got {self.seed}")

    def parameters(self) -> dict:
        return {
            "negative": self.negative,
            "seed": self.seed,
            "steps": self.steps,
            "guidance": self.guidance,
            "k": self.k,
            "sampler": self.sampler,
            "n": self.n,
        }


@dataclass(frozen=True)
class Neighbour:
    """One retrieved image that conditioned an output: rank 1 is the most similar."""

    rank: int
    image_id: int
    score: float  # cosine similarity between the query and the image's embedding


@dataclass
class Output:
    image: Any  # PIL.Image, RGB
    seed: int  # the seed this image's starting noise was drawn from
    neighbours: list[Neighbour]


@dataclass
class Recorder:
    """What a plugin may add to the run record: named parameters (scheduler config, device...)."""

    notes: dict[str, Any] = field(default_factory=dict)

    def note(self, key: str, value: Any) -> None:
        self.notes[key] = value


class LoadedModel(Protocol):
    model_id: str  # names the weights: includes their sha256
    weights_sha256: str
    path: Path


class Generator(Protocol):
    name: str

    def load_model(self, path: Path, *, device: str | None = None) -> LoadedModel: ...

    def generate(
        self, model: LoadedModel, request: Request, index, encoder, recorder: Recorder
    ) -> list[Output]:
        """`index` is a verified `IndexHandle`; `encoder` is the index's own encoder."""
        ...

    def import_model(self, fmt: str, source: Path, config: Path | None, out: Path, **options) -> Path: ...

    def untrained_model(self, out: Path, *, context_dim: int, seed: int = 0) -> Path:
        """A small model of this generator's family with seeded random weights, for demos and tests."""
        ...


def available() -> dict[str, Any]:
    return {entry.name: entry for entry in entry_points(group=GROUP)}


def load(name: str = DEFAULT) -> Generator:
    """The generator registered as `name`; a clear error when none is installed."""
    found = available()
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise BadInput(
            f"no generator {name!r} in entry-point group {GROUP} (installed: {known}); "
            "install stylevault with the generation extra: pip install 'stylevault[generation]'"
        )
    factory = found[name].load()
    return factory()
