"""The audit log anchored outside the database, and replayed against the tables (DESIGN.md rule 11,
issue 14 item 2).

Someone who can write the database can drop the append-only triggers, delete events, recompute the
chain with the public hash function and put the triggers back: `audit verify` of the chain alone
then says intact. A checkpoint signed with a key the database never held, kept outside it, catches
that; the replay catches a table row changed without any event.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import stat
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.models import OUTPUT_ACTIONS, AuditEvent, AuditHead
from stylevault.governance.curation import stylesets
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.index import verification as index_verification
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import alias_edits, licence_decisions, review
from stylevault.governance.upkeep import checkpoints
from stylevault.governance.upkeep.replay import replay
from stylevault.governance.upkeep.replay_rules import RULES
from stylevault.governance.web import passwords
from tests.factories import encode, picture, run_generate, write, write_csv

ROOT = Path(__file__).resolve().parent.parent
EVENT = AuditEvent.__table__
HEAD = AuditHead.__table__


# ------------------------------------------------------------------ a catalogue that has lived


@pytest.fixture
def lived_in(indexed, tmp_path):
    """`indexed` (looks@1, eight approved images, its commercial index), then a day of work: a copy
    of a file found elsewhere and a broken file, the same place re-ingested saying something else,
    a licence legal verified, a site alias, a member removed and looks@2 published, a new actor with
    a password, a role granted, and image 2 revoked (a takedown: the index goes stale)."""
    catalogue, folder = indexed
    write(tmp_path / "more" / "copy-of-0.png", (tmp_path / "in" / "0.png").read_bytes())
    write(tmp_path / "more" / "broken.png", b"not a png at all")
    ingest(catalogue, "kim", tmp_path / "more", progress=False)
    again = {
        "path": "2.png",
        "licence": "CC0",
        "attribution": "Artist 2",
        "creator": "Artist 2",
        "title": "Study 2 (retitled)",
        "source_url": "https://example.org/study-2",
    }
    ingest(
        catalogue, "sam", tmp_path / "in", manifest=write_csv(tmp_path / "again.csv", [again]), progress=False
    )
    with catalogue.write() as session:
        licence_decisions.record_verified(
            session, catalogue.store, "lee", [4], licence="CC-BY-4.0", evidence="https://example.org/4"
        )
        alias_edits.add(session, "lee", "Studio Licence 7", "LicenseRef-studio-7", "contract 2026-07")
    with catalogue.write() as session:
        stylesets.remove(session, "sam", "looks", ["8"])
        stylesets.publish(session, "sam", "looks", note="without 8")
        actors.add(session, "admin", "rita", ["reviewer"])
        actors.grant(session, "admin", "val", ["reviewer"])
        passwords.set_password(session, "admin", "lee", "correct horse battery staple")
    with catalogue.write() as session:
        review.decide(session, "lee", "revoke", ["2"], "takedown notice")
    return catalogue, folder


def findings(catalogue) -> list:
    with catalogue.read() as session:
        return replay(session).findings


def test_a_catalogue_that_has_lived_replays_with_no_findings(lived_in, cli):
    catalogue, _ = lived_in
    with catalogue.read() as session:
        result = replay(session)
        actions = {row.action for row in session.execute(sa.select(EVENT.c.action))}
    assert result.findings == []
    assert {
        "image.ingest",
        "source.add",
        "source.update",
        "ingest.reject",
        "licence.derive",
        "licence.set",
        "licence.alias.add",
        "review.approve",
        "review.revoke",
        "styleset.remove",
        "styleset.publish",
        "index.build",
        "index.stale",
        "actor.grant_role",
        "actor.password_set",
    } <= actions
    run = cli("audit", "verify")
    assert run.exit_code == 0, run.output
    assert f"replay: {result.events} events agree with {result.rows} table rows" in run.stdout


# ------------------------------------------------------------------ keys and checkpoints


@pytest.fixture
def key(tmp_path) -> Path:
    path = tmp_path / "keys" / "audit.key"
    path.parent.mkdir()
    checkpoints.keygen(path)
    return path


def test_keygen_checkpoint_and_verify_round_trip_through_the_cli(lived_in, cli, tmp_path):
    keyfile, kept = tmp_path / "site" / "audit.key", tmp_path / "legal" / "checkpoints.jsonl"
    keyfile.parent.mkdir()
    kept.parent.mkdir()
    made = cli("audit", "keygen", "--out", keyfile, "--json")
    assert made.exit_code == 0, made.output
    public = Path(f"{keyfile}.pub")
    assert stat.S_IMODE(keyfile.stat().st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    fingerprint = json.loads(made.stdout)["fingerprint"]
    assert fingerprint == checkpoints.fingerprint(checkpoints.load_public_key(public))
    again = cli("audit", "keygen", "--out", keyfile)
    assert again.exit_code == 2 and "exists; a key file is never overwritten" in again.stderr

    assert cli("audit", "checkpoint", "--key", keyfile, "--out", kept).exit_code == 2  # no --as
    steward = cli("audit", "checkpoint", "--key", keyfile, "--out", kept, actor="sam")
    assert steward.exit_code == 1 and "needs the admin or legal role" in steward.stderr
    assert not kept.exists()

    first = cli("audit", "checkpoint", "--key", keyfile, "--out", kept, actor="lee")
    assert first.exit_code == 0, first.output
    with lived_in[0].write() as session:
        review.decide(session, "lee", "approve", ["2"], "the takedown was withdrawn")
    second = cli("audit", "checkpoint", "--key", keyfile, "--out", kept, "--json", actor="admin")
    assert second.exit_code == 0, second.output
    lines = [json.loads(line) for line in kept.read_text().splitlines()]
    assert len(lines) == 2 and lines[1] == json.loads(second.stdout)
    head = audit.log
    with lived_in[0].read() as session:
        newest = head(session, limit=1)[0]
        catalogue_id = checkpoints.catalogue_id(session)
    # The checkpoint covers its own event: the head it signs is the audit.checkpoint event.
    assert (newest["action"], newest["after"], newest["actor"]) == (
        "audit.checkpoint",
        {"key": fingerprint},
        "admin",
    )
    assert (lines[1]["seq"], lines[1]["head"], lines[1]["key"]) == (
        newest["seq"],
        newest["hash"],
        fingerprint,
    )
    assert {line["catalogue"] for line in lines} == {catalogue_id}

    verified = cli("audit", "verify", "--checkpoint", kept, "--pubkey", public)
    assert verified.exit_code == 0, verified.output
    assert f"checkpoints: 2 in {kept}, signed by the given key {fingerprint}" in verified.stdout
    assert f"(latest: event {newest['seq']}" in verified.stdout
    result = json.loads(cli("audit", "verify", "--checkpoint", kept, "--pubkey", public, "--json").stdout)
    assert result["ok"] and result["failure"] is None
    assert [line["ok"] for line in result["checkpoints"]["lines"]] == [True, True]
    assert result["checkpoints"]["key_given"] and result["replay"]["findings"] == []
    unkeyed = cli("audit", "verify", "--checkpoint", kept)
    assert unkeyed.exit_code == 0 and "give --pubkey to check whose key that is" in unkeyed.stdout
    lone = cli("audit", "verify", "--pubkey", public)
    assert lone.exit_code == 2 and "give --checkpoint FILE too" in lone.stderr


def test_a_key_others_can_read_is_refused(catalogue, team, key, tmp_path):
    key.chmod(0o644)
    with pytest.raises(Refused, match=r"readable by others .*chmod 600"):
        checkpoints.checkpoint(catalogue, "lee", key, tmp_path / "c.jsonl")
    junk = write(tmp_path / "junk.key", b"junk")
    junk.chmod(0o600)
    with pytest.raises(BadInput, match="not an unencrypted PEM private key"):
        checkpoints.load_private_key(junk)


# ------------------------------------------------------------------ the attack: history rewritten


@contextmanager
def triggers_off(catalogue, tables: list[str]):
    """What a database owner can do: the append-only and frozen-row triggers off, and back on after.
    (On PostgreSQL the tests share one template database, so they always come back.)"""
    backend = catalogue.engine.dialect.name
    with catalogue.engine.begin() as connection:
        if backend == "sqlite":
            names = ", ".join(f"'{t}'" for t in tables)
            saved = connection.exec_driver_sql(
                f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({names})"
            ).all()
            for name, _ in saved:
                connection.exec_driver_sql(f"DROP TRIGGER {name}")
        else:
            for table in tables:
                connection.exec_driver_sql(f"ALTER TABLE {table} DISABLE TRIGGER USER")
    try:
        yield
    finally:
        with catalogue.engine.begin() as connection:
            if backend == "sqlite":
                for _, sql in saved:
                    connection.exec_driver_sql(sql)
            else:
                for table in tables:
                    connection.exec_driver_sql(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def rewrite_history(catalogue, drop, *, after=()) -> None:
    """Issue 14's attack: delete the events `drop` picks, renumber the rest and recompute every hash
    with the public function, move the head, then run `after` (statements that put the tables back
    as the shortened log describes them); the triggers are off meanwhile and on again at the end."""
    with triggers_off(catalogue, ["audit_event", "index_build"]), catalogue.engine.begin() as connection:
        rows = connection.execute(sa.select(EVENT).order_by(EVENT.c.id)).all()
        kept, prev = [], audit.GENESIS
        for row in (r for r in rows if not drop(r)):
            seq = len(kept) + 1
            fields = (row.at, row.actor, row.action, row.target_type, row.target_id, row.before, row.after)
            digest = audit.event_hash(seq, prev, *fields)
            kept.append(dict(row._mapping, id=seq, prev_hash=prev, hash=digest))
            prev = digest
        connection.execute(EVENT.delete())
        connection.execute(EVENT.insert(), kept)
        connection.execute(HEAD.update().values(seq=len(kept), hash=prev))
        for statement in after:
            connection.execute(sa.text(statement))


def undo_the_takedown(catalogue) -> list[str]:
    """The takedown of image 2 and its stale mark, as if they never happened: the events and what
    they changed in the tables."""
    return [
        "UPDATE image SET state = 'approved', state_reason = NULL WHERE id = 2",
        "UPDATE index_build SET stale = FALSE, stale_reason = NULL, stale_at = NULL",
    ]


def the_takedown(row) -> bool:
    return (row.action, row.target_id) == ("review.revoke", "2") or row.action == "index.stale"


def test_a_rewritten_history_fools_the_chain_and_the_replay_but_not_the_checkpoint(
    lived_in, key, cli, tmp_path
):
    catalogue, folder = lived_in
    kept = tmp_path / "checkpoints.jsonl"
    signed = checkpoints.checkpoint(catalogue, "lee", key, kept)
    with catalogue.write() as session:  # the log goes on after the checkpoint
        stylesets.create(session, "sam", "later")
        stylesets.add(session, "sam", "later", ["1", "3"])
    assert cli("audit", "verify", "--checkpoint", kept, "--pubkey", f"{key}.pub").exit_code == 0

    rewrite_history(catalogue, the_takedown, after=undo_the_takedown(catalogue))
    with catalogue.read() as session:
        assert session.execute(sa.text("SELECT state FROM image WHERE id = 2")).scalar() == "approved"
        assert not session.execute(sa.text("SELECT stale FROM index_build")).scalar()
    assert index_verification.verify(catalogue, folder).ok  # image 2 is back in a fresh index

    # The chain alone is fooled, and so is the replay: the tables are what the shortened log says.
    fooled = cli("audit", "verify")
    assert fooled.exit_code == 0, fooled.output
    assert "audit chain intact" in fooled.stdout and "replay:" in fooled.stdout

    caught = cli("audit", "verify", "--checkpoint", kept, "--pubkey", f"{key}.pub")
    assert caught.exit_code == 1
    message = caught.stderr.strip()
    assert "\n" not in message
    assert message.startswith(
        f"stylevault: checkpoint {kept} line 1 (event {signed['seq']}): event {signed['seq']} has hash"
    )
    assert "history up to it was rewritten" in message
    result = json.loads(
        cli("audit", "verify", "--checkpoint", kept, "--pubkey", f"{key}.pub", "--json").stdout
    )
    assert result["chain"]["ok"] and result["replay"]["ok"] and not result["ok"]
    (line,) = result["checkpoints"]["lines"]
    assert line["signature_ok"] and not line["log_ok"]

    # Nor will the key sign the rewritten log.
    with pytest.raises(Refused, match="does not extend the checkpoints already kept"):
        checkpoints.checkpoint(catalogue, "lee", key, kept)


def test_a_log_cut_back_below_a_checkpoint_is_caught(lived_in, key, cli, tmp_path):
    catalogue, _ = lived_in
    kept = tmp_path / "checkpoints.jsonl"
    signed = checkpoints.checkpoint(catalogue, "lee", key, kept)
    rewrite_history(catalogue, the_takedown, after=undo_the_takedown(catalogue))
    caught = cli("audit", "verify", "--checkpoint", kept, "--pubkey", f"{key}.pub")
    assert caught.exit_code == 1
    assert f"signed event {signed['seq']}, but the log ends at event {signed['seq'] - 2}" in caught.stderr


def test_a_rewrite_that_leaves_the_tables_alone_is_caught_by_the_replay(lived_in, cli):
    """Without putting the tables back, deleting the events is enough for the replay to see it."""
    catalogue, _ = lived_in
    rewrite_history(catalogue, the_takedown)
    run = cli("audit", "verify")
    assert run.exit_code == 1
    message = run.stderr.strip()
    assert message.startswith("stylevault: replay: the tables disagree with the log in ")
    problems = {f.problem for f in findings(catalogue)}
    assert any(p.startswith("image 2: state is 'revoked' but the log says 'approved'") for p in problems)
    assert any("index_build" in p and "stale is True but the log says False" in p for p in problems)


# ------------------------------------------------------------------ forged and mismatched checkpoints


def test_a_forged_checkpoint_is_refused(lived_in, key, cli, tmp_path):
    catalogue, _ = lived_in
    kept = tmp_path / "checkpoints.jsonl"
    signed = checkpoints.checkpoint(catalogue, "lee", key, kept)
    pub = f"{key}.pub"

    def verify_line(line: dict) -> str:
        kept.write_text(json.dumps(line) + "\n")
        run = cli("audit", "verify", "--checkpoint", kept, "--pubkey", pub)
        assert run.exit_code == 1
        assert "\n" not in run.stderr.strip()
        return run.stderr

    # An edited field under the old signature.
    assert "bad signature: the checkpoint was altered" in verify_line({**signed, "seq": signed["seq"] - 1})
    other = base64.b64encode(os.urandom(64)).decode()
    assert "bad signature" in verify_line({**signed, "signature": other})
    unsigned = {k: v for k, v in signed.items() if k != "signature"}
    assert "unsigned checkpoint" in verify_line(unsigned)
    kept.write_text(json.dumps(unsigned) + "\n")
    bare = cli("audit", "verify", "--checkpoint", kept)
    assert (
        bare.exit_code == 1
        and "unsigned checkpoint: nothing vouches for it (and no --pubkey was given)" in bare.stderr
    )
    kept.write_text("not json\n")
    broken = cli("audit", "verify", "--checkpoint", kept)
    assert broken.exit_code == 2 and f"--checkpoint {kept} line 1: not JSON" in broken.stderr


def test_a_checkpoint_signed_by_another_key_is_refused_with_the_right_key(lived_in, key, cli, tmp_path):
    """A forger re-signs a rewritten head with a key of their own, carried in the checkpoint: that
    passes only for whoever does not say which key they trust."""
    catalogue, _ = lived_in
    kept = tmp_path / "checkpoints.jsonl"
    checkpoints.checkpoint(catalogue, "lee", key, kept)
    mallory = tmp_path / "mallory.key"
    checkpoints.keygen(mallory)
    kept.unlink()
    checkpoints.checkpoint(catalogue, "lee", mallory, kept)
    fingerprint = checkpoints.fingerprint(checkpoints.load_public_key(f"{key}.pub"))
    theirs = checkpoints.fingerprint(checkpoints.load_public_key(f"{mallory}.pub"))
    assert cli("audit", "verify", "--checkpoint", kept).exit_code == 0
    run = cli("audit", "verify", "--checkpoint", kept, "--pubkey", f"{key}.pub")
    assert run.exit_code == 1
    assert f"signed by key {theirs}, not by the given key {fingerprint}" in run.stderr


def test_checkpoint_refuses_to_sign_a_broken_chain(lived_in, key, tmp_path):
    catalogue, _ = lived_in
    with triggers_off(catalogue, ["audit_event"]), catalogue.engine.begin() as connection:
        connection.execute(EVENT.update().where(EVENT.c.id == 3).values(actor="mallory"))
    with pytest.raises(Refused, match=r"audit chain broken at event 3: .*nothing signed"):
        checkpoints.checkpoint(catalogue, "lee", key, tmp_path / "c.jsonl")
    assert not (tmp_path / "c.jsonl").exists()


# ------------------------------------------------------------------ tables edited without an event


def actor_id(catalogue, name: str) -> int:
    with catalogue.read() as session:
        return actors.find(session, name).id


@pytest.mark.parametrize(
    ("statement", "table", "row", "field"),
    [
        ("UPDATE image SET state = 'approved', state_by = {lee} WHERE id = 2", "image", "2", "state"),
        ("UPDATE image SET state_reason = 'all fine' WHERE id = 3", "image", "3", "state_reason"),
        ("UPDATE licence SET spdx = 'CC0-1.0' WHERE image_id = 4", "licence", "of image 4", "spdx"),
        (
            "UPDATE licence SET status = 'verified', verified_by = {lee}, verified_at = CURRENT_TIMESTAMP"
            " WHERE image_id = 5",
            "licence",
            "of image 5",
            "status",
        ),
        ("UPDATE licence SET opt_out = TRUE WHERE image_id = 6", "licence", "of image 6", "opt_out"),
        (
            "UPDATE source SET licence_raw = 'CC0' WHERE image_id = 4",
            "source",
            "of image 4 at 'https://example.org/study-3'",
            "licence_raw",
        ),
        ("INSERT INTO actor_role (actor_id, role) VALUES ({val}, 'admin')", "actor", "val", "roles"),
        ("UPDATE actor SET disabled = TRUE WHERE name = 'rita'", "actor", "rita", "disabled"),
        ("UPDATE actor_password SET session_generation = 0", "actor_password", "lee", "session_generation"),
        (
            "INSERT INTO styleset_member (styleset_id, image_id, added_by, added_at)"
            " VALUES (1, 8, {sam}, CURRENT_TIMESTAMP)",
            "styleset",
            "'looks'",
            "members",
        ),
        ("DELETE FROM rejection", "rejection", "1", None),
        ("UPDATE licence_alias SET spdx = 'CC0-1.0'", "licence_alias", "'studio licence 7'", "spdx"),
    ],
)
def test_a_table_edited_without_an_event_is_caught(lived_in, cli, statement, table, row, field):
    catalogue, _ = lived_in
    ids = {name: actor_id(catalogue, name) for name in ("lee", "val", "sam")}
    with catalogue.engine.begin() as connection:
        connection.execute(sa.text(statement.format(**ids)))
    found = [(f.table, f.row, f.field) for f in findings(catalogue)]
    assert any(t == table and r.startswith(row) and f == field for t, r, f in found), found
    run = cli("audit", "verify")
    assert run.exit_code == 1
    message = run.stderr.strip()
    assert "\n" not in message and message.startswith("stylevault: replay: ")
    assert f"{table} {row}" in message


def test_a_frozen_row_edited_with_its_trigger_off_is_caught(lived_in):
    catalogue, _ = lived_in
    with triggers_off(catalogue, ["index_build", "styleset_version_member"]), catalogue.engine.begin() as c:
        c.execute(sa.text("UPDATE index_build SET stale = FALSE, stale_reason = NULL, stale_at = NULL"))
        c.execute(sa.text(f"UPDATE styleset_version_member SET sha256 = '{'0' * 64}' WHERE image_id = 1"))
    found = {(f.table, f.field) for f in findings(catalogue)}
    assert {("index_build", "stale"), ("styleset_version", "member_rows_sha256")} <= found


def test_a_change_without_an_event_is_caught_at_the_next_event_too(lived_in):
    """A revoked image put back to pending by SQL, then approved through stylevault: the end state
    matches the log, but the approval found the image pending where the log had left it revoked."""
    catalogue, _ = lived_in
    with catalogue.engine.begin() as connection:
        connection.execute(sa.text("UPDATE image SET state = 'pending', state_reason = NULL WHERE id = 2"))
    with catalogue.write() as session:
        review.decide(session, "lee", "approve", ["2"], None)
    with catalogue.read() as session:
        approval = audit.revision(session)["seq"]
    state, reason = findings(catalogue)
    assert [(f.table, f.row, f.field) for f in (state, reason)] == [
        ("image", "2", "state"),
        ("image", "2", "state_reason"),
    ]
    assert (state.recorded, state.found, reason.recorded, reason.found) == (
        "revoked",
        "pending",
        "takedown notice",
        None,
    )
    assert (
        f"event {approval} (review.approve) found state 'pending', but the log had left 'revoked'"
        in state.problem
    )
    assert state.problem.endswith("changed without an event")


def test_an_output_released_without_an_event_is_caught(indexed, encoder_dir, rdm_dir, tmp_path):
    catalogue, folder = indexed
    run_generate(catalogue, folder, rdm_dir, tmp_path / "out", n=1)
    assert findings(catalogue) == []
    with catalogue.engine.begin() as connection:
        connection.execute(sa.text("UPDATE output_review SET state = 'released', flagged = FALSE"))
    found = {(f.table, f.field) for f in findings(catalogue)}
    assert ("output_review", "state") in found


# ------------------------------------------------------------------ every action has a rule


def test_an_unknown_action_is_a_finding_not_skipped(lived_in):
    catalogue, _ = lived_in
    with catalogue.write() as session:
        audit.record(session, "admin", [audit.Change("image.teleport", "image", 1, None, {"to": "moon"})])
    (finding,) = findings(catalogue)
    assert (finding.table, finding.field, finding.recorded) == ("audit_event", "action", "image.teleport")
    assert "unknown action 'image.teleport': no replay rule" in finding.problem


# Where an action is an f-string, the values its placeholder takes.
PLACEHOLDERS = {
    ("review.py", "decision"): tuple(review.TARGET),
    ("signoff.py", "action"): OUTPUT_ACTIONS,
}


def written_actions() -> dict[str, str]:
    """Every action any `audit.Change(...)` in governance/ can write -> where it is written."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "governance").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for call in ast.walk(function):
                if isinstance(call, ast.Call) and _called(call) == "Change":
                    where = f"{path.relative_to(ROOT)}:{call.lineno}"
                    for action in _values(_action_argument(call), function, path.name, where):
                        found.setdefault(action, where)
    return found


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _action_argument(call: ast.Call) -> ast.expr:
    if call.args:
        return call.args[0]
    return next(k.value for k in call.keywords if k.arg == "action")


