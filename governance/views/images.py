"""Finding images: resolving IMAGE arguments, listing with filters, and one image in full."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import (
    APPROVAL_STATES,
    LICENCE_STATUSES,
    Actor,
    Image,
    IngestRun,
    Licence,
    Rejection,
    Source,
)
from stylevault.governance.errors import BadInput
from stylevault.governance.rules import licences
from stylevault.governance.views.shapes import ImageRow, ImageView, LicenceView, SourceView

HEX = re.compile(r"^[0-9a-f]+$")
MIN_PREFIX = 12
STREAM_CHUNK = 5000


def resolve(session: Session, ref: str) -> Image:
    """An image by id, sha256, or a unique sha256 prefix of at least 12 hex digits."""
    text = str(ref).strip().lower()
    if text.isdigit() and len(text) < MIN_PREFIX:
        image = session.get(Image, int(text))
        if image is None:
            raise BadInput(f"IMAGE {ref}: no image with that id")
        return image
    if not HEX.match(text) or len(text) < MIN_PREFIX or len(text) > 64:
        raise BadInput(
            f"IMAGE {ref!r}: give an image id, a sha256, or at least {MIN_PREFIX} hex digits of one"
        )
    found = session.scalars(sa.select(Image).where(Image.sha256.startswith(text)).limit(2)).all()
    if not found:
        raise BadInput(f"IMAGE {ref}: no image with that sha256")
    if len(found) > 1:
        raise BadInput(f"IMAGE {ref}: prefix matches more than one image; give more digits")
    return found[0]


def audit_events(
    session: Session,
    *,
    target: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Audit events, newest first (audit.log), about `target`: TYPE:ID (e.g. actor:alice), or an
    image by id, sha256 or sha256 prefix."""
    target_type = target_id = None
    if target and ":" in target:
        target_type, target_id = target.split(":", 1)
    elif target:
        target_type, target_id = "image", str(resolve(session, target).id)
    return audit.log(
        session, target_type=target_type, target_id=target_id, action=action, actor=actor, limit=limit
    )


def resolve_many(session: Session, refs: list[str]) -> list[Image]:
    if not refs:
        raise BadInput("IMAGE: give at least one image")
    images: dict[int, Image] = {}
    for ref in refs:
        image = resolve(session, ref)
        images.setdefault(image.id, image)
    return list(images.values())


def listing_query(
    *,
    state: str | None = None,
    spdx: str | None = None,
    licence_status: str | None = None,
    flagged: bool = False,
    collection: str | None = None,
    expiring_within: int | None = None,
    opt_out: bool | None = None,
    run: int | None = None,
    raw: str | None = None,
    today: date | None = None,
) -> sa.Select:
    """One SELECT over image ⋈ licence; every filter is a WHERE clause, never a Python loop."""
    if state is not None and state not in APPROVAL_STATES:
        raise BadInput(f"--state: unknown state {state!r} (states: {', '.join(APPROVAL_STATES)})")
    if licence_status is not None and licence_status not in LICENCE_STATUSES:
        raise BadInput(f"--licence-status: unknown status {licence_status!r} ({', '.join(LICENCE_STATUSES)})")
    if expiring_within is not None and expiring_within < 0:
        raise BadInput(f"--expiring-within: days must be 0 or more, got {expiring_within}")
    i, lic = Image.__table__, Licence.__table__
    query = (
        sa.select(
            i.c.id,
            i.c.sha256,
            i.c.format,
            i.c.width,
            i.c.height,
            i.c.state,
            i.c.first_seen_at,
            lic.c.spdx,
            lic.c.raw.label("licence_raw"),
            lic.c.status.label("licence_status"),
            lic.c.expires_on,
            lic.c.opt_out,
        )
        .select_from(i.join(lic, lic.c.image_id == i.c.id))
        .order_by(i.c.id)
    )
    if state:
        query = query.where(i.c.state == state)
    if spdx:
        query = query.where(lic.c.spdx == _spdx_filter(spdx))
    if licence_status:
        query = query.where(lic.c.status == licence_status)
    if flagged:
        query = query.where(lic.c.status.in_(("missing", "unrecognised", "conflict")))
    if collection:
        s = Source.__table__
        query = query.where(sa.exists().where(s.c.image_id == i.c.id, s.c.collection == collection))
    if expiring_within is not None:
        horizon = (today or date.today()) + timedelta(days=expiring_within)
        query = query.where(lic.c.expires_on.is_not(None), lic.c.expires_on <= horizon)
    if opt_out is not None:
        query = query.where(lic.c.opt_out.is_(opt_out))
    if run is not None:
        query = query.where(i.c.ingest_run_id == run)
    if raw is not None:
        query = query.where(lic.c.raw == raw)
    return query


