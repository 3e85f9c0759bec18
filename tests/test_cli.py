"""The CLI contract: init, users, images list/show, report licences, --json, exit statuses."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.db import Catalogue
from tests.factories import encode, picture, write, write_csv, write_jsonl


@pytest.fixture
def stocked(catalogue, team, tmp_path, cli):
    """Six images: mixed licences, collections, an expiry, an opt-out; two approved, one rejected."""
    folder = tmp_path / "in"
    rows = [
        {"path": "a.png", "licence": "CC0", "collection": "pastel", "title": "Morning study"},
        {"path": "b.png", "licence": "CC BY 4.0", "collection": "pastel", "attribution": "B. Artist"},
        {"path": "c.png", "licence": "CC BY 4.0", "collection": "ink", "opt_out": "true"},
        {"path": "d.png", "licence": "free for personal use", "collection": "ink"},
        {
            "path": "e.png",
            "licence": "LicenseRef-ACME",
            "collection": "acme",
            "licence_expires": "2000-01-01",
        },
        {"path": "f.png", "collection": "acme"},
    ]
    for n, row in enumerate(rows):
        write(folder / row["path"], encode(picture(100 + n)))
    result = cli("ingest", folder, "--manifest", write_csv(tmp_path / "m.csv", rows), "--json", actor="sam")
    assert result.exit_code == 0, result.output
    assert cli("review", "approve", "1", "2", actor="lee").exit_code == 0
    assert cli("review", "reject", "4", "--reason", "personal use only", actor="lee").exit_code == 0
    return catalogue


def test_init_creates_upgrades_and_bootstraps_one_admin(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from stylevault.governance.cli import app

    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'new.db'}"
    monkeypatch.setenv("STYLEVAULT_DB", url)
    monkeypatch.delenv("STYLEVAULT_STORE", raising=False)
    first = runner.invoke(app, ["init", "--admin", "root"])
    assert first.exit_code == 0, first.output
    assert "(created)" in first.stdout and "admin 'root' created" in first.stdout
    assert (tmp_path / "new.store").is_dir()
    again = runner.invoke(app, ["init"])
    assert again.exit_code == 0 and "(created)" not in again.stdout
    second_admin = runner.invoke(app, ["init", "--admin", "other"])
    assert second_admin.exit_code == 1 and "already has actors" in second_admin.stderr
    added = runner.invoke(app, ["--as", "root", "users", "add", "sam", "--role", "steward"])
    assert added.exit_code == 0, added.output
    listed = json.loads(runner.invoke(app, ["users", "list", "--json"]).stdout)
    assert [(u["name"], u["roles"]) for u in listed] == [("root", ["admin"]), ("sam", ["steward"])]
    cat = Catalogue.open(url)
    with cat.read() as session:
        assert [e["action"] for e in audit.log(session)] == ["actor.add", "actor.add"]
        assert audit.verify(session).ok
    cat.dispose()


def test_commands_refuse_a_catalogue_that_does_not_exist(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from stylevault.governance.cli import app

    monkeypatch.setenv("STYLEVAULT_DB", f"sqlite:///{tmp_path / 'nothing.db'}")
    result = CliRunner().invoke(app, ["images", "list"])
    assert result.exit_code == 2
    assert "run `stylevault init` first" in result.stderr
    bad = CliRunner().invoke(app, ["--db", "mysql://x/y", "images", "list"])
    assert bad.exit_code == 2 and "unsupported database 'mysql'" in bad.stderr


def test_users_admin_only_and_bad_roles(catalogue, team, cli):
    assert cli("users", "add", "eve", "--role", "legal", actor="sam").exit_code == 1
    bad = cli("users", "add", "eve", "--role", "wizard", actor="admin")
    assert bad.exit_code == 2 and "unknown role 'wizard'" in bad.stderr
    dup = cli("users", "add", "lee", "--role", "legal", actor="admin")
    assert dup.exit_code == 2 and "already exists" in dup.stderr
    assert cli("users", "grant", "sam", "--role", "reviewer", actor="admin").exit_code == 0
    assert cli("users", "ungrant", "sam", "--role", "steward", actor="admin").exit_code == 0
    users = {u["name"]: u for u in json.loads(cli("users", "list", "--json").stdout)}
    assert users["sam"]["roles"] == ["reviewer"]
    assert cli("users", "disable", "lee", actor="admin").exit_code == 0
    refused = cli("review", "approve", "1", actor="lee")
    assert refused.exit_code == 1 and "disabled" in refused.stderr


def test_images_list_filters_return_every_match_unless_limited(stocked, cli):
    def ids(*args):
        result = cli("images", "list", "--json", *args)
        assert result.exit_code == 0, result.output
        return [row["id"] for row in json.loads(result.stdout)]

    assert ids() == [1, 2, 3, 4, 5, 6]
    assert ids("--limit", "2") == [1, 2]
    assert ids("--state", "approved") == [1, 2]
    assert ids("--state", "pending") == [3, 5, 6]
    assert ids("--licence", "CC-BY-4.0") == [2, 3]
    assert ids("--flagged") == [4, 6]
    assert ids("--licence-status", "missing") == [6]
    assert ids("--collection", "ink") == [3, 4]
    assert ids("--expiring-within", "0") == [5]
    assert ids("--run", "1") == [1, 2, 3, 4, 5, 6]
    bad = cli("images", "list", "--state", "lost")
    assert bad.exit_code == 2
    text = cli("images", "list")
    assert text.exit_code == 0 and "6 images" in text.stdout


def test_images_list_shows_each_image_s_path_collection_and_title(stocked, cli):
    rows = json.loads(cli("images", "list", "--json").stdout)
    assert rows[0]["path"].endswith("/in/a.png")
    assert (rows[0]["collection"], rows[0]["title"], rows[0]["sources"]) == ("pastel", "Morning study", 1)
    assert rows[1]["path"].endswith("/in/b.png") and rows[1]["title"] is None
    lines = cli("images", "list").stdout.splitlines()
    assert lines[0].split()[-5:] == ["collection", "title", "path", "(first", "source)"]
    assert lines[1].split()[-3:-1] == ["Morning", "study"] and lines[1].endswith("/in/a.png")
    assert " pastel " in lines[1]
    assert cli("images", "list", "--raw", "free for personal use", "--json").stdout.count('"id"') == 1


def test_images_list_licence_takes_an_spdx_expression_in_any_case_and_refuses_anything_else(stocked, cli):
    def ids(value):
        result = cli("images", "list", "--json", "--licence", value)
        assert result.exit_code == 0, result.output
        return [row["id"] for row in json.loads(result.stdout)]

    assert ids("cc-by-4.0") == ids("CC-BY-4.0") == [2, 3]
    for value, reason in [
        ("GPL-2", "--licence: 'GPL-2' is not an SPDX expression ('GPL-2' is ambiguous"),
        ("CC BY 4.0", "it reads as CC-BY-4.0: give that"),
        ("free for personal use", "no SPDX id, licence name or alias"),
    ]:
        refused = cli("images", "list", "--licence", value)
        assert refused.exit_code == 2 and reason in refused.stderr, refused.output


def test_images_show_has_sources_licence_rights_and_history(stocked, cli):
    result = cli("images", "show", "2", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["state"] == "approved" and shown["state_by"] == "lee" and shown["ingested_by"] == "sam"
    assert shown["licence"]["spdx"] == "CC-BY-4.0" and shown["licence"]["attribution"] == "B. Artist"
    assert shown["sources"][0]["collection"] == "pastel"
    assert shown["sources"][0]["metadata"]["manifest"]["licence"] == "CC BY 4.0"
    assert [e["action"] for e in shown["history"]] == ["review.approve", "image.ingest"]
    text = cli("images", "show", shown["sha256"][:16])
    assert text.exit_code == 0 and "CC-BY-4.0" in text.stdout
    short = cli("images", "show", shown["sha256"][:8])
    assert short.exit_code == 2 and "at least 12 hex digits" in short.stderr


def test_report_licences_in_three_formats(stocked, cli):
    # Legal verifies image 3's licence: the report tells it from image 2's automatic reading.
    assert cli("licence", "set", "3", "--licence", "CC-BY-4.0", actor="lee").exit_code == 0
    data = json.loads(cli("report", "licences", "--format", "json").stdout)
    by = {entry["licence"]: entry for entry in data["by_licence"]}
    assert by["CC-BY-4.0"]["approved"] == 1 and by["CC-BY-4.0"]["pending"] == 1
    assert (by["CC-BY-4.0"]["normalised"], by["CC-BY-4.0"]["verified"]) == (1, 1)
    assert (by["(unrecognised)"]["normalised"], by["(unrecognised)"]["verified"]) == (0, 0)
    mappings = {(m["spdx"], m["how"], m["raw"]): m for m in data["mappings"]}
    assert set(mappings) == {
        ("CC-BY-4.0", "normalised", "CC BY 4.0"),
        ("CC-BY-4.0", "verified", "CC BY 4.0"),
        ("CC0-1.0", "normalised", "CC0"),
        ("LicenseRef-ACME", "normalised", "LicenseRef-ACME"),
    }
    assert mappings[("CC-BY-4.0", "normalised", "CC BY 4.0")]["images"] == 1
    assert mappings[("CC-BY-4.0", "normalised", "CC BY 4.0")]["via"]
    assert mappings[("CC-BY-4.0", "verified", "CC BY 4.0")]["via"] == []
    assert by["CC0-1.0"]["approved"] == 1
    assert by["(unrecognised)"]["rejected"] == 1 and by["(missing)"]["pending"] == 1
    assert data["images"] == 6 and data["opted_out"] == 1
    assert sorted((f["raw"] or "", f["status"]) for f in data["flagged"]) == [
        ("", "missing"),
        ("free for personal use", "unrecognised"),
    ]
    assert data["expiring_total"] == 1 and data["expiring"][0]["expired"] is True

    md = cli("report", "licences").stdout
    assert "| CC-BY-4.0 | 1 | 1 | 0 | 0 | 1 | 1 | 2 |" in md
    assert "| CC-BY-4.0 | verified by legal | CC BY 4.0 | 1 |" in md
    assert "EXPIRED" in md and "free for personal use" in md

    rows = list(csv.DictReader(io.StringIO(cli("report", "licences", "--format", "csv").stdout)))
    cc_by = [
        (r["state"], r["images"])
        for r in rows
        if r["section"] == "by_licence" and r["licence"] == "CC-BY-4.0"
    ]
    assert sorted(cc_by) == [("approved", "1"), ("pending", "1")]
    assert {
        (r["status"], r["raw"]) for r in rows if r["section"] == "mapping" and r["licence"] == "CC-BY-4.0"
    } == {
        ("normalised", "CC BY 4.0"),
        ("verified", "CC BY 4.0"),
    }
    assert any(r["section"] == "expired" and r["licence"] == "LicenseRef-ACME" for r in rows)


def test_audit_log_cli_filters(stocked, cli):
    events = json.loads(cli("audit", "log", "--target", "2", "--json").stdout)
    assert [e["action"] for e in events] == ["review.approve", "image.ingest"]
    by_actor = json.loads(cli("audit", "log", "--actor", "lee", "--json").stdout)
    assert {e["action"] for e in by_actor} == {"review.approve", "review.reject"}
    verified = cli("audit", "verify", "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"] is True


def test_rejections_and_runs_are_listed(catalogue, team, tmp_path, cli):
    write(tmp_path / "in" / "good.png", encode(picture(1)))
    write(tmp_path / "in" / "bad.jpg", b"not a jpeg at all")
    summary = json.loads(cli("ingest", tmp_path / "in", "--json", actor="sam").stdout)
    assert (summary["catalogued"], summary["rejected"]) == (1, 1)
    rejected = json.loads(cli("images", "rejections", "--json").stdout)
    assert [(r["path"], r["reason"], r["run"]) for r in rejected] == [("bad.jpg", "not-an-image", 1)]
    assert json.loads(cli("images", "rejections", "--reason", "decode-error", "--json").stdout) == []
    runs = json.loads(cli("images", "runs", "--json").stdout)
    assert [(r["actor"], r["status"], r["offered"], r["catalogued"], r["rejected"]) for r in runs] == [
        ("sam", "completed", 2, 1, 1)
    ]


FORGED = "\x1b[2K\rlicence CC0-1.0 [verified]"


def lines_a_terminal_shows(text: str) -> list[str]:
    """Where a terminal starts a line: at a newline, a carriage return or a clear-line escape."""
    return [line.strip() for line in re.split(r"\r|\n|\x1b\[2K|\x0b|\x0c|\x85|\u2028|\u2029", text)]


def test_catalogue_text_cannot_drive_the_terminal(catalogue, team, tmp_path, cli):
    """EXIF Artist holding an escape sequence, a carriage return and a newline (and, from the manifest,
    a C1 CSI, a bidi override and a title-setting OSC) printed by `images show`, `images list`,
    tables, reports and errors: shown as escapes, kept as found in the catalogue."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x013B] = f"{FORGED}\nsecond line"
    (tmp_path / "in").mkdir()
    picture(7).save(tmp_path / "in" / "artist.jpg", "JPEG", exif=exif)
    title = "t\x9b31m\u202eevil"
    rows = [
        {"path": "artist.jpg", "licence": f"CC0{FORGED}\n", "collection": "c\x1b]0;t\x07", "title": title}
    ]
    ingested = cli("ingest", tmp_path / "in", "--manifest", write_csv(tmp_path / "m.csv", rows), actor="sam")
    assert ingested.exit_code == 0, ingested.output

    shown = cli("images", "show", "1")
    assert shown.exit_code == 0, shown.output
    outputs = [
        shown.stdout,
        cli("images", "list").stdout,
        cli("images", "list", "--json").stdout,
        cli("images", "show", "1", "--json").stdout,
        cli("audit", "log").stdout,
        cli("report", "licences").stdout,
        cli("report", "licences", "--format", "csv").stdout,
        cli("styleset", "create", f"set{FORGED}", actor="sam").stderr,  # an error naming the value
    ]
    hidden = f"[/x][black on black]hidden{FORGED}"
    assert cli("styleset", "create", "marked", "--description", hidden, actor="sam").exit_code == 0
    listed = cli("styleset", "list")
    assert listed.exit_code == 0 and "[/x][black on black]hidden\\x1b[2K\\rlicence" in listed.stdout
    outputs.append(listed.stdout)  # a table cell is text, never rich markup
    for text in outputs:
        assert not re.search("[\x1b\x07\x9b\u202e]", text), text
        assert "licence CC0-1.0 [verified]" not in lines_a_terminal_shows(text), text
    creator = next(line for line in shown.stdout.splitlines() if "creator:" in line)
    assert creator == "    creator: \\x1b[2K\\rlicence CC0-1.0 [verified]\\nsecond line"
    assert "    title: t\\x9b31m\\u202eevil" in shown.stdout.splitlines()
    [source] = json.loads(outputs[3])["sources"]
    assert (source["creator"], source["title"]) == (f"{FORGED}\nsecond line", title)  # kept as found


