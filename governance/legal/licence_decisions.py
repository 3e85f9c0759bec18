"""Legal's verified record of a licence: one licence, with its evidence, for one image or many.

Recording a licence re-judges the images in the same transaction (governance/standing): an index
whose policy no longer clears one of them goes stale, and a released output that retrieved one goes
back to pending.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit, store
from stylevault.governance.catalogue.models import Licence
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.index import staleness
from stylevault.governance.rules import licences
from stylevault.governance.standing.rejudge import rejudge


@dataclass
class Recorded:
    """A licence legal recorded for a set of images: each image with its licence before and after,
    the indexes that went stale and the released outputs sent back to pending, and for a dry run the
    fresh indexes the change would re-judge."""

    spdx: str
    images: list[dict]
    stale_indexes: list[str]
    dry_run: bool = False
    indexes_to_rejudge: list[str] | None = None
    reopened_outputs: list[int] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def set_licence(session: Session, catalogue_store: Path, actor_name: str | None, image, **fields) -> dict:
    """Legal records a verified licence for one image, with its evidence (URL or file)."""
    return record_verified(session, catalogue_store, actor_name, [image.id], **fields).images[0]["after"]


def record_verified(
    session: Session,
    catalogue_store: Path,
    actor_name: str | None,
    image_ids: list[int] | sa.Select,
    *,
    licence: str,
    evidence: str | None = None,
    attribution: str | None = None,
    expires: str | None = None,
    note: str | None = None,
    dry_run: bool = False,
    today: date | None = None,
) -> Recorded:
    """Legal records one verified licence for every chosen image (ids, or a SELECT of ids such as
    images.matching_ids): the licence rows are locked in id order, changed by set-based UPDATEs in
    batches, and each image gets its own `licence.set` event. An expiry already past is refused: a
    licence recorded as verified and expired on the same day is a typing slip, not a decision. The
    actor needs the legal role, dry run or not."""
    actor = actors.require(session, actor_name, "licence.set")
    spdx = licences.require_expression(licence, table=licences.alias_table(session))
    expires_on = licences.parse_date(expires, "--expires") if expires else None
    today = today or date.today()
    if expires_on is not None and expires_on < today:
        raise BadInput(
            f"--expires: {expires_on} is in the past (today is {today}); give the day the licence ends"
        )
    evidence_ref = _evidence_reference(catalogue_store, evidence, dry_run) if evidence else None
    lic = Licence.__table__
    query = sa.select(lic).where(lic.c.image_id.in_(image_ids)).order_by(lic.c.image_id)
    rows = session.execute(query if dry_run else query.with_for_update()).all()
    if isinstance(image_ids, list) and len(rows) < len(set(image_ids)):
        missing = sorted(set(image_ids) - {row.image_id for row in rows})
        raise Refused(f"image {missing[0]} has no licence record")
    now = datetime.now(UTC)
    values = {"raw": licence, "spdx": spdx, "status": "verified", "note": note}
    kept = {"evidence": evidence_ref, "attribution": attribution, "expires_on": expires_on}
    values.update({key: value for key, value in kept.items() if value is not None})
    changes = [(row.image_id, licences.licence_state(row)) for row in rows]
    changes = [(image_id, before, {**before, **values}) for image_id, before in changes]
    recorded = Recorded(
        spdx, [{"id": i, "before": before, "after": after} for i, before, after in changes], [], dry_run
    )
    ids = [image_id for image_id, _, _ in changes]
    if dry_run:
        recorded.indexes_to_rejudge = staleness.holding(session, image_ids)
        return recorded
    for start in range(0, len(changes), licences.BATCH):
        batch = changes[start : start + licences.BATCH]
        batch_ids = [image_id for image_id, _, _ in batch]
        session.execute(
            sa.update(Licence)
            .where(Licence.image_id.in_(batch_ids))
            .values(**values, verified_by=actor.id, verified_at=now, updated_at=now)
        )
        audit.record(
            session,
            actor.name,
            [audit.Change("licence.set", "image", i, before, after) for i, before, after in batch],
        )
        what = f"image {batch_ids[0]}" if len(ids) == 1 else f"{len(ids)} images"
        done = rejudge(session, actor.name, batch_ids, f"licence of {what} set to {spdx}")
        recorded.stale_indexes += done.stale_indexes
        recorded.reopened_outputs += done.reopened_outputs
    return recorded


def _evidence_reference(catalogue_store: Path, evidence: str, dry_run: bool = False) -> str:
    """A URL is kept as given; a file is copied into the content store and named by its hash (a dry
    run only reads it)."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", evidence, re.I):
        return evidence
    path = Path(evidence)
    if not path.is_file():
        raise BadInput(f"--evidence: not a URL and not a readable file: {evidence}")
    if dry_run:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    else:
        digest = store.put_evidence(catalogue_store, path)
    return f"store:evidence/{digest}{path.suffix.lower()} ({path.name})"
