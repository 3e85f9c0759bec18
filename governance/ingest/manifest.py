"""Ingest manifests: CSV with a header row, or JSON Lines, one row per file.

Columns (DESIGN.md): `path` (required, relative to the ingest root), `source_url`, `collection`,
`creator`, `title`, `licence`, `attribution`, `evidence`, `opt_out`, and our `licence_expires`
(YYYY-MM-DD). Unknown columns are kept as raw metadata. A manifest that cannot be read as a whole
(no `path` column, not UTF-8, a line that is not a JSON object) is refused before anything is
written; a row with a bad value becomes a rejection with its line number, so nothing is dropped.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from stylevault.governance.errors import BadInput

COLUMNS = (
    "path",
    "source_url",
    "collection",
    "creator",
    "title",
    "licence",
    "attribution",
    "evidence",
    "opt_out",
    "licence_expires",
)
ALIASES = {"license": "licence", "license_expires": "licence_expires", "url": "source_url"}
# A manifest row is a flat record; a value nested deeper than this is refused, well before Python's
# recursion limit, which reading, storing and auditing the row would otherwise meet.
MAX_DEPTH = 32
TRUE = {"true", "yes", "1", "y"}
FALSE = {"false", "no", "0", "n", ""}


@dataclass
class ManifestRow:
    line: int
    values: dict[str, str | None]  # the known columns, stripped; empty -> None
    extra: dict[str, object] = field(default_factory=dict)  # unknown columns, as found
    raw: dict[str, object] = field(default_factory=dict)  # the whole row, as found

    @property
    def path(self) -> str | None:
        return self.values.get("path")


def parse_bool(value: str | None, field_name: str) -> bool:
    text = (value or "").strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"{field_name}: expected true or false, got {value!r}")


def unstorable(row: ManifestRow) -> str | None:
    """What in a row no catalogue can store, naming the column; None when all of it can be stored.

    Text columns hold no NUL (PostgreSQL refuses it) and no lone surrogate (JSON's "\\udcxx" escapes;
    UTF-8 has no bytes for them), except that `path` may spell a non-UTF-8 file name the way Python
    does. JSON columns hold no NaN or Infinity, which Python's json reads but JSON does not have.
    """
    for name, value in row.values.items():
        if value is None:
            continue
        if "\x00" in value:
            return f"{name}: holds a NUL character"
        try:
            value.encode("utf-8", "surrogateescape" if name == "path" else "strict")
        except UnicodeEncodeError:
            return f"{name}: not valid Unicode (a lone surrogate)"
    pending: list = [row.raw]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending += value.values()
        elif isinstance(value, list):
            pending += value
        elif isinstance(value, float) and not math.isfinite(value):
            return f"a value is {value}, which JSON cannot hold"
    return None


def _depth(value: object) -> int:
    """How deep lists and objects nest in a JSON value (a scalar is 0), without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth + 1)
            if deepest > MAX_DEPTH:
                break
            pending += [(item, depth + 1) for item in (value.values() if isinstance(value, dict) else value)]
    return deepest


def _row(line: int, raw: dict[str, object]) -> ManifestRow:
    values: dict[str, str | None] = {}
    extra: dict[str, object] = {}
    for key, value in raw.items():
        name = ALIASES.get(str(key).strip().lower(), str(key).strip().lower())
        if name in COLUMNS:
            if isinstance(value, bool):
                value = "true" if value else "false"
            text = None if value is None else str(value).strip()
            values[name] = text or None
        else:
            extra[str(key)] = value
    return ManifestRow(line=line, values=values, extra=extra, raw=raw)


def _check_columns(manifest: Path, columns: list[str]) -> None:
    names = {ALIASES.get(c.strip().lower(), c.strip().lower()) for c in columns if c is not None}
    if "path" not in names:
        found = ", ".join(repr(c) for c in columns) or "none"
        raise BadInput(f"{manifest}: no 'path' column (columns found: {found})")


def _read_csv(manifest: Path, text: str) -> list[ManifestRow]:
    reader = csv.DictReader(text.splitlines(), restkey="_unnamed")
    if reader.fieldnames is None:
        raise BadInput(f"{manifest}: empty manifest (no header row)")
    _check_columns(manifest, list(reader.fieldnames))
    rows = []
    try:
        for record in reader:
            rows.append(_row(reader.line_num, {k: v for k, v in record.items()}))
    except csv.Error as exc:
        raise BadInput(f"{manifest}: line {reader.line_num}: {exc}") from exc
    return rows


def _read_jsonl(manifest: Path, text: str) -> list[ManifestRow]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadInput(f"{manifest}: line {number}: not valid JSON ({exc.msg})") from exc
        except ValueError as exc:  # Python reads no integer over sys.get_int_max_str_digits() digits
            raise BadInput(
                f"{manifest}: line {number}: a number longer than {sys.get_int_max_str_digits()} digits"
            ) from exc
        except RecursionError as exc:
            raise BadInput(f"{manifest}: line {number}: nested deeper than {MAX_DEPTH} levels") from exc
        if _depth(record) > MAX_DEPTH:
            raise BadInput(f"{manifest}: line {number}: nested deeper than {MAX_DEPTH} levels")
        if not isinstance(record, dict):
            raise BadInput(f"{manifest}: line {number}: expected a JSON object, got {type(record).__name__}")
        rows.append(_row(number, record))
    if not rows:
        raise BadInput(f"{manifest}: empty manifest (no rows)")
    _check_columns(manifest, sorted({key for row in rows for key in row.raw}))
    return rows


def read_manifest(manifest: Path) -> list[ManifestRow]:
    """All rows of a manifest, or BadInput naming the file (and line) that cannot be read."""
    try:
        data = manifest.read_bytes()
    except OSError as exc:
        raise BadInput(f"{manifest}: cannot read manifest ({exc.strerror})") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadInput(f"{manifest}: not UTF-8 (byte {exc.start}: {data[exc.start]:#04x})") from exc
    suffix = manifest.suffix.lower()
    if suffix == ".csv":
        return _read_csv(manifest, text)
    if suffix in (".jsonl", ".ndjson"):
        return _read_jsonl(manifest, text)
    raise BadInput(f"{manifest}: manifest must be .csv or .jsonl, not {suffix or 'no extension'}")
