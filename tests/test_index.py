"""Cleared index builds: what goes in, what the manifest proves, verification, staleness, the handle."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
from sqlmodel import select

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.output_models import IndexBuild
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.index import builds as index
from stylevault.governance.index import verification
from stylevault.governance.index.encoders import EncoderSpec, load_encoder
from stylevault.governance.index.handle import IndexHandle
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import licence_decisions, review
from stylevault.governance.views import images
from tests.factories import write


def build(catalogue, encoder_dir, out, ref="looks", policy="commercial", **kwargs):
    return index.build(
        catalogue, "sam", ref, policy, f"local-dir:{encoder_dir}", out, on=date(2026, 11, 27), **kwargs
    )


def manifest_hashes_match(catalogue, folder, hashes) -> bool:
    """Column 0 is each member's catalogue phash; the crops differ from it and from each other."""
    manifest = json.loads((folder / "manifest.json").read_text())
    with catalogue.read() as session:
        phash = {i: images.resolve(session, str(i)).phash for i in manifest["member_ids"]}
    own = [int(phash[i], 16) for i in manifest["member_ids"]]
    return (
        hashes[:, 0].tolist() == own
        and manifest["near_copy"]["per_member"] == 19
        and all(len(set(row.tolist())) > 10 for row in hashes)
        and manifest["files"]["phashes.npy"] == index.sha256_file(folder / "phashes.npy")
    )


def test_build_writes_cleared_members_and_a_manifest_that_proves_it(published, encoder_dir, tmp_path):
    built = build(published, encoder_dir, tmp_path / "idx")
    assert (built.members, built.embedded, built.search) == (7, 7, "exact")
    assert built.excluded == {"licence-excluded": 1}  # the CC BY-NC image under commercial
    folder = tmp_path / "idx"
    assert sorted(p.name for p in folder.iterdir()) == [
        "index.usearch",
        "manifest.json",
        "members.jsonl",
        "phashes.npy",
        "vectors.npy",
    ]
    assert not list(tmp_path.glob(".idx.tmp-*"))
    hashes = np.load(folder / "phashes.npy")
    assert hashes.dtype == np.uint64 and hashes.shape == (7, 19)
    assert manifest_hashes_match(published, folder, hashes)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["member_ids"] == [1, 2, 3, 5, 6, 7, 8]
    assert manifest["policy"]["name"] == "commercial" and len(manifest["policy"]["sha256"]) == 64
    assert manifest["styleset"]["name"] == "looks" and manifest["styleset"]["version"] == 1
    assert manifest["encoder"]["id"].startswith("tiny-clip@sha256:")
    assert len(manifest["encoder"]["weights_sha256"]) == 64
    assert manifest["files"]["vectors.npy"] == index.sha256_file(folder / "vectors.npy")
    vectors = np.load(folder / "vectors.npy")
    assert vectors.dtype == np.float16 and vectors.shape == (7, 32)
    assert np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1.0, atol=1e-2)
    with published.read() as session:
        record = session.exec(select(IndexBuild)).one()
        assert record.manifest_sha256 == built.manifest_sha256 and record.members == 7
        event = audit.log(session, action="index.build")[0]
        assert event["after"]["manifest_sha256"] == built.manifest_sha256
        assert manifest["catalogue_revision"]["seq"] == event["seq"] - 1
    members = [json.loads(line) for line in (folder / "members.jsonl").read_text().splitlines()]
    assert members[1]["licence"] == "CC-BY-4.0" and members[1]["obligations"] == ["attribution"]
    assert members[1]["attribution"] == "Artist 1"
    assert verification.verify(published, folder, on=date(2026, 11, 27)).ok


