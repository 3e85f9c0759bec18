"""Shipped models have names that work from any folder, and a local encoder is recorded absolute."""

from __future__ import annotations

import pytest

from stylevault.governance.errors import BadInput
from stylevault.governance.index.encoders import EncoderSpec, load_encoder
from stylevault.governance.shipped import load_world, shipped_model


def test_stylevault_demo_names_the_shipped_encoder_and_rdm_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository root, where generation/demo_models/ was reachable
    models = load_world().models()
    spec = EncoderSpec.parse("stylevault:demo")
    assert (spec.kind, spec.model, spec.text) == ("local-dir", str(models["encoder"]), "stylevault:demo")
    encoder = load_encoder("stylevault:demo", device="cpu")
    assert encoder.describe()["spec"] == "stylevault:demo"
    assert encoder.id.startswith("clip@sha256:")
    assert shipped_model("stylevault:demo", "rdm") == models["rdm"]
    assert shipped_model("models/rdm", "rdm") is None


def test_a_relative_local_dir_encoder_is_recorded_with_its_absolute_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = EncoderSpec.parse("local-dir:encoders/tiny")
    assert spec.text == f"local-dir:{tmp_path / 'encoders' / 'tiny'}"
    assert spec.label == "tiny"


@pytest.mark.parametrize("text", ["stylevault:", "stylevault:no-such-world"])
def test_an_unknown_shipped_name_is_one_line(text):
    with pytest.raises(BadInput, match=r"stylevault:|no demo world 'no-such-world'"):
        EncoderSpec.parse(text)