def _values(node: ast.expr, function, module: str, where: str) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _values(node.body, function, module, where) + _values(node.orelse, function, module, where)
    if isinstance(node, ast.Name):  # `action = "a" if x else "b"` earlier in the same function
        assigned = [
            n.value
            for n in ast.walk(function)
            if isinstance(n, ast.Assign) and any(getattr(t, "id", None) == node.id for t in n.targets)
        ]
        if assigned:
            return [value for v in assigned for value in _values(v, function, module, where)]
    if isinstance(node, ast.JoinedStr):
        texts = [""]
        for part in node.values:
            if isinstance(part, ast.Constant):
                options = [part.value]
            elif isinstance(part.value, ast.Name) and (module, part.value.id) in PLACEHOLDERS:
                options = list(PLACEHOLDERS[(module, part.value.id)])
            else:
                options = _values(part.value, function, module, where)
            texts = [text + option for text in texts for option in options]
        return texts
    raise AssertionError(
        f"{where}: cannot tell which action this Change writes; name its values in PLACEHOLDERS"
    )


def test_every_action_written_in_governance_has_a_replay_rule():
    written = written_actions()
    assert {"review.approve", "review.revoke", "output.reopen", "ingest.finish", "actor.disable"} <= set(
        written
    )
    missing = {action: where for action, where in written.items() if action not in RULES}
    assert missing == {}, f"actions without a replay rule in governance/upkeep/replay_rules.py: {missing}"
    unused = set(RULES) - set(written)
    assert unused == set(), f"replay rules for actions nothing writes: {sorted(unused)}"


