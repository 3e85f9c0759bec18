"""Image and text encoders (open_clip), named the way open_clip names models, loaded offline.

An encoder is `MODEL@PRETRAINED` (a built-in architecture with a pretrained tag, weights from the
local caches), `hf-hub:ORG/REPO` (from the local Hugging Face cache) or `local-dir:PATH` (a folder in
open_clip's own layout: `open_clip_config.json` + `open_clip_model.safetensors`) or `stylevault:WORLD`
(a world's shipped encoder, e.g. `stylevault:demo`, stylevault.governance.shipped). Nothing is
downloaded unless the caller allows it, and missing weights are an error (open_clip itself would
fall back to random weights with a warning). Its id carries a fingerprint of its weights and
preprocessing, so every index and embedding cache names exactly the encoder that made it.

Embeddings are L2-normalised float32 (B, D). Images come through `imaging.decode`, the same path
ingest uses, then the encoder's own preprocessing.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stylevault.governance.catalogue.store import ArrayCache
from stylevault.governance.door import weights_sha256
from stylevault.governance.errors import BadInput
from stylevault.governance.pictures import imaging
from stylevault.governance.shipped import shipped_model

BATCH_SIZE = 64
LOCAL_DIR = "local-dir:"
HF_HUB = "hf-hub:"
WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def require_generation_extra():
    try:
        import open_clip  # noqa: F401
        import torch  # noqa: F401
        import usearch  # noqa: F401
    except ImportError as exc:
        raise BadInput(
            f"this needs the generation extra ({exc.name} is missing): pip install 'stylevault[generation]'"
        ) from exc


@dataclass(frozen=True)
class EncoderSpec:
    """A parsed `--encoder` value."""

    text: str
    kind: str  # "local-dir", "hf-hub" or "builtin"
    model: str  # folder, repo or architecture name
    pretrained: str | None = None

    @classmethod
    def parse(cls, text: str) -> EncoderSpec:
        forms = "MODEL@PRETRAINED (e.g. ViT-L-14@openai), hf-hub:ORG/REPO, local-dir:PATH or stylevault:WORLD"
        shipped = shipped_model(text, "encoder")
        if shipped is not None:
            return cls(text, "local-dir", str(shipped))
        if text.startswith(LOCAL_DIR):
            folder = text[len(LOCAL_DIR) :]
            if not folder:
                raise BadInput(f"--encoder {text!r}: no folder after local-dir: ({forms})")
            # Recorded absolute: an index names its encoder's spec for every later load, from anywhere.
            absolute = str(Path(folder).expanduser().resolve())
            return cls(LOCAL_DIR + absolute, "local-dir", absolute)
        if text.startswith(HF_HUB):
            repo = text[len(HF_HUB) :]
            if repo.count("/") != 1 or not all(repo.split("/")):
                raise BadInput(f"--encoder {text!r}: expected hf-hub:ORG/REPO ({forms})")
            return cls(text, "hf-hub", repo)
        model, at, tag = text.partition("@")
        if not at or not model or not tag:
            raise BadInput(f"--encoder {text!r}: expected {forms}")
        return cls(text, "builtin", model, tag)

    @property
    def label(self) -> str:
        """A short, machine-independent name: the folder name rather than its absolute path."""
        return Path(self.model).name if self.kind == "local-dir" else self.text


@contextmanager
def _offline(allowed: bool) -> Iterator[None]:
    """Forbid the Hugging Face hub from touching the network unless downloads are allowed."""
    if allowed:
        yield
        return
    from huggingface_hub import constants

    saved_env, saved_flag = os.environ.get("HF_HUB_OFFLINE"), constants.HF_HUB_OFFLINE
    os.environ["HF_HUB_OFFLINE"], constants.HF_HUB_OFFLINE = "1", True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved_flag
        if saved_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = saved_env


def _check_weights_present(spec: EncoderSpec, allow_download: bool) -> None:
    """Say where we looked when weights are not on this machine, before open_clip guesses."""
    hint = "pass --allow-download to fetch them once, or use local-dir:PATH with the weights in it"
    if spec.kind == "local-dir":
        folder = Path(spec.model)
        if not (folder / "open_clip_config.json").is_file():
            raise BadInput(f"--encoder {spec.text}: no open_clip_config.json in {folder}")
        if not any((folder / name).is_file() for name in WEIGHT_FILES):
            raise BadInput(
                f"--encoder {spec.text}: no weights in {folder} (looked for {', '.join(WEIGHT_FILES)})"
            )
        return
    if allow_download:
        return
    from huggingface_hub import constants, try_to_load_from_cache

    if spec.kind == "hf-hub":
        repo, files = spec.model, WEIGHT_FILES
    else:
        import open_clip

        cfg = open_clip.get_pretrained_cfg(spec.model, spec.pretrained)
        if not cfg:
            tags = ", ".join(tag for model, tag in open_clip.list_pretrained() if model == spec.model)
            raise BadInput(
                f"--encoder {spec.text}: no pretrained tag {spec.pretrained!r} for {spec.model}"
                f" (known: {tags or 'none; is the model name right?'})"
            )
        if not cfg.get("hf_hub"):
            target = Path("~/.cache/clip").expanduser() / os.path.basename(cfg.get("url", ""))
            if not target.is_file():
                raise BadInput(f"--encoder {spec.text}: weights not found at {target}; {hint}")
            return
        repo, filename = os.path.split(cfg["hf_hub"])
        files = (filename,) if filename else WEIGHT_FILES
    found = [try_to_load_from_cache(repo, name) for name in files]
    if not any(isinstance(path, str) for path in found):
        raise BadInput(
            f"--encoder {spec.text}: weights not in the local Hugging Face cache "
            f"({constants.HF_HUB_CACHE}, repo {repo}, files {', '.join(files)}); {hint}"
        )


def _weights_shown(spec: EncoderSpec) -> str:
    """The weights file open_clip loads from a local-dir folder (safetensors first), else a phrase."""
    if spec.kind == "local-dir":
        found = [Path(spec.model) / name for name in WEIGHT_FILES if (Path(spec.model) / name).is_file()]
        if found:
            return str(found[0])
    return "its weights file"


class Encoder:
    """A loaded open_clip model in eval mode, with its preprocessing, tokenizer and id."""

    def __init__(self, spec: EncoderSpec, model, preprocess, tokenizer, device: str):
        self.spec = spec
        self.model = model
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.weights_sha256 = weights_sha256(model.state_dict())
        visual = model.visual
        self.preprocess_cfg = {
            "image_size": list(getattr(visual, "image_size", ())),
            "mean": list(getattr(visual, "image_mean", ()) or ()),
            "std": list(getattr(visual, "image_std", ()) or ()),
        }
        fingerprint = hashlib.sha256(
            (self.weights_sha256 + json.dumps(self.preprocess_cfg, sort_keys=True)).encode()
        ).hexdigest()
        self.fingerprint = fingerprint
        # What every index, cache entry and run record names: label plus the fingerprint.
        self.id = f"{spec.label}@sha256:{fingerprint[:16]}"
        with self._inference():
            probe = self.tokenizer(["probe"]).to(device)
            self.dim = int(self.model.encode_text(probe).shape[-1])

    @contextmanager
    def _inference(self):
        import torch

        with torch.inference_mode():
            yield

    def describe(self) -> dict:
        return {
            "id": self.id,
            "spec": self.spec.text,
            "weights_sha256": self.weights_sha256,
            "fingerprint": self.fingerprint,
            "dim": self.dim,
            "preprocess": self.preprocess_cfg,
        }

    def encode_images(self, images: list) -> np.ndarray:
        """PIL RGB images -> (B, D) L2-normalised float32."""
        import torch

        with self._inference():
            batch = torch.stack([self.preprocess(image) for image in images]).to(self.device)
            features = self.model.encode_image(batch, normalize=True)
        return features.float().cpu().numpy()

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Prompts -> (B, D) L2-normalised float32."""
        with self._inference():
            tokens = self.tokenizer(texts).to(self.device)
            features = self.model.encode_text(tokens, normalize=True)
        return features.float().cpu().numpy()


