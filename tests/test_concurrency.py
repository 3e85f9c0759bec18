"""Concurrent writers in separate OS processes on one catalogue (SQLite file or PostgreSQL database).

Reviewers racing over the same images must serialise per image: every decision starts from the
state the previous one left (no lost update), each lands in the audit chain exactly once, and the
chain stays one unforked, gap-free line however the appends interleave.
"""

from __future__ import annotations

import json
import multiprocessing
import queue
import threading
import time
import traceback
from collections import Counter
from datetime import date

import pytest
import sqlalchemy as sa

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import (
    APPROVAL_STATES,
    Actor,
    AuditEvent,
    Image,
    IngestRun,
    Licence,
    Source,
)
from stylevault.governance.catalogue.output_models import IndexBuild
from stylevault.governance.errors import Busy, Refused
from stylevault.governance.index import builds as index
from stylevault.governance.index import verification
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import review
from tests.conftest import ON_POSTGRES
from tests.factories import folder_of_images, lose_a_race, write_csv

SPAWN = multiprocessing.get_context("spawn")
IMAGES = 30
PAUSE = 0.003  # seconds between one worker's transactions


# ------------------------------------------------------------------ in the worker processes


def _worker_main(job: str, url: str, store: str, args: tuple, barrier, reports) -> None:
    """Open the catalogue, wait for the others, run `job`, and report (or report the traceback)."""
    try:
        cat = Catalogue.open(url, store)
        with cat.read() as session:  # connect before the start line, so all begin together
            session.execute(sa.text("SELECT 1"))
        barrier.wait(timeout=60)
        try:
            reports.put(JOBS[job](cat, *args))
        finally:
            cat.dispose()
    except BaseException:
        barrier.abort()  # the others stop waiting for a worker that will not come
        reports.put({"error": traceback.format_exc()})


def decide_each(cat: Catalogue, actor: str, plan: list[tuple[str, list[int]]], reason: str) -> dict:
    """Each (decision, image ids) in its own transaction; a refusal is a decision the state no
    longer allows, which is what racing reviewers expect to meet."""
    changed, unchanged, refused = [], 0, 0
    for decision, ids in plan:
        try:
            with cat.write() as session:
                results = review.decide(session, actor, decision, [str(i) for i in ids], reason)
        except Refused:
            refused += 1
            continue
        for result in results.images:
            if result["changed"]:
                changed.append((actor, f"review.{decision}", result["id"]))
            else:
                unchanged += 1
        # A breath outside the transaction: SQLite's busy handler polls, and a writer that commits
        # and begins again at once would otherwise keep the lock for whole runs.
        time.sleep(PAUSE)
    return {"actor": actor, "changed": changed, "unchanged": unchanged, "refused": refused}


def add_actors(cat: Catalogue, prefix: str, count: int) -> dict:
    names = []
    for n in range(count):
        name = f"{prefix}-{n}"
        with cat.write() as session:
            actors.add(session, "admin", name, ["viewer"])
        with cat.write() as session:
            actors.grant(session, "admin", name, ["reviewer"])
        names.append(name)
    return {"names": names, "events": 2 * count}


def upgrade(cat: Catalogue) -> dict:
    cat.upgrade()
    return {"revision": cat.revision()}


def ingest_folder(cat: Catalogue, actor: str, folder: str, manifest: str, batch_size: int) -> dict:
    summary = ingest(cat, actor, folder, manifest=manifest, batch_size=batch_size, progress=False)
    return {"run": summary.run_id, "catalogued": summary.catalogued, "duplicates": summary.duplicates}


JOBS = {
    "decide_each": decide_each,
    "add_actors": add_actors,
    "upgrade": upgrade,
    "ingest_folder": ingest_folder,
}


# ------------------------------------------------------------------ in the test process


