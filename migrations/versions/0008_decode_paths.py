"""Decode paths: a rejection may say `too-large`.

A picture decoded whole (every format but JPEG, which is decoded at a reduced scale) is refused over
imaging.WHOLE_PIXELS, and an SVG over svg.MAX_BYTES, with the reason `too-large`, so that one small
file cannot take gigabytes of an ingest worker. The CHECK on rejection.reason gains it.

Revision ID: 0008_decode_paths
Revises: 0011_policy_texts
Create Date: 2026-12-02
"""

from alembic import op

revision = "0008_decode_paths"
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
AFTER = (*BEFORE, "too-large")


def _check(reasons: tuple[str, ...]) -> str:
    return f"reason IN ({', '.join(repr(r) for r in reasons)})"


def upgrade() -> None:
    with op.batch_alter_table("rejection") as batch:
        batch.drop_constraint(op.f("ck_rejection_reason"), type_="check")
        batch.create_check_constraint(op.f("ck_rejection_reason"), _check(AFTER))


def downgrade() -> None:
    # The older schema has no word for it: the nearest reason it has.
    op.execute("UPDATE rejection SET reason = 'decompression-bomb' WHERE reason = 'too-large'")
    with op.batch_alter_table("rejection") as batch:
        batch.drop_constraint(op.f("ck_rejection_reason"), type_="check")
        batch.create_check_constraint(op.f("ck_rejection_reason"), _check(BEFORE))
