"""JSON columns: lists and objects stored whole are JSON values, not text the code parses.

A run's record, each neighbour's obligations and each score's thresholds and flags were Text that
the code turned into values with json.dumps/loads wherever it read them; the models now declare them
once as models.JSONValue. On PostgreSQL they become JSONB, converted in place (every stored text is
already JSON). On SQLite they stay TEXT holding JSON, which is all SQLite's JSON is: changing the
declared type means rebuilding the table, and dropping the old generation_run counts every
generation_output row as a broken foreign key (foreign keys cannot be turned off inside the
migration's transaction), so nothing changes there. The audit log's before/after stay text: they
are the exact canonical JSON its hash chain covers.

Revision ID: 0014_json_columns
Revises: 0013_input_limits
Create Date: 2026-12-04
"""

from alembic import op

revision = "0014_json_columns"
down_revision = "0013_input_limits"
branch_labels = None
depends_on = None

COLUMNS = {
    "generation_run": ("record",),
    "output_neighbour": ("obligations",),
    "output_score": ("thresholds", "flags"),
}


def _convert(kind: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, columns in COLUMNS.items():
        changes = ", ".join(f"ALTER COLUMN {c} TYPE {kind} USING {c}::{kind}" for c in columns)
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    _convert("jsonb")


def downgrade() -> None:
    _convert("text")
