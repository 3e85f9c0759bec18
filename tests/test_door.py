"""The plugin door: one loader for every extension point, each plugin checked against its Protocol,
optional hooks inherited from it, and what a request leaves open settled by the generator."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from stylevault.governance import door
from stylevault.governance.door import GENERATORS, TRAINERS, WORLDS, Generator, Request
from stylevault.governance.errors import BadInput


class Complete(Generator):
    """A generator that declares only what it must: it inherits `recommended_guidance`."""

    name = "complete"
    samplers = ("euler", "heun")
    default_guidance = 3.0

    def load_model(self, path: Path, *, device: str | None = None):
        return path

    def generate(self, model, request, index, encoder, recorder):
        return []

    def import_model(self, fmt, source, config, out, **options):
        return out


class Incomplete:
    """Has no samplers, no import_model and does not subclass the Protocol."""

    name = "incomplete"
    default_guidance = 3.0

    def load_model(self, path, *, device=None):
        return path

    def generate(self, model, request, index, encoder, recorder):
        return []


@pytest.fixture
def installed(monkeypatch):
    entries = [
        EntryPoint("complete", f"{__name__}:Complete", GENERATORS.group),
        EntryPoint("incomplete", f"{__name__}:Incomplete", GENERATORS.group),
    ]
    monkeypatch.setattr(door, "entry_points", lambda group: [e for e in entries if e.group == group])


def test_the_loader_checks_a_plugin_against_its_protocol(installed):
    assert isinstance(door.load(GENERATORS, "complete"), Complete)
    assert door.available(GENERATORS) == ["complete", "incomplete"]
    lacks = r"generator 'incomplete' .* lacks import_model, recommended_guidance, samplers of the Generator"
    with pytest.raises(BadInput, match=lacks):
        door.load(GENERATORS, "incomplete")
    none = r"no trainer 'demo' in entry-point group stylevault.trainers \(installed: none\)"
    with pytest.raises(BadInput, match=none):
        door.load(TRAINERS)


def test_settle_takes_the_generators_defaults_and_refuses_a_sampler_it_lacks():
    plugin = Complete()
    settled = door.settle(plugin, None, Request(prompt="p"))
    assert (settled.sampler, settled.guidance) == ("euler", 3.0)  # the inherited hook: the default
    assert door.settle(plugin, None, Request(prompt="p", guidance=1.5, sampler="heun")).guidance == 1.5
    with pytest.raises(BadInput, match=r"--sampler: 'ddim' is not one of euler, heun"):
        door.settle(plugin, None, Request(prompt="p", sampler="ddim"))


def test_our_plugins_pass_their_protocols():
    generator = door.load(GENERATORS)
    assert generator.samplers[0] == "ddim" and generator.default_guidance == 5.0
    assert set(door.load(TRAINERS).options) == {"clip", "rdm"}
    world = door.load(WORLDS)
    assert world.recipe.encoder in door.load(TRAINERS, world.recipe.trainer).options
