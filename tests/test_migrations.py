"""The Alembic chain on SQLite and PostgreSQL: upgrade from empty to a schema that is exactly the
SQLModel metadata, downgrade to nothing and back, `init` on a catalogue with data, and the CHECK and
foreign-key constraints holding against raw SQL that bypasses stylevault's own code."""

from __future__ import annotations

import json
import re

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.db import Catalogue, alembic_config
from stylevault.governance.catalogue.models import Image, IngestRun, Licence, SQLModel
from stylevault.governance.cli import app
from stylevault.governance.curation import stylesets
from stylevault.governance.door import Request
from stylevault.governance.errors import BadInput
from stylevault.governance.index import builds as index
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import alias_edits, review
from stylevault.governance.outputs import listing, runs
from stylevault.governance.outputs import signoff as outputs
from stylevault.governance.web import passwords
from tests.factories import folder_of_images, tiny_encoder, write_csv

FROZEN = ("styleset_version", "styleset_version_member")
RECORDS = ("generation_run", "generation_output", "output_neighbour", "output_score", "output_decision")

HEAD = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
TABLES = {table.name for table in SQLModel.metadata.sorted_tables}


@pytest.fixture
def fresh(empty_database, tmp_path):
    """A catalogue object on a database with no tables yet."""
    cat = Catalogue.open(empty_database, tmp_path / "store")
    yield cat
    cat.dispose()


def differences(cat: Catalogue) -> list:
    """What autogenerate would change to bring the database to the models, configured as env.py does."""
    with cat.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "target_metadata": SQLModel.metadata,
                "render_as_batch": connection.dialect.name == "sqlite",
                "compare_type": True,
            },
        )
        return compare_metadata(context, SQLModel.metadata)


def check_constraints(cat: Catalogue) -> dict[str, set[str]]:
    """CHECK constraints by table (autogenerate does not compare them, so the test does)."""
    with cat.engine.connect() as connection:
        inspector = sa.inspect(connection)
        return {table: {ck["name"] for ck in inspector.get_check_constraints(table)} for table in TABLES}


def check_texts(cat: Catalogue) -> dict[str, str]:
    with cat.engine.connect() as connection:
        inspector = sa.inspect(connection)
        return {
            ck["name"]: ck["sqltext"] for table in TABLES for ck in inspector.get_check_constraints(table)
        }


def model_check_constraints() -> dict[str, set[str]]:
    return {
        table.name: {str(c.name) for c in table.constraints if isinstance(c, sa.CheckConstraint)}
        for table in SQLModel.metadata.sorted_tables
    }


def leftovers(cat: Catalogue) -> dict[str, list[str]]:
    """Everything in the database that is not Alembic's own version table."""
    with cat.engine.connect() as connection:
        found = {"tables": sorted(sa.inspect(connection).get_table_names())}
        if connection.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(
                "SELECT type, name FROM sqlite_master WHERE name NOT LIKE '%alembic_version%'"
            )
            found["objects"] = sorted(f"{kind}:{name}" for kind, name in rows)
        else:
            found["functions"] = sorted(
                connection.exec_driver_sql(
                    "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
                    " WHERE n.nspname = 'public'"
                ).scalars()
            )
            found["objects"] = sorted(
                connection.execute(
                    sa.text(
                        "SELECT c.relkind::text || ':' || c.relname FROM pg_class c"
                        " JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = 'public' AND c.relname NOT LIKE 'alembic_version%'"
                    )
                ).scalars()
            )
            found["triggers"] = sorted(
                connection.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal").scalars()
            )
    return found


def triggers(cat: Catalogue) -> list[str]:
    with cat.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name"
        else:
            query = (
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D' ORDER BY tgname"
            )
        return list(connection.exec_driver_sql(query).scalars())


def expected_triggers(cat: Catalogue) -> list[str]:
    if cat.engine.dialect.name == "sqlite":
        return sorted(
            [f"audit_event_append_only_{verb}" for verb in ("delete", "update")]
            + [f"{table}_frozen_{verb}" for table in FROZEN for verb in ("delete", "update")]
            + ["index_build_guard", "index_build_no_delete"]
            + [f"index_member_frozen_{verb}" for verb in ("delete", "update")]
            + [f"{table}_append_only_{verb}" for table in RECORDS for verb in ("delete", "update")]
        )
    return sorted(
        ["audit_event_append_only", "audit_event_no_truncate"]
        + [f"{table}_{suffix}" for table in FROZEN for suffix in ("frozen", "no_truncate")]
        + ["index_build_guard", "index_member_frozen"]
        + [f"{table}_append_only" for table in RECORDS]
    )