def test_the_handle_searches_exactly_and_returns_exact_vectors(published, encoder_dir, tmp_path):
    build(published, encoder_dir, tmp_path / "idx")
    handle = IndexHandle.open(published, tmp_path / "idx", on=date(2026, 11, 27))
    stored = np.load(tmp_path / "idx" / "vectors.npy").astype(np.float32)
    rng = np.random.default_rng(0)
    queries = rng.standard_normal((5, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    ids, scores = handle.search(queries, 3)
    assert ids.shape == scores.shape == (5, 3)
    member_ids = np.array(handle.manifest["member_ids"])
    exact = stored @ queries.T  # (N, B) cosine: rows are unit vectors
    expected = member_ids[np.argsort(-exact, axis=0)[:3].T]
    assert (ids == expected).all()
    assert np.allclose(scores, np.sort(exact, axis=0)[::-1][:3].T, atol=2e-3)
    neighbours = handle.vectors(ids)
    assert neighbours.shape == (5, 3, 32) and neighbours.dtype == np.float32
    assert np.array_equal(neighbours[0, 0], stored[list(member_ids).index(ids[0, 0])])
    assert handle.member(2).licence == "CC-BY-4.0" and handle.member(2).obligations == ("attribution",)
    encoder = load_encoder(f"local-dir:{encoder_dir}")
    handle.require_encoder(encoder.id)
    with pytest.raises(Refused, match="was built with encoder"):
        handle.require_encoder("ViT-L-14@openai@sha256:0000")
    with pytest.raises(BadInput, match="k: must be between 1 and 7"):
        handle.search(queries, 8)
    with pytest.raises(BadInput, match=r"expected shape \(B, 32\)"):
        handle.search(queries[:, :16], 2)
    with pytest.raises(BadInput, match="image 4 is not a member"):
        handle.vectors(np.array([[4]]))


def test_a_rebuild_reuses_the_embedding_cache(published, encoder_dir, tmp_path):
    first = build(published, encoder_dir, tmp_path / "a")
    second = build(published, encoder_dir, tmp_path / "b", policy="research")
    assert first.embedded == 7 and second.embedded == 1  # only the NC image, cleared for research
    assert np.array_equal(
        np.load(tmp_path / "a" / "vectors.npy"),
        np.load(tmp_path / "b" / "vectors.npy")[[0, 1, 2, 4, 5, 6, 7]],
    )


def test_revocation_makes_the_index_stale_at_once_and_a_rebuild_drops_the_image(
    published, encoder_dir, tmp_path
):
    build(published, encoder_dir, tmp_path / "idx")
    with published.write() as session:
        review.decide(session, "lee", "revoke", ["2"], "takedown request")
    with published.read() as session:
        record = session.exec(select(IndexBuild)).one()
        assert record.stale and "revoked image 2 (takedown request)" in record.stale_reason
        assert audit.log(session, action="index.stale")[0]["target"] == f"index:{record.index_id}"
    result = verification.verify(published, tmp_path / "idx", on=date(2026, 11, 27))
    assert not result.ok and result.problems == [f"stale: {record.stale_reason}"]
    with pytest.raises(Refused, match="refused: stale"):
        IndexHandle.open(published, tmp_path / "idx", on=date(2026, 11, 27))
    rebuilt = build(published, encoder_dir, tmp_path / "idx2")
    assert rebuilt.members == 6 and rebuilt.embedded == 0
    assert 2 not in json.loads((tmp_path / "idx2" / "manifest.json").read_text())["member_ids"]


def test_a_licence_the_policy_refuses_makes_it_stale(published, encoder_dir, tmp_path):
    build(published, encoder_dir, tmp_path / "idx")
    with published.write() as session:
        image = images.resolve(session, "1")
        licence_decisions.set_licence(session, published.store, "lee", image, licence="CC-BY-NC-4.0")
    assert "licence of image 1 set to CC-BY-NC-4.0" in verification.verify(published, tmp_path / "idx").stale


def test_a_licence_that_stays_allowed_keeps_it_fresh(published, encoder_dir, tmp_path):
    build(published, encoder_dir, tmp_path / "idx")
    with published.write() as session:
        image = images.resolve(session, "1")
        licence_decisions.set_licence(session, published.store, "lee", image, licence="CC-BY-4.0")
    assert verification.verify(published, tmp_path / "idx", on=date(2026, 11, 27)).ok


def test_an_expired_licence_is_found_and_recorded_by_verify(published, encoder_dir, tmp_path):
    build(published, encoder_dir, tmp_path / "idx")
    # valid through its last day
    assert verification.verify(published, tmp_path / "idx", on=date(2027, 1, 31)).ok
    later = verification.verify(published, tmp_path / "idx", on=date(2027, 2, 1))
    assert not later.ok and "image 8 is no longer cleared under commercial (licence expired)" in later.stale
    with published.read() as session:
        assert session.exec(select(IndexBuild)).one().stale
        assert audit.log(session, action="index.stale")[0]["actor"] == "system:index-verify"
    assert not verification.verify(published, tmp_path / "idx", on=date(2026, 11, 27)).ok  # stale stays stale


def test_a_conflicting_new_source_makes_it_stale(published, encoder_dir, tmp_path):
    build(published, encoder_dir, tmp_path / "idx")
    write(tmp_path / "more" / "same-as-1.png", (tmp_path / "in" / "1.png").read_bytes())
    ingest(published, "sam", tmp_path / "more", licence="All rights reserved", progress=False)
    stale = verification.verify(published, tmp_path / "idx", on=date(2026, 11, 27)).stale
    assert "licence re-derived by ingest run 2" in stale and "image 2" in stale


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (
            lambda f: f.joinpath("vectors.npy").write_bytes(
                f.joinpath("vectors.npy").read_bytes()[:-2] + b"\0\0"
            ),
            "vectors.npy: sha256 differs from the manifest",
        ),
        (lambda f: f.joinpath("members.jsonl").unlink(), "members.jsonl: missing"),
        (lambda f: f.joinpath("notes.txt").write_text("hi"), "files the manifest does not list: notes.txt"),
        (
            lambda f: f.joinpath("manifest.json").write_text(
                f.joinpath("manifest.json").read_text().replace('"count": 7', '"count": 6')
            ),
            "manifest.json differs from the one recorded at build time",
        ),
    ],
)
def test_verify_catches_tampering(published, encoder_dir, tmp_path, cli, tamper, problem):
    build(published, encoder_dir, tmp_path / "idx")
    tamper(tmp_path / "idx")
    result = verification.verify(published, tmp_path / "idx", on=date(2026, 11, 27))
    assert not result.ok and any(problem in p for p in result.problems), result.problems
    run = cli("index", "verify", tmp_path / "idx", "--on", "2026-11-27")
    assert run.exit_code == 1 and problem in run.stderr
    with pytest.raises(Refused, match="refused"):
        IndexHandle.open(published, tmp_path / "idx", on=date(2026, 11, 27))