def run_together(
    cat: Catalogue, jobs: list[tuple[str, tuple]], meanwhile=None, timeout: float = 120
) -> list[dict]:
    """Start one process per job, release them at the same moment, and collect their reports;
    `meanwhile` runs over and over in this process until they are all in."""
    barrier = SPAWN.Barrier(len(jobs))
    reports = SPAWN.Queue()
    processes = [
        SPAWN.Process(target=_worker_main, args=(job, cat.url, str(cat.store), args, barrier, reports))
        for job, args in jobs
    ]
    for process in processes:
        process.start()
    deadline = time.monotonic() + timeout
    collected: list[dict] = []
    try:
        while len(collected) < len(processes):
            if meanwhile is not None:
                meanwhile()
            try:
                collected.append(
                    reports.get(timeout=0.01 if meanwhile else max(deadline - time.monotonic(), 0))
                )
            except queue.Empty:
                assert time.monotonic() < deadline, "workers did not finish in time"
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()
    errors = [report["error"] for report in collected if "error" in report]
    assert not errors, errors[0]
    assert [process.exitcode for process in processes] == [0] * len(processes)
    return collected


@pytest.fixture
def images(catalogue, team, tmp_path) -> list[int]:
    """IMAGES pending images ingested by sam with a normalised licence (CC0), and a third legal actor."""
    paths = folder_of_images(tmp_path / "in", IMAGES)
    manifest = write_csv(tmp_path / "manifest.csv", [{"path": p.name, "licence": "CC0"} for p in paths])
    summary = ingest(catalogue, "sam", tmp_path / "in", manifest=manifest, progress=False)
    assert summary.catalogued == IMAGES
    with catalogue.write() as session:
        actors.add(session, "admin", "ana", ["legal"])
    with catalogue.read() as session:
        return sorted(session.scalars(sa.select(Image.id)))


def review_events(cat: Catalogue) -> list[dict]:
    with cat.read() as session:
        rows = session.execute(
            sa.select(AuditEvent.__table__)
            .where(AuditEvent.action.startswith("review."))
            .order_by(AuditEvent.id)
        ).all()
    return [
        {
            "seq": row.id,
            "at": row.at,
            "actor": row.actor,
            "action": row.action,
            "image": int(row.target_id),
            "before": json.loads(row.before),
            "after": json.loads(row.after),
        }
        for row in rows
    ]


def assert_chain_whole(cat: Catalogue) -> int:
    """verify is ok and the stored sequence numbers are exactly 1..N with N the head."""
    with cat.read() as session:
        result = audit.verify(session)
        seqs = list(session.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.id)))
    assert result.ok, result.problem
    assert seqs == list(range(1, result.head_seq + 1))
    return result.head_seq


def assert_decisions_consistent(cat: Catalogue, reports: list[dict]) -> list[dict]:
    """Every image in one valid state, reached by an unbroken line of recorded decisions."""
    events = review_events(cat)
    with cat.read() as session:
        rows = session.execute(
            sa.select(Image.id, Image.state, Image.state_by, Image.ingested_by, Actor.name)
            .outerjoin(Actor, Actor.id == Image.state_by)
            .order_by(Image.id)
        ).all()
    by_image: dict[int, list[dict]] = {}
    for event in events:
        by_image.setdefault(event["image"], []).append(event)
    for image_id, state, state_by, ingested_by, decided_by in rows:
        assert state in APPROVAL_STATES
        assert not (state == "approved" and state_by == ingested_by)
        history = by_image.get(image_id, [])
        # No lost update: each decision starts from the state the one before it left.
        previous = "pending"
        for event in history:
            assert event["before"]["state"] == previous, (image_id, history)
            assert event["after"]["state"] != previous
            previous = event["after"]["state"]
        assert previous == state, (image_id, state, history)
        if history:
            assert history[-1]["actor"] == decided_by
    reported = Counter(change for report in reports for change in map(tuple, report["changed"]))
    recorded = Counter((event["actor"], event["action"], event["image"]) for event in events)
    assert recorded == reported
    assert len(events) == sum(len(report["changed"]) for report in reports)
    return events


