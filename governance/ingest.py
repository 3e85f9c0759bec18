"""Ingest: every file offered ends as a catalogued image, a recognised duplicate, or a rejection.

Files are streamed: each is read once (sha256, decode check, perceptual hash, embedded rights,
thumbnail), in worker processes when asked, and written in batches. A batch commits atomically
together with the run's counts, so a crash leaves the catalogue consistent and the counts
reconciled (the schema checks offered = catalogued + duplicates + rejected), and a rerun completes
the job: what was already catalogued comes back as duplicates and its sources merge.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from governance import actors, audit, imaging, licences, store
from governance.catalogue import Catalogue
from governance.errors import BadInput
from governance.manifest import parse_bool, read_manifest
from governance.models import Image, IngestRun, Licence, Rejection, Source, utcnow
from governance.offers import Offer, offers_from_folder, offers_from_manifest, printable
from governance.rights import read_rights

BATCH_SIZE = 200
SOURCE_FIELDS = (
    "path",
    "url",
    "collection",
    "creator",
    "title",
    "licence_raw",
    "attribution",
    "evidence",
    "licence_expires",
    "opt_out",
)


@dataclass
class Examined:
    sha256: str
    size_bytes: int
    format: str
    mode: str
    width: int
    height: int
    orientation: int
    frames: int
    phash: str
    rights: dict
    licence_candidates: list[str]
    creator: str | None
    attribution: str | None
    title: str | None
    data_mining: str | None
    mining_reserved: bool


@dataclass
class Failed:
    reason: str
    detail: str
    sha256: str | None = None


def examine(path: str, store_root: Path) -> Examined | Failed:
    """Read a file once: hash it, decode it, read its rights, store its thumbnail."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return Failed("unreadable", f"cannot read: {exc.strerror or exc}")
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        decoded = imaging.decode(data)
    except imaging.DecodeFailure as failure:
        return Failed(failure.reason, failure.detail, sha256)
    rights = read_rights(decoded.original)
    thumb = imaging.thumbnail(decoded.rgb)
    if not store.thumbnail_path(store_root, sha256).exists():
        store.put_thumbnail(store_root, sha256, imaging.jpeg(thumb))
    return Examined(
        sha256=sha256,
        size_bytes=len(data),
        format=decoded.format,
        mode=decoded.mode,
        width=decoded.width,
        height=decoded.height,
        orientation=decoded.orientation,
        frames=decoded.frames,
        phash=imaging.phash(thumb),
        rights=rights.as_dict(),
        licence_candidates=rights.licence_candidates,
        creator=rights.creator,
        attribution=rights.attribution,
        title=rights.title,
        data_mining=rights.data_mining,
        mining_reserved=rights.mining_reserved,
    )


def _examine_offer(offer: Offer, store_root: Path) -> Examined | Failed:
    if offer.refusal is not None:
        return Failed(*offer.refusal)
    return examine(offer.path, store_root)


def _examine_chunk(offers: list[Offer], store_root: Path) -> list[Examined | Failed]:
    return [_examine_offer(offer, store_root) for offer in offers]


# ---------------------------------------------------------------- the run


@dataclass
class Summary:
    run_id: int
    root: str
    offered: int = 0
    catalogued: int = 0
    duplicates: int = 0
    rejected: int = 0
    rejections: dict[str, int] = field(default_factory=dict)
    licences: dict[str, int] = field(default_factory=dict)  # status -> images touched by this run
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "root": self.root,
            "offered": self.offered,
            "catalogued": self.catalogued,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejections": self.rejections,
            "licences": self.licences,
            "seconds": round(self.seconds, 3),
        }

    def line(self) -> str:
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(self.rejections.items()))
        flagged = sum(self.licences.get(s, 0) for s in ("missing", "unrecognised", "conflict"))
        return (
            f"ingest run {self.run_id}: {self.offered} offered = {self.catalogued} catalogued"
            f" + {self.duplicates} duplicates + {self.rejected} rejected"
            + (f" ({reasons})" if reasons else "")
            + (f"; {flagged} licences flagged for legal" if flagged else "")
            + f" in {self.seconds:.1f}s"
        )


