"""Where policies are found: the shipped ones (the package `stylevault.policies`), then
STYLEVAULT_POLICIES's folders, or a file named by its path; loading one and listing them all."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from stylevault.governance.errors import BadInput
from stylevault.governance.rules.policy import NAME, Policy


def _shipped_dir() -> Path:
    """The policies shipped with stylevault: the package `stylevault.policies`."""
    return Path(str(resources.files("stylevault.policies")))


def _search_dirs() -> list[tuple[str, Path]]:
    """Where a policy name is looked up, in order, each with how a message names it."""
    found = []
    env = os.environ.get("STYLEVAULT_POLICIES", "").strip()
    if env:
        found.append((f"$STYLEVAULT_POLICIES ({env})", Path(env)))
    found.append(("./policies", Path.cwd() / "policies"))
    found.append((f"the shipped policies ({_shipped_dir()})", _shipped_dir()))
    return found


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _policy_files() -> dict[str, Path]:
    """Every policy file a name can reach: the first directory holding a name wins."""
    files: dict[str, Path] = {}
    for _, folder in _search_dirs():
        if folder.is_dir():
            for path in sorted(folder.glob("*.yaml")):
                files.setdefault(path.stem, path)
    return files


def load_policy(name_or_path: str) -> Policy:
    """A policy by path (`x/y.yaml`) or by name, looked up in $STYLEVAULT_POLICIES, ./policies, then the
    policies shipped with stylevault."""
    text = name_or_path.strip()
    if text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text:
        path = Path(text)
        if not path.is_file():
            raise BadInput(f"{text}: no such policy file")
        return Policy.from_file(path, text)
    if not NAME.match(text):
        raise BadInput(f"policy {name_or_path!r}: not a policy name or a path to a .yaml file")
    for _, folder in _search_dirs():
        path = folder / f"{text}.yaml"
        if path.is_file():
            return Policy.from_file(path, _shown(path))
    looked = ", ".join(label for label, _ in _search_dirs())
    available = ", ".join(sorted(_policy_files())) or "none"
    raise BadInput(f"unknown policy {text!r}: looked in {looked}; available: {available}")


def list_policies() -> list[Policy]:
    """Every policy reachable by name, by name; a broken file is an error, not a gap in the list."""
    return [Policy.from_file(path, _shown(path)) for _, path in sorted(_policy_files().items())]