def snapshot(cat: Catalogue) -> dict[str, list]:
    """Every row of every stylevault table, in primary-key order."""
    with cat.engine.connect() as connection:
        return {
            table.name: [
                tuple(row)
                for row in connection.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for table in SQLModel.metadata.sorted_tables
        }


def assert_schema_is_head(cat: Catalogue, *, fresh_audit: bool = True) -> None:
    assert cat.revision() == HEAD
    assert differences(cat) == []
    assert check_constraints(cat) == model_check_constraints()
    assert triggers(cat) == expected_triggers(cat)
    if fresh_audit:
        with cat.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT id, seq, hash FROM audit_head").all() == [
                (1, 0, audit.GENESIS)
            ]


# ------------------------------------------------------------------ the chain itself


def test_upgrade_from_empty_matches_the_models(fresh):
    assert fresh.revision() is None
    with fresh.engine.connect() as connection:
        assert sa.inspect(connection).get_table_names() == []
    fresh.upgrade()
    with fresh.engine.connect() as connection:
        assert set(sa.inspect(connection).get_table_names()) == TABLES | {"alembic_version"}
    assert_schema_is_head(fresh)
    fresh.require_current()
    with fresh.read() as session:
        assert audit.verify(session).ok


def test_check_constraints_say_what_the_models_say(fresh):
    """autogenerate ignores CHECK constraints, so a rule edited in one place only would go unnoticed.
    SQLite keeps the text as written (PostgreSQL rewrites it), so compare it there."""
    if fresh.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL normalises CHECK text; names are compared in the upgrade test")
    fresh.upgrade()
    expected = {
        str(c.name): str(c.sqltext)
        for table in SQLModel.metadata.sorted_tables
        for c in table.constraints
        if isinstance(c, sa.CheckConstraint)
    }
    assert check_texts(fresh) == expected


def test_model_check_constraints_are_all_named():
    """Every CHECK is named, so a later batch migration on SQLite can drop and recreate it."""
    names = model_check_constraints()
    assert all(name.startswith(f"ck_{table}_") for table, found in names.items() for name in found)
    assert sum(len(found) for found in names.values()) == 30
    assert "ck_image_four_eyes" in names["image"]
    assert "ck_ingest_run_reconciled" in names["ingest_run"]


def test_downgrade_to_base_leaves_nothing_then_upgrades_again(fresh):
    fresh.upgrade()
    fresh.downgrade("base")
    assert fresh.revision() is None
    found = leftovers(fresh)
    assert found.pop("tables") == ["alembic_version"]
    assert all(value == [] for value in found.values()), found
    with fresh.engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 0

    fresh.upgrade()
    assert_schema_is_head(fresh)
    fresh.downgrade("base")
    fresh.upgrade()
    assert_schema_is_head(fresh)


def test_a_failed_upgrade_leaves_the_database_as_it_was(fresh):
    """The migration runs in one transaction: a clash half way leaves no half-made schema."""
    with fresh.engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE image (id INTEGER PRIMARY KEY)")
    with pytest.raises(sa.exc.DBAPIError, match="image"):
        fresh.upgrade()
    assert fresh.revision() is None
    with fresh.engine.connect() as connection:
        assert sa.inspect(connection).get_table_names() == ["image"]


# ------------------------------------------------------------------ init on a catalogue with data


