"""Web sign-in: an argon2id password hash per actor, for the web review desk.

The hash lives in its own table, not on the actor row, so that reading an actor never reads a
credential. Actors without a row (every actor before this revision) cannot sign in with a password
until an admin sets one (`stylevault users passwd NAME`); a trusted proxy header, when configured,
still works for them.

Revision ID: 0006_web_signin
Revises: 0005_output_review
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_web_signin"
down_revision = "0005_output_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "actor_password",
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=200), nullable=False),
        sa.Column("set_by", sa.Integer(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["actor.id"], name=op.f("fk_actor_password_actor_id_actor"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["set_by"], ["actor.id"], name=op.f("fk_actor_password_set_by_actor")),
        sa.PrimaryKeyConstraint("actor_id", name=op.f("pk_actor_password")),
    )


def downgrade() -> None:
    op.drop_table("actor_password")
