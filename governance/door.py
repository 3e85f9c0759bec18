"""The plugin door: every extension point stylevault has, declared once, and the one loader.

governance declares these and never imports an implementation; implementations register under an
entry-point group, so a third party can ship another:

- a **generator** (`stylevault.generators`, ours `rdm`) turns a request and a verified, read-only
  index into images plus the neighbours each one was conditioned on;
- a **trainer** (`stylevault.trainers`, ours `demo`) trains a model on a cleared index;
- a **world** (`stylevault.worlds`, ours `demo`) renders licence-clean collections and ships the
  models trained on them.

What a plugin needs from the core is handed to it through the types below: the index's own
`Encoder`, the verified `Index`, a `Recorder` for what it wants on record and, to a trainer, a
`TrainingSet` whose `read` returns member images only, their bytes checked against their sha256.
The core writes every record (DESIGN.md rule 8): a plugin has no other way to write the catalogue.

An optional hook has its default here: a plugin that subclasses its Protocol inherits it, and
`load` refuses a plugin that lacks a member of its Protocol, naming it (datasette's hookspecs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from stylevault.governance.errors import BadInput

# ---------------------------------------------------------------- what the core hands a plugin


class Encoder(Protocol):
    """An index's own CLIP encoder (stylevault.governance.index.encoders.Encoder)."""

    id: str  # label@sha256:FINGERPRINT, as every index and run record names it
    dim: int
    weights_sha256: str

    def encode_texts(self, texts: list[str]) -> Any:
        """Prompts -> (B, D) L2-normalised float32 numpy array."""
        ...

    def encode_images(self, images: list) -> Any:
        """PIL RGB images -> (B, D) L2-normalised float32 numpy array."""
        ...


class Index(Protocol):
    """A verified, read-only index (stylevault.governance.index.handle.IndexHandle)."""

    folder: Path
    manifest: dict
    encoder_id: str

    def __len__(self) -> int: ...

    def search(self, query: Any, k: int) -> tuple[Any, Any]:
        """query (B, D) -> (image ids (B, k) int64, cosine scores (B, k)), nearest first."""
        ...

    def vectors(self, image_ids: Any) -> Any:
        """image ids (B, k) -> their exact embeddings (B, k, D) float32, from the vector file."""
        ...


@dataclass
class Recorder:
    """What a plugin may add to the run record: named parameters (scheduler config, device...)."""

    notes: dict[str, Any] = field(default_factory=dict)

    def note(self, key: str, value: Any) -> None:
        self.notes[key] = value


def weights_sha256(state_dict) -> str:
    """How weights are named on record, by encoders and models alike: sha256 over every tensor in
    name order (name, dtype, shape, bytes), the same whatever file format or path they came from."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- generators


@dataclass(frozen=True)
class Request:
    """One `stylevault generate` call, checked by the core before any plugin sees it; `settle` fills
    what it leaves to the generator (guidance, sampler)."""

    prompt: str
    negative: str | None = None
    seed: int = 0
    steps: int = 50
    guidance: float | None = None  # None: the generator's recommendation for the model
    k: int = 10
    sampler: str | None = None  # None: the generator's first sampler
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


class LoadedModel(Protocol):
    model_id: str  # names the weights: includes their sha256
    weights_sha256: str
    path: Path


@runtime_checkable
class Generator(Protocol):
    """Turns a request and a verified index into images (DESIGN.md, generation plugin contract)."""

    name: str
    samplers: tuple[str, ...]  # what `--sampler` accepts; the first is the default
    default_guidance: float  # the guidance scale for a model that recommends none

    def load_model(self, path: Path, *, device: str | None = None) -> LoadedModel:
        """The model folder at `path`, from local files only."""
        ...

    def generate(
        self, model: LoadedModel, request: Request, index: Index, encoder: Encoder, recorder: Recorder
    ) -> list[Output]:
        """`request.n` images, each with the `request.k` neighbours it was conditioned on; `index` is
        verified and `encoder` is its own. The request is settled (see `settle`)."""
        ...

    def import_model(self, fmt: str, source: Path, config: Path | None, out: Path, **options) -> Path:
        """Convert a checkpoint of format `fmt` (e.g. "compvis") into a model folder at `out`."""
        ...

    def recommended_guidance(self, model: LoadedModel) -> float:
        """The guidance scale for `model` when the request names none (optional: the default)."""
        return self.default_guidance


def settle(plugin: Generator, model: LoadedModel, request: Request) -> Request:
    """The request with what it left open settled by the generator: the guidance (its recommendation
    for the model) and the sampler (its first); a sampler it does not have is refused."""
    sampler = request.sampler or plugin.samplers[0]
    if sampler not in plugin.samplers:
        raise BadInput(f"--sampler: {sampler!r} is not one of {', '.join(plugin.samplers)}")
    guidance = request.guidance
    if guidance is None:
        guidance = float(plugin.recommended_guidance(model))
    return replace(request, sampler=sampler, guidance=guidance)


# ---------------------------------------------------------------- trainers


@dataclass(frozen=True)
class Item:
    """One member of the index, in index order."""

    image_id: int
    sha256: str
    phash: str  # 16 hex digits, for near-duplicate checks
    metadata: dict  # the manifest row of its first source (unknown columns included)


@dataclass
class TrainingSet:
    """What a trainer is handed: a verified cleared index, its members with their source metadata,
    `read(sha256) -> PIL RGB image` for members only (bytes checked against the sha256, no path
    given out), `encoder(device)` for the index's own encoder, and the provenance to write into the
    model's card."""

    handle: Index
    items: list[Item]
    read: Callable[[str], Any]
    encoder: Callable[[str | None], Encoder]
    provenance: dict

    def metadata(self, field: str) -> list[str]:
        """One source-metadata value per member, in index order; a member without it is an error."""
        values = []
        for item in self.items:
            value = item.metadata.get(field)
            if not isinstance(value, str) or not value.strip():
                raise BadInput(
                    f"image {item.image_id}: its source metadata has no {field!r}, which training needs"
                )
            values.append(value)
        return values


