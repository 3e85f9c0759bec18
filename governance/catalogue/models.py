"""The catalogue schema: one SQLModel class per table.

Rules the database can hold are declared here (unique keys, foreign keys, CHECK constraints) so that
SQLite and PostgreSQL refuse a bad row even when it does not come through stylevault's own code.
Every constraint is named (see NAMING) so Alembic can drop and recreate it on both databases.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Field, SQLModel

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata.naming_convention = NAMING

ROLES = ("admin", "legal", "steward", "reviewer", "generator", "viewer")
APPROVAL_STATES = ("pending", "approved", "rejected", "revoked")
LICENCE_STATUSES = ("missing", "unrecognised", "normalised", "conflict", "verified")
RUN_STATUSES = ("running", "completed", "failed")
OUTPUT_STATES = ("pending", "released", "withheld")
OUTPUT_ACTIONS = ("release", "withhold", "reopen")
SCORE_STATUSES = ("scored", "missing")
REJECTION_REASONS = (
    "empty-file",
    "not-an-image",
    "unsupported-format",
    "decode-error",
    "decompression-bomb",
    "outside-root",
    "missing-file",
    "unreadable",
    "not-a-file",
    "duplicate-row",
    "bad-row",
    "unreadable-name",
    "too-large",
)


class JSONValue(sa.types.TypeDecorator):
    """A list or object the catalogue stores whole (a run's record, a neighbour's obligations, a
    score's thresholds and flags), written and read as Python values. JSONB on PostgreSQL; on SQLite,
    whose JSON is text anyway, TEXT holding JSON: a type change there means rebuilding the table,
    which SQLite cannot do to a table others reference while foreign keys are on (0014_json_columns)."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect):
        return dialect.type_descriptor(postgresql.JSONB() if dialect.name == "postgresql" else sa.Text())

    def process_bind_param(self, value, dialect):
        return value if value is None or dialect.name == "postgresql" else json.dumps(value)

    def process_result_value(self, value, dialect):
        return value if value is None or dialect.name == "postgresql" else json.loads(value)


JSON_VALUE = JSONValue()


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Actor(SQLModel, table=True):
    """A person or service that acts on the catalogue; every write names one."""

    __tablename__ = "actor"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    disabled: bool = Field(default=False, nullable=False)


class ActorPassword(SQLModel, table=True):
    """The argon2id hash an actor signs in to the web desk with (web.passwords), apart from
    the actor row so that reading an actor never reads a credential."""

    __tablename__ = "actor_password"

    actor_id: int = Field(foreign_key="actor.id", primary_key=True, ondelete="CASCADE")
    hash: str = Field(sa_type=sa.String(200), nullable=False)
    set_by: int = Field(foreign_key="actor.id", nullable=False)
    set_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    # A desk session made at an older generation is refused (catalogue.actors.end_sessions): signing
    # out, a new password and disabling the actor move it on.
    session_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"}, nullable=False)


class ActorRole(SQLModel, table=True):
    __tablename__ = "actor_role"
    __table_args__ = (sa.CheckConstraint(check_in("role", ROLES), name="role"),)

    actor_id: int = Field(foreign_key="actor.id", primary_key=True, ondelete="CASCADE")
    role: str = Field(sa_column=sa.Column(sa.String(20), primary_key=True))


class IngestRun(SQLModel, table=True):
    """One `stylevault ingest` call. Its counts are committed with each batch, so they reconcile."""

    __tablename__ = "ingest_run"
    __table_args__ = (
        sa.CheckConstraint(check_in("status", RUN_STATUSES), name="status"),
        sa.CheckConstraint("offered = catalogued + duplicates + rejected", name="reconciled"),
    )

    id: int | None = Field(default=None, primary_key=True)
    actor_id: int = Field(foreign_key="actor.id", nullable=False)
    root: str = Field(sa_type=sa.Text, nullable=False)
    manifest: str | None = Field(default=None, sa_type=sa.Text)
    source: str | None = Field(default=None, sa_type=sa.Text)
    default_licence: str | None = Field(default=None, sa_type=sa.Text)
    started_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    status: str = Field(default="running", sa_type=sa.String(20), nullable=False)
    offered: int = Field(default=0, nullable=False)
    catalogued: int = Field(default=0, nullable=False)
    duplicates: int = Field(default=0, nullable=False)
    rejected: int = Field(default=0, nullable=False)


class Image(SQLModel, table=True):
    """An image, identified by the sha256 of its bytes, with its approval state."""

    __tablename__ = "image"
    __table_args__ = (
        sa.CheckConstraint("length(sha256) = 64", name="sha256_length"),
        sa.CheckConstraint(check_in("state", APPROVAL_STATES), name="state"),
        sa.CheckConstraint("width > 0 AND height > 0 AND size_bytes > 0", name="dimensions"),
        # Four-eyes, as far as one row can tell: an approval names its approver, and whoever first
        # ingested an image never approves it.
        sa.CheckConstraint(
            "state <> 'approved' OR (state_by IS NOT NULL AND state_by <> ingested_by)", name="four_eyes"
        ),
        sa.Index("ix_image_state_id", "state", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    phash: str = Field(sa_type=sa.String(16), nullable=False, index=True)
    format: str = Field(sa_type=sa.String(16), nullable=False)
    mode: str = Field(sa_type=sa.String(16), nullable=False)
    width: int = Field(nullable=False)
    height: int = Field(nullable=False)
    size_bytes: int = Field(nullable=False)
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    ingest_run_id: int = Field(foreign_key="ingest_run.id", nullable=False)
    ingested_by: int = Field(foreign_key="actor.id", nullable=False)
    state: str = Field(default="pending", sa_type=sa.String(16), nullable=False)
    state_reason: str | None = Field(default=None, sa_type=sa.Text)
    state_by: int | None = Field(default=None, foreign_key="actor.id")
    state_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


# What a source row records of where one copy of an image came from (besides its locator and path):
# the fields ingest sets and its events carry.
SOURCE_FIELDS = (
    "url",
    "collection",
    "creator",
    "title",
    "licence_raw",
    "attribution",
    "evidence",
    "licence_expires",
    "opt_out",
)


class Source(SQLModel, table=True):
    """One place an image was found: a file (`path`) and where it says it came from (`locator`).

    The same bytes found in two places keep two sources, each with its own licence statement, even
    when both places name one URL (DESIGN.md rule 2)."""

    __tablename__ = "source"
    __table_args__ = (sa.UniqueConstraint("image_id", "locator", "path"),)

    id: int | None = Field(default=None, primary_key=True)
    image_id: int = Field(foreign_key="image.id", nullable=False, index=True)
    ingest_run_id: int = Field(foreign_key="ingest_run.id", nullable=False)
    # The source URL when one is given, else the file's absolute path; with the path, what makes a
    # source distinct.
    locator: str = Field(sa_type=sa.Text, nullable=False)
    path: str = Field(sa_type=sa.Text, nullable=False)
    url: str | None = Field(default=None, sa_type=sa.Text)
    collection: str | None = Field(default=None, sa_type=sa.Text, index=True)
    creator: str | None = Field(default=None, sa_type=sa.Text)
    title: str | None = Field(default=None, sa_type=sa.Text)
    licence_raw: str | None = Field(default=None, sa_type=sa.Text)
    attribution: str | None = Field(default=None, sa_type=sa.Text)
    evidence: str | None = Field(default=None, sa_type=sa.Text)
    licence_expires: date | None = Field(default=None)
    opt_out: bool = Field(default=False, nullable=False)
    retrieved_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))
    # {"manifest": {...raw row...}, "embedded": {...rights metadata read from the file...}}. Plain JSON
    # (`json` on PostgreSQL, not JSONB): kept as found, its key order and any \u0000 in it included.
    raw_metadata: dict = Field(default_factory=dict, sa_type=sa.JSON, nullable=False)


# What a licence row records of an image's licence (besides who verified it): the fields a
# `licence.set` event carries.
LICENCE_FIELDS = (
    "raw",
    "spdx",
    "status",
    "note",
    "attribution",
    "evidence",
    "expires_on",
    "opt_out",
    "data_mining",
)


class Licence(SQLModel, table=True):
    """The effective licence of an image: raw as found, the SPDX expression when recognised."""

    __tablename__ = "licence"
    __table_args__ = (
        sa.CheckConstraint(check_in("status", LICENCE_STATUSES), name="status"),
        sa.CheckConstraint(
            "status NOT IN ('normalised', 'verified') OR spdx IS NOT NULL", name="spdx_when_known"
        ),
        sa.CheckConstraint("status NOT IN ('missing', 'unrecognised') OR spdx IS NULL", name="no_guess"),
        sa.CheckConstraint(
            "status <> 'verified' OR (verified_by IS NOT NULL AND verified_at IS NOT NULL)",
            name="verified_has_verifier",
        ),
        sa.Index("ix_licence_spdx_status", "spdx", "status"),
    )

    image_id: int = Field(foreign_key="image.id", primary_key=True, ondelete="CASCADE")
    raw: str | None = Field(default=None, sa_type=sa.Text)
    spdx: str | None = Field(default=None, sa_type=sa.Text)
    status: str = Field(sa_type=sa.String(16), nullable=False)
    note: str | None = Field(default=None, sa_type=sa.Text)
    attribution: str | None = Field(default=None, sa_type=sa.Text)
    evidence: str | None = Field(default=None, sa_type=sa.Text)
    verified_by: int | None = Field(default=None, foreign_key="actor.id")
    verified_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    expires_on: date | None = Field(default=None, index=True)
    opt_out: bool = Field(default=False, nullable=False)
    # The IPTC PLUS data-mining value the file carried (e.g. ...DMI-PROHIBITED-AIMLTRAINING), if any.
    data_mining: str | None = Field(default=None, sa_type=sa.Text)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class LicenceAlias(SQLModel, table=True):
    """A site's own licence alias: a spelling legal has read and maps exactly to one SPDX expression.

    The shipped aliases live in governance/licence_aliases.yaml; these add to them, never override."""

    __tablename__ = "licence_alias"

    id: int | None = Field(default=None, primary_key=True)
    # aliases.key(text): lower case, spaces squeezed, no final full stop; what lookups compare.
    key: str = Field(sa_type=sa.Text, nullable=False, unique=True)
    text: str = Field(sa_type=sa.Text, nullable=False)
    spdx: str = Field(sa_type=sa.Text, nullable=False)
    why: str = Field(sa_type=sa.Text, nullable=False)
    added_by: int = Field(foreign_key="actor.id", nullable=False)
    added_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True), nullable=False)


