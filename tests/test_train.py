"""`stylevault train`: models trained from a cleared index carry that index's provenance.

Real tiny training runs (a couple of steps) on a real catalogue, index and world; what is checked
is the data path and the record, not how good a two-step model is.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import torch

from stylevault.governance.catalogue import audit
from stylevault.governance.curation import stylesets
from stylevault.governance.demo.setting import write_manifest
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.index import builds as index
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import review
from stylevault.governance.outputs import training
from stylevault.governance.shipped import load_world
from tests.factories import run_generate

FAST = {"steps": 2, "batch_size": 8, "progress": False, "device": "cpu"}
ON = date(2026, 11, 27)


@pytest.fixture
def world_index(catalogue, team, encoder_dir, tmp_path):
    """Two world styles (12 contents each), approved, published as `world@1` and indexed under the
    commercial policy with the tiny encoder: (catalogue, index folder)."""
    plugin = load_world()
    rows = plugin.write(tmp_path / "w", ["candy-stripes", "ink-dots"], contents=plugin.contents[:12])
    for row in rows:
        row.update(collection="world", licence="CC0-1.0")
    ingest(
        catalogue, "sam", tmp_path / "w", manifest=write_manifest(tmp_path / "w.csv", rows), progress=False
    )
    with catalogue.write() as session:
        review.decide(session, "lee", "approve", [str(i) for i in range(1, len(rows) + 1)], None)
        stylesets.create(session, "sam", "world")
        stylesets.add(session, "sam", "world", collection="world")
        stylesets.publish(session, "sam", "world")
    folder = tmp_path / "idx"
    index.build(catalogue, "sam", "world", "commercial", f"local-dir:{encoder_dir}", folder, on=ON)
    return catalogue, folder


def test_the_training_set_is_the_index_with_its_captions(world_index):
    catalogue, folder = world_index
    data = training.open_set(catalogue, "gia", folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [item.image_id for item in data.items] == manifest["member_ids"]
    assert data.provenance["index"]["manifest_sha256"] == index.sha256_file(folder / "manifest.json")
    assert data.provenance["policy"]["name"] == "commercial"
    assert data.provenance["styleset"]["name"] == "world" and data.provenance["styleset"]["version"] == 1
    captions = data.metadata("caption")
    assert all(caption.endswith(" style") for caption in captions)
    image = data.read(data.items[0].sha256)
    assert image.size == (32, 32) and image.mode == "RGB"


def test_neighbours_exclude_the_image_and_its_near_duplicates(world_index):
    from stylevault.generation.train import NEAR_DUPLICATE_BITS, neighbours
    from stylevault.governance.index.encoders import load_encoder

    catalogue, folder = world_index
    data = training.open_set(catalogue, "gia", folder)
    near = neighbours(data, load_encoder(data.handle.manifest["encoder"]["spec"], device="cpu"), 4)
    assert near.shape == (len(data.items), 4)
    phash = {item.image_id: int(item.phash, 16) for item in data.items}
    for item, row in zip(data.items, near, strict=True):
        assert item.image_id not in row
        assert all(bin(phash[int(n)] ^ phash[item.image_id]).count("1") > NEAR_DUPLICATE_BITS for n in row)


def test_style_words_are_the_caption_less_its_content():
    from stylevault.generation.train import style_words

    assert style_words("a red circle on the left, ink dots style", "a red circle on the left") == (
        "ink dots style"
    )
    assert style_words("ink dots, a red circle", "a red circle") == "ink dots, a red circle"
    assert style_words("a red circle", "a red circle") == "a red circle"


def test_style_neighbours_are_found_by_the_style_words_alone(world_index):
    """Members of one style share one query (their style words), so their pools are the same list
    less themselves and their near-duplicates; the content plays no part."""
    from stylevault.generation.train import NEAR_DUPLICATE_BITS, style_neighbours, style_words
    from stylevault.governance.index.encoders import load_encoder

    catalogue, folder = world_index
    data = training.open_set(catalogue, "gia", folder)
    encoder = load_encoder(data.handle.manifest["encoder"]["spec"], device="cpu")
    pool = style_neighbours(data, encoder, 6)
    assert pool.shape == (len(data.items), 6)
    phash = {item.image_id: int(item.phash, 16) for item in data.items}
    words = [style_words(item.metadata["caption"], item.metadata["content_caption"]) for item in data.items]
    assert set(words) == {"candy stripes style", "ink dots style"}
    query = encoder.encode_texts(sorted(set(words)))
    ranked = dict(zip(sorted(set(words)), data.handle.search(query, len(data.items))[0], strict=True))
    for item, text, row in zip(data.items, words, pool, strict=True):
        allowed = [
            int(c)
            for c in ranked[text]
            if c != item.image_id
            and bin(phash[int(c)] ^ phash[item.image_id]).count("1") > NEAR_DUPLICATE_BITS
        ]
        assert list(row) == allowed[:6]


def test_train_rdm_by_style_records_it_and_a_bad_choice_is_named(world_index, cli, tmp_path):
    catalogue, folder = world_index
    common = ["train", "rdm", "--index", folder, "--steps", "1", "--batch-size", "4", "--device", "cpu"]
    result = cli(
        *common,
        "--out",
        tmp_path / "m",
        "--neighbours-by",
        "style",
        "--neighbour-pool",
        "6",
        "--json",
        actor="gia",
    )
    assert result.exit_code == 0, result.output
    training_record = json.loads(result.stdout)["training"]
    assert training_record["neighbours_by"].startswith("text embedding of the caption's style words")
    assert training_record["neighbour_pool"] == 6
    refused = cli(*common, "--out", tmp_path / "n", "--neighbours-by", "colour", actor="gia")
    assert (
        refused.exit_code == 2 and "--neighbours-by: 'colour' is not one of caption, style" in refused.stderr
    )


def test_train_clip_records_its_index_and_loads_as_an_encoder(world_index, tmp_path):
    from stylevault.governance.index.encoders import load_encoder

    catalogue, folder = world_index
    result = training.train(catalogue, "gia", "clip", folder, tmp_path / "clip", **FAST)
    encoder = load_encoder(f"local-dir:{tmp_path / 'clip'}", device="cpu")
    assert result["model_id"] == encoder.id
    assert encoder.encode_texts(["a large red circle on the left"]).shape == (1, 64)
    card = json.loads((tmp_path / "clip" / "training.json").read_text())
    assert card["trained_on"]["index"]["manifest_sha256"] == index.sha256_file(folder / "manifest.json")
    assert card["training"]["steps"] == 2
    # The texts it learns: 24 full captions (2 styles x 12 contents), 12 content captions, 2 style words.
    assert card["training"]["captions"] == 24 + 12 + 2
    assert "commercial" in (tmp_path / "clip" / "README.md").read_text()
    with catalogue.read() as session:
        events = [e for e in audit.log(session) if e["action"] == "model.train"]
    assert [(e["actor"], e["target"]) for e in events] == [("gia", f"model:{encoder.id}")]
    assert events[0]["after"]["index"]["manifest_sha256"] == card["trained_on"]["index"]["manifest_sha256"]


def test_train_rdm_then_generate_with_it(world_index, tmp_path):
    catalogue, folder = world_index
    result = training.train(catalogue, "gia", "rdm", folder, tmp_path / "rdm", k=3, **FAST)
    config = json.loads((tmp_path / "rdm" / "rdm.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert config["space"] == "pixel" and config["patch_size"] == 2
    assert config["encoder_id"] == manifest["encoder"]["id"]
    trained_on = config["source"]["trained_on"]
    assert trained_on["index"]["manifest_sha256"] == index.sha256_file(folder / "manifest.json")
    assert trained_on["policy"]["sha256"] == manifest["policy"]["sha256"]
    assert config["source"]["training"]["k"] == 3
    assert "vae" not in {p.name for p in (tmp_path / "rdm").iterdir()}
    made = run_generate(catalogue, folder, tmp_path / "rdm", tmp_path / "out", n=2)
    from PIL import Image

    with Image.open(tmp_path / "out" / made.files[0]) as image:
        assert image.size == (32, 32)
    assert made.record["model"]["id"] == result["model_id"]


def test_text_to_time_feeds_the_caption_to_every_block(world_index, tmp_path):
    """`--text-to-time`: the UNet also takes the context's text token as its class label (added to the
    timestep embedding); the sampler passes it, and generation with such a model works end to end."""
    from stylevault.generation.model import load_model
    from stylevault.generation.sampling import denoise

    catalogue, folder = world_index
    training.train(catalogue, "gia", "rdm", folder, tmp_path / "rdm", k=2, text_to_time=True, **FAST)
    config = json.loads((tmp_path / "rdm" / "rdm.json").read_text())
    assert config["source"]["training"]["text_to_time"] is True
    unet = load_model(tmp_path / "rdm").unet
    assert unet.config.class_embed_type == "projection"
    torch.manual_seed(0)
    x, context = torch.randn(2, 12, 16, 16), torch.randn(2, 3, config["context_dim"])
    t = torch.tensor([500, 500])
    with torch.no_grad():
        with_label = denoise(unet, x, t, context)
        zero_label = unet(x, t, encoder_hidden_states=context, class_labels=torch.zeros_like(context[:, 0]))
    assert not torch.allclose(with_label, zero_label.sample)
    made = run_generate(catalogue, folder, tmp_path / "rdm", tmp_path / "out", n=2)
    assert len(made.files) == 2


def test_resume_carries_on_from_the_checkpoint(world_index, tmp_path):
    catalogue, folder = world_index
    options = {**FAST, "steps": 4, "checkpoint_every": 2}
    training.train(catalogue, "gia", "rdm", folder, tmp_path / "rdm", k=2, **options)
    assert (tmp_path / "rdm.ckpt" / "state.pt").is_file()
    shutil.rmtree(tmp_path / "rdm")
    training.train(catalogue, "gia", "rdm", folder, tmp_path / "rdm", k=2, resume=True, **{**options})
    config = json.loads((tmp_path / "rdm" / "rdm.json").read_text())
    assert config["source"]["training"]["resumed_at"] == 2
    with pytest.raises(BadInput, match="made for other data or settings"):
        shutil.rmtree(tmp_path / "rdm")
        training.train(
            catalogue, "gia", "rdm", folder, tmp_path / "rdm", k=2, resume=True, **{**options, "steps": 6}
        )


class _Planted:
    """A pickle that writes a file when it is loaded: what a hostile state.pt would do."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (Path.write_text, (Path(self.target), "owned"))


