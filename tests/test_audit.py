"""The hash-chained audit log (DESIGN.md rule 4): what every write records, the append-only
triggers, and `audit verify` catching an edited, deleted, inserted or reordered event even when an
attacker with database rights has dropped the triggers first."""

from __future__ import annotations

import importlib
import json
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import AuditEvent, AuditHead, Image
from stylevault.governance.errors import Refused
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import review
from tests.factories import TEAM_ACTORS, folder_of_images, write_csv

EVENT = AuditEvent.__table__
HEAD = AuditHead.__table__
MIGRATION = importlib.import_module("stylevault.migrations.versions.0001_catalogue_core")


@pytest.fixture
def history(catalogue, team, tmp_path):
    """Three images ingested by sam, then decided by legal: approve, reject, revoke. Returns their ids."""
    paths = folder_of_images(tmp_path / "in", 3)
    manifest = write_csv(
        tmp_path / "manifest.csv",
        [{"path": p.name, "licence": "CC0", "creator": f"creator {n}"} for n, p in enumerate(paths)],
    )
    ingest(catalogue, "sam", tmp_path / "in", manifest=manifest, progress=False)
    with catalogue.read() as session:
        ids = sorted(session.scalars(sa.select(Image.id)))
    with catalogue.write() as session:
        review.decide(session, "lee", "approve", [str(ids[0]), str(ids[1])], None)
    with catalogue.write() as session:
        review.decide(session, "kim", "reject", [str(ids[2])], "blurry")
    with catalogue.write() as session:
        review.decide(session, "lee", "revoke", [str(ids[1])], "takedown notice")
    return ids


@pytest.fixture
def attacker(catalogue):
    """Runs raw statements as a database owner who has dropped (SQLite) or disabled (PostgreSQL)
    the append-only triggers. On PostgreSQL the template database is shared, so the trigger is
    put back afterwards."""
    backend = catalogue.engine.dialect.name
    with catalogue.engine.begin() as connection:
        if backend == "sqlite":
            connection.exec_driver_sql("DROP TRIGGER audit_event_append_only_update")
            connection.exec_driver_sql("DROP TRIGGER audit_event_append_only_delete")
        else:
            connection.exec_driver_sql("ALTER TABLE audit_event DISABLE TRIGGER USER")

    def run(*statements) -> None:
        with catalogue.engine.begin() as connection:
            for statement in statements:
                connection.execute(statement)

    yield run
    if backend == "postgresql":
        restore_postgres_trigger(catalogue)


def restore_postgres_trigger(catalogue) -> None:
    with catalogue.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        connection.exec_driver_sql(MIGRATION.POSTGRESQL_TRIGGERS[1])
        connection.exec_driver_sql("ALTER TABLE audit_event ENABLE TRIGGER USER")


def verify(catalogue) -> audit.Verification:
    with catalogue.read() as session:
        return audit.verify(session)


def events(catalogue) -> list:
    with catalogue.read() as session:
        return session.execute(sa.select(EVENT).order_by(EVENT.c.id)).all()


def head(catalogue):
    with catalogue.read() as session:
        return session.execute(sa.select(HEAD)).one()


def first_seq(catalogue, action: str) -> int:
    return next(row.id for row in events(catalogue) if row.action == action)


def forged(seq: int, prev_hash: str, action: str = "review.approve", after: dict | None = None) -> dict:
    """An event row whose own hash is correct: what an attacker without a secret can compute."""
    at = "2026-01-01T00:00:00.000000Z"
    after_text = audit.canonical_json(after or {"state": "approved", "reason": None})
    digest = audit.event_hash(seq, prev_hash, at, "mallory", action, "image", "1", None, after_text)
    return dict(
        id=seq,
        at=at,
        actor="mallory",
        action=action,
        target_type="image",
        target_id="1",
        before=None,
        after=after_text,
        prev_hash=prev_hash,
        hash=digest,
    )


