"""Style sets: a working membership that stewards edit, and published versions frozen by triggers.

Revision ID: 0002_style_sets
Revises: 0001_catalogue_core
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_style_sets"
down_revision = "0001_catalogue_core"
branch_labels = None
depends_on = None

FROZEN = ("styleset_version", "styleset_version_member")


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER {table}_frozen_{verb.lower()} BEFORE {verb} ON {table}
            BEGIN SELECT RAISE(ABORT, 'published style-set versions are immutable'); END"""
        for verb in ("UPDATE", "DELETE")
    ]


POSTGRESQL_FUNCTION = """CREATE FUNCTION styleset_version_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'published style-set versions are immutable' USING ERRCODE = 'restrict_violation';
    END $$"""


def _postgresql_triggers(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION styleset_version_frozen()""",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION styleset_version_frozen()""",
    ]


def upgrade() -> None:
    op.create_table(
        "styleset",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["actor.id"], name=op.f("fk_styleset_owner_id_actor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_styleset")),
        sa.UniqueConstraint("name", name=op.f("uq_styleset_name")),
    )
    op.create_table(
        "styleset_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("styleset_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("members_sha256", sa.String(length=64), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("published_by", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "length(members_sha256) = 64", name=op.f("ck_styleset_version_members_sha256_length")
        ),
        sa.CheckConstraint("version >= 1 AND members >= 1", name=op.f("ck_styleset_version_positive")),
        sa.ForeignKeyConstraint(
            ["published_by"], ["actor.id"], name=op.f("fk_styleset_version_published_by_actor")
        ),
        sa.ForeignKeyConstraint(
            ["styleset_id"], ["styleset.id"], name=op.f("fk_styleset_version_styleset_id_styleset")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_styleset_version")),
        sa.UniqueConstraint("styleset_id", "version", name=op.f("uq_styleset_version_styleset_id_version")),
    )
    op.create_table(
        "styleset_member",
        sa.Column("styleset_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["added_by"], ["actor.id"], name=op.f("fk_styleset_member_added_by_actor")),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"], name=op.f("fk_styleset_member_image_id_image")),
        sa.ForeignKeyConstraint(
            ["styleset_id"],
            ["styleset.id"],
            name=op.f("fk_styleset_member_styleset_id_styleset"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("styleset_id", "image_id", name=op.f("pk_styleset_member")),
    )
    op.create_index("ix_styleset_member_image_id", "styleset_member", ["image_id"], unique=False)
    op.create_table(
        "styleset_version_member",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_styleset_version_member_sha256_length")),
        sa.ForeignKeyConstraint(
            ["image_id"], ["image.id"], name=op.f("fk_styleset_version_member_image_id_image")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["styleset_version.id"],
            name=op.f("fk_styleset_version_member_version_id_styleset_version"),
        ),
        sa.PrimaryKeyConstraint("version_id", "image_id", name=op.f("pk_styleset_version_member")),
    )
    op.create_index(
        "ix_styleset_version_member_image_id", "styleset_version_member", ["image_id"], unique=False
    )
    if op.get_bind().dialect.name == "sqlite":
        statements = [s for table in FROZEN for s in _sqlite_triggers(table)]
    else:
        statements = [POSTGRESQL_FUNCTION] + [s for table in FROZEN for s in _postgresql_triggers(table)]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_styleset_version_member_image_id", table_name="styleset_version_member")
    op.drop_table("styleset_version_member")
    op.drop_index("ix_styleset_member_image_id", table_name="styleset_member")
    op.drop_table("styleset_member")
    op.drop_table("styleset_version")
    op.drop_table("styleset")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION styleset_version_frozen()")
