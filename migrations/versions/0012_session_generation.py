"""Session generation: a counter beside each actor's password that every desk cookie must match.

A desk session is a signed cookie; without state on the server it stayed good for its whole lifetime
after the actor signed out or an admin reset their password. Each cookie now carries the actor's
session generation from sign-in, and every request compares it with this column; signing out,
setting a password and disabling an actor add one to it, which ends every session made before.
It sits on the password row: only an actor with a password has desk sessions to end. Existing rows
start at 0, and cookies made before this revision carry none: they are refused once.

Revision ID: 0012_session_generation
Revises: 0007_source_per_place
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012_session_generation"
down_revision = "0007_source_per_place"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("actor_password") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("actor_password") as batch:
        batch.drop_column("session_generation")
