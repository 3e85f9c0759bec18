"""Read-only, set-based queries the pages need beyond what the CLI shows: one page of a filtered queue
with its sources and decided near-duplicates, a style set's working members, generation runs."""

from __future__ import annotations

from urllib.parse import urlencode

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue.models import Actor, Image, Licence, StyleSet, StyleSetMember
from stylevault.governance.catalogue.output_models import (
    GenerationOutput,
    GenerationRun,
    IndexBuild,
)
from stylevault.governance.errors import BadInput
from stylevault.governance.outputs import listing as output_listing
from stylevault.governance.outputs import runs as output_runs
from stylevault.governance.views import images
from stylevault.governance.views.shapes import RunRecord
from stylevault.governance.web.desk import NotFound, whole_number

QUEUE_FILTERS = ("state", "collection", "licence", "raw", "licence_status", "flagged", "expiring")
DECIDED = ("approved", "rejected", "revoked")
COUNT_CAP = 10_000


class QueueFilter:
    """The queue's filters as given in a query string, checked, and turned back into one."""

    def __init__(self, params) -> None:
        get = params.get
        self.state = (get("state") if get("state") is not None else "pending").strip() or None
        self.collection = (get("collection") or "").strip() or None
        self.licence = (get("licence") or "").strip() or None
        self.raw = (get("raw") or "").strip() or None
        self.licence_status = (get("licence_status") or "").strip() or None
        self.flagged = (get("flagged") or "") in ("1", "on", "true")
        self.expiring = whole_number(get("expiring"), "expiring (days)")
        # Checked now, so a bad value is one message on the page that took it.
        images.listing_query(**self.listing_args())

    def listing_args(self) -> dict:
        return dict(
            state=self.state,
            spdx=self.licence,
            raw=self.raw,
            licence_status=self.licence_status,
            flagged=self.flagged,
            collection=self.collection,
            expiring_within=self.expiring,
        )

    def query_string(self) -> str:
        values = {
            "state": self.state or "",
            "collection": self.collection,
            "licence": self.licence,
            "raw": self.raw,
            "licence_status": self.licence_status,
            "flagged": "1" if self.flagged else None,
            "expiring": self.expiring,
        }
        return urlencode({k: v for k, v in values.items() if v is not None})


def queue_page(session: Session, filters: QueueFilter, *, after: int | None, before: int | None, size: int):
    """One page of the queue in id order (keyset, so page 40 costs what page 1 does), and how many
    images the whole queue holds, counted up to COUNT_CAP (a count of half a million rows would cost
    a hundred times the page)."""
    whole = images.listing_query(**filters.listing_args())
    query = whole
    i = Image.__table__
    if before is not None:
        query = _beyond(query, before, forward=False)
    elif after is not None:
        query = _beyond(query, after, forward=True)
    rows = [dict(row._mapping) for row in session.execute(query.limit(size + 1))]
    more = len(rows) > size
    rows = rows[:size]
    if before is not None:
        rows.reverse()
    capped = whole.order_by(None).with_only_columns(i.c.id).limit(COUNT_CAP + 1).subquery()
    total = session.execute(sa.select(sa.func.count()).select_from(capped)).scalar()
    ids = [row["id"] for row in rows]
    first_sources = images.first_sources(session, ids)
    decided = decided_near_duplicates(session, ids)
    for row in rows:
        row["source"] = first_sources.get(row["id"], {})
        row["near_duplicates"] = decided.get(row["id"], [])
    has_previous = (more if before is not None else after is not None) and bool(rows)
    has_next = (more if before is None else True) and bool(rows)
    return {
        "rows": rows,
        "total": min(total, COUNT_CAP),
        "more_than": total > COUNT_CAP,
        "has_previous": has_previous,
        "has_next": has_next,
    }


def _beyond(query: sa.Select, image_id: int, *, forward: bool) -> sa.Select:
    """The listing after (or before, newest first) `image_id`. The bound is put on both sides of the
    image-licence join: PostgreSQL does not carry it across, and would merge-join the licence table
    from its first row (230 ms half-way through a million images, against 1 ms)."""
    i, lic = Image.__table__, Licence.__table__
    if forward:
        return query.where(i.c.id > image_id, lic.c.image_id > image_id)
    return query.where(i.c.id < image_id, lic.c.image_id < image_id).order_by(None).order_by(i.c.id.desc())


def neighbour_in_queue(session: Session, filters: QueueFilter, image_id: int, *, forward: bool) -> int | None:
    """The next (or previous) image of the filtered queue after `image_id`."""
    query = _beyond(images.listing_query(**filters.listing_args()), image_id, forward=forward)
    row = session.execute(query.limit(1)).first()
    return row.id if row else None