def _ordered_results(
    offers: Iterable[Offer], store_root: Path, workers: int, chunk: int = 16
) -> Iterator[tuple[Offer, Examined | Failed]]:
    """Examine offers in order; with workers > 1, in processes with a bounded window in flight."""
    if workers <= 1:
        for offer in offers:
            yield offer, _examine_offer(offer, store_root)
        return
    iterator = iter(offers)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending = []
        while True:
            while len(pending) < workers * 2:
                part = list(islice(iterator, chunk))
                if not part:
                    break
                pending.append((part, pool.submit(_examine_chunk, part, store_root)))
            if not pending:
                return
            part, future = pending.pop(0)
            yield from zip(part, future.result(), strict=True)


def _batches(items: Iterator, size: int) -> Iterator[list]:
    while batch := list(islice(items, size)):
        yield batch


def _progress():
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    return Progress(*columns, transient=True)


def ingest(
    catalogue: Catalogue,
    actor_name: str | None,
    path: str | os.PathLike,
    *,
    manifest: str | os.PathLike | None = None,
    source: str | None = None,
    licence: str | None = None,
    workers: int = 1,
    batch_size: int = BATCH_SIZE,
    progress: bool | None = None,
) -> Summary:
    """Ingest a folder (or one file), or the files a manifest lists relative to `path`."""
    started = time.perf_counter()
    root = Path(path)
    if not root.exists():
        raise BadInput(f"{path}: no such file or folder")
    if manifest is not None and not root.is_dir():
        raise BadInput(f"{path}: with --manifest, PATH must be the folder the manifest's paths start from")
    rows = read_manifest(Path(manifest)) if manifest is not None else None
    with catalogue.write() as session:
        actor = actors.require(session, actor_name, "ingest")
        run = IngestRun(
            actor_id=actor.id,
            root=printable(str(root.resolve())),
            manifest=printable(str(Path(manifest).resolve())) if manifest else None,
            source=source,
            default_licence=licence,
        )
        session.add(run)
        session.flush()
        summary = Summary(run_id=run.id, root=run.root)
        audit.record(
            session,
            actor.name,
            [
                audit.Change(
                    "ingest.start",
                    "ingest_run",
                    run.id,
                    None,
                    {"root": run.root, "manifest": run.manifest, "source": source, "licence": licence},
                )
            ],
        )
        actor_id = actor.id
    own = _catalogue_files(catalogue)
    offers = offers_from_manifest(root, rows) if rows is not None else offers_from_folder(root, own)
    show = sys.stderr.isatty() if progress is None else progress
    bar = _progress() if show else None
    task = bar.add_task("ingest", total=len(rows) if rows is not None else None) if bar else None
    writer = _BatchWriter(
        catalogue,
        run_id=summary.run_id,
        actor_id=actor_id,
        actor_name=actor_name,
        source=source,
        licence=licence,
        summary=summary,
    )
    try:
        if bar:
            bar.start()
        results = _ordered_results(offers, catalogue.store, workers)
        for batch in _batches(results, batch_size):
            writer.write(batch)
            if bar:
                bar.advance(task, len(batch))
    except BaseException:
        _finish(catalogue, summary, actor_name, "failed")
        raise
    finally:
        if bar:
            bar.stop()
    summary.seconds = time.perf_counter() - started
    _finish(catalogue, summary, actor_name, "completed")
    return summary


