"""Writing one batch of examined files into the catalogue, in one transaction, set-based.

New images are inserted with their first source; a file whose bytes are already catalogued adds or
merges a source; every image whose sources changed has its licence derived again (and any index
holding it re-judged); refused files become rejection rows. Each change is an audit event, and the
run's counts move in the same transaction, so a batch is all there or not there at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit, limits, models
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import Image, IngestRun, Licence, Rejection, Source, utcnow
from stylevault.governance.ingest.examine import Examined, Failed
from stylevault.governance.ingest.manifest import parse_bool
from stylevault.governance.ingest.offers import Offer, printable
from stylevault.governance.ingest.summary import Summary
from stylevault.governance.rules import licences
from stylevault.governance.rules.aliases import AliasTable
from stylevault.governance.standing.rejudge import rejudge

SOURCE_FIELDS = (
    "path",
    *models.SOURCE_FIELDS,
)  # what a source row holds, compared when ingest meets it again


@dataclass
class BatchWriter:
    """Writes one batch of examined offers in one transaction, with set-based statements."""

    catalogue: Catalogue
    run_id: int
    actor_name: str | None
    source: str | None
    licence: str | None
    summary: Summary
    # The alias table in force, read at the start of each batch's transaction.
    table: AliasTable | None = field(default=None, init=False)
    actor_id: int | None = field(default=None, init=False)

    def write(self, batch: list[tuple[Offer, Examined | Failed]]) -> None:
        with self.catalogue.write() as session:
            self.actor_id = actors.require(session, self.actor_name, "ingest").id
            self.table = licences.alias_table(session, deriving=True)
            changes: list[audit.Change] = []
            examined = [(offer, result) for offer, result in batch if isinstance(result, Examined)]
            failed = [(offer, result) for offer, result in batch if isinstance(result, Failed)]
            ids, new_ids = self._images(session, examined)
            touched = self._sources(session, examined, ids, new_ids, changes)
            self._licences(session, touched, new_ids, changes)
            self._rejections(session, failed, changes)
            audit.record(session, self.actor_name, changes)
            counts = {
                "offered": len(batch),
                "catalogued": len(new_ids),
                "duplicates": len(examined) - len(new_ids),
                "rejected": len(failed),
            }
            table = IngestRun.__table__
            session.execute(
                sa.update(table)
                .where(table.c.id == self.run_id)
                .values({name: table.c[name] + value for name, value in counts.items()})
            )
        for name, value in counts.items():
            setattr(self.summary, name, getattr(self.summary, name) + value)
        for _, failure in failed:
            self.summary.rejections[failure.reason] = self.summary.rejections.get(failure.reason, 0) + 1

    def _images(self, session: Session, examined) -> tuple[dict[str, int], dict[str, int]]:
        """Insert the images not yet catalogued; return sha256 -> id for all and for the new ones.

        An image another ingest inserts meanwhile (overlapping runs of the same files on PostgreSQL)
        is a duplicate here, not a failure: the insert skips a sha256 that is already there. Rows go
        in the order offered, so image ids follow the collection's order."""
        shas = {result.sha256 for _, result in examined}
        if not shas:
            return {}, {}
        table = Image.__table__
        known = sa.select(table.c.sha256, table.c.id).where(table.c.sha256.in_(shas))
        rows, seen = {}, set(dict(session.execute(known).all()))
        now = utcnow()
        for _, result in examined:
            if result.sha256 in seen or result.sha256 in rows:
                continue
            rows[result.sha256] = dict(
                sha256=result.sha256,
                phash=result.phash,
                format=result.format,
                mode=result.mode,
                width=result.width,
                height=result.height,
                size_bytes=result.size_bytes,
                first_seen_at=now,
                ingest_run_id=self.run_id,
                ingested_by=self.actor_id,
                state="pending",
            )
        new_ids: dict[str, int] = {}
        if rows:
            statement = _insert_new(session, table).returning(table.c.sha256, table.c.id)
            new_ids = dict(session.execute(statement, list(rows.values())).all())
        return dict(session.execute(known).all()), new_ids

    def _source_values(self, offer: Offer, result: Examined, image_id: int) -> dict:
        row = offer.row.values if offer.row else {}
        truncated: dict[str, dict] = {}

        def capped(field: str, value: str | None) -> str | None:
            return limits.cap(value, self.catalogue.store, field, truncated)

        explicit = capped("licence", row.get("licence") or self.licence)
        candidates = [capped(f"licence_candidates[{n}]", c) for n, c in enumerate(result.licence_candidates)]
        licence_raw, conflict = licences.source_statement(explicit, candidates, self.table)
        url = row.get("source_url")
        absolute = printable(str(Path(offer.path).absolute()))
        metadata: dict = {
            "file": {"orientation": result.orientation, "frames": result.frames},
            "embedded": limits.cap_tree(result.rights, self.catalogue.store, "embedded", truncated),
        }
        if result.references:
            metadata["file"]["external_references"] = result.references
        if offer.row:
            raw = {"line": offer.row.line, **offer.row.raw}
            metadata["manifest"] = limits.cap_tree(raw, self.catalogue.store, "manifest", truncated)
        if conflict:
            metadata["licence_conflict"] = conflict
        if result.data_mining:
            metadata["data_mining"] = capped("data_mining", result.data_mining)
        expires = row.get("licence_expires")
        values = dict(
            image_id=image_id,
            ingest_run_id=self.run_id,
            locator=url or absolute,
            path=absolute,
            url=url,
            collection=capped("collection", row.get("collection") or self.source),
            creator=capped("creator", row.get("creator") or result.creator),
            title=capped("title", row.get("title") or result.title),
            licence_raw=licence_raw,
            attribution=capped("attribution", row.get("attribution") or result.attribution),
            evidence=capped("evidence", row.get("evidence")),
            licence_expires=licences.parse_date(expires, "licence_expires") if expires else None,
            opt_out=parse_bool(row.get("opt_out"), "opt_out") or result.mining_reserved,
            raw_metadata=metadata,
        )
        if truncated:
            metadata["truncated"] = truncated
        return values

    def _sources(self, session: Session, examined, ids, new_ids, changes) -> set[int]:
        """Add each offer as a source of its image, or update the source it already is.

        A source is one place: its locator and its path. Two files under one URL are two sources,
        each with its own licence statement (DESIGN.md rule 2); the same place offered again
        changes nothing unless what it says changed. Returns the ids of images whose sources
        changed (their licence is derived again)."""
        table = Source.__table__
        wanted: dict[tuple[int, str, str], dict] = {}
        for offer, result in examined:
            values = self._source_values(offer, result, ids[result.sha256])
            wanted.setdefault(_place(values), values)
        image_ids = {image_id for image_id, _, _ in wanted}
        known = {
            _place(row._asdict()): row
            for row in session.execute(sa.select(table).where(table.c.image_id.in_(image_ids))).all()
        }
        inserts: list[dict] = []
        touched: set[int] = set()
        now = utcnow()
        for key, values in wanted.items():
            existing = known.get(key)
            if existing is None:
                inserts.append({**values, "retrieved_at": now})
                continue
            before = {name: getattr(existing, name) for name in SOURCE_FIELDS}
            after = {name: values[name] for name in SOURCE_FIELDS}
            if before == after and existing.raw_metadata == values["raw_metadata"]:
                continue
            session.execute(
                sa.update(table)
                .where(table.c.id == existing.id)
                .values(
                    **after, raw_metadata=values["raw_metadata"], retrieved_at=now, ingest_run_id=self.run_id
                )
            )
            touched.add(values["image_id"])
            before, after = _changed(before, after, existing.raw_metadata, values["raw_metadata"])
            where = {"locator": existing.locator, "path": existing.path}
            changes.append(
                audit.Change("source.update", "image", values["image_id"], where | before, where | after)
            )
        if inserts:
            statement = _insert_new(session, table).returning(table.c.image_id, table.c.locator, table.c.path)
            added = {tuple(row) for row in session.execute(statement, inserts).all()}
            fresh = set(new_ids.values())
            first_of_new: set[int] = set()
            for values in inserts:
                if _place(values) not in added:
                    continue  # another ingest recorded the same place meanwhile
                touched.add(values["image_id"])
                if values["image_id"] in fresh and values["image_id"] not in first_of_new:
                    first_of_new.add(values["image_id"])  # recorded by its image.ingest event
                    continue
                changes.append(
                    audit.Change("source.add", "image", values["image_id"], None, _source_state(values))
                )
        return touched

    def _licences(self, session: Session, touched: set[int], new_ids: dict[str, int], changes) -> None:
        """Derive the licence of every image whose sources changed; record what changed."""
        if not touched:
            return
        # The licence rows are locked (in id order, as every writer takes them) before the sources are
        # read: an overlapping ingest that adds a source to the same image waits, then derives from
        # every source, this batch's included, instead of overwriting this derivation with its own.
        locked = sa.select(Licence).where(Licence.image_id.in_(touched)).order_by(Licence.image_id)
        current = {lic.image_id: lic for lic in session.scalars(locked.with_for_update())}
        sources: dict[int, list] = {}
        for row in session.execute(
            sa.select(Source.__table__).where(Source.image_id.in_(touched)).order_by(Source.id)
        ).all():
            sources.setdefault(row.image_id, []).append(row)
        fresh = set(new_ids.values())
        inserts, rederived = [], []
        now = utcnow()
        sha_of = {image_id: sha for sha, image_id in new_ids.items()}
        for image_id in sorted(touched):
            fields = licences.derive(sources[image_id], current.get(image_id), self.table)
            if image_id in fresh:
                inserts.append({"image_id": image_id, "updated_at": now, **fields})
                first = sources[image_id][0]
                changes.append(
                    audit.Change(
                        "image.ingest",
                        "image",
                        image_id,
                        None,
                        {
                            "sha256": sha_of[image_id],
                            "run": self.run_id,
                            "source": _source_state(first._asdict()),
                            "licence": _licence_fields(fields),
                        },
                    )
                )
                continue
            lic = current[image_id]
            before = licences.licence_state(lic)
            for name, value in fields.items():
                setattr(lic, name, value)
            after = licences.licence_state(lic)
            if before != after:
                lic.updated_at = now
                session.add(lic)
                changes.append(audit.Change("licence.derive", "image", image_id, before, after))
                rederived.append(image_id)
        if inserts:
            session.execute(sa.insert(Licence.__table__), inserts)
        if rederived:
            session.flush()
            rejudge(session, self.actor_name, rederived, f"licence re-derived by ingest run {self.run_id}")

    def _rejections(self, session: Session, failed, changes) -> None:
        if not failed:
            return
        table = Rejection.__table__
        rows = [
            dict(
                ingest_run_id=self.run_id,
                path=offer.display,
                reason=f.reason,
                detail=limits.cut(f.detail),
                sha256=f.sha256,
                at=datetime.now(UTC),
            )
            for offer, f in failed
        ]
        inserted = session.execute(sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
        ids = inserted.scalars().all()
        for rejection_id, row in zip(ids, rows, strict=True):
            changes.append(
                audit.Change(
                    "ingest.reject",
                    "rejection",
                    rejection_id,
                    None,
                    {
                        "run": self.run_id,
                        "path": row["path"],
                        "reason": row["reason"],
                        "detail": row["detail"],
                        "sha256": row["sha256"],
                    },
                )
            )


def _place(values: dict) -> tuple[int, str, str]:
    """What makes a source distinct: its image, locator and path (the unique key of `source`)."""
    return values["image_id"], values["locator"], values["path"]


def _insert_new(session: Session, table: sa.Table):
    """An INSERT that skips a row whose unique key is already taken, on SQLite and on PostgreSQL.

    Both tables it serves have one unique key besides the id (image: sha256; source: its place), so
    no conflict target is named, which also lets the code run on a catalogue still at an older
    revision whose key was another (the migration tests ingest at 0001)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _changed(before: dict, after: dict, old_metadata: dict, new_metadata: dict) -> tuple[dict, dict]:
    """The fields of a source that changed, before and after; raw metadata counts as one field."""
    names = [name for name in SOURCE_FIELDS if before[name] != after[name]]
    old, new = {n: before[n] for n in names}, {n: after[n] for n in names}
    if old_metadata != new_metadata:
        old["raw_metadata"], new["raw_metadata"] = old_metadata, new_metadata
    return old, new


def _source_state(values: dict) -> dict:
    state = {
        name: values.get(name)
        for name in (
            "locator",
            "path",
            "collection",
            "creator",
            "title",
            "licence_raw",
            "attribution",
            "opt_out",
        )
    }
    truncated = (values.get("raw_metadata") or {}).get("truncated")
    if truncated:
        state["truncated"] = truncated  # which values were cut, and the sha256 of each whole one
    return state


def _licence_fields(fields: dict) -> dict:
    return {name: fields[name] for name in ("raw", "spdx", "status", "note", "opt_out", "expires_on")}