def test_an_index_unknown_to_the_catalogue_is_refused(published, encoder_dir, tmp_path, catalogue):
    build(published, encoder_dir, tmp_path / "idx")
    with pytest.raises(BadInput, match="not an index folder"):
        verification.verify(published, tmp_path)
    (tmp_path / "idx" / "manifest.json").write_text("{not json")
    with pytest.raises(BadInput, match="manifest.json: not valid JSON"):
        verification.verify(published, tmp_path / "idx")


def test_bad_builds_are_refused_and_write_nothing(published, encoder_dir, tmp_path):
    with published.read() as session:
        head = audit.revision(session)
    with pytest.raises(Refused, match="needs the steward role"):
        index.build(published, "lee", "looks", "commercial", f"local-dir:{encoder_dir}", tmp_path / "x")
    with pytest.raises(BadInput, match="style set version looks@9 does not exist"):
        build(published, encoder_dir, tmp_path / "x", ref="looks@9")
    with pytest.raises(BadInput, match="nonesuch"):
        build(published, encoder_dir, tmp_path / "x", policy="nonesuch")
    # A missing parent folder is refused before any encoder is loaded or image embedded.
    with pytest.raises(BadInput, match=r"--out .*/a/b: folder .*/a does not exist"):
        index.build(published, "sam", "looks", "commercial", "local-dir:/nowhere", tmp_path / "a" / "b")
    (tmp_path / "taken").mkdir()
    with pytest.raises(BadInput, match="already exists"):
        build(published, encoder_dir, tmp_path / "taken")
    empty = tmp_path / "no-weights"
    empty.mkdir()
    (empty / "open_clip_config.json").write_text((encoder_dir / "open_clip_config.json").read_text())
    with pytest.raises(
        BadInput, match=r"no weights in .*no-weights \(looked for open_clip_model.safetensors"
    ):
        index.build(published, "sam", "looks", "commercial", f"local-dir:{empty}", tmp_path / "x")
    with pytest.raises(BadInput, match="weights not in the local Hugging Face cache"):
        index.build(published, "sam", "looks", "commercial", "hf-hub:nobody/nothing", tmp_path / "x")
    with published.write() as session:
        review.decide(session, "lee", "revoke", [str(i) for i in range(1, 9)], "all withdrawn")
    with pytest.raises(Refused, match="no member of looks@1 is cleared under commercial"):
        build(published, encoder_dir, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    with published.read() as session:
        assert audit.revision(session)["seq"] == head["seq"] + 8  # the eight revocations, nothing else


def test_a_moved_source_file_is_named(published, encoder_dir, tmp_path):
    (tmp_path / "in" / "0.png").rename(tmp_path / "elsewhere.png")
    with pytest.raises(BadInput, match=r"no readable source file with these bytes \(looked at: .*0\.png\)"):
        build(published, encoder_dir, tmp_path / "idx")
    assert not (tmp_path / "idx").exists() and not list(tmp_path.glob(".idx.tmp-*"))


def test_encoder_specs():
    assert EncoderSpec.parse("ViT-L-14@openai").kind == "builtin"
    assert EncoderSpec.parse("hf-hub:org/repo").model == "org/repo"
    assert EncoderSpec.parse("local-dir:/x/tiny").label == "tiny"
    for bad in ("ViT-L-14", "hf-hub:org", "local-dir:", "@openai"):
        with pytest.raises(BadInput, match="--encoder"):
            EncoderSpec.parse(bad)


def test_hnsw_parameters_reach_the_recall_target():
    """Above HNSW_THRESHOLD searches go through HNSW: its recall@10 against exact search on random unit
    vectors, with the parameters the builds use."""
    from usearch.index import Index

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((20_000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    built = Index(ndim=32, metric="cos", dtype="f16", **index.HNSW)
    built.add(np.arange(len(vectors), dtype=np.uint64), vectors.astype(np.float16))
    queries = vectors[rng.choice(len(vectors), 200, replace=False)] + 0.1 * rng.standard_normal((200, 32))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    found = np.asarray(built.search(queries, 10).keys)
    exact = np.argsort(-(vectors @ queries.T), axis=0)[:10].T
    recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact, strict=True)])
    assert recall >= 0.95, recall