FORMULAS = [
    "=cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
]


def test_the_csv_report_neutralises_formulas(catalogue, team, tmp_path, cli):
    """OWASP CSV injection: a licence as found that a spreadsheet would run is written as text."""
    from stylevault.governance.legal.reports import spreadsheet_cell

    rows = []
    for n, licence in enumerate(FORMULAS):
        write(tmp_path / "in" / f"{n}.png", encode(picture(200 + n)))
        rows.append({"path": f"{n}.png", "licence": licence})
    assert (
        cli(
            "ingest", tmp_path / "in", "--manifest", write_jsonl(tmp_path / "m.jsonl", rows), actor="sam"
        ).exit_code
        == 0
    )
    report = cli("report", "licences", "--format", "csv").stdout
    flagged = sorted(r["licence"] for r in csv.DictReader(io.StringIO(report)) if r["section"] == "flagged")
    assert flagged == sorted("'" + formula for formula in FORMULAS)
    assert spreadsheet_cell("\tcmd") == "'\tcmd" and spreadsheet_cell("\rcmd") == "'\rcmd"
    assert spreadsheet_cell("CC0-1.0") == "CC0-1.0" and spreadsheet_cell(3) == 3
    data = json.loads(cli("report", "licences", "--format", "json").stdout)
    assert sorted(f["raw"] for f in data["flagged"]) == sorted(FORMULAS)  # kept as found
