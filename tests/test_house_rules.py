"""The house rules a reader relies on (issue 15): no module over 500 lines, no function over 80, and
our own modules imported at the top of a module, never inside a function (a lazy import of our own
code is a cycle in hiding). Heavy third-party imports (torch, open_clip, usearch, diffusers) may stay
lazy for start-up time. The import layers themselves are import-linter's (`make lint`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
# Modules still allowed a function-local import of our own code (none: generation's modules import
# each other at the top, and only torch, diffusers and open_clip stay lazy where start-up needs it).
LAZY_OK: set[str] = set()


def modules() -> list[Path]:
    return sorted(
        path
        for folder in ("governance", "generation")
        for path in (ROOT / folder).rglob("*.py")
        if "demo_models" not in path.parts
    )


def over_the_limits() -> set[str]:
    found = set()
    for path in modules():
        name = path.relative_to(ROOT).as_posix()
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            found.add(name)
        for node in ast.walk(ast.parse(text)):
            function = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            if function and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES:
                found.add(f"{name}:{node.name}")
    return found


def test_no_module_over_500_lines_and_no_function_over_80():
    assert over_the_limits() == set(), "over the limits: split these"


def test_our_own_modules_are_imported_at_the_top():
    lazy = []
    for path in modules():
        name = path.relative_to(ROOT).as_posix()
        if name in LAZY_OK:
            continue
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                own = (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("stylevault")) or (
                    isinstance(node, ast.Import) and any(a.name.startswith("stylevault") for a in node.names)
                )
                if own:
                    lazy.append(f"{name}:{node.lineno}")
    assert lazy == []


def test_the_distribution_has_one_import_root():
    """Every package the wheel installs is under `stylevault` (no generic top-level names)."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert all(name.startswith("stylevault.") for name in config["packages"])
    on_disk = {
        "stylevault." + path.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for folder in ("governance", "generation", "migrations", "policies")
        for path in (ROOT / folder).rglob("__init__.py")
    }
    assert on_disk == set(config["packages"])
