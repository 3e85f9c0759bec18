"""The tables of what is made from the catalogue: index builds with their members and the policy texts
they were judged by, generation runs, their outputs and neighbours, and each output's scores and
sign-off decisions. Declared beside models.py, whose constraints and helpers they share."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from stylevault.governance.catalogue.models import (
    JSON_VALUE,
    OUTPUT_ACTIONS,
    OUTPUT_STATES,
    SCORE_STATUSES,
    check_in,
    utcnow,
)

INDEX_SEARCH_KINDS = ("exact", "hnsw")


class IndexBuild(SQLModel, table=True):
    """A usearch index built from the cleared members of one style-set version under one policy.

    Everything but its staleness is fixed at build time; a stale index stays stale (rebuild it)."""

    __tablename__ = "index_build"
    __table_args__ = (
        sa.CheckConstraint("members >= 1", name="members"),
        sa.CheckConstraint(check_in("search", INDEX_SEARCH_KINDS), name="search"),
        sa.CheckConstraint(
            "length(manifest_sha256) = 64 AND length(policy_sha256) = 64"
            " AND length(encoder_weights_sha256) = 64",
            name="hash_lengths",
        ),
        sa.CheckConstraint(
            "NOT stale OR (stale_reason IS NOT NULL AND stale_at IS NOT NULL)", name="stale_why"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    index_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False, unique=True))
    path: str = Field(sa_type=sa.Text, nullable=False)
    styleset_version_id: int = Field(foreign_key="styleset_version.id", nullable=False, index=True)
    policy: str = Field(sa_type=sa.String(100), nullable=False)
    policy_sha256: str = Field(sa_type=sa.String(64), nullable=False)
    encoder_id: str = Field(sa_type=sa.String(300), nullable=False)
    encoder_weights_sha256: str = Field(sa_type=sa.String(64), nullable=False)
    manifest_sha256: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    members: int = Field(nullable=False)
    search: str = Field(sa_type=sa.String(16), nullable=False)
    built_by: int = Field(foreign_key="actor.id", nullable=False)
    built_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    stale: bool = Field(default=False, nullable=False)
    stale_reason: str | None = Field(default=None, sa_type=sa.Text)
    stale_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


class PolicyText(SQLModel, table=True):
    """The exact bytes of a policy file an index was built under, by their sha256: a build is judged
    later by what it was built under, whatever file of that name a caller's search path finds."""

    __tablename__ = "policy_text"
    __table_args__ = (sa.CheckConstraint("length(sha256) = 64", name="sha256_length"),)

    sha256: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    name: str = Field(sa_type=sa.String(100), nullable=False)
    text: str = Field(sa_type=sa.Text, nullable=False)
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class IndexMember(SQLModel, table=True):
    """Which images an index holds, at which row: what a revocation looks up."""

    __tablename__ = "index_member"
    __table_args__ = (sa.UniqueConstraint("build_id", "position"),)

    build_id: int = Field(foreign_key="index_build.id", primary_key=True)
    image_id: int = Field(foreign_key="image.id", primary_key=True, index=True)
    position: int = Field(nullable=False)


