"""Ingest: every file offered ends catalogued, a recognised duplicate, or rejected with a reason.

DESIGN.md rule 1 (nothing is lost, counts reconcile) and rule 9 (bad input gets a one-line error and
leaves the catalogue as it was). Every test builds real files in tmp_path and checks the counts three
ways: the returned summary, the ingest_run row, and the image/source/rejection rows themselves.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.engine import make_url

from stylevault.governance.catalogue import actors, audit, store
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import AuditEvent, IngestRun, Licence, Rejection, Source
from stylevault.governance.catalogue.models import Image as ImageRow
from stylevault.governance.errors import Refused
from stylevault.governance.ingest import run as ingest_module
from stylevault.governance.ingest.batches import BatchWriter
from stylevault.governance.ingest.examine import examine
from stylevault.governance.ingest.run import ingest
from tests.factories import encode, picture, write, write_csv
from tests.ingest_checks import (
    actions,
    assert_reconciled,
    bilevel_png,
    count,
    has_image,
    image_of,
    jpeg,
    png,
    reasons,
    rejections,
    rights_packet,
    run_row,
    sha,
    source_at,
    totals,
)

DMI_PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"
CC_BY = "https://creativecommons.org/licenses/by/4.0/"
CC_BY_NC = "http://creativecommons.org/licenses/by-nc/4.0/"


# ---------------------------------------------------------------- one folder, files of every kind


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _animation(fmt: str) -> bytes:
    frames = [Image.new("RGB", (24, 20), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:])


def gif_with_a_cut_second_frame() -> bytes:
    """The first frame whole, the second cut in its image descriptor: only counting frames sees it."""
    data = _animation("GIF")
    second = data.index(b"\x2c", data.index(b"\x2c") + 10)  # the second image separator
    return data[: second + 5]


def tiff_with_a_broken_second_page() -> bytes:
    """A two-page TIFF whose second page names a compression code that does not exist."""
    data = bytearray(_animation("TIFF"))
    assert data[:4] == b"II*\x00"  # little-endian; the first page's IFD offset follows
    (first,) = struct.unpack_from("<I", data, 4)
    (entries,) = struct.unpack_from("<H", data, first)
    (second,) = struct.unpack_from("<I", data, first + 2 + 12 * entries)
    (entries,) = struct.unpack_from("<H", data, second)
    for n in range(entries):
        (tag,) = struct.unpack_from("<H", data, second + 2 + 12 * n)
        if tag == 259:  # Compression, a SHORT held in the entry itself
            struct.pack_into("<H", data, second + 2 + 12 * n + 8, 41729)
    return bytes(data)


def jpeg_with_malformed_exif() -> bytes:
    """Orientation 6, and an ASCII value under FreeOffsets (a LONG tag): Pillow cannot write it back."""
    ifd = struct.pack(">HHHI", 2, 0x0112, 3, 1) + b"\x00\x06\x00\x00"
    ifd += struct.pack(">HHI", 0x0120, 2, 4) + b"Ann\x00" + b"\x00" * 4
    return jpeg(10, exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08" + ifd)


BAD_FILES = [
    # name, bytes, reason, words the detail must contain (in any case)
    ("empty.png", lambda: b"", "empty-file", "empty"),
    ("cut-in-pixels.png", lambda: _truncated(png(1)), "decode-error", "truncated"),
    ("lost-its-end.png", lambda: png(2)[:-12], "decode-error", "truncated"),
    ("cut-zlib-checksum.png", lambda: png(3)[:-18], "decode-error", "truncated"),
    ("cut-in-scan.jpg", lambda: _truncated(jpeg(4)), "decode-error", "truncated"),
    ("lost-eoi.jpg", lambda: jpeg(5)[:-2], "decode-error", "truncated"),
    ("notes.jpg", lambda: b"these are my notes, not a picture\n", "not-an-image", "identify"),
    ("document.pdf", lambda: encode(picture(6), "PDF"), "not-an-image", "identify"),
    ("portable.ppm", lambda: encode(picture(7), "PPM"), "unsupported-format", "PPM"),
    ("favicon.ico", lambda: encode(picture(8), "ICO"), "unsupported-format", "ICO"),
    ("targa.tga", lambda: encode(picture(9), "TGA"), "unsupported-format", "TGA"),
    # Malformed beyond the first frame: Pillow fails with struct.error, KeyError, IndexError...
    ("cut-second-frame.gif", gif_with_a_cut_second_frame, "decode-error", "cannot decode"),
    ("broken-second-page.tif", tiff_with_a_broken_second_page, "decode-error", "cannot decode"),
    ("malformed-exif.jpg", jpeg_with_malformed_exif, "decode-error", "upright"),
]


@pytest.mark.parametrize(("name", "make", "reason", "detail"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_file_is_rejected_with_its_reason(catalogue, team, tmp_path, name, make, reason, detail):
    root = tmp_path / "in"
    good = write(root / "good.png", png(100))
    bad = make()
    write(root / name, bad)

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (2, 1, 0, 1))
    assert summary.rejections == {reason: 1}
    rejected = rejections(catalogue, summary.run_id)
    assert set(rejected) == {name}
    assert rejected[name].reason == reason
    assert detail.lower() in rejected[name].detail.lower()
    assert "\n" not in rejected[name].detail
    # The bytes were read, so the rejection names them; they are not an image, and got no thumbnail.
    assert rejected[name].sha256 == sha(bad)
    assert not has_image(catalogue, bad)
    assert not store.thumbnail_path(catalogue.store, sha(bad)).exists()
    assert source_at(catalogue, good).path == str(good)


def test_bad_files_and_good_ones_in_one_folder_all_reconcile(catalogue, team, tmp_path):
    root = tmp_path / "in"
    for name, make, _, _ in BAD_FILES:
        write(root / "bad" / name, make())
    goods = [write(root / f"good-{n}.png", png(200 + n)) for n in range(3)]
    goods.append(write(root / "good-wide.jpg", jpeg(203, (640, 240))))

    summary = ingest(catalogue, "sam", root, batch_size=4, progress=False)

    assert_reconciled(catalogue, summary, (len(BAD_FILES) + 4, 4, 0, len(BAD_FILES)))
    assert reasons(catalogue, summary.run_id) == {f"bad/{name}": reason for name, _, reason, _ in BAD_FILES}
    assert {source_at(catalogue, path).path for path in goods} == {str(path) for path in goods}
    image, _, _ = image_of(catalogue, goods[-1].read_bytes())
    with Image.open(store.thumbnail_path(catalogue.store, image.sha256)) as thumb:
        assert thumb.size == (256, 96)


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "PNG", "WEBP"])
def test_a_whole_animation_is_catalogued_with_its_frames_and_a_first_frame_thumbnail(
    catalogue, team, tmp_path, fmt
):
    data = _animation(fmt)
    write(tmp_path / "in" / f"animated.{fmt.lower()}", data)
    summary = ingest(catalogue, "sam", tmp_path / "in", progress=False)
    assert_reconciled(catalogue, summary, (1, 1, 0, 0))
    image, _, (source,) = image_of(catalogue, data)
    assert (image.format, image.width, image.height) == (fmt, 24, 20)
    assert source.raw_metadata["file"]["frames"] == 3
    with Image.open(store.thumbnail_path(catalogue.store, image.sha256)) as thumb:
        red, green, blue = thumb.getpixel((12, 10))
    assert red > 220 and green < 40 and blue < 40


def test_a_whole_png_with_trailing_bytes_is_still_an_image(catalogue, team, tmp_path):
    # The truncation check must not refuse a whole file that has something after IEND.
    data = png(11) + b"trailing bytes after IEND"
    write(tmp_path / "in" / "trailing.png", data)
    summary = ingest(catalogue, "sam", tmp_path / "in", progress=False)
    assert_reconciled(catalogue, summary, (1, 1, 0, 0))
    assert has_image(catalogue, data)


# ---------------------------------------------------------------- decompression bombs


def test_decompression_bombs_are_rejected_in_the_warning_and_the_error_band(catalogue, team, tmp_path):
    limit = Image.MAX_IMAGE_PIXELS
    root = tmp_path / "in"
    warning_band = bilevel_png(10_000, 10_000)  # 1e8 pixels: over the limit, under twice it
    error_band = bilevel_png(20_000, 20_000)  # 4e8 pixels: over twice the limit
    assert limit < 10_000 * 10_000 <= 2 * limit < 20_000 * 20_000
    write(root / "bomb-warning.png", warning_band)
    write(root / "bomb-error.png", error_band)
    write(root / "fine.png", png(12))

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (3, 1, 0, 2))
    rejected = rejections(catalogue, summary.run_id)
    assert {path: row.reason for path, row in rejected.items()} == {
        "bomb-warning.png": "decompression-bomb",
        "bomb-error.png": "decompression-bomb",
    }
    assert "100000000 pixels" in rejected["bomb-warning.png"].detail
    assert "400000000 pixels" in rejected["bomb-error.png"].detail
    for data in (warning_band, error_band):
        assert not store.thumbnail_path(catalogue.store, sha(data)).exists()


def test_the_bomb_limit_is_pillows_own(catalogue, team, tmp_path, monkeypatch):
    # With the limit lowered, ordinary pictures fall in the two bands and are refused the same way.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    root = tmp_path / "in"
    write(root / "warning-band.jpg", jpeg(13, (40, 40)))  # 1600 pixels: between 1000 and 2000
    write(root / "error-band.png", png(14, (64, 64)))  # 4096 pixels: over 2000
    write(root / "small.png", png(15, (30, 30)))  # 900 pixels

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (3, 1, 0, 2))
    assert reasons(catalogue, summary.run_id) == {
        "warning-band.jpg": "decompression-bomb",
        "error-band.png": "decompression-bomb",
    }


# ---------------------------------------------------------------- modes and orientation


def test_cmyk_jpeg_and_16_bit_grey_png_are_catalogued_with_faithful_thumbnails(catalogue, team, tmp_path):
    root = tmp_path / "in"
    cmyk = encode(Image.new("RGB", (40, 30), (200, 30, 30)).convert("CMYK"), "JPEG", quality=95)
    # Left half mid-grey (32768 of 65535), right half quarter-grey (16384): neither may clip.
    levels = np.full((30, 40), 32768, dtype=np.uint16)
    levels[:, 20:] = 16384
    grey16 = encode(Image.fromarray(levels))
    gradient = encode(Image.fromarray(np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (8, 1))))
    write(root / "cmyk.jpg", cmyk)
    write(root / "grey16.png", grey16)
    write(root / "gradient16.png", gradient)

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (3, 3, 0, 0))
    image, _, _ = image_of(catalogue, cmyk)
    assert (image.format, image.mode, image.width, image.height) == ("JPEG", "CMYK", 40, 30)
    with Image.open(store.thumbnail_path(catalogue.store, image.sha256)) as thumb:
        red, green, blue = thumb.getpixel((20, 15))
    assert abs(red - 200) <= 8 and green <= 45 and blue <= 45

    image, _, _ = image_of(catalogue, grey16)
    assert image.format == "PNG" and image.mode.startswith("I;16")
    with Image.open(store.thumbnail_path(catalogue.store, image.sha256)) as thumb:
        left, right = thumb.getpixel((8, 15)), thumb.getpixel((32, 15))
    assert all(abs(value - 128) <= 3 for value in left), left
    assert all(abs(value - 64) <= 3 for value in right), right

    image, _, _ = image_of(catalogue, gradient)
    with Image.open(store.thumbnail_path(catalogue.store, image.sha256)) as thumb:
        row = [thumb.getpixel((x, 4))[0] for x in range(64)]
    assert row[0] <= 4 and row[-1] >= 251
    assert abs(row[32] - 130) <= 6  # 32/63 of the way up
    assert len(set(row)) > 40  # a ramp, not a few clipped steps


def test_exif_orientation_6_records_the_upright_size(catalogue, team, tmp_path):
    # Stored 48 wide, 40 high, with a red band along its top; shown rotated 90° clockwise,
    # it is 40 wide, 48 high, with the band down its right edge.
    stored = Image.new("RGB", (48, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 48, 8))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    path = write(tmp_path / "in" / "rotated.jpg", data)

    summary = ingest(catalogue, "sam", tmp_path / "in", progress=False)

    assert_reconciled(catalogue, summary, (1, 1, 0, 0))
    image, _, sources = image_of(catalogue, data)
    assert (image.width, image.height) == (40, 48)
    assert sources[0].raw_metadata["file"]["orientation"] == 6
    assert source_at(catalogue, path).image_id == image.id
    with Image.open(store.thumbnail_path(catalogue.store, image.sha256)) as thumb:
        assert thumb.size == (40, 48)
        right_edge, left_edge = thumb.getpixel((37, 24)), thumb.getpixel((2, 24))
    assert right_edge[0] > 200 and right_edge[2] < 60
    assert left_edge[2] > 200 and left_edge[0] < 60


# ---------------------------------------------------------------- file names


def test_non_utf8_and_very_long_file_names(catalogue, team, tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    broot = os.fsencode(root)
    latin1 = png(20)
    with open(os.path.join(broot, b"caf\xe9.png"), "wb") as handle:
        handle.write(latin1)
    with open(os.path.join(broot, b"\xff\xfe-notes.jpg"), "wb") as handle:
        handle.write(b"not a picture")
    long_ascii_name = "x" * 246 + ".png"
    long_utf8_name = "é" * 123 + ".png"
    assert len(long_ascii_name.encode()) == 250 and len(long_utf8_name.encode()) == 250
    long_ascii = write(root / long_ascii_name, png(21))
    long_utf8 = write(root / long_utf8_name, png(22))
    write(root / ("z" * 250), b"")

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (5, 2, 0, 3))
    # A name that is not UTF-8 is rejected before it is read: stored escaped, it would name no file.
    assert not has_image(catalogue, latin1)
    assert reasons(catalogue, summary.run_id) == {
        "caf\\xe9.png": "unreadable-name",
        "\\xff\\xfe-notes.jpg": "unreadable-name",
        "z" * 250: "empty-file",
    }
    assert source_at(catalogue, long_ascii).path.endswith("/" + long_ascii_name)
    assert source_at(catalogue, long_utf8).path.endswith("/" + long_utf8_name)


# ---------------------------------------------------------------- symlinks and special files


def test_symlinks_are_followed_only_to_files_inside_the_root(catalogue, team, tmp_path):
    root, outside = tmp_path / "in", tmp_path / "outside"
    inside = write(root / "a.png", png(30))
    nested = write(root / "sub" / "c.png", png(31))
    secret = png(32)
    write(outside / "secret.png", secret)
    (root / "alias.png").symlink_to(inside)  # to a file inside: followed
    (root / "relative-alias.png").symlink_to("sub/c.png")
    (root / "leak.png").symlink_to(outside / "secret.png")  # to a file outside
    (root / "leakdir").symlink_to(outside, target_is_directory=True)  # to a folder outside
    (root / "up.png").symlink_to("../outside/secret.png")
    (root / "broken.png").symlink_to(root / "nothing-here.png")
    (root / "loop-a").symlink_to("loop-b")
    (root / "loop-b").symlink_to("loop-a")
    (root / "subdir-link").symlink_to(root / "sub", target_is_directory=True)
    os.mkfifo(root / "pipe.png")  # reading it would block: it must be refused unread

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (12, 2, 2, 8))
    assert reasons(catalogue, summary.run_id) == {
        "leak.png": "outside-root",
        "leakdir": "outside-root",
        "up.png": "outside-root",
        "broken.png": "missing-file",
        "loop-a": "missing-file",
        "loop-b": "missing-file",
        "subdir-link": "not-a-file",
        "pipe.png": "not-a-file",
    }
    assert not has_image(catalogue, secret)
    assert not store.thumbnail_path(catalogue.store, sha(secret)).exists()
    for target, link in ((inside, "alias.png"), (nested, "relative-alias.png")):
        _, _, sources = image_of(catalogue, target.read_bytes())
        assert sorted(s.path for s in sources) == sorted([str(target), str(root / link)])


def test_a_symlink_loop_in_a_manifest_is_a_missing_file(catalogue, team, tmp_path):
    root = tmp_path / "in"
    write(root / "a.png", png(33))
    (root / "loop").symlink_to("loop")
    manifest = write_csv(tmp_path / "m.csv", [{"path": "a.png"}, {"path": "loop"}])
    summary = ingest(catalogue, "sam", root, manifest=manifest, progress=False)
    assert_reconciled(catalogue, summary, (2, 1, 0, 1))
    assert reasons(catalogue, summary.run_id) == {"loop": "missing-file"}


def test_one_file_can_be_ingested_on_its_own(catalogue, team, tmp_path):
    path = write(tmp_path / "in" / "only.png", png(35))
    write(tmp_path / "in" / "not-offered.png", png(36))
    summary = ingest(catalogue, "sam", path, progress=False)
    assert_reconciled(catalogue, summary, (1, 1, 0, 0))
    assert source_at(catalogue, path).path == str(path)


def test_the_catalogues_own_files_are_never_offered(catalogue, team, tmp_path):
    # Ingesting the folder that holds the SQLite file and the store offers only the pictures.
    write(tmp_path / "pictures" / "a.png", png(34))
    summary = ingest(catalogue, "sam", tmp_path, progress=False)
    assert_reconciled(catalogue, summary, (1, 1, 0, 0))


# ---------------------------------------------------------------- a crash, and a rerun


def test_a_crash_mid_ingest_leaves_whole_batches_and_a_rerun_completes(
    catalogue, team, tmp_path, monkeypatch
):
    root = tmp_path / "in"
    files = [write(root / f"{n:02d}.png", png(100 + n)) for n in range(10)]
    write(root / "01-bad.png", b"")  # sorts second: the first batch holds a rejection
    calls = {"n": 0}
    original = BatchWriter._rejections

    def crash_in_third_batch(self, session, failed, changes):
        original(self, session, failed, changes)  # images, sources and licences are written by now
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk on fire")

    monkeypatch.setattr(BatchWriter, "_rejections", crash_in_third_batch)

    with pytest.raises(RuntimeError, match="disk on fire"):
        ingest(catalogue, "sam", root, batch_size=3, progress=False)

    # Two whole batches (6 files: 5 images, 1 rejection) are in; the third left nothing behind.
    with catalogue.read() as session:
        (run,) = session.scalars(sa.select(IngestRun)).all()
    assert (run.status, run.offered, run.catalogued, run.duplicates, run.rejected) == ("failed", 6, 5, 0, 1)
    assert run.finished_at is not None
    assert totals(catalogue)["images"] == 5
    assert totals(catalogue)["sources"] == 5
    assert totals(catalogue)["licences"] == 5
    assert totals(catalogue)["rejections"] == 1
    with catalogue.read() as session:
        assert audit.verify(session).ok
    assert actions(catalogue)[-1] == "ingest.fail"
    assert actions(catalogue).count("image.ingest") == 5

    monkeypatch.setattr(BatchWriter, "_rejections", original)
    rerun = ingest(catalogue, "sam", root, batch_size=3, progress=False)

    assert_reconciled(catalogue, rerun, (11, 5, 5, 1), sources=5)
    assert count(catalogue, ImageRow) == 10
    for path in files:
        assert source_at(catalogue, path).image_id is not None


# ---------------------------------------------------------------- workers


@pytest.fixture
def other_catalogue(tmp_path, migrated_template, postgres):
    """A second fresh catalogue with the same actors, to compare two ingests of the same files."""
    if postgres is not None:
        url = postgres.create()
        cat = Catalogue.open(url, tmp_path / "other-store")
        cat.upgrade()
    else:
        target = tmp_path / "other.db"
        shutil.copyfile(make_url(migrated_template).database, target)
        cat = Catalogue.open(f"sqlite:///{target}", tmp_path / "other-store")
    with cat.write() as session:
        actors.add(session, None, "admin", ["admin"])
        actors.add(session, "admin", "sam", ["steward"])
    yield cat
    cat.dispose()
    if postgres is not None:
        postgres.drop(url)


def _everything(catalogue: Catalogue) -> dict:
    """The catalogue's content, without the times that differ between two runs."""
    with catalogue.read() as session:
        images = session.execute(sa.select(ImageRow.__table__).order_by(ImageRow.id)).mappings().all()
        sources = session.execute(sa.select(Source.__table__).order_by(Source.id)).mappings().all()
        licences = session.execute(sa.select(Licence.__table__).order_by(Licence.image_id)).mappings().all()
        rejected = session.execute(sa.select(Rejection.__table__).order_by(Rejection.id)).mappings().all()
        runs = session.execute(sa.select(IngestRun.__table__).order_by(IngestRun.id)).mappings().all()
        events = session.execute(sa.select(AuditEvent.__table__).order_by(AuditEvent.id)).mappings().all()

    def without(rows, *names):
        return [{k: v for k, v in row.items() if k not in names} for row in rows]

    return {
        "images": without(images, "first_seen_at"),
        "sources": without(sources, "retrieved_at"),
        "licences": without(licences, "updated_at"),
        "rejections": without(rejected, "at"),
        "runs": without(runs, "started_at", "finished_at"),
        # From the ingest on: the actors before it differ between the two catalogues.
        "events": [
            (e["action"], e["target_type"], e["target_id"], e["before"], e["after"])
            for e in events[[e["action"] for e in events].index("ingest.start") :]
        ],
    }