def decided_near_duplicates(session: Session, image_ids: list[int]) -> dict[int, list[dict]]:
    """Other images with the same perceptual hash that legal has already decided: one join."""
    if not image_ids:
        return {}
    mine, other = Image.__table__.alias("mine"), Image.__table__.alias("other")
    rows = session.execute(
        sa.select(mine.c.id.label("image_id"), other.c.id, other.c.state, other.c.state_reason)
        .select_from(mine.join(other, sa.and_(other.c.phash == mine.c.phash, other.c.id != mine.c.id)))
        .where(mine.c.id.in_(image_ids), other.c.state.in_(DECIDED))
        .order_by(mine.c.id, other.c.id)
    )
    found: dict[int, list[dict]] = {}
    for row in rows:
        found.setdefault(row.image_id, []).append(
            {"id": row.id, "state": row.state, "reason": row.state_reason}
        )
    return found


def image_or_404(session: Session, image_id: str) -> Image:
    if not image_id.isdigit() or len(image_id) > 12:
        raise NotFound(f"no image {image_id!r}")
    image = session.get(Image, int(image_id))
    if image is None:
        raise NotFound(f"no image {image_id}")
    return image


def styleset_or_404(session: Session, name: str) -> StyleSet:
    found = session.execute(sa.select(StyleSet).where(StyleSet.name == name)).scalar()
    if found is None:
        raise NotFound(f"no style set {name!r}")
    return found


def working_members(session: Session, styleset: StyleSet, *, after: int | None, size: int) -> dict:
    """One page of a style set's working members with their state and licence."""
    m, i, lic = StyleSetMember.__table__, Image.__table__, Licence.__table__
    query = (
        sa.select(i.c.id, i.c.sha256, i.c.state, lic.c.spdx, lic.c.status.label("licence_status"))
        .select_from(m.join(i, i.c.id == m.c.image_id).join(lic, lic.c.image_id == i.c.id))
        .where(m.c.styleset_id == styleset.id)
        .order_by(i.c.id)
    )
    if after is not None:
        query = query.where(i.c.id > after)
    rows = [dict(row._mapping) for row in session.execute(query.limit(size + 1))]
    return {"rows": rows[:size], "has_next": len(rows) > size}


def runs(session: Session, *, before: int | None, size: int) -> dict:
    """Generation runs, newest first."""
    r, a, b = GenerationRun.__table__, Actor.__table__, IndexBuild.__table__
    query = (
        sa.select(
            r.c.id,
            r.c.run_id,
            r.c.created_at,
            a.c.name.label("actor"),
            r.c.prompt,
            r.c.n,
            r.c.k,
            r.c.steps,
            r.c.model_id,
            b.c.index_id,
            b.c.stale,
        )
        .select_from(r.join(a, a.c.id == r.c.actor_id).join(b, b.c.id == r.c.index_build_id))
        .order_by(r.c.id.desc())
    )
    if before is not None:
        query = query.where(r.c.id < before)
    rows = [dict(row._mapping) for row in session.execute(query.limit(size + 1))]
    return {"rows": rows[:size], "has_next": len(rows) > size}


def run_detail(session: Session, run_id: str) -> dict:
    """A run's record, each of its outputs in full, and the attribution notice they owe."""
    if not run_id.isalnum() or len(run_id) > 32:
        raise NotFound(f"no run {run_id!r}")
    run = session.execute(sa.select(GenerationRun).where(GenerationRun.run_id == run_id)).scalar()
    if run is None:
        raise NotFound(f"no run {run_id}")
    o = GenerationOutput
    made = session.scalars(sa.select(o).where(o.run_id == run.id).order_by(o.ordinal)).all()
    shown = output_listing.views(session, list(made))
    build = session.get(IndexBuild, run.index_build_id)
    return {
        "run": RunRecord.of(run.record),
        "outputs": shown,
        "notice": output_runs.notice([output.as_dict() for output in shown]),
        "index_now": {"index_id": build.index_id, "stale": build.stale, "stale_reason": build.stale_reason},
    }


def output_path(session: Session, sha256: str) -> tuple[str, str] | None:
    """Where the catalogue recorded the output with this file hash (never a path from the request)."""
    row = session.execute(
        sa.select(GenerationOutput.path, GenerationOutput.sha256).where(GenerationOutput.sha256 == sha256)
    ).first()
    return (row.path, row.sha256) if row else None


def require_known(value: str | None, allowed, field: str) -> str | None:
    if value is not None and value not in allowed:
        raise BadInput(f"{field}: unknown value {value!r} ({', '.join(allowed)})")
    return value
