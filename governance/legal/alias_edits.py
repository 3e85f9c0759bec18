"""Legal's changes to the site's licence aliases, and re-deriving the licences a change affects.

Adding or removing a site alias re-derives, in the same transaction, the automatic licence of every
image with a source whose statement the change reads differently; legal's verified licences stand.
Each change is an audit event (`licence.alias.add` / `.remove`, then one `licence.derive` per image
whose licence changed), and indexes holding a changed image are re-judged. After an upgrade that
changes the shipped table, `stylevault licence rederive` does the same for every automatic licence.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.models import Actor, Licence, LicenceAlias, Source, utcnow
from stylevault.governance.errors import BadInput
from stylevault.governance.rules import aliases, licences
from stylevault.governance.rules.aliases import AliasTable
from stylevault.governance.standing.rejudge import rejudge

MAX_TEXT = 200


def _locked_table(session: Session) -> AliasTable:
    """The alias table, with the alias lock held exclusively until the transaction ends (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": licences.ALIAS_LOCK})
    return licences.alias_table(session)


def add(session: Session, actor_name: str | None, text: str, spdx: str, why: str) -> dict:
    """Legal adds a site alias: `text` means exactly `spdx`, for the reason `why`."""
    actor = actors.require(session, actor_name, "licence.alias")
    shown = " ".join(text.split())
    if not shown or len(shown) > MAX_TEXT:
        raise BadInput(f"TEXT: an alias is 1-{MAX_TEXT} characters, got {len(shown)}")
    if not why.strip():
        raise BadInput("--why: say why the text means this licence (where legal read it)")
    target = licences.target_expression(spdx)
    if target is None or target.lower() in licences.exception_ids():
        raise BadInput(
            f"--spdx: {spdx!r} is not an SPDX licence expression "
            "(SPDX ids, LicenseRef-<name>, joined by AND / OR / WITH)"
        )
    before = _locked_table(session)
    existing = before.lookup(shown)
    if existing is not None:
        meaning = existing.spdx or f"ambiguous: {existing.ambiguous}"
        raise BadInput(
            f"TEXT: {shown!r} is already a {existing.origin} alias ({meaning}); "
            + ("remove it first" if existing.origin == "site" else "the shipped table changes by code review")
        )
    read = licences.normalise(shown, before)
    if read.spdx is not None:
        raise BadInput(f"TEXT: {shown!r} is already recognised as {read.spdx} ({'; '.join(read.via)})")
    row = LicenceAlias(key=aliases.key(shown), text=shown, spdx=target, why=why.strip(), added_by=actor.id)
    session.add(row)
    session.flush()
    after = before.with_site([aliases.Alias(shown, target, row.why, "site")])
    state = {"text": shown, "spdx": target, "why": row.why}
    audit.record(
        session, actor.name, [audit.Change("licence.alias.add", "licence_alias", row.key, None, state)]
    )
    changed = rederive(
        session, actor.name, _affected(session, before, after), after, f"alias {shown!r} added"
    )
    return {**state, "rederived": changed}


def remove(session: Session, actor_name: str | None, text: str) -> dict:
    """Legal removes a site alias; the licences it produced are derived again without it."""
    actor = actors.require(session, actor_name, "licence.alias")
    before = _locked_table(session)
    row = session.exec(select(LicenceAlias).where(LicenceAlias.key == aliases.key(text))).first()
    if row is None:
        shipped = before.lookup(text)
        where = "the shipped table, which changes by code review" if shipped else "no alias table"
        raise BadInput(f"TEXT: {text!r} is not a site alias (it is in {where})")
    state = {"text": row.text, "spdx": row.spdx, "why": row.why}
    session.delete(row)
    session.flush()
    after = licences.alias_table(session)
    audit.record(
        session, actor.name, [audit.Change("licence.alias.remove", "licence_alias", row.key, state, None)]
    )
    changed = rederive(
        session, actor.name, _affected(session, before, after), after, f"alias {row.text!r} removed"
    )
    return {**state, "rederived": changed}


def listing(session: Session) -> list[dict]:
    """Every alias in force, shipped first, then the site's with who added each and when."""
    site = {
        row.key: (row, name)
        for row, name in session.execute(
            select(LicenceAlias, Actor.name).join(Actor, Actor.id == LicenceAlias.added_by)
        ).all()
    }
    rows = []
    for entry in licences.alias_table(session).entries:
        added = site.get(aliases.key(entry.text))
        rows.append(
            {
                "text": entry.text,
                "spdx": entry.spdx,
                "ambiguous": entry.ambiguous,
                "why": entry.why,
                "origin": entry.origin,
                "added_by": added[1] if added else None,
                "added_at": added[0].added_at if added else None,
            }
        )
    return rows


def rederive_all(session: Session, actor_name: str | None) -> list[int]:
    """Legal re-derives every automatic licence with the aliases in force (after an upgrade)."""
    actor = actors.require(session, actor_name, "licence.alias")
    table = _locked_table(session)
    lic = Licence.__table__
    ids = session.scalars(sa.select(lic.c.image_id).where(lic.c.verified_by.is_(None))).all()
    return rederive(session, actor.name, set(ids), table, "licences re-derived with the current aliases")


def _affected(session: Session, before: AliasTable, after: AliasTable) -> set[int]:
    """Images with an automatic licence and a source statement the two tables read differently.

    One pass over the distinct statements (a catalogue has few), then one SELECT for the images."""
    s, lic = Source.__table__, Licence.__table__
    automatic = s.join(lic, lic.c.image_id == s.c.image_id)
    raws = session.scalars(
        sa.select(s.c.licence_raw)
        .distinct()
        .select_from(automatic)
        .where(lic.c.verified_by.is_(None), s.c.licence_raw.is_not(None))
    ).all()
    changed = [
        raw
        for raw in raws
        if _reading(licences.normalise(raw, before)) != _reading(licences.normalise(raw, after))
    ]
    if not changed:
        return set()
    return set(
        session.scalars(
            sa.select(s.c.image_id)
            .distinct()
            .select_from(automatic)
            .where(lic.c.verified_by.is_(None), s.c.licence_raw.in_(changed))
        ).all()
    )


def _reading(result: licences.Normalised) -> tuple:
    return result.spdx, result.status, result.note


def rederive(
    session: Session, actor_name: str, image_ids: set[int], table: AliasTable, why: str
) -> list[int]:
    """Derive the automatic licences of `image_ids` again with `table`; returns the ids that changed.

    Licence rows are locked in id order, as ingest locks them; a verified licence is left alone."""
    if not image_ids:
        return []
    locked = (
        sa.select(Licence)
        .where(Licence.image_id.in_(image_ids), Licence.verified_by.is_(None))
        .order_by(Licence.image_id)
        .with_for_update()
    )
    current = {lic.image_id: lic for lic in session.scalars(locked)}
    sources: dict[int, list] = {}
    for row in session.execute(
        sa.select(Source.__table__).where(Source.image_id.in_(current)).order_by(Source.id)
    ).all():
        sources.setdefault(row.image_id, []).append(row)
    changes, changed, now = [], [], utcnow()
    for image_id, lic in current.items():
        before = licences.licence_state(lic)
        for name, value in licences.derive(sources.get(image_id, []), lic, table).items():
            setattr(lic, name, value)
        after = licences.licence_state(lic)
        if before != after:
            lic.updated_at = now
            session.add(lic)
            changes.append(audit.Change("licence.derive", "image", image_id, before, {**after, "why": why}))
            changed.append(image_id)
    audit.record(session, actor_name, changes)
    if changed:
        session.flush()
        rejudge(session, actor_name, changed, why)
    return changed