@dataclass
class TrainingOptions:
    """What every trainer's options carry, whatever the kind: where it runs, and whether it carries
    on from its last checkpoint. A kind's options dataclass extends it."""

    device: str | None = field(
        default=None, metadata={"help": "cpu or cuda (default: cuda when there is one)."}
    )
    resume: bool = field(
        default=False, metadata={"help": "Carry on from the last checkpoint (same data, same steps)."}
    )


@runtime_checkable
class Trainer(Protocol):
    """Trains models on a cleared index. Each kind it trains declares its options as a dataclass
    extending `TrainingOptions` (`options[kind]`): the CLI renders one option per field (help from
    `field.metadata["help"]`), the core builds the dataclass and hands it to `train`."""

    name: str
    options: dict[str, type]  # kind -> its options dataclass, in the order the CLI lists them

    def train(self, kind: str, data: TrainingSet, out: Path, options: Any, *, progress: bool) -> dict:
        """Train a model of `kind` on `data` into the new folder `out`. Returns `path` and `training`
        (what the card records) and either `model_id` and `weights_sha256`, or `encoder`: the spec
        of the trained encoder, which the core loads to name it as an index would."""
        ...


# ---------------------------------------------------------------- worlds


@dataclass(frozen=True)
class Recipe:
    """How a world's shipped models are trained: an encoder of kind `encoder`, then (on an index
    built with it) a model of kind `model`, by `trainer`, with these options for each kind."""

    trainer: str
    encoder: str
    model: str
    options: dict[str, dict]  # kind -> options for its dataclass
    per_content: int = 1  # images of each content in each training style


@runtime_checkable
class World(Protocol):
    """A procedural, licence-clean world: collections rendered on demand and the models shipped for
    it, reachable from any folder as `stylevault:NAME` (stylevault.governance.shipped)."""

    name: str
    styles: tuple[str, ...]
    held_out: tuple[str, ...]  # styles no shipped model saw in training
    training_styles: tuple[str, ...]
    contents: tuple[str, ...]  # content captions
    recipe: Recipe

    def write(
        self, folder: Path, styles, *, per_content: int = 1, seed: int = 0, contents=None
    ) -> list[dict]:
        """Render every content (or the named content captions) in `styles` under `folder`; returns
        manifest rows (path, title, caption, content_caption, style and the parts of both)."""
        ...

    def models(self) -> dict[str, Path]:
        """The shipped models: `encoder` (an open_clip local-dir) and `rdm` (a generator's folder)."""
        ...

    def untrained_encoder(self, folder: Path, seed: int = 0) -> Path:
        """A tiny encoder with seeded random weights in `folder` (open_clip local-dir): what the first
        index of a world is built with, before an encoder is trained on it."""
        ...

    def running(self) -> AbstractContextManager:
        """The setting the world's tiny models run best in (optional: none)."""
        return nullcontext()


# ---------------------------------------------------------------- the one loader

P = TypeVar("P")


@dataclass(frozen=True)
class ExtensionPoint(Generic[P]):
    group: str  # the entry-point group
    protocol: type[P]
    what: str  # for messages
    default: str


GENERATORS = ExtensionPoint("stylevault.generators", Generator, "generator", "rdm")
TRAINERS = ExtensionPoint("stylevault.trainers", Trainer, "trainer", "demo")
WORLDS = ExtensionPoint("stylevault.worlds", World, "demo world", "demo")


def available(point: ExtensionPoint = GENERATORS) -> list[str]:
    """The names installed in the point's entry-point group, sorted."""
    return sorted(entry.name for entry in entry_points(group=point.group))


def load(point: ExtensionPoint[P], name: str | None = None) -> P:
    """The plugin registered as `name` (default: the point's own), checked against its Protocol; a
    clear one-line error when none is installed or it lacks a declared member."""
    name = name or point.default
    found = {entry.name: entry for entry in entry_points(group=point.group)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise BadInput(
            f"no {point.what} {name!r} in entry-point group {point.group} (installed: {known}); "
            "install stylevault with the generation extra: pip install 'stylevault[generation]'"
        )
    plugin = found[name].load()()
    if not isinstance(plugin, point.protocol):
        missing = [member for member in _members(point.protocol) if not hasattr(plugin, member)]
        raise BadInput(
            f"{point.what} {name!r} ({found[name].value}) lacks {', '.join(missing)} of the "
            f"{point.protocol.__name__} protocol (subclass it to inherit the optional hooks)"
        )
    return plugin


def _members(protocol: type) -> list[str]:
    """The members a Protocol declares: its annotated attributes and its methods."""
    names: set[str] = set()
    for base in protocol.__mro__:
        if base in (Protocol, Generic, object):
            continue
        names |= set(getattr(base, "__annotations__", {}))
        names |= {name for name, value in vars(base).items() if callable(value) and not name.startswith("_")}
    return sorted(names)
