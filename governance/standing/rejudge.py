"""What a change in an image's standing does to indexes and outputs (DESIGN.md rule 7): one path.

A revocation (legal/review), a licence legal records (legal/licence_decisions), an alias change
that re-derives automatic licences (legal/alias_edits) and a licence re-derived by an ingest, an
opt-out among them (ingest/batches), all call `rejudge` with the images whose standing changed, in
the transaction that changed them. Every index that holds one of them judges the changed members
again with the set-based clearance SQL (`clearance.not_cleared`: a fixed handful of SELECTs per
index, however many members), under the exact policy text it was built under
(`policy_texts.built_under`):

- a fresh index in which one of them is no longer cleared on the day is marked stale (`index.stale`,
  audited);
- a released output that retrieved one of them from an index under whose policy it is no longer
  cleared goes back to pending (`output.reopen`, audited). That holds for a licence changed to one
  the policy excludes and for an opt-out as for a revocation: each is a finding that the image is
  not to be used under that policy, so the output lost the ground it was released on and a person
  signs it off again.
- An expiry reopens nothing. It is found on the day by `index verify` (the index room), which marks
  the index stale; the released outputs were made while the licence was in force (generation opens
  only an index verified on the day), and a licence's end stops new uses, not what was made during
  its term. So outputs are judged without the day (`on=None`): a licence change on an image whose
  licence has also run out reopens only if the change itself un-clears it.

An index whose policy can no longer be judged (its text was not recorded at build and the file is
gone or changed) counts as not clearing the changed images: it is marked stale and its outputs
reopened, the cautious reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import actors
from stylevault.governance.catalogue.output_models import (
    GenerationOutput,
    GenerationRun,
    IndexBuild,
    IndexMember,
    OutputNeighbour,
    OutputReview,
)
from stylevault.governance.curation import clearance
from stylevault.governance.errors import Refused
from stylevault.governance.index import staleness
from stylevault.governance.outputs import signoff
from stylevault.governance.rules import policy_texts
from stylevault.governance.rules.policy import Policy


@dataclass
class Rejudged:
    """The indexes a change marked stale and the released outputs it sent back to pending."""

    stale_indexes: list[str] = field(default_factory=list)
    reopened_outputs: list[int] = field(default_factory=list)


def rejudge(
    session: Session,
    actor_name: str,
    image_ids: list[int],
    why: str,
    *,
    reopen_why: str | None = None,
    on: date | None = None,
) -> Rejudged:
    """Judge `image_ids` again in every index that holds them: mark stale each fresh index in which
    one is no longer cleared on `on` (today), and reopen each released output that retrieved one no
    longer cleared under its index's policy. `why` begins every reason; `reopen_why`, when given,
    is the reopened outputs' whole reason."""
    result = Rejudged()
    if not image_ids:
        return result
    on = on or date.today()
    reasons: dict[int, str] = {}
    for record in _concerned(session, image_ids):
        policy = policy_texts.built_under(session, record)
        changed = staleness.members_of(record, image_ids)
        if not record.stale:
            if isinstance(policy, str):
                reason = policy
            else:
                reason = staleness.no_longer_cleared(session, record, policy, changed, on)
            if reason:
                result.stale_indexes += staleness.mark_stale(
                    session, actor_name, [record], f"{why}: {reason}"
                )
        for output_id, reason in _outputs_to_reopen(session, record, policy, image_ids).items():
            reasons.setdefault(output_id, reopen_why or f"{why}: {reason}")
    if reasons:
        actor = actors.find(session, actor_name)
        if actor is None:
            raise Refused(f"unknown actor {actor_name!r}: cannot reopen outputs in its name")
        result.reopened_outputs = signoff.reopen(session, actor, reasons)
    return result


def _released_pairs(image_ids: list[int]) -> sa.Select:
    """(index build, output, image) for each released output that retrieved one of `image_ids`."""
    n, o, run, r = (
        OutputNeighbour.__table__,
        GenerationOutput.__table__,
        GenerationRun.__table__,
        OutputReview.__table__,
    )
    return (
        sa.select(run.c.index_build_id, n.c.output_id, n.c.image_id)
        .select_from(
            n.join(o, o.c.id == n.c.output_id)
            .join(run, run.c.id == o.c.run_id)
            .join(r, r.c.output_id == n.c.output_id)
        )
        .where(r.c.state == "released", n.c.image_id.in_(image_ids))
    )


def _concerned(session: Session, image_ids: list[int]) -> list[IndexBuild]:
    """The indexes a change to `image_ids` may reach, in one query: the fresh ones that hold one of
    them, and any (stale or not) with a released output that retrieved one of them."""
    member = IndexMember.__table__
    holding = sa.select(member.c.build_id).where(member.c.image_id.in_(image_ids))
    released = _released_pairs(image_ids).subquery()
    query = sa.select(IndexBuild).where(
        sa.or_(
            sa.and_(~IndexBuild.stale, IndexBuild.id.in_(holding)),
            IndexBuild.id.in_(sa.select(released.c.index_build_id)),
        )
    )
    return list(session.scalars(query.order_by(IndexBuild.id)))


def _outputs_to_reopen(
    session: Session, record: IndexBuild, policy: Policy | str, image_ids: list[int]
) -> dict[int, str]:
    """Each released output of `record` that retrieved one of `image_ids` no longer cleared under
    its policy (judged without the day: an expiry reopens nothing), with why (its first such image)."""
    pairs = _released_pairs(image_ids).where(GenerationRun.__table__.c.index_build_id == record.id).subquery()
    rows = session.execute(
        sa.select(pairs.c.output_id, pairs.c.image_id).order_by(pairs.c.output_id, pairs.c.image_id)
    ).all()
    if not rows:
        return {}
    if isinstance(policy, str):
        excluded = {image_id: policy for _, image_id in rows}
    else:
        retrieved = sa.select(pairs.c.image_id)
        excluded = {
            item.image_id: f"image {item.image_id} is no longer cleared under {record.policy} ({item.detail})"
            for item in clearance.not_cleared(
                session, policy, record.styleset_version_id, among=retrieved, on=None
            )
        }
    reasons: dict[int, str] = {}
    for output_id, image_id in rows:
        if image_id in excluded:
            reasons.setdefault(output_id, excluded[image_id])
    return reasons