def assert_broken(catalogue, cli, seq: int, words: str) -> None:
    result = verify(catalogue)
    assert not result.ok
    assert result.broken_at == seq, result.problem
    assert words in result.problem
    run = cli("audit", "verify")
    assert run.exit_code == 1
    message = run.stderr.strip()
    assert "\n" not in message
    assert message.startswith(f"stylevault: audit chain broken at event {seq}: "), message
    assert f"event {seq}" in message


# ------------------------------------------------------------------ what a write records


def test_every_write_appends_linked_events(catalogue, history):
    rows = events(catalogue)
    assert [row.id for row in rows] == list(range(1, len(rows) + 1))
    prev = audit.GENESIS
    for row in rows:
        assert row.prev_hash == prev
        prev = row.hash
    assert (head(catalogue).seq, head(catalogue).hash) == (rows[-1].id, rows[-1].hash)

    actions = [row.action for row in rows]
    team = len(TEAM_ACTORS)
    assert actions[:team] == ["actor.add"] * team
    assert actions[team] == "ingest.start" and "ingest.finish" in actions
    assert actions.count("image.ingest") == 3
    assert actions[-4:] == ["review.approve", "review.approve", "review.reject", "review.revoke"]

    revoke = rows[-1]
    assert (revoke.actor, revoke.action, revoke.target_type, revoke.target_id) == (
        "lee",
        "review.revoke",
        "image",
        str(history[1]),
    )
    assert json.loads(revoke.before) == {"state": "approved", "reason": None}
    assert json.loads(revoke.after) == {"state": "revoked", "reason": "takedown notice"}
    assert revoke.at.endswith("Z")
    assert datetime.fromisoformat(revoke.at).tzinfo is not None
    first_add = rows[0]
    assert (first_add.actor, first_add.target_type, first_add.target_id) == ("system:init", "actor", "admin")
    assert first_add.before is None and json.loads(first_add.after) == {"name": "admin", "roles": ["admin"]}


def test_one_transaction_shares_one_timestamp_and_consecutive_seqs(catalogue, history):
    approvals = [row for row in events(catalogue) if row.action == "review.approve"]
    assert len(approvals) == 2
    assert approvals[0].at == approvals[1].at
    assert approvals[1].id == approvals[0].id + 1
    assert {row.target_id for row in approvals} == {str(history[0]), str(history[1])}


def test_a_refused_write_appends_nothing(catalogue, history):
    before = head(catalogue)
    with pytest.raises(Refused), catalogue.write() as session:
        # history[1] is revoked and approving it again needs a reason: the whole command is refused.
        review.decide(session, "lee", "approve", [str(history[0]), str(history[1])], None)
    with pytest.raises(Refused), catalogue.write() as session:
        review.decide(session, "val", "approve", [str(history[2])], "ok")
    assert head(catalogue) == before
    assert len(events(catalogue)) == before.seq
    assert verify(catalogue).ok


def test_verify_ok_and_cli_exit_zero(catalogue, history, cli):
    result = verify(catalogue)
    assert result.ok and result.broken_at is None and result.problem is None
    assert result.events == result.head_seq == len(events(catalogue))
    run = cli("audit", "verify")
    assert run.exit_code == 0, run.output
    assert f"audit chain intact: {result.events} events, head {result.head_hash}" in run.stdout
    run = cli("audit", "verify", "--json")
    assert run.exit_code == 0
    verified = json.loads(run.stdout)
    assert verified["chain"] == result.as_dict()
    assert verified["ok"] and verified["replay"]["findings"] == [] and verified["checkpoints"] is None


def test_verify_on_an_empty_log(catalogue, cli):
    result = verify(catalogue)
    assert result.ok and result.events == 0 and result.head_hash == audit.GENESIS
    assert cli("audit", "verify").exit_code == 0


# ------------------------------------------------------------------ the schema keeps it append-only


def test_triggers_refuse_update_and_delete(catalogue, history):
    target = first_seq(catalogue, "review.approve")
    statements = [
        EVENT.update().where(EVENT.c.id == target).values(actor="mallory"),
        EVENT.update().values(after=None),
        EVENT.delete().where(EVENT.c.id == target),
        EVENT.delete(),
    ]
    if catalogue.engine.dialect.name == "postgresql":
        statements.append(sa.text("TRUNCATE audit_event"))
    for statement in statements:
        # An integrity error on both databases, so the CLI reports it as a refusal (exit 1).
        with pytest.raises(IntegrityError, match="append-only"), catalogue.engine.begin() as connection:
            connection.execute(statement)
    assert verify(catalogue).ok
    assert len(events(catalogue)) == head(catalogue).seq


