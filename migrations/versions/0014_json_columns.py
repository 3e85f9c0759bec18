"""JSON columns: lists and objects stored whole are JSON values, not text holding JSON.

A run's record, each neighbour's obligations and each score's thresholds and flags were Text that
the code turned into values with json.dumps/loads wherever it read them. They become JSON on SQLite
and JSONB on PostgreSQL, converted in place (every stored text is already JSON). The audit log's
before/after stay text: they are the exact canonical JSON its hash chain covers.

SQLite cannot change a column's type, so batch mode rebuilds each table; the rebuild drops the
append-only triggers with the old table, so they are made again, and generation_run (which
generation_output references) is dropped and renamed with foreign keys deferred to the commit.

Revision ID: 0014_json_columns
Revises: 0013_input_limits
Create Date: 2026-12-04
"""

import sqlalchemy as sa
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
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER {table}_append_only_{verb.lower()} BEFORE {verb} ON {table}
        BEGIN SELECT RAISE(ABORT, 'provenance records are append-only'); END"""
    for table in COLUMNS
    for verb in ("UPDATE", "DELETE")
]


def _convert(to_json: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        kind = "jsonb" if to_json else "text"
        for table, columns in COLUMNS.items():
            changes = ", ".join(f"ALTER COLUMN {c} TYPE {kind} USING {c}::{kind}" for c in columns)
            op.execute(f"ALTER TABLE {table} {changes}")
        return
    old, new = (sa.Text(), sa.JSON()) if to_json else (sa.JSON(), sa.Text())
    op.execute("PRAGMA defer_foreign_keys = ON")
    for table, columns in COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(column, existing_type=old, type_=new, existing_nullable=False)
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    _convert(to_json=True)


def downgrade() -> None:
    _convert(to_json=False)

