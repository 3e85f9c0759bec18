"""Input limits: two more reasons a file offered to ingest is rejected.

`unreadable-name`: a file name (or a folder on its path) that is not UTF-8. The catalogue stores
paths as text, and an escaped spelling of the bytes names no file, so an image catalogued under one
could never be read again (an index build of any version holding it failed). `too-large`: a file
over ingest's size limit, hashed in chunks and refused without being read whole.

Revision ID: 0013_input_limits
Revises: 0007_source_per_place
Create Date: 2026-12-02
"""

from alembic import op

revision = "0013_input_limits"
down_revision = "0011_policy_texts"
branch_labels = None
depends_on = None

BEFORE = (
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
)
AFTER = (*BEFORE, "unreadable-name", "too-large")


def _reasons(reasons: tuple[str, ...]) -> str:
    return f"reason IN ({', '.join(repr(r) for r in reasons)})"


def _replace(reasons: tuple[str, ...]) -> None:
    with op.batch_alter_table("rejection") as batch:
        batch.drop_constraint(op.f("ck_rejection_reason"), type_="check")
        batch.create_check_constraint(op.f("ck_rejection_reason"), _reasons(reasons))


def upgrade() -> None:
    _replace(AFTER)


def downgrade() -> None:
    # The older schema has no word for them: they read as unreadable, and every run still reconciles.
    op.execute(f"UPDATE rejection SET reason = 'unreadable' WHERE reason IN {AFTER[len(BEFORE) :]!r}")
    _replace(BEFORE)
