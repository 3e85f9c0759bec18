"""Test images made on the fly, deterministic from a seed."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

# name -> roles; kim holds both steward and legal, so four-eyes (not the role check) is what stops
# kim approving what kim ingested.
TEAM_ACTORS = {
    "admin": ["admin"],
    "sam": ["steward"],
    "kim": ["steward", "legal"],
    "lee": ["legal"],
    "val": ["viewer"],
    "gia": ["generator"],
}
XMP_TEMPLATE = """<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/" xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/"
 xmlns:cc="http://creativecommons.org/ns#" {attributes}>{elements}</rdf:Description></rdf:RDF></x:xmpmeta>
<?xpacket end="w"?>"""


def picture(seed: int, size: tuple[int, int] = (48, 40), mode: str = "RGB") -> Image.Image:
    """A small distinct picture: background, a few rectangles and ellipses, all from the seed."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    pen = ImageDraw.Draw(image)
    for _ in range(4):
        x0, y0 = rng.randrange(size[0] // 2), rng.randrange(size[1] // 2)
        x1, y1 = x0 + rng.randrange(4, size[0] // 2), y0 + rng.randrange(4, size[1] // 2)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (pen.rectangle if rng.random() < 0.5 else pen.ellipse)([x0, y0, x1, y1], fill=colour)
    return image.convert(mode) if mode != "RGB" else image


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def xmp_packet(attributes: dict[str, str] | None = None, elements: str = "") -> bytes:
    attrs = " ".join(f'{key}="{value}"' for key, value in (attributes or {}).items())
    return XMP_TEMPLATE.format(attributes=attrs, elements=elements).encode("utf-8")


def alt(tag: str, text: str) -> str:
    return f'<{tag}><rdf:Alt><rdf:li xml:lang="x-default">{text}</rdf:li></rdf:Alt></{tag}>'


def folder_of_images(root: Path, count: int, start_seed: int = 0, fmt: str = "PNG") -> list[Path]:
    suffix = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}[fmt]
    return [write(root / f"img-{n:03d}{suffix}", encode(picture(start_seed + n), fmt)) for n in range(count)]


def write_csv(path: Path, rows: list[dict]) -> Path:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def tiny_encoder(folder: Path, seed: int = 0) -> Path:
    """A tiny open_clip model with random (seeded) weights, in open_clip's local-dir layout: the demo
    world's untrained encoder, taken through the door."""
    from stylevault.governance.shipped import load_world

    return load_world().untrained_encoder(folder, seed)


def run_generate(catalogue, folder, rdm_dir, out, actor="gia", **params):
    """A small generate run (2 steps, k 3) through the real provenance path, on the CPU."""
    from stylevault.governance.door import Request
    from stylevault.governance.outputs import runs

    request = Request(prompt=params.pop("prompt", "a quiet study in blue"), **{"steps": 2, "k": 3, **params})
    return runs.generate(catalogue, actor, request, folder, rdm_dir, out, device="cpu")


def lose_a_race(session, catalogue, image_id: int) -> None:
    """Doom this PostgreSQL transaction to a serialisation failure (40001) when it next locks image
    `image_id`: it takes a REPEATABLE READ snapshot, then another connection changes that row (to
    itself) and commits. A real failure from the server, provoked at a chosen step."""
    import sqlalchemy as sa

    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    session.execute(sa.text("SELECT 1"))
    with catalogue.engine.begin() as other:
        other.execute(
            sa.text("UPDATE image SET state_reason = state_reason WHERE id = :id"), {"id": image_id}
        )
