"""Rights metadata embedded in image files: EXIF, XMP and IPTC-IIM, read with Pillow + defusedxml.

We read the fields that speak to ownership and permitted use: EXIF Artist/Copyright; XMP dc:creator,
dc:rights, xmpRights:UsageTerms/WebStatement/Marked, cc:license/attributionName, the IPTC PLUS
data-mining field (plus:DataMining, with plus:OtherConstraints) and Iptc4xmpExt:DigitalSourceType;
IIM by-line, credit and copyright notice. GPL readers (Exiv2) are deliberately not used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmpRights": "http://ns.adobe.com/xap/1.0/rights/",
    "plus": "http://ns.useplus.org/ldf/xmp/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "cc": "http://creativecommons.org/ns#",
}
XMP_FIELDS = [
    ("dc", "creator"),
    ("dc", "rights"),
    ("dc", "title"),
    ("xmpRights", "UsageTerms"),
    ("xmpRights", "WebStatement"),
    ("xmpRights", "Marked"),
    ("cc", "license"),
    ("cc", "attributionName"),
    ("plus", "DataMining"),
    ("plus", "OtherConstraints"),
    ("Iptc4xmpExt", "DigitalSourceType"),
]
EXIF_FIELDS = {0x013B: "Artist", 0x8298: "Copyright", 0x010E: "ImageDescription"}
IIM_FIELDS = {(2, 80): "By-line", (2, 110): "Credit", (2, 115): "Source", (2, 116): "CopyrightNotice"}


@dataclass
class EmbeddedRights:
    """Raw values as found (kept verbatim), plus what they say for the catalogue's fields."""

    exif: dict[str, str] = field(default_factory=dict)
    xmp: dict[str, str] = field(default_factory=dict)
    iim: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        found = {"exif": self.exif, "xmp": self.xmp, "iim": self.iim, "problems": self.problems}
        return {key: value for key, value in found.items() if value}

    @property
    def licence_candidates(self) -> list[str]:
        """Statements of licence, most specific first: a CC licence URI, usage terms, a web statement."""
        keys = ("cc:license", "xmpRights:UsageTerms", "xmpRights:WebStatement")
        return [self.xmp[key] for key in keys if self.xmp.get(key)]

    @property
    def creator(self) -> str | None:
        return self.xmp.get("dc:creator") or self.exif.get("Artist") or self.iim.get("By-line")

    @property
    def attribution(self) -> str | None:
        return (
            self.xmp.get("cc:attributionName")
            or self.xmp.get("dc:rights")
            or self.exif.get("Copyright")
            or self.iim.get("CopyrightNotice")
        )

    @property
    def title(self) -> str | None:
        return self.xmp.get("dc:title")

    @property
    def data_mining(self) -> str | None:
        return self.xmp.get("plus:DataMining")

    @property
    def mining_reserved(self) -> bool:
        """IPTC PLUS Data Mining (http://ns.useplus.org/ldf/vocab/DMI-...): every PROHIBITED* value
        reserves the right against AI use, however the vocabulary's namespace is written."""
        term = (self.data_mining or "").strip().rsplit("/", 1)[-1].upper()
        return term.removeprefix("DMI-").startswith("PROHIBITED")


def _clean(value) -> str | None:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value = value.decode("latin-1")
    if isinstance(value, (tuple, list)):
        value = "; ".join(v for v in (_clean(item) for item in value) if v)
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None


def _xmp_packet(image: Image.Image) -> bytes | None:
    packet = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp")
    if packet is None and hasattr(image, "tag_v2"):
        packet = image.tag_v2.get(700)
    if isinstance(packet, str):
        packet = packet.encode("utf-8")
    return packet or None


def _xmp_value(element) -> str | None:
    """Text of a simple property, the x-default (or first) of an Alt, or the items of a Seq/Bag."""
    resource = element.get(f"{{{NS['rdf']}}}resource")
    if resource:
        return _clean(resource)
    for container in ("Alt", "Seq", "Bag"):
        node = element.find(f"rdf:{container}", NS)
        if node is None:
            continue
        items = node.findall("rdf:li", NS)
        if container == "Alt":
            default = [
                li for li in items if li.get("{http://www.w3.org/XML/1998/namespace}lang") == "x-default"
            ]
            items = default or items[:1]
        return _clean([li.text or "" for li in items])
    return _clean(element.text)


def _read_xmp(packet: bytes, rights: EmbeddedRights) -> None:
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(packet.strip(b"\x00 \n\r\t"))
    except (ElementTree.ParseError, DefusedXmlException, ValueError) as exc:
        rights.problems.append(f"XMP packet not readable: {exc}")
        return
    for description in root.iter(f"{{{NS['rdf']}}}Description"):
        for prefix, name in XMP_FIELDS:
            qualified = f"{{{NS[prefix]}}}{name}"
            key = f"{prefix}:{name}"
            if key in rights.xmp:
                continue
            value = _clean(description.get(qualified))
            if value is None:
                element = description.find(qualified)
                value = _xmp_value(element) if element is not None else None
            if value is not None:
                rights.xmp[key] = value


def read_rights(image: Image.Image) -> EmbeddedRights:
    """What the file says about its rights. Unreadable metadata is noted, never fatal."""
    rights = EmbeddedRights()
    try:
        exif = image.getexif()
        for tag, name in EXIF_FIELDS.items():
            value = _clean(exif.get(tag))
            if value:
                rights.exif[name] = value
    except (ValueError, TypeError, SyntaxError, OSError) as exc:
        rights.problems.append(f"EXIF not readable: {exc}")
    packet = _xmp_packet(image)
    if packet:
        _read_xmp(packet, rights)
    if image.format in ("JPEG", "TIFF"):
        from PIL import IptcImagePlugin

        try:
            iim = IptcImagePlugin.getiptcinfo(image) or {}
        except (ValueError, TypeError, SyntaxError, OSError, IndexError) as exc:
            rights.problems.append(f"IPTC-IIM not readable: {exc}")
            iim = {}
        for key, name in IIM_FIELDS.items():
            value = _clean(iim.get(key))
            if value:
                rights.iim[name] = value
    return rights