def populate(cat: Catalogue, folder) -> list[int]:
    with cat.write() as session:
        actors.add(session, None, "admin", ["admin"])
        actors.add(session, "admin", "sam", ["steward"])
        actors.add(session, "admin", "lee", ["legal"])
        actors.add(session, "admin", "gia", ["generator"])
    paths = folder_of_images(folder / "in", 2)
    manifest = write_csv(folder / "manifest.csv", [{"path": p.name, "licence": "CC0"} for p in paths])
    summary = ingest(cat, "sam", folder / "in", manifest=manifest, progress=False)
    assert (summary.offered, summary.catalogued) == (2, 2)
    with cat.read() as session:
        ids = sorted(session.scalars(sa.select(Image.id)))
    with cat.write() as session:
        review.decide(session, "lee", "approve", [str(ids[0])], None)
        review.decide(session, "lee", "reject", [str(ids[1])], "off-style")
    if cat.revision() == HEAD:
        with cat.write() as session:
            stylesets.create(session, "sam", "looks")
            stylesets.add(session, "sam", "looks", [str(ids[0])])
            stylesets.publish(session, "sam", "looks")
        encoder = tiny_encoder(folder / "encoder")
        index.build(cat, "sam", "looks", "commercial", f"local-dir:{encoder}", folder / "index")
        from stylevault.generation.model import create_untrained, save_model

        model = save_model(*create_untrained(context_dim=32), folder / "model")
        request = Request(prompt="a study", steps=1, k=1)
        runs.generate(cat, "gia", request, folder / "index", model, folder / "out", device="cpu")
        with cat.write() as session:
            released = outputs.release(session, "lee", ["1"], None, override="checked by hand")
            assert released["refused"] == []
        with cat.write() as session:
            passwords.set_password(session, "admin", "lee", "correct horse battery")
            alias_edits.add(session, "lee", "Our Studio Licence", "LicenseRef-studio", "contract 2026-04")
    return ids


def test_upgrade_with_data_from_the_first_revision(fresh, tmp_path):
    """A catalogue made at 0001 with real data comes up to head with every row kept, and works."""
    fresh.upgrade("0001_catalogue_core")
    ids = populate(fresh, tmp_path)
    before = snapshot_at(fresh, ["actor", "image", "licence", "source", "audit_event", "ingest_run"])
    fresh.upgrade()
    assert_schema_is_head(fresh, fresh_audit=False)
    assert snapshot_at(fresh, list(before)) == before
    with fresh.write() as session:
        stylesets.create(session, "sam", "after-upgrade")
        stylesets.add(session, "sam", "after-upgrade", [str(i) for i in ids])
        assert stylesets.publish(session, "sam", "after-upgrade")["members"] == 2
    fresh.downgrade("0001_catalogue_core")
    assert snapshot_at(fresh, ["actor", "image", "licence", "source"]) == {
        table: before[table] for table in ["actor", "image", "licence", "source"]
    }
    with fresh.read() as session:
        assert audit.verify(session).ok


def snapshot_at(cat: Catalogue, tables: list[str]) -> dict[str, list]:
    with cat.engine.connect() as connection:
        return {
            name: [tuple(row) for row in connection.exec_driver_sql(f"SELECT * FROM {name} ORDER BY 1")]
            for name in tables
        }


JSON_COLUMNS = {
    "generation_run": ("record",),
    "output_neighbour": ("obligations",),
    "output_score": ("thresholds", "flags"),
}


def json_cells(cat: Catalogue, *, typed: bool = False) -> dict[str, list]:
    """The JSON columns' cells in primary-key order: as the driver returns them, or through the
    models' column types."""
    found = {}
    with cat.engine.connect() as connection:
        for name, columns in JSON_COLUMNS.items():
            table = SQLModel.metadata.tables[name]
            chosen = [table.c[c] if typed else sa.literal_column(c) for c in columns]
            query = sa.select(*chosen).select_from(table).order_by(*table.primary_key.columns)
            found[name] = [tuple(row) for row in connection.execute(query)]
    return found


def parsed(cells: dict[str, list]) -> dict[str, list]:
    """Each cell read the way 0013's code read it: text holding JSON."""
    return {table: [tuple(json.loads(cell) for cell in row) for row in rows] for table, rows in cells.items()}


def test_json_columns_of_a_catalogue_made_at_0013_convert_in_place(fresh, tmp_path):
    """A catalogue whose runs, neighbours and scores hold JSON as text (as 0013 stored them) comes up
    with the same values, read as JSON, still verifying, and goes back to text."""
    fresh.upgrade()
    populate(fresh, tmp_path)
    fresh.downgrade("0013_input_limits")
    as_text = json_cells(fresh)
    assert all(as_text.values())
    values = parsed(as_text)
    assert values["output_neighbour"][0] == ([],)  # CC0: nothing owed
    assert values["generation_run"][0][0]["prompt"] == "a study"
    fresh.upgrade()
    assert_schema_is_head(fresh, fresh_audit=False)
    assert json_cells(fresh, typed=True) == values
    with fresh.read() as session:
        assert audit.verify(session).ok
        shown = listing.show(session, "1")
    assert shown.scores["thresholds"] == values["output_score"][0][0]
    assert shown.neighbours[0].obligations == []
    fresh.downgrade("0013_input_limits")
    assert parsed(json_cells(fresh)) == values
    fresh.upgrade()
    assert_schema_is_head(fresh, fresh_audit=False)


