"""Applying a policy to a style-set version: the cleared members and, for each excluded one, why.

Set-based (STYLE.md): a million members carry only a handful of distinct licence expressions and
data-mining values, so each distinct one is judged once in Python (`Policy.judge`) and the results
become literals in one SQL CASE that mirrors `Policy.excluded_by_state` in the same order. The
database classifies every member; Python only streams the rows out.

`not_cleared` is the one question every later judgement asks (an index build's recheck at commit,
`index verify` on the day, and governance/standing when an image's standing changes): which of these
members does this policy not clear, and why.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue.models import Image, Licence, StyleSetVersionMember
from stylevault.governance.curation.stylesets import resolve_version
from stylevault.governance.rules.policy import Judgement, Policy, data_mining_reserved
from stylevault.governance.rules.vocabulary import REASON_TEXT, REASONS

STREAM_CHUNK = 5000


@dataclass
class Check:
    """The outcome of one policy check, with what identifies it: policy hash and version fingerprint."""

    policy: str
    policy_sha256: str
    styleset: str
    version: int
    members_sha256: str
    on: date
    members: int = 0
    cleared: int = 0
    excluded: dict[str, int] = field(default_factory=dict)  # reason code -> members, in REASONS order
    expiring_soon: int = 0  # cleared today, but the licence expires within the policy's warning window

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NotCleared:
    """A member a policy does not clear: the reason code (vocabulary.REASONS) and the words for it."""

    image_id: int
    reason: str
    detail: str


@dataclass
class _Plan:
    query: sa.Select
    judgements: dict[str | None, Judgement]

    def detail(self, spdx: str | None, reason: str) -> str:
        judgement = self.judgements.get(spdx)
        licence_detail = judgement.reason if judgement and reason == "licence-excluded" else None
        return licence_detail or REASON_TEXT[reason]


def _plan(session: Session, policy: Policy, version_id: int, on: date | None, among=None) -> _Plan:
    """The members of `version_id` (of `among` only, ids or a SELECT of ids, when given), each with
    the reason `policy` excludes it or NULL; `on=None` leaves the day, and so expiry, out."""
    vm, image, lic = StyleSetVersionMember.__table__, Image.__table__, Licence.__table__
    joined = vm.join(image, image.c.id == vm.c.image_id).join(lic, lic.c.image_id == vm.c.image_id)
    in_version = vm.c.version_id == version_id
    if among is not None:
        in_version = sa.and_(in_version, vm.c.image_id.in_(among))

    expressions = session.execute(sa.select(lic.c.spdx).select_from(joined).where(in_version).distinct())
    judgements = {spdx: policy.judge(spdx) for spdx in expressions.scalars()}
    refused = [spdx for spdx, judgement in judgements.items() if spdx is not None and not judgement.allowed]
    mining = session.execute(
        sa.select(lic.c.data_mining)
        .select_from(joined)
        .where(in_version, lic.c.data_mining.is_not(None))
        .distinct()
    )
    reserved = [value for value in mining.scalars() if data_mining_reserved(value)]

    # The same order as Policy.excluded_by_state, then the licence expression.
    whens = [
        (image.c.state != policy.required_state, "not-approved"),
        (lic.c.status.in_(("missing", "unrecognised")), "licence-unknown"),
        (lic.c.status == "conflict", "licence-conflict"),
        (lic.c.status.not_in(policy.settled_statuses), "licence-unverified"),
    ]
    if policy.opt_out == "exclude":
        whens.append((lic.c.opt_out.is_(True), "opted-out"))
    if policy.data_mining_reservation == "exclude" and reserved:
        whens.append((lic.c.data_mining.in_(reserved), "data-mining-reserved"))
    if on is not None:
        whens.append((sa.and_(lic.c.expires_on.is_not(None), lic.c.expires_on < on), "expired"))
    if refused:
        whens.append((lic.c.spdx.in_(refused), "licence-excluded"))
    reason = sa.case(*whens, else_=sa.null()).label("reason")
    query = (
        sa.select(
            vm.c.image_id,
            vm.c.sha256,
            image.c.state,
            lic.c.spdx,
            lic.c.status.label("licence_status"),
            lic.c.attribution,
            lic.c.expires_on,
            reason,
        )
        .select_from(joined)
        .where(in_version)
    )
    return _Plan(query, judgements)


def check(session: Session, policy: Policy, ref: str, *, on: date | None = None) -> Check:
    """Counts of cleared and excluded members (by reason) of `NAME[@N]` under `policy`: one GROUP BY."""
    on = on or date.today()
    styleset, version = resolve_version(session, ref)
    plan = _plan(session, policy, version.id, on)
    members = plan.query.subquery()
    warn = policy.expiry.warn_within_days
    soon = (
        sa.and_(members.c.expires_on.is_not(None), members.c.expires_on <= on + timedelta(days=warn))
        if warn is not None
        else sa.false()
    )
    rows = session.execute(
        sa.select(members.c.reason, sa.func.count(), sa.func.sum(sa.case((soon, 1), else_=0))).group_by(
            members.c.reason
        )
    ).all()
    result = Check(
        policy=policy.name,
        policy_sha256=policy.hash,
        styleset=styleset.name,
        version=version.version,
        members_sha256=version.members_sha256,
        on=on,
    )
    counts = {reason: (count, expiring or 0) for reason, count, expiring in rows}
    result.members = sum(count for count, _ in counts.values())
    result.cleared, result.expiring_soon = counts.get(None, (0, 0))
    result.excluded = {reason: counts[reason][0] for reason in REASONS if reason in counts}
    return result


def members(
    session: Session, policy: Policy, ref: str, *, cleared: bool, on: date | None = None
) -> Iterator[dict]:
    """The cleared members (with the obligations they carry) or the excluded ones (with the reason
    and its detail), streamed in image-id order."""
    on = on or date.today()
    _, version = resolve_version(session, ref)
    plan = _plan(session, policy, version.id, on)
    members = plan.query.subquery()
    wanted = members.c.reason.is_(None) if cleared else members.c.reason.is_not(None)
    query = sa.select(members).where(wanted).order_by(members.c.image_id)
    for row in session.execute(query.execution_options(yield_per=STREAM_CHUNK)):
        item = dict(row._mapping)
        if cleared:
            judgement = plan.judgements[item["spdx"]]
            item["obligations"] = list(judgement.obligations)
            item["relied_on"] = judgement.chosen
            del item["reason"]
        else:
            item["detail"] = plan.detail(item["spdx"], item["reason"])
        yield item


def not_cleared(
    session: Session, policy: Policy, version_id: int, *, among, on: date | None, limit: int | None = None
) -> list[NotCleared]:
    """The members of style-set version `version_id` among `among` (image ids, or a SELECT of them)
    that `policy` does not clear on `on`, in image-id order, with why: one SELECT whatever their
    number. With `on=None` the day is not asked: what is known of each image decides (its state,
    licence, opt-out, reservation), and an expiry does not."""
    plan = _plan(session, policy, version_id, on, among)
    members = plan.query.subquery()
    query = (
        sa.select(members.c.image_id, members.c.spdx, members.c.reason)
        .where(members.c.reason.is_not(None))
        .order_by(members.c.image_id)
        .limit(limit)
    )
    return [
        NotCleared(row.image_id, row.reason, plan.detail(row.spdx, row.reason))
        for row in session.execute(query)
    ]
