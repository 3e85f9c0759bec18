"""Legal's decisions on images: approve, reject, revoke (DESIGN.md rule 5, four-eyes).

Two ways to choose the images. Named images (`decide`) are decided all or none: if any one is
refused (wrong state, the approver ingested it, its licence is not settled) nothing changes.
Images chosen by a filter (`decide_matching`, the filters of `images list`) are decided where the
rules allow it, and every image a rule refuses is skipped and reported with its reason, so one
image legal may not approve does not hold back eight hundred it may. Either way the images are
row-locked in id order for the transaction (concurrent reviewers on PostgreSQL serialise per image),
judged by one query and changed by set-based UPDATEs in batches, with one audit event per image.
The lock is FOR NO KEY UPDATE (a decision never changes an image's key), which the key-share locks
of foreign keys pointing at the image (a style set's `add`, an ingest's new source) do not wait for.
Deciding an image that is already in the requested state changes nothing and says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.models import Image, IngestRun, Licence, Source
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.standing.rejudge import rejudge
from stylevault.governance.views.images import matching_ids, resolve_many

TARGET = {"approve": "approved", "reject": "rejected", "revoke": "revoked"}
# Which states each decision may start from. Rejecting an approved image is a revocation.
FROM = {
    "approve": {"pending", "rejected", "revoked"},
    "reject": {"pending"},
    "revoke": {"pending", "approved"},
}
SETTLED_LICENCE = {"normalised", "verified"}
BY_FILTER = ("approve", "reject")  # a revocation names its images: it stales indexes and reopens outputs
BATCH = 1000  # ids per UPDATE: well under SQLite's and psycopg's bound-parameter limits
CLI_SETTLE = "with `stylevault licence set`"


class Unsettled(Refused):
    """An approval refused because an image's licence is not settled. Each face says where to settle
    it (`explain`): the CLI names the command, the desk the form on the image's page."""

    def __init__(self, image_id: int, status: str, more: int = 0):
        self.image_id, self.status, self.more = image_id, status, more
        super().__init__(self.explain(CLI_SETTLE))

    def explain(self, where: str) -> str:
        more = f" (and {self.more} more)" if self.more else ""
        return f"image {self.image_id}: licence is {self.status}; settle it first {where}{more}"


@dataclass
class Decision:
    """What a decision did: the images decided (changed or already so), the images a filter matched
    that a rule refused (with why), and for a revocation the indexes it marked stale and the released
    outputs it sent back to pending."""

    decision: str
    images: list[dict]
    skipped: list[dict] = field(default_factory=list)
    stale_indexes: list[str] = field(default_factory=list)
    reopened_outputs: list[int] = field(default_factory=list)
    dry_run: bool = False

    @property
    def changed(self) -> list[dict]:
        return [image for image in self.images if image["changed"]]

    def as_dict(self) -> dict:
        return asdict(self)


def decide(
    session: Session, actor_name: str | None, decision: str, refs: list[str], reason: str | None
) -> Decision:
    """Apply one decision to every named image, or refuse them all with the first problem."""
    if decision not in TARGET:
        raise BadInput(f"unknown decision {decision!r}")
    actor = actors.require(session, actor_name, "review")
    ids = sorted(image.id for image in resolve_many(session, refs))
    rows = _candidates(session, actor.id, ids, lock=True)
    judged = [(row, _judge(row, decision, actor, reason)) for row in rows]
    problems = [(row, verdict) for row, verdict in judged if verdict not in (None, "unchanged")]
    if problems:
        (row, (kind, text)), more = problems[0], len(problems) - 1
        if kind == "licence":
            raise Unsettled(row.id, row.licence_status or "missing", more)
        raise Refused(text + (f" (and {more} more)" if more else ""))
    result = _apply(session, actor, decision, judged, reason)
    if decision == "revoke" and result.changed:
        _after_revocation(session, actor, result, reason)
    return result