def test_two_worker_processes_give_exactly_the_catalogue_one_gives(
    catalogue, other_catalogue, team, tmp_path
):
    root = tmp_path / "in"
    for n in range(30):
        write(root / f"img-{n:02d}.png", png(300 + n))
    for n in range(4):
        write(root / "jpegs" / f"{n}.jpg", encode(picture(400 + n), "JPEG", xmp=rights_packet()))
    write(root / "jpegs" / "copy-of-0.jpg", encode(picture(400), "JPEG", xmp=rights_packet()))
    write(root / "bad" / "empty.png", b"")
    write(root / "bad" / "cut.png", _truncated(png(500)))
    write(root / "bad" / "notes.jpg", b"notes")
    offered = 30 + 5 + 3

    one = ingest(other_catalogue, "sam", root, workers=1, batch_size=7, progress=False)
    two = ingest(catalogue, "sam", root, workers=2, batch_size=7, progress=False)

    assert_reconciled(catalogue, two, (offered, 34, 1, 3))
    assert_reconciled(other_catalogue, one, (offered, 34, 1, 3))
    assert two.as_dict() | {"seconds": 0} == one.as_dict() | {"seconds": 0}
    assert _everything(catalogue) == _everything(other_catalogue)


def _die_on_poison(folder, relative, store_root):
    """Stands in for examine in a forked worker: the file named poison.png kills its process."""
    if Path(relative).name == "poison.png":
        os.kill(os.getpid(), signal.SIGKILL)
    return examine(folder, relative, store_root)


