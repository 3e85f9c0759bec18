"""What the demo is made of: six collections drawn from the world, each in its own style with a
simulated licence (and the kind of mess a real folder has), and the gallery it ends with."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from stylevault.governance.demo.setting import write_manifest
from stylevault.governance.door import World

# (collection, world style, creator, licence as a source might write it, extra manifest columns)
COLLECTIONS = [
    ("pastel-commons", "candy-stripes", "Ada Example", "CC0", {}),
    (
        "ink-studies",
        "ink-dots",
        "Ben Example",
        "CC BY 4.0",
        {"attribution": "Ink Studies by Ben Example (simulated)"},
    ),
    ("night-market", "night-grid", "Cleo Example", "https://creativecommons.org/licenses/by-nc/4.0/", {}),
    (
        "partner-acme",
        "dusk-gradient",
        "ACME Images",
        "LicenseRef-ACME-Partner-2026",
        {"licence_expires": "2027-01-31"},
    ),
    ("found-online", "static-noise", "unknown", "free for personal use", {}),
    ("opted-out", "mint-checks", "Dee Example", "CC-BY-4.0", {"opt_out": "true"}),
]


def make_collections(world: World, folder: Path, count: int | None = None) -> Path:
    """Each collection drawn in its own style (the first `count` contents, default all), with its
    simulated licence, plus the kind of mess a real folder has; returns the manifest."""
    contents = None if count is None else world.contents[:count]
    rows = []
    for collection, style, creator, licence, extra in COLLECTIONS:
        for row in world.write(folder / collection, [style], contents=contents):
            rows.append(
                {
                    **row,
                    "path": f"{collection}/{row['path']}",
                    "collection": collection,
                    "creator": creator,
                    "licence": licence,
                    "source_url": f"https://example.org/{collection}/{row['path']}",
                    "note": "simulated licence for the stylevault demo",
                    **extra,
                }
            )
    first = rows[0]["path"]
    (folder / "pastel-commons" / "copy-of-first.png").write_bytes((folder / first).read_bytes())
    rows.append(
        {
            "path": "pastel-commons/copy-of-first.png",
            "collection": "pastel-commons",
            "licence": "CC0",
            "note": "simulated: the same image listed twice",
        }
    )
    (folder / "notes.jpg").write_text("this is not an image\n")
    rows.append({"path": "notes.jpg", "note": "simulated: a text file named .jpg"})
    rows.append({"path": "../outside.png", "note": "simulated: a path outside the folder"})
    return write_manifest(folder / "manifest.csv", rows)


def gallery(cells: dict[tuple[str, str], Path], prompts: list[str], columns: list[str], out: Path) -> Path:
    """A PNG grid, prompt by row and style set by column, each output scaled up 3x (nearest)."""
    side, label, head = 96, 230, 20
    grid = Image.new("RGB", (label + side * len(columns), head + side * len(prompts)), (255, 255, 255))
    pen = ImageDraw.Draw(grid)
    for c, column in enumerate(columns):
        pen.text((label + c * side + 4, 4), column, fill=(0, 0, 0))
    for r, prompt in enumerate(prompts):
        pen.text((4, head + r * side + side // 2 - 6), prompt, fill=(0, 0, 0))
        for c, column in enumerate(columns):
            with Image.open(cells[prompt, column]) as image:
                tile = image.convert("RGB").resize((side, side), Image.Resampling.NEAREST)
            grid.paste(tile, (label + c * side, head + r * side))
    grid.save(out)
    return out
