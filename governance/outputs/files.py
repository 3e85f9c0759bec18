"""An output's file: the PNG written with its text chunks, its pixel hash, and which output a file is
(checked against the recorded file or pixel hash, so copied chunks vouch for nothing)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue.output_models import GenerationOutput, GenerationRun
from stylevault.governance.errors import BadInput, Refused

FORMAT = "stylevault-run/1"
CHUNK = "stylevault:"  # PNG iTXt keys: stylevault:run, stylevault:output, stylevault:manifest_sha256, ...
NOTICE = "ATTRIBUTION.md"


def pixels_sha256(image) -> str:
    """sha256 of the decoded pixels (size, mode and bytes): the same after metadata is stripped."""
    rgb = image.convert("RGB")
    digest = hashlib.sha256(f"{rgb.width}x{rgb.height}:RGB:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def png_bytes(image, chunks: dict[str, str]) -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in chunks.items():
        info.add_itxt(CHUNK + key, value)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def read_chunks(path: Path) -> tuple[dict[str, str], bytes]:
    from PIL import Image, UnidentifiedImageError

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise BadInput(f"{path}: not an image") from exc
    chunks = {k[len(CHUNK) :]: v for k, v in getattr(image, "text", {}).items() if k.startswith(CHUNK)}
    return chunks | {"_pixels": pixels_sha256(image)}, data


def find_output(session: Session, path: str | os.PathLike) -> GenerationOutput:
    """The output a file is: by its file hash, else the hash of its pixels. The run chunks are a
    claim anyone can copy into another picture, so they only name where to look: a file whose bytes
    and pixels are both not the named output's is refused, never vouched for."""
    path = Path(path)
    chunks, data = read_chunks(path)
    file_sha256, pixels = hashlib.sha256(data).hexdigest(), chunks["_pixels"]
    o, r = GenerationOutput, GenerationRun
    if "run" in chunks and chunks.get("output", "").isdigit():
        named = session.scalars(
            sa.select(o)
            .join(r, r.id == o.run_id)
            .where(r.run_id == chunks["run"], o.ordinal == int(chunks["output"]))
        ).first()
        if named is not None:
            if file_sha256 == named.sha256 or pixels == named.pixels_sha256:
                return named
            raise Refused(
                f"{path}: these chunks name output {named.ordinal} of run {chunks['run']}, but this file is"
                " not it (neither its sha256 nor its pixels match the record): provenance forged or edited"
            )
    for column, value in ((o.sha256, file_sha256), (o.pixels_sha256, pixels)):
        found = session.scalars(sa.select(o).where(column == value).order_by(o.id)).first()
        if found is not None:
            return found
    raise BadInput(f"{path}: no stylevault output has this run id, file hash or pixel hash")