def test_a_killed_worker_fails_the_run_with_one_line_and_a_rerun_completes_it(
    cli, catalogue, team, tmp_path, monkeypatch
):
    # A worker process killed mid-run (the OOM killer, a kill -9) ended ingest in a BrokenProcessPool
    # traceback. Now: one line naming the file, exit 2, the run recorded as failed, the batches before
    # it committed, and the same ingest again completes the job.
    root = tmp_path / "in"
    for n in range(40):
        write(root / f"img-{n:02d}.png", png(700 + n))
    write(root / "poison.png", png(799))
    monkeypatch.setattr(ingest_module, "examine", _die_on_poison)

    result = cli("ingest", root, "--workers", "2", actor="sam")

    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "an ingest worker died" in line and "run the same ingest again" in line
    with catalogue.read() as session:
        (run,) = session.scalars(sa.select(IngestRun)).all()
    assert run.status == "failed" and run.offered == run.catalogued + run.duplicates + run.rejected
    monkeypatch.undo()
    again = ingest(catalogue, "sam", root, workers=2, progress=False)
    assert count(catalogue, ImageRow) == 41
    assert again.catalogued == 41 - run.catalogued


# ---------------------------------------------------------------- the command line


def test_cli_ingest_prints_a_json_summary_that_matches_the_run(cli, catalogue, team, tmp_path):
    root = tmp_path / "in"
    write(root / "a.png", png(600))
    write(root / "b.png", png(600))
    write(root / "c.jpg", b"text")

    result = cli("ingest", root, "--json", "--source", "museum", actor="sam")

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert {k: summary[k] for k in ("offered", "catalogued", "duplicates", "rejected")} == {
        "offered": 3,
        "catalogued": 1,
        "duplicates": 1,
        "rejected": 1,
    }
    assert summary["rejections"] == {"not-an-image": 1}
    assert summary["licences"] == {"missing": 1}
    run = run_row(catalogue, summary["run_id"])
    assert (run.offered, run.catalogued, run.duplicates, run.rejected) == (3, 1, 1, 1)
    assert run.source == "museum"
    assert summary["root"] == run.root == str(root)


