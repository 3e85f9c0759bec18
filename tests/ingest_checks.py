"""Helpers the ingest tests share: files to offer, and checks that every offer reconciled."""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import sqlalchemy as sa
from PIL import Image, PngImagePlugin

from stylevault.governance.catalogue import audit, store
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import AuditEvent, IngestRun, Licence, Rejection, Source
from stylevault.governance.catalogue.models import Image as ImageRow
from tests.factories import alt, encode, picture, xmp_packet

DMI_PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"
CC_BY = "https://creativecommons.org/licenses/by/4.0/"
CC_BY_NC = "http://creativecommons.org/licenses/by-nc/4.0/"


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


def rights_packet() -> bytes:
    return xmp_packet(
        {"plus:DataMining": DMI_PROHIBITED, "xmpRights:WebStatement": "https://example.com/rights"},
        "<dc:creator><rdf:Seq><rdf:li>Jo Bloggs</rdf:li><rdf:li>Sam Smith</rdf:li></rdf:Seq></dc:creator>"
        + alt("dc:rights", "(c) 2022 Jo Bloggs")
        + alt("xmpRights:UsageTerms", "Licensed under CC BY 4.0")
        + f'<cc:license rdf:resource="{CC_BY}"/>',
    )
