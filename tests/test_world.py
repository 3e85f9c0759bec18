"""The procedural style world: deterministic, captioned, with held-out styles the models never see."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from stylevault.generation import world
from stylevault.governance.shipped import load_world


def test_rendering_is_a_function_of_content_style_and_seed():
    content = world.CONTENTS[5]
    first = world.render(content, "ink-dots", 3)
    assert first.size == (world.SIZE, world.SIZE) and first.mode == "RGB"
    assert first.tobytes() == world.render(content, "ink-dots", 3).tobytes()
    assert first.tobytes() != world.render(content, "ink-dots", 4).tobytes()
    assert first.tobytes() != world.render(content, "candy-stripes", 3).tobytes()


def test_content_colour_survives_every_style():
    """The shape keeps its colour in every style: the centre pixel is near the content's colour."""
    for style in world.STYLES:
        for name, rgb in world.COLOURS.items():
            content = world.Content("square", name, "large", "centre")
            centre = np.asarray(world.render(content, style, 0), dtype=float)[14:18, 14:18].mean((0, 1))
            assert np.abs(centre - rgb).max() < 30, (style, name, centre)


def test_styles_differ_in_their_backgrounds():
    """Every two styles differ in the background's mean colour or in its texture (spread, or where
    the mean sits in the image): the judge and the encoder have something to see."""
    content = world.Content("circle", "red", "small", "left")
    backgrounds = {
        style: np.asarray(world.render(content, style, 0), dtype=float)[:, 24:] for style in world.STYLES
    }
    assert len(backgrounds) == len(world.PALETTES) * len(world.TEXTURES) == 64
    names = list(backgrounds)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            x, y = backgrounds[a], backgrounds[b]
            mean = np.abs(x.mean((0, 1)) - y.mean((0, 1))).max()
            spread = np.abs(x.std((0, 1)) - y.std((0, 1))).max()
            rows = np.abs(x.mean((1, 2)) - y.mean((1, 2))).max()  # a gradient or horizontal stripes
            columns = np.abs(x.mean((0, 2)) - y.mean((0, 2))).max()  # vertical stripes
            assert max(mean, spread, rows, columns) > 10, (a, b)


def test_held_out_styles_are_new_combinations_of_parts_seen_in_training():
    assert set(world.HELD_OUT) <= set(world.STYLES)
    assert not set(world.HELD_OUT) & set(world.TRAINING_STYLES)
    assert len(world.TRAINING_STYLES) + len(world.HELD_OUT) == len(world.STYLES)
    held = [world.STYLES[name] for name in world.HELD_OUT]
    assert len({s.palette for s in held}) == len({s.texture for s in held}) == len(held)
    training = [world.STYLES[name] for name in world.TRAINING_STYLES]
    for style in held:
        assert sum(s.palette == style.palette for s in training) == len(world.TEXTURES) - 1
        assert sum(s.texture == style.texture for s in training) == len(world.PALETTES) - 1
    # The demo collections' looks are signature styles, palette and texture of one index.
    assert world.SIGNATURE[0] == "candy-stripes" and {"night-grid", "ember-vstripes"} <= set(world.SIGNATURE)


def test_captions_name_content_and_style():
    sample = world.samples(["mint-checks"], contents=[world.Content("triangle", "blue", "large", "right")])[0]
    row = sample.row()
    assert row["content_caption"] == "a large blue triangle on the right"
    assert row["caption"] == "a large blue triangle on the right, mint checks style"
    assert (row["style"], row["shape"], row["colour"]) == ("mint-checks", "triangle", "blue")
    assert (row["palette"], row["texture"]) == ("mint", "checks")
    assert len(world.CONTENTS) == len({c.caption for c in world.CONTENTS}) == 72


def test_unknown_style_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown style 'sepia'"):
        world.samples(["sepia"])


def test_the_world_plugin_writes_collections(tmp_path):
    plugin = load_world()
    rows = plugin.write(tmp_path, ["night-grid"], contents=plugin.contents[:4])
    assert len(rows) == 4
    for row in rows:
        assert (tmp_path / row["path"]).is_file()
        assert row["style"] == "night-grid" and row["title"] == row["caption"]
    again = plugin.write(tmp_path / "again", ["night-grid"], contents=plugin.contents[:4])
    digest = [hashlib.sha256((tmp_path / r["path"]).read_bytes()).hexdigest() for r in rows]
    assert digest == [
        hashlib.sha256((tmp_path / "again" / r["path"]).read_bytes()).hexdigest() for r in again
    ]
    assert set(plugin.models()) == {"encoder", "rdm"}