def test_the_chain_cannot_fork(catalogue, history):
    """unique(prev_hash): a second successor of the same event is refused by the database."""
    rows = events(catalogue)
    tail = rows[-1]
    rival = forged(tail.id + 1, rows[-2].hash)  # a second successor of event N-1
    with pytest.raises(IntegrityError), catalogue.engine.begin() as connection:
        connection.execute(EVENT.insert().values(**rival))
    honest = forged(tail.id + 1, tail.hash)
    with catalogue.engine.begin() as connection:
        connection.execute(EVENT.insert().values(**honest))
    twin = forged(tail.id + 2, tail.hash)  # another successor of event N
    with pytest.raises(IntegrityError), catalogue.engine.begin() as connection:
        connection.execute(EVENT.insert().values(**twin))
    # The head was not moved, so even the well-formed extra event is caught.
    result = verify(catalogue)
    assert result.broken_at == tail.id + 1
    assert "added behind the head's back" in result.problem


# ------------------------------------------------------------------ tampering, with the triggers gone


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("after", '{"reason":null,"state":"rejected"}'),
        ("after", '{"reason": null, "state": "approved"}'),  # same JSON, other spacing
        ("before", '{"reason":null,"state":"approved"}'),
        ("actor", "kim"),
        ("at", "2020-01-01T00:00:00.000000Z"),
        ("action", "review.reject"),
        ("target_id", "999"),
    ],
)
def test_an_edited_event_is_caught(catalogue, history, attacker, cli, column, value):
    target = first_seq(catalogue, "review.approve")
    attacker(EVENT.update().where(EVENT.c.id == target).values({column: value}))
    assert_broken(catalogue, cli, target, "was altered")


def test_an_edited_hash_is_caught_at_the_next_event(catalogue, history, attacker, cli):
    """Re-hashing an edited event moves the break to its successor, whose prev_hash no longer fits."""
    target = first_seq(catalogue, "review.approve")
    row = next(r for r in events(catalogue) if r.id == target)
    after = '{"reason":null,"state":"rejected"}'
    digest = audit.row_hash(row, after=after)
    # hash and prev_hash are unique, so the successor's link has to give way first.
    attacker(
        EVENT.update().where(EVENT.c.id == target + 1).values(prev_hash="f" * 64),
        EVENT.update().where(EVENT.c.id == target).values(after=after, hash=digest),
    )
    assert_broken(catalogue, cli, target + 1, "does not follow")


def test_a_deleted_event_in_the_middle_is_caught(catalogue, history, attacker, cli):
    target = first_seq(catalogue, "review.approve")
    attacker(EVENT.delete().where(EVENT.c.id == target))
    assert_broken(catalogue, cli, target, f"event {target} is missing (next stored event is {target + 1})")


def test_the_first_event_deleted_is_caught(catalogue, history, attacker, cli):
    attacker(EVENT.delete().where(EVENT.c.id == 1))
    assert_broken(catalogue, cli, 1, "event 1 is missing")


@pytest.mark.parametrize("removed", [1, 3])
def test_a_truncated_tail_is_caught_by_the_head(catalogue, history, attacker, cli, removed):
    last = head(catalogue).seq
    attacker(EVENT.delete().where(EVENT.c.id > last - removed))
    assert_broken(catalogue, cli, last - removed + 1, f"the chain ends at event {last - removed}")


def test_an_emptied_log_is_caught_by_the_head(catalogue, history, attacker, cli):
    last = head(catalogue).seq
    if catalogue.engine.dialect.name == "postgresql":
        # With the triggers disabled TRUNCATE goes through; the head still names the last event.
        attacker(sa.text("TRUNCATE audit_event"))
    else:
        attacker(EVENT.delete())
    assert_broken(catalogue, cli, 1, f"the chain ends at event 0 but the head names event {last}")


