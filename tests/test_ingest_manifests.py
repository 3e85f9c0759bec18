"""Ingest from manifests (CSV and JSON Lines), re-ingest, and the rights files carry."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image

from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import AuditEvent, Source
from stylevault.governance.catalogue.models import Image as ImageRow
from stylevault.governance.errors import BadInput
from stylevault.governance.ingest.run import ingest
from tests.factories import alt, encode, picture, write, write_csv, write_jsonl, xmp_packet
from tests.ingest_checks import (
    actions,
    assert_reconciled,
    count,
    has_image,
    image_of,
    jpeg,
    png,
    png_with_xmp,
    rejections,
    rights_packet,
    source_at,
    totals,
)

DMI_PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"
CC_BY = "https://creativecommons.org/licenses/by/4.0/"
CC_BY_NC = "http://creativecommons.org/licenses/by-nc/4.0/"


# ---------------------------------------------------------------- manifests


def _manifest_case(root: Path, tmp_path: Path):
    """Files, and manifest rows in order with what each must become."""
    xmp = xmp_packet(
        {"xmpRights:WebStatement": "https://example.com/terms"},
        "<dc:creator><rdf:Seq><rdf:li>Embedded Creator</rdf:li></rdf:Seq></dc:creator>"
        + alt("dc:title", "Embedded Title")
        + alt("dc:rights", "(c) Embedded Rights")
        + f'<cc:license rdf:resource="{CC_BY}"/>',
    )
    files = {
        "a.png": png_with_xmp(40, xmp),
        "b.png": png(41),
        "c.png": png(42),
        "d.png": png(43),
        "e.png": png(44),
    }
    for name, data in files.items():
        write(root / name, data)
    (root / "sub").mkdir()
    write(tmp_path / "outside.png", png(45))
    rows = [
        (
            {
                "path": "a.png",
                "source_url": "https://example.com/a",
                "collection": "spring",
                "creator": "Manifest Creator",
                "title": "Manifest Title",
                "licence": "CC-BY-4.0",
                "attribution": "Photo: Manifest",
                "evidence": "https://example.com/a/licence",
                "shoot": "morning",
                "Notes": "keep me",
            },
            None,
        ),
        ({"path": "./a.png"}, ("duplicate-row", "repeats the path of line {first}")),
        ({"path": "../outside.png"}, ("outside-root", "path leaves the ingest root")),
        ({"path": str(root / "b.png")}, ("outside-root", "path leaves the ingest root")),
        ({"path": "missing.png"}, ("missing-file", "no such file")),
        ({"path": "b.png", "opt_out": "maybe"}, ("bad-row", "opt_out: expected true or false, got 'maybe'")),
        ({"path": "c.png", "licence_expires": "2024-02-30"}, ("bad-row", "licence_expires")),
        ({"path": ""}, ("bad-row", "empty 'path'")),
        ({"path": "sub"}, ("not-a-file", "not a regular file")),
        (
            {"path": "d.png", "opt_out": "yes", "licence_expires": "2030-01-31", "licence": "CC BY-NC 4.0"},
            None,
        ),
        ({"path": "e.png", "licence": "CC-BY-4.0 AND ("}, None),
    ]
    return files, rows


@pytest.mark.parametrize(("fmt", "first_line"), [("csv", 2), ("jsonl", 1)])
def test_manifest_rows_each_end_catalogued_or_rejected_with_their_line(
    catalogue, team, tmp_path, fmt, first_line
):
    root = tmp_path / "in"
    files, rows = _manifest_case(root, tmp_path)
    manifest = (write_csv if fmt == "csv" else write_jsonl)(tmp_path / f"m.{fmt}", [row for row, _ in rows])

    summary = ingest(catalogue, "sam", root, manifest=manifest, progress=False)

    refused = [(n, outcome) for n, (_, outcome) in enumerate(rows) if outcome]
    assert_reconciled(catalogue, summary, (len(rows), 3, 0, len(refused)))
    rejected = sorted(rejections(catalogue, summary.run_id).values(), key=lambda r: r.id)
    assert len(rejected) == len(refused)
    for row, (n, (reason, detail)) in zip(rejected, refused, strict=True):
        line = first_line + n
        assert row.reason == reason
        assert row.detail.startswith(f"line {line}: ")
        assert detail.format(first=first_line) in row.detail
    assert rejected[0].path == "./a.png"
    assert rejected[6].path == f"(line {first_line + 7})"
    # Rows that were refused leave their files out, even files that exist.
    assert not has_image(catalogue, files["b.png"]) and not has_image(catalogue, files["c.png"])

    # The manifest's values win over the file's own, and both are kept as found.
    image, lic, (source,) = image_of(catalogue, files["a.png"])
    assert source.locator == source.url == "https://example.com/a"
    assert source.path == str(root / "a.png")
    assert (source.creator, source.title, source.attribution) == (
        "Manifest Creator",
        "Manifest Title",
        "Photo: Manifest",
    )
    assert source.collection == "spring"
    assert source.evidence == "https://example.com/a/licence"
    assert source.licence_raw == "CC-BY-4.0"
    manifest_raw = source.raw_metadata["manifest"]
    assert manifest_raw["line"] == first_line
    assert manifest_raw["creator"] == "Manifest Creator"
    assert (manifest_raw["shoot"], manifest_raw["Notes"]) == ("morning", "keep me")
    embedded = source.raw_metadata["embedded"]["xmp"]
    assert embedded["dc:creator"] == "Embedded Creator"
    assert embedded["dc:title"] == "Embedded Title"
    assert embedded["dc:rights"] == "(c) Embedded Rights"
    assert embedded["cc:license"] == CC_BY
    # The file's CC BY licence agrees with the manifest's: no conflict.
    assert (lic.spdx, lic.status, lic.raw, lic.note) == ("CC-BY-4.0", "normalised", "CC-BY-4.0", None)
    assert lic.attribution == "Photo: Manifest"

    _, lic, (source,) = image_of(catalogue, files["d.png"])
    assert source.opt_out is True and lic.opt_out is True
    assert source.licence_expires == lic.expires_on == date(2030, 1, 31)
    assert (lic.spdx, lic.status) == ("CC-BY-NC-4.0", "normalised")

    _, lic, (source,) = image_of(catalogue, files["e.png"])
    assert source.licence_raw == lic.raw == "CC-BY-4.0 AND ("
    assert (lic.spdx, lic.status) == (None, "unrecognised")
    assert summary.licences == {"normalised": 2, "unrecognised": 1}


def test_jsonl_values_that_are_not_text_are_read_and_kept(catalogue, team, tmp_path):
    root = tmp_path / "in"
    data = write(root / "a.png", png(46)).read_bytes()
    manifest = write_jsonl(
        tmp_path / "m.jsonl",
        [{"path": "a.png", "opt_out": True, "licence": None, "tags": ["x", "y"], "score": 0.5, "n": None}],
    )
    summary = ingest(catalogue, "sam", root, manifest=manifest, progress=False)
    assert_reconciled(catalogue, summary, (1, 1, 0, 0))
    _, lic, (source,) = image_of(catalogue, data)
    assert source.opt_out is True and lic.opt_out is True
    assert lic.status == "missing" and source.licence_raw is None
    assert source.raw_metadata["manifest"] == {
        "line": 1,
        "path": "a.png",
        "opt_out": True,
        "licence": None,
        "tags": ["x", "y"],
        "score": 0.5,
        "n": None,
    }


def test_values_no_catalogue_can_store_reject_their_row_on_every_backend(catalogue, team, tmp_path):
    # PostgreSQL refuses NUL in text and NaN in JSON; no database takes a lone surrogate as text.
    # Each such row is a bad-row rejection naming its line; the rows around it still go in.
    root = tmp_path / "in"
    root.mkdir()
    files = {name: write(root / name, png(46 + n)).read_bytes() for n, name in enumerate(["a.png", "b.png"])}
    with open(os.path.join(os.fsencode(root), b"caf\xe9.png"), "wb") as handle:
        handle.write(latin1 := png(48))
    lines = [
        r'{"path": "a.png", "creator": "Ann\u0000Artist"}',
        r'{"path": "a.png", "title": "\udce9t\u00e9"}',
        r'{"path": "\ud800.png"}',
        r'{"path": "nul\u0000.png"}',
        r'{"path": "a.png", "score": NaN}',
        r'{"path": "a.png", "sizes": [1, 1e400]}',
        r'{"path": "b.png", "note": "a NUL\u0000 in an unknown column is kept as JSON"}',
        r'{"path": "caf\udce9.png", "creator": "Bea"}',
    ]
    manifest = write(tmp_path / "m.jsonl", "\n".join(lines).encode() + b"\n")

    summary = ingest(catalogue, "sam", root, manifest=manifest, progress=False)

    assert_reconciled(catalogue, summary, (8, 1, 0, 7))
    rejected = sorted(rejections(catalogue, summary.run_id).values(), key=lambda r: r.id)
    assert [(r.path, r.reason) for r in rejected] == [(f"(line {n})", "bad-row") for n in range(1, 7)] + [
        ("caf\\xe9.png", "unreadable-name")
    ]
    assert [r.detail for r in rejected] == [
        "line 1: creator: holds a NUL character",
        "line 2: title: not valid Unicode (a lone surrogate)",
        "line 3: path: not valid Unicode (a lone surrogate)",
        "line 4: path: holds a NUL character",
        "line 5: a value is nan, which JSON cannot hold",
        "line 6: a value is inf, which JSON cannot hold",
        "line 8: its name is not UTF-8 (byte 0xe9); rename it to ingest it",
    ]
    assert not has_image(catalogue, files["a.png"])
    _, _, (source,) = image_of(catalogue, files["b.png"])
    assert source.raw_metadata["manifest"]["note"] == "a NUL\x00 in an unknown column is kept as JSON"
    # A JSON escape for an undecodable byte names a non-UTF-8 file, as Python spells it; such a name
    # is rejected (stored escaped, it would name no file).
    assert not has_image(catalogue, latin1)


MALFORMED_LICENCES = [
    "CC-BY-4.0 AND (",
    "MIT OR",
    "GPL-9.0",
    "CC BY 9.9",
    "CC BY-NC",
    "Creative Commons",
    "free for non-commercial use",
    "https://example.com/licence",
    "creativecommons.org/licenses/by/9.0/",
    "Licence: MIT",
]


def test_malformed_licence_strings_stay_raw_and_are_never_guessed(catalogue, team, tmp_path):
    root = tmp_path / "in"
    rows, files = [], {}
    for n, text in enumerate([*MALFORMED_LICENCES, "CC BY 4.0"]):
        files[text] = write(root / f"{n:02d}.png", png(50 + n)).read_bytes()
        rows.append({"path": f"{n:02d}.png", "licence": text})
    manifest = write_csv(tmp_path / "m.csv", rows)

    summary = ingest(catalogue, "sam", root, manifest=manifest, progress=False)

    assert_reconciled(catalogue, summary, (len(rows), len(rows), 0, 0))
    for text in MALFORMED_LICENCES:
        _, lic, (source,) = image_of(catalogue, files[text])
        assert source.licence_raw == lic.raw == text
        assert (lic.spdx, lic.status) == (None, "unrecognised"), text
        assert lic.note
    _, lic, _ = image_of(catalogue, files["CC BY 4.0"])
    assert (lic.raw, lic.spdx, lic.status) == ("CC BY 4.0", "CC-BY-4.0", "normalised")
    assert summary.licences == {"unrecognised": len(MALFORMED_LICENCES), "normalised": 1}


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_manifest_without_a_path_column_is_refused_and_nothing_is_written(catalogue, team, tmp_path, fmt):
    root = tmp_path / "in"
    write(root / "a.png", png(60))
    rows = [{"file": "a.png", "licence": "CC0-1.0"}]
    manifest = (write_csv if fmt == "csv" else write_jsonl)(tmp_path / f"m.{fmt}", rows)
    before = totals(catalogue)

    with pytest.raises(BadInput, match="no 'path' column") as refused:
        ingest(catalogue, "sam", root, manifest=manifest, progress=False)

    assert str(manifest) in str(refused.value)
    assert totals(catalogue) == before
    assert before["runs"] == 0


def test_the_same_bytes_under_two_names_are_one_image_with_two_sources(catalogue, team, tmp_path):
    root = tmp_path / "in"
    data = png(61)
    first, second = write(root / "first.png", data), write(root / "copies" / "second.png", data)

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (2, 1, 1, 0))
    image, _, sources = image_of(catalogue, data)
    assert image.ingest_run_id == summary.run_id
    assert sorted(s.path for s in sources) == sorted([str(first), str(second)])
    assert count(catalogue, ImageRow) == 1


def test_the_same_bytes_in_two_batches_are_one_image_too(catalogue, team, tmp_path):
    root = tmp_path / "in"
    data = png(62)
    for name in ("a.png", "b.png", "c.png"):
        write(root / name, data)
    summary = ingest(catalogue, "sam", root, batch_size=1, progress=False)
    assert_reconciled(catalogue, summary, (3, 1, 2, 0))
    _, _, sources = image_of(catalogue, data)
    assert len(sources) == 3
    assert actions(catalogue).count("source.add") == 2
    assert summary.licences == {"missing": 1}  # one image, however many batches touched it


@pytest.mark.parametrize("batch_size", [1, 2, 200])
def test_two_places_under_one_url_are_two_sources_however_the_batches_fall(
    catalogue, team, tmp_path, batch_size
):
    # A package ships one picture three times under one source URL, with different licences (as
    # Debian's copyright files do): one image, three sources, each with its own statement, and the
    # disagreement flagged. Before sources were per place, the last row overwrote the other two.
    root = tmp_path / "in"
    data = png(63)
    rows = []
    for name, licence in (
        ("a", "GPL-3.0-or-later OR CC-BY-SA-3.0"),
        ("b", "GPL-3.0-or-later OR CC-BY-SA-3.0"),
        ("c", "GPL-2.0-or-later"),
    ):
        write(root / f"{name}.png", data)
        rows.append(
            {"path": f"{name}.png", "source_url": "https://example.com/1", "title": name, "licence": licence}
        )
    manifest = write_csv(tmp_path / "m.csv", rows)

    summary = ingest(catalogue, "sam", root, manifest=manifest, batch_size=batch_size, progress=False)

    assert_reconciled(catalogue, summary, (3, 1, 2, 0), sources=3)
    _, lic, sources = image_of(catalogue, data)
    assert [(s.path, s.url, s.title, s.licence_raw) for s in sources] == [
        (str(root / f"{row['title']}.png"), "https://example.com/1", row["title"], row["licence"])
        for row in rows
    ]
    assert (lic.spdx, lic.status) == (None, "conflict")
    assert "GPL-2.0-or-later" in lic.note and "GPL-3.0-or-later OR CC-BY-SA-3.0" in lic.note
    # Every place is on record: the image's ingest names the first, a source.add each other.
    assert actions(catalogue).count("image.ingest") == 1
    assert actions(catalogue).count("source.add") == 2
    assert summary.licences == {"conflict": 1}

    # A second identical ingest changes nothing but recording the run.
    events = count(catalogue, AuditEvent)
    again = ingest(catalogue, "sam", root, manifest=manifest, batch_size=batch_size, progress=False)
    assert_reconciled(catalogue, again, (3, 0, 3, 0), sources=0)
    assert actions(catalogue)[events:] == ["ingest.start", "ingest.finish"]


# ---------------------------------------------------------------- re-ingest


def _source_rows(catalogue: Catalogue) -> list[tuple]:
    with catalogue.read() as session:
        return [tuple(row) for row in session.execute(sa.select(Source.__table__).order_by(Source.id))]


def test_reingesting_a_folder_changes_nothing_and_counts_every_file_as_a_duplicate(catalogue, team, tmp_path):
    root = tmp_path / "in"
    for n in range(4):
        write(root / f"{n}.png", png(70 + n))
    write(root / "twin.png", png(70))
    write(root / "broken.jpg", b"\xff\xd8\xff")

    first = ingest(catalogue, "sam", root, progress=False)
    assert_reconciled(catalogue, first, (6, 4, 1, 1))
    sources_after_first = _source_rows(catalogue)
    events_after_first = count(catalogue, AuditEvent)

    second = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, second, (6, 0, 5, 1), sources=0)
    assert count(catalogue, ImageRow) == 4
    assert _source_rows(catalogue) == sources_after_first
    # The second run recorded only its start, its rejection and its finish: no source or licence moved.
    assert actions(catalogue)[events_after_first:] == ["ingest.start", "ingest.reject", "ingest.finish"]
    assert second.licences == {}


def test_reingesting_with_a_changed_manifest_merges_sources(catalogue, team, tmp_path):
    root = tmp_path / "in"
    data = write(root / "a.png", png(80)).read_bytes()
    write(root / "b.png", png(81))
    rows = [{"path": "a.png", "title": "Old"}, {"path": "b.png", "licence": "CC0-1.0"}]
    first = ingest(catalogue, "sam", root, manifest=write_csv(tmp_path / "m1.csv", rows), progress=False)
    assert_reconciled(catalogue, first, (2, 2, 0, 0))
    (before,) = image_of(catalogue, data)[2]

    rows[0] = {"path": "a.png", "title": "New", "licence": "MIT"}
    second = ingest(catalogue, "sam", root, manifest=write_csv(tmp_path / "m2.csv", rows), progress=False)

    assert_reconciled(catalogue, second, (2, 0, 2, 0), sources=1)
    _, lic, (after,) = image_of(catalogue, data)
    assert after.id == before.id  # merged into the same source, not a second one
    assert (after.title, after.licence_raw, after.ingest_run_id) == ("New", "MIT", second.run_id)
    assert (lic.spdx, lic.status) == ("MIT", "normalised")
    assert count(catalogue, Source) == 2
    assert actions(catalogue)[-4:] == ["ingest.start", "source.update", "licence.derive", "ingest.finish"]


# ---------------------------------------------------------------- embedded rights


def test_exif_artist_and_copyright_fill_creator_and_attribution(catalogue, team, tmp_path):
    exif = Image.Exif()
    exif[0x013B] = "Ann Artist"
    exif[0x8298] = "(c) 2021 Ann Artist"
    data = jpeg(90, exif=exif.tobytes())
    write(tmp_path / "in" / "exif.jpg", data)

    summary = ingest(catalogue, "sam", tmp_path / "in", progress=False)

    assert_reconciled(catalogue, summary, (1, 1, 0, 0))
    _, lic, (source,) = image_of(catalogue, data)
    assert source.raw_metadata["embedded"]["exif"] == {
        "Artist": "Ann Artist",
        "Copyright": "(c) 2021 Ann Artist",
    }
    assert (source.creator, source.attribution) == ("Ann Artist", "(c) 2021 Ann Artist")
    assert lic.attribution == "(c) 2021 Ann Artist"
    assert (lic.status, lic.raw, source.opt_out) == ("missing", None, False)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_xmp_rights_and_the_plus_data_mining_reservation(catalogue, team, tmp_path, fmt):
    packet = rights_packet()
    data = encode(picture(91), "JPEG", xmp=packet) if fmt == "JPEG" else png_with_xmp(91, packet)
    write(tmp_path / "in" / f"rights.{fmt.lower()}", data)

    summary = ingest(catalogue, "sam", tmp_path / "in", progress=False)

    assert_reconciled(catalogue, summary, (1, 1, 0, 0))
    _, lic, (source,) = image_of(catalogue, data)
    assert source.raw_metadata["embedded"]["xmp"] == {
        "dc:creator": "Jo Bloggs; Sam Smith",
        "dc:rights": "(c) 2022 Jo Bloggs",
        "xmpRights:UsageTerms": "Licensed under CC BY 4.0",
        "xmpRights:WebStatement": "https://example.com/rights",
        "cc:license": CC_BY,
        "plus:DataMining": DMI_PROHIBITED,
    }
    assert (source.creator, source.attribution) == ("Jo Bloggs; Sam Smith", "(c) 2022 Jo Bloggs")
    # The CC licence URI is the most specific statement; the prose and the web page are kept raw.
    assert source.licence_raw == CC_BY
    assert (lic.raw, lic.spdx, lic.status, lic.note) == (CC_BY, "CC-BY-4.0", "normalised", None)
    # The PLUS reservation against AI/ML training is an opt-out, and recorded as found.
    assert source.opt_out is True and lic.opt_out is True
    assert source.raw_metadata["data_mining"] == DMI_PROHIBITED
    assert lic.data_mining == DMI_PROHIBITED


@pytest.mark.parametrize(
    ("value", "reserved"),
    [
        (DMI_PROHIBITED, True),
        ("https://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-GENAIMLTRAINING", True),
        ("DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING", True),
        ("http://ns.useplus.org/ldf/vocab/dmi-prohibited-seeconstraint", True),
        ("http://ns.useplus.org/ldf/vocab/DMI-ALLOWED", False),
        ("https://ns.useplus.org/ldf/vocab/DMI-UNSPECIFIED", False),
    ],
)
def test_a_plus_data_mining_prohibition_is_an_opt_out_however_it_is_spelt(
    catalogue, team, tmp_path, value, reserved
):
    data = encode(picture(96), "JPEG", xmp=xmp_packet({"plus:DataMining": value}))
    write(tmp_path / "in" / "one.jpg", data)
    summary = ingest(catalogue, "sam", tmp_path / "in", progress=False)
    assert_reconciled(catalogue, summary, (1, 1, 0, 0))
    _, lic, (source,) = image_of(catalogue, data)
    assert (source.opt_out, lic.opt_out) == (reserved, reserved)
    assert source.raw_metadata["data_mining"] == lic.data_mining == value


@pytest.mark.parametrize(
    ("xmp_attributes", "raw", "spdx", "status"),
    [
        ({"xmpRights:UsageTerms": "CC0 1.0 Universal"}, "CC0 1.0 Universal", "CC0-1.0", "normalised"),
        ({"xmpRights:WebStatement": CC_BY_NC}, CC_BY_NC, "CC-BY-NC-4.0", "normalised"),
        ({"xmpRights:UsageTerms": "Ask the studio"}, "Ask the studio", None, "unrecognised"),
        ({"plus:DataMining": "http://ns.useplus.org/ldf/vocab/DMI-ALLOWED"}, None, None, "missing"),
    ],
    ids=["usage-terms", "web-statement", "usage-terms-unknown", "mining-allowed"],
)
def test_each_embedded_licence_field_is_read(catalogue, team, tmp_path, xmp_attributes, raw, spdx, status):
    data = encode(picture(92), "JPEG", xmp=xmp_packet(xmp_attributes))
    write(tmp_path / "in" / "one.jpg", data)
    summary = ingest(catalogue, "sam", tmp_path / "in", progress=False)
    assert_reconciled(catalogue, summary, (1, 1, 0, 0))
    _, lic, (source,) = image_of(catalogue, data)
    assert (lic.raw, lic.spdx, lic.status) == (raw, spdx, status)
    assert source.licence_raw == raw
    assert lic.opt_out is False
    assert lic.data_mining == xmp_attributes.get("plus:DataMining")


def test_an_embedded_licence_that_disagrees_with_the_manifest_is_a_conflict(catalogue, team, tmp_path):
    root = tmp_path / "in"
    packet = xmp_packet(elements=f'<cc:license rdf:resource="{CC_BY_NC}"/>')
    data = write(root / "a.jpg", encode(picture(93), "JPEG", xmp=packet)).read_bytes()
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"path": "a.jpg", "licence": "CC BY 4.0"}])

    summary = ingest(catalogue, "sam", root, manifest=manifest, progress=False)

    assert_reconciled(catalogue, summary, (1, 1, 0, 0))
    _, lic, (source,) = image_of(catalogue, data)
    assert source.licence_raw == lic.raw == "CC BY 4.0"
    assert source.raw_metadata["embedded"]["xmp"]["cc:license"] == CC_BY_NC
    assert (lic.spdx, lic.status) == (None, "conflict")
    assert "CC-BY-4.0" in lic.note and "CC-BY-NC-4.0" in lic.note
    assert summary.licences == {"conflict": 1}


def test_the_default_licence_and_source_apply_where_a_row_states_none(catalogue, team, tmp_path):
    root = tmp_path / "in"
    plain, stated = write(root / "plain.png", png(94)), write(root / "stated.png", png(95))
    manifest = write_csv(
        tmp_path / "m.csv", [{"path": "plain.png"}, {"path": "stated.png", "licence": "MIT"}]
    )
    summary = ingest(
        catalogue, "sam", root, manifest=manifest, source="museum", licence="CC0-1.0", progress=False
    )
    assert_reconciled(catalogue, summary, (2, 2, 0, 0))
    assert source_at(catalogue, plain).licence_raw == "CC0-1.0"
    assert source_at(catalogue, stated).licence_raw == "MIT"
    assert {source_at(catalogue, p).collection for p in (plain, stated)} == {"museum"}
