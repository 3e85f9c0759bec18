"""Sources per place: a source is one (locator, path), so two files under one URL keep two sources.

Before this revision a source was unique on (image, locator), and the locator is the source URL when
one is given: two byte-identical files listed under one URL (a package that ships one picture twice,
under two licences) kept one source, and the other path and its licence statement were lost. Now
the path is part of what makes a source distinct (DESIGN.md rule 2). Every source that ingest wrote
has a path; one without (none is known) takes its locator, so the new key can be NOT NULL. Sources
already merged by the old key cannot be recovered: ingest the collection again to record them.

Revision ID: 0007_source_per_place
Revises: 0006_web_signin
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_source_per_place"
down_revision = "0006_web_signin"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE source SET path = locator WHERE path IS NULL")
    with op.batch_alter_table("source") as batch:
        batch.drop_constraint("uq_source_image_id_locator", type_="unique")
        batch.alter_column("path", existing_type=sa.Text(), nullable=False)
        batch.create_unique_constraint("uq_source_image_id_locator_path", ["image_id", "locator", "path"])


def downgrade() -> None:
    with op.batch_alter_table("source") as batch:
        batch.drop_constraint("uq_source_image_id_locator_path", type_="unique")
        batch.alter_column("path", existing_type=sa.Text(), nullable=True)
        batch.create_unique_constraint("uq_source_image_id_locator", ["image_id", "locator"])
