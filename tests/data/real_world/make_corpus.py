"""Writes the real-world regression corpus beside this file (run once; the files are committed).

Shaped like the Debian packages stylevault was tried on (icon themes, clip art, wallpapers, game art,
Tux Paint stamps), drawn here so its licence is ours (CC0): white line art on a transparent ground,
SVG clip art (one referencing a local file and a URL that must never be fetched), large-ish JPEG
wallpapers, one picture shipped three times under one URL with different licences, and the licence
spellings the packages' copyright files use, copied as written. `manifest.csv` lists every file.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
URL = "https://sources.debian.org/src"


def icon(shape: str, size: int = 64) -> Image.Image:
    """White strokes on a fully transparent ground, as icon themes draw symbolic icons."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    white, m, s = (255, 255, 255, 255), 10, size - 10
    if shape == "circle":
        draw.ellipse((m, m, s, s), outline=white, width=5)
    elif shape == "square":
        draw.rectangle((m, m, s, s), outline=white, width=5)
    elif shape == "triangle":
        draw.polygon([(size // 2, m), (s, s), (m, s)], outline=white, width=5)
    elif shape == "cross":
        draw.line((m, m, s, s), fill=white, width=6)
        draw.line((m, s, s, m), fill=white, width=6)
    elif shape == "plus":
        draw.line((size // 2, m, size // 2, s), fill=white, width=6)
        draw.line((m, size // 2, s, size // 2), fill=white, width=6)
    elif shape == "star":
        points = [
            (
                size / 2 + (22 if k % 2 == 0 else 9) * math.sin(k * math.pi / 5),
                size / 2 - (22 if k % 2 == 0 else 9) * math.cos(k * math.pi / 5),
            )
            for k in range(10)
        ]
        draw.polygon(points, outline=white, width=4)
    elif shape == "arrow":
        draw.line((m, size // 2, s, size // 2), fill=white, width=6)
        draw.polygon([(s, size // 2), (s - 16, size // 2 - 12), (s - 16, size // 2 + 12)], fill=white)
    elif shape == "bars":
        for x in range(m, s, 12):
            draw.line((x, m, x, s), fill=white, width=4)
    return image


def sprite(seed: int) -> Image.Image:
    """Opaque pixel-art game tiles, each different."""
    image = Image.new("RGB", (48, 48), (20 + seed * 30, 90, 160 - seed * 20))
    draw = ImageDraw.Draw(image)
    for k in range(6):
        x, y = (seed * 7 + k * 11) % 40, (seed * 13 + k * 5) % 40
        draw.rectangle((x, y, x + 8, y + 8), fill=(255 - k * 30, 200 - seed * 40, k * 40))
    return image


def wallpaper(seed: int) -> Image.Image:
    width, height = 960, 540
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        draw.line((0, y, width, y), fill=(y * 255 // height, 80 + seed * 60, 255 - y * 255 // height))
    draw.ellipse((300 + seed * 100, 120, 600 + seed * 100, 420), fill=(250, 230, 120))
    return image


SVG = """<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="{w}" height="{h}"
     viewBox="0 0 100 100">
  <title>{title}</title>
  {body}
</svg>
"""
CLIPART = {
    "apple.svg": (
        '<circle cx="50" cy="55" r="35" fill="#c0302a"/><rect x="47" y="8" width="6" height="18" '
        'fill="#5a3a1a"/>',
        128,
        128,
    ),
    "house.svg": (
        '<rect x="20" y="45" width="60" height="45" fill="#d9b36c"/><polygon points="10,50 50,12 '
        '90,50" fill="#8a2d1d"/>',
        128,
        128,
    ),
    "sun.svg": (
        '<circle cx="50" cy="50" r="22" fill="#f5c518"/>'
        + "".join(
            f'<line x1="50" y1="50" x2="{50 + 45 * math.cos(a / 4 * math.pi):.1f}" '
            f'y2="{50 + 45 * math.sin(a / 4 * math.pi):.1f}" stroke="#f5a518" stroke-width="4"/>'
            for a in range(8)
        ),
        128,
        128,
    ),
    "line-art.svg": (
        '<path d="M10 80 Q 50 10 90 80" stroke="#ffffff" stroke-width="6" fill="none"/>',
        96,
        96,
    ),
    # References a local file and a URL: both must stay unfetched, the picture renders without them,
    # and the references are recorded.
    "tux-badge.svg": (
        '<circle cx="50" cy="50" r="40" fill="#222"/>'
        '<image x="20" y="20" width="60" height="60" xlink:href="file:///etc/passwd"/>'
        '<image x="20" y="20" width="60" height="60" href="https://example.com/tux.png"/>',
        128,
        128,
    ),
}

# (path, source_url, collection, licence as the package's copyright file writes it)
ROWS: list[tuple[str, str, str, str]] = []


def main() -> None:
    shapes = ["circle", "square", "triangle", "cross", "plus", "star", "arrow", "bars"]
    icon_licences = [
        "GPL-2+",
        "LGPL-2.1+",
        "Expat",
        "CC-BY-SA-3.0+",
        "GPL-3+",
        "LGPL-3+",
        "Apache 2.0",
        "The MIT License",
    ]
    for shape, licence in zip(shapes, icon_licences, strict=True):
        path = f"icons/symbolic/{shape}-symbolic.png"
        (HERE / path).parent.mkdir(parents=True, exist_ok=True)
        icon(shape).save(HERE / path)
        ROWS.append((path, f"{URL}/adwaita-icon-theme/{shape}", "icon-theme", licence))
    clip_licences = ["Creative Commons Zero", "CC0", "public domain", "GPL-2", "CC BY-SA 3.0 IGO"]
    for (name, (body, w, h)), licence in zip(CLIPART.items(), clip_licences, strict=True):
        path = f"clipart/{name}"
        (HERE / path).parent.mkdir(parents=True, exist_ok=True)
        (HERE / path).write_text(SVG.format(w=w, h=h, title=name[:-4], body=body), encoding="utf-8")
        ROWS.append((path, f"{URL}/openclipart/{name}", "clip-art", licence))
    wall_licences = [
        "Creative Commons Attribution 4.0 International Public License",
        "Attribution-ShareAlike 4.0 International",
    ]
    for n, licence in enumerate(wall_licences):
        path = f"wallpapers/dawn-{n}.jpg"
        (HERE / path).parent.mkdir(parents=True, exist_ok=True)
        wallpaper(n).save(HERE / path, quality=85)
        ROWS.append((path, f"{URL}/desktop-base/dawn-{n}", "wallpapers", licence))
    game_licences = [
        "GPL-3+ or CC-BY-SA-3.0",
        "CC BY 4.0 OR MIT",
        "CC-BY-SA-4.0",
        "GPL-2+ with Font exception",
    ]
    for n, licence in enumerate(game_licences):
        path = f"games/tiles/tile-{n}.png"
        (HERE / path).parent.mkdir(parents=True, exist_ok=True)
        sprite(n).save(HERE / path)
        ROWS.append((path, f"{URL}/freedroid/tile-{n}", "game-art", licence))
    # Tux Paint ships one stamp three times under one URL, with two licences: three sources of one image.
    stamp = sprite(5)
    for n, licence in enumerate(["GPL-3+ or CC-BY-SA-3.0", "GPL-3+ or CC-BY-SA-3.0", "GPL-2+"]):
        path = f"stamps/animals/penguin-{n}.png"
        (HERE / path).parent.mkdir(parents=True, exist_ok=True)
        stamp.save(HERE / path)
        ROWS.append((path, f"{URL}/tuxpaint-stamps/penguin", "stamps", licence))
    # The same icon in a second theme, under another URL and the same licence: a second source.
    (HERE / "icons/legacy").mkdir(parents=True, exist_ok=True)
    icon("circle").save(HERE / "icons/legacy/circle.png")
    ROWS.append(("icons/legacy/circle.png", f"{URL}/gnome-icon-theme/circle", "icon-theme", "GPL-2+"))
    with open(HERE / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "source_url", "collection", "licence"])
        writer.writerows(ROWS)


if __name__ == "__main__":
    main()
