"""Ingest under attack: what a hostile folder does between the checks and the read, and names that
are not text. Nothing outside the ingest root is catalogued; every file offered is counted.

DESIGN.md rules 1 and 9. The swaps are made deterministic by doing them at the moment ingest has
checked an offer and not yet read it: the offers generator is wrapped, and the swap runs when the
checked offer passes (workers=1 reads each offer as soon as it is yielded).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from stylevault.governance.catalogue.models import Image as ImageRow
from stylevault.governance.curation import stylesets
from stylevault.governance.index import builds as index
from stylevault.governance.ingest import run as ingest_module
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import review
from tests.factories import write, write_csv, write_jsonl
from tests.ingest_checks import assert_reconciled, has_image, png, rejections, totals

SECRET = png(900)  # the bytes outside the root that a swap tries to have catalogued


@pytest.fixture
def tree(tmp_path):
    root, outside = tmp_path / "in", tmp_path / "outside"
    write(outside / "secret.png", SECRET)
    write(outside / "sub" / "x.png", SECRET)
    write(root / "inside.png", png(1))
    write(root / "plain.png", png(2))
    write(root / "sub" / "x.png", png(3))
    (root / "alias.png").symlink_to(root / "inside.png")
    return root, outside


def _swap_when_checked(monkeypatch, name: str, swap) -> None:
    """Run `swap` once the offer displayed as `name` has passed its checks, before it is read."""
    offers_from_folder, offers_from_manifest = (
        ingest_module.offers_from_folder,
        ingest_module.offers_from_manifest,
    )

    def swapping(offers):
        for offer in offers:
            if offer.display == name:
                swap()
            yield offer

    monkeypatch.setattr(ingest_module, "offers_from_folder", lambda *a: swapping(offers_from_folder(*a)))
    monkeypatch.setattr(ingest_module, "offers_from_manifest", lambda *a: swapping(offers_from_manifest(*a)))


def _relink(link: Path, target: Path) -> None:
    if link.is_dir() and not link.is_symlink():
        link.rename(link.with_name(link.name + ".moved"))
    else:
        link.unlink()
    link.symlink_to(target, target_is_directory=target.is_dir())


def test_a_link_swapped_to_lead_outside_after_its_check_reads_what_was_checked(
    catalogue, team, tree, monkeypatch
):
    root, outside = tree
    _swap_when_checked(monkeypatch, "alias.png", lambda: _relink(root / "alias.png", outside / "secret.png"))

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (4, 3, 1, 0))  # alias.png is inside.png, checked and read
    assert not has_image(catalogue, SECRET)


@pytest.mark.parametrize(
    ("name", "swapped", "detail"),
    [
        ("plain.png", "plain.png", "it became a symlink after it was checked (not followed)"),
        (
            "sub/x.png",
            "sub",
            "a folder on its path became a symlink or a file after it was checked (not followed)",
        ),
    ],
)
def test_a_file_or_folder_swapped_for_a_link_after_its_check_is_refused(
    catalogue, team, tree, monkeypatch, name, swapped, detail
):
    root, outside = tree
    _swap_when_checked(
        monkeypatch, name, lambda: _relink(root / swapped, outside / swapped.replace("plain", "secret"))
    )

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (4, 2, 1, 1))
    rejection = rejections(catalogue, summary.run_id)[name]
    assert (rejection.reason, rejection.detail) == ("unreadable", detail)
    assert not has_image(catalogue, SECRET)


def test_a_manifest_file_swapped_for_a_link_after_its_check_is_refused(catalogue, team, tree, monkeypatch):
    root, outside = tree
    manifest = write_csv(root.parent / "m.csv", [{"path": "plain.png"}, {"path": "inside.png"}])
    _swap_when_checked(monkeypatch, "plain.png", lambda: _relink(root / "plain.png", outside / "secret.png"))

    summary = ingest(catalogue, "sam", root, manifest=manifest, progress=False)

    assert_reconciled(catalogue, summary, (2, 1, 0, 1))
    assert rejections(catalogue, summary.run_id)["plain.png"].reason == "unreadable"
    assert not has_image(catalogue, SECRET)


def test_a_file_swapped_for_a_fifo_after_its_check_is_refused_without_blocking(
    catalogue, team, tree, monkeypatch
):
    root, _ = tree

    def fifo():
        (root / "plain.png").unlink()
        os.mkfifo(root / "plain.png")

    _swap_when_checked(monkeypatch, "plain.png", fifo)

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (4, 2, 1, 1))
    assert rejections(catalogue, summary.run_id)["plain.png"].reason == "not-a-file"


# ---------------------------------------------------------------- names that are not UTF-8

CAFE = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes, as an old archive names files
BAD_DIR = os.fsdecode(b"scans-\xff")


def test_a_name_that_is_not_utf8_is_rejected_and_the_version_of_the_rest_builds(
    catalogue, team, encoder_dir, tmp_path
):
    # Such a name was catalogued under an escaped spelling that names no file; every index build of a
    # version holding the image then failed. Now it is rejected with its reason, and counted.
    root = tmp_path / "in"
    write(root / "good-0.png", png(10))
    write(root / "good-1.png", png(11))
    write(root / CAFE, png(12))
    write(root / BAD_DIR / "x.png", png(13))

    summary = ingest(catalogue, "sam", root, licence="CC0-1.0", progress=False)

    assert_reconciled(catalogue, summary, (4, 2, 0, 2))
    assert summary.rejections == {"unreadable-name": 2}
    found = rejections(catalogue, summary.run_id)
    assert found["caf\\xe9.png"].detail == "its name is not UTF-8 (byte 0xe9); rename it to ingest it"
    assert found["scans-\\xff/x.png"].detail == "its name is not UTF-8 (byte 0xff); rename it to ingest it"
    assert not has_image(catalogue, png(12)) and not has_image(catalogue, png(13))
    with catalogue.read() as session:
        ids = [str(i) for i in session.scalars(sa.select(ImageRow.id).order_by(ImageRow.id))]
    with catalogue.write() as session:
        review.decide(session, "lee", "approve", ids, None)
        stylesets.create(session, "sam", "everything")
        stylesets.add(session, "sam", "everything", ids)
        stylesets.publish(session, "sam", "everything")

    built = index.build(
        catalogue, "sam", "everything", "commercial", f"local-dir:{encoder_dir}", tmp_path / "idx"
    )

    assert built.members == 2


def test_a_manifest_path_that_is_not_utf8_is_rejected_with_its_line(catalogue, team, tmp_path):
    root = tmp_path / "in"
    write(root / "good.png", png(10))
    write(root / CAFE, png(12))
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"path": "good.png"}, {"path": CAFE}])

    summary = ingest(catalogue, "sam", root, manifest=manifest, progress=False)

    assert_reconciled(catalogue, summary, (2, 1, 0, 1))
    rejection = rejections(catalogue, summary.run_id)["caf\\xe9.png"]
    assert rejection.reason == "unreadable-name" and rejection.detail.startswith(
        "line 2: its name is not UTF-8"
    )


def test_an_ingest_root_that_is_not_utf8_is_refused_before_anything_is_written(
    cli, catalogue, team, tmp_path
):
    write(tmp_path / BAD_DIR / "x.png", png(13))
    before = totals(catalogue)

    result = cli("ingest", tmp_path / BAD_DIR, actor="sam")

    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (
        f"stylevault: {tmp_path}/scans-\\xff: its name is not UTF-8 (byte 0xff); rename it to ingest it"
    )
    assert totals(catalogue) == before
