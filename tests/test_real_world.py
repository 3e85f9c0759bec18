"""The real-world regression corpus (tests/data/real_world/): shaped like the Debian packages
stylevault was first tried on, ingested twice on the suite's database."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from stylevault.governance.catalogue.models import AuditEvent, Licence, Source
from stylevault.governance.ingest.run import ingest
from stylevault.governance.rules import licences
from tests.ingest_checks import actions, assert_reconciled, count, image_of

CORPUS = Path(__file__).parent / "data" / "real_world"
BLANK = "8000000000000000"  # the phash of a picture of one colour (white art laid on white)


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

    # Every SVG is catalogued; the badge's references to a local file and a URL are recorded, unfetched.
    assert first.rejected == 0
    for svg in sorted((corpus / "clipart").glob("*.svg")):
        image, _, _ = image_of(catalogue, svg.read_bytes())
        assert image.format == "SVG" and image.phash != BLANK, svg.name
    _, _, [badge] = image_of(catalogue, (corpus / "clipart/tux-badge.svg").read_bytes())
    assert badge.raw_metadata["file"]["external_references"] == [
        "file:///etc/passwd",
        "https://example.com/tux.png",
    ]
    # The white symbolic icons on a transparent ground: each seen, none a near-duplicate of another.
    icons = sorted((corpus / "icons/symbolic").glob("*.png"))
    hashes = [image_of(catalogue, icon.read_bytes())[0].phash for icon in icons]
    assert BLANK not in hashes and len(set(hashes)) == len(icons)

    events = count(catalogue, AuditEvent)
    second = ingest(catalogue, "sam", corpus, manifest=corpus / "manifest.csv", progress=False)
    assert_reconciled(catalogue, second, (len(rows), 0, len(rows) - refused, refused), sources=0)
    assert actions(catalogue)[events:] == ["ingest.start"] + ["ingest.reject"] * refused + ["ingest.finish"]


# Each licence spelling of the corpus, as Debian copyright files write it, and what the alias table
# and the rules read it as: an SPDX expression, or None with a fragment of the reason.
SPELLINGS = {
    "GPL-2+": "GPL-2.0-or-later",
    "GPL-3+": "GPL-3.0-or-later",
    "LGPL-2.1+": "LGPL-2.1-or-later",
    "LGPL-3+": "LGPL-3.0-or-later",
    "Expat": "MIT",
    "CC-BY-SA-3.0+": "CC-BY-SA-3.0+",
    "Apache 2.0": "Apache-2.0",
    "The MIT License": "MIT",
    "Creative Commons Zero": "CC0-1.0",
    "CC0": "CC0-1.0",
    "public domain": "LicenseRef-PublicDomain",
    "CC BY-SA 3.0 IGO": "CC-BY-SA-3.0-IGO",
    "Creative Commons Attribution 4.0 International Public License": "CC-BY-4.0",
    "Attribution-ShareAlike 4.0 International": "CC-BY-SA-4.0",
    "GPL-3+ or CC-BY-SA-3.0": "GPL-3.0-or-later OR CC-BY-SA-3.0",
    "CC BY 4.0 OR MIT": "CC-BY-4.0 OR MIT",
    "CC-BY-SA-4.0": "CC-BY-SA-4.0",
    "GPL-2": (None, '"version only" in some copyright files and "or any later version" in others'),
    "GPL-2+ with Font exception": (None, "no SPDX id, licence name or alias 'Font exception'"),
}


def test_the_corpus_licence_spellings_map_as_the_alias_table_says(catalogue, team, corpus):
    assert {row["licence"] for row in manifest_rows(corpus)} == set(SPELLINGS)
    ingest(catalogue, "sam", corpus, manifest=corpus / "manifest.csv", progress=False)
    with catalogue.read() as session:
        table = licences.alias_table(session)
        kept = session.execute(
            sa.select(Source.image_id, Source.licence_raw, Licence.spdx, Licence.status, Licence.note).join(
                Licence, Licence.image_id == Source.image_id
            )
        ).all()
    for raw, expected in SPELLINGS.items():
        read = licences.normalise(raw, table)
        if isinstance(expected, str):
            assert (read.spdx, read.status) == (expected, "normalised"), raw
            assert read.via, raw
        else:
            assert (read.spdx, read.status) == (None, "unrecognised"), raw
            assert expected[1] in read.note, raw
    # An image whose sources all say one thing carries what it reads as, or the reason it is unread.
    statements: dict[int, set] = {}
    for image_id, raw, *_ in kept:
        statements.setdefault(image_id, set()).add(raw)
    for image_id, raw, spdx, status, note in kept:
        if len(statements[image_id]) > 1:
            continue
        expected = SPELLINGS[raw]
        if isinstance(expected, str):
            assert (spdx, status) == (expected, "normalised"), raw
        else:
            assert (spdx, status) == (None, "unrecognised") and expected[1] in note, raw
