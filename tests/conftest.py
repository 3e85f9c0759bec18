"""Fixtures: a fresh, migrated catalogue per test, on SQLite or on the real PostgreSQL server.

Set STYLEVAULT_TEST_DB to a PostgreSQL URL (the Makefile does) to run the whole suite there; the
suite makes its own databases on that server and drops them afterwards. Without it, each test gets
a copy of a migrated SQLite file.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from stylevault.governance.catalogue import actors
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.ingest.run import ingest
from tests.desk import client_for, give_passwords, sign_in
from tests.factories import TEAM_ACTORS, encode, picture, write, write_csv

TEST_DB = os.environ.get("STYLEVAULT_TEST_DB", "").strip()
ON_POSTGRES = TEST_DB.startswith("postgresql")
TABLES_TO_CLEAR = [
    "index_member",
    "index_build",
    "policy_text",
    "styleset_version_member",
    "styleset_version",
    "styleset_member",
    "styleset",
    "audit_event",
    "licence_alias",
    "rejection",
    "licence",
    "source",
    "image",
    "ingest_run",
    "actor_role",
    "actor",
]


def pytest_report_header(config):
    return f"stylevault catalogue backend: {'PostgreSQL ' + TEST_DB if ON_POSTGRES else 'SQLite'}"


def pytest_collection_modifyitems(config, items):
    if os.environ.get("STYLEVAULT_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set STYLEVAULT_SLOW=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


class PostgresServer:
    """Creates and drops throwaway databases on the test server."""

    def __init__(self, url: str):
        self.url = make_url(url)
        if self.url.drivername == "postgresql":
            self.url = self.url.set(drivername="postgresql+psycopg")
        self.admin = sa.create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.created: list[str] = []

    def create(self) -> str:
        name = f"stylevault_test_{uuid.uuid4().hex[:10]}"
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.remove(name)

    def close(self) -> None:
        for name in list(self.created):
            with self.admin.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


@pytest.fixture(scope="session")
def postgres():
    if not ON_POSTGRES:
        yield None
        return
    server = PostgresServer(TEST_DB)
    yield server
    server.close()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory, postgres):
    """A catalogue migrated to head once per session: a SQLite file to copy, or a PG database."""
    if postgres is not None:
        url = postgres.create()
        template = Catalogue.open(url, tmp_path_factory.mktemp("store"))
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        template = Catalogue.open(f"sqlite:///{path}")
    template.upgrade()
    template.dispose()
    return template.url


@pytest.fixture
def catalogue(tmp_path, migrated_template, postgres):
    """A fresh, migrated, empty catalogue with its own content store."""
    if postgres is not None:
        cat = Catalogue.open(migrated_template, tmp_path / "store")
        with cat.engine.begin() as connection:
            # The audit log refuses TRUNCATE by trigger; the test reset runs as a replica to skip it.
            connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
            connection.exec_driver_sql(f"TRUNCATE {', '.join(TABLES_TO_CLEAR)} RESTART IDENTITY CASCADE")
            connection.exec_driver_sql(f"UPDATE audit_head SET seq = 0, hash = '{'0' * 64}'")
    else:
        source = make_url(migrated_template).database
        target = tmp_path / "catalogue.db"
        shutil.copyfile(source, target)
        cat = Catalogue.open(f"sqlite:///{target}", tmp_path / "store")
    yield cat
    cat.dispose()


@pytest.fixture
def empty_database(tmp_path, postgres):
    """A URL with no tables at all, for migration tests."""
    if postgres is not None:
        url = postgres.create()
        yield url
        postgres.drop(url)
    else:
        yield f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture
def team(catalogue):
    """The actors most tests need, added by the admin (the first bootstraps itself)."""
    with catalogue.write() as session:
        for name, roles in TEAM_ACTORS.items():
            actors.add(session, None if name == "admin" else "admin", name, roles)
    return {
        "admin": "admin",
        "steward": "sam",
        "steward_legal": "kim",
        "legal": "lee",
        "viewer": "val",
        "generator": "gia",
    }


@pytest.fixture
def cli(catalogue, monkeypatch):
    """Run the real CLI (Typer's CliRunner) against the test catalogue."""
    from typer.testing import CliRunner

    from stylevault.governance.cli import app

    monkeypatch.setenv("STYLEVAULT_DB", catalogue.url)
    monkeypatch.setenv("STYLEVAULT_STORE", str(catalogue.store))
    monkeypatch.delenv("STYLEVAULT_USER", raising=False)
    runner = CliRunner()

    def invoke(*args: str, actor: str | None = None):
        argv = (["--as", actor] if actor else []) + [str(a) for a in args]
        return runner.invoke(app, argv, catch_exceptions=False)

    return invoke


@pytest.fixture
def artifacts() -> Path:
    """Where tests leave files worth looking at after a run (screenshots, reports)."""
    folder = Path(__file__).resolve().parent.parent / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


# ---------------------------------------------------------------- a published style set and an encoder

PUBLISHED_LICENCES = ["CC0", "CC BY 4.0", "CC BY-SA 4.0", "CC BY-NC 4.0", "CC0", "CC BY 4.0", "CC0", "CC0"]


@pytest.fixture(scope="session")
def encoder_dir(tmp_path_factory) -> Path:
    """A tiny open_clip model with seeded random weights, in open_clip's local-dir layout."""
    from tests.factories import tiny_encoder

    return tiny_encoder(tmp_path_factory.mktemp("encoder") / "tiny-clip")


@pytest.fixture
def published(catalogue, team, tmp_path):
    """`looks@1`: eight approved images (image 4 CC BY-NC; image 8 expires on 2027-01-31), each
    with a title, creator and source URL."""
    from stylevault.governance.curation import stylesets
    from stylevault.governance.ingest.run import ingest
    from stylevault.governance.legal import review
    from tests.factories import encode, picture, write, write_csv

    rows = []
    for n, licence in enumerate(PUBLISHED_LICENCES):
        write(tmp_path / "in" / f"{n}.png", encode(picture(700 + n, size=(40, 40))))
        row = {
            "path": f"{n}.png",
            "licence": licence,
            "attribution": f"Artist {n}",
            "creator": f"Artist {n}",
            "title": f"Study {n}",
            "source_url": f"https://example.org/study-{n}",
        }
        if n == 7:
            row["licence_expires"] = "2027-01-31"
        rows.append(row)
    ingest(catalogue, "sam", tmp_path / "in", manifest=write_csv(tmp_path / "m.csv", rows), progress=False)
    with catalogue.write() as session:
        review.decide(session, "lee", "approve", [str(i) for i in range(1, 9)], None)
        stylesets.create(session, "sam", "looks")
        stylesets.add(session, "sam", "looks", [str(i) for i in range(1, 9)])
        stylesets.publish(session, "sam", "looks")
    return catalogue


@pytest.fixture(scope="session")
def rdm_dir(tmp_path_factory) -> Path:
    """A tiny untrained RDM whose context width (32) fits the tiny encoder."""
    from stylevault.generation.model import create_untrained, save_model

    parts = create_untrained(context_dim=32, seed=0)
    return save_model(*parts, tmp_path_factory.mktemp("models") / "tiny-rdm")


@pytest.fixture
def indexed(published, encoder_dir, tmp_path):
    """`published`, with its commercial index built on 2026-11-27: (catalogue, index folder)."""
    from datetime import date

    from stylevault.governance.index import builds as index

    folder = tmp_path / "idx"
    index.build(
        published, "sam", "looks", "commercial", f"local-dir:{encoder_dir}", folder, on=date(2026, 11, 27)
    )
    return published, folder


# ---------------------------------------------------------------- outputs to review


@pytest.fixture
def policy_dir(tmp_path, monkeypatch):
    from stylevault.governance.rules.policy_files import load_policy

    shipped = load_policy("commercial").path.read_text()
    folder = tmp_path / "policies"
    folder.mkdir()
    assert "near_copy_cosine: 0.95" in shipped and "signoff_required: true" in shipped
    text = shipped.replace("name: commercial", "name: review").replace(
        "near_copy_cosine: 0.95", "near_copy_cosine: 1.0"
    )
    (folder / "review.yaml").write_text(text)
    monkeypatch.setenv("STYLEVAULT_POLICIES", str(folder))
    return folder


@pytest.fixture
def reviewed(published, encoder_dir, rdm_dir, policy_dir, tmp_path):
    """Two outputs generated by gia from `looks@1` under the `review` policy, plus a reviewer (rita)
    and an actor who both generates and reviews (rex): (catalogue, index folder, the run)."""
    from datetime import date

    from stylevault.governance.index import builds as index
    from tests.factories import run_generate

    with published.write() as session:
        actors.add(session, "admin", "rita", ["reviewer"])
        actors.add(session, "admin", "rex", ["generator", "reviewer"])
    folder = tmp_path / "idx"
    index.build(
        published, "sam", "looks", "review", f"local-dir:{encoder_dir}", folder, on=date(2026, 11, 27)
    )
    made = run_generate(published, folder, rdm_dir, tmp_path / "out", n=2)
    return published, folder, made


@pytest.fixture
def queue(catalogue, team, tmp_path):
    """Six images sam ingested: 1-4 CC0 in collection `north`, 5 with an unrecognised licence, 6 CC-BY
    expiring on 2026-12-01; everyone has a password."""
    rows = []
    for n in range(6):
        write(tmp_path / "in" / f"{n}.png", encode(picture(300 + n)))
        licence = {4: "free for personal use", 5: "CC BY 4.0"}.get(n, "CC0")
        rows.append({"path": f"{n}.png", "licence": licence, "collection": "north" if n < 4 else "south"})
    rows[5]["licence_expires"] = "2026-12-01"
    ingest(catalogue, "sam", tmp_path / "in", manifest=write_csv(tmp_path / "m.csv", rows), progress=False)
    give_passwords(catalogue, ["admin", "sam", "kim", "lee", "val"])
    return catalogue


@pytest.fixture
def lee(queue):
    client = client_for(queue)
    assert sign_in(client, "lee").status_code == 303
    return client
