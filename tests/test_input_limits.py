"""Inputs built to break the reader end in one line naming the file, exit 2, the catalogue as it was.

DESIGN.md rule 9. Each input here once ended in a Python traceback: a folder nested a thousand deep
(RecursionError in the walk), a manifest with an integer over Python's 4,300-digit limit or 200,000
nested brackets, a policy file with the same, and an encoder whose .bin is a pickle that runs code.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from governance.ingest import ingest
from tests.factories import write, write_jsonl
from tests.ingest_checks import assert_reconciled, has_image, png, rejections, totals


def _nest(root: Path, depth: int) -> Path:
    """A folder `depth` levels below root, made with relative opens: its path may pass PATH_MAX."""
    root.mkdir(parents=True)
    fd = os.open(root, os.O_RDONLY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
        target = os.open("deep.png", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
        os.write(target, png(1))
        os.close(target)
    finally:
        os.close(fd)
    return root


def test_a_folder_nested_a_thousand_deep_is_walked(catalogue, team, tmp_path):
    # The walk recursed once per folder and died in a RecursionError; it walks with a stack now.
    root = _nest(tmp_path / "in", 1000)
    write(root / "top.png", png(2))

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (2, 2, 0, 0))
    assert has_image(catalogue, png(1)) and has_image(catalogue, png(2))


def test_a_folder_nested_past_the_path_limit_is_a_rejection(catalogue, team, tmp_path):
    # Past PATH_MAX (4096 bytes on Linux) a folder cannot be listed by its path: it is rejected as
    # unreadable, with the reason, instead of lost or fatal.
    root = _nest(tmp_path / "in", 2100)
    write(root / "top.png", png(2))

    summary = ingest(catalogue, "sam", root, progress=False)

    assert_reconciled(catalogue, summary, (2, 1, 0, 1))
    (rejection,) = rejections(catalogue, summary.run_id).values()
    assert rejection.reason == "unreadable" and "name too long" in rejection.detail.lower()


def _huge_int_row() -> str:
    return '{"path": "a.png", "licence": "CC0", "size": ' + "9" * 5000 + "}\n"


def _deep_row() -> str:
    return '{"path": "a.png", "licence": "CC0", "x": ' + "[" * 200_000 + "]" * 200_000 + "}\n"


def _middling_row() -> str:  # within Python's recursion limit, past what a manifest row needs
    return '{"path": "a.png", "licence": "CC0", "x": ' + "[" * 500 + "]" * 500 + "}\n"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (_huge_int_row, "line 2: a number longer than 4300 digits"),
        (_deep_row, "line 2: nested deeper than 32 levels"),
        (_middling_row, "line 2: nested deeper than 32 levels"),
    ],
)
def test_a_manifest_python_cannot_read_is_refused_in_one_line(cli, catalogue, team, tmp_path, row, message):
    root = tmp_path / "in"
    write(root / "a.png", png(3))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"path": "a.png"}\n' + row(), encoding="utf-8")
    before = totals(catalogue)

    result = cli("ingest", root, "--manifest", manifest, actor="sam")

    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"stylevault: {manifest}: {message}"
    assert totals(catalogue) == before


def test_a_flat_manifest_row_with_a_long_number_is_still_read(catalogue, team, tmp_path):
    root = tmp_path / "in"
    write(root / "a.png", png(3))
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"path": "a.png", "serial": int("7" * 4000), "n": [[1]]}])

    summary = ingest(catalogue, "sam", root, manifest=manifest, progress=False)

    assert_reconciled(catalogue, summary, (1, 1, 0, 0))


def _policy(tmp_path: Path, name: str, replace: tuple[str, str]) -> Path:
    shipped = Path(__file__).resolve().parent.parent / "policies" / "commercial.yaml"
    text = shipped.read_text(encoding="utf-8").replace("name: commercial", f"name: {name}")
    assert replace[0] in text
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace(*replace), encoding="utf-8")
    return path


def test_a_policy_python_cannot_read_is_refused_in_one_line(cli, catalogue, tmp_path):
    huge = _policy(tmp_path, "huge", ("warn_within_days: 90", "warn_within_days: " + "9" * 5000))
    line = next(n for n, text in enumerate(huge.read_text().splitlines(), 1) if "warn_within_days" in text)
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: deep\nlicences: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")

    for path, message in [
        (huge, f"not valid YAML (line {line}, column 21: a number longer than 4300 digits)"),
        (deep, "not valid YAML (nested too deep to read)"),
    ]:
        result = cli("policy", "show", path)
        assert result.exit_code == 2, result.output
        assert result.stderr.strip() == f"stylevault: {path}: {message}"


class _WritesAFile:
    """Unpickling this runs open(target, 'w'): what a hostile weights file could do instead."""

    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_an_encoder_bin_that_is_a_hostile_pickle_is_refused_and_never_run(
    cli, published, encoder_dir, tmp_path
):
    evil = tmp_path / "evil-clip"
    evil.mkdir()
    shutil.copy(encoder_dir / "open_clip_config.json", evil)
    planted = tmp_path / "pwned.txt"
    with open(evil / "open_clip_pytorch_model.bin", "wb") as handle:
        pickle.dump({"state_dict": _WritesAFile(planted)}, handle)
    before = totals(published)

    result = cli(
        "index",
        "build",
        "--styleset",
        "looks@1",
        "--policy",
        "research",
        "--encoder",
        f"local-dir:{evil}",
        "--out",
        tmp_path / "idx",
        actor="sam",
    )

    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"refused {evil / 'open_clip_pytorch_model.bin'}: a pickle" in line, line
    assert not planted.exists()
    assert not (tmp_path / "idx").exists()
    assert totals(published) == before
    assert json.loads(cli("index", "list", "--json").stdout) == []
