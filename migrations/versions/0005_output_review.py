"""Output review: each output's review state, its scores (with the near-copy check) and the history
of release decisions.

output_review holds where an output stands now (one row per output, pending until a person signs it
off); output_score and output_decision are append-only (triggers refuse UPDATE and DELETE): a
re-score or a new decision adds a row. Outputs recorded before this revision start pending, unscored.

Revision ID: 0005_output_review
Revises: 0004_generation_runs
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

RECORDS = ("output_score", "output_decision")
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER {table}_append_only_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, 'output scores and decisions are append-only'); END"""
    for table in RECORDS
    for verb in ("UPDATE", "DELETE")
]
# provenance_append_only() was created by 0004_generation_runs.
POSTGRESQL_TRIGGERS = [
    f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION provenance_append_only()"""
    for table in RECORDS
]

revision = "0005_output_review"
down_revision = "0004_generation_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "output_review",
        sa.Column("output_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "state IN ('pending', 'released', 'withheld')", name=op.f("ck_output_review_state")
        ),
        sa.ForeignKeyConstraint(
            ["output_id"], ["generation_output.id"], name=op.f("fk_output_review_output_id_generation_output")
        ),
        sa.ForeignKeyConstraint(["updated_by"], ["actor.id"], name=op.f("fk_output_review_updated_by_actor")),
        sa.PrimaryKeyConstraint("output_id", name=op.f("pk_output_review")),
    )
    op.create_index("ix_output_review_state", "output_review", ["state"], unique=False)

    op.create_table(
        "output_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("output_id", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("encoder_id", sa.String(length=300), nullable=True),
        sa.Column("prompt_alignment", sa.Float(), nullable=True),
        sa.Column("style_neighbours", sa.Float(), nullable=True),
        sa.Column("style_centroid", sa.Float(), nullable=True),
        sa.Column("nearest_cosine", sa.Float(), nullable=True),
        sa.Column("nearest_cosine_image_id", sa.Integer(), nullable=True),
        sa.Column("nearest_hash_distance", sa.Integer(), nullable=True),
        sa.Column("nearest_hash_image_id", sa.Integer(), nullable=True),
        sa.Column("policy_name", sa.String(length=100), nullable=True),
        sa.Column("policy_sha256", sa.String(length=64), nullable=True),
        sa.Column("thresholds", sa.Text(), nullable=False),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.CheckConstraint("status IN ('scored', 'missing')", name=op.f("ck_output_score_status")),
        sa.ForeignKeyConstraint(
            ["nearest_cosine_image_id"],
            ["image.id"],
            name=op.f("fk_output_score_nearest_cosine_image_id_image"),
        ),
        sa.ForeignKeyConstraint(
            ["nearest_hash_image_id"], ["image.id"], name=op.f("fk_output_score_nearest_hash_image_id_image")
        ),
        sa.ForeignKeyConstraint(
            ["output_id"], ["generation_output.id"], name=op.f("fk_output_score_output_id_generation_output")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_output_score")),
    )
    op.create_index("ix_output_score_output_id", "output_score", ["output_id"], unique=False)

    op.create_table(
        "output_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("output_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("from_state", sa.String(length=10), nullable=False),
        sa.Column("to_state", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "action IN ('release', 'withhold', 'reopen')", name=op.f("ck_output_decision_action")
        ),
        sa.CheckConstraint(
            "to_state IN ('pending', 'released', 'withheld')", name=op.f("ck_output_decision_to_state")
        ),
        sa.ForeignKeyConstraint(["actor_id"], ["actor.id"], name=op.f("fk_output_decision_actor_id_actor")),
        sa.ForeignKeyConstraint(
            ["output_id"],
            ["generation_output.id"],
            name=op.f("fk_output_decision_output_id_generation_output"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_output_decision")),
    )
    op.create_index("ix_output_decision_output_id", "output_decision", ["output_id"], unique=False)

    # Outputs made before this revision start in review like every new one.
    op.execute(
        "INSERT INTO output_review (output_id, state, flagged, updated_at) "
        "SELECT o.id, 'pending', false, r.created_at FROM generation_output o "
        "JOIN generation_run r ON r.id = o.run_id"
    )
    statements = SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else POSTGRESQL_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    op.drop_index("ix_output_decision_output_id", table_name="output_decision")
    op.drop_table("output_decision")
    op.drop_index("ix_output_score_output_id", table_name="output_score")
    op.drop_table("output_score")
    op.drop_index("ix_output_review_state", table_name="output_review")
    op.drop_table("output_review")
