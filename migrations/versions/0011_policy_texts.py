"""Policy texts: the exact policy file an index was built under, kept by its sha256.

`index verify` and a revocation's restale judged a build by whatever file of the policy's name the
caller's search path found: another `commercial.yaml` in ./policies marked a valid index stale for
good. Each build now records its policy's text here, and is judged by it. Builds made before this
revision have no text; they are judged by the file of their name while its sha256 still matches.

Revision ID: 0011_policy_texts
Revises: 0007_source_per_place
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_policy_texts"
down_revision = "0009_licence_aliases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_text",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("length(sha256) = 64", name=op.f("ck_policy_text_sha256_length")),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_policy_text")),
    )


def downgrade() -> None:
    op.drop_table("policy_text")
