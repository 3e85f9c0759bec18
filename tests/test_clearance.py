"""The set-based policy check agrees, member by member, with the policy's own one-image reference."""

from __future__ import annotations

import json
from datetime import date

import pytest

from stylevault.governance.curation import clearance, stylesets
from stylevault.governance.errors import BadInput
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import review
from stylevault.governance.rules.policy_files import list_policies, load_policy
from stylevault.governance.views import images
from tests.factories import alt, encode, picture, write, write_csv, xmp_packet

TODAY = date(2026, 11, 27)
PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"

# name -> (manifest row extras, decision legal takes: approve / reject / revoke / None)
MIX = {
    "cc0": ({"licence": "CC0"}, "approve"),
    "by": ({"licence": "CC BY 4.0", "attribution": "A. Artist"}, "approve"),
    "by-sa": ({"licence": "CC BY-SA 4.0"}, "approve"),
    "by-nc": ({"licence": "CC BY-NC 4.0"}, "approve"),
    "by-nd": ({"licence": "CC BY-ND 4.0"}, "approve"),
    "by-nc-sa": ({"licence": "https://creativecommons.org/licenses/by-nc-sa/4.0/"}, "approve"),
    "or": ({"licence": "CC-BY-NC-4.0 OR CC0-1.0"}, "approve"),
    "and": ({"licence": "CC-BY-NC-4.0 AND LicenseRef-ACME"}, "approve"),
    "contract": ({"licence": "LicenseRef-ACME-2026", "licence_expires": "2027-01-31"}, "approve"),
    "expired": ({"licence": "CC0", "licence_expires": "2025-01-01"}, "approve"),
    "opted-out": ({"licence": "CC0", "opt_out": "true"}, "approve"),
    "unknown": ({"licence": "free for personal use"}, None),
    "missing": ({}, None),
    "pending": ({"licence": "CC0"}, None),
    "rejected": ({"licence": "CC0"}, "reject"),
    "revoked": ({"licence": "CC0"}, "revoke"),
    "mit": ({"licence": "MIT"}, "approve"),
}


@pytest.fixture
def mixed(catalogue, team, tmp_path):
    """A published style set `mix@1` with one member for each case in MIX, plus one whose file
    reserves data mining and one whose sources disagree about the licence."""
    folder = tmp_path / "in"
    rows = []
    for n, (name, (extra, _)) in enumerate(MIX.items()):
        write(folder / f"{name}.png", encode(picture(500 + n)))
        rows.append({"path": f"{name}.png", **extra})
    mining = xmp_packet({"plus:DataMining": PROHIBITED}, alt("dc:rights", "(c) M. Iner"))
    write(folder / "mining.jpg", encode(picture(600), "JPEG", xmp=mining))
    rows.append({"path": "mining.jpg", "licence": "CC0"})
    write(folder / "conflict.png", encode(picture(601)))
    write(folder / "conflict-copy.png", encode(picture(601)))
    rows += [
        {"path": "conflict.png", "licence": "CC0"},
        {"path": "conflict-copy.png", "licence": "CC BY-NC 4.0"},
    ]
    ingest(catalogue, "sam", folder, manifest=write_csv(tmp_path / "m.csv", rows), progress=False)
    with catalogue.write() as session:
        by_name = {row["path"].split("/")[-1].rsplit(".", 1)[0]: row["id"] for row in _sources(session)}
        for name, (_, decision) in MIX.items():
            if decision in ("approve", "revoke"):
                review.decide(session, "lee", "approve", [str(by_name[name])], None)
            if decision in ("reject", "revoke"):
                review.decide(session, "lee", decision, [str(by_name[name])], "test")
        review.decide(session, "lee", "approve", [str(by_name["mining"])], None)
        stylesets.create(session, "sam", "mix")
        stylesets.add(session, "sam", "mix", [str(i) for i in sorted(set(by_name.values()))])
        stylesets.publish(session, "sam", "mix")
    return catalogue, by_name


def _sources(session):
    import sqlalchemy as sa

    from stylevault.governance.catalogue.models import Source

    return [{"path": s.path, "id": s.image_id} for s in session.scalars(sa.select(Source))]


def _reference(session, policy, image_ids):
    """Policy.decide for each member, from what `images show` reports: the one-image reference."""
    found = {}
    for image_id in image_ids:
        shown = images.show(session, images.resolve(session, str(image_id))).as_dict()
        lic = shown["licence"]
        found[image_id] = policy.decide(
            state=shown["state"],
            licence_status=lic["status"],
            spdx=lic["spdx"],
            opt_out=lic["opt_out"],
            data_mining=lic["data_mining"],
            expires_on=lic["expires_on"],
            today=TODAY,
        )
    return found


@pytest.mark.parametrize("policy_name", ["commercial", "internal", "research"])
def test_set_based_check_equals_the_reference_for_every_member(mixed, policy_name):
    catalogue, by_name = mixed
    policy = load_policy(policy_name)
    with catalogue.read() as session:
        result = clearance.check(session, policy, "mix", on=TODAY)
        cleared = {
            row["image_id"]: row for row in clearance.members(session, policy, "mix", cleared=True, on=TODAY)
        }
        excluded = {
            row["image_id"]: row for row in clearance.members(session, policy, "mix", cleared=False, on=TODAY)
        }
        reference = _reference(session, policy, sorted(set(by_name.values())))
    assert result.members == len(reference) == len(cleared) + len(excluded)
    assert result.cleared == len(cleared)
    for image_id, decision in reference.items():
        if decision.cleared:
            assert image_id in cleared, image_id
            assert tuple(cleared[image_id]["obligations"]) == decision.obligations
        else:
            assert excluded[image_id]["reason"] == decision.reason, image_id
            if decision.detail:
                assert excluded[image_id]["detail"] == decision.detail
    assert sum(result.excluded.values()) == len(excluded)
    assert result.policy_sha256 == policy.hash