def _catalogue_files(catalogue: Catalogue) -> set[Path]:
    """The catalogue's own files (its SQLite database and store) are never offered to ingest."""
    own = {catalogue.store.resolve()}
    database = catalogue.engine.url.database
    if catalogue.engine.url.get_backend_name() == "sqlite" and database:
        db = Path(database).resolve()
        own |= {
            db,
            db.with_name(db.name + "-wal"),
            db.with_name(db.name + "-shm"),
            db.with_name(db.name + "-journal"),
        }
    return own


def _finish(catalogue: Catalogue, summary: Summary, actor_name: str | None, status: str) -> None:
    with catalogue.write() as session:
        run = session.get(IngestRun, summary.run_id)
        run.status = status
        run.finished_at = utcnow()
        session.add(run)
        counts = {
            "offered": run.offered,
            "catalogued": run.catalogued,
            "duplicates": run.duplicates,
            "rejected": run.rejected,
        }
        summary.licences = _licence_statuses(session, run.id)
        audit.record(
            session,
            actor_name,
            [
                audit.Change(
                    f"ingest.{'finish' if status == 'completed' else 'fail'}",
                    "ingest_run",
                    run.id,
                    None,
                    {**counts, "status": status},
                )
            ],
        )


def _licence_statuses(session: Session, run_id: int) -> dict[str, int]:
    """Licence status -> images whose sources the run added or changed, each image counted once."""
    lic, source = Licence.__table__, Source.__table__
    touched = sa.select(source.c.image_id).where(source.c.ingest_run_id == run_id)
    query = sa.select(lic.c.status, sa.func.count()).where(lic.c.image_id.in_(touched)).group_by(lic.c.status)
    return dict(session.execute(query).all())


