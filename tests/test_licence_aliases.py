"""The licence alias table (governance/licence_aliases.yaml and the site's own aliases): spellings
people write map exactly or stay unrecognised with a reason, each mapping says which alias or rule
made it, and legal's site aliases re-derive the automatic licences they change, audited."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import Licence
from stylevault.governance.errors import BadInput
from stylevault.governance.ingest.run import ingest
from stylevault.governance.rules import aliases, licences
from stylevault.governance.rules.licences import normalise
from tests.factories import encode, picture, write, write_csv


@pytest.mark.parametrize(
    ("raw", "spdx", "via"),
    [
        ("GPL-2+", "GPL-2.0-or-later", "shipped alias 'GPL-2+'"),
        ("gpl-3+", "GPL-3.0-or-later", "shipped alias 'GPL-3+'"),
        ("GPL-3+ or CC-BY-SA-3.0", "GPL-3.0-or-later OR CC-BY-SA-3.0", "shipped alias 'GPL-3+'"),
        ("Expat", "MIT", "shipped alias 'Expat'"),
        ("LGPL-2.1+", "LGPL-2.1-or-later", "SPDX id"),
        ("CC BY 4.0 OR MIT", "CC-BY-4.0 OR MIT", "Creative Commons name"),
        ("CC BY-SA 3.0 IGO", "CC-BY-SA-3.0-IGO", "Creative Commons name"),
        ("https://creativecommons.org/licenses/by/3.0/igo/", "CC-BY-3.0-IGO", "Creative Commons URL"),
        ("Creative Commons Zero", "CC0-1.0", "shipped alias 'Creative Commons Zero'"),
        ("CC-BY-SA-3.0+", "CC-BY-SA-3.0+", "+ is or any later version"),
        (
            "Creative Commons Attribution 4.0 International Public License",
            "CC-BY-4.0",
            "Creative Commons name",
        ),
        ("Attribution-ShareAlike 4.0 International", "CC-BY-SA-4.0", "Creative Commons name"),
        ("Apache 2.0", "Apache-2.0", "shipped alias 'Apache 2.0'"),
        ("The MIT License", "MIT", "shipped alias 'The MIT License'"),
        ("GPL-2.0+ WITH Font-exception-2.0", "GPL-2.0-or-later WITH Font-exception-2.0", "SPDX exception id"),
        # DEP-5: a comma before and/or binds loosest.
        (
            "GPL-2+ or Artistic-2.0, and BSD-3-clause",
            "(GPL-2.0-or-later OR Artistic-2.0) AND BSD-3-Clause",
            "SPDX id",
        ),
    ],
)
def test_spellings_people_write_map_through_the_alias_table_or_a_named_rule(raw, spdx, via):
    result = normalise(raw)
    assert (result.spdx, result.status) == (spdx, "normalised")
    assert any(via in step for step in result.via), result.via


@pytest.mark.parametrize("raw", ["GPL-2", "gpl-2", "GPL-3", "GPL-2 or MIT"])
def test_gpl_without_plus_stays_unrecognised_and_says_why(raw):
    result = normalise(raw)
    assert (result.spdx, result.status) == (None, "unrecognised")
    assert (
        "ambiguous" in result.note
        and '"version only"' in result.note
        and "or any later version" in result.note
    )


@pytest.mark.parametrize(
    ("raw", "note"),
    [
        ("GPL-2+ with Font exception", "'Font exception'"),
        ("MIT with GPL-2+", "not a licence exception"),
        ("Font-exception-2.0", "is a licence exception, not a licence"),
        ("CC BY 3.0 Germany", "no SPDX id, licence name or alias"),
        ("Attribution", "no SPDX id, licence name or alias"),
        ("CC-BY-4.0 AND (", "not a licence expression"),
    ],
)
def test_what_no_alias_or_rule_reads_is_never_guessed(raw, note):
    result = normalise(raw)
    assert (result.spdx, result.status) == (None, "unrecognised")
    assert note in result.note


def test_a_cc_licence_without_a_port_is_the_unported_one_only_when_the_text_names_no_port():
    unported = normalise("CC BY-SA 3.0")
    assert unported.spdx == "CC-BY-SA-3.0" and "no port named: unported" in unported.via[0]
    assert normalise("CC BY-SA 3.0 DE").spdx == "CC-BY-SA-3.0-DE"
    assert "unported" not in normalise("CC BY-SA 3.0 DE").via[0]
    assert normalise("CC BY 3.0 Germany").spdx is None
    # 4.0 has no ports: nothing to say.
    assert "unported" not in normalise("CC BY 4.0").via[0]


def test_the_shipped_table_is_checked_and_a_bad_one_names_its_entry(tmp_path):
    table = licences.shipped_table()
    assert table.lookup("gpl-2+").spdx == "GPL-2.0-or-later"
    assert table.lookup("GPL-2").spdx is None and table.lookup("GPL-2").ambiguous
    bad = tmp_path / "licence_aliases.yaml"
    bad.write_text(
        "aliases:\n  - text: X\n    why: y\n  - text: GPL-2+\n    spdx: A\n    ambiguous: b\n    why: c\n"
    )
    with pytest.raises(
        BadInput, match=r"licence_aliases.yaml: aliases\[0\]: give exactly one of spdx and ambiguous"
    ):
        aliases.shipped_entries(bad)
    assert licences.target_expression("gpl-2.0-or-later or mit") == "GPL-2.0-or-later OR MIT"
    assert licences.target_expression("GPL-2+") is None  # an alias names SPDX ids, not other aliases


def _ingest(catalogue, tmp_path, rows: list[tuple[int, str]]) -> None:
    folder = tmp_path / "files"
    for seed, _ in rows:
        write(folder / f"{seed}.png", encode(picture(seed)))
    manifest = write_csv(tmp_path / "m.csv", [{"path": f"{seed}.png", "licence": raw} for seed, raw in rows])
    ingest(catalogue, "sam", folder, manifest=manifest, progress=False)


def _licences(catalogue) -> dict[int, tuple]:
    with catalogue.read() as session:
        return {
            lic.image_id: (lic.spdx, lic.status)
            for lic in session.exec(select(Licence).order_by(Licence.image_id))
        }


FONT = "GPL-2+ with Font exception"
FONT_SPDX = "GPL-2.0-or-later WITH Font-exception-2.0"


def test_a_site_alias_re_derives_the_automatic_licences_it_changes_in_one_audited_step(
    catalogue, team, tmp_path, cli
):
    _ingest(catalogue, tmp_path, [(1, FONT), (2, f"{FONT} or CC0"), (3, FONT), (4, "CC BY 4.0")])
    assert cli("licence", "set", "3", "--licence", "GPL-2.0-only", actor="lee").exit_code == 0
    assert _licences(catalogue)[1] == (None, "unrecognised")

    why = "the font exception text in debian/copyright is the FSF's, SPDX Font-exception-2.0"
    added = cli(
        "licence", "alias", "add", FONT, "--spdx", FONT_SPDX.lower(), "--why", why, "--json", actor="lee"
    )
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout) == {"text": FONT, "spdx": FONT_SPDX, "why": why, "rederived": [1]}
    after = _licences(catalogue)
    # Image 2's statement is an expression: an alias names a whole statement or a whole operand.
    assert after == {
        1: (FONT_SPDX, "normalised"),
        2: (None, "unrecognised"),
        3: ("GPL-2.0-only", "verified"),
        4: ("CC-BY-4.0", "normalised"),
    }
    with catalogue.read() as session:
        events = audit.log(session, limit=2)
        assert audit.verify(session).ok
    assert [(e["action"], e["target"], e["actor"]) for e in events] == [
        ("licence.derive", "image:1", "lee"),
        ("licence.alias.add", "licence_alias:gpl-2+ with font exception", "lee"),
    ]
    assert events[0]["before"]["status"] == "unrecognised" and events[0]["after"]["spdx"] == FONT_SPDX

    shown = json.loads(cli("images", "show", "1", "--json").stdout)
    assert shown["licence"]["via"] == [f"{FONT} -> {FONT_SPDX} (site alias {FONT!r})"]
    assert shown["sources"][0]["licence_via"] == shown["licence"]["via"]
    assert json.loads(cli("images", "show", "3", "--json").stdout)["licence"]["via"] == [
        "verified by legal (lee)"
    ]
    assert "via: GPL-2+ with Font exception -> GPL-2.0-or-later WITH" in cli("images", "show", "1").stdout

    listed = json.loads(cli("licence", "alias", "list", "--json").stdout)
    assert listed[-1] | {"added_at": None} == {
        "text": FONT,
        "spdx": FONT_SPDX,
        "ambiguous": None,
        "why": why,
        "origin": "site",
        "added_by": "lee",
        "added_at": None,
    }
    assert {"text": "GPL-2", "origin": "shipped"}.items() <= listed[
        [r["text"] for r in listed].index("GPL-2")
    ].items()

    # A new ingest reads the site alias too.
    _ingest(catalogue, tmp_path / "more", [(5, FONT)])
    assert _licences(catalogue)[5] == (FONT_SPDX, "normalised")

    removed = cli("licence", "alias", "remove", FONT.upper(), "--json", actor="lee")
    assert removed.exit_code == 0, removed.output
    assert json.loads(removed.stdout)["rederived"] == [1, 5]
    assert _licences(catalogue)[1] == (None, "unrecognised")
    with catalogue.read() as session:
        assert [e["action"] for e in audit.log(session, limit=3)] == [
            "licence.derive",
            "licence.derive",
            "licence.alias.remove",
        ]
        assert audit.verify(session).ok


@pytest.mark.parametrize(
    ("args", "actor", "code", "message"),
    [
        ([FONT, "--spdx", FONT_SPDX, "--why", "read it"], "sam", 1, "needs the legal role"),
        (
            [FONT, "--spdx", "GPL-2+", "--why", "read it"],
            "lee",
            2,
            "--spdx: 'GPL-2+' is not an SPDX licence expression",
        ),
        (
            [FONT, "--spdx", "Font-exception-2.0", "--why", "read it"],
            "lee",
            2,
            "is not an SPDX licence expression",
        ),
        ([FONT, "--spdx", FONT_SPDX, "--why", " "], "lee", 2, "--why: say why"),
        (
            ["GPL-2", "--spdx", "GPL-2.0-only", "--why", "ours"],
            "lee",
            2,
            "already a shipped alias (ambiguous",
        ),
        (["CC BY 4.0", "--spdx", "MIT", "--why", "no"], "lee", 2, "already recognised as CC-BY-4.0"),
    ],
)
def test_alias_add_refuses_and_changes_nothing(catalogue, team, tmp_path, cli, args, actor, code, message):
    _ingest(catalogue, tmp_path, [(1, FONT)])
    with catalogue.read() as session:
        head = audit.revision(session)
    result = cli("licence", "alias", "add", *args, actor=actor)
    assert result.exit_code == code
    assert message in result.stderr and "\n" not in result.stderr.strip()
    with catalogue.read() as session:
        assert audit.revision(session) == head
    assert json.loads(cli("licence", "alias", "list", "--json").stdout)[-1]["origin"] == "shipped"


def test_alias_remove_refuses_a_shipped_or_unknown_alias(catalogue, team, cli):
    shipped = cli("licence", "alias", "remove", "Expat", actor="lee")
    assert shipped.exit_code == 2 and "the shipped table" in shipped.stderr
    unknown = cli("licence", "alias", "remove", "nothing like it", actor="lee")
    assert unknown.exit_code == 2 and "not a site alias" in unknown.stderr


def test_licence_rederive_reads_every_automatic_licence_with_the_table_in_force(
    catalogue, team, tmp_path, cli
):
    _ingest(catalogue, tmp_path, [(1, "Expat"), (2, "GPL-2")])
    with catalogue.write() as session:
        # As a catalogue derived before the shipped table knew Expat.
        session.get(Licence, 1).spdx, session.get(Licence, 1).status = None, "unrecognised"
    result = cli("licence", "rederive", "--json", actor="lee")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"rederived": [1]}
    assert _licences(catalogue) == {1: ("MIT", "normalised"), 2: (None, "unrecognised")}
    assert cli("licence", "rederive", actor="sam").exit_code == 1
