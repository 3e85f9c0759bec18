"""One decision for many images against the same decisions one at a time, timed in the same run.

    python bench/bulk_decisions.py [--images 2000] [--skip-postgres]

The script ingests N small images whose manifest says `Expat` (the real ingest, so every row, source
and audit event is what production writes), then copies the catalogue (a SQLite file copy; on
PostgreSQL `CREATE DATABASE ... TEMPLATE`) so both ways start from the same rows:

- bulk: `licence set --raw Expat --licence MIT` (licence_decisions.record_verified over images.matching_ids),
  then `review approve --state pending` (review.decide_matching), each one transaction;
- baseline: the same decisions image by image, one transaction each, through the same functions the
  single-image commands call (licence_decisions.set_licence, review.decide); this leaves out the start-up of a
  `stylevault` process per command (about 1.5 s here), so the real gain is larger.

Not a test: it prints a table and asserts only that both ways end in the same states.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stylevault.governance.catalogue import actors
from stylevault.governance.catalogue.db import Catalogue  # noqa: E402
from stylevault.governance.catalogue.models import Image, Licence  # noqa: E402
from stylevault.governance.ingest.run import ingest  # noqa: E402
from stylevault.governance.legal import (
    licence_decisions,
    review,  # noqa: E402
)
from stylevault.governance.rules import licences
from stylevault.governance.views import images
from tests.factories import encode, picture, write, write_csv  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/"


def stocked(url: str, store: Path, folder: Path, count: int) -> Catalogue:
    catalogue = Catalogue.open(url, store)
    catalogue.upgrade()
    with catalogue.write() as session:
        actors.add(session, None, "admin", ["admin"])
        actors.add(session, "admin", "sam", ["steward"])
        actors.add(session, "admin", "lee", ["legal"])
    if not (folder / "m.csv").exists():
        rows = []
        for n in range(count):
            write(folder / f"{n}.png", encode(picture(10_000 + n, size=(16, 16))))
            rows.append({"path": f"{n}.png", "licence": "Expat", "collection": "debian"})
        write_csv(folder / "m.csv", rows)
    ingest(catalogue, "sam", folder, manifest=folder / "m.csv", workers=1, progress=False)
    return catalogue


def bulk(catalogue: Catalogue) -> tuple[float, float]:
    started = time.perf_counter()
    with catalogue.write() as session:
        licence_decisions.record_verified(
            session, catalogue.store, "lee", images.matching_ids(raw="Expat"), licence="MIT"
        )
    licence_s = time.perf_counter() - started
    started = time.perf_counter()
    with catalogue.write() as session:
        review.decide_matching(session, "lee", "approve", {"state": "pending"}, None)
    return licence_s, time.perf_counter() - started


def one_by_one(catalogue: Catalogue) -> tuple[float, float]:
    with catalogue.read() as session:
        ids = [str(row["id"]) for row in images.list_images(session, raw="Expat")]
    started = time.perf_counter()
    for ref in ids:
        with catalogue.write() as session:
            licence_decisions.set_licence(
                session, catalogue.store, "lee", images.resolve(session, ref), licence="MIT"
            )
    licence_s = time.perf_counter() - started
    started = time.perf_counter()
    for ref in ids:
        with catalogue.write() as session:
            review.decide(session, "lee", "approve", [ref], None)
    return licence_s, time.perf_counter() - started


def outcome(catalogue: Catalogue) -> list[tuple]:
    i, lic = Image.__table__, Licence.__table__
    query = sa.select(i.c.state, lic.c.status, lic.c.spdx).join(lic, lic.c.image_id == i.c.id)
    with catalogue.read() as session:
        return sorted(set(session.execute(query).all()))


def pairs(work: Path, count: int, skip_postgres: bool):
    """(database name, catalogue for the bulk way, catalogue for the baseline), from identical rows."""
    folder = work / "images"
    first = stocked(f"sqlite:///{work / 'bulk.db'}", work / "bulk.store", folder, count)
    first.dispose()
    shutil.copyfile(work / "bulk.db", work / "loop.db")
    yield (
        "SQLite",
        Catalogue.open(f"sqlite:///{work / 'bulk.db'}", work / "bulk.store"),
        Catalogue.open(f"sqlite:///{work / 'loop.db'}", work / "loop.store"),
    )
    if skip_postgres:
        return
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    names = ("stylevault_bench_bulk", "stylevault_bench_loop")
    with admin.connect() as connection:
        for name in names:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{names[0]}"')
    stocked(PG_BASE + names[0], work / "pg.store", folder, count).dispose()
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{names[1]}" TEMPLATE "{names[0]}"')
    try:
        yield (
            "PostgreSQL",
            Catalogue.open(PG_BASE + names[0], work / "pg.store"),
            Catalogue.open(PG_BASE + names[1], work / "pg.store"),
        )
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    licences.require_expression("MIT")  # loads the SPDX list once, outside every timing
    results = []
    with tempfile.TemporaryDirectory(prefix="stylevault-bulk-") as scratch:
        for name, fast, slow in pairs(Path(scratch), args.images, args.skip_postgres):
            bulk_times, loop_times = bulk(fast), one_by_one(slow)
            assert outcome(fast) == outcome(slow) == [("approved", "verified", "MIT")]
            results.append((name, bulk_times, loop_times))
            fast.dispose()
            slow.dispose()
    print(f"{args.images} images stating `Expat`; best case for the baseline (no process start-up)\n")
    print("| database | decision | one at a time s | bulk s | ratio |")
    print("|---|---|---:|---:|---:|")
    for name, bulk_times, loop_times in results:
        for label, one, many in zip(("licence set MIT", "approve"), loop_times, bulk_times, strict=True):
            print(f"| {name} | {label} | {one:.2f} | {many:.2f} | {one / many:.0f}× |")


if __name__ == "__main__":
    main()
