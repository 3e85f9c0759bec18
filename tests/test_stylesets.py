"""Style sets: curate, publish frozen versions, name them NAME@N, diff them; every change audited."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import StyleSetVersion, StyleSetVersionMember
from stylevault.governance.curation import stylesets
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.ingest.run import ingest
from tests.factories import encode, picture, write, write_csv


@pytest.fixture
def stocked(catalogue, team, tmp_path):
    """Six images in two collections (ids 1-3 'ink', 4-6 'pastel')."""
    rows = []
    for n in range(6):
        write(tmp_path / "in" / f"{n}.png", encode(picture(300 + n)))
        rows.append({"path": f"{n}.png", "licence": "CC0", "collection": "ink" if n < 3 else "pastel"})
    ingest(catalogue, "sam", tmp_path / "in", manifest=write_csv(tmp_path / "m.csv", rows), progress=False)
    return catalogue


def run(catalogue, function, *args, **kwargs):
    with catalogue.write() as session:
        return function(session, *args, **kwargs)


def test_curate_publish_and_name_versions(stocked, cli):
    assert run(stocked, stylesets.create, "sam", "ink-look", "inky line art")["owner"] == "sam"
    assert run(stocked, stylesets.add, "sam", "ink-look", collection="ink")["added"] == 3
    again = run(stocked, stylesets.add, "sam", "ink-look", ["1", "4"])
    assert (again["added"], again["members"]) == (1, 4)
    first = run(stocked, stylesets.publish, "sam", "ink-look", "first cut")
    assert (first["version"], first["members"]) == (1, 4)
    run(stocked, stylesets.remove, "sam", "ink-look", ["4"])
    run(stocked, stylesets.add, "sam", "ink-look", ["5", "6"])
    second = run(stocked, stylesets.publish, "sam", "ink-look")
    assert (second["version"], second["members"]) == (2, 5)

    with stocked.read() as session:
        _, latest = stylesets.resolve_version(session, "ink-look")
        _, v1 = stylesets.resolve_version(session, "ink-look@1")
        assert (latest.version, v1.version) == (2, 1)
        assert [m["image_id"] for m in stylesets.version_members(session, v1)] == [1, 2, 3, 4]
        change = stylesets.diff(session, "ink-look", "1..2")
        assert [r["image_id"] for r in change["added"]] == [5, 6]
        assert [r["image_id"] for r in change["removed"]] == [4]
        actions = [e["action"] for e in reversed(audit.log(session, target_type="styleset"))]
        assert actions == [
            "styleset.create",
            "styleset.add",
            "styleset.add",
            "styleset.publish",
            "styleset.remove",
            "styleset.add",
            "styleset.publish",
        ]
        assert audit.verify(session).ok

    shown = json.loads(cli("styleset", "show", "ink-look@1", "--json").stdout)
    assert shown["version"] == 1 and len(shown["members"]) == 4
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    diffed = json.loads(cli("styleset", "show", "ink-look", "--diff", "1..2", "--json").stdout)
    assert len(diffed["added"]) == 2 and len(diffed["removed"]) == 1
    listed = json.loads(cli("styleset", "list", "--json").stdout)
    assert listed == [
        {
            "name": "ink-look",
            "description": "inky line art",
            "owner": "sam",
            "latest_version": 2,
            "working_members": 5,
        }
    ]


def test_the_fingerprint_covers_ids_and_bytes(stocked):
    run(stocked, stylesets.create, "sam", "s")
    run(stocked, stylesets.add, "sam", "s", ["1", "2"])
    published = run(stocked, stylesets.publish, "sam", "s")
    with stocked.read() as session:
        rows = session.execute(
            sa.select(StyleSetVersionMember.image_id, StyleSetVersionMember.sha256).order_by(
                StyleSetVersionMember.image_id
            )
        ).all()
    assert published["members_sha256"] == stylesets.members_sha256(rows)
    assert stylesets.members_sha256(rows[:1]) != published["members_sha256"]


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: run(c, stylesets.add, "sam", "s", ["99"]), BadInput, "IMAGE 99: no image with that id"),
        (lambda c: run(c, stylesets.add, "sam", "s@1", ["1"]), Refused, "s@1 is a published version"),
        (lambda c: run(c, stylesets.remove, "sam", "s@1", ["1"]), Refused, "s@1 is a published version"),
        (lambda c: run(c, stylesets.remove, "sam", "s", ["3"]), BadInput, "image 3 is not a member of s"),
        (lambda c: run(c, stylesets.add, "sam", "s", collection="nope"), BadInput, "no image has a source"),
        (lambda c: run(c, stylesets.add, "sam", "nope", ["1"]), BadInput, "style set 'nope' does not exist"),
        (lambda c: run(c, stylesets.create, "sam", "s"), BadInput, "already exists"),
        (lambda c: run(c, stylesets.create, "sam", "bad name"), BadInput, "a name is letters"),
        (lambda c: run(c, stylesets.publish, "sam", "s"), Refused, "has not changed since s@1"),
        (lambda c: run(c, stylesets.create, "lee", "t"), Refused, "needs the steward role"),
        (lambda c: run(c, stylesets.add, "val", "s", ["2"]), Refused, "needs the steward role"),
    ],
)
def test_refusals_change_nothing(stocked, call, error, message):
    run(stocked, stylesets.create, "sam", "s")
    run(stocked, stylesets.add, "sam", "s", ["1", "2"])
    run(stocked, stylesets.publish, "sam", "s")
    with stocked.read() as session:
        head = audit.revision(session)
    with pytest.raises(error, match=message):
        call(stocked)
    with stocked.read() as session:
        assert audit.revision(session) == head


def test_versions_that_do_not_exist(stocked):
    run(stocked, stylesets.create, "sam", "empty")
    with pytest.raises(Refused, match="no members to publish"):
        run(stocked, stylesets.publish, "sam", "empty")
    with stocked.read() as session:
        with pytest.raises(BadInput, match="has no published version yet"):
            stylesets.resolve_version(session, "empty")
        with pytest.raises(BadInput, match="style set version empty@3 does not exist"):
            stylesets.resolve_version(session, "empty@3")
        with pytest.raises(BadInput, match="a version is NAME@N"):
            stylesets.resolve_version(session, "empty@x")


def test_published_versions_are_immutable_in_the_database(stocked):
    run(stocked, stylesets.create, "sam", "s")
    run(stocked, stylesets.add, "sam", "s", ["1", "2"])
    run(stocked, stylesets.publish, "sam", "s")
    statements = [
        sa.update(StyleSetVersion.__table__).values(members=9),
        sa.delete(StyleSetVersionMember.__table__),
        sa.update(StyleSetVersionMember.__table__).values(sha256="0" * 64),
    ]
    for statement in statements:
        with pytest.raises(IntegrityError, match="immutable"), stocked.engine.begin() as connection:
            connection.execute(statement)


def test_styleset_cli_contract(stocked, cli):
    assert cli("styleset", "create", "pastel", "--description", "soft", actor="sam").exit_code == 0
    added = cli("styleset", "add", "pastel", "--collection", "pastel", "--json", actor="sam")
    assert json.loads(added.stdout) == {"name": "pastel", "added": 3, "members": 3}
    published = cli("styleset", "publish", "pastel", "--note", "v1", actor="sam")
    assert published.exit_code == 0 and "published pastel@1: 3 members" in published.stdout
    refused = cli("styleset", "add", "pastel@1", "1", actor="sam")
    assert refused.exit_code == 1 and "published version" in refused.stderr
    missing = cli("styleset", "show", "pastel@7")
    assert missing.exit_code == 2 and "pastel@7 does not exist" in missing.stderr
    no_role = cli("styleset", "publish", "pastel", actor="lee")
    assert no_role.exit_code == 1
    text = cli("styleset", "show", "pastel", "--members")
    assert text.exit_code == 0 and "pastel@1" in text.stdout