def test_init_on_a_current_catalogue_with_data_is_a_no_op(fresh, tmp_path):
    fresh.upgrade()
    populate(fresh, tmp_path)
    before = snapshot(fresh)
    assert all(before[table] for table in TABLES - {"rejection"}), "every table but rejection has rows"

    fresh.upgrade()
    assert snapshot(fresh) == before
    assert fresh.revision() == HEAD

    runner = CliRunner()
    args = ["--db", fresh.url, "--store", str(fresh.store)]
    run = runner.invoke(app, [*args, "init"], catch_exceptions=False)
    assert run.exit_code == 0, run.output
    assert run.stdout.strip() == f"catalogue {fresh.safe_url} at revision {HEAD}"
    run = runner.invoke(app, [*args, "init", "--admin", "eve"], catch_exceptions=False)
    assert run.exit_code == 1
    assert "already has actors" in run.stderr
    assert snapshot(fresh) == before
    with fresh.read() as session:
        result = audit.verify(session)
    assert result.ok and result.events == len(before["audit_event"])


def test_require_current_refuses_a_missing_catalogue(fresh):
    with pytest.raises(BadInput, match=r"^no catalogue at .*: run `stylevault init` first$"):
        fresh.require_current()
    run = CliRunner().invoke(app, ["--db", fresh.url, "audit", "verify"], catch_exceptions=False)
    assert run.exit_code == 2
    assert run.stderr.strip() == f"stylevault: no catalogue at {fresh.safe_url}: run `stylevault init` first"


def test_a_read_command_on_a_sqlite_path_that_does_not_exist_creates_nothing(tmp_path):
    # It used to leave an empty .db behind, which the next command took for an uninitialised catalogue.
    target = tmp_path / "typo.db"
    for command_line in (["images", "list"], ["audit", "verify"], ["report", "licences"]):
        run = CliRunner().invoke(app, ["--db", f"sqlite:///{target}", *command_line], catch_exceptions=False)
        assert run.exit_code == 2
        assert (
            run.stderr.strip()
            == f"stylevault: no catalogue at sqlite:///{target}: run `stylevault init` first"
        )
    assert list(tmp_path.iterdir()) == []


def test_a_postgresql_catalogue_says_where_its_default_content_store_goes(fresh, tmp_path, monkeypatch):
    if not fresh.url.startswith("postgresql"):
        pytest.skip("a SQLite catalogue keeps its store beside its file")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STYLEVAULT_STORE", raising=False)
    fresh.upgrade()
    run = CliRunner().invoke(app, ["--db", fresh.url, "images", "list"], catch_exceptions=False)
    assert run.exit_code == 0
    assert f"content store {tmp_path / 'stylevault-store'}" in run.stderr
    assert "set --store or STYLEVAULT_STORE" in run.stderr
    with_store = ["--db", fresh.url, "--store", str(tmp_path / "kept"), "images", "list"]
    assert CliRunner().invoke(app, with_store, catch_exceptions=False).stderr == ""


def test_require_current_refuses_a_catalogue_stamped_back(fresh, tmp_path):
    fresh.upgrade()
    populate(fresh, tmp_path)
    with fresh.engine.begin() as connection:
        command.stamp(alembic_config(connection), "base")
    assert fresh.revision() is None
    with pytest.raises(BadInput, match=r"^no catalogue at .*: run `stylevault init` first$"):
        fresh.require_current()

    # A catalogue at another (older) revision than the code's head is refused with both named.
    with fresh.engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES ('0000_older')")
    with pytest.raises(BadInput) as refused:
        fresh.require_current()
    assert str(refused.value) == (
        f"catalogue at {fresh.safe_url} is at revision 0000_older, code expects {HEAD}: "
        "run `stylevault init` to upgrade"
    )
    run = CliRunner().invoke(app, ["--db", fresh.url, "images", "list"], catch_exceptions=False)
    assert run.exit_code == 2
    assert "is at revision 0000_older" in run.stderr

    with fresh.engine.begin() as connection:
        command.stamp(alembic_config(connection), "head", purge=True)
    fresh.require_current()


