"""The real-world regression corpus (tests/data/real_world/): shaped like the Debian packages
stylevault was first tried on, ingested twice on the suite's database."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from governance.ingest import ingest
from governance.models import AuditEvent, Source
from tests.ingest_checks import actions, assert_reconciled, count, image_of

CORPUS = Path(__file__).parent / "data" / "real_world"


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A copy of the corpus, so the sources' paths are the test's own."""
    root = tmp_path / "real_world"
    shutil.copytree(CORPUS, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


def manifest_rows(root: Path) -> list[dict]:
    with open(root / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_place_and_licence_statement_of_the_corpus_is_kept_and_a_second_ingest_changes_nothing(
    catalogue, team, corpus
):
    rows = manifest_rows(corpus)
    first = ingest(catalogue, "sam", corpus, manifest=corpus / "manifest.csv", progress=False)
    assert first.offered == len(rows)
    with catalogue.read() as session:
        kept = session.execute(sa.select(Source.path, Source.url, Source.licence_raw)).all()
    # Every row that was not refused is a source of its own, with the statement as written.
    by_path = {Path(path).relative_to(corpus).as_posix(): (url, raw) for path, url, raw in kept}
    refused = first.rejected
    assert len(by_path) == len(rows) - refused
    for row in rows:
        if row["path"] in by_path:
            assert by_path[row["path"]] == (row["source_url"], row["licence"])

    # The stamp shipped three times under one URL: one image, three sources, the conflict flagged.
    _, lic, sources = image_of(catalogue, (corpus / "stamps/animals/penguin-0.png").read_bytes())
    assert [s.licence_raw for s in sources] == ["GPL-3+ or CC-BY-SA-3.0", "GPL-3+ or CC-BY-SA-3.0", "GPL-2+"]
    assert {s.url for s in sources} == {"https://sources.debian.org/src/tuxpaint-stamps/penguin"}
    assert lic.status == "conflict"
    # The circle icon in two themes: one image, two sources under two URLs.
    _, _, circles = image_of(catalogue, (corpus / "icons/legacy/circle.png").read_bytes())
    assert len(circles) == 2

    events = count(catalogue, AuditEvent)
    second = ingest(catalogue, "sam", corpus, manifest=corpus / "manifest.csv", progress=False)
    assert_reconciled(catalogue, second, (len(rows), 0, len(rows) - refused, refused), sources=0)
    assert actions(catalogue)[events:] == ["ingest.start"] + ["ingest.reject"] * refused + ["ingest.finish"]