def test_resume_refuses_a_planted_checkpoint_without_running_it(world_index, tmp_path):
    catalogue, folder = world_index
    options = {**FAST, "steps": 4, "checkpoint_every": 2}
    training.train(catalogue, "gia", "rdm", folder, tmp_path / "rdm", k=2, **options)
    state = tmp_path / "rdm.ckpt" / "state.pt"
    real = torch.load(state, map_location="cpu", weights_only=True)
    proof = tmp_path / "proof.txt"
    torch.save({**real, "extra": _Planted(proof)}, state)
    shutil.rmtree(tmp_path / "rdm")
    with pytest.raises(BadInput, match="holds more than tensors and plain data and was refused unread"):
        training.train(catalogue, "gia", "rdm", folder, tmp_path / "rdm", k=2, resume=True, **options)
    assert not proof.exists()
    assert not (tmp_path / "rdm").exists()


def test_training_is_refused_like_generation(world_index, tmp_path):
    catalogue, folder = world_index
    with pytest.raises(Refused, match="needs the generator role"):
        training.train(catalogue, "sam", "clip", folder, tmp_path / "a", **FAST)
    with pytest.raises(BadInput, match="trains clip, rdm, not 'vae'"):
        training.train(catalogue, "gia", "vae", folder, tmp_path / "b", **FAST)
    member = json.loads((folder / "manifest.json").read_text())["member_ids"][0]
    with catalogue.write() as session:
        review.decide(session, "lee", "revoke", [str(member)], "takedown")
    with pytest.raises(Refused, match="stale"):
        training.train(catalogue, "gia", "clip", folder, tmp_path / "c", **FAST)
    assert not (tmp_path / "c").exists()


def test_members_without_captions_are_named(indexed, tmp_path):
    catalogue, folder = indexed
    with pytest.raises(BadInput, match=r"image \d+: its source metadata has no 'caption'"):
        training.train(catalogue, "gia", "clip", folder, tmp_path / "clip", **FAST)


def test_cli_train_rdm_json(world_index, cli, tmp_path):
    catalogue, folder = world_index
    result = cli(
        "train",
        "rdm",
        "--index",
        folder,
        "--out",
        tmp_path / "m",
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--json",
        actor="gia",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["model_id"].startswith("rdm@sha256:")
    assert body["trained_on"]["styleset"] == json.loads((folder / "manifest.json").read_text())["styleset"]
    refused = cli("train", "rdm", "--index", folder, "--out", tmp_path / "m", "--steps", "1", actor="gia")
    assert refused.exit_code == 2 and "exists and is not empty" in refused.stderr
    assert np.isfinite(body["training"]["final_loss"])