def test_racing_reviewers_one_image_at_a_time(catalogue, images):
    """lee approves, kim rejects or revokes, ana approves from the other end: twice over each."""
    rounds = 2
    approve_up = [("approve", [i]) for i in images] * rounds
    approve_down = [("approve", [i]) for i in reversed(images)] * rounds
    turn_down = [("reject" if n % 2 else "revoke", [i]) for n, i in enumerate(images)] * rounds
    before = assert_chain_whole(catalogue)
    reports = run_together(
        catalogue,
        [
            ("decide_each", ("lee", approve_up, "cleared")),
            ("decide_each", ("kim", turn_down, "withdrawn")),
            ("decide_each", ("ana", approve_down, "cleared")),
        ],
    )
    for report in reports:
        planned = rounds * IMAGES
        assert len(report["changed"]) + report["unchanged"] + report["refused"] == planned
    events = assert_decisions_consistent(catalogue, reports)
    assert len(events) >= IMAGES  # every image was decided at least once
    deciders = {event["actor"] for event in events}
    if catalogue.engine.dialect.name == "postgresql":  # row locks queue every reviewer in turn
        assert deciders == {"lee", "kim", "ana"}
    else:
        # SQLite's busy handler polls with back-off (up to 100 ms) while the other two writers take
        # the database lock every few milliseconds, so one writer can wait out a whole fast run
        # (seen in CI once): at least two reviewers decide, and the switches below show they raced.
        assert len(deciders) >= 2 and deciders <= {"lee", "kim", "ana"}
    switches = sum(a["actor"] != b["actor"] for a, b in zip(events, events[1:], strict=False))
    assert switches >= 5, "the workers ran one after another, not together"
    assert assert_chain_whole(catalogue) == before + len(events)


def test_racing_whole_batches(catalogue, images):
    """A decision on many images is one transaction: batches interleave as wholes, never mixed."""
    repeats = 6
    reports = run_together(
        catalogue,
        [
            ("decide_each", ("lee", [("approve", images)] * repeats, "cleared")),
            ("decide_each", ("kim", [("revoke", images)] * repeats, "withdrawn")),
        ],
    )
    assert all(report["refused"] == 0 for report in reports)
    events = assert_decisions_consistent(catalogue, reports)
    with catalogue.read() as session:
        states = set(session.scalars(sa.select(Image.state)))
    assert len(states) == 1, states
    # The events of one transaction share its timestamp and sit together in the chain.
    batches: dict[str, list[int]] = {}
    for event in events:
        batches.setdefault(event["at"], []).append(event["seq"])
    for seqs in batches.values():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert len(seqs) == IMAGES
    assert_chain_whole(catalogue)


def test_parallel_appends_keep_one_gap_free_chain(catalogue, team):
    """Three processes appending as fast as they can: one chain, no fork, no gap, nothing lost.
    Meanwhile this process verifies over and over: the head and the events come from one snapshot,
    so appends committed during a walk are never mistaken for tampering."""
    per_process = 20
    before = assert_chain_whole(catalogue)
    walks = []

    def verify_meanwhile() -> None:
        with catalogue.read() as session:
            result = audit.verify(session)
        assert result.ok, result.problem
        walks.append(result.events)

    reports = run_together(
        catalogue,
        [("add_actors", (prefix, per_process)) for prefix in ("p", "q", "r")],
        meanwhile=verify_meanwhile,
    )
    assert len(set(walks)) > 3, "verification never overlapped the appends"
    head = assert_chain_whole(catalogue)
    assert head == before + sum(report["events"] for report in reports)
    with catalogue.read() as session:
        adds = audit.log(session, action="actor.add")
        grants = audit.log(session, action="actor.grant_role")
        names = set(session.scalars(sa.select(Actor.name)))
    expected = {name for report in reports for name in report["names"]}
    assert expected <= names
    assert {event["target"] for event in adds} >= {f"actor:{name}" for name in expected}
    assert sorted(event["target"] for event in grants) == sorted(f"actor:{name}" for name in expected)
    # Each actor's grant comes after its add, whatever the interleaving.
    added_at = {event["target"]: event["seq"] for event in adds}
    assert all(event["seq"] > added_at[event["target"]] for event in grants)