def matching_ids(**filters) -> sa.Select:
    """The ids of every image `listing_query` matches, for a decision applied to all of them. An
    empty filter would be the whole catalogue: a decision that wide has to say so with a filter."""
    chosen = [value for key, value in filters.items() if key != "today"]
    if not any(value is not None and value is not False for value in chosen):
        raise BadInput("give IMAGE, or a filter (--raw, --collection, --state, ...) choosing the images")
    return listing_query(**filters).with_only_columns(Image.__table__.c.id).order_by(None)


def _spdx_filter(value: str) -> str:
    """An SPDX expression as the catalogue stores it, whatever its case; anything else is refused
    with what it reads as, since matching it against stored expressions would find nothing."""
    canonical = licences.target_expression(value)
    if canonical:
        return canonical
    read = licences.normalise(value)
    hint = f"it reads as {read.spdx}: give that" if read.spdx else read.note or "it is empty"
    raise BadInput(f"--licence: {value!r} is not an SPDX expression ({hint})")


def iter_images(session: Session, *, limit: int | None = None, **filters) -> Iterator[ImageRow]:
    """The matching images as a stream, fetched in chunks: a million rows never sit in memory. Each
    carries its first source's path, collection and title, one query per chunk."""
    if limit is not None and limit < 1:
        raise BadInput(f"--limit: must be 1 or more, got {limit}")
    query = listing_query(**filters)
    if limit:
        query = query.limit(limit)
    result = session.execute(query.execution_options(yield_per=STREAM_CHUNK))
    for chunk in result.partitions():
        first = first_sources(session, [row.id for row in chunk])
        for row in chunk:
            source = first.get(row.id, {})
            yield ImageRow(
                **row._mapping,
                path=source.get("path"),
                collection=source.get("collection"),
                title=source.get("title"),
                sources=source.get("count", 0),
            )


def first_sources(session: Session, image_ids: list[int]) -> dict[int, dict]:
    """The first source of each image (collection, url, creator, title, path), and how many it has."""
    if not image_ids:
        return {}
    s = Source.__table__
    found: dict[int, dict] = {}
    rows = session.execute(
        sa.select(s.c.image_id, s.c.collection, s.c.url, s.c.creator, s.c.title, s.c.path)
        .where(s.c.image_id.in_(image_ids))
        .order_by(s.c.image_id, s.c.id)
    )
    for row in rows:
        entry = found.setdefault(row.image_id, {**dict(row._mapping), "count": 0})
        entry["count"] += 1
    return found


def list_images(session: Session, *, limit: int | None = None, **filters) -> list[dict]:
    """The matching images as `images list --json` prints them."""
    return [row.as_dict() for row in iter_images(session, limit=limit, **filters)]