def test_cli_ingest_prints_one_reconciled_line_without_json(cli, team, tmp_path):
    write(tmp_path / "in" / "a.png", png(601))
    write(tmp_path / "in" / "b.png", b"")
    result = cli("ingest", tmp_path / "in", actor="sam")
    assert result.exit_code == 0, result.output
    line = result.stdout.strip()
    assert "\n" not in line
    assert "2 offered = 1 catalogued + 0 duplicates + 1 rejected (1 empty-file)" in line
    assert "1 licences flagged for legal" in line
    # The line says where to look next: the rejected files and the flagged licences.
    assert line.endswith(
        "; see `stylevault images rejections --run 1`; see `stylevault images list --flagged`"
    )


def _one_line_error(result, code: int, *names: str) -> str:
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    message = result.stderr.strip()
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("stylevault: ")
    for name in names:
        assert name in message
    return message


def test_cli_manifest_without_path_column_exits_2_and_writes_nothing(cli, catalogue, team, tmp_path):
    write(tmp_path / "in" / "a.png", png(602))
    manifest = write_csv(tmp_path / "m.csv", [{"filename": "a.png"}])
    before = totals(catalogue)
    result = cli("ingest", tmp_path / "in", "--manifest", manifest, "--json", actor="sam")
    _one_line_error(result, 2, str(manifest), "'path'", "'filename'")
    assert totals(catalogue) == before