def test_inits_started_together_queue_up(empty_database, tmp_path):
    """Three `stylevault init`s on one new catalogue: one creates it, the others find it current."""
    cat = Catalogue.open(empty_database, tmp_path / "store")
    try:
        reports = run_together(cat, [("upgrade", ())] * 3)
        assert {report["revision"] for report in reports} == {cat.revision()} != {None}
        cat.require_current()
        with cat.read() as session:
            assert session.execute(sa.text("SELECT id, seq FROM audit_head")).all() == [(1, 0)]
            assert audit.verify(session).ok
    finally:
        cat.dispose()


def test_overlapping_ingests_of_the_same_files_catalogue_each_once_and_all_complete(
    catalogue, team, tmp_path
):
    # Four runs ingest the same 40 files at the same moment, in small batches, so that their inserts of
    # the same sha256s and the same places overlap. Each file is catalogued once over all the runs and
    # is a duplicate in the others; no run fails on the unique keys (on PostgreSQL 3 of 4 did).
    paths = folder_of_images(tmp_path / "in", 40)
    manifest = write_csv(
        tmp_path / "manifest.csv",
        [
            {"path": p.name, "licence": "CC0" if n % 2 else "MIT", "source_url": "https://example.com/pack"}
            for n, p in enumerate(paths)
        ],
    )
    args = ("sam", str(tmp_path / "in"), str(manifest), 5)
    reports = run_together(catalogue, [("ingest_folder", args)] * 4)

    assert sum(r["catalogued"] for r in reports) == 40
    assert all(r["catalogued"] + r["duplicates"] == 40 for r in reports)
    with catalogue.read() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Image)) == 40
        assert session.scalar(sa.select(sa.func.count()).select_from(Source)) == 40
        statuses = session.execute(sa.select(IngestRun.status, IngestRun.offered)).all()
        licences = dict(
            session.execute(sa.select(Licence.status, sa.func.count()).group_by(Licence.status)).all()
        )
    assert sorted(statuses) == [("completed", 40)] * 4
    assert licences == {"normalised": 40}
    assert_chain_whole(catalogue)


# ------------------------------------------------------------------ interleavings replayed on PostgreSQL

postgres_only = pytest.mark.skipif(not ON_POSTGRES, reason="row locks: SQLite's writer lock serialises")


class Meanwhile:
    """Run `work` on a second connection in a thread, and wait until it has finished or is waiting
    for a row lock: the interleaving replayed step by step, not by timing."""

    def __init__(self, cat: Catalogue, work):
        self.cat, self.work, self.pid, self.error = cat, work, None, None
        self.started = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            with self.cat.write() as session:
                self.pid = session.execute(sa.text("SELECT pg_backend_pid()")).scalar()
                self.started.set()
                self.work(session)
        except BaseException as exc:
            self.error = exc
        finally:
            self.started.set()

    def start_and_wait(self) -> str:
        """'finished' or 'waiting for a lock'."""
        self.thread.start()
        assert self.started.wait(60)
        watcher = self.cat.engine.execution_options(isolation_level="AUTOCOMMIT")
        with watcher.connect() as connection:
            for _ in range(60_000):
                if not self.thread.is_alive():
                    return "finished"
                waiting = connection.execute(
                    sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"),
                    {"pid": self.pid},
                ).scalar()
                if waiting == "Lock":
                    return "waiting for a lock"
                time.sleep(0.001)
        raise AssertionError("the second connection neither finished nor waited for a lock")

    def join(self) -> None:
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


