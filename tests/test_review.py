"""Review: roles, four-eyes, allowed transitions, all-or-nothing commands, and their audit events."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import Image
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import review
from tests.factories import encode, picture, write, write_csv

LICENCES = ["CC0", "CC BY 4.0", "free for personal use", "CC-BY-NC-4.0"]


@pytest.fixture
def pending(catalogue, team, tmp_path):
    """Four images ingested by sam: three with recognised licences, one unrecognised (id 3)."""
    folder = tmp_path / "in"
    rows = []
    for n, licence in enumerate(LICENCES):
        write(folder / f"{n}.png", encode(picture(n)))
        rows.append({"path": f"{n}.png", "licence": licence})
    ingest(catalogue, "sam", folder, manifest=write_csv(tmp_path / "m.csv", rows), progress=False)
    return catalogue


def _states(catalogue) -> dict[int, str]:
    with catalogue.read() as session:
        return {image.id: image.state for image in session.scalars(sa.select(Image).order_by(Image.id))}


def _decide(catalogue, actor, decision, refs, reason=None):
    with catalogue.write() as session:
        return review.decide(session, actor, decision, [str(r) for r in refs], reason).images


def test_legal_approves_what_a_steward_ingested(pending):
    results = _decide(pending, "lee", "approve", [1, 2, 4])
    assert [r["changed"] for r in results] == [True, True, True]
    assert _states(pending) == {1: "approved", 2: "approved", 3: "pending", 4: "approved"}
    with pending.read() as session:
        events = audit.log(session, action="review.approve")
    assert sorted(e["target"] for e in events) == ["image:1", "image:2", "image:4"]
    assert all(e["actor"] == "lee" and e["before"]["state"] == "pending" for e in events)


def test_four_eyes_the_ingester_cannot_approve_even_with_the_legal_role(catalogue, team, tmp_path):
    folder = tmp_path / "in"
    write(folder / "a.png", encode(picture(7)))
    ingest(catalogue, "kim", folder, licence="CC0", progress=False)
    with pytest.raises(Refused, match="kim ingested it and cannot approve it"):
        _decide(catalogue, "kim", "approve", [1])
    assert _states(catalogue) == {1: "pending"}
    _decide(catalogue, "lee", "approve", [1])
    assert _states(catalogue) == {1: "approved"}


def test_four_eyes_covers_every_actor_who_ingested_a_source(catalogue, team, tmp_path):
    """kim adds a second source of sam's image: kim is an ingester of it too."""
    write(tmp_path / "a" / "x.png", encode(picture(3)))
    write(tmp_path / "b" / "same-bytes.png", encode(picture(3)))
    ingest(catalogue, "sam", tmp_path / "a", licence="CC0", progress=False)
    ingest(catalogue, "kim", tmp_path / "b", licence="CC0", progress=False)
    with pytest.raises(Refused, match="four-eyes"):
        _decide(catalogue, "kim", "approve", [1])


def test_a_command_decides_all_its_images_or_none(pending):
    with pytest.raises(Refused, match=r"image 3: licence is unrecognised.*licence set"):
        _decide(pending, "lee", "approve", [1, 2, 3])
    assert set(_states(pending).values()) == {"pending"}


def test_roles_are_checked(pending):
    with pytest.raises(Refused, match="needs the legal role"):
        _decide(pending, "sam", "approve", [1])
    with pytest.raises(Refused, match="needs the legal role"):
        _decide(pending, "val", "reject", [1], "no")
    with pytest.raises(Refused, match="unknown actor 'mallory'"):
        _decide(pending, "mallory", "approve", [1])
    with pytest.raises(BadInput, match="no actor"):
        _decide(pending, None, "approve", [1])


def test_transitions_and_reasons(pending):
    with pytest.raises(Refused, match="--reason is required to reject"):
        _decide(pending, "lee", "reject", [3])
    _decide(pending, "lee", "reject", [3], "personal use only")
    _decide(pending, "lee", "approve", [1])
    with pytest.raises(Refused, match="image 1 is approved: it cannot be rejected \\(use revoke\\)"):
        _decide(pending, "lee", "reject", [1], "changed my mind")
    _decide(pending, "lee", "revoke", [1], "takedown request")
    with pytest.raises(Refused, match="--reason is required to approve a revoked image"):
        _decide(pending, "lee", "approve", [1])
    with pytest.raises(Refused, match="image 3 is rejected: it cannot be revoked"):
        _decide(pending, "lee", "revoke", [3], "x")
    _decide(pending, "lee", "approve", [1], "licence re-granted in writing")
    assert _states(pending)[1] == "approved"
    with pending.read() as session:
        history = [e["action"] for e in reversed(audit.log(session, target_type="image", target_id="1"))]
    assert history == ["image.ingest", "review.approve", "review.revoke", "review.approve"]


def test_deciding_the_same_again_changes_nothing(pending):
    _decide(pending, "lee", "approve", [2])
    with pending.read() as session:
        head = audit.revision(session)
    results = _decide(pending, "lee", "approve", [2])
    assert results == [{"id": 2, "sha256": results[0]["sha256"], "state": "approved", "changed": False}]
    with pending.read() as session:
        assert audit.revision(session) == head


