"""Licence normalisation (SPDX via license-expression), derivation from sources, and `licence set`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import Licence
from stylevault.governance.errors import BadInput
from stylevault.governance.ingest.run import ingest
from stylevault.governance.rules import licences
from stylevault.governance.rules.licences import normalise
from stylevault.governance.views import images
from tests.factories import encode, picture, write, write_csv


@pytest.mark.parametrize(
    ("raw", "spdx"),
    [
        ("CC-BY-4.0", "CC-BY-4.0"),
        ("cc-by-4.0", "CC-BY-4.0"),
        ("CC BY 4.0", "CC-BY-4.0"),
        ("Creative Commons Attribution 4.0 International", "CC-BY-4.0"),
        ("Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International", "CC-BY-NC-SA-4.0"),
        ("Creative Commons Attribution-NoDerivatives 4.0", "CC-BY-ND-4.0"),
        ("CC BY-NC 4.0", "CC-BY-NC-4.0"),
        ("cc by-sa 3.0 de", "CC-BY-SA-3.0-DE"),
        ("https://creativecommons.org/licenses/by/4.0/", "CC-BY-4.0"),
        ("http://creativecommons.org/licenses/by-nc-nd/4.0/deed.fr", "CC-BY-NC-ND-4.0"),
        ("https://creativecommons.org/licenses/by-sa/3.0/de/legalcode", "CC-BY-SA-3.0-DE"),
        ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0-1.0"),
        ("https://creativecommons.org/publicdomain/mark/1.0/", "CC-PDM-1.0"),
        ("https://spdx.org/licenses/MIT.html", "MIT"),
        ("CC0", "CC0-1.0"),
        ("cc0 1.0", "CC0-1.0"),
        ("Creative Commons Zero v1.0 Universal", "CC0-1.0"),
        ("public domain", "LicenseRef-PublicDomain"),
        ("Public Domain.", "LicenseRef-PublicDomain"),
        ("LicenseRef-PublicDomain", "LicenseRef-PublicDomain"),
        ("All rights reserved", "LicenseRef-AllRightsReserved"),
        ("MIT License", "MIT"),
        ("mit or apache-2.0", "MIT OR Apache-2.0"),
        ("CC-BY-NC-4.0 AND LicenseRef-ACME-contract-2025", "CC-BY-NC-4.0 AND LicenseRef-ACME-contract-2025"),
        ("licenseref-acme", "LicenseRef-acme"),
        ("LicenseRef-MIT-Bootstrap", "LicenseRef-MIT-Bootstrap"),
        ("MIT AND LicenseRef-PublicDomain", "MIT AND LicenseRef-PublicDomain"),
        ("GPL-2.0+", "GPL-2.0-or-later"),
    ],
)
def test_recognised_licences_map_to_spdx(raw, spdx):
    result = normalise(raw)
    assert (result.spdx, result.status) == (spdx, "normalised")


@pytest.mark.parametrize(
    "raw",
    [
        "free for personal use",
        "CC BY 9.0",
        "CC-BY-4.0 AND (",
        "CC-BY-4.0 with attribution",
        "Copyright 2020 Jane Doe",
        "https://example.org/licence",
        "https://creativecommons.org/licenses/by/9.9/",
        "no known copyright restrictions",
        "gpl",
        "GPL OR MIT",
        "cc-by",
    ],
)
def test_unrecognised_licences_stay_raw_and_are_never_guessed(raw):
    result = normalise(raw)
    assert result.spdx is None
    assert result.status == "unrecognised"
    assert result.note


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_missing_licence(raw):
    assert normalise(raw).status == "missing"


def test_source_statement_explicit_wins_and_disagreement_is_flagged():
    assert licences.source_statement("CC0", ["https://creativecommons.org/licenses/by/4.0/"]) == (
        "CC0",
        "manifest says CC0-1.0, the file says CC-BY-4.0",
    )
    assert licences.source_statement("CC0", ["cc0"]) == ("CC0", None)
    assert licences.source_statement(None, ["free text", "CC BY 4.0"]) == ("CC BY 4.0", None)
    raw, note = licences.source_statement(None, ["CC BY 4.0", "CC BY-NC 4.0"])
    assert raw == "CC BY 4.0" and "disagree" in note


def _source(raw, *, opt_out=False, expires=None, at=None, attribution=None, metadata=None):
    return SimpleNamespace(
        licence_raw=raw,
        opt_out=opt_out,
        licence_expires=expires,
        attribution=attribution,
        evidence=None,
        retrieved_at=at or datetime.now(UTC),
        raw_metadata=metadata or {},
    )


def test_derive_agreeing_sources_and_most_restrictive_extras():
    soon, later = datetime(2027, 1, 1).date(), datetime(2028, 1, 1).date()
    fields = licences.derive(
        [_source("CC BY 4.0", expires=later), _source("cc-by-4.0", opt_out=True, expires=soon)], None
    )
    assert (fields["spdx"], fields["status"]) == ("CC-BY-4.0", "normalised")
    assert fields["opt_out"] is True
    assert fields["expires_on"] == soon


def test_derive_disagreeing_sources_is_a_conflict_without_spdx():
    fields = licences.derive([_source("CC0"), _source("CC BY-NC 4.0")], None)
    assert fields["status"] == "conflict"
    assert fields["spdx"] is None
    assert "CC-BY-NC-4.0" in fields["note"] and "CC0-1.0" in fields["note"]


def test_derive_keeps_a_verified_licence_until_a_newer_source_disagrees():
    verified_at = datetime.now(UTC)
    current = Licence(
        image_id=1, raw="CC0", spdx="CC0-1.0", status="verified", verified_by=1, verified_at=verified_at
    )
    older = _source("CC BY-NC 4.0", at=verified_at - timedelta(days=1))
    assert licences.derive([older], current)["status"] == "verified"
    newer = _source("CC BY-NC 4.0", at=verified_at + timedelta(seconds=1))
    fields = licences.derive([older, newer], current)
    assert (fields["status"], fields["spdx"]) == ("conflict", "CC0-1.0")
    assert "newer source" in fields["note"]


def _ingest_one(catalogue, tmp_path, licence="free for personal use"):
    folder = tmp_path / "in"
    write(folder / "a.png", encode(picture(1)))
    write_csv(tmp_path / "m.csv", [{"path": "a.png", "licence": licence}])
    ingest(catalogue, "sam", folder, manifest=tmp_path / "m.csv", progress=False)
    with catalogue.read() as session:
        return images.resolve(session, "1")


def test_licence_set_records_verified_licence_with_evidence_file(catalogue, team, tmp_path, cli):
    image = _ingest_one(catalogue, tmp_path)
    evidence = write(tmp_path / "contract.pdf", b"%PDF-1.4 simulated contract")
    result = cli(
        "licence",
        "set",
        image.sha256[:12],
        "--licence",
        "LicenseRef-ACME-2026",
        "--evidence",
        evidence,
        "--expires",
        "2027-06-30",
        "--attribution",
        "ACME Images",
        "--json",
        actor="lee",
    )
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert state["spdx"] == "LicenseRef-ACME-2026" and state["status"] == "verified"
    assert state["evidence"].startswith("store:evidence/")
    digest = state["evidence"].split("/")[1].split(".")[0]
    assert (catalogue.store / "evidence" / digest[:2] / f"{digest}.pdf").read_bytes() == evidence.read_bytes()
    with catalogue.read() as session:
        lic = session.get(Licence, image.id)
        assert lic.verified_by is not None and str(lic.expires_on) == "2027-06-30"
        event = audit.log(session, action="licence.set")[0]
        assert event["before"]["status"] == "unrecognised" and event["after"]["status"] == "verified"
        assert event["actor"] == "lee"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--licence", "whatever I like"], "--licence: 'whatever I like' is not a recognised licence"),
        (["--licence", "CC0", "--expires", "next year"], "--expires: expected a date"),
        (["--licence", "CC0", "--evidence", "/no/such/file.pdf"], "--evidence: not a URL"),
        (["--licence", "CC0", "--expires", "2020-01-31"], "--expires: 2020-01-31 is in the past"),
    ],
)
def test_licence_set_refuses_bad_input_and_changes_nothing(catalogue, team, tmp_path, cli, args, message):
    image = _ingest_one(catalogue, tmp_path)
    with catalogue.read() as session:
        head_before = audit.revision(session)
    result = cli("licence", "set", str(image.id), *args, actor="lee")
    assert result.exit_code == 2
    assert message in result.stderr
    with catalogue.read() as session:
        assert session.get(Licence, image.id).status == "unrecognised"
        assert audit.revision(session) == head_before


def test_licence_set_needs_the_legal_role(catalogue, team, tmp_path, cli):
    image = _ingest_one(catalogue, tmp_path)
    result = cli("licence", "set", str(image.id), "--licence", "CC0", actor="sam")
    assert result.exit_code == 1
    assert "needs the legal role" in result.stderr


def test_require_expression_names_the_field():
    with pytest.raises(BadInput, match="licence_expires"):
        licences.parse_date("31/01/2027", "licence_expires")
    assert licences.require_expression("CC BY 4.0") == "CC-BY-4.0"


# ---------------------------------------------------------------- one decision for many images


@pytest.fixture
def expat(catalogue, team, tmp_path):
    """Five images: 1-3 state `GPL-2` (2 of them in collection `debian`), 4 states `MIT`, 5 none."""
    rows = [
        {"path": "a.png", "licence": "GPL-2", "collection": "debian"},
        {"path": "b.png", "licence": "GPL-2", "collection": "debian"},
        {"path": "c.png", "licence": "GPL-2", "collection": "other"},
        {"path": "d.png", "licence": "MIT", "collection": "debian"},
        {"path": "e.png", "collection": "other"},
    ]
    for n, row in enumerate(rows):
        write(tmp_path / "in" / row["path"], encode(picture(60 + n)))
    ingest(catalogue, "sam", tmp_path / "in", manifest=write_csv(tmp_path / "m.csv", rows), progress=False)
    return catalogue


def _licences(catalogue) -> dict[int, tuple]:
    with catalogue.read() as session:
        return {lic.image_id: (lic.status, lic.spdx) for lic in session.scalars(sa.select(Licence))}


def test_licence_set_by_raw_statement_dry_run_then_all_in_one_transaction(expat, cli, tmp_path):
    before = _licences(expat)
    with expat.read() as session:
        head = audit.revision(session)
    trial = cli("licence", "set", "--raw", "GPL-2", "--licence", "MIT", "--dry-run", actor="lee")
    assert trial.exit_code == 0, trial.output
    assert trial.stdout.splitlines() == [
        "3 images: licence MIT would be recorded as verified",
        "  3 now unrecognised - (as found: 'GPL-2'): images 1-3",
        "dry run: nothing changed",
    ]
    evidence = write(tmp_path / "ruling.txt", b"version 2 only, says the package")
    gpl2_to_mit = ("licence", "set", "--raw", "GPL-2", "--licence", "MIT", "--evidence", evidence)
    as_json = cli(*gpl2_to_mit, "--dry-run", "--json", actor="lee")
    assert [i["id"] for i in json.loads(as_json.stdout)["images"]] == [1, 2, 3]
    assert not (expat.store / "evidence").exists()  # a dry run only reads the evidence
    with expat.read() as session:
        assert audit.revision(session) == head
    assert _licences(expat) == before

    done = cli(*gpl2_to_mit, "--note", "legal ruling 12", actor="lee")
    assert done.exit_code == 0, done.output
    assert done.stdout.splitlines()[0] == "3 images: licence MIT recorded as verified"
    after = _licences(expat)
    assert [after[i] for i in (1, 2, 3)] == [("verified", "MIT")] * 3
    assert after[4] == before[4] and after[5] == before[5]
    with expat.read() as session:
        events = audit.log(session, action="licence.set")
        assert sorted(e["target"] for e in events) == ["image:1", "image:2", "image:3"]
        assert all(e["before"]["raw"] == "GPL-2" and e["after"]["note"] == "legal ruling 12" for e in events)
        assert len({e["after"]["evidence"] for e in events}) == 1
        assert audit.verify(session).ok
    again = cli("licence", "set", "--raw", "GPL-2", "--licence", "MIT", actor="lee")
    assert again.stdout.strip() == "no image matches: nothing to record"


def test_licence_set_by_collection_and_other_filters(expat, cli):
    done = cli(
        "licence",
        "set",
        "--collection",
        "debian",
        "--licence-status",
        "unrecognised",
        "--licence",
        "MIT",
        "--json",
        actor="lee",
    )
    assert done.exit_code == 0, done.output
    assert [i["id"] for i in json.loads(done.stdout)["images"]] == [1, 2]
    assert _licences(expat)[3] == ("unrecognised", None)
    missing = cli(
        "licence", "set", "--licence-status", "missing", "--licence", "LicenseRef-Contract-9", actor="lee"
    )
    assert missing.exit_code == 0 and _licences(expat)[5] == ("verified", "LicenseRef-Contract-9")


@pytest.mark.parametrize(
    ("args", "message", "status"),
    [
        (["--licence", "MIT"], "give IMAGE, or a filter", 2),
        (["1", "--raw", "GPL-2", "--licence", "MIT"], "IMAGE: give one image or filters, not both", 2),
        (["--raw", "GPL-2", "--licence", "nonsense (("], "--licence: 'nonsense ((' is not a recognised", 2),
        (["--raw", "GPL-2", "--licence", "MIT", "--state", "lost"], "'lost' is not one of", 2),
    ],
)
def test_licence_set_by_filter_refuses_bad_input_and_changes_nothing(expat, cli, args, message, status):
    before = _licences(expat)
    result = cli("licence", "set", *args, actor="lee")
    assert result.exit_code == status and message in result.stderr
    assert _licences(expat) == before


def test_licence_set_by_filter_needs_the_legal_role(expat, cli):
    result = cli("licence", "set", "--raw", "GPL-2", "--licence", "MIT", actor="sam")
    assert result.exit_code == 1 and "needs the legal role" in result.stderr
    assert _licences(expat)[1] == ("unrecognised", None)