class GenerationRun(SQLModel, table=True):
    """One `stylevault generate` call: everything needed to say where its outputs came from and to
    make them again (DESIGN.md rule 8)."""

    __tablename__ = "generation_run"
    __table_args__ = (
        sa.CheckConstraint("n >= 1 AND steps >= 1 AND k >= 0", name="counts"),
        sa.CheckConstraint(
            "length(manifest_sha256) = 64 AND length(model_weights_sha256) = 64", name="hashes"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False, unique=True))
    actor_id: int = Field(foreign_key="actor.id", nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    generator: str = Field(sa_type=sa.String(100), nullable=False)
    prompt: str = Field(sa_type=sa.Text, nullable=False)
    negative: str | None = Field(default=None, sa_type=sa.Text)
    seed: int = Field(sa_type=sa.BigInteger, nullable=False)
    sampler: str = Field(sa_type=sa.String(32), nullable=False)
    steps: int = Field(nullable=False)
    guidance: float = Field(nullable=False)
    k: int = Field(nullable=False)
    n: int = Field(nullable=False)
    model_id: str = Field(sa_type=sa.String(200), nullable=False)
    model_weights_sha256: str = Field(sa_type=sa.String(64), nullable=False)
    model_path: str = Field(sa_type=sa.Text, nullable=False)
    index_build_id: int = Field(foreign_key="index_build.id", nullable=False, index=True)
    manifest_sha256: str = Field(sa_type=sa.String(64), nullable=False)
    encoder_id: str = Field(sa_type=sa.String(300), nullable=False)
    out_dir: str = Field(sa_type=sa.Text, nullable=False)
    # The record shared by the run's outputs, as written into each sidecar (views.shapes.RunRecord).
    record: dict = Field(sa_type=JSON_VALUE, nullable=False)


class GenerationOutput(SQLModel, table=True):
    """One image a run wrote, found again by its file hash or by the hash of its pixels (which
    survives stripped metadata)."""

    __tablename__ = "generation_output"
    __table_args__ = (
        sa.UniqueConstraint("run_id", "ordinal"),
        sa.CheckConstraint("length(sha256) = 64 AND length(pixels_sha256) = 64", name="hashes"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="generation_run.id", nullable=False)
    ordinal: int = Field(nullable=False)
    seed: int = Field(sa_type=sa.BigInteger, nullable=False)
    path: str = Field(sa_type=sa.Text, nullable=False)
    sha256: str = Field(sa_type=sa.String(64), nullable=False, index=True)
    pixels_sha256: str = Field(sa_type=sa.String(64), nullable=False, index=True)


class OutputNeighbour(SQLModel, table=True):
    """A catalogue image retrieved to condition an output, as it was at generation time."""

    __tablename__ = "output_neighbour"
    __table_args__ = (sa.CheckConstraint("rank >= 1", name="rank"),)

    output_id: int = Field(foreign_key="generation_output.id", primary_key=True)
    rank: int = Field(primary_key=True)
    image_id: int = Field(foreign_key="image.id", nullable=False, index=True)
    sha256: str = Field(sa_type=sa.String(64), nullable=False)
    score: float = Field(nullable=False)
    licence: str | None = Field(default=None, sa_type=sa.Text)
    attribution: str | None = Field(default=None, sa_type=sa.Text)
    obligations: list = Field(sa_type=JSON_VALUE, nullable=False)


class OutputReview(SQLModel, table=True):
    """Where an output stands in review now: every output starts pending and counts as released only
    after a person signs it off (its history is in output_decision and the audit chain)."""

    __tablename__ = "output_review"
    __table_args__ = (sa.CheckConstraint(check_in("state", OUTPUT_STATES), name="state"),)

    output_id: int = Field(foreign_key="generation_output.id", primary_key=True)
    state: str = Field(default="pending", sa_type=sa.String(10), nullable=False, index=True)
    flagged: bool = Field(default=False, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    updated_by: int | None = Field(default=None, foreign_key="actor.id")
    reason: str | None = Field(default=None, sa_type=sa.Text)
    override_reason: str | None = Field(default=None, sa_type=sa.Text)


class OutputScore(SQLModel, table=True):
    """Scores of an output under the index's own encoder, with the thresholds they were judged by.
    Append-only: a re-score adds a row; the newest is the one that counts."""

    __tablename__ = "output_score"
    __table_args__ = (sa.CheckConstraint(check_in("status", SCORE_STATUSES), name="status"),)

    id: int | None = Field(default=None, primary_key=True)
    output_id: int = Field(foreign_key="generation_output.id", nullable=False, index=True)
    computed_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    status: str = Field(sa_type=sa.String(10), nullable=False)
    detail: str | None = Field(default=None, sa_type=sa.Text)  # why scores are missing
    encoder_id: str | None = Field(default=None, sa_type=sa.String(300))
    prompt_alignment: float | None = None
    style_neighbours: float | None = None
    style_centroid: float | None = None
    nearest_cosine: float | None = None
    nearest_cosine_image_id: int | None = Field(default=None, foreign_key="image.id")
    nearest_hash_distance: int | None = None
    nearest_hash_image_id: int | None = Field(default=None, foreign_key="image.id")
    policy_name: str | None = Field(default=None, sa_type=sa.String(100))
    policy_sha256: str | None = Field(default=None, sa_type=sa.String(64))
    thresholds: dict = Field(default_factory=dict, sa_type=JSON_VALUE, nullable=False)
    flagged: bool = Field(default=False, nullable=False)
    flags: list = Field(default_factory=list, sa_type=JSON_VALUE, nullable=False)  # reasons


class OutputDecision(SQLModel, table=True):
    """One review decision on an output (append-only): release, withhold, or reopen after a source
    image stopped being cleared under its index's policy."""

    __tablename__ = "output_decision"
    __table_args__ = (
        sa.CheckConstraint(check_in("action", OUTPUT_ACTIONS), name="action"),
        sa.CheckConstraint(check_in("to_state", OUTPUT_STATES), name="to_state"),
    )

    id: int | None = Field(default=None, primary_key=True)
    output_id: int = Field(foreign_key="generation_output.id", nullable=False, index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    actor_id: int = Field(foreign_key="actor.id", nullable=False)
    action: str = Field(sa_type=sa.String(10), nullable=False)
    from_state: str = Field(sa_type=sa.String(10), nullable=False)
    to_state: str = Field(sa_type=sa.String(10), nullable=False)
    reason: str | None = Field(default=None, sa_type=sa.Text)
    override: bool = Field(default=False, nullable=False)
