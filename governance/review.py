"""Legal's decisions on images: approve, reject, revoke (DESIGN.md rule 5, four-eyes).

A command decides all the images it names or none of them: if any one is refused (wrong state,
the approver ingested it, its licence is not settled) nothing changes. The images are row-locked
in id order for the transaction, so concurrent reviewers on PostgreSQL serialise per image. The lock
is FOR NO KEY UPDATE (a decision never changes an image's key), which the key-share locks of foreign
keys pointing at the image (a style set's `add`, an ingest's new source) do not wait for.
Deciding an image that is already in the requested state changes nothing and says so.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Session

from governance import actors, audit
from governance.errors import BadInput, Refused
from governance.images import resolve_many
from governance.models import Image, IngestRun, Licence, Source

TARGET = {"approve": "approved", "reject": "rejected", "revoke": "revoked"}
# Which states each decision may start from. Rejecting an approved image is a revocation.
FROM = {
    "approve": {"pending", "rejected", "revoked"},
    "reject": {"pending"},
    "revoke": {"pending", "approved"},
}
SETTLED_LICENCE = {"normalised", "verified"}


def _ingesters(session: Session, image_ids: list[int]) -> dict[int, set[int]]:
    """Every actor who ingested a source of each image (not only the first)."""
    s, r = Source.__table__, IngestRun.__table__
    rows = session.execute(
        sa.select(s.c.image_id, r.c.actor_id)
        .select_from(s.join(r, r.c.id == s.c.ingest_run_id))
        .where(s.c.image_id.in_(image_ids))
        .distinct()
    ).all()
    found: dict[int, set[int]] = {}
    for image_id, actor_id in rows:
        found.setdefault(image_id, set()).add(actor_id)
    return found


def decide(
    session: Session, actor_name: str | None, decision: str, refs: list[str], reason: str | None
) -> list[dict]:
    """Apply one decision to every named image, or refuse them all with the first problem."""
    if decision not in TARGET:
        raise BadInput(f"unknown decision {decision!r}")
    actor = actors.require(session, actor_name, "review")
    ids = sorted(image.id for image in resolve_many(session, refs))
    locked = session.scalars(
        sa.select(Image)
        .where(Image.id.in_(ids))
        .order_by(Image.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).all()
    licences = {
        lic.image_id: lic for lic in session.scalars(sa.select(Licence).where(Licence.image_id.in_(ids)))
    }
    ingesters = _ingesters(session, ids) if decision == "approve" else {}
    target = TARGET[decision]
    problems, to_change, results = [], [], []
    for image in locked:
        if image.state == target:
            results.append({"id": image.id, "sha256": image.sha256, "state": target, "changed": False})
            continue
        if image.state not in FROM[decision]:
            hint = " (use revoke)" if decision == "reject" and image.state == "approved" else ""
            problems.append(f"image {image.id} is {image.state}: it cannot be {target}{hint}")
            continue
        needs_reason = decision != "approve" or image.state != "pending"
        if needs_reason and not (reason and reason.strip()):
            problems.append(f"image {image.id}: --reason is required to {decision} a {image.state} image")
            continue
        if decision == "approve":
            if actor.id == image.ingested_by or actor.id in ingesters.get(image.id, set()):
                problems.append(
                    f"image {image.id}: {actor.name} ingested it and cannot approve it (four-eyes)"
                )
                continue
            lic = licences.get(image.id)
            if lic is None or lic.status not in SETTLED_LICENCE:
                status = lic.status if lic else "missing"
                problems.append(
                    f"image {image.id}: licence is {status}; settle it first with `stylevault licence set`"
                )
                continue
        to_change.append(image)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise Refused(problems[0] + more)
    now = datetime.now(UTC)
    changes = []
    for image in to_change:
        before = {"state": image.state, "reason": image.state_reason}
        image.state, image.state_reason, image.state_by, image.state_at = target, reason, actor.id, now
        session.add(image)
        changes.append(
            audit.Change(f"review.{decision}", "image", image.id, before, {"state": target, "reason": reason})
        )
        results.append({"id": image.id, "sha256": image.sha256, "state": target, "changed": True})
    session.flush()
    audit.record(session, actor.name, changes)
    if decision == "revoke" and to_change:
        from governance import index

        ids = ", ".join(str(image.id) for image in to_change)
        index.restale(
            session, actor.name, [image.id for image in to_change], f"revoked image {ids} ({reason})"
        )
        from governance import outputs

        outputs.reopen_for_revoked(
            session, actor, [image.id for image in to_change], f"source image {ids} revoked ({reason})"
        )
    return sorted(results, key=lambda r: r["id"])
