"""Audited generation: the RDM pipeline through the plugin boundary, outputs with their provenance,
refusals, and the auditor's tools (show, affected, reproduce). Tiny real models, CPU, seeded."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stylevault.governance.catalogue import audit
from stylevault.governance.door import available
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.index import builds as index
from stylevault.governance.index import verification
from stylevault.governance.index.encoders import load_encoder
from stylevault.governance.index.handle import IndexHandle
from stylevault.governance.legal import review
from stylevault.governance.outputs import provenance, runs
from tests.factories import run_generate as run

TODAY = date(2026, 11, 27)


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_the_generator_is_found_through_its_entry_point():
    assert "rdm" in available()


def test_outputs_carry_their_provenance(indexed, rdm_dir, tmp_path):
    catalogue, folder = indexed
    made = run(catalogue, folder, rdm_dir, tmp_path / "out", n=2, seed=7)
    out = Path(made.out)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*made.files, *(f[:-4] + ".json" for f in made.files), "ATTRIBUTION.md"]
    )
    first = Image.open(out / made.files[0])
    assert first.text["stylevault:run"] == made.run_id and first.text["stylevault:output"] == "0"
    manifest_sha = verification.read_manifest(folder)[1]
    assert first.text["stylevault:manifest_sha256"] == manifest_sha
    assert first.text["stylevault:prompt"] == "a quiet study in blue"
    assert json.loads(first.text["stylevault:parameters"])["seed"] == 7
    sidecar = json.loads((out / (made.files[1][:-4] + ".json")).read_text())
    assert sidecar["seed"] == 8 and sidecar["steps"] == 2 and sidecar["k"] == 3
    assert sidecar["model"]["id"].startswith("rdm@sha256:") and len(sidecar["model"]["weights_sha256"]) == 64
    assert sidecar["index"]["manifest_sha256"] == manifest_sha
    assert sidecar["output"]["sha256"] == index.sha256_file(out / made.files[1])
    assert [n["rank"] for n in sidecar["neighbours"]] == [1, 2, 3]
    for n in sidecar["neighbours"]:
        assert n["licence"] and n["sha256"] and n["title"].startswith("Study") and -1 <= n["score"] <= 1
    assert "Attribution notice" in sidecar["attribution_notice"]

    # The neighbours are exactly what the index returns for the prompt's embedding.
    handle = IndexHandle.open(catalogue, folder, on=TODAY)
    encoder = load_encoder(handle.manifest["encoder"]["spec"])
    ids, _ = handle.search(encoder.encode_texts(["a quiet study in blue"]), 3)
    assert [n["image_id"] for n in sidecar["neighbours"]] == list(ids[0])

    notice = (out / "ATTRIBUTION.md").read_text()
    for n in sidecar["neighbours"]:
        assert f"\u201cStudy {n['image_id'] - 1}\u201d by Artist {n['image_id'] - 1}" in notice
    with catalogue.read() as session:
        event = audit.log(session, action="generate.run")[0]
        recorded = [
            json.loads((out / (f[:-4] + ".json")).read_text())["output"]["sha256"] for f in made.files
        ]
        assert event["actor"] == "gia" and event["after"]["outputs"] == recorded
        assert audit.verify(session).ok


def test_generation_is_deterministic_per_seed(indexed, rdm_dir, tmp_path):
    catalogue, folder = indexed
    a = run(catalogue, folder, rdm_dir, tmp_path / "a", n=2, seed=3)
    b = run(catalogue, folder, rdm_dir, tmp_path / "b", n=1, seed=4)
    c = run(catalogue, folder, rdm_dir, tmp_path / "c", n=1, seed=3)
    first, second = (pixels(Path(a.out) / f) for f in a.files)
    assert np.array_equal(second, pixels(Path(b.out) / b.files[0]))  # image 1 of seed 3 = image 0 of seed 4
    assert np.array_equal(first, pixels(Path(c.out) / c.files[0]))
    assert not np.array_equal(first, second)


def test_text_only_negative_prompt_and_dpm_solver(indexed, rdm_dir, tmp_path):
    catalogue, folder = indexed
    plain = run(catalogue, folder, rdm_dir, tmp_path / "plain", seed=1)
    text_only = run(catalogue, folder, rdm_dir, tmp_path / "k0", seed=1, k=0)
    negative = run(catalogue, folder, rdm_dir, tmp_path / "neg", seed=1, negative="muddy colours")
    dpm = run(catalogue, folder, rdm_dir, tmp_path / "dpm", seed=1, sampler="dpmsolver++")
    images = [pixels(Path(m.out) / m.files[0]) for m in (plain, text_only, negative, dpm)]
    for other in images[1:]:
        assert not np.array_equal(images[0], other)
    record = json.loads((Path(text_only.out) / (text_only.files[0][:-4] + ".json")).read_text())
    assert record["neighbours"] == [] and "k = 0" in record["attribution_notice"]


def test_guidance_is_the_request_s_else_the_model_s_recommendation_else_five(indexed, rdm_dir, tmp_path):
    import shutil

    catalogue, folder = indexed
    assert run(catalogue, folder, rdm_dir, tmp_path / "plain").record["guidance"] == 5.0
    recommending = tmp_path / "model"
    shutil.copytree(rdm_dir, recommending)
    config = json.loads((recommending / "rdm.json").read_text())
    (recommending / "rdm.json").write_text(json.dumps({**config, "sampling": {"guidance": 1.5}}))
    made = run(catalogue, folder, recommending, tmp_path / "recommended")
    assert made.record["guidance"] == 1.5
    sidecar = json.loads((Path(made.out) / (made.files[0][:-4] + ".json")).read_text())
    assert sidecar["guidance"] == 1.5
    assert run(catalogue, folder, recommending, tmp_path / "asked", guidance=2.0).record["guidance"] == 2.0
    (recommending / "rdm.json").write_text(json.dumps({**config, "sampling": {"guidance": 0.5}}))
    with pytest.raises(BadInput, match="--guidance: must be between 1.0"):
        run(catalogue, folder, recommending, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ({"prompt": "  "}, BadInput, "PROMPT: empty"),
        ({"k": 8}, BadInput, r"--k: must be between 0 and 7"),
        ({"guidance": 0.5}, BadInput, "--guidance"),
        ({"steps": 0}, BadInput, "--steps"),
        ({"n": 0}, BadInput, "-n"),
        ({"actor": "sam"}, Refused, "needs the generator role"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_written(
    indexed, rdm_dir, tmp_path, params, error, message
):
    catalogue, folder = indexed
    with catalogue.read() as session:
        head = audit.revision(session)
    with pytest.raises(error, match=message):
        run(catalogue, folder, rdm_dir, tmp_path / "out", **params)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))
    with catalogue.read() as session:
        assert audit.revision(session) == head


def test_a_stale_or_tampered_index_is_refused(indexed, rdm_dir, tmp_path):
    catalogue, folder = indexed
    with catalogue.write() as session:
        review.decide(session, "lee", "revoke", ["1"], "takedown")
    with pytest.raises(Refused, match="refused: stale: revoked image 1"):
        run(catalogue, folder, rdm_dir, tmp_path / "out")
    other = tmp_path / "other"
    index.build(catalogue, "sam", "looks", "research", f"local-dir:{_encoder(folder)}", other, on=TODAY)
    (other / "vectors.npy").write_bytes((other / "vectors.npy").read_bytes()[:-1] + b"\1")
    with pytest.raises(Refused, match="vectors.npy: sha256 differs"):
        run(catalogue, other, rdm_dir, tmp_path / "out")


def _encoder(folder: Path) -> str:
    return json.loads((folder / "manifest.json").read_text())["encoder"]["spec"].removeprefix("local-dir:")


def test_models_that_do_not_fit_are_refused(indexed, rdm_dir, tmp_path):
    from stylevault.generation.model import create_untrained, save_model

    catalogue, folder = indexed
    with pytest.raises(BadInput, match="no-model"):
        run(catalogue, folder, tmp_path / "no-model", tmp_path / "out")
    narrow = save_model(*create_untrained(context_dim=16, seed=0), tmp_path / "narrow")
    with pytest.raises(BadInput, match="context_dim 16 does not fit"):
        run(catalogue, folder, narrow, tmp_path / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.png").write_bytes(b"")
    with pytest.raises(BadInput, match="outputs are never overwritten"):
        run(catalogue, folder, rdm_dir, tmp_path / "full")


def test_a_killed_run_leaves_no_image_and_no_record(indexed, rdm_dir, tmp_path, monkeypatch):
    catalogue, folder = indexed

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "_insert", killed)
    with pytest.raises(KeyboardInterrupt):
        run(catalogue, folder, rdm_dir, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))
    with catalogue.read() as session:
        assert audit.log(session, action="generate") == []


def test_show_affected_and_reproduce(indexed, rdm_dir, tmp_path, cli):
    catalogue, folder = indexed
    made = run(catalogue, folder, rdm_dir, tmp_path / "out", n=2, seed=11)
    second = Path(made.out) / made.files[1]
    with catalogue.read() as session:
        shown = provenance.show(session, second).as_dict()
        assert shown["ordinal"] == 1 and shown["run_id"] == made.run_id and len(shown["neighbours"]) == 3
        # Strip the text chunks: found again by the hash of its pixels.
        stripped = tmp_path / "stripped.png"
        Image.open(second).save(stripped)
        assert provenance.show(session, stripped).as_dict()["ordinal"] == 1
        neighbour = shown["neighbours"][0]["image_id"]
        hits = provenance.affected(session, neighbour)
        assert {(h["run_id"], h["ordinal"]) for h in hits} == {(made.run_id, 0), (made.run_id, 1)}
        unrelated = tmp_path / "unrelated.png"
        Image.new("RGB", (8, 8), (1, 2, 3)).save(unrelated)
        with pytest.raises(BadInput, match="no stylevault output"):
            provenance.show(session, unrelated)
    again = provenance.reproduce(catalogue, stripped)
    assert again["same"] and again["neighbours_same"]

    shown_cli = cli("provenance", "show", second, "--json")
    assert shown_cli.exit_code == 0 and json.loads(shown_cli.stdout)["run_id"] == made.run_id
    affected_cli = cli("provenance", "affected", str(neighbour), "--json")
    assert len(json.loads(affected_cli.stdout)) == 2
    reproduced = cli("provenance", "reproduce", second)
    assert reproduced.exit_code == 0 and "identical pixels" in reproduced.stdout

    with catalogue.write() as session:
        review.decide(session, "lee", "revoke", [str(neighbour)], "takedown")
    with catalogue.read() as session:
        assert provenance.show(session, second).as_dict()["index_now"]["stale"] is True
    assert provenance.reproduce(catalogue, second)["same"]  # an auditor can still reproduce it


def test_a_picture_carrying_a_real_outputs_chunks_is_refused_not_vouched_for(indexed, rdm_dir, tmp_path, cli):
    from PIL import PngImagePlugin

    catalogue, folder = indexed
    made = run(catalogue, folder, rdm_dir, tmp_path / "out", n=1, seed=3)
    real = Image.open(Path(made.out) / made.files[0])
    chunks = PngImagePlugin.PngInfo()
    for key, value in real.text.items():
        chunks.add_itxt(key, value)
    forged = tmp_path / "forged.png"
    Image.new("RGB", real.size, (200, 10, 10)).save(forged, pnginfo=chunks)
    refusal = "these chunks name output 0 of run .*, but this file is not it"
    with catalogue.read() as session, pytest.raises(Refused, match=refusal):
        provenance.show(session, forged)
    for command in (("provenance", "show", forged), ("outputs", "show", forged)):
        result = cli(*command)
        assert result.exit_code == 1 and "this file is not it" in result.stderr, command
    # The same chunks on the real pixels (metadata re-written, say) still find the output.
    resaved = tmp_path / "resaved.png"
    real.save(resaved, pnginfo=chunks, compress_level=1)
    with catalogue.read() as session:
        assert provenance.show(session, resaved).as_dict()["run_id"] == made.run_id


def generate_cli(cli, folder, model, out, *options, actor: str):
    """`stylevault generate "a study" --index FOLDER --model MODEL --out OUT [OPTIONS]` as ACTOR."""
    return cli(
        "generate", "a study", "--index", folder, "--model", model, "--out", out, *options, actor=actor
    )


def test_generate_cli(indexed, rdm_dir, tmp_path, cli):
    catalogue, folder = indexed
    options = ("--steps", "2", "--k", "2", "--seed", "5", "--device", "cpu", "--json")
    result = generate_cli(cli, folder, rdm_dir, tmp_path / "out", *options, actor="gia")
    assert result.exit_code == 0, result.output
    made = json.loads(result.stdout)
    assert len(made["outputs"]) == 1 and made["outputs"][0]["seed"] == 5
    refused = generate_cli(cli, folder, rdm_dir, tmp_path / "o2", "--steps", "2", actor="val")
    assert refused.exit_code == 1 and "needs the generator role" in refused.stderr
    bad = generate_cli(cli, folder, rdm_dir, tmp_path / "o3", "--k", "99", actor="gia")
    assert bad.exit_code == 2 and "--k" in bad.stderr


def test_an_imported_compvis_checkpoint_generates(indexed, tmp_path, cli):
    """The official checkpoint format, converted by `model import-compvis`, drives a run end to end."""
    catalogue, folder = indexed
    fixture = Path(__file__).parent / "data" / "compvis_rdm_tiny"
    checkpoint = ("model", "import-compvis", fixture / "model.ckpt", "--config", fixture / "config.yaml")
    imported = cli(*checkpoint, "--out", tmp_path / "rdm")
    assert imported.exit_code == 0, imported.output
    made = run(catalogue, folder, tmp_path / "rdm", tmp_path / "out", seed=2)
    record = json.loads((Path(made.out) / (made.files[0][:-4] + ".json")).read_text())
    assert record["model"]["path"] == str(tmp_path / "rdm")
    assert Image.open(Path(made.out) / made.files[0]).size == (32, 32)
    again = cli(*checkpoint, "--out", tmp_path / "rdm")
    assert again.exit_code == 2
    raw = cli(*checkpoint, "--out", tmp_path / "raw", "--weights", "both")
    assert raw.exit_code == 2 and "--weights" in raw.stderr


@pytest.mark.parametrize(
    ("spdx", "url"),
    [
        ("CC-BY-4.0", "https://creativecommons.org/licenses/by/4.0/"),
        ("CC-BY-NC-SA-4.0", "https://creativecommons.org/licenses/by-nc-sa/4.0/"),
        ("CC-BY-SA-3.0-DE", "https://creativecommons.org/licenses/by-sa/3.0/de/"),
        ("CC0-1.0", "https://creativecommons.org/publicdomain/zero/1.0/"),
        ("MIT", "https://spdx.org/licenses/MIT.html"),
        ("LicenseRef-ACME", None),
    ],
)
def test_licence_links_in_the_attribution_notice(spdx, url):
    assert runs.licence_url(spdx) == url
