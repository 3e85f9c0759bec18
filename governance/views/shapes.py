"""The read shapes, declared once: an image (a row of the list, and the whole record), a run's
record, an output with its neighbours and review. The CLI's --json, the desk's pages and the HTTP
API all render these; `as_dict()` gives the JSON keys, and the pages read the same attributes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime
from typing import Any


class Shape:
    """A read model: its fields, nested shapes included, as the plain values JSON carries."""

    def as_dict(self) -> dict:
        return asdict(self)  # type: ignore[call-overload]


# ---------------------------------------------------------------- images


@dataclass(frozen=True, slots=True)
class ImageRow(Shape):
    """One image of `images list` and the desk's queue: its licence and its first source."""

    id: int
    sha256: str
    format: str
    width: int
    height: int
    state: str
    first_seen_at: datetime
    spdx: str | None
    licence_raw: str | None
    licence_status: str
    expires_on: date | None
    opt_out: bool
    path: str | None = None
    collection: str | None = None
    title: str | None = None
    sources: int = 0

    def as_dict(self) -> dict:
        # Flat, and a million of them stream through `images list --json`: no deep copy.
        return {name: getattr(self, name) for name in IMAGE_ROW_FIELDS}


IMAGE_ROW_FIELDS = tuple(f.name for f in fields(ImageRow))


@dataclass(frozen=True, slots=True)
class LicenceView(Shape):
    """An image's licence now, and which alias, rule or person produced its SPDX expression."""

    raw: str | None
    spdx: str | None
    status: str
    note: str | None
    attribution: str | None
    evidence: str | None
    verified_by: str | None
    verified_at: datetime | None
    expires_on: date | None
    opt_out: bool
    data_mining: str | None
    via: list[str]


@dataclass(frozen=True, slots=True)
class SourceView(Shape):
    """One place an image was found, with what its licence statement reads as."""

    locator: str
    path: str
    url: str | None
    collection: str | None
    creator: str | None
    title: str | None
    licence_raw: str | None
    licence_spdx: str | None
    licence_status: str
    licence_via: list[str]
    attribution: str | None
    evidence: str | None
    licence_expires: date | None
    opt_out: bool
    retrieved_at: datetime
    metadata: dict


@dataclass(frozen=True, slots=True)
class ImageView(Shape):
    """Everything the catalogue knows about one image (`images show`, the desk's image page)."""

    id: int
    sha256: str
    phash: str
    format: str
    mode: str
    width: int
    height: int
    size_bytes: int
    first_seen_at: datetime
    ingested_by: str | None
    ingest_run: int | None
    state: str
    state_reason: str | None
    state_by: str | None
    state_at: datetime | None
    licence: LicenceView | None
    sources: list[SourceView]
    same_phash: list[dict]
    history: list[dict]


# ---------------------------------------------------------------- runs and outputs


@dataclass(frozen=True, slots=True)
class RunRecord(Shape):
    """What a generation run's outputs share, as written into each sidecar and kept in the catalogue
    (generation_run.record): who, when, the request, the model and the verified index."""

    format: int
    run_id: str
    created_at: str
    actor: str
    generator: str
    prompt: str
    negative: str | None
    seed: int
    steps: int
    guidance: float
    k: int
    sampler: str
    n: int
    model: dict
    index: dict
    catalogue_revision: dict
    plugin_notes: dict

    @classmethod
    def of(cls, record: dict) -> RunRecord:
        """The stored record, refused loudly if it does not have this shape."""
        return cls(**record)


@dataclass(frozen=True, slots=True)
class NeighbourView(Shape):
    """A catalogue image retrieved for an output, as recorded at generation time; `creator`, `title`
    and `source_url` are of the source it is credited to now."""

    rank: int
    image_id: int
    sha256: str
    score: float
    licence: str | None
    attribution: str | None
    obligations: list[str]
    creator: str | None = None
    title: str | None = None
    source_url: str | None = None


@dataclass(frozen=True, slots=True)
class OutputView(Shape):
    """One output in full (`provenance show`, `outputs show`, the desk's run page): its run's record,
    its file, every neighbour, whether the index is still clean, and where it stands in review.

    As JSON it is the run's record with the output's own keys over it (the sidecar's layout), plus
    the output's catalogue id, path and hash at the top for `outputs show`."""

    output_id: int
    run: RunRecord
    ordinal: int
    seed: int
    file: str
    path: str
    sha256: str
    pixels_sha256: str
    neighbours: list[NeighbourView]
    index_now: dict
    review: dict | None
    scores: dict | None
    decisions: list[dict] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def prompt(self) -> str:
        return self.run.prompt

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.run.as_dict(),
            "output_id": self.output_id,
            "ordinal": self.ordinal,
            "seed": self.seed,
            "path": self.path,
            "sha256": self.sha256,
            "output": {
                "file": self.file,
                "path": self.path,
                "sha256": self.sha256,
                "pixels_sha256": self.pixels_sha256,
            },
            "neighbours": [n.as_dict() for n in self.neighbours],
            "index_now": self.index_now,
            "review": self.review,
            "scores": self.scores,
            "decisions": self.decisions,
        }
