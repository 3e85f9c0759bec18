"""Index builds: what each usearch index holds and under which policy, and whether it went stale.

Everything about a build is fixed when it is recorded; the one change allowed is stale going from
false to true (with its reason and time). Triggers hold that on both databases.

Revision ID: 0003_index_builds
Revises: 0002_style_sets
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

FIXED = (
    "index_id",
    "path",
    "styleset_version_id",
    "policy",
    "policy_sha256",
    "encoder_id",
    "encoder_weights_sha256",
    "manifest_sha256",
    "members",
    "search",
    "built_by",
    "built_at",
)
CHANGED = " OR ".join(f"NEW.{column} IS NOT OLD.{column}" for column in FIXED)
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER index_build_guard BEFORE UPDATE ON index_build
        WHEN OLD.stale OR {CHANGED}
        BEGIN SELECT RAISE(ABORT, 'an index build only ever goes stale'); END""",
    """CREATE TRIGGER index_build_no_delete BEFORE DELETE ON index_build
        BEGIN SELECT RAISE(ABORT, 'an index build only ever goes stale'); END""",
    """CREATE TRIGGER index_member_frozen_update BEFORE UPDATE ON index_member
        BEGIN SELECT RAISE(ABORT, 'index members are immutable'); END""",
    """CREATE TRIGGER index_member_frozen_delete BEFORE DELETE ON index_member
        BEGIN SELECT RAISE(ABORT, 'index members are immutable'); END""",
]
PG_CHANGED = " OR ".join(f"NEW.{column} IS DISTINCT FROM OLD.{column}" for column in FIXED)
POSTGRESQL_TRIGGERS = [
    f"""CREATE FUNCTION index_build_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' OR OLD.stale OR {PG_CHANGED} THEN
            RAISE EXCEPTION 'an index build only ever goes stale' USING ERRCODE = 'restrict_violation';
          END IF;
          RETURN NEW;
        END $$""",
    """CREATE TRIGGER index_build_guard BEFORE UPDATE OR DELETE ON index_build
        FOR EACH ROW EXECUTE FUNCTION index_build_guard()""",
    """CREATE FUNCTION index_member_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'index members are immutable' USING ERRCODE = 'restrict_violation'; END $$""",
    """CREATE TRIGGER index_member_frozen BEFORE UPDATE OR DELETE ON index_member
        FOR EACH ROW EXECUTE FUNCTION index_member_frozen()""",
]

revision = "0003_index_builds"
down_revision = "0002_style_sets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "index_build",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("index_id", sa.String(length=32), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("styleset_version_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.String(length=100), nullable=False),
        sa.Column("policy_sha256", sa.String(length=64), nullable=False),
        sa.Column("encoder_id", sa.String(length=300), nullable=False),
        sa.Column("encoder_weights_sha256", sa.String(length=64), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("search", sa.String(length=16), nullable=False),
        sa.Column("built_by", sa.Integer(), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("stale_reason", sa.Text(), nullable=True),
        sa.Column("stale_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("search IN ('exact', 'hnsw')", name=op.f("ck_index_build_search")),
        sa.CheckConstraint(
            "NOT stale OR (stale_reason IS NOT NULL AND stale_at IS NOT NULL)",
            name=op.f("ck_index_build_stale_why"),
        ),
        sa.CheckConstraint(
            "length(manifest_sha256) = 64 AND length(policy_sha256) = 64 AND length(encoder_weights_sha256) = 64",
            name=op.f("ck_index_build_hash_lengths"),
        ),
        sa.CheckConstraint("members >= 1", name=op.f("ck_index_build_members")),
        sa.ForeignKeyConstraint(["built_by"], ["actor.id"], name=op.f("fk_index_build_built_by_actor")),
        sa.ForeignKeyConstraint(
            ["styleset_version_id"],
            ["styleset_version.id"],
            name=op.f("fk_index_build_styleset_version_id_styleset_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_build")),
        sa.UniqueConstraint("index_id", name=op.f("uq_index_build_index_id")),
        sa.UniqueConstraint("manifest_sha256", name=op.f("uq_index_build_manifest_sha256")),
    )
    op.create_index(
        "ix_index_build_styleset_version_id", "index_build", ["styleset_version_id"], unique=False
    )

    op.create_table(
        "index_member",
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["build_id"], ["index_build.id"], name=op.f("fk_index_member_build_id_index_build")
        ),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"], name=op.f("fk_index_member_image_id_image")),
        sa.PrimaryKeyConstraint("build_id", "image_id", name=op.f("pk_index_member")),
        sa.UniqueConstraint("build_id", "position", name=op.f("uq_index_member_build_id_position")),
    )
    op.create_index("ix_index_member_image_id", "index_member", ["image_id"], unique=False)
    statements = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_index_member_image_id", table_name="index_member")
    op.drop_table("index_member")
    op.drop_index("ix_index_build_styleset_version_id", table_name="index_build")
    op.drop_table("index_build")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION index_build_guard()")
        op.execute("DROP FUNCTION index_member_frozen()")
