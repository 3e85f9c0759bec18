"""Opening a catalogue: the database engine, its migrations and the content store beside it."""

from __future__ import annotations

import ast
import functools
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlmodel import Session

from stylevault.governance.errors import BadInput, Busy

T = TypeVar("T")
DEFAULT_URL = "sqlite:///stylevault.db"
MIGRATION_LOCK = 0x5354594C45  # the PostgreSQL advisory lock migrations hold ("STYLE")
ATTEMPTS = 5  # how often a write transaction that lost a deadlock or serialisation race is run
# PostgreSQL aborts one transaction of a deadlock (40P01) or a serialisation conflict (40001); run
# again from the start, it sees the winner's commit and goes through.
LOST_A_RACE = {"40001": "serialisation failure", "40P01": "deadlock detected"}


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    engine = sa.create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        # Let SQLAlchemy, not pysqlite, emit BEGIN, so writers can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):
        # BEGIN IMMEDIATE for writers: two processes never both read the audit head and then
        # race to extend it; the second waits for the lock instead of failing at COMMIT.
        immediate = connection.get_execution_options().get("stylevault_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def create_engine(url: str) -> sa.Engine:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise BadInput(f"--db: not a database URL: {url!r}") from exc
    if parsed.get_backend_name() == "sqlite":
        if parsed.database not in (None, "", ":memory:"):
            folder = Path(parsed.database).expanduser().resolve().parent
            if not folder.is_dir():
                raise BadInput(f"--db: folder does not exist: {folder}")
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return sa.create_engine(parsed, pool_pre_ping=True)
    raise BadInput(f"--db: unsupported database {parsed.get_backend_name()!r} (use sqlite or postgresql)")


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite catalogue URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return Path(parsed.database).expanduser().resolve()
    return None


def default_store(url: str) -> Path:
    """The content store sits beside a SQLite file (`x.db` -> `x.store/`); elsewhere in the cwd."""
    db_path = sqlite_file(url)
    if db_path is not None:
        return db_path.with_name(db_path.stem + ".store")
    return Path("stylevault-store").resolve()


def migrations_dir() -> Path:
    return Path(str(resources.files("stylevault.migrations")))


_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


@functools.cache
def migration_head() -> str:
    """The code's migration head, read off the version files' `revision`/`down_revision` lines
    (the one revision no other revises) without importing alembic or running the scripts; alembic's
    own answer where the files are not one plain chain's."""
    revisions, revised = set(), set()
    for path in (migrations_dir() / "versions").glob("*.py"):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            continue
        revisions.add(ast.literal_eval(found["revision"]))
        down = ast.literal_eval(found.get("down_revision", "None"))
        revised.update(down if isinstance(down, tuple | list) else [down])
    heads = revisions - revised
    if len(heads) == 1:
        return heads.pop()
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def alembic_config(engine_or_connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = engine_or_connection
    return config


@dataclass
class Catalogue:
    """A catalogue database plus its content store (thumbnails, later embeddings)."""

    url: str
    engine: sa.Engine
    store: Path

    @classmethod
    def open(cls, url: str | None = None, store: str | os.PathLike | None = None) -> Catalogue:
        url = url or DEFAULT_URL
        return cls(url=url, engine=create_engine(url), store=Path(store) if store else default_store(url))

    def upgrade(self, revision: str = "head") -> None:
        from alembic import command

        with self._migrating() as connection:
            command.upgrade(alembic_config(connection), revision)

    def downgrade(self, revision: str) -> None:
        from alembic import command

        with self._migrating() as connection:
            command.downgrade(alembic_config(connection), revision)

    @contextmanager
    def _migrating(self) -> Iterator[sa.Connection]:
        """A writer's transaction that migrations take one at a time: two `init`s started together
        queue up, and the later one finds the schema current instead of racing to create it."""
        with self.engine.execution_options(stylevault_write=True).begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            yield connection

    def revision(self) -> str | None:
        """The catalogue's migration revision (alembic's version table, read with one query), or None
        for a database alembic never stamped."""
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def require_current(self) -> None:
        """Refuse to work on a catalogue that is missing or behind the code's migrations."""
        head = migration_head()
        db_path = sqlite_file(self.url)
        if db_path is not None and not db_path.exists():
            # Connecting would create an empty file, and the next command would find it "uninitialised".
            raise BadInput(f"no catalogue at {self.safe_url}: run `stylevault init` first")
        current = self.revision()
        if current is None:
            raise BadInput(f"no catalogue at {self.safe_url}: run `stylevault init` first")
        if current != head:
            raise BadInput(
                f"catalogue at {self.safe_url} is at revision {current}, code expects {head}: "
                "run `stylevault init` to upgrade"
            )

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """One snapshot for the whole block, as a SQLite read transaction is: on PostgreSQL that takes
        REPEATABLE READ, or the audit head and the chain read a moment apart would disagree."""
        engine = self.engine
        if engine.dialect.name == "postgresql":
            engine = engine.execution_options(isolation_level="REPEATABLE READ")
        with Session(engine) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed whole at the end of the block, or rolled back whole."""
        engine = self.engine.execution_options(stylevault_write=True)
        with Session(engine) as session, session.begin():
            yield session

    def transact(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one write transaction, run again from the start (up to ATTEMPTS times
        in all) when the database aborted it to break a deadlock or a serialisation conflict: the one
        place the CLI and the desk retry. `work` must touch nothing outside the catalogue."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.write() as session:
                    return work(session)
            except sa.exc.DBAPIError as exc:
                race = LOST_A_RACE.get(getattr(exc.orig, "sqlstate", None))
                if race is None:
                    raise
                if attempt == ATTEMPTS:
                    raise Busy(
                        f"catalogue busy: concurrent writers aborted this change {ATTEMPTS} times "
                        f"({race}); nothing was changed, run it again"
                    ) from None
                time.sleep(random.uniform(0, 0.05 * attempt))  # let the winner commit first
        raise AssertionError("ATTEMPTS is at least 1")

    def dispose(self) -> None:
        self.engine.dispose()