def decide_matching(
    session: Session,
    actor_name: str | None,
    decision: str,
    filters: dict,
    reason: str | None,
    *,
    dry_run: bool = False,
) -> Decision:
    """Apply one decision to every image the `images list` filters match, skipping (and reporting)
    each image a rule refuses; with `dry_run`, say what would change and change nothing."""
    if decision not in BY_FILTER:
        raise BadInput(f"decision: by filter only {' or '.join(BY_FILTER)}, got {decision!r}")
    actor = actors.require(session, actor_name, "review")
    rows = _candidates(session, actor.id, matching_ids(**filters), lock=not dry_run)
    judged = [(row, _judge(row, decision, actor, reason)) for row in rows]
    skipped = [
        {"id": row.id, "sha256": row.sha256, "state": row.state, "why": verdict[0], "detail": verdict[1]}
        for row, verdict in judged
        if verdict not in (None, "unchanged")
    ]
    decidable = [(row, verdict) for row, verdict in judged if verdict in (None, "unchanged")]
    if dry_run:
        images = [_result(row, decision, changed=verdict is None) for row, verdict in decidable]
        return Decision(decision, images, skipped, dry_run=True)
    result = _apply(session, actor, decision, decidable, reason)
    result.skipped = skipped
    return result


def _candidates(session: Session, actor_id: int, ids, *, lock: bool) -> list:
    """The chosen images with what the rules look at, in one query: state, licence status, and
    whether the actor ingested any source of the image (not only the first)."""
    i, lic, s, r = Image.__table__, Licence.__table__, Source.__table__, IngestRun.__table__
    ingested = sa.or_(
        i.c.ingested_by == actor_id,
        sa.exists().where(s.c.image_id == i.c.id, r.c.id == s.c.ingest_run_id, r.c.actor_id == actor_id),
    )
    query = (
        sa.select(
            i.c.id,
            i.c.sha256,
            i.c.state,
            i.c.state_reason,
            lic.c.status.label("licence_status"),
            ingested.label("ingested"),
        )
        .select_from(i.outerjoin(lic, lic.c.image_id == i.c.id))
        .where(i.c.id.in_(ids))
        .order_by(i.c.id)
    )
    if lock:
        query = query.with_for_update(of=i, key_share=True)
    return session.execute(query).all()


def _judge(row, decision: str, actor, reason: str | None) -> tuple[str, str] | str | None:
    """None when the decision applies, "unchanged" when the image is already so, else (why, text)."""
    target = TARGET[decision]
    if row.state == target:
        return "unchanged"
    if row.state not in FROM[decision]:
        hint = " (use revoke)" if decision == "reject" and row.state == "approved" else ""
        return "state", f"image {row.id} is {row.state}: it cannot be {target}{hint}"
    needs_reason = decision != "approve" or row.state != "pending"
    if needs_reason and not (reason and reason.strip()):
        return "reason", f"image {row.id}: --reason is required to {decision} a {row.state} image"
    if decision == "approve":
        if row.ingested:
            return "four-eyes", f"image {row.id}: {actor.name} ingested it and cannot approve it (four-eyes)"
        if row.licence_status not in SETTLED_LICENCE:
            status = row.licence_status or "missing"
            return "licence", f"image {row.id}: licence is {status}; settle it first {CLI_SETTLE}"
    return None


def _result(row, decision: str, *, changed: bool) -> dict:
    return {"id": row.id, "sha256": row.sha256, "state": TARGET[decision], "changed": changed}


def _apply(session: Session, actor, decision: str, judged: list, reason: str | None) -> Decision:
    """Write the decision for the rows judged applicable: one UPDATE and one audit batch per BATCH."""
    target, now = TARGET[decision], datetime.now(UTC)
    to_change = [row for row, verdict in judged if verdict is None]
    for start in range(0, len(to_change), BATCH):
        batch = to_change[start : start + BATCH]
        session.execute(
            sa.update(Image)
            .where(Image.id.in_([row.id for row in batch]))
            .values(state=target, state_reason=reason, state_by=actor.id, state_at=now)
        )
        audit.record(
            session,
            actor.name,
            [
                audit.Change(
                    f"review.{decision}",
                    "image",
                    row.id,
                    {"state": row.state, "reason": row.state_reason},
                    {"state": target, "reason": reason},
                )
                for row in batch
            ],
        )
    images = [_result(row, decision, changed=verdict is None) for row, verdict in judged]
    return Decision(decision, images)


def _after_revocation(session: Session, actor, result: Decision, reason: str | None) -> None:
    """A revocation marks stale every index it un-clears and reopens the outputs that used it (rule 7)."""
    ids = [image["id"] for image in result.changed]
    named = ", ".join(str(i) for i in ids)
    done = rejudge(
        session,
        actor.name,
        ids,
        f"revoked image {named} ({reason})",
        reopen_why=f"source image {named} revoked ({reason})",
    )
    result.stale_indexes, result.reopened_outputs = done.stale_indexes, done.reopened_outputs