def load_encoder(text: str, *, allow_download: bool = False, device: str | None = None) -> Encoder:
    """Load `--encoder` TEXT from this machine (or, when allowed, download it once)."""
    require_generation_extra()
    import open_clip
    import torch

    spec = EncoderSpec.parse(text)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    with _offline(allow_download):
        _check_weights_present(spec, allow_download)
        name = {"local-dir": LOCAL_DIR + spec.model, "hf-hub": spec.text}.get(spec.kind, spec.model)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                name,
                pretrained=spec.pretrained,
                device=device,
                require_pretrained=True,
                pretrained_text=False,
                # A .bin or .pth is a pickle, and unpickling runs whatever code it names: load only
                # tensors from it (torch.load(weights_only=True)), whatever the installed default.
                weights_only=True,
            )
            tokenizer = open_clip.get_tokenizer(name)
        except pickle.UnpicklingError as exc:
            raise BadInput(
                f"--encoder {spec.text}: refused {_weights_shown(spec)}: a pickle that holds more than "
                "tensors (loading it would run code it names); save the weights as safetensors"
            ) from exc
        except (RuntimeError, ValueError, FileNotFoundError, OSError) as exc:
            raise BadInput(f"--encoder {spec.text}: cannot load it: {str(exc).splitlines()[0]}") from exc
    model.eval()
    return Encoder(spec, model, preprocess, tokenizer, device)


class EmbeddingCache(ArrayCache):
    """Embeddings by (image sha256, encoder fingerprint, imaging.PIXELS_VERSION), in a SQLite file in
    the content store, so a rebuild does not embed an image twice, and pixels decode makes differently
    now (transparency on a contrasting ground) are embedded again. It is a cache: deleting it only
    costs time."""

    def __init__(self, store: Path, encoder: Encoder):
        super().__init__(
            store / "embeddings" / f"{encoder.fingerprint[:32]}-pixels{imaging.PIXELS_VERSION}.sqlite",
            "embedding",
            "vector",
            np.float32,
        )
        self.dim = encoder.dim


def embed(
    encoder: Encoder,
    cache: EmbeddingCache,
    shas: list[str],
    read_image: Callable[[str], object],
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, int]:
    """(N, D) float32 embeddings for `shas`, in order: cached ones read, the rest embedded in
    batches through `read_image(sha256) -> PIL RGB`. Returns the matrix and how many were new."""
    cached = cache.get(shas)
    missing = [sha for sha in dict.fromkeys(shas) if sha not in cached]
    for start in range(0, len(missing), BATCH_SIZE):
        part = missing[start : start + BATCH_SIZE]
        vectors = encoder.encode_images([read_image(sha) for sha in part])
        fresh = dict(zip(part, vectors, strict=True))
        cache.put(fresh)
        cached.update(fresh)
        if progress:
            progress(len(part))
    matrix = np.stack([cached[sha] for sha in shas]) if shas else np.zeros((0, encoder.dim), np.float32)
    return matrix.astype(np.float32, copy=False), len(missing)