def show(session: Session, image: Image) -> ImageView:
    """Everything the catalogue knows about one image, with its audit history.

    `via` says which alias or rule produced each SPDX expression: for the licence and for what each
    source states (a verified licence was reached by legal, not by a rule)."""
    lic = session.get(Licence, image.id)
    table = licences.alias_table(session)
    names = dict(session.execute(sa.select(Actor.id, Actor.name)).all())
    sources = session.scalars(sa.select(Source).where(Source.image_id == image.id).order_by(Source.id)).all()
    run = session.get(IngestRun, image.ingest_run_id)
    same_phash = session.execute(
        sa.select(Image.id, Image.sha256, Image.state)
        .where(Image.phash == image.phash, Image.id != image.id)
        .order_by(Image.id)
        .limit(20)
    ).all()
    return ImageView(
        id=image.id,
        sha256=image.sha256,
        phash=image.phash,
        format=image.format,
        mode=image.mode,
        width=image.width,
        height=image.height,
        size_bytes=image.size_bytes,
        first_seen_at=image.first_seen_at,
        ingested_by=names.get(image.ingested_by),
        ingest_run=run.id if run else None,
        state=image.state,
        state_reason=image.state_reason,
        state_by=names.get(image.state_by),
        state_at=image.state_at,
        licence=None if lic is None else _licence(lic, names, table),
        sources=[_source(s, table) for s in sources],
        same_phash=[dict(row._mapping) for row in same_phash],
        history=audit.log(session, target_type="image", target_id=str(image.id)),
    )


def _licence(lic: Licence, names: dict, table) -> LicenceView:
    return LicenceView(
        raw=lic.raw,
        spdx=lic.spdx,
        status=lic.status,
        note=lic.note,
        attribution=lic.attribution,
        evidence=lic.evidence,
        verified_by=names.get(lic.verified_by),
        verified_at=lic.verified_at,
        expires_on=lic.expires_on,
        opt_out=lic.opt_out,
        data_mining=lic.data_mining,
        via=_licence_via(lic, names, table),
    )


def _source(s: Source, table) -> SourceView:
    """One source, with what its licence statement reads as, and by which alias or rule."""
    read = licences.normalise(s.licence_raw, table)
    return SourceView(
        locator=s.locator,
        path=s.path,
        url=s.url,
        collection=s.collection,
        creator=s.creator,
        title=s.title,
        licence_raw=s.licence_raw,
        licence_spdx=read.spdx,
        licence_status=read.status,
        licence_via=list(read.via),
        attribution=s.attribution,
        evidence=s.evidence,
        licence_expires=s.licence_expires,
        opt_out=s.opt_out,
        retrieved_at=s.retrieved_at,
        metadata=s.raw_metadata,
    )


def _licence_via(lic: Licence, names: dict, table) -> list[str]:
    if lic.status == "verified":
        return [f"verified by legal ({names.get(lic.verified_by)})"]
    if lic.status == "normalised":
        return list(licences.normalise(lic.raw, table).via)
    return []


def rejections(
    session: Session, *, run: int | None = None, reason: str | None = None, limit: int | None = None
) -> list[dict]:
    """Files that ingest refused, newest run first, with the reason and detail."""
    r = Rejection.__table__
    query = sa.select(
        r.c.id, r.c.ingest_run_id.label("run"), r.c.path, r.c.reason, r.c.detail, r.c.sha256, r.c.at
    ).order_by(r.c.ingest_run_id.desc(), r.c.id)
    if run is not None:
        query = query.where(r.c.ingest_run_id == run)
    if reason is not None:
        query = query.where(r.c.reason == reason)
    if limit:
        query = query.limit(limit)
    return [dict(row._mapping) for row in session.execute(query)]


def runs(session: Session, *, limit: int | None = None) -> list[dict]:
    """Ingest runs, newest first, with their reconciled counts and who ran them."""
    r, a = IngestRun.__table__, Actor.__table__
    query = (
        sa.select(
            r.c.id,
            a.c.name.label("actor"),
            r.c.root,
            r.c.manifest,
            r.c.source,
            r.c.status,
            r.c.started_at,
            r.c.finished_at,
            r.c.offered,
            r.c.catalogued,
            r.c.duplicates,
            r.c.rejected,
        )
        .select_from(r.join(a, a.c.id == r.c.actor_id))
        .order_by(r.c.id.desc())
    )
    if limit:
        query = query.limit(limit)
    return [dict(row._mapping) for row in session.execute(query)]
