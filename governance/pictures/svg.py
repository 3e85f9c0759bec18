"""SVG: parsed safely, stripped of every external reference, rendered to pixels by resvg.

The XML is parsed with defusedxml (no DTD, no entity expansion) and held to bomb limits: its size,
its nesting, and the number of elements it draws once every `<use>` is expanded. Every reference to
something outside the file (an `href` that is not `#fragment` or an inline raster `data:` picture, a
CSS `url(...)` or `@import` that leaves the file) is taken out before rendering and returned, so it
is recorded and never fetched: resvg itself reads local files named by `<image href>` (it has no
network code), so stripping is what keeps it from reading them. The cleaned document is rendered by
resvg (through resvg-py: resvg is Apache-2.0 OR MIT, its Python binding MIT) without system fonts,
so the same bytes give the same pixels on every machine; text is not drawn.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET
from PIL import Image

from stylevault.governance.errors import DecodeFailure

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
MAX_BYTES = 4 * 1024 * 1024  # clip art and icons are kilobytes; a 4 MiB SVG is a map or a bomb
MAX_DEPTH = 100
MAX_ELEMENTS = 50_000  # drawn, with every <use> expanded (a "billion laughs" of nested <use>)
# An inline raster is decoded whole by resvg and drawn into at most RENDER_SIDE px: more than this
# many pixels in one is never needed and could take a worker's memory.
INLINE_PIXELS = 16_000_000
RENDER_SIDE = 1024  # px on the longer side: what imaging.WORKING_SIDE keeps of any picture
INLINE_RASTERS = ("image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp")
HREFS = ("href", f"{{{XLINK_NS}}}href")
_URL = re.compile(r"url\(\s*(['\"]?)([^'\")]*)\1\s*\)", re.IGNORECASE)
_IMPORT = re.compile(r"@import\s+(?:url\(\s*)?['\"]?([^'\");\s]*)['\"]?\s*\)?[^;]*;?", re.IGNORECASE)
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(px|pt|pc|mm|cm|in)?\s*$")
_UNITS = {None: 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}
ET.register_namespace("", SVG_NS)
ET.register_namespace("xlink", XLINK_NS)


@dataclass
class Rendered:
    image: Image.Image  # RGBA, at its own size, or RENDER_SIDE on its longer side when larger
    width: int  # the SVG's own size in CSS px (width/height, else its viewBox), rounded
    height: int
    references: list[str]  # external references taken out, in document order, each once


def looks_like_svg(data: bytes) -> bool:
    """An XML document whose first element is <svg>: what an SVG file is, whatever its name."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"<"):
        return False
    return re.search(rb"<(?:[A-Za-z_][\w.-]*:)?svg[\s>/]", head) is not None


def render(data: bytes) -> Rendered:
    if len(data) > MAX_BYTES:
        raise DecodeFailure("too-large", f"SVG of {len(data)} bytes is over the {MAX_BYTES} byte limit")
    root = _parse(data)
    references = _clean(root)
    width, height = _intrinsic_size(root)
    text = ET.tostring(root, encoding="unicode")
    scale = min(1.0, RENDER_SIDE / max(width, height))  # its own size, as a raster would be
    box = max(1, round(width * scale)), max(1, round(height * scale))
    import resvg_py

    try:
        png = resvg_py.svg_to_bytes(svg_string=text, skip_system_fonts=True, width=box[0], height=box[1])
        image = Image.open(io.BytesIO(bytes(png)))
        image.load()
    except Exception as exc:  # resvg reports every failure as one exception type of its own
        raise DecodeFailure("decode-error", f"SVG cannot be rendered: {exc}") from exc
    return Rendered(image.convert("RGBA"), max(1, round(width)), max(1, round(height)), references)


def _parse(data: bytes) -> ET.Element:
    try:
        root = SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise DecodeFailure("decode-error", f"SVG refused: {exc} (no DTD or entities are read)") from exc
    except ET.ParseError as exc:
        raise DecodeFailure("decode-error", f"SVG is not well-formed XML: {exc}") from exc
    if root.tag != f"{{{SVG_NS}}}svg":
        raise DecodeFailure("not-an-image", f"XML whose root is {root.tag}, not an SVG <svg> element")
    return root


