"""Start-up cost (issue 19): a command imports only what it needs. `stylevault --help` lists every
command from cli.root's table without importing a command module; a read command imports its own
module and the catalogue, never the web desk, the index or the models. A cheap check of what gets
imported, not a timing (bench/cli_startup.py times it)."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys

import typer.main
from alembic.script import ScriptDirectory
from typer.core import TyperGroup
from typer.testing import CliRunner

from stylevault.governance.catalogue.db import alembic_config, migration_head
from stylevault.governance.cli import app, root
from stylevault.governance.cli.apps import app as top_commands
from stylevault.governance.cli.root import COMMANDS, load
from tests.factories import encode, picture, write

HEAVY = ("sqlalchemy", "sqlmodel", "fastapi", "numpy", "PIL", "torch")
NEVER_FOR_A_READ = ("fastapi", "torch", "usearch", "open_clip", "diffusers")

PROBE = """
import json, sys
sys.argv = ["stylevault", *json.loads(sys.argv[1])]
from stylevault.governance.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
tops = sorted({name.split(".")[0] for name in sys.modules})
ours = sorted(name for name in sys.modules if name.startswith("stylevault."))
print("\\n" + json.dumps({"code": code, "top": tops, "ours": ours}))
"""


def imported_by(*argv: str, env: dict[str, str] | None = None, stdin: str = "") -> dict:
    """Run `stylevault ARGV` in a fresh interpreter; its exit code and the modules it imported."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.rstrip().rsplit("\n", 1)[-1])


def test_help_imports_no_command_module_and_no_heavy_library():
    found = imported_by("--help")
    assert found["code"] == 0
    assert [name for name in HEAVY if name in found["top"]] == []
    assert found["ours"] == [
        "stylevault.governance",
        "stylevault.governance.cli",
        "stylevault.governance.cli.root",
    ]


def test_a_read_command_imports_its_module_and_the_catalogue_only(catalogue, team, cli, tmp_path):
    folder = tmp_path / "in"
    write(folder / "a.png", encode(picture(1)))
    assert cli("ingest", folder, "--workers", "1", actor="sam").exit_code == 0
    env = {"STYLEVAULT_DB": catalogue.url, "STYLEVAULT_STORE": str(catalogue.store)}
    found = imported_by("images", "show", "1", env=env)
    assert found["code"] == 0
    assert [name for name in NEVER_FOR_A_READ if name in found["top"]] == []
    assert "alembic" not in found["top"]  # the migration head is read off the version files
    commands = {name for name in found["ours"] if name.endswith("_commands")}
    assert commands == {"stylevault.governance.cli.catalogue_commands"}


def test_the_table_lists_every_command_with_its_own_help():
    for name, entry in COMMANDS.items():
        command = load(name)
        assert command.name == name
        assert command.short_help is None
        first = inspect.cleandoc(command.help or "").split("\n\n")[0]
        assert first == entry.help, name
    # Every top-level command a module registers is in the table, and nothing else is.
    plain = {name for name, entry in COMMANDS.items() if entry.group is None}
    assert set(typer.main.get_group(top_commands).commands) == plain


def test_the_root_help_is_the_same_listed_or_loaded(monkeypatch):
    runner = CliRunner()
    listed = runner.invoke(app, ["--help"])
    # Without the stand-ins, the root's help loads every command and lists the real ones.
    monkeypatch.setattr(root._Root, "format_help", TyperGroup.format_help)
    loaded = runner.invoke(app, ["--help"])
    assert listed.exit_code == loaded.exit_code == 0
    assert listed.output == loaded.output
    assert "Reports for legal." in listed.output


def test_the_migration_head_read_off_the_files_is_alembics():
    assert migration_head() == ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def test_setting_a_password_loads_no_web_framework(catalogue, team):
    env = {
        "STYLEVAULT_DB": catalogue.url,
        "STYLEVAULT_STORE": str(catalogue.store),
        "STYLEVAULT_USER": "admin",
    }
    found = imported_by("users", "passwd", "lee", "--password-stdin", env=env, stdin="a long passphrase\n")
    assert found["code"] == 0
    assert [name for name in ("fastapi", "starlette", "uvicorn") if name in found["top"]] == []
    assert "stylevault.governance.web.passwords" in found["ours"]