def test_commercial_decisions_with_reasons(mixed):
    catalogue, ids = mixed
    with catalogue.read() as session:
        policy = load_policy("commercial")
        excluded = {
            r["image_id"]: r for r in clearance.members(session, policy, "mix", cleared=False, on=TODAY)
        }
        cleared = {
            r["image_id"]: r for r in clearance.members(session, policy, "mix", cleared=True, on=TODAY)
        }
    reasons = {name: excluded[ids[name]]["reason"] for name in ids if ids[name] in excluded}
    assert reasons == {
        "by-nc": "licence-excluded",
        "by-nd": "licence-excluded",
        "by-nc-sa": "licence-excluded",
        "and": "licence-excluded",
        "contract": "licence-excluded",
        "expired": "expired",
        "opted-out": "opted-out",
        "unknown": "not-approved",
        "missing": "not-approved",
        "pending": "not-approved",
        "rejected": "not-approved",
        "revoked": "not-approved",
        "mining": "opted-out",
        "conflict": "not-approved",
        "conflict-copy": "not-approved",
    }
    assert "non-commercial" in excluded[ids["by-nc"]]["detail"]
    assert cleared[ids["or"]]["relied_on"] == "CC0-1.0" and cleared[ids["or"]]["obligations"] == []
    assert cleared[ids["by-sa"]]["obligations"] == ["attribution", "share-alike"]
    assert cleared[ids["by"]]["attribution"] == "A. Artist"
    assert set(cleared) == {ids[n] for n in ("cc0", "by", "by-sa", "or", "mit")}


def test_expiry_is_judged_on_the_day_asked(mixed):
    catalogue, ids = mixed
    policy = load_policy("research")
    with catalogue.read() as session:
        before = clearance.check(session, policy, "mix@1", on=date(2024, 12, 31))
        after = clearance.check(session, policy, "mix@1", on=date(2027, 2, 1))
        today = clearance.check(session, policy, "mix@1", on=TODAY)
    assert before.excluded.get("expired", 0) == 0
    assert before.expiring_soon == 1  # the CC0 image whose licence ends 2025-01-01, the next day
    assert after.excluded["expired"] == today.excluded["expired"] + 1  # the contract ran out too
    assert today.expiring_soon == 0  # the contract ends 2027-01-31, 65 days on: outside research's 30
    with catalogue.read() as session:
        commercial = clearance.check(session, load_policy("commercial"), "mix", on=TODAY)
    assert commercial.expiring_soon == 0  # excluded under commercial, so not counted among the cleared


def test_policy_check_cli(mixed, cli):
    catalogue, ids = mixed
    summary = cli("policy", "check", "commercial", "--styleset", "mix", "--on", "2026-11-27", "--summary")
    assert summary.exit_code == 0, summary.output
    assert "5 of 19 cleared" in summary.stdout  # "conflict" and "conflict-copy" are the same bytes
    assert "not approved by legal [not-approved]" in summary.stdout
    full = cli("policy", "check", "commercial", "--styleset", "mix@1", "--on", "2026-11-27", "--json")
    data = json.loads(full.stdout)
    assert data["cleared"] == len(data["cleared_members"]) == 5
    assert len(data["excluded_members"]) == data["members"] - 5 == 14
    assert data["policy_sha256"] == load_policy("commercial").hash
    text = cli("policy", "check", "commercial", "--styleset", "mix", "--on", "2026-11-27")
    assert f"excluded {ids['by-nc']:>8}" in text.stdout and "non-commercial" in text.stdout
    bad_version = cli("policy", "check", "commercial", "--styleset", "mix@4")
    assert bad_version.exit_code == 2 and "mix@4 does not exist" in bad_version.stderr
    bad_policy = cli("policy", "check", "nonesuch", "--styleset", "mix")
    assert bad_policy.exit_code == 2 and "nonesuch" in bad_policy.stderr
    bad_day = cli("policy", "check", "commercial", "--styleset", "mix", "--on", "tomorrow")
    assert bad_day.exit_code == 2 and "--on: expected a date" in bad_day.stderr


def test_policy_list_and_show_cli(cli, catalogue):
    listed = json.loads(cli("policy", "list", "--json").stdout)
    assert {p["name"] for p in listed} >= {"commercial", "internal", "research"}
    assert {p["sha256"] for p in listed} == {p.hash for p in list_policies()}
    shown = json.loads(cli("policy", "show", "commercial", "--json").stdout)
    assert shown["name"] == "commercial" and shown["sha256"] == load_policy("commercial").hash
    assert cli("policy", "show", "research").exit_code == 0


def test_a_version_that_does_not_exist(catalogue, team):
    with catalogue.read() as session, pytest.raises(BadInput, match="style set 'nope' does not exist"):
        clearance.check(session, load_policy("commercial"), "nope")