# ------------------------------------------------------------------ constraints in the database


@pytest.fixture
def stocked(catalogue, team, tmp_path):
    """One image ingested by sam (licence CC0, normalised), one ingest run."""
    paths = folder_of_images(tmp_path / "in", 1)
    manifest = write_csv(tmp_path / "manifest.csv", [{"path": p.name, "licence": "CC0"} for p in paths])
    ingest(catalogue, "sam", tmp_path / "in", manifest=manifest, progress=False)
    with catalogue.read() as session:
        image = session.scalars(sa.select(Image)).one()
        licence = session.get(Licence, image.id)
        assert (licence.status, licence.spdx) == ("normalised", "CC0-1.0")
        ids = {row.name: row.id for row in session.execute(sa.text("SELECT id, name FROM actor"))}
        return {"image": image.id, "run": image.ingest_run_id, "sam": image.ingested_by, "actors": ids}


def image_row(stocked, **overrides) -> dict:
    row = dict(
        sha256="a" * 64,
        phash="0" * 16,
        format="PNG",
        mode="RGB",
        width=4,
        height=4,
        size_bytes=10,
        first_seen_at=sa.func.now(),
        ingest_run_id=stocked["run"],
        ingested_by=stocked["sam"],
        state="pending",
    )
    return {**row, **overrides}


def run_row(stocked, **overrides) -> dict:
    row = dict(
        actor_id=stocked["sam"],
        root="/nowhere",
        started_at=sa.func.now(),
        status="completed",
        offered=3,
        catalogued=2,
        duplicates=0,
        rejected=1,
    )
    return {**row, **overrides}


IMAGE, LICENCE, RUN = Image.__table__, Licence.__table__, IngestRun.__table__

VIOLATIONS = {
    "image state": lambda s: IMAGE.update().values(state="archived"),
    "four eyes": lambda s: IMAGE.update().values(state="approved", state_by=IMAGE.c.ingested_by),
    "approved by nobody": lambda s: IMAGE.update().values(state="approved"),
    "image dimensions": lambda s: IMAGE.update().values(width=0),
    "image sha256 length": lambda s: IMAGE.insert().values(image_row(s, sha256="abc")),
    "image sha256 unique": lambda s: IMAGE.insert().values(
        image_row(s, sha256=sa.select(IMAGE.c.sha256).scalar_subquery())
    ),
    "normalised without spdx": lambda s: LICENCE.update().values(status="normalised", spdx=None),
    "verified without spdx": lambda s: LICENCE.update().values(
        status="verified", spdx=None, verified_by=s["actors"]["lee"], verified_at=sa.func.now()
    ),
    "unrecognised with spdx": lambda s: LICENCE.update().values(status="unrecognised"),
    "missing with spdx": lambda s: LICENCE.update().values(status="missing"),
    "verified without verifier": lambda s: LICENCE.update().values(status="verified"),
    "licence status": lambda s: LICENCE.update().values(status="probably-fine"),
    "run counts do not reconcile (insert)": lambda s: RUN.insert().values(run_row(s, rejected=0)),
    "run counts do not reconcile (update)": lambda s: RUN.update().values(offered=RUN.c.offered + 1),
    "run status": lambda s: RUN.update().values(status="paused"),
    "unknown role": lambda s: sa.text(f"INSERT INTO actor_role (actor_id, role) VALUES ({s['sam']}, 'root')"),
    "rejection reason": lambda s: sa.text(
        f"INSERT INTO rejection (ingest_run_id, path, reason, detail, at)"
        f" VALUES ({s['run']}, 'x.png', 'because', 'no', CURRENT_TIMESTAMP)"
    ),
    "second audit head": lambda s: sa.text(
        f"INSERT INTO audit_head (id, seq, hash) VALUES (2, 0, '{'0' * 64}')"
    ),
    "audit hash length": lambda s: sa.text(
        "INSERT INTO audit_event (id, at, action, target_type, target_id, prev_hash, hash)"
        " VALUES (999, 'now', 'x', 'x', 'x', 'short', 'short')"
    ),
    "actor name unique": lambda s: sa.text(
        "INSERT INTO actor (name, created_at, disabled) VALUES ('sam', '2026-01-01', false)"
    ),
    # Foreign keys, which SQLite enforces only with PRAGMA foreign_keys = ON on every connection.
    "fk image -> ingest_run": lambda s: IMAGE.insert().values(image_row(s, ingest_run_id=9999)),
    "fk image -> actor": lambda s: IMAGE.insert().values(image_row(s, ingested_by=9999)),
    "fk image state_by -> actor": lambda s: IMAGE.update().values(state_by=9999),
    "fk actor_role -> actor": lambda s: sa.text(
        "INSERT INTO actor_role (actor_id, role) VALUES (9999, 'viewer')"
    ),
    "fk licence -> image": lambda s: LICENCE.update().values(image_id=9999),
    "fk source -> image": lambda s: sa.text("UPDATE source SET image_id = 9999"),
    "delete a referenced actor": lambda s: sa.text("DELETE FROM actor WHERE name = 'sam'"),
    "delete a referenced ingest run": lambda s: RUN.delete(),
    "delete a referenced image": lambda s: sa.text("DELETE FROM image"),
}


