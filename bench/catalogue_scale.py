"""The licence report, the review listings and `audit verify` on a catalogue of a million images,
against a trivial full scan (`SELECT count(*) FROM image`) timed on the same database in the same run.

    python bench/catalogue_scale.py [--rows 1000000] [--skip-postgres] [--keep] [--explain]

The catalogue is migrated with Alembic and then bulk-loaded with plain SQL (SQLite: executemany in
transactions of CHUNK rows; PostgreSQL: COPY), bypassing ingest: one image, one licence and one
source row each, with a realistic mix of licences and approval states (see `catalogue_rows`). The
audit events those rows would have had are then appended through `audit.record`, in the shapes
ingest, `licence set` and review write (`record_events`), and the style set `everything` is made
with the real `styleset create`, `add --collection` and `publish`: so the log describes the tables,
and the replay of `audit verify` is timed on a catalogue where it must find nothing (its result
column is the number of findings). Statistics are gathered afterwards (SQLite ANALYZE; PostgreSQL
VACUUM ANALYZE, as autovacuum would soon after a bulk load). Each operation runs once to warm up,
then three times, each in a fresh session; the best time is reported. For an operation over the
target, or for all with --explain, each SQL statement it issued is timed alone and its plan printed.
Not a test: it prints tables and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from pathlib import Path

import sqlalchemy as sa

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import LICENCE_FIELDS, Image, IngestRun, Licence, Source
from stylevault.governance.curation import clearance, stylesets
from stylevault.governance.legal.reports import licence_report
from stylevault.governance.rules.policy_files import load_policy
from stylevault.governance.upkeep.replay import replay
from stylevault.governance.views.images import iter_images, list_images

TARGET_SECONDS = 2.0
CHUNK = 50_000
RUN_SIZE = 100_000  # images per ingest run
SEED = 20240611
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "stylevault_bench_scale"
STEWARD, LEGAL = "bench", "counsel"

# 15 SPDX ids with their weights among normalised and verified licences.
SPDX_IDS = {
    "CC-BY-4.0": 22,
    "CC0-1.0": 14,
    "CC-BY-SA-4.0": 12,
    "CC-BY-NC-4.0": 9,
    "CC-BY-NC-SA-4.0": 7,
    "CC-BY-2.0": 6,
    "CC-BY-SA-3.0": 5,
    "CC-BY-3.0": 4,
    "CC-BY-ND-4.0": 4,
    "CC-BY-NC-ND-4.0": 4,
    "CC-PDM-1.0": 4,
    "LicenseRef-PublicDomain": 3,
    "LicenseRef-AllRightsReserved": 3,
    "MIT": 2,
    "Apache-2.0": 1,
}
# 36 distinct licences as found that normalisation does not recognise.
UNRECOGNISED = [
    phrase + variant
    for phrase in (
        "Free for personal use",
        "Editorial use only",
        "Courtesy of the artist",
        "Used with permission",
        "See website for terms",
        "Non-commercial use permitted",
        "Contact the photographer",
        "Royalty free",
        "Stock licence",
        "Museum open access (terms apply)",
        "Copyright holder unknown",
        "Permission granted by email",
    )
    for variant in ("", " (2019)", " - v2")
]
LICENCE_STATUS = {"normalised": 62, "verified": 8, "unrecognised": 10, "missing": 13, "conflict": 7}
# Legal approves only licences it can read; flagged ones wait or are rejected.
STATE_WHEN_KNOWN = {"pending": 45, "approved": 45, "rejected": 5, "revoked": 5}
STATE_WHEN_FLAGGED = {"pending": 85, "rejected": 15}
COLLECTIONS = [f"collection-{n:02d}" for n in range(20)]
DMI_PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"
METADATA = {"file": {"orientation": 1, "frames": 1}, "embedded": {}}

# Column order of the tables, which `catalogue_rows` follows; a new column makes the load fail loudly.
IMAGE_COLUMNS = [column.name for column in Image.__table__.columns]
LICENCE_COLUMNS = [column.name for column in Licence.__table__.columns]
SOURCE_COLUMNS = [column.name for column in Source.__table__.columns]


# ---------------------------------------------------------------- the rows


def _same(value):
    return value


def _sqlite_stamp(moment: datetime) -> str:
    # SQLAlchemy's storage format for DateTime on SQLite.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


@dataclass(frozen=True)
class Encoding:
    """How Python values go to the database driver for a bulk load."""

    stamp: Callable
    day: Callable
    flag: Callable


SQLITE = Encoding(stamp=_sqlite_stamp, day=date.isoformat, flag=int)
POSTGRESQL = Encoding(stamp=_same, day=_same, flag=_same)


def _pick(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def catalogue_rows(count: int, ids: dict[str, int], encoding: Encoding) -> Iterator[tuple]:
    """(image, licence, source) rows, the same ones on every call.

    ~70 % readable licences (62 % normalised over 15 SPDX ids, 8 % verified by legal), 10 %
    unrecognised (36 raw strings), 13 % missing, 7 % conflicting; approval states mostly pending or
    approved, flagged licences only pending or rejected; 4 % with an expiry date, 2 % opted out."""
    rng = random.Random(SEED)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    today = date.today()
    spdx_ids = list(SPDX_IDS)
    metadata = json.dumps(METADATA)
    for image_id in range(1, count + 1):
        seen = start + timedelta(seconds=image_id * 20)
        run = (image_id - 1) // RUN_SIZE + 1
        status = _pick(rng, LICENCE_STATUS)
        spdx = note = verified_at = verified_by = None
        if status in ("normalised", "verified"):
            spdx = rng.choices(spdx_ids, weights=list(SPDX_IDS.values()))[0]
            raw = spdx if rng.random() < 0.5 else f"https://spdx.org/licenses/{spdx}.html"
            if status == "verified":
                verified_by, verified_at = ids[LEGAL], encoding.stamp(seen + timedelta(days=3))
        elif status == "unrecognised":
            raw = rng.choice(UNRECOGNISED)
            note = f"unrecognised licence: not on the SPDX list: {raw}"
        elif status == "conflict":
            pair = sorted(rng.sample(spdx_ids[:6], 2))
            raw, note = " | ".join(pair), f"sources disagree: {' | '.join(pair)}"
        else:
            raw = None
        state = _pick(rng, STATE_WHEN_KNOWN if spdx else STATE_WHEN_FLAGGED)
        decided = state != "pending"
        reason = {"rejected": "licence does not allow use", "revoked": "takedown request"}.get(state)
        expires = today + timedelta(days=rng.randint(-180, 720)) if rng.random() < 0.04 else None
        opt_out = rng.random() < 0.02
        creator = f"creator-{rng.randrange(5000)}"
        attribution = f"Photo by {creator}" if rng.random() < 0.6 else None
        collection = rng.choice(COLLECTIONS)
        url = f"https://images.example.org/{collection}/{image_id:08d}.jpg"
        path = f"/bench/run-{run}/{image_id:08d}.jpg"
        image = (
            image_id,
            hashlib.sha256(url.encode()).hexdigest(),
            f"{rng.getrandbits(64):016x}",
            "JPEG",
            "RGB",
            rng.choice((512, 768, 1024)),
            rng.choice((512, 768, 1024)),
            rng.randint(40_000, 900_000),
            encoding.stamp(seen),
            run,
            ids[STEWARD],
            state,
            reason,
            ids[LEGAL] if decided else None,
            encoding.stamp(seen + timedelta(days=7)) if decided else None,
        )
        licence = (
            image_id,
            raw,
            spdx,
            status,
            note,
            attribution,
            None,
            verified_by,
            verified_at,
            encoding.day(expires) if expires else None,
            encoding.flag(opt_out),
            DMI_PROHIBITED if opt_out and image_id % 2 else None,
            encoding.stamp(seen),
        )
        source = (
            image_id,
            image_id,
            run,
            url,
            path,
            url,
            collection,
            creator,
            None,
            raw.split(" | ")[0] if raw else None,
            attribution,
            None,
            encoding.day(expires) if expires else None,
            encoding.flag(opt_out),
            encoding.stamp(seen),
            metadata,
        )
        yield image, licence, source


def _chunks(rows: Iterator[tuple]) -> Iterator[tuple[list, list, list]]:
    while chunk := list(islice(rows, CHUNK)):
        images, licences, sources = zip(*chunk, strict=True)
        yield list(images), list(licences), list(sources)


# ---------------------------------------------------------------- their audit events

VERB = {"approved": "approve", "rejected": "reject", "revoked": "revoke"}


def record_events(catalogue: Catalogue, count: int, ids: dict[str, int]) -> int:
    """Append the events the rows would have had through ingest (a run's start, each image with its
    first source and licence, its finish), then legal's (each verified licence, each decision), in
    the shapes governance.batches, licences and review write them. Returns the events appended."""
    appended = 0

    def append(actor: str, changes: list[audit.Change]) -> None:
        nonlocal appended
        with catalogue.write() as session:
            audit.record(session, actor, changes)
        appended += len(changes)

    rows = catalogue_rows(count, ids, POSTGRESQL)  # plain Python values, as the code records them
    for run in range(1, -(-count // RUN_SIZE) + 1):
        size = min(RUN_SIZE, count - (run - 1) * RUN_SIZE)
        started = {"root": f"/bench/run-{run}", "manifest": None, "source": None, "licence": None}
        append(STEWARD, [audit.Change("ingest.start", "ingest_run", run, None, started)])
        for images, licences, sources in _chunks(islice(rows, size)):
            append(STEWARD, [_ingested(*row) for row in zip(images, licences, sources, strict=True)])
        counts = {"offered": size, "catalogued": size, "duplicates": 0, "rejected": 0, "status": "completed"}
        append(STEWARD, [audit.Change("ingest.finish", "ingest_run", run, None, counts)])
    for images, licences, _ in _chunks(catalogue_rows(count, ids, POSTGRESQL)):
        changes = []
        for image_row, licence_row in zip(images, licences, strict=True):
            image = dict(zip(IMAGE_COLUMNS, image_row, strict=True))
            licence = dict(zip(LICENCE_COLUMNS, licence_row, strict=True))
            if licence["status"] == "verified":
                before = {name: licence[name] for name in LICENCE_FIELDS} | {"status": "normalised"}
                changes.append(
                    audit.Change("licence.set", "image", image["id"], before, before | {"status": "verified"})
                )
            if image["state"] != "pending":
                after = {"state": image["state"], "reason": image["state_reason"]}
                change = audit.Change(f"review.{VERB[image['state']]}", "image", image["id"], PENDING, after)
                changes.append(change)
        append(LEGAL, changes)
    return appended


PENDING = {"state": "pending", "reason": None}


def _ingested(image_row: tuple, licence_row: tuple, source_row: tuple) -> audit.Change:
    image = dict(zip(IMAGE_COLUMNS, image_row, strict=True))
    licence = dict(zip(LICENCE_COLUMNS, licence_row, strict=True))
    source = dict(zip(SOURCE_COLUMNS, source_row, strict=True))
    first = ("locator", "path", "collection", "creator", "title", "licence_raw", "attribution", "opt_out")
    at_ingest = {name: licence[name] for name in ("raw", "spdx", "status", "note", "opt_out", "expires_on")}
    if at_ingest["status"] == "verified":  # legal verified it later (see record_events)
        at_ingest["status"] = "normalised"
    after = {
        "sha256": image["sha256"],
        "run": image["ingest_run_id"],
        "source": {name: source[name] for name in first},
        "licence": at_ingest,
    }
    return audit.Change("image.ingest", "image", image["id"], None, after)


# ---------------------------------------------------------------- the catalogues


def _pg_admin(statement: str, database: str = "postgres") -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, dbname=database, autocommit=True) as connection:
        connection.execute(statement)


def _insert_sql(table: str, columns: list[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _copy_sql(table: str, columns: list[str]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN"


@dataclass
class Database:
    name: str
    url: str
    store: Path
    encoding: Encoding

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def _sqlite_files(self) -> list[Path]:
        path = Path(self.url.removeprefix("sqlite:///"))
        return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]

    def drop(self) -> None:
        if self.is_sqlite:
            for path in self._sqlite_files():
                path.unlink(missing_ok=True)
        else:
            _pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")

    def create(self, rows: int) -> Catalogue:
        """A migrated catalogue with the actors and runs the rows point to, then the rows."""
        self.drop()
        if not self.is_sqlite:
            _pg_admin(f"CREATE DATABASE {PG_DATABASE}")
        catalogue = Catalogue.open(self.url, self.store)
        catalogue.upgrade()
        with catalogue.write() as session:
            actors.add(session, None, "admin", ["admin"])
            actors.add(session, "admin", STEWARD, ["steward"])
            actors.add(session, "admin", LEGAL, ["legal"])
            ids = {name: actors.find(session, name).id for name in (STEWARD, LEGAL)}
            runs = -(-rows // RUN_SIZE)
            for run in range(1, runs + 1):
                size = min(RUN_SIZE, rows - (run - 1) * RUN_SIZE)
                session.add(
                    IngestRun(
                        id=run,
                        actor_id=ids[STEWARD],
                        root=f"/bench/run-{run}",
                        status="completed",
                        offered=size,
                        catalogued=size,
                    )
                )
        started = time.perf_counter()
        rows_iter = catalogue_rows(rows, ids, self.encoding)
        if self.is_sqlite:
            self._load_sqlite(catalogue, rows_iter)
        else:
            self._load_postgresql(catalogue, rows_iter)
        print(f"  {self.name}: loaded {rows} images in {time.perf_counter() - started:.0f} s", flush=True)
        started = time.perf_counter()
        events = record_events(catalogue, rows, ids)
        publish_everything(catalogue)
        print(
            f"  {self.name}: appended {events} audit events in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        return catalogue

    def _load_sqlite(self, catalogue: Catalogue, rows: Iterator[tuple]) -> None:
        connection = catalogue.engine.raw_connection()
        try:
            cursor = connection.driver_connection.cursor()
            for images, licences, sources in _chunks(rows):
                cursor.execute("BEGIN IMMEDIATE")
                cursor.executemany(_insert_sql("image", IMAGE_COLUMNS), images)
                cursor.executemany(_insert_sql("licence", LICENCE_COLUMNS), licences)
                cursor.executemany(_insert_sql("source", SOURCE_COLUMNS), sources)
                cursor.execute("COMMIT")
            cursor.execute("ANALYZE")
        finally:
            connection.close()

    def _load_postgresql(self, catalogue: Catalogue, rows: Iterator[tuple]) -> None:
        connection = catalogue.engine.raw_connection()
        try:
            pg = connection.driver_connection
            for chunk in _chunks(rows):
                with pg.cursor() as cursor:
                    for table, columns, values in zip(
                        ("image", "licence", "source"),
                        (IMAGE_COLUMNS, LICENCE_COLUMNS, SOURCE_COLUMNS),
                        chunk,
                        strict=True,
                    ):
                        with cursor.copy(_copy_sql(table, columns)) as copy:
                            for row in values:
                                copy.write_row(row)
                pg.commit()
            with pg.cursor() as cursor:
                # Explicit ids were loaded: move the sequences past them, so a kept catalogue stays usable.
                for table in ("image", "source", "ingest_run"):
                    sequence = f"pg_get_serial_sequence('{table}', 'id')"
                    cursor.execute(f"SELECT setval({sequence}, (SELECT max(id) FROM {table}))")
            pg.commit()
        finally:
            connection.close()
        _pg_admin("VACUUM ANALYZE", database=PG_DATABASE)


def publish_everything(catalogue: Catalogue) -> None:
    """Style set `everything`, version 1 = every image, made as a steward would: create, add each
    collection, publish (each set-based, each an audit event)."""
    with catalogue.write() as session:
        stylesets.create(session, STEWARD, "everything")
        for collection in COLLECTIONS:
            stylesets.add(session, STEWARD, "everything", collection=collection)
        stylesets.publish(session, STEWARD, "everything")
    with catalogue.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()


def databases(out: Path, rows: int, skip_postgres: bool) -> list[Database]:
    found = [Database("SQLite", f"sqlite:///{out / f'scale-{rows}.db'}", out / "scale.store", SQLITE)]
    if not skip_postgres:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DATABASE}"
        found.append(Database("PostgreSQL", url, out / "scale-pg.store", POSTGRESQL))
    return found


# ---------------------------------------------------------------- the operations


def count_images(session) -> int:
    return session.execute(sa.text("SELECT count(*) FROM image")).scalar_one()


def report(session) -> int:
    return licence_report(session)["images"]


def pending_first_page(session) -> int:
    return len(list_images(session, state="pending", limit=100))


def pending_all(session) -> int:
    """Every pending image, streamed and written as JSON, as `images list --state pending --json` does."""
    with open(os.devnull, "w") as sink:
        return sum(
            1 for row in iter_images(session, state="pending") if sink.write(json.dumps(row, default=str))
        )


def policy_summary(session) -> int:
    return clearance.check(session, load_policy("commercial"), "everything").members


def policy_cleared(session) -> int:
    return sum(1 for _ in clearance.members(session, load_policy("commercial"), "everything", cleared=True))


def flagged_first_page(session) -> int:
    return len(list_images(session, flagged=True, limit=100))


def chain(session) -> int:
    """`audit verify` without the replay: the chain walked and every hash recomputed."""
    return audit.verify(session).events


def replayed(session) -> int:
    """The replay `audit verify` runs: every event, then every table compared; result: findings."""
    return len(replay(session).findings)


OPERATIONS = [
    ("SELECT count(*) FROM image (baseline)", count_images),
    ("licence_report(session)", report),
    ('list_images(state="pending", limit=100)', pending_first_page),
    ("images list --state pending --json: every pending image, streamed", pending_all),
    ("list_images(flagged=True, limit=100)", flagged_first_page),
    ("policy check commercial --styleset everything --summary", policy_summary),
    ("policy check: every cleared member streamed (what an index build reads)", policy_cleared),
    ("audit verify: the chain alone (events)", chain),
    ("audit verify: the replay against the tables (findings)", replayed),
]


def best_of(catalogue: Catalogue, operation, repeat: int = 3) -> tuple[float, int]:
    """One warm-up, then the best of `repeat` runs, each in a fresh session."""
    times = []
    for attempt in range(repeat + 1):
        with catalogue.read() as session:
            started = time.perf_counter()
            result = operation(session)
            if attempt:
                times.append(time.perf_counter() - started)
    return min(times), result


def statements_of(catalogue: Catalogue, operation) -> list[tuple[str, object]]:
    """The SQL statements (with parameters) one run of `operation` sends to the database."""
    seen: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _executemany):
        if statement.lstrip().upper().startswith("SELECT"):  # not the BEGIN the catalogue emits
            seen.append((statement, parameters))

    sa.event.listen(catalogue.engine, "before_cursor_execute", capture)
    try:
        with catalogue.read() as session:
            operation(session)
    finally:
        sa.event.remove(catalogue.engine, "before_cursor_execute", capture)
    return seen


def explain(catalogue: Catalogue, operation) -> list[str]:
    """Each statement of `operation`, timed alone (executed and fetched), with its query plan."""
    is_sqlite = catalogue.engine.dialect.name == "sqlite"
    lines = []
    with catalogue.engine.connect() as connection:
        for statement, parameters in statements_of(catalogue, operation):
            started = time.perf_counter()
            connection.exec_driver_sql(statement, parameters).fetchall()
            seconds = time.perf_counter() - started
            prefix = "EXPLAIN QUERY PLAN " if is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
            plan = connection.exec_driver_sql(prefix + statement, parameters).all()
            lines += [
                "",
                f"{seconds:.3f} s to execute and fetch every row: {' '.join(statement.split())}",
                f"    parameters: {parameters}",
            ]
            if is_sqlite:
                depth = {0: -1}
                for node, parent, _unused, detail in plan:
                    depth[node] = depth.get(parent, -1) + 1
                    lines.append("    " + "  " * depth[node] + detail)
            else:
                lines += ["    " + row[0] for row in plan]
    return lines


# ---------------------------------------------------------------- the run


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--rows", type=int, default=1_000_000, help="images in the catalogue")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the databases (SQLite file, PostgreSQL db)")
    parser.add_argument(
        "--explain", action="store_true", help="plans for every operation, not only slow ones"
    )
    args = parser.parse_args()
    if args.rows < 1:
        parser.error("--rows: at least 1")
    args.out.mkdir(parents=True, exist_ok=True)
    table = [
        f"| database | operation | result | best of 3, s | x count(*) | < {TARGET_SECONDS:.0f} s |",
        "|---|---|---:|---:|---:|---|",
    ]
    plans: list[str] = []
    for database in databases(args.out, args.rows, args.skip_postgres):
        print(f"building the {database.name} catalogue of {args.rows} images ...", flush=True)
        catalogue = database.create(args.rows)
        try:
            baseline = None
            for name, operation in OPERATIONS:
                seconds, result = best_of(catalogue, operation)
                baseline = baseline or seconds
                verdict = "yes" if seconds < TARGET_SECONDS else "**no**"
                table.append(
                    f"| {database.name} | `{name}` | {result} | {seconds:.3f} | {seconds / baseline:.1f}x "
                    f"| {verdict} |"
                )
                if args.explain or seconds >= TARGET_SECONDS:
                    plans += ["", f"### {database.name}: `{name}` ({seconds:.2f} s)"]
                    plans += explain(catalogue, operation)
        finally:
            catalogue.dispose()
            if not args.keep:
                database.drop()
    print(f"\nCatalogue of {args.rows} images, {os.cpu_count()} CPU cores: each operation against count(*)\n")
    print("\n".join(table))
    if plans:
        print("\n## Statements and plans" + "\n".join(plans))


if __name__ == "__main__":
    main()
