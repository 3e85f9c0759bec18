"""Generation runs, their outputs and the neighbours each output retrieved: the provenance record.

Records are append-only (triggers refuse UPDATE and DELETE): an output's history never changes.

Revision ID: 0004_generation_runs
Revises: 0003_index_builds
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

RECORDS = ("generation_run", "generation_output", "output_neighbour")
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER {table}_append_only_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, 'provenance records are append-only'); END"""
    for table in RECORDS
    for verb in ("UPDATE", "DELETE")
]
POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION provenance_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'provenance records are append-only' USING ERRCODE = 'restrict_violation';
        END $$""",
    *(
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION provenance_append_only()"""
        for table in RECORDS
    ),
]

revision = "0004_generation_runs"
down_revision = "0003_index_builds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "generation_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generator", sa.String(length=100), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("negative", sa.Text(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("sampler", sa.String(length=32), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("guidance", sa.Float(), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("model_weights_sha256", sa.String(length=64), nullable=False),
        sa.Column("model_path", sa.Text(), nullable=False),
        sa.Column("index_build_id", sa.Integer(), nullable=False),
        sa.Column("manifest_sha256", sa.String(length=64), nullable=False),
        sa.Column("encoder_id", sa.String(length=300), nullable=False),
        sa.Column("out_dir", sa.Text(), nullable=False),
        sa.Column("record", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "length(manifest_sha256) = 64 AND length(model_weights_sha256) = 64",
            name=op.f("ck_generation_run_hashes"),
        ),
        sa.CheckConstraint("n >= 1 AND steps >= 1 AND k >= 0", name=op.f("ck_generation_run_counts")),
        sa.ForeignKeyConstraint(["actor_id"], ["actor.id"], name=op.f("fk_generation_run_actor_id_actor")),
        sa.ForeignKeyConstraint(
            ["index_build_id"], ["index_build.id"], name=op.f("fk_generation_run_index_build_id_index_build")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_run")),
        sa.UniqueConstraint("run_id", name=op.f("uq_generation_run_run_id")),
    )
    op.create_index("ix_generation_run_index_build_id", "generation_run", ["index_build_id"], unique=False)

    op.create_table(
        "generation_output",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("pixels_sha256", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "length(sha256) = 64 AND length(pixels_sha256) = 64", name=op.f("ck_generation_output_hashes")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["generation_run.id"], name=op.f("fk_generation_output_run_id_generation_run")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_output")),
        sa.UniqueConstraint("run_id", "ordinal", name=op.f("uq_generation_output_run_id_ordinal")),
    )
    op.create_index(
        "ix_generation_output_pixels_sha256", "generation_output", ["pixels_sha256"], unique=False
    )
    op.create_index("ix_generation_output_sha256", "generation_output", ["sha256"], unique=False)

    op.create_table(
        "output_neighbour",
        sa.Column("output_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("licence", sa.Text(), nullable=True),
        sa.Column("attribution", sa.Text(), nullable=True),
        sa.Column("obligations", sa.Text(), nullable=False),
        sa.CheckConstraint("rank >= 1", name=op.f("ck_output_neighbour_rank")),
        sa.ForeignKeyConstraint(["image_id"], ["image.id"], name=op.f("fk_output_neighbour_image_id_image")),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["generation_output.id"],
            name=op.f("fk_output_neighbour_output_id_generation_output"),
        ),
        sa.PrimaryKeyConstraint("output_id", "rank", name=op.f("pk_output_neighbour")),
    )
    op.create_index("ix_output_neighbour_image_id", "output_neighbour", ["image_id"], unique=False)
    statements = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_output_neighbour_image_id", table_name="output_neighbour")

    op.drop_table("output_neighbour")
    op.drop_index("ix_generation_output_sha256", table_name="generation_output")
    op.drop_index("ix_generation_output_pixels_sha256", table_name="generation_output")

    op.drop_table("generation_output")
    op.drop_index("ix_generation_run_index_build_id", table_name="generation_run")

    op.drop_table("generation_run")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION provenance_append_only()")
