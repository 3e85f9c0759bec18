"""Alembic environment: one chain of revisions for SQLite and PostgreSQL.

stylevault passes an open connection in `config.attributes["connection"]`; the `alembic` command
line works too, from `sqlalchemy.url` in an alembic.ini of your own.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

from stylevault.governance.catalogue import models, output_models  # noqa: F401 (every table on the metadata)

target_metadata = models.SQLModel.metadata


def run_migrations(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    engine = engine_from_config(
        context.config.get_section(context.config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as fresh:
        run_migrations(fresh)
