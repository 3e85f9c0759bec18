"""The catalogue core: actors and roles, ingest runs and rejections, images, sources, licences,
approval state and the hash-chained audit log.

Revision ID: 0001_catalogue_core
Revises: (none)
Create Date: 2026-11-27 04:22:45.584728
"""

import sqlalchemy as sa
from alembic import op

GENESIS = "0" * 64

# Append-only in the schema: an UPDATE or DELETE of an audit event fails. (A database superuser
# can still drop the trigger; `stylevault audit verify` is what catches that.)
SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_event_append_only_update BEFORE UPDATE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END""",
    """CREATE TRIGGER audit_event_append_only_delete BEFORE DELETE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END""",
]
# restrict_violation is an integrity error, as SQLite's RAISE(ABORT) is: the same refusal on both.
POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit events are append-only' USING ERRCODE = 'restrict_violation'; END $$""",
    """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
       FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()""",
]

revision = "0001_catalogue_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "actor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_actor")),
        sa.UniqueConstraint("name", name=op.f("uq_actor_name")),
    )
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "length(hash) = 64 AND length(prev_hash) = 64", name=op.f("ck_audit_event_hash_length")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_event_hash")),
        sa.UniqueConstraint("prev_hash", name=op.f("uq_audit_event_prev_hash")),
    )
    op.create_index("ix_audit_event_target", "audit_event", ["target_type", "target_id"], unique=False)
    for statement in SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS:
        op.execute(statement)

    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.execute(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS}')")
    op.create_table(
        "actor_role",
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.CheckConstraint(
            "role IN ('admin', 'legal', 'steward', 'reviewer', 'generator', 'viewer')",
            name=op.f("ck_actor_role_role"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actor.id"], name=op.f("fk_actor_role_actor_id_actor"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("actor_id", "role", name=op.f("pk_actor_role")),
    )
    op.create_table(
        "ingest_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("manifest", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("default_licence", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("offered", sa.Integer(), nullable=False),
        sa.Column("catalogued", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('running', 'completed', 'failed')", name=op.f("ck_ingest_run_status")),
        sa.CheckConstraint(
            "offered = catalogued + duplicates + rejected", name=op.f("ck_ingest_run_reconciled")
        ),
        sa.ForeignKeyConstraint(["actor_id"], ["actor.id"], name=op.f("fk_ingest_run_actor_id_actor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_run")),
    )
    op.create_table(
        "image",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("phash", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingest_run_id", sa.Integer(), nullable=False),
        sa.Column("ingested_by", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("state_by", sa.Integer(), nullable=True),
        sa.Column("state_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "state <> 'approved' OR (state_by IS NOT NULL AND state_by <> ingested_by)",
            name=op.f("ck_image_four_eyes"),
        ),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'rejected', 'revoked')", name=op.f("ck_image_state")
        ),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_image_sha256_length")),
        sa.CheckConstraint("width > 0 AND height > 0 AND size_bytes > 0", name=op.f("ck_image_dimensions")),
        sa.ForeignKeyConstraint(
            ["ingest_run_id"], ["ingest_run.id"], name=op.f("fk_image_ingest_run_id_ingest_run")
        ),
        sa.ForeignKeyConstraint(["ingested_by"], ["actor.id"], name=op.f("fk_image_ingested_by_actor")),
        sa.ForeignKeyConstraint(["state_by"], ["actor.id"], name=op.f("fk_image_state_by_actor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image")),
        sa.UniqueConstraint("sha256", name=op.f("uq_image_sha256")),
    )
    op.create_index("ix_image_phash", "image", ["phash"], unique=False)
    op.create_index("ix_image_state_id", "image", ["state", "id"], unique=False)

    op.create_table(
        "rejection",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ingest_run_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "reason IN ('empty-file', 'not-an-image', 'unsupported-format', 'decode-error', 'decompression-bomb', 'outside-root', 'missing-file', 'unreadable', 'not-a-file', 'duplicate-row', 'bad-row')",
            name=op.f("ck_rejection_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["ingest_run_id"], ["ingest_run.id"], name=op.f("fk_rejection_ingest_run_id_ingest_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejection")),
    )
    op.create_index("ix_rejection_ingest_run_id", "rejection", ["ingest_run_id"], unique=False)

    op.create_table(
        "licence",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=True),
        sa.Column("spdx", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("attribution", sa.Text(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("verified_by", sa.Integer(), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_on", sa.Date(), nullable=True),
        sa.Column("opt_out", sa.Boolean(), nullable=False),
        sa.Column("data_mining", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status <> 'verified' OR (verified_by IS NOT NULL AND verified_at IS NOT NULL)",
            name=op.f("ck_licence_verified_has_verifier"),
        ),
        sa.CheckConstraint(
            "status IN ('missing', 'unrecognised', 'normalised', 'conflict', 'verified')",
            name=op.f("ck_licence_status"),
        ),
        sa.CheckConstraint(
            "status NOT IN ('missing', 'unrecognised') OR spdx IS NULL", name=op.f("ck_licence_no_guess")
        ),
        sa.CheckConstraint(
            "status NOT IN ('normalised', 'verified') OR spdx IS NOT NULL",
            name=op.f("ck_licence_spdx_when_known"),
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["image.id"], name=op.f("fk_licence_image_id_image"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["verified_by"], ["actor.id"], name=op.f("fk_licence_verified_by_actor")),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_licence")),
    )
    op.create_index("ix_licence_expires_on", "licence", ["expires_on"], unique=False)
    op.create_index("ix_licence_spdx_status", "licence", ["spdx", "status"], unique=False)

    op.create_table(
        "source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("ingest_run_id", sa.Integer(), nullable=False),
        sa.Column("locator", sa.Text(), nullable=False),
        sa.Column("path", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("collection", sa.Text(), nullable=True),
        sa.Column("creator", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("licence_raw", sa.Text(), nullable=True),
        sa.Column("attribution", sa.Text(), nullable=True),
        sa.Column("evidence", sa.Text(), nullable=True),
        sa.Column("licence_expires", sa.Date(), nullable=True),
        sa.Column("opt_out", sa.Boolean(), nullable=False),
        sa.Column("retrieved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("raw_metadata", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"], name=op.f("fk_source_image_id_image")),
        sa.ForeignKeyConstraint(
            ["ingest_run_id"], ["ingest_run.id"], name=op.f("fk_source_ingest_run_id_ingest_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source")),
        sa.UniqueConstraint("image_id", "locator", name=op.f("uq_source_image_id_locator")),
    )
    op.create_index("ix_source_collection", "source", ["collection"], unique=False)
    op.create_index("ix_source_image_id", "source", ["image_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_source_image_id", table_name="source")
    op.drop_index("ix_source_collection", table_name="source")

    op.drop_table("source")
    op.drop_index("ix_licence_spdx_status", table_name="licence")
    op.drop_index("ix_licence_expires_on", table_name="licence")

    op.drop_table("licence")
    op.drop_index("ix_rejection_ingest_run_id", table_name="rejection")

    op.drop_table("rejection")
    op.drop_index("ix_image_state_id", table_name="image")
    op.drop_index("ix_image_phash", table_name="image")

    op.drop_table("image")
    op.drop_table("ingest_run")
    op.drop_table("actor_role")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_event_target", table_name="audit_event")

    op.drop_table("audit_event")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_event_append_only()")
    op.drop_table("actor")