def test_a_revoked_pending_image_can_never_be_approved_silently(pending):
    _decide(pending, "lee", "revoke", [4], "opt-out received before review")
    assert _states(pending)[4] == "revoked"


def test_review_cli_contract(pending, cli):
    result = cli("review", "approve", "1", "2", "--json", actor="lee")
    assert result.exit_code == 0, result.output
    assert [r["state"] for r in json.loads(result.stdout)["images"]] == ["approved", "approved"]
    refused = cli("review", "approve", "3", actor="lee")
    assert refused.exit_code == 1
    assert refused.stderr.count("\n") == 1 and "licence is unrecognised" in refused.stderr
    missing = cli("review", "reject", "99", "--reason", "x", actor="lee")
    assert missing.exit_code == 2 and "IMAGE 99: no image with that id" in missing.stderr
    with pending.read() as session:
        sha = session.get(Image, 4).sha256
    by_prefix = cli("review", "revoke", sha[:12], "--reason", "takedown", actor="lee")
    assert by_prefix.exit_code == 0, by_prefix.output
    assert _states(pending)[4] == "revoked"


# ---------------------------------------------------------------- deciding by filter


@pytest.fixture
def mixed(pending, tmp_path):
    """`pending` (sam's images 1-4, image 3 unrecognised), plus image 5 (CC0) that kim ingested."""
    write(tmp_path / "kim" / "k.png", encode(picture(50)))
    ingest(pending, "kim", tmp_path / "kim", licence="CC0", progress=False)
    return pending


def _matching(catalogue, actor, decision, filters, reason=None, dry_run=False):
    with catalogue.write() as session:
        return review.decide_matching(session, actor, decision, filters, reason, dry_run=dry_run)


def test_approving_by_filter_skips_and_reports_what_a_rule_refuses(mixed):
    with mixed.read() as session:
        head = audit.revision(session)
    trial = _matching(mixed, "kim", "approve", {"state": "pending"}, dry_run=True)
    assert trial.dry_run and [r["id"] for r in trial.changed] == [1, 2, 4]
    assert [(s["id"], s["why"]) for s in trial.skipped] == [(3, "licence"), (5, "four-eyes")]
    with mixed.read() as session:
        assert audit.revision(session) == head
    assert set(_states(mixed).values()) == {"pending"}

    done = _matching(mixed, "kim", "approve", {"state": "pending"})
    assert [r["id"] for r in done.changed] == [1, 2, 4]
    assert [(s["id"], s["why"]) for s in done.skipped] == [(3, "licence"), (5, "four-eyes")]
    assert "kim ingested it and cannot approve it (four-eyes)" in done.skipped[1]["detail"]
    assert _states(mixed) == {1: "approved", 2: "approved", 3: "pending", 4: "approved", 5: "pending"}
    with mixed.read() as session:
        events = audit.log(session, action="review.approve")
        assert sorted(e["target"] for e in events) == ["image:1", "image:2", "image:4"]
        assert audit.verify(session).ok
    # The same decision again changes nothing; another reviewer approves kim's image.
    again = _matching(mixed, "kim", "approve", {"licence_status": "normalised"})
    assert again.changed == [] and [r["id"] for r in again.images] == [1, 2, 4]
    assert [r["id"] for r in _matching(mixed, "lee", "approve", {"raw": "CC0"}).changed] == [5]


def test_rejecting_by_filter_needs_a_reason_and_a_filter(mixed):
    skipped = _matching(mixed, "lee", "reject", {"flagged": True})
    assert skipped.changed == [] and [s["why"] for s in skipped.skipped] == ["reason"]
    done = _matching(mixed, "lee", "reject", {"flagged": True}, "personal use only")
    assert [r["id"] for r in done.changed] == [3]
    with pytest.raises(BadInput, match="give IMAGE, or a filter"):
        _matching(mixed, "lee", "approve", {"state": None, "flagged": False})
    with pytest.raises(BadInput, match="by filter only approve or reject"):
        _matching(mixed, "lee", "revoke", {"state": "pending"}, "x")
    with pytest.raises(Refused, match="needs the legal role"):
        _matching(mixed, "sam", "approve", {"state": "pending"})


def test_review_by_filter_cli(mixed, cli):
    trial = cli("review", "approve", "--state", "pending", "--dry-run", actor="kim")
    assert trial.exit_code == 0, trial.output
    assert trial.stdout.splitlines() == [
        "3 would be approved; 2 skipped",
        "  images 1-2, 4",
        "  skipped 1 licence not settled (record it with `stylevault licence set`): images 3",
        "  skipped 1 ingested by kim (four-eyes: another legal reviewer decides them): images 5",
        "dry run: nothing changed",
    ]
    assert set(_states(mixed).values()) == {"pending"}
    done = cli("review", "approve", "--licence-status", "normalised", "--json", actor="kim")
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert [r["id"] for r in data["images"]] == [1, 2, 4] and [s["id"] for s in data["skipped"]] == [5]
    both = cli("review", "approve", "1", "--state", "pending", actor="lee")
    assert both.exit_code == 2 and "not both" in both.stderr
    nothing = cli("review", "approve", actor="lee")
    assert nothing.exit_code == 2 and "give IMAGE, or a filter" in nothing.stderr