# What each refusal must name, so a case fails for its own rule and not for another one.
FOREIGN_KEY, UNIQUE = "(?i)foreign key", "(?i)unique"
REASONS = {
    "image state": "ck_image_state",
    "four eyes": "ck_image_four_eyes",
    "approved by nobody": "ck_image_four_eyes",
    "image dimensions": "ck_image_dimensions",
    "image sha256 length": "ck_image_sha256_length",
    "image sha256 unique": UNIQUE,
    "normalised without spdx": "ck_licence_spdx_when_known",
    "verified without spdx": "ck_licence_spdx_when_known",
    "unrecognised with spdx": "ck_licence_no_guess",
    "missing with spdx": "ck_licence_no_guess",
    "verified without verifier": "ck_licence_verified_has_verifier",
    "licence status": "ck_licence_status",
    "run counts do not reconcile (insert)": "ck_ingest_run_reconciled",
    "run counts do not reconcile (update)": "ck_ingest_run_reconciled",
    "run status": "ck_ingest_run_status",
    "unknown role": "ck_actor_role_role",
    "rejection reason": "ck_rejection_reason",
    "second audit head": "ck_audit_head_single_row",
    "audit hash length": "ck_audit_event_hash_length",
    "actor name unique": UNIQUE,
}


def test_the_database_refuses(catalogue, stocked):
    """Every case on one catalogue (each is rolled back), reporting all that got through at once."""
    before = snapshot(catalogue)
    let_through = []
    for case, statement in VIOLATIONS.items():
        try:
            with catalogue.engine.begin() as connection:
                connection.execute(statement(stocked))
        except IntegrityError as exc:
            if not re.search(REASONS.get(case, FOREIGN_KEY), str(exc.orig)):
                let_through.append(f"{case}: refused for another reason: {exc.orig}")
        else:
            let_through.append(f"{case}: accepted")
    assert let_through == []
    assert snapshot(catalogue) == before


def test_the_same_statements_pass_when_they_keep_the_rules(catalogue, stocked):
    """Controls for the refusals above, so they fail for the rule and not for the statement."""
    lee = stocked["actors"]["lee"]
    with catalogue.engine.begin() as connection:
        connection.execute(IMAGE.update().values(state="approved", state_by=lee))
        connection.execute(LICENCE.update().values(status="unrecognised", spdx=None))
        connection.execute(
            LICENCE.update().values(
                status="verified", spdx="CC0-1.0", verified_by=lee, verified_at=sa.func.now()
            )
        )
        connection.execute(RUN.insert().values(run_row(stocked)))
        connection.execute(IMAGE.insert().values(image_row(stocked)))
        connection.execute(
            sa.text(f"INSERT INTO actor_role (actor_id, role) VALUES ({stocked['sam']}, 'viewer')")
        )


def test_foreign_keys_are_on_and_cascade(catalogue, team):
    with catalogue.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with catalogue.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM actor WHERE name = 'val'")
        orphans = connection.exec_driver_sql(
            "SELECT count(*) FROM actor_role WHERE actor_id NOT IN (SELECT id FROM actor)"
        ).scalar()
    assert orphans == 0