def _clean(root: ET.Element) -> list[str]:
    """Take every external reference out of the tree, in place; check the bomb limits on the way."""
    found: dict[str, None] = {}
    ids: dict[str, ET.Element] = {}
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DecodeFailure("decompression-bomb", f"SVG nested deeper than {MAX_DEPTH} elements")
        if element.get("id"):
            ids.setdefault(element.get("id"), element)
        for name in HREFS:
            value = element.get(name)
            if value is not None and not _internal(value.strip()):
                found.setdefault(_describe(value.strip()))
                del element.attrib[name]
        for name, value in list(element.attrib.items()):
            if "url(" in value.lower() or "@import" in value.lower():
                element.set(name, _strip_css(value, found))
        if isinstance(element.tag, str) and element.tag.endswith("}style") and element.text:
            element.text = _strip_css(element.text, found)
        stack.extend((child, depth + 1) for child in reversed(element))
    try:
        _check_expanded_size(root, ids)
    except RecursionError as exc:
        raise DecodeFailure("decompression-bomb", "SVG <use> chain too deep to expand") from exc
    return list(found)


def _describe(href: str) -> str:
    """The reference as recorded: an inline document by its type and size, not its whole text."""
    if href.lower().startswith("data:") and len(href) > 200:
        return f"{href[: href.find(',') + 1 or 40]}... ({len(href)} characters, not drawn)"
    return href


def _internal(href: str) -> bool:
    """A fragment of this file, or a raster picture inline (checked against the pixel limit)."""
    if href.startswith("#"):
        return True
    if not href.lower().startswith("data:"):
        return False
    header, _, payload = href[5:].partition(",")
    mime = header.split(";")[0].strip().lower()
    if mime not in INLINE_RASTERS or not header.lower().endswith(";base64"):
        return False  # an inline SVG would bring references of its own: recorded, not drawn
    try:
        inner = Image.open(io.BytesIO(base64.b64decode(payload)))
    except (binascii.Error, ValueError, OSError, Image.DecompressionBombError) as exc:
        raise DecodeFailure("decode-error", f"SVG inline picture cannot be read: {exc}") from exc
    if inner.width * inner.height > INLINE_PIXELS:
        raise DecodeFailure(
            "too-large", f"SVG inline picture of {inner.width}x{inner.height} is over {INLINE_PIXELS} pixels"
        )
    return True


def _strip_css(text: str, found: dict[str, None]) -> str:
    def url(match: re.Match) -> str:
        target = match.group(2).strip()
        if target.startswith("#"):
            return match.group(0)
        found.setdefault(target)
        return "none"

    def imported(match: re.Match) -> str:
        found.setdefault(match.group(1))
        return ""

    return _URL.sub(url, _IMPORT.sub(imported, text))


def _check_expanded_size(root: ET.Element, ids: dict[str, ET.Element]) -> None:
    """Elements drawn with every <use> replaced by what it points at; a cycle is refused."""
    sizes: dict[int, int] = {}

    def size(element: ET.Element, open_: frozenset[int]) -> int:
        key = id(element)
        if key in sizes:
            return sizes[key]
        if key in open_:
            raise DecodeFailure("decompression-bomb", "SVG <use> refers to itself (a cycle)")
        inner = open_ | {key}
        total = 1 + sum(size(child, inner) for child in element)
        target = next((element.get(n) for n in HREFS if element.get(n, "").startswith("#")), None)
        if isinstance(element.tag, str) and element.tag.endswith("}use") and target:
            referenced = ids.get(target[1:])
            if referenced is not None:
                total += size(referenced, inner)
        if total > MAX_ELEMENTS:
            raise DecodeFailure(
                "decompression-bomb", f"SVG draws more than {MAX_ELEMENTS} elements once its <use>s expand"
            )
        sizes[key] = total
        return total

    size(root, frozenset())


def _intrinsic_size(root: ET.Element) -> tuple[float, float]:
    """CSS px from width and height, else from the viewBox (scaled to a width or height given),
    else 100 x 100 (resvg's default)."""
    width, height = _length(root.get("width")), _length(root.get("height"))
    try:
        box = [float(v) for v in re.split(r"[\s,]+", (root.get("viewBox") or "").strip()) if v]
    except ValueError:
        box = []  # resvg ignores a malformed viewBox too
    if len(box) == 4 and box[2] > 0 and box[3] > 0:
        if width and not height:
            height = width * box[3] / box[2]
        elif height and not width:
            width = height * box[2] / box[3]
        elif not width and not height:
            width, height = box[2], box[3]
    return width or 100.0, height or 100.0


def _length(value: str | None) -> float | None:
    match = _LENGTH.match(value or "")
    if not match:
        return None  # a percentage, em or nothing: the viewBox decides
    length = float(match.group(1)) * _UNITS[match.group(2)]
    return length if length > 0 else None
