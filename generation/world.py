"""The procedural style world the demo models are trained on: licence-clean by construction.

An image is content (a shape of a colour, at a size and a position) rendered in a style (a
background texture in a palette, an outline weight, how much the drawing jitters). Every image comes
with its captions and its style label and is a pure function of (content, style, seed), so the
world can be regenerated anywhere.

A style is a palette (ground and accent colours, outline, jitter) on a texture: 8 palettes x 8
textures = 64 styles, named `palette-texture`. Four of them are held out of training entirely, one
per palette and one per texture, to test whether swapping the database moves the style of a model
that never saw it: each held-out palette and texture is seen in training on seven other textures or
palettes, never together. The eight styles whose palette and texture share an index are the world's
signature looks (candy-stripes, ink-dots, ...), the ones the demo's collections are drawn in.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from stylevault.generation import clip
from stylevault.governance.door import Recipe, World

SIZE = 32  # px, square
SUPERSAMPLE = 4  # geometry is drawn at 4x and box-reduced, so edges are anti-aliased

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (214, 38, 38),
    "green": (34, 160, 60),
    "blue": (40, 84, 226),
    "yellow": (240, 204, 24),
}
SIZES = {"small": 6.5, "large": 10.0}  # radius in px at SIZE
POSITIONS = {"left": 10.0, "centre": 16.0, "right": 22.0}  # x of the centre in px at SIZE


@dataclass(frozen=True)
class Style:
    """How an image is drawn, whatever it shows."""

    name: str
    texture: str  # plain, stripes, vstripes, dots, checks, gradient, noise, grid
    background: tuple[int, int, int]
    accent: tuple[int, int, int]  # the texture's second colour
    outline: int  # outline width in px at SIZE (0: none)
    outline_colour: tuple[int, int, int]
    jitter: float  # px of position and size jitter at SIZE

    @property
    def words(self) -> str:
        return self.name.replace("-", " ")

    @property
    def palette(self) -> str:
        return self.name.split("-")[0]


@dataclass(frozen=True)
class Palette:
    """The colours and the hand of a style, whatever its texture."""

    background: tuple[int, int, int]
    accent: tuple[int, int, int]  # the texture's second colour
    outline: int
    outline_colour: tuple[int, int, int]
    jitter: float


PALETTES = {
    "candy": Palette((250, 196, 214), (255, 246, 236), 0, (0, 0, 0), 0.5),
    "ink": Palette((38, 38, 44), (226, 226, 226), 1, (255, 255, 255), 0.5),
    "dusk": Palette((92, 48, 138), (236, 150, 104), 1, (20, 16, 30), 1.0),
    "static": Palette((128, 128, 128), (40, 40, 40), 0, (0, 0, 0), 1.5),
    "mint": Palette((170, 232, 206), (248, 252, 250), 1, (30, 70, 60), 0.5),
    "sand": Palette((222, 200, 160), (150, 112, 70), 2, (96, 60, 30), 2.0),
    "night": Palette((24, 40, 74), (120, 190, 210), 2, (250, 250, 250), 0.5),
    "ember": Palette((150, 64, 28), (70, 30, 14), 0, (0, 0, 0), 1.0),
}
TEXTURES = ("stripes", "dots", "gradient", "noise", "checks", "plain", "grid", "vstripes")

STYLES = {
    f"{name}-{texture}": Style(f"{name}-{texture}", texture, *astuple(palette))
    for name, palette in PALETTES.items()
    for texture in TEXTURES
}
# The signature looks: palette and texture of the same index (candy-stripes, ink-dots, ...).
SIGNATURE = tuple(f"{name}-{texture}" for name, texture in zip(PALETTES, TEXTURES, strict=True))
# Held out of training: one per palette and per texture, each part seen in training elsewhere.
HELD_OUT = ("night-grid", "ember-vstripes", "mint-dots", "sand-stripes")
TRAINING_STYLES = tuple(name for name in STYLES if name not in HELD_OUT)


@dataclass(frozen=True)
class Content:
    shape: str
    colour: str
    size: str
    position: str

    @property
    def caption(self) -> str:
        """What a user would ask for: `a large red circle on the left`."""
        where = "in the centre" if self.position == "centre" else f"on the {self.position}"
        return f"a {self.size} {self.colour} {self.shape} {where}"


CONTENTS = tuple(
    Content(*values) for values in itertools.product(SHAPES, COLOURS, SIZES, POSITIONS)
)  # 3 x 4 x 2 x 3 = 72


def caption(content: Content, style: str) -> str:
    """The full caption: content, then style."""
    return f"{content.caption}, {STYLES[style].words} style"


def _rng(*parts) -> random.Random:
    """A generator seeded from the parts' text, the same on every machine and Python."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _background(style: Style, rng: random.Random) -> Image.Image:
    side = SIZE * SUPERSAMPLE
    image = Image.new("RGB", (side, side), style.background)
    pen = ImageDraw.Draw(image)
    s = SUPERSAMPLE
    phase = rng.randrange(6) * s
    if style.texture == "stripes":
        for y in range(-6 * s + phase, side, 6 * s):
            pen.rectangle([0, y, side, y + 3 * s - 1], fill=style.accent)
    elif style.texture == "vstripes":
        for x in range(-6 * s + phase, side, 6 * s):
            pen.rectangle([x, 0, x + 3 * s - 1, side], fill=style.accent)
    elif style.texture == "dots":
        for y in range(2 * s + phase // 2, side, 6 * s):
            for x in range(2 * s + phase // 2, side, 6 * s):
                pen.ellipse([x - 1.2 * s, y - 1.2 * s, x + 1.2 * s, y + 1.2 * s], fill=style.accent)
    elif style.texture == "checks":
        cell = 4 * s
        for y in range(0, side, cell):
            for x in range(0, side, cell):
                if (x // cell + y // cell) % 2:
                    pen.rectangle([x, y, x + cell - 1, y + cell - 1], fill=style.accent)
    elif style.texture == "grid":
        for v in range(phase % (8 * s), side, 8 * s):
            pen.rectangle([v, 0, v + s - 1, side], fill=style.accent)
            pen.rectangle([0, v, side, v + s - 1], fill=style.accent)
    elif style.texture == "gradient":
        top, bottom = np.array(style.background, float), np.array(style.accent, float)
        t = np.linspace(0, 1, side)[:, None, None]
        rows = (top * (1 - t) + bottom * t).round().astype(np.uint8)  # (side, 1, 3)
        image = Image.fromarray(np.ascontiguousarray(np.broadcast_to(rows, (side, side, 3))), "RGB")
    elif style.texture not in ("plain", "noise"):
        raise ValueError(f"style {style.name}: unknown texture {style.texture!r}")
    return image


def _shape(pen: ImageDraw.ImageDraw, content: Content, style: Style, rng: random.Random) -> None:
    s = SUPERSAMPLE
    x = (POSITIONS[content.position] + rng.uniform(-style.jitter, style.jitter)) * s
    y = (16.0 + rng.uniform(-style.jitter, style.jitter)) * s
    r = (SIZES[content.size] + rng.uniform(-style.jitter, style.jitter) / 2) * s
    fill = tuple(int(np.clip(c + rng.randint(-12, 12), 0, 255)) for c in COLOURS[content.colour])
    outline = style.outline_colour if style.outline else None
    width = style.outline * s
    if content.shape == "circle":
        pen.ellipse([x - r, y - r, x + r, y + r], fill=fill, outline=outline, width=width)
    elif content.shape == "square":
        side = r * 0.9
        pen.rectangle([x - side, y - side, x + side, y + side], fill=fill, outline=outline, width=width)
    elif content.shape == "triangle":
        points = [(x, y - r), (x + r * 1.05, y + r * 0.85), (x - r * 1.05, y + r * 0.85)]
        pen.polygon(points, fill=fill, outline=outline, width=width)
    else:
        raise ValueError(f"unknown shape {content.shape!r}")


def render(content: Content, style: str, seed: int = 0) -> Image.Image:
    """One SIZE x SIZE RGB image of `content` drawn in `style`; the same arguments, the same pixels."""
    look = STYLES[style]
    rng = _rng(content.caption, style, seed)
    image = _background(look, rng)
    _shape(ImageDraw.Draw(image), content, look, rng)
    image = image.resize((SIZE, SIZE), Image.Resampling.BOX)
    if look.texture == "noise":
        pixels = np.asarray(image, dtype=np.float32)
        grain = np.random.default_rng(rng.randrange(2**32)).normal(0, 34, (SIZE, SIZE, 1))
        background = np.all(np.abs(pixels - np.array(look.background)) < 1, axis=-1, keepdims=True)
        pixels = np.where(background, pixels + grain, pixels)
        image = Image.fromarray(pixels.clip(0, 255).round().astype(np.uint8), "RGB")
    elif look.jitter >= 1.5:
        image = image.filter(ImageFilter.SMOOTH)
    return image


@dataclass(frozen=True)
class Sample:
    content: Content
    style: str
    seed: int

    @property
    def name(self) -> str:
        c = self.content
        return f"{self.style}/{c.shape}-{c.colour}-{c.size}-{c.position}-{self.seed}.png"

    def image(self) -> Image.Image:
        return render(self.content, self.style, self.seed)

    def row(self) -> dict:
        """The manifest columns the world adds (kept by ingest as raw metadata)."""
        c = self.content
        return {
            "caption": caption(c, self.style),
            "content_caption": c.caption,
            "style": self.style,
            "palette": STYLES[self.style].palette,
            "texture": STYLES[self.style].texture,
            "shape": c.shape,
            "colour": c.colour,
            "size": c.size,
            "position": c.position,
        }


def samples(styles, *, per_content: int = 1, contents=CONTENTS, seed: int = 0) -> list[Sample]:
    """Every content in every style, `per_content` variants each, in a fixed order."""
    for style in styles:
        if style not in STYLES:
            raise ValueError(f"unknown style {style!r} (known: {', '.join(STYLES)})")
    return [
        Sample(content, style, seed + n)
        for style in styles
        for content in contents
        for n in range(per_content)
    ]


def write(folder: Path, chosen: list[Sample]) -> list[dict]:
    """Render `chosen` under `folder` (one sub-folder per style); returns manifest rows with `path`."""
    rows = []
    for sample in chosen:
        path = folder / sample.name
        path.parent.mkdir(parents=True, exist_ok=True)
        sample.image().save(path)
        rows.append({"path": sample.name, "title": sample.row()["caption"], **sample.row()})
    return rows


# How the shipped models were trained (README: the demo world and the demo models).
RECIPE = Recipe(
    trainer="demo",
    encoder="clip",
    model="rdm",
    options={
        "clip": {"steps": 3000, "batch_size": 128, "lr": 1e-3},
        "rdm": {
            "steps": 8000,
            "batch_size": 32,
            "lr": 1e-3,
            "text_to_time": True,
            "neighbours_by": "style",
            "neighbour_pool": 32,
        },
    },
    per_content=2,
)


class DemoWorld(World):
    """The world and the models trained on it, registered as `demo` in `stylevault.worlds`, so that
    governance's demo reaches them without importing this package."""

    name = "demo"
    styles = tuple(STYLES)
    held_out = HELD_OUT
    training_styles = TRAINING_STYLES
    contents = tuple(content.caption for content in CONTENTS)
    recipe = RECIPE

    def write(
        self, folder: Path, styles, *, per_content: int = 1, seed: int = 0, contents=None
    ) -> list[dict]:
        """Render every content (or the named content captions) in `styles` under `folder`; returns
        manifest rows (path, title, caption, content_caption, style, shape, colour, size, position)."""
        chosen = CONTENTS if contents is None else tuple(c for c in CONTENTS if c.caption in set(contents))
        return write(Path(folder), samples(styles, per_content=per_content, contents=chosen, seed=seed))

    def models(self) -> dict[str, Path]:
        """The shipped demo models: `encoder` (open_clip local-dir) and `rdm` (stylevault-rdm)."""
        root = Path(__file__).resolve().parent / "demo_models"
        return {"encoder": root / "clip", "rdm": root / "rdm"}

    def untrained_encoder(self, folder: Path, seed: int = 0) -> Path:
        return clip.untrained_encoder(folder, seed)

    @contextmanager
    def running(self) -> Iterator[None]:
        """One intra-op thread: the demo models are tiny, and threads cost more than they save (one
        UNet call of the demo RDM took 37 ms on one thread and 870 ms on two, on this project's shared
        2-core machine)."""
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