@pytest.mark.parametrize(
    ("content", "suffix", "words"),
    [
        (b'{"path": "a.png"}\n{"path": \n', ".jsonl", ["line 2", "not valid JSON"]),
        (b'["a.png"]\n', ".jsonl", ["line 1", "JSON object"]),
        (b"path,licence\n\xe9.png,MIT\n", ".csv", ["not UTF-8"]),
        (b"", ".csv", ["empty manifest"]),
        (b"path\na.png\n", ".txt", ["must be .csv or .jsonl"]),
    ],
    ids=["bad-json", "not-an-object", "not-utf8", "empty", "wrong-suffix"],
)
def test_cli_unreadable_manifests_exit_2_naming_file_and_line(
    cli, catalogue, team, tmp_path, content, suffix, words
):
    write(tmp_path / "in" / "a.png", png(603))
    manifest = write(tmp_path / f"manifest{suffix}", content)
    before = totals(catalogue)
    result = cli("ingest", tmp_path / "in", "--manifest", manifest, actor="sam")
    _one_line_error(result, 2, str(manifest), *words)
    assert totals(catalogue) == before


def test_cli_bad_usage_exits_2_and_refusals_exit_1(cli, catalogue, team, tmp_path):
    write(tmp_path / "in" / "a.png", png(604))
    manifest = write_csv(tmp_path / "m.csv", [{"path": "a.png"}])
    before = totals(catalogue)

    missing = tmp_path / "nowhere"
    _one_line_error(cli("ingest", missing, actor="sam"), 2, str(missing), "no such file")
    a_file = tmp_path / "in" / "a.png"
    _one_line_error(cli("ingest", a_file, "--manifest", manifest, actor="sam"), 2, str(a_file))
    _one_line_error(cli("ingest", tmp_path / "in"), 2, "--as")
    _one_line_error(cli("ingest", tmp_path / "in", actor="val"), 1, "'val'", "steward")
    _one_line_error(cli("ingest", tmp_path / "in", actor="nobody"), 1, "'nobody'")

    assert totals(catalogue) == before
    with pytest.raises(Refused):
        ingest(catalogue, "lee", tmp_path / "in", progress=False)
    assert totals(catalogue) == before


def test_cli_rejections_still_exit_0(cli, catalogue, team, tmp_path):
    # Rejected files are an outcome, not a failure: the run completes and says what happened.
    write(tmp_path / "in" / "bad.png", b"")
    result = cli("ingest", tmp_path / "in", "--json", actor="sam")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["offered"], summary["rejected"]) == (1, 1)
    assert run_row(catalogue, summary["run_id"]).status == "completed"
