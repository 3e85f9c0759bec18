"""The one decode path for image bytes: ingest, thumbnails and embedding all read through it.

`decode` checks that the bytes are a whole image of an accepted format within Pillow's
decompression-bomb limit, applies the EXIF orientation and returns an upright 8-bit RGB picture of at
most WORKING_SIDE on its longer side (what thumbnails, hashes and encoders need). SVG is parsed and
rendered by governance/svg.py. A transparent picture is laid on a ground that contrasts with its own
colours, so white line art on a transparent ground stays visible. Failures raise `DecodeFailure` with
a rejection reason from models.REJECTION_REASONS.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
from dataclasses import dataclass, field

import imagehash
from PIL import Image, ImageOps, UnidentifiedImageError

from stylevault.governance.errors import DecodeFailure
from stylevault.governance.pictures import svg

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "SVG"})
THUMBNAIL_SIZE = 256
# decode keeps at most this much of a picture's longer side: thumbnails are 256 px, CLIP encoders
# look at 224 px, the demo models at less. A JPEG is decoded at a reduced scale (libjpeg's DCT
# scaling, Pillow's `draft`), which still reads every byte of its entropy-coded data, so a cut or
# corrupt file is refused as before; other formats are decoded whole, then reduced.
WORKING_SIDE = 1024
# What a format decoded whole may hold, so that a small file cannot take gigabytes of a worker
# (a 10 kB 1-bit PNG just under Pillow's 89.5 Mpx limit took 1.46 GB): 40 Mpx is 8000 x 5000, up to
# 160 MB as RGBA. Over it: `too-large`. The peak per worker is measured in bench/ingest.py.
WHOLE_PIXELS = 40_000_000
# Names the pixels decode makes, for what caches them (the embedding caches): bump it when they change.
PIXELS_VERSION = 2
PHASH_SOURCE = 64  # px: phash works on 32x32; a box reduce to about twice that comes first
# The near-copy check also hashes crops of each index member (governance/copyhash.py): two crop sizes
# (75 % and 85 % of the area) on a 3x3 grid of positions, so that an output that is a crop of a member
# lies within a few bits of one of them.
CROP_AREAS = (0.75, 0.85)
CROP_GRID = 3
# What Pillow raises on malformed bytes. Besides OSError and SyntaxError, its plugins fail with the
# errors that Image.open itself reads as "not this format" (IndexError, TypeError, struct.error), and
# with KeyError on an unknown code in a later TIFF frame.
MALFORMED = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    MemoryError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
)
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as Pillow's own L conversion


__all__ = ["DecodeFailure", "Decoded", "decode", "thumbnail", "phash", "crop_phashes", "jpeg"]


@dataclass
class Decoded:
    original: Image.Image  # as stored in the file, loaded (carries EXIF/XMP/IPTC); an SVG's rendering
    rgb: Image.Image  # upright 8-bit RGB, at most WORKING_SIDE; transparency on a contrasting ground
    format: str
    mode: str
    width: int  # upright, the file's full size
    height: int
    orientation: int
    frames: int
    references: list[str] = field(default_factory=list)  # an SVG's external references, not fetched


def _ground(rgba: Image.Image) -> tuple[int, int, int]:
    """Black under a light drawing, white under any other: the mean luma of the visible pixels,
    weighted by their alpha, decides. White line art on a transparent ground (icon themes draw
    symbolic icons so) laid on white would be a blank picture to the hash, thumbnail and encoder."""
    import numpy as np

    factor = max(1, max(rgba.size) // THUMBNAIL_SIZE)
    pixels = np.asarray(rgba.reduce(factor) if factor > 1 else rgba, dtype=np.float32)
    weight = pixels[..., 3]
    if weight.sum() == 0:
        return 255, 255, 255
    luma = pixels[..., :3] @ np.asarray(LUMA, dtype=np.float32)
    return (0, 0, 0) if float((luma * weight).sum() / weight.sum()) > 127.5 else (255, 255, 255)


def _flatten(rgba: Image.Image) -> Image.Image:
    background = Image.new("RGBA", rgba.size, (*_ground(rgba), 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def _reducible(image: Image.Image) -> Image.Image:
    """A mode Image.reduce averages correctly: palette indices and 1-bit or 16-bit greys are not."""
    if image.mode == "P" or image.mode == "PA":
        return image.convert("RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB")
    if image.mode == "1":
        return image.convert("L")
    if image.mode.startswith("I;16"):
        return image.convert("I")
    return image


def _working(image: Image.Image) -> Image.Image:
    """At most WORKING_SIDE on the longer side (an integer box reduce; small pictures untouched)."""
    factor = max(1, math.ceil(max(image.size) / WORKING_SIDE))
    if factor == 1:
        return image
    return _reducible(image).reduce(factor)


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for any accepted mode: 16-bit and float greys are scaled, not clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        if image.mode == "F" and values.size and values.max() <= 1.0:
            values = values * 255.0
        elif image.mode != "F":
            values = values / 257.0  # 16-bit range -> 8-bit range
        grey = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
        return grey.convert("RGB")
    if image.mode in ALPHA_MODES or (image.mode == "P" and "transparency" in image.info):
        return _flatten(image.convert("RGBA"))
    return image.convert("RGB")


def _decode_svg(data: bytes) -> Decoded:
    rendered = svg.render(data)
    return Decoded(
        original=rendered.image,
        rgb=_flatten(rendered.image),
        format="SVG",
        mode="RGBA",
        width=rendered.width,
        height=rendered.height,
        orientation=1,
        frames=1,
        references=rendered.references,
    )


def decode(data: bytes) -> Decoded:
    if not data:
        raise DecodeFailure("empty-file", "the file is empty (0 bytes)")
    if svg.looks_like_svg(data):
        return _decode_svg(data)
    with warnings.catch_warnings():
        # Pillow warns between MAX_IMAGE_PIXELS and twice that and raises above; both are refusals.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            if image.format not in ACCEPTED_FORMATS:
                raise DecodeFailure(
                    "unsupported-format",
                    f"format {image.format} is not accepted "
                    f"(accepted: {', '.join(sorted(ACCEPTED_FORMATS))})",
                )
            width, height = image.size
            if image.format == "JPEG":
                scale = WORKING_SIDE / max(width, height)
                if scale < 1:
                    image.draft(image.mode, (math.ceil(width * scale), math.ceil(height * scale)))
            elif width * height > WHOLE_PIXELS:
                raise DecodeFailure(
                    "too-large",
                    f"{width}x{height} = {width * height} pixels: over the {WHOLE_PIXELS} a {image.format} "
                    "is decoded whole with (only JPEG is decoded at a reduced scale)",
                )
            image.load()
            # Counting frames reads every frame's header, so a cut or broken later frame shows here.
            frames = getattr(image, "n_frames", 1)
            if image.format == "PNG":
                # Pillow stops reading once it has the pixels, so a PNG cut after them (its zlib
                # checksum, a CRC, IEND) still loads; walking the chunks to IEND finds the cut.
                Image.open(io.BytesIO(data)).verify()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DecodeFailure("decompression-bomb", f"refused as a decompression bomb: {exc}") from exc
        except UnidentifiedImageError as exc:
            raise DecodeFailure("not-an-image", "not an image Pillow can identify") from exc
        except DecodeFailure:
            raise
        except MALFORMED as exc:
            raise DecodeFailure("decode-error", f"cannot decode: {exc}") from exc
    try:
        orientation = int(image.getexif().get(0x0112, 1) or 1)
    except MALFORMED:
        orientation = 1
    try:
        # exif_transpose writes the EXIF block out again, which fails on a malformed one.
        upright = ImageOps.exif_transpose(image) if orientation != 1 else image
        rgb = _to_rgb(_working(upright))
    except MALFORMED as exc:
        raise DecodeFailure("decode-error", f"cannot make upright RGB of {image.mode}: {exc}") from exc
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return Decoded(
        original=image,
        rgb=rgb,
        format=image.format,
        mode=image.mode,
        width=width,
        height=height,
        orientation=orientation,
        frames=frames,
    )


def thumbnail(rgb: Image.Image) -> Image.Image:
    """At most THUMBNAIL_SIZE on its longer side: a box-filter reduce by an integer factor, then a
    bicubic resize for what is left (none for 512 px sources). A new image; `rgb` is untouched."""
    factor = max(1, max(rgb.size) // THUMBNAIL_SIZE)
    thumb = rgb.reduce(factor) if factor > 1 else rgb.copy()
    thumb.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE), Image.Resampling.BICUBIC)
    return thumb


def phash(thumb: Image.Image) -> str:
    """64-bit DCT perceptual hash (imagehash.phash) of the thumbnail, as 16 hex digits.

    phash shrinks its input to 32x32 grey with a Lanczos filter; a box-filter reduce to about 64 px
    first makes that about eight times cheaper (0.8 -> 0.1 ms a 256 px thumbnail here) and moves
    under half a bit of the 64 on average. Every phash in stylevault comes from this function."""
    grey = thumb.convert("L")
    factor = max(1, max(grey.size) // PHASH_SOURCE)
    return str(imagehash.phash(grey.reduce(factor) if factor > 1 else grey))


def crop_phashes(thumb: Image.Image) -> list[int]:
    """phash (as an int) of each CROP_AREAS x CROP_GRID x CROP_GRID crop of a thumbnail, each crop
    resized back to the thumbnail's size first, as a cropped copy would be."""
    width, height = thumb.size
    found = []
    for area in CROP_AREAS:
        side = area**0.5
        w, h = max(1, round(width * side)), max(1, round(height * side))
        for gy in range(CROP_GRID):
            for gx in range(CROP_GRID):
                x = round((width - w) * gx / (CROP_GRID - 1))
                y = round((height - h) * gy / (CROP_GRID - 1))
                crop = thumb.crop((x, y, x + w, y + h)).resize((width, height), Image.Resampling.BICUBIC)
                found.append(int(phash(crop), 16))
    return found


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def identify(handle) -> None:
    """Raise DecodeFailure("not-an-image") unless Pillow recognises the open file's header, as decode
    would; the handle is left at its start. Reads only what Pillow's format checks read, so ingest
    can refuse a large non-image without holding it whole. An SVG is recognised by its head, as decode
    recognises it, and refused here when it is over svg.MAX_BYTES. Any other problem is left to decode."""
    head = handle.read(4096)
    handle.seek(0)
    if svg.looks_like_svg(head):
        size = os.fstat(handle.fileno()).st_size
        if size > svg.MAX_BYTES:
            raise DecodeFailure("too-large", f"SVG of {size} bytes is over the {svg.MAX_BYTES} byte limit")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(handle):
                pass
    except UnidentifiedImageError as exc:
        raise DecodeFailure("not-an-image", "not an image Pillow can identify") from exc
    except (Image.DecompressionBombError, *MALFORMED):
        pass
    finally:
        handle.seek(0)