class Rejection(SQLModel, table=True):
    """A file offered to ingest that did not become an image, with the reason."""

    __tablename__ = "rejection"
    __table_args__ = (sa.CheckConstraint(check_in("reason", REJECTION_REASONS), name="reason"),)

    id: int | None = Field(default=None, primary_key=True)
    ingest_run_id: int = Field(foreign_key="ingest_run.id", nullable=False, index=True)
    path: str = Field(sa_type=sa.Text, nullable=False)
    reason: str = Field(sa_type=sa.String(32), nullable=False)
    detail: str = Field(sa_type=sa.Text, nullable=False)
    sha256: str | None = Field(default=None, sa_type=sa.String(64))
    at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class AuditEvent(SQLModel, table=True):
    """One link of the append-only audit chain.

    Values are stored as the exact text that was hashed (ISO time, canonical JSON), so verification
    recomputes each hash from the row as stored, identically on SQLite and PostgreSQL.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        sa.CheckConstraint("length(hash) = 64 AND length(prev_hash) = 64", name="hash_length"),
        sa.Index("ix_audit_event_target", "target_type", "target_id"),
    )

    id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    at: str = Field(sa_type=sa.String(32), nullable=False)
    actor: str | None = Field(default=None, sa_type=sa.String(200))
    action: str = Field(sa_type=sa.String(64), nullable=False)
    target_type: str = Field(sa_type=sa.String(32), nullable=False)
    target_id: str = Field(sa_type=sa.String(128), nullable=False)
    before: str | None = Field(default=None, sa_type=sa.Text)
    after: str | None = Field(default=None, sa_type=sa.Text)
    # unique: a link has at most one successor, so the chain cannot fork.
    prev_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))


class AuditHead(SQLModel, table=True):
    """The single row naming the chain's last event; it is locked to serialise appends and it
    catches a truncated tail, which a chain alone cannot."""

    __tablename__ = "audit_head"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: int = Field(default=1, primary_key=True)
    seq: int = Field(default=0, nullable=False)
    hash: str = Field(sa_type=sa.String(64), nullable=False)


class StyleSet(SQLModel, table=True):
    """A named, described set of images that a steward curates; its versions are frozen."""

    __tablename__ = "styleset"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False, unique=True))
    description: str | None = Field(default=None, sa_type=sa.Text)
    owner_id: int = Field(foreign_key="actor.id", nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class StyleSetMember(SQLModel, table=True):
    """The working membership of a style set: what the next `publish` freezes."""

    __tablename__ = "styleset_member"

    styleset_id: int = Field(foreign_key="styleset.id", primary_key=True, ondelete="CASCADE")
    image_id: int = Field(foreign_key="image.id", primary_key=True, index=True)
    added_by: int = Field(foreign_key="actor.id", nullable=False)
    added_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class StyleSetVersion(SQLModel, table=True):
    """A published, immutable version N of a style set (triggers refuse UPDATE and DELETE)."""

    __tablename__ = "styleset_version"
    __table_args__ = (
        sa.UniqueConstraint("styleset_id", "version"),
        sa.CheckConstraint("version >= 1 AND members >= 1", name="positive"),
        sa.CheckConstraint("length(members_sha256) = 64", name="members_sha256_length"),
    )

    id: int | None = Field(default=None, primary_key=True)
    styleset_id: int = Field(foreign_key="styleset.id", nullable=False)
    version: int = Field(nullable=False)
    members: int = Field(nullable=False)
    # sha256 over the sorted "image_id:sha256" lines of the members: the version's fingerprint.
    members_sha256: str = Field(sa_type=sa.String(64), nullable=False)
    note: str | None = Field(default=None, sa_type=sa.Text)
    published_by: int = Field(foreign_key="actor.id", nullable=False)
    published_at: datetime = Field(default_factory=utcnow, sa_type=sa.DateTime(timezone=True))


class StyleSetVersionMember(SQLModel, table=True):
    """One member of a published version, with the sha256 its bytes had when it was frozen."""

    __tablename__ = "styleset_version_member"
    __table_args__ = (sa.CheckConstraint("length(sha256) = 64", name="sha256_length"),)

    version_id: int = Field(foreign_key="styleset_version.id", primary_key=True)
    image_id: int = Field(foreign_key="image.id", primary_key=True, index=True)
    sha256: str = Field(sa_type=sa.String(64), nullable=False)
