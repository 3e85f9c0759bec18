"""Site licence aliases: spellings legal has read and maps exactly to one SPDX expression.

The shipped aliases live in governance/licence_aliases.yaml; a site adds its own with `stylevault
licence alias add` (legal), which re-derives the automatic licences the alias changes in the same
transaction. Nothing to migrate: a catalogue starts with no site aliases.

Revision ID: 0009_licence_aliases
Revises: 0007_source_per_place
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_licence_aliases"
down_revision = "0012_session_generation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "licence_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("spdx", sa.Text(), nullable=False),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["added_by"], ["actor.id"], name=op.f("fk_licence_alias_added_by_actor")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_licence_alias")),
        sa.UniqueConstraint("key", name=op.f("uq_licence_alias_key")),
    )


def downgrade() -> None:
    op.drop_table("licence_alias")