@dataclass
class _BatchWriter:
    """Writes one batch of examined offers in one transaction, with set-based statements."""

    catalogue: Catalogue
    run_id: int
    actor_id: int
    actor_name: str
    source: str | None
    licence: str | None
    summary: Summary

    def write(self, batch: list[tuple[Offer, Examined | Failed]]) -> None:
        with self.catalogue.write() as session:
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
        """Insert the images not yet catalogued; return sha256 -> id for all and for the new ones."""
        shas = {result.sha256 for _, result in examined}
        if not shas:
            return {}, {}
        table = Image.__table__
        ids = dict(
            session.execute(sa.select(table.c.sha256, table.c.id).where(table.c.sha256.in_(shas))).all()
        )
        rows, seen = [], set(ids)
        now = utcnow()
        for _, result in examined:
            if result.sha256 in seen:
                continue
            seen.add(result.sha256)
            rows.append(
                dict(
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
            )
        new_ids: dict[str, int] = {}
        if rows:
            inserted = session.execute(sa.insert(table).returning(table.c.sha256, table.c.id), rows)
            new_ids = dict(inserted.all())
        ids.update(new_ids)
        return ids, new_ids

    def _source_values(self, offer: Offer, result: Examined, image_id: int) -> dict:
        row = offer.row.values if offer.row else {}
        explicit = row.get("licence") or self.licence
        licence_raw, conflict = licences.source_statement(explicit, result.licence_candidates)
        url = row.get("source_url")
        absolute = printable(str(Path(offer.path).absolute()))
        metadata: dict = {
            "file": {"orientation": result.orientation, "frames": result.frames},
            "embedded": result.rights,
        }
        if offer.row:
            metadata["manifest"] = {"line": offer.row.line, **offer.row.raw}
        if conflict:
            metadata["licence_conflict"] = conflict
        if result.data_mining:
            metadata["data_mining"] = result.data_mining
        expires = row.get("licence_expires")
        return dict(
            image_id=image_id,
            ingest_run_id=self.run_id,
            locator=url or absolute,
            path=absolute,
            url=url,
            collection=row.get("collection") or self.source,
            creator=row.get("creator") or result.creator,
            title=row.get("title") or result.title,
            licence_raw=licence_raw,
            attribution=row.get("attribution") or result.attribution,
            evidence=row.get("evidence"),
            licence_expires=licences.parse_date(expires, "licence_expires") if expires else None,
            opt_out=parse_bool(row.get("opt_out"), "opt_out") or result.mining_reserved,
            raw_metadata=metadata,
        )

    def _sources(self, session: Session, examined, ids, new_ids, changes) -> set[int]:
        """Add each offer as a source of its image, merging one that is already known.

        Returns the ids of images whose sources changed (their licence is derived again)."""
        table = Source.__table__
        # The same source twice (one image, one locator): the last stands, within a batch as across
        # batches, so the catalogue does not depend on where the batches fall.
        wanted: dict[tuple[int, str], dict] = {}
        for offer, result in examined:
            values = self._source_values(offer, result, ids[result.sha256])
            wanted[values["image_id"], values["locator"]] = values
        image_ids = {image_id for image_id, _ in wanted}
        known = (
            {
                (row.image_id, row.locator): row
                for row in session.execute(sa.select(table).where(table.c.image_id.in_(image_ids))).all()
            }
            if image_ids
            else {}
        )
        inserts: dict[tuple[int, str], dict] = {}
        touched: set[int] = set()
        fresh = set(new_ids.values())
        now = utcnow()
        for key, values in wanted.items():
            existing = known.get(key)
            if existing is None:
                inserts[key] = {**values, "retrieved_at": now}
                touched.add(values["image_id"])
                if values["image_id"] not in fresh:
                    changes.append(
                        audit.Change("source.add", "image", values["image_id"], None, _source_state(values))
                    )
                continue
            before = {name: getattr(existing, name) for name in SOURCE_FIELDS}
            after = {name: values[name] for name in SOURCE_FIELDS}
            if before != after or existing.raw_metadata != values["raw_metadata"]:
                session.execute(
                    sa.update(table)
                    .where(table.c.id == existing.id)
                    .values(
                        **after,
                        raw_metadata=values["raw_metadata"],
                        retrieved_at=now,
                        ingest_run_id=self.run_id,
                    )
                )
                touched.add(values["image_id"])
                if before != after:
                    changes.append(
                        audit.Change(
                            "source.update",
                            "image",
                            values["image_id"],
                            {"locator": existing.locator, **before},
                            {"locator": existing.locator, **after},
                        )
                    )
        if inserts:
            session.execute(sa.insert(table), list(inserts.values()))
        return touched

    def _licences(self, session: Session, touched: set[int], new_ids: dict[str, int], changes) -> None:
        """Derive the licence of every image whose sources changed; record what changed."""
        if not touched:
            return
        sources: dict[int, list] = {}
        for row in session.execute(
            sa.select(Source.__table__).where(Source.image_id.in_(touched)).order_by(Source.id)
        ).all():
            sources.setdefault(row.image_id, []).append(row)
        current = {
            lic.image_id: lic
            for lic in session.scalars(sa.select(Licence).where(Licence.image_id.in_(touched)))
        }
        fresh = set(new_ids.values())
        inserts, rederived = [], []
        now = utcnow()
        sha_of = {image_id: sha for sha, image_id in new_ids.items()}
        for image_id in sorted(touched):
            fields = licences.derive(sources[image_id], current.get(image_id))
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
            from governance import index

            session.flush()
            index.restale(
                session, self.actor_name, rederived, f"licence re-derived by ingest run {self.run_id}"
            )

    def _rejections(self, session: Session, failed, changes) -> None:
        if not failed:
            return
        table = Rejection.__table__
        rows = [
            dict(
                ingest_run_id=self.run_id,
                path=offer.display,
                reason=f.reason,
                detail=f.detail,
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


def _source_state(values: dict) -> dict:
    return {
        name: values.get(name)
        for name in ("locator", "collection", "creator", "title", "licence_raw", "attribution", "opt_out")
    }


def _licence_fields(fields: dict) -> dict:
    return {name: fields[name] for name in ("raw", "spdx", "status", "note", "opt_out", "expires_on")}
