"""Going stale (DESIGN.md rule 7): marking an index stale, recorded and audited, and the words for why.

What makes an index stale is decided in two places that ask one question (`clearance.not_cleared`)
under the policy text the index was built under: governance/standing, when an image's standing
changes (revocation, a licence change, an opt-out found at ingest), and `verify`, which re-judges
every member on the day (what time alone changed, an expiry).
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import utcnow
from stylevault.governance.catalogue.output_models import IndexBuild, IndexMember
from stylevault.governance.curation import clearance
from stylevault.governance.rules.policy import Policy


def mark_stale(session: Session, actor: str | None, builds: list[IndexBuild], reason: str) -> list[str]:
    marked = []
    now = utcnow()
    for record in builds:
        if record.stale:
            continue
        record.stale, record.stale_reason, record.stale_at = True, reason, now
        session.add(record)
        marked.append(record.index_id)
    session.flush()
    audit.record(
        session,
        actor,
        [
            audit.Change(
                "index.stale", "index", index_id, {"stale": False}, {"stale": True, "reason": reason}
            )
            for index_id in marked
        ],
    )
    return marked


def members_of(record: IndexBuild, image_ids: list[int] | sa.Select | None = None) -> sa.Select:
    """The image ids `record` holds (of `image_ids` only, when given), as a SELECT to judge."""
    member = IndexMember.__table__
    query = sa.select(member.c.image_id).where(member.c.build_id == record.id)
    return query if image_ids is None else query.where(member.c.image_id.in_(image_ids))


def holding(session: Session, image_ids: list[int] | sa.Select) -> list[str]:
    """The fresh indexes that hold any of `image_ids` (what a change to them would re-judge)."""
    member = IndexMember.__table__
    held = sa.select(member.c.build_id).where(member.c.image_id.in_(image_ids))
    query = sa.select(IndexBuild.index_id).where(~IndexBuild.stale, IndexBuild.id.in_(held))
    return list(session.scalars(query.order_by(IndexBuild.id)))


def no_longer_cleared(
    session: Session, record: IndexBuild, policy: Policy, among: sa.Select, on: date
) -> str | None:
    """Why the first of `among` (members of `record`) is not cleared on `on` under `policy`, the
    policy `record` was built under; None when all of them still are. One SELECT."""
    first = clearance.not_cleared(session, policy, record.styleset_version_id, among=among, on=on, limit=1)
    if not first:
        return None
    return f"image {first[0].image_id} is no longer cleared under {record.policy} ({first[0].detail})"
