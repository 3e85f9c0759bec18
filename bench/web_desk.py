"""The web review desk's pages on a catalogue of a million images, each against the catalogue function
it shows (the same rows without HTTP, sessions and HTML), timed in the same run.

    python bench/web_desk.py [--rows 1000000] [--skip-postgres] [--keep | --reuse]

The catalogue is the one `bench/catalogue_scale.py` bulk-loads (same rows, same style set
`everything`). Pages are requested through the real app (FastAPI's test client: routing, session
cookie, CSRF, Jinja rendering) by a signed-in legal reviewer; each runs once to warm up, then three
times, and the best time is reported. Approving runs on three different pending images. Not a test:
it prints a table and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalogue_scale import LEGAL, databases  # noqa: E402

from stylevault.governance.catalogue.db import Catalogue  # noqa: E402
from stylevault.governance.catalogue.models import Image, Licence  # noqa: E402
from stylevault.governance.curation import clearance
from stylevault.governance.legal import reports  # noqa: E402
from stylevault.governance.rules.policy_files import load_policy  # noqa: E402
from stylevault.governance.views import images

PASSWORD = "bench password, long enough"
CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def signed_in_client(catalogue):
    from fastapi.testclient import TestClient

    from stylevault.governance.web import passwords
    from stylevault.governance.web.app import create_app
    from stylevault.governance.web.config import WebConfig

    with catalogue.write() as session:
        passwords.set_password(session, "admin", LEGAL, PASSWORD)
    client = TestClient(create_app(catalogue, WebConfig(secret_key=os.urandom(32))), follow_redirects=False)
    token = CSRF.search(client.get("/signin").text).group(1)
    response = client.post("/signin", data={"csrf": token, "name": LEGAL, "password": PASSWORD})
    assert response.status_code == 303, response.text
    return client


def best_of(operation, repeat: int = 3) -> float:
    times = []
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        operation()
        if attempt:
            times.append(time.perf_counter() - started)
    return min(times)


def page(client, url: str):
    def get():
        response = client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"

    return get


def in_session(catalogue, function):
    def run():
        with catalogue.read() as session:
            function(session)

    return run


def approvable(catalogue, count: int) -> list[int]:
    i, lic = Image.__table__, Licence.__table__
    with catalogue.read() as session:
        return list(
            session.execute(
                sa.select(i.c.id)
                .select_from(i.join(lic, lic.c.image_id == i.c.id))
                .where(i.c.state == "pending", lic.c.status.in_(("normalised", "verified")))
                .order_by(i.c.id)
                .limit(count)
            ).scalars()
        )


def first_rows(**filters):
    return lambda session: images.list_images(session, limit=51, **filters)


def rows_after(image_id: int):
    def run(session):
        query = images.listing_query(state="pending").where(Image.__table__.c.id > image_id)
        return session.execute(query.limit(51)).all()

    return run


def pages(middle: int, commercial) -> list[tuple]:
    """(what, the page, the catalogue function that gives its rows)."""
    return [
        ("review queue, first 50 pending", "/queue", first_rows(state="pending")),
        (
            "review queue, a page half-way (keyset)",
            f"/queue?state=pending&after={middle}",
            rows_after(middle),
        ),
        (
            "queue: unknown or conflicting licences",
            "/queue?state=pending&flagged=1",
            first_rows(state="pending", flagged=True),
        ),
        (
            "queue: a collection and a licence",
            "/queue?state=pending&collection=collection-03&licence=CC-BY-4.0",
            first_rows(state="pending", collection="collection-03", spdx="CC-BY-4.0"),
        ),
        ("one image's review page", f"/images/{middle}", lambda s: images.show(s, s.get(Image, middle))),
        ("licence report", "/reports/licences", reports.licence_report),
        (
            "policy check of every member, first 200 exclusions",
            "/stylesets/everything/check?policy=commercial&version=1",
            lambda s: clearance.check(s, commercial, "everything@1"),
        ),
        ("style set page (grid of 60)", "/stylesets/everything", None),
        ("audit log, newest 200", "/audit", None),
    ]


def approver(client, ids):
    """Open the next approvable image's page and approve it: what a reviewer does per image."""

    def approve():
        image_id = next(ids)
        token = CSRF.search(client.get(f"/images/{image_id}").text).group(1)
        response = client.post(f"/images/{image_id}/approve", data={"csrf": token, "q": "state=pending"})
        assert response.status_code == 303, response.text

    return approve


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="use the catalogues an earlier --keep run left")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = [
        "| database | page | best of 3, s | the function alone, s | × function |",
        "|---|---|---:|---:|---:|",
    ]
    commercial = load_policy("commercial")
    for database in databases(args.out, args.rows, args.skip_postgres):
        if args.reuse:
            catalogue = Catalogue.open(database.url, database.store)
        else:
            print(f"building the {database.name} catalogue of {args.rows} images ...", flush=True)
            catalogue = database.create(args.rows)
        try:
            client = signed_in_client(catalogue)
            rows = pages(args.rows // 2, commercial)
            for name, url, function in rows:
                seconds = best_of(page(client, url))
                if function is None:
                    table.append(f"| {database.name} | {name} | {seconds:.3f} | | |")
                    continue
                alone = best_of(in_session(catalogue, function))
                ratio = seconds / max(alone, 1e-4)
                table.append(f"| {database.name} | {name} | {seconds:.3f} | {alone:.3f} | {ratio:.1f} |")
            approve = approver(client, iter(approvable(catalogue, 4)))
            seconds = best_of(approve)
            table.append(f"| {database.name} | approve one image (page + POST + next) | {seconds:.3f} | | |")
        finally:
            catalogue.dispose()
            if not (args.keep or args.reuse):
                database.drop()
    print(f"\nWeb desk on a catalogue of {args.rows} images, {os.cpu_count()} CPU cores\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
