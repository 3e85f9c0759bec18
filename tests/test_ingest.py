"""Ingest: every file offered ends catalogued, a recognised duplicate, or rejected with a reason.

DESIGN.md rule 1 (nothing is lost, counts reconcile) and rule 9 (bad input gets a one-line error and
leaves the catalogue as it was). Every test builds real files in tmp_path and checks the counts three
ways: the returned summary, the ingest_run row, and the image/source/rejection rows themselves.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import zlib
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image, PngImagePlugin
from sqlalchemy.engine import make_url

from governance import actors, audit, store
from governance.batches import BatchWriter
from governance.catalogue import Catalogue
from governance.errors import BadInput, Refused
from governance.ingest import ingest
from governance.models import AuditEvent, IngestRun, Licence, Rejection, Source
from governance.models import Image as ImageRow
from tests.factories import alt, encode, picture, write, write_csv, write_jsonl, xmp_packet

DMI_PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"
CC_BY = "https://creativecommons.org/licenses/by/4.0/"
CC_BY_NC = "http://creativecommons.org/licenses/by-nc/4.0/"


# ---------------------------------------------------------------- helpers


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def png(seed: int, size: tuple[int, int] = (48, 40)) -> bytes:
    return encode(picture(seed, size))


def jpeg(seed: int, size: tuple[int, int] = (48, 40), **params) -> bytes:
    return encode(picture(seed, size), "JPEG", **params)


def png_with_xmp(seed: int, packet: bytes) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet.decode("utf-8"))
    return encode(picture(seed), "PNG", pnginfo=info)


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def bilevel_png(width: int, height: int) -> bytes:
    """A whole, valid 1-bit PNG of any declared size, a few kB on disk: a decompression bomb."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    pixels = b"".join(packer.compress(row * 1000) for _ in range(height // 1000))
    pixels += packer.compress(row * (height % 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def run_row(catalogue: Catalogue, run_id: int) -> IngestRun:
    with catalogue.read() as session:
        return session.get(IngestRun, run_id)


def count(catalogue: Catalogue, model, *where) -> int:
    with catalogue.read() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def totals(catalogue: Catalogue) -> dict[str, int]:
    tables = {"images": ImageRow, "sources": Source, "licences": Licence, "rejections": Rejection}
    tables |= {"runs": IngestRun, "events": AuditEvent}
    return {name: count(catalogue, model) for name, model in tables.items()}


def assert_reconciled(
    catalogue: Catalogue,
    summary,
    expected: tuple[int, int, int, int],
    *,
    sources: int | None = None,
    status: str = "completed",
) -> None:
    """(offered, catalogued, duplicates, rejected) as summary, run row and rows all say; audit verifies.

    `sources`: source rows this run added or updated; by default one per file that was not rejected.
    """
    offered, catalogued, duplicates, rejected = expected
    assert offered == catalogued + duplicates + rejected, "the test's own expectation must reconcile"
    assert (summary.offered, summary.catalogued, summary.duplicates, summary.rejected) == expected
    run = run_row(catalogue, summary.run_id)
    assert (run.offered, run.catalogued, run.duplicates, run.rejected) == expected
    assert run.status == status
    assert run.finished_at is not None
    assert count(catalogue, ImageRow, ImageRow.ingest_run_id == run.id) == catalogued
    assert count(catalogue, Rejection, Rejection.ingest_run_id == run.id) == rejected
    expected_sources = catalogued + duplicates if sources is None else sources
    assert count(catalogue, Source, Source.ingest_run_id == run.id) == expected_sources
    assert sum(summary.rejections.values()) == rejected
    assert count(catalogue, Licence) == count(catalogue, ImageRow)  # every image has its licence row
    with catalogue.read() as session:
        assert audit.verify(session).ok
    assert_thumbnails(catalogue, run.id)


def assert_thumbnails(catalogue: Catalogue, run_id: int) -> None:
    """Each image this run catalogued has an upright JPEG thumbnail of at most 256 px in the store."""
    with catalogue.read() as session:
        images = session.scalars(sa.select(ImageRow).where(ImageRow.ingest_run_id == run_id)).all()
    for image in images:
        path = store.thumbnail_path(catalogue.store, image.sha256)
        assert path.is_file(), f"no thumbnail for image {image.id}"
        with Image.open(path) as thumb:
            assert thumb.format == "JPEG"
            assert thumb.mode == "RGB"
            assert max(thumb.size) <= 256
            if max(image.width, image.height) <= 256:
                assert thumb.size == (image.width, image.height)
            else:
                assert abs(thumb.width / thumb.height - image.width / image.height) < 0.05


def rejections(catalogue: Catalogue, run_id: int) -> dict[str, Rejection]:
    with catalogue.read() as session:
        rows = session.scalars(sa.select(Rejection).where(Rejection.ingest_run_id == run_id)).all()
    by_path = {row.path: row for row in rows}
    assert len(by_path) == len(rows), "two rejections under one path"
    return by_path


def reasons(catalogue: Catalogue, run_id: int) -> dict[str, str]:
    return {path: row.reason for path, row in rejections(catalogue, run_id).items()}


def source_at(catalogue: Catalogue, path: Path) -> Source:
    with catalogue.read() as session:
        return session.scalars(sa.select(Source).where(Source.path == str(path))).one()


def image_of(catalogue: Catalogue, data: bytes) -> tuple[ImageRow, Licence, list[Source]]:
    with catalogue.read() as session:
        image = session.scalars(sa.select(ImageRow).where(ImageRow.sha256 == sha(data))).one()
        sources = session.scalars(sa.select(Source).where(Source.image_id == image.id).order_by(Source.id))
        return image, session.get(Licence, image.id), list(sources)


def has_image(catalogue: Catalogue, data: bytes) -> bool:
    return count(catalogue, ImageRow, ImageRow.sha256 == sha(data)) == 1


def actions(catalogue: Catalogue) -> list[str]:
    with catalogue.read() as session:
        return list(session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


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

    assert_reconciled(catalogue, summary, (5, 3, 0, 2))
    # Undecodable bytes are written as \x escapes: readable, storable, and the rest of the name kept.
    _, _, sources = image_of(catalogue, latin1)
    assert sources[0].path == str(root) + "/caf\\xe9.png"
    assert sources[0].locator == sources[0].path
    assert reasons(catalogue, summary.run_id) == {
        "\\xff\\xfe-notes.jpg": "not-an-image",
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

    assert_reconciled(catalogue, summary, (8, 2, 0, 6))
    rejected = sorted(rejections(catalogue, summary.run_id).values(), key=lambda r: r.id)
    assert [(r.path, r.reason) for r in rejected] == [(f"(line {n})", "bad-row") for n in range(1, 7)]
    assert [r.detail for r in rejected] == [
        "line 1: creator: holds a NUL character",
        "line 2: title: not valid Unicode (a lone surrogate)",
        "line 3: path: not valid Unicode (a lone surrogate)",
        "line 4: path: holds a NUL character",
        "line 5: a value is nan, which JSON cannot hold",
        "line 6: a value is inf, which JSON cannot hold",
    ]
    assert not has_image(catalogue, files["a.png"])
    _, _, (source,) = image_of(catalogue, files["b.png"])
    assert source.raw_metadata["manifest"]["note"] == "a NUL\x00 in an unknown column is kept as JSON"
    # A JSON escape for an undecodable byte names a non-UTF-8 file, as Python spells it.
    _, _, (source,) = image_of(catalogue, latin1)
    assert (source.path, source.creator) == (str(root) + "/caf\\xe9.png", "Bea")


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
def test_one_source_listed_twice_ends_the_same_however_the_batches_fall(
    catalogue, team, tmp_path, batch_size
):
    # Three rows give the same source URL for the same bytes: one image, one source, the last row's.
    root = tmp_path / "in"
    data = png(63)
    rows = []
    for name, licence in (("a", "MIT"), ("b", "CC0-1.0"), ("c", "CC-BY-4.0")):
        write(root / f"{name}.png", data)
        rows.append(
            {"path": f"{name}.png", "source_url": "https://example.com/1", "title": name, "licence": licence}
        )
    manifest = write_csv(tmp_path / "m.csv", rows)

    summary = ingest(catalogue, "sam", root, manifest=manifest, batch_size=batch_size, progress=False)

    assert_reconciled(catalogue, summary, (3, 1, 2, 0), sources=1)
    _, lic, (source,) = image_of(catalogue, data)
    assert (source.path, source.title, source.licence_raw) == (str(root / "c.png"), "c", "CC-BY-4.0")
    assert (lic.spdx, lic.status) == ("CC-BY-4.0", "normalised")
    assert summary.licences == {"normalised": 1}


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


def _rights_packet() -> bytes:
    return xmp_packet(
        {"plus:DataMining": DMI_PROHIBITED, "xmpRights:WebStatement": "https://example.com/rights"},
        "<dc:creator><rdf:Seq><rdf:li>Jo Bloggs</rdf:li><rdf:li>Sam Smith</rdf:li></rdf:Seq></dc:creator>"
        + alt("dc:rights", "(c) 2022 Jo Bloggs")
        + alt("xmpRights:UsageTerms", "Licensed under CC BY 4.0")
        + f'<cc:license rdf:resource="{CC_BY}"/>',
    )


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_xmp_rights_and_the_plus_data_mining_reservation(catalogue, team, tmp_path, fmt):
    packet = _rights_packet()
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
        write(root / "jpegs" / f"{n}.jpg", encode(picture(400 + n), "JPEG", xmp=_rights_packet()))
    write(root / "jpegs" / "copy-of-0.jpg", encode(picture(400), "JPEG", xmp=_rights_packet()))
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