def build_cli(cli, styleset: str, encoder: str, out, *options):
    """`stylevault index build --styleset S --policy research --encoder E --out OUT` as sam."""
    arguments = ("--styleset", styleset, "--policy", "research", "--encoder", encoder, "--out", out)
    return cli("index", "build", *arguments, *options, actor="sam")


def test_index_cli(published, encoder_dir, tmp_path, cli):
    run = build_cli(cli, "looks@1", f"local-dir:{encoder_dir}", tmp_path / "idx", "--json")
    assert run.exit_code == 0, run.output
    built = json.loads(run.stdout)
    assert built["members"] == 8
    ok = cli("index", "verify", tmp_path / "idx", "--on", "2026-11-27")
    assert ok.exit_code == 0 and f"index {built['index_id']} verified: 8 members" in ok.stdout
    listed = json.loads(cli("index", "list", "--image", "3", "--json").stdout)
    assert [r["index_id"] for r in listed] == [built["index_id"]] and listed[0]["stale"] is False
    again = build_cli(cli, "looks", f"local-dir:{encoder_dir}", tmp_path / "idx")
    assert again.exit_code == 2 and "already exists" in again.stderr
    missing = build_cli(cli, "looks", "ViT-B-32@openai", tmp_path / "other")
    assert missing.exit_code == 2 and "--allow-download" in missing.stderr


def test_verify_judges_by_the_policy_recorded_at_build_not_a_file_the_caller_found(
    published, encoder_dir, tmp_path, cli, monkeypatch
):
    """Another commercial.yaml in ./policies, one that refuses CC0: `index verify` (no role
    needed) reports the file as a difference and leaves the index fresh; a licence change re-judges
    it by the recorded text too."""
    from stylevault.governance.catalogue.output_models import PolicyText
    from stylevault.governance.rules.policy_files import load_policy

    build(published, encoder_dir, tmp_path / "idx")
    shipped = load_policy("commercial")
    with published.read() as session:
        [kept] = session.exec(select(PolicyText)).all()
    assert (kept.sha256, kept.name, kept.text) == (shipped.hash, "commercial", shipped.text)
    work = tmp_path / "work"
    (work / "policies").mkdir(parents=True)
    cc0 = "  - match: [CC0-1.0, CC-PDDC]\n    decision: allow"
    assert cc0 in shipped.text
    strict = shipped.text.replace(cc0, cc0.replace("allow", "exclude"))  # refuses five of the members
    (work / "policies" / "commercial.yaml").write_text(strict)
    monkeypatch.chdir(work)
    monkeypatch.delenv("STYLEVAULT_POLICIES", raising=False)
    assert load_policy("commercial").hash != shipped.hash

    result = verification.verify(published, tmp_path / "idx", on=date(2026, 11, 27))
    assert result.ok, result.problems
    [difference] = result.differences
    assert "policy commercial: the file found now" in difference and "judged as built" in difference
    run = cli("index", "verify", tmp_path / "idx", "--on", "2026-11-27")
    assert run.exit_code == 0 and "the file found now" in run.stderr
    with published.write() as session:
        image = images.resolve(session, "1")
        licence_decisions.set_licence(session, published.store, "lee", image, licence="CC-BY-4.0")
    with published.read() as session:
        assert not session.exec(select(IndexBuild)).one().stale
        assert audit.log(session, action="index.stale") == []
    # The recorded text still decides: a licence it refuses makes the index stale.
    with published.write() as session:
        image = images.resolve(session, "2")
        licence_decisions.set_licence(session, published.store, "lee", image, licence="CC-BY-NC-4.0")
    assert (
        "image 2 is no longer cleared under commercial"
        in verification.verify(published, tmp_path / "idx").stale
    )
