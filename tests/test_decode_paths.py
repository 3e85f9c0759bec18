"""The decode paths (issue 13.3, 13.4, 13.9; 14.16): transparent pictures seen on a contrasting
ground, SVG catalogued and rendered without fetching what it references, large pictures decoded
reduced or refused as too large."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from stylevault.governance.catalogue import store
from stylevault.governance.ingest.run import ingest
from stylevault.governance.pictures import imaging
from stylevault.governance.views.images import show
from tests.factories import encode, write
from tests.ingest_checks import assert_reconciled, bilevel_png, image_of, reasons, rejections

BLANK = "8000000000000000"  # the phash of a picture of one colour


def line_art(shape: str, colour=(255, 255, 255, 255), size: int = 64) -> bytes:
    """Strokes of one colour on a fully transparent ground, as icon themes draw symbolic icons."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse((10, 10, size - 10, size - 10), outline=colour, width=5)
    elif shape == "bars":
        for x in range(10, size - 10, 12):
            draw.line((x, 10, x, size - 10), fill=colour, width=4)
    elif shape == "cross":
        draw.line((10, 10, size - 10, size - 10), fill=colour, width=6)
        draw.line((10, size - 10, size - 10, 10), fill=colour, width=6)
    elif shape == "corner":
        draw.rectangle((4, 4, size // 2, size // 2), fill=colour)
    return encode(image)


# ---------------------------------------------------------------- transparency (13.3)


def test_white_line_art_on_a_transparent_ground_is_seen_and_shapes_are_not_near_duplicates(
    catalogue, team, tmp_path
):
    root = tmp_path / "icons"
    shapes = ["circle", "bars", "cross", "corner"]
    for shape in shapes:
        write(root / f"{shape}-white.png", line_art(shape))
        write(root / f"{shape}-black.png", line_art(shape, (0, 0, 0, 255)))
    summary = ingest(catalogue, "sam", root, progress=False)
    assert_reconciled(catalogue, summary, (8, 8, 0, 0))
    hashes = {}
    for name in sorted(p.name for p in root.iterdir()):
        image, _, _ = image_of(catalogue, (root / name).read_bytes())
        hashes[name] = image.phash
    # Each drawing is seen: no blank hash, and different shapes are never the same hash.
    assert BLANK not in hashes.values()
    assert len({hashes[f"{s}-white.png"] for s in shapes}) == len(shapes)
    with catalogue.read() as session:
        from stylevault.governance.views.images import resolve

        for shape in shapes:
            shown = show(
                session, resolve(session, hashes_id(catalogue, root / f"{shape}-white.png"))
            ).as_dict()
            white = {r["sha256"] for r in shown["same_phash"]}
            others = {imaging_sha(root / f"{o}-white.png") for o in shapes if o != shape}
            assert not white & others, shape
    # The thumbnail shows the strokes: a dark ground under white ones, not white on white.
    thumb = Image.open(store.thumbnail_path(catalogue.store, imaging_sha(root / "circle-white.png")))
    low, high = thumb.convert("L").getextrema()
    assert low < 40 and high > 200


def imaging_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def hashes_id(catalogue, path: Path) -> str:
    image, _, _ = image_of(catalogue, path.read_bytes())
    return str(image.id)


def test_the_ground_contrasts_with_the_drawing_and_dark_art_keeps_its_white_ground():
    white = imaging.decode(line_art("corner")).rgb
    black = imaging.decode(line_art("corner", (0, 0, 0, 255))).rgb
    assert white.getpixel((10, 10)) == (255, 255, 255) and white.getpixel((60, 60)) == (0, 0, 0)
    assert black.getpixel((10, 10)) == (0, 0, 0) and black.getpixel((60, 60)) == (255, 255, 255)
    # The encoder reads the same pixels as the hash (index builds read through imaging.decode).
    assert imaging.phash(imaging.thumbnail(white)) != BLANK


# ---------------------------------------------------------------- SVG (13.4)

CORPUS = Path(__file__).parent / "data" / "real_world" / "clipart"


def test_svg_is_catalogued_by_its_bytes_and_its_external_references_are_recorded_never_fetched(
    catalogue, team, tmp_path
):
    root = tmp_path / "svg"
    secret = tmp_path / "secret.png"
    Image.new("RGB", (20, 20), (255, 0, 0)).save(secret)  # resvg itself would draw a local file
    badge = (CORPUS / "tux-badge.svg").read_bytes()
    local = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
        b'<rect width="40" height="40" fill="#00f"/>'
        b'<image width="40" height="40" href="' + str(secret).encode() + b'"/>'
        b'<rect width="10" height="10" style="fill:url(https://example.com/p.svg#g)"/></svg>'
    )
    write(root / "tux-badge.svg", badge)
    write(root / "local.svg", local)
    write(root / "apple.svg", (CORPUS / "apple.svg").read_bytes())
    summary = ingest(catalogue, "sam", root, progress=False)
    assert_reconciled(catalogue, summary, (3, 3, 0, 0))

    image, _, [source] = image_of(catalogue, badge)
    assert (image.format, image.width, image.height) == ("SVG", 128, 128)
    assert image.phash != BLANK
    assert source.raw_metadata["file"]["external_references"] == [
        "file:///etc/passwd",
        "https://example.com/tux.png",
    ]
    _, _, [local_source] = image_of(catalogue, local)
    assert local_source.raw_metadata["file"]["external_references"] == [
        str(secret),
        "https://example.com/p.svg#g",
    ]
    # The local file was not drawn: the picture is the blue square alone.
    rendered = imaging.decode(local).rgb
    assert rendered.getpixel((rendered.width // 2, rendered.height // 2)) == (0, 0, 255)
    _, _, [apple] = image_of(catalogue, (CORPUS / "apple.svg").read_bytes())
    assert "external_references" not in apple.raw_metadata["file"]
    assert store.thumbnail_path(catalogue.store, image.sha256).exists()


def test_images_show_lists_an_svgs_external_references(cli, team, tmp_path):
    write(tmp_path / "svg" / "tux-badge.svg", (CORPUS / "tux-badge.svg").read_bytes())
    assert cli("ingest", str(tmp_path / "svg"), actor="sam").exit_code == 0
    shown = cli("images", "show", "1")
    assert "SVG 128x128 RGBA" in shown.output
    assert (
        "external references (not fetched): file:///etc/passwd, https://example.com/tux.png" in shown.output
    )


BOMB_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&b;</text></svg>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>&x;</text></svg>"""


def _use_bomb(levels: int) -> bytes:
    """Each level draws the one below ten times: 10**levels elements once expanded."""
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><defs>']
    parts.append('<rect id="l0" width="1" height="1"/>')
    for level in range(1, levels + 1):
        uses = "".join(f'<use xlink:href="#l{level - 1}"/>' for _ in range(10))
        parts.append(f'<g id="l{level}">{uses}</g>')
    parts.append(f'</defs><use xlink:href="#l{levels}"/></svg>')
    return "".join(parts).encode()


def _nested(depth: int) -> bytes:
    return b'<svg xmlns="http://www.w3.org/2000/svg">' + b"<g>" * depth + b"</g>" * depth + b"</svg>"


@pytest.mark.parametrize(
    ("name", "data", "reason", "fragment"),
    [
        ("laughs.svg", BOMB_LAUGHS, "decode-error", "DTD"),
        ("entity.svg", EXTERNAL_ENTITY, "decode-error", "DTD"),
        ("use-bomb.svg", _use_bomb(6), "decompression-bomb", "<use>"),
        (
            "use-cycle.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><g id="a"><use href="#a"/></g></svg>',
            "decompression-bomb",
            "cycle",
        ),
        ("deep.svg", _nested(500), "decompression-bomb", "nested"),
        ("cut.svg", (CORPUS / "apple.svg").read_bytes()[:150], "decode-error", "well-formed"),
        (
            "huge.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg">' + b" " * (4 * 1024 * 1024) + b"</svg>",
            "too-large",
            "byte limit",
        ),
        ("html.svg", b"<svg><rect/></svg>", "not-an-image", "not an SVG"),
    ],
)
def test_unsafe_or_broken_svg_is_refused_with_a_reason(
    catalogue, team, tmp_path, name, data, reason, fragment
):
    root = tmp_path / "in"
    write(root / name, data)
    summary = ingest(catalogue, "sam", root, progress=False)
    assert_reconciled(catalogue, summary, (1, 0, 0, 1))
    [row] = rejections(catalogue, summary.run_id).values()
    assert row.reason == reason and fragment in row.detail, row.detail


def test_an_svg_of_any_declared_size_renders_within_the_working_side():
    huge = (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="50000">'
        b'<rect width="100%" height="50%" fill="#000"/></svg>'
    )
    decoded = imaging.decode(huge)
    assert (decoded.width, decoded.height) == (100000, 50000)
    assert max(decoded.rgb.size) <= imaging.WORKING_SIDE


# ---------------------------------------------------------------- memory (13.9, 14.16)


def _photo(size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 255, size[0])[None, :, None] * np.ones((size[1], 1, 3))
    noise = rng.normal(0, 8, (size[1], size[0], 3))
    return Image.fromarray(np.clip(ramp + noise, 0, 255).astype(np.uint8), "RGB")


def test_a_large_jpeg_is_decoded_reduced_with_its_full_size_recorded_and_a_cut_one_still_refused(
    catalogue, team, tmp_path
):
    data = encode(_photo((4000, 2250)), "JPEG", quality=85)
    decoded = imaging.decode(data)
    assert (decoded.width, decoded.height) == (4000, 2250)
    assert max(decoded.rgb.size) <= imaging.WORKING_SIDE * 2 and max(decoded.original.size) < 4000
    root = tmp_path / "in"
    write(root / "big.jpg", data)
    write(root / "cut.jpg", data[: len(data) // 2])
    summary = ingest(catalogue, "sam", root, progress=False)
    assert_reconciled(catalogue, summary, (2, 1, 0, 1))
    assert reasons(catalogue, summary.run_id) == {"cut.jpg": "decode-error"}
    image, _, _ = image_of(catalogue, data)
    assert (image.width, image.height) == (4000, 2250)


def test_a_small_png_over_the_whole_decode_limit_is_refused_as_too_large(catalogue, team, tmp_path):
    root = tmp_path / "in"
    side = int(imaging.WHOLE_PIXELS**0.5) + 10  # a few kB on disk, over 40 Mpx once decoded
    bomb = bilevel_png(side, side)
    assert len(bomb) < 20_000 and side * side < Image.MAX_IMAGE_PIXELS
    write(root / "small-file-big-picture.png", bomb)
    summary = ingest(catalogue, "sam", root, progress=False)
    assert_reconciled(catalogue, summary, (1, 0, 0, 1))
    [row] = rejections(catalogue, summary.run_id).values()
    assert row.reason == "too-large" and f"{side}x{side}" in row.detail


def test_a_large_png_under_the_limit_is_reduced_before_its_mode_is_converted():
    data = encode(_photo((3000, 2000)).convert("P"))
    decoded = imaging.decode(data)
    assert (decoded.width, decoded.height, decoded.mode) == (3000, 2000, "P")
    assert max(decoded.rgb.size) <= imaging.WORKING_SIDE and decoded.rgb.mode == "RGB"
    assert isinstance(io.BytesIO(imaging.jpeg(imaging.thumbnail(decoded.rgb))).getvalue(), bytes)