def test_an_event_appended_behind_the_heads_back_is_caught(catalogue, history, attacker, cli):
    tail = events(catalogue)[-1]
    attacker(EVENT.insert().values(**forged(tail.id + 1, tail.hash)))
    assert_broken(
        catalogue,
        cli,
        tail.id + 1,
        f"the chain ends at event {tail.id + 1} but the head names event {tail.id}",
    )


def test_an_event_inserted_in_the_middle_is_caught(catalogue, history, attacker, cli):
    """Make room by renumbering, link a forged event in, re-point its successor and the head."""
    target = first_seq(catalogue, "review.approve")
    rows = {row.id: row for row in events(catalogue)}
    fake = forged(target + 1, rows[target].hash, "review.approve", {"state": "approved", "reason": "forged"})
    attacker(
        # Two steps, so the primary key never collides on PostgreSQL.
        EVENT.update().where(EVENT.c.id > target).values(id=EVENT.c.id + 100000),
        EVENT.update().where(EVENT.c.id > 100000).values(id=EVENT.c.id - 99999),
        EVENT.update().where(EVENT.c.id == target + 2).values(prev_hash=fake["hash"]),
        EVENT.insert().values(**fake),
        HEAD.update().values(seq=HEAD.c.seq + 1),
    )
    assert_broken(catalogue, cli, target + 2, "was altered")


def test_an_inserted_event_cannot_reuse_its_predecessors_link(catalogue, history, attacker):
    """Without re-pointing the successor, the forged event is a fork and unique(prev_hash) refuses it."""
    target = first_seq(catalogue, "review.approve")
    rows = {row.id: row for row in events(catalogue)}
    attacker(
        EVENT.update().where(EVENT.c.id > target).values(id=EVENT.c.id + 100000),
        EVENT.update().where(EVENT.c.id > 100000).values(id=EVENT.c.id - 99999),
    )
    with pytest.raises(IntegrityError):
        attacker(EVENT.insert().values(**forged(target + 1, rows[target].hash)))


def test_two_swapped_events_are_caught(catalogue, history, attacker, cli):
    target = first_seq(catalogue, "review.approve")
    attacker(
        EVENT.update().where(EVENT.c.id == target).values(id=-1),
        EVENT.update().where(EVENT.c.id == target + 1).values(id=target),
        EVENT.update().where(EVENT.c.id == -1).values(id=target + 1),
    )
    assert_broken(catalogue, cli, target, f"event {target} does not follow event {target - 1}")


def test_swapped_contents_are_caught(catalogue, history, attacker, cli):
    """Swapping everything but the ids (and the unique links) still breaks the recomputed hashes."""
    target = first_seq(catalogue, "review.reject")
    rows = {row.id: row for row in events(catalogue)}
    columns = ["at", "actor", "action", "target_type", "target_id", "before", "after"]
    a, b = rows[target], rows[target + 1]
    attacker(
        EVENT.update().where(EVENT.c.id == target).values({c: getattr(b, c) for c in columns}),
        EVENT.update().where(EVENT.c.id == target + 1).values({c: getattr(a, c) for c in columns}),
    )
    assert_broken(catalogue, cli, target, "was altered")


@pytest.mark.parametrize(
    ("change", "offset", "words"),
    [
        ({"hash": "f" * 64}, 1, "the head names another hash for it (the head was altered)"),
        ({"seq": HEAD.c.seq - 1}, 0, "added behind the head's back, or the head was altered"),
        ({"seq": HEAD.c.seq + 1}, 1, "removed from the end, or the head was altered"),
    ],
    ids=["hash", "seq-1", "seq+1"],
)
def test_an_altered_head_is_caught(catalogue, history, cli, change, offset, words):
    last = head(catalogue).seq
    with catalogue.engine.begin() as connection:
        connection.execute(HEAD.update().values(change))
    assert_broken(catalogue, cli, last + offset, f"the chain ends at event {last} but the head names")
    assert words in verify(catalogue).problem