@postgres_only
def test_a_revocation_between_an_index_builds_clearance_and_its_record(
    published, encoder_dir, tmp_path, monkeypatch
):
    """lee revokes image 1 on a second connection just after the build rechecked its members and
    before it recorded them: the revocation waits for the record and then marks it stale (before,
    it found no index to mark, and a fresh index held the revoked image)."""
    recheck = index._still_cleared
    seen = {}

    def revoke_meanwhile(session, *args):
        recheck(session, *args)
        meanwhile = Meanwhile(
            published, lambda other: review.decide(other, "lee", "revoke", ["1"], "takedown")
        )
        seen["revoke"] = meanwhile
        seen["state"] = meanwhile.start_and_wait()

    monkeypatch.setattr(index, "_still_cleared", revoke_meanwhile)
    built = index.build(
        published,
        "sam",
        "looks",
        "commercial",
        f"local-dir:{encoder_dir}",
        tmp_path / "idx",
        on=date(2026, 11, 27),
    )
    seen["revoke"].join()
    assert seen["state"] == "waiting for a lock"
    with published.read() as session:
        record = session.scalars(sa.select(IndexBuild).where(IndexBuild.index_id == built.index_id)).one()
        assert session.get(Image, 1).state == "revoked"
    assert record.stale and "revoked image 1" in record.stale_reason
    assert not verification.verify(published, tmp_path / "idx", on=date(2026, 11, 27)).ok


@postgres_only
def test_a_decision_that_lost_a_race_is_run_again_and_lands_once(catalogue, images):
    """lee's approval loses a serialisation race on its first attempt (PostgreSQL aborts it with
    40001, as it aborts one side of a deadlock): transact runs it again and it goes through."""
    attempts = []

    def approve(session):
        attempts.append(len(attempts) + 1)
        if len(attempts) == 1:
            lose_a_race(session, catalogue, images[0])
        return review.decide(session, "lee", "approve", [str(images[0])], None)

    results = catalogue.transact(approve)
    assert attempts == [1, 2] and results.images[0]["changed"]
    events = review_events(catalogue)
    assert [(e["actor"], e["action"], e["image"]) for e in events] == [("lee", "review.approve", images[0])]
    assert_chain_whole(catalogue)


@postgres_only
def test_a_decision_that_keeps_losing_is_refused_as_busy_with_nothing_changed(catalogue, images):
    def approve(session):
        lose_a_race(session, catalogue, images[0])
        return review.decide(session, "lee", "approve", [str(images[0])], None)

    with pytest.raises(
        Busy, match=r"catalogue busy: .* 5 times \(serialisation failure\); nothing was changed"
    ):
        catalogue.transact(approve)
    assert review_events(catalogue) == []
    with catalogue.read() as session:
        assert session.get(Image, images[0]).state == "pending"


@postgres_only
def test_styleset_add_does_not_wait_for_a_reviewers_row_locks(catalogue, images):
    """A reviewer's lock on images (FOR NO KEY UPDATE) and the key-share locks that styleset add's
    foreign keys take do not conflict, so the two never deadlock over images (seen: 5 in 1,200)."""
    from stylevault.governance.curation import stylesets

    with catalogue.write() as session:
        stylesets.create(session, "sam", "north")
    with catalogue.write() as reviewer:
        review.decide(reviewer, "lee", "approve", [str(i) for i in images[:10]], None)
        # The reviewer's transaction is still open, its rows locked; an add of the same images on a
        # second connection only waits for the audit head, which the reviewer holds too: it is the
        # image rows it must not be waiting for.
        adding = Meanwhile(catalogue, lambda other: _add_without_audit(other, images[:10]))
        assert adding.start_and_wait() == "finished"
        adding.join()


def _add_without_audit(session, image_ids):
    """The statement styleset add runs, foreign keys and all (its audit append is not the point)."""
    from stylevault.governance.catalogue.models import StyleSet, StyleSetMember, utcnow

    styleset = session.scalars(sa.select(StyleSet).where(StyleSet.name == "north")).one()
    member, image = StyleSetMember.__table__, Image.__table__
    session.execute(
        sa.insert(member).from_select(
            ["styleset_id", "image_id", "added_by", "added_at"],
            sa.select(
                sa.literal(styleset.id), image.c.id, sa.literal(styleset.owner_id), sa.literal(utcnow())
            )
            .where(image.c.id.in_(image_ids))
            .order_by(image.c.id.desc()),
        )
    )