def test_the_replay_reads_a_large_membership_by_its_count(catalogue, team, tmp_path):
    """A style-set change over AUDIT_IDS_LIMIT images records a hash of the ids, not the ids: the
    replay then holds the set to its count."""
    paths = [write(tmp_path / "in" / f"{n}.png", _png(n)) for n in range(3)]
    ingest(catalogue, "sam", tmp_path / "in", progress=False)
    with catalogue.write() as session:
        stylesets.create(session, "sam", "big")
    limit = stylesets.AUDIT_IDS_LIMIT
    stylesets.AUDIT_IDS_LIMIT = 1
    try:
        with catalogue.write() as session:
            stylesets.add(session, "sam", "big", [str(n) for n in range(1, len(paths) + 1)])
    finally:
        stylesets.AUDIT_IDS_LIMIT = limit
    assert findings(catalogue) == []
    with catalogue.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM styleset_member WHERE image_id = 3"))
    found = {(f.table, f.field, f.recorded, f.found) for f in findings(catalogue)}
    assert found == {("styleset", "members", 3, 2)}


def _png(seed: int) -> bytes:
    return encode(picture(seed))


def test_the_replay_is_clean_after_a_dated_index_build_and_its_verification(indexed):
    catalogue, folder = indexed
    assert index_verification.verify(catalogue, folder, on=date(2026, 11, 27)).ok
    assert findings(catalogue) == []


def test_a_history_rewritten_from_its_first_event_is_another_catalogue(lived_in, key, cli, tmp_path):
    catalogue, _ = lived_in
    kept = tmp_path / "checkpoints.jsonl"
    kept.write_text("\n")  # an empty file legal made ready is appended to
    checkpoints.checkpoint(catalogue, "lee", key, kept)
    rewrite_history(catalogue, lambda row: row.id == 1)  # the admin's bootstrap is gone
    run = cli("audit", "verify", "--checkpoint", kept, "--pubkey", f"{key}.pub")
    assert run.exit_code == 1
    assert "another catalogue, or history rewritten from its first event" in run.stderr
