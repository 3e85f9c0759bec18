"""The append-only, hash-chained audit log.

Each event's hash is sha256 over the canonical JSON of (seq, prev_hash, at, actor, action, target,
before, after), so editing, deleting, inserting or reordering any event breaks a link that
`verify` finds. The single `audit_head` row names the last event: it is row-locked while a
transaction appends (serialising writers on PostgreSQL) and it exposes a truncated tail.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from stylevault.governance.catalogue.models import AuditEvent, AuditHead
from stylevault.governance.errors import Refused

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default)


def timestamp(moment: datetime) -> str:
    """UTC, microseconds, 'Z': the one way stylevault writes a time into hashed records."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable in an audit event: {type(value).__name__}")


HASHED = ("id", "prev_hash", "at", "actor", "action", "target_type", "target_id", "before", "after")


def event_hash(
    seq: int,
    prev_hash: str,
    at: str,
    actor: str | None,
    action: str,
    target_type: str,
    target_id: str,
    before: str | None,
    after: str | None,
) -> str:
    payload = canonical_json([seq, prev_hash, at, actor, action, target_type, target_id, before, after])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def row_hash(row, **replaced) -> str:
    """The hash a stored event row should carry: event_hash over its fields, with any in `replaced`
    (e.g. `after=...`) in place of the stored ones."""
    if replaced:
        return event_hash(*(replaced[name] if name in replaced else getattr(row, name) for name in HASHED))
    return event_hash(
        row.id,
        row.prev_hash,
        row.at,
        row.actor,
        row.action,
        row.target_type,
        row.target_id,
        row.before,
        row.after,
    )


@dataclass(frozen=True)
class Change:
    """One state change to record: who did what to which target, and the state before and after."""

    action: str
    target_type: str
    target_id: str | int
    before: dict | None = None
    after: dict | None = None


def _locked_head(session: Session) -> AuditHead:
    # Locked once per transaction; later appends in the same transaction reuse it.
    head = session.info.get("audit_head")
    if head is None:
        query = select(AuditHead).where(AuditHead.id == 1).with_for_update()
        head = session.exec(query.execution_options(populate_existing=True)).first()
        if head is None:
            raise Refused(
                "the audit head row is missing; nothing can be recorded (see `stylevault audit verify`)"
            )
        session.info["audit_head"] = head
    return head


def record(session: Session, actor: str | None, changes: list[Change]) -> list[int]:
    """Append `changes` to the chain inside the caller's transaction; returns their sequence numbers."""
    if not changes:
        return []
    head = _locked_head(session)
    at = _default(datetime.now(UTC))
    rows = []
    seq, prev = head.seq, head.hash
    for change in changes:
        seq += 1
        before = None if change.before is None else canonical_json(change.before)
        after = None if change.after is None else canonical_json(change.after)
        target_id = str(change.target_id)
        digest = event_hash(seq, prev, at, actor, change.action, change.target_type, target_id, before, after)
        rows.append(
            dict(
                id=seq,
                at=at,
                actor=actor,
                action=change.action,
                target_type=change.target_type,
                target_id=target_id,
                before=before,
                after=after,
                prev_hash=prev,
                hash=digest,
            )
        )
        prev = digest
    session.execute(sa.insert(AuditEvent), rows)
    head.seq, head.hash = seq, prev
    session.add(head)
    return [row["id"] for row in rows]


def _clear_head(session: Session) -> None:
    session.info.pop("audit_head", None)


sa.event.listen(Session, "after_commit", _clear_head)
sa.event.listen(Session, "after_rollback", _clear_head)


@dataclass
class Verification:
    ok: bool
    events: int
    head_seq: int | None  # None: the audit head row is missing
    head_hash: str | None
    broken_at: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "events": self.events,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "broken_at": self.broken_at,
            "problem": self.problem,
        }


def verify(session: Session, *, start_seq: int = 0, start_hash: str = GENESIS) -> Verification:
    """Walk the chain in sequence order and report the first broken link.

    The head and the events must come from one snapshot (`Catalogue.read()`), or an append
    committed in between looks like tampering. From `start_seq` and `start_hash` (a head verified
    earlier), only the events after it are walked.
    """
    head = session.exec(select(AuditHead).where(AuditHead.id == 1)).first()
    head_seq, head_hash = (head.seq, head.hash) if head is not None else (None, None)
    expected_seq, prev = start_seq, start_hash
    query = sa.select(AuditEvent.__table__).where(AuditEvent.id > start_seq).order_by(AuditEvent.id)
    rows = session.execute(query).yield_per(5000)

    def broken(seq: int, problem: str) -> Verification:
        return Verification(False, expected_seq, head_seq, head_hash, seq, problem)

    for row in rows:
        expected_seq += 1
        if row.id != expected_seq:
            return broken(expected_seq, f"event {expected_seq} is missing (next stored event is {row.id})")
        if row.prev_hash != prev:
            return broken(row.id, f"event {row.id} does not follow event {row.id - 1} (prev_hash differs)")
        recomputed = row_hash(row)
        if recomputed != row.hash:
            return broken(row.id, f"event {row.id} was altered (its hash does not match its content)")
        prev = row.hash
    if head is None:
        return broken(
            expected_seq + 1, f"the chain ends at event {expected_seq} but the audit head row is missing"
        )
    if head.seq != expected_seq:
        # Broken at the first event they disagree on: one the head does not know, or one it names
        # that is gone.
        why = "added behind the head's back" if expected_seq > head.seq else "removed from the end"
        return broken(
            min(expected_seq, head.seq) + 1,
            f"the chain ends at event {expected_seq} but the head names event {head.seq}"
            f" (events {why}, or the head was altered)",
        )
    if head.hash != prev:
        return broken(
            expected_seq + 1,
            f"the chain ends at event {expected_seq} but the head names another hash for it"
            " (the head was altered)",
        )
    return Verification(True, expected_seq, head.seq, head.hash)


def revision(session: Session) -> dict:
    """The catalogue revision: the audit head, which moves with every recorded change."""
    head = session.exec(select(AuditHead).where(AuditHead.id == 1)).one()
    return {"seq": head.seq, "hash": head.hash}


def log(
    session: Session,
    *,
    target_type: str | None = None,
    target_id: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Events, newest first, filtered by target, action prefix or actor."""
    query = sa.select(AuditEvent.__table__).order_by(AuditEvent.id.desc())
    if target_type:
        query = query.where(AuditEvent.target_type == target_type)
    if target_id is not None:
        query = query.where(AuditEvent.target_id == str(target_id))
    if action:
        query = query.where(AuditEvent.action.startswith(action, autoescape=True))
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if limit:
        query = query.limit(limit)
    return [
        {
            "seq": row.id,
            "at": row.at,
            "actor": row.actor,
            "action": row.action,
            "target": f"{row.target_type}:{row.target_id}",
            "before": None if row.before is None else json.loads(row.before),
            "after": None if row.after is None else json.loads(row.after),
            "hash": row.hash,
        }
        for row in session.execute(query)
    ]
