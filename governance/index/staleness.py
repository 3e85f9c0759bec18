"""Going stale (DESIGN.md rule 7): re-judging the members an image change touches in every fresh index
that holds them, under the policy text each index was built under, and marking the index stale,
recorded and audited."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import Image, Licence, utcnow
from stylevault.governance.catalogue.output_models import IndexBuild, IndexMember
from stylevault.governance.rules import policy_texts
from stylevault.governance.rules.vocabulary import REASON_TEXT


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


def holding(session: Session, image_ids: list[int] | sa.Select) -> list[str]:
    """The fresh indexes that hold any of `image_ids` (what a change to them would re-judge)."""
    member = IndexMember.__table__
    held = sa.select(member.c.build_id).where(member.c.image_id.in_(image_ids))
    query = sa.select(IndexBuild.index_id).where(~IndexBuild.stale, IndexBuild.id.in_(held))
    return list(session.scalars(query.order_by(IndexBuild.id)))


def restale(
    session: Session, actor: str | None, image_ids: list[int], why: str, on: date | None = None
) -> list[str]:
    """Re-judge `image_ids` in every fresh index that holds them, under that index's policy; mark
    stale each index in which one of them is no longer cleared. Returns the index ids marked."""
    if not image_ids:
        return []
    on = on or date.today()
    member = IndexMember.__table__
    builds = session.scalars(
        sa.select(IndexBuild)
        .where(~IndexBuild.stale)
        .where(IndexBuild.id.in_(sa.select(member.c.build_id).where(member.c.image_id.in_(image_ids))))
    ).all()
    marked = []
    for record in builds:
        held = list(
            session.execute(
                sa.select(member.c.image_id).where(
                    member.c.build_id == record.id, member.c.image_id.in_(image_ids)
                )
            ).scalars()
        )
        reason = _no_longer_cleared(session, record, held, on)
        if reason:
            marked += mark_stale(session, actor, [record], f"{why}: {reason}")
    return marked


def _no_longer_cleared(session: Session, record: IndexBuild, image_ids: list[int], on: date) -> str | None:
    policy = policy_texts.built_under(session, record)
    if isinstance(policy, str):
        return policy
    image, lic = Image.__table__, Licence.__table__
    rows = session.execute(
        sa.select(
            image.c.id,
            image.c.state,
            lic.c.status,
            lic.c.spdx,
            lic.c.opt_out,
            lic.c.data_mining,
            lic.c.expires_on,
        )
        .select_from(image.join(lic, lic.c.image_id == image.c.id))
        .where(image.c.id.in_(image_ids))
        .order_by(image.c.id)
    ).all()
    for row in rows:
        decision = policy.decide(
            state=row.state,
            licence_status=row.status,
            spdx=row.spdx,
            opt_out=row.opt_out,
            data_mining=row.data_mining,
            expires_on=row.expires_on,
            today=on,
        )
        if not decision.cleared:
            why = decision.detail or REASON_TEXT[decision.reason]
            return f"image {row.id} is no longer cleared under {record.policy} ({why})"
    return None