def test_a_missing_head_is_caught_not_crashed_on(catalogue, history, cli):
    row = head(catalogue)
    with catalogue.engine.begin() as connection:
        connection.execute(HEAD.delete())
    try:
        assert_broken(catalogue, cli, row.seq + 1, "the audit head row is missing")
    finally:
        # The PostgreSQL template database is shared between tests: put the single row back.
        with catalogue.engine.begin() as connection:
            connection.execute(HEAD.insert().values(row._asdict()))


def test_a_dropped_trigger_is_no_cover(catalogue, history, cli):
    """DROP TRIGGER on either database, then an edit: verify still catches it."""
    target = first_seq(catalogue, "review.reject")
    try:
        with catalogue.engine.begin() as connection:
            if catalogue.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("DROP TRIGGER audit_event_append_only_update")
            else:
                connection.exec_driver_sql("DROP TRIGGER audit_event_append_only ON audit_event")
            connection.execute(EVENT.update().where(EVENT.c.id == target).values(actor="lee"))
        assert_broken(catalogue, cli, target, "was altered")
    finally:
        if catalogue.engine.dialect.name == "postgresql":
            restore_postgres_trigger(catalogue)


def test_a_later_honest_append_does_not_hide_tampering(catalogue, history, attacker):
    """A write after tampering extends the head, not the tampered rows: the break stays visible."""
    target = first_seq(catalogue, "review.approve")
    attacker(EVENT.delete().where(EVENT.c.id == target))
    with catalogue.write() as session:
        review.decide(session, "lee", "approve", [str(history[2])], "appeal upheld")
    result = verify(catalogue)
    assert not result.ok and result.broken_at == target


# ------------------------------------------------------------------ audit log


def log_json(cli, *args):
    run = cli("audit", "log", *args, "--json")
    assert run.exit_code == 0, run.output
    return json.loads(run.stdout)


def test_log_filters(catalogue, history, cli):
    everything = log_json(cli)
    assert [e["seq"] for e in everything] == list(range(len(everything), 0, -1))  # newest first
    assert set(everything[0]) == {"seq", "at", "actor", "action", "target", "before", "after", "hash"}

    image = history[1]
    on_image = log_json(cli, "--target", f"image:{image}")
    assert [e["action"] for e in on_image] == ["review.revoke", "review.approve", "image.ingest"]
    assert {e["target"] for e in on_image} == {f"image:{image}"}
    with catalogue.read() as session:
        sha = session.get(Image, image).sha256
    assert log_json(cli, "--target", sha[:12]) == on_image
    assert log_json(cli, "--target", sha) == on_image

    reviews = log_json(cli, "--action", "review.")
    assert [e["action"] for e in reviews] == [
        "review.revoke",
        "review.reject",
        "review.approve",
        "review.approve",
    ]
    assert [e["action"] for e in log_json(cli, "--action", "review.approve")] == ["review.approve"] * 2

    by_lee = log_json(cli, "--actor", "lee")
    assert {e["action"] for e in by_lee} == {"review.approve", "review.revoke"} and len(by_lee) == 3
    assert log_json(cli, "--actor", "lee", "--action", "review.revoke") == by_lee[:1]
    assert [e["target"] for e in log_json(cli, "--target", "actor:lee")] == ["actor:lee"]
    assert log_json(cli, "--limit", "2") == everything[:2]
    assert log_json(cli, "--actor", "nobody") == []

    table = cli("audit", "log", "--action", "review.revoke")
    assert table.exit_code == 0
    assert "review.revoke" in table.stdout and "takedown notice" in table.stdout


def test_log_action_is_a_literal_prefix(catalogue, history, cli):
    """LIKE wildcards in --action are text, not patterns."""
    assert log_json(cli, "--action", "%") == []
    assert log_json(cli, "--action", "review_") == []
    assert len(log_json(cli, "--action", "actor.")) == len(TEAM_ACTORS)


def test_log_bad_target(catalogue, history, cli):
    run = cli("audit", "log", "--target", "zz")
    assert run.exit_code == 2
    assert "IMAGE 'zz'" in run.stderr
