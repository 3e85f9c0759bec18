"""Output review: scores at generation time, the near-copy check, release sign-off (issue 7).

The index here is built under a test policy `review`: the commercial rules with near-copy thresholds
that suit the tiny untrained encoder (whose image embeddings all lie within a few degrees of each
other, so only an exact cosine of 1.0 flags) and the shipped phash threshold of 6 bits.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import date

import pytest
import sqlalchemy as sa
from PIL import Image, ImageOps

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.models import AuditEvent
from stylevault.governance.catalogue.output_models import OutputDecision, OutputReview, OutputScore
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.index import builds as index
from stylevault.governance.legal import review
from stylevault.governance.outputs import provenance
from stylevault.governance.outputs import signoff as outputs
from stylevault.governance.rules.policy_files import load_policy
from stylevault.governance.views import images
from tests.factories import run_generate


def image_id_of(catalogue, path) -> int:
    with catalogue.read() as session:
        return images.resolve(session, hashlib.sha256(path.read_bytes()).hexdigest()).id


def output_ids(catalogue) -> list[int]:
    with catalogue.read() as session:
        return sorted(session.scalars(sa.select(OutputReview.output_id)))


def state_of(catalogue, output_id: int) -> OutputReview:
    with catalogue.read() as session:
        return session.get(OutputReview, output_id)


def test_every_output_is_scored_under_the_policy_and_starts_pending(reviewed, tmp_path):
    catalogue, folder, made = reviewed
    policy = load_policy("review")
    with catalogue.read() as session:
        rows = session.scalars(sa.select(OutputScore).order_by(OutputScore.output_id)).all()
        members = set(session.scalars(sa.text("SELECT image_id FROM index_member")))
    assert len(rows) == 2
    for row, name in zip(rows, made.files, strict=True):
        assert row.status == "scored" and row.encoder_id.startswith("tiny-clip@sha256:")
        assert (row.policy_name, row.policy_sha256) == ("review", policy.hash)
        assert row.thresholds == {
            "near_copy_cosine": 1.0,
            "near_copy_hash": 6,
            "signoff_required": True,
        }
        assert row.nearest_cosine_image_id in members and row.nearest_hash_image_id in members
        assert -1.0 <= row.prompt_alignment <= 1.0 and -1.0 <= row.style_centroid <= 1.0
        assert 0 <= row.nearest_hash_distance <= 64
        assert row.flagged == (row.nearest_cosine >= 1.0 or row.nearest_hash_distance <= 6)
        sidecar = json.loads((tmp_path / "out" / f"{name[:-4]}.json").read_text())
        assert sidecar["scores"]["nearest_hash_distance"] == row.nearest_hash_distance
        assert sidecar["scores"]["nearest_cosine_image_id"] == row.nearest_cosine_image_id
        review_row = state_of(catalogue, row.output_id)
        assert review_row.state == "pending" and review_row.flagged == row.flagged
    with catalogue.read() as session:
        shown = provenance.show(session, tmp_path / "out" / made.files[0]).as_dict()
    assert shown["review"]["state"] == "pending"
    assert shown["scores"]["policy_name"] == "review" and shown["decisions"] == []


def test_a_copy_and_a_mirrored_copy_point_at_the_member_they_copy(reviewed, encoder_dir, tmp_path):
    from stylevault.governance.index.encoders import load_encoder
    from stylevault.governance.index.handle import IndexHandle
    from stylevault.governance.outputs.scoring import Scorer

    catalogue, folder, _ = reviewed
    handle = IndexHandle.open(catalogue, folder)
    scorer = Scorer(handle, load_encoder(f"local-dir:{encoder_dir}", device="cpu"))
    copied = Image.open(tmp_path / "in" / "2.png").convert("RGB")
    member = image_id_of(catalogue, tmp_path / "in" / "2.png")
    exact, mirrored = scorer.score([copied, ImageOps.mirror(copied)], "a copy", [[], []])
    assert (exact.nearest_hash_distance, exact.nearest_hash_image_id) == (0, member)
    assert exact.nearest_cosine_image_id == member and exact.nearest_cosine > 0.999
    assert exact.flagged and any("phash distance 0 to image" in flag for flag in exact.flags)
    assert (mirrored.nearest_hash_distance, mirrored.nearest_hash_image_id) == (0, member)
    assert any("phash distance 0 (mirrored)" in flag for flag in mirrored.flags)


def test_scoring_reads_the_centroid_and_member_phashes_the_build_recorded(reviewed, encoder_dir, tmp_path):
    """The build records the members' mean direction and each member's phashes; scoring reads both
    from the index."""
    import numpy as np

    from stylevault.governance.index.encoders import load_encoder
    from stylevault.governance.index.handle import IndexHandle
    from stylevault.governance.outputs.scoring import Scorer

    catalogue, folder, _ = reviewed
    handle = IndexHandle.open(catalogue, folder)
    vectors = np.load(folder / "vectors.npy").astype(np.float64)
    mean = vectors.sum(axis=0) / np.linalg.norm(vectors.sum(axis=0))
    recorded = handle.centroid()
    assert recorded.shape == (handle.dim,) and np.allclose(recorded, mean, atol=1e-6)
    scorer = Scorer(handle, load_encoder(f"local-dir:{encoder_dir}", device="cpu"))
    assert np.allclose(scorer.centroid, recorded, atol=1e-6)
    with catalogue.read() as session:
        phash = dict(session.execute(sa.text("SELECT id, phash FROM image")).all())
    assert list(scorer.hash_ids) == list(handle.member_ids)
    assert [int(h) for h in scorer.hashes[:, 0]] == [int(phash[i], 16) for i in handle.member_ids]
    copied = Image.open(tmp_path / "in" / "2.png").convert("RGB")
    member = image_id_of(catalogue, tmp_path / "in" / "2.png")
    (exact,) = scorer.score([copied], "a copy", [[]])
    assert (exact.nearest_hash_distance, exact.nearest_hash_image_id) == (0, member) and exact.flagged


def test_release_needs_a_reviewer_who_did_not_generate_it(reviewed, rdm_dir, tmp_path):
    catalogue, folder, _ = reviewed
    first, second = output_ids(catalogue)
    with catalogue.write() as session, pytest.raises(Refused, match="needs the legal or reviewer role"):
        outputs.release(session, "gia", [str(first)])
    run_generate(catalogue, folder, rdm_dir, tmp_path / "rex-out", actor="rex")
    own = output_ids(catalogue)[-1]
    with catalogue.write() as session:
        result = outputs.release(session, "rex", [str(own), str(first)])
    assert [r["output_id"] for r in result["released"]] == [first]
    assert result["refused"] == [
        {
            "output_id": own,
            "state": "pending",
            "reason": f"output {own}: rex generated it and cannot release it (four-eyes)",
        }
    ]
    assert state_of(catalogue, own).state == "pending"
    assert state_of(catalogue, first).state == "released"
    with catalogue.read() as session:
        history = outputs.history(session, first)
        events = session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "output.release")).all()
        assert audit.verify(session).ok
    assert [(h["actor"], h["action"], h["from_state"], h["to_state"]) for h in history] == [
        ("rex", "release", "pending", "released")
    ]
    assert [e.target_id for e in events] == [str(first)]


def test_a_flagged_output_is_released_only_by_legal_with_an_override(reviewed, cli, tmp_path):
    catalogue, _, made = reviewed
    first, second = output_ids(catalogue)
    # The output file is replaced by a database image, as a generator that copied would have made it.
    shutil.copyfile(tmp_path / "in" / "5.png", tmp_path / "out" / made.files[0])
    member = image_id_of(catalogue, tmp_path / "in" / "5.png")
    scored = cli("outputs", "score", str(first), "--json", actor="gia")
    assert scored.exit_code == 0, scored.output
    result = json.loads(scored.output)[0]
    assert result["flagged"] and result["nearest_hash_image_id"] == member
    assert state_of(catalogue, first).flagged

    refused = cli("outputs", "release", str(first), actor="rita")
    assert refused.exit_code == 1
    assert f"output {first} is flagged (near copy: cosine 1.0000 to image {member}" in refused.output
    assert f"near copy: phash distance 0 to image {member} is at or below 6" in refused.output
    assert "--override REASON" in refused.output
    not_legal = cli("outputs", "release", str(first), "--override", "fine", actor="rita")
    assert not_legal.exit_code == 1 and "only the legal role may override" in not_legal.output
    assert state_of(catalogue, first).state == "pending"

    done = cli("outputs", "release", str(first), "--override", "our own photo; rights cleared", actor="lee")
    assert done.exit_code == 0, done.output
    row = state_of(catalogue, first)
    assert (row.state, row.override_reason) == ("released", "our own photo; rights cleared")
    shown = cli("outputs", "show", str(first), "--json")
    detail = json.loads(shown.output)
    assert detail["scores"]["flagged"] and detail["decisions"][-1]["override"] is True
    assert detail["decisions"][-1]["actor"] == "lee"


def test_bulk_release_refuses_each_flagged_output_with_its_reason(reviewed, cli, tmp_path):
    catalogue, _, made = reviewed
    first, second = output_ids(catalogue)
    shutil.copyfile(tmp_path / "in" / "1.png", tmp_path / "out" / made.files[1])
    assert cli("outputs", "score", str(second), actor="rita").exit_code == 0
    flagged = cli("outputs", "list", "--flagged", "--json")
    assert [row["output_id"] for row in json.loads(flagged.output)] == [second]
    result = cli("outputs", "release", str(first), str(second), actor="rita")
    assert result.exit_code == 1
    assert f"output {first}: released" in result.output
    assert f"refused: output {second} is flagged" in result.output
    assert (state_of(catalogue, first).state, state_of(catalogue, second).state) == ("released", "pending")
    listed = json.loads(cli("outputs", "list", "--state", "released", "--json").output)
    assert [row["output_id"] for row in listed] == [first]
    assert (
        json.loads(cli("outputs", "list", "--styleset", "looks@1", "--json").output)[0]["styleset"]
        == "looks@1"
    )
    assert json.loads(cli("outputs", "list", "--styleset", "other", "--json").output) == []


def test_a_withheld_output_is_not_released_again_and_the_refusal_shows_its_history(reviewed, cli, tmp_path):
    catalogue, _, made = reviewed
    first, _ = output_ids(catalogue)
    no_reason = cli("outputs", "withhold", str(first), actor="rita")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    assert state_of(catalogue, first).state == "pending"
    assert cli("outputs", "withhold", str(first), "--reason", "off brand", actor="rita").exit_code == 0
    again = cli("outputs", "release", str(first), actor="lee")
    assert again.exit_code == 1
    assert f"output {first} is withheld and is not released again; history:" in again.output
    assert "rita withhold pending->withheld (off brand)" in again.output
    assert state_of(catalogue, first).state == "withheld"
    shown = cli("provenance", "show", tmp_path / "out" / made.files[0])
    assert shown.exit_code == 0 and "  review: withheld" in shown.output
    assert "rita withhold -> withheld (off brand)" in shown.output and "nearest member cosine" in shown.output


def test_revoking_a_source_image_sends_released_outputs_back_to_review(reviewed):
    catalogue, _, _ = reviewed
    first, second = output_ids(catalogue)
    with catalogue.write() as session:
        assert outputs.release(session, "rita", [str(first)])["refused"] == []
        neighbour = session.scalars(
            sa.text(f"SELECT image_id FROM output_neighbour WHERE output_id = {first}")
        ).first()
    with catalogue.write() as session:
        review.decide(session, "lee", "revoke", [str(neighbour)], "takedown request")
    row = state_of(catalogue, first)
    assert row.state == "pending"
    assert row.reason == f"source image {neighbour} revoked (takedown request)"
    with catalogue.read() as session:
        actions = [h["action"] for h in outputs.history(session, first)]
        assert state_of(catalogue, second).state == "pending"  # never released: nothing to reopen
        assert audit.verify(session).ok
    assert actions == ["release", "reopen"]


def test_scores_of_an_output_whose_index_is_gone_are_recorded_as_missing(reviewed, cli):
    catalogue, folder, _ = reviewed
    first, _ = output_ids(catalogue)
    shutil.rmtree(folder)
    result = cli("outputs", "score", str(first), actor="lee")
    assert result.exit_code == 0, result.output
    assert f"output {first}: scores missing" in result.output and str(folder) in result.output
    with catalogue.read() as session:
        newest = session.scalars(
            sa.select(OutputScore).where(OutputScore.output_id == first).order_by(OutputScore.id.desc())
        ).first()
    assert (newest.status, newest.flagged, newest.nearest_cosine) == ("missing", True, None)
    shown = cli("outputs", "show", str(first))
    assert "scores missing" in shown.output
    assert "needs legal's --override" in cli("outputs", "release", str(first), actor="rita").output


@pytest.mark.parametrize(
    ("section", "field"),
    [("near_copy_cosine: 1.5", "near_copy_cosine"), ("near_copy_hash: 99", "near_copy_hash")],
)
def test_thresholds_out_of_range_are_refused_naming_the_field(tmp_path, section, field):
    shipped = load_policy("commercial").path.read_text()
    path = tmp_path / "commercial.yaml"
    path.write_text(re.sub(rf"^  {field}: .*$", f"  {section}", shipped, flags=re.MULTILINE))
    with pytest.raises(BadInput, match=rf"commercial.yaml: outputs.{field}"):
        load_policy(str(path))


def test_scores_and_decisions_cannot_be_edited(reviewed):
    catalogue, _, _ = reviewed
    first, _ = output_ids(catalogue)
    with catalogue.write() as session:
        outputs.release(session, "rita", [str(first)])
    for table in (OutputScore.__tablename__, OutputDecision.__tablename__):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), catalogue.write() as session:
            session.execute(sa.text(f"UPDATE {table} SET output_id = output_id"))


def test_without_signoff_the_maker_may_release_its_own_unflagged_output(
    published, encoder_dir, rdm_dir, policy_dir, tmp_path
):
    lab = (policy_dir / "review.yaml").read_text().replace("name: review", "name: lab")
    (policy_dir / "lab.yaml").write_text(lab.replace("signoff_required: true", "signoff_required: false"))
    with published.write() as session:
        actors.add(session, "admin", "rex", ["generator", "reviewer"])
    folder = tmp_path / "lab-idx"
    index.build(published, "sam", "looks", "lab", f"local-dir:{encoder_dir}", folder, on=date(2026, 11, 27))
    run_generate(published, folder, rdm_dir, tmp_path / "out", actor="rex")
    (own,) = output_ids(published)
    assert not state_of(published, own).flagged
    with published.write() as session:
        assert outputs.release(session, "rex", [str(own)])["refused"] == []
    assert state_of(published, own).state == "released"


def test_a_crop_of_a_member_is_found_through_the_crop_hashes(reviewed, encoder_dir, tmp_path):
    from stylevault.governance.index.encoders import load_encoder
    from stylevault.governance.index.handle import IndexHandle
    from stylevault.governance.outputs.scoring import Scorer
    from stylevault.governance.pictures.imaging import phash, thumbnail

    catalogue, folder, _ = reviewed
    handle = IndexHandle.open(catalogue, folder)
    scorer = Scorer(handle, load_encoder(f"local-dir:{encoder_dir}", device="cpu"))
    source = Image.open(tmp_path / "in" / "6.png").convert("RGB")
    member = image_id_of(catalogue, tmp_path / "in" / "6.png")
    w, h = source.size
    cropped = source.crop((w // 10, h // 10, w, h)).resize(source.size, Image.Resampling.BICUBIC)  # 81 %
    (scores,) = scorer.score([cropped], "a crop", [[]])
    own = int(phash(thumbnail(cropped)), 16) ^ int(handle.hashes[list(handle.member_ids).index(member), 0])
    assert scores.nearest_hash_image_id == member
    assert scores.nearest_hash_distance < bin(own).count("1")  # closer to a crop than to the whole
    assert scores.nearest_hash_distance <= 6 and scores.flagged


def test_revoke_says_which_indexes_went_stale_and_which_outputs_went_back_to_pending(reviewed, cli):
    catalogue, folder, _ = reviewed
    first, _second = output_ids(catalogue)
    with catalogue.write() as session:
        assert outputs.release(session, "rita", [str(first)])["refused"] == []
        neighbour = session.scalars(
            sa.text(f"SELECT image_id FROM output_neighbour WHERE output_id = {first}")
        ).first()
    index_id = json.loads((folder / "manifest.json").read_text())["index_id"]
    result = cli("review", "revoke", str(neighbour), "--reason", "takedown request", actor="lee")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "1 revoked",
        f"  index {index_id} is now stale",
        f"  released outputs back to pending: {first}",
    ]
