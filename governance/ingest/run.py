"""Ingest: every file offered ends as a catalogued image, a recognised duplicate, or a rejection.

Files are streamed: each is read once (sha256, decode check, perceptual hash, embedded rights,
thumbnail), in worker processes when asked, and written in batches. A batch commits atomically
together with the run's counts, so a crash leaves the catalogue consistent and the counts
reconciled (the schema checks offered = catalogued + duplicates + rejected), and a rerun completes
the job: what was already catalogued comes back as duplicates and its sources merge.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack
from itertools import islice
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit, liveness
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import IngestRun, Licence, Source, utcnow
from stylevault.governance.errors import BadInput, StylevaultError
from stylevault.governance.ingest.batches import BatchWriter
from stylevault.governance.ingest.examine import Examined, Failed, examine
from stylevault.governance.ingest.manifest import read_manifest
from stylevault.governance.ingest.offers import (
    Offer,
    name_problem,
    offers_from_folder,
    offers_from_manifest,
    printable,
)
from stylevault.governance.ingest.summary import Summary

BATCH_SIZE = 200


class WorkerDied(StylevaultError):
    """A worker process reading files died; the run is recorded as failed and a rerun completes it."""

    exit_code = 2


def _examine_offer(offer: Offer, store_root: Path) -> Examined | Failed:
    if offer.refusal is not None:
        return Failed(*offer.refusal)
    return examine(*offer.real, store_root)


def _examine_chunk(offers: list[Offer], store_root: Path) -> list[Examined | Failed]:
    return [_examine_offer(offer, store_root) for offer in offers]


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
            try:
                examined = future.result()
            except BrokenProcessPool as exc:
                raise WorkerDied(
                    f"{part[0].display}: an ingest worker died while reading this file or one of the "
                    f"{len(part) - 1} after it (killed, or out of memory); every batch before it is "
                    "committed: run the same ingest again to complete the job"
                ) from exc
            yield from zip(part, examined, strict=True)


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


def _checked_root(path: str | os.PathLike, manifest: str | os.PathLike | None) -> Path:
    root = Path(path)
    if not root.exists():
        raise BadInput(f"{path}: no such file or folder")
    if problem := name_problem(str(root.resolve())):
        raise BadInput(f"{printable(str(root.resolve()))}: {problem}")
    if manifest is not None and not root.is_dir():
        raise BadInput(f"{path}: with --manifest, PATH must be the folder the manifest's paths start from")
    return root


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
    root = _checked_root(path, manifest)
    rows = read_manifest(Path(manifest)) if manifest is not None else None
    with ExitStack() as alive:
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
            # Held from before the run is seen running to its end: `doctor` closes a run nobody holds.
            alive.enter_context(liveness.held(catalogue, "ingest", run.id))
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
        own = _catalogue_files(catalogue)
        offers = offers_from_manifest(root, rows) if rows is not None else offers_from_folder(root, own)
        show = sys.stderr.isatty() if progress is None else progress
        bar = _progress() if show else None
        task = bar.add_task("ingest", total=len(rows) if rows is not None else None) if bar else None
        writer = BatchWriter(
            catalogue,
            run_id=summary.run_id,
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
            summary.seconds = time.perf_counter() - started
            _finish(catalogue, summary, actor_name, "completed")
        except BaseException:
            _finish(catalogue, summary, actor_name, "failed")
            raise
        finally:
            if bar:
                bar.stop()
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
    """Close the run. Completing it is the ingest's last write and checks the role like each batch;
    a failure is recorded whatever stopped the run (a refusal included), so no run is left open."""
    with catalogue.write() as session:
        if status == "completed":
            actors.require(session, actor_name, "ingest")
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
