"""How the CLI prints: JSON (streamed where a list can be long), tables, fixed-width lines and
documents, every one through `safe`, so nothing read from the catalogue can drive the terminal.

Catalogue values come from outside (EXIF Artist, manifests, licence texts): an escape sequence in
one could clear a line, move the cursor or forge a line such as `licence CC0-1.0 [verified]`. So
`out.print` and `err.print` take one line at a time and show every control character in it as an
escape (`\\x1b`, `\\n`); tables escape each cell, JSON its characters that JSON itself leaves raw.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import date, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

# C0 and C1 controls and DEL, and the marks that reorder or break text without being seen: bidi
# embeddings, overrides and isolates ("Trojan Source", CVE-2021-42574), line and paragraph separators.
_UNSEEN = "\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
UNSAFE = re.compile(f"[\x00-\x1f{_UNSEEN}]")
UNSAFE_IN_JSON = re.compile(f"[{_UNSEEN}]")
NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
LINE_BREAK = re.compile("(\r?\n)")


def _escape(found: re.Match) -> str:
    char = found.group()
    return NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def safe(text: object) -> str:
    """`text` as one line a terminal shows as it is: every control character written as an escape."""
    return UNSAFE.sub(_escape, str(text))


class Printer:
    """A console that prints lines of plain text, never markup, each made `safe`."""

    def __init__(self, console: Console):
        self.console = console

    def print(self, *lines: str) -> None:
        for line in lines:
            self.console.print(safe(line), markup=False, highlight=False)


_stdout = Console(soft_wrap=True)
if not _stdout.is_terminal:
    _stdout.width = 200  # piped output: do not truncate tables to a guessed 80 columns
out = Printer(_stdout)
err = Printer(Console(stderr=True, soft_wrap=True))


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _json(data, **options) -> str:
    """JSON escapes C0 controls in strings itself but leaves DEL, C1 and the bidi marks raw; they can
    occur only inside strings, where `\\uXXXX` is the same character."""
    text = json.dumps(data, default=_plain, ensure_ascii=False, **options)
    return UNSAFE_IN_JSON.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def print_json(data) -> None:
    sys.stdout.write(_json(data, indent=2) + "\n")


def print_document(text: str) -> None:
    """A rendered report (Markdown, CSV): its own line breaks stay, any other control is escaped."""
    for n, part in enumerate(LINE_BREAK.split(text)):
        sys.stdout.write(part if n % 2 else safe(part))


def print_table(rows: list[dict], columns: list[str], title: str | None = None) -> None:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=60)
    for row in rows:
        # Text, not str: rich would read a str cell as markup (`[/x]` would end the program).
        table.add_row(*(Text("" if row.get(c) is None else safe(row.get(c))) for c in columns))
    out.console.print(table)


IMAGE_LINE = (
    "{id:>8}  {sha256:16}  {format:5}  {size:>11}  {state:9}  "
    "{licence_status:12}  {expires:10}  {opt:3}  {licence:24}  {collection:16}  {title:24}  {path}"
)


def _cell(value, width: int) -> str:
    """A fixed-width cell: a longer value ends in an ellipsis (`images show` has it whole)."""
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def print_image_lines(rows) -> int:
    """Fixed-width lines, written as they stream in (a table would hold every row first)."""
    write = sys.stdout.write
    write(
        IMAGE_LINE.format(
            id="id",
            sha256="sha256",
            format="fmt",
            size="size",
            state="state",
            licence_status="licence",
            expires="expires",
            opt="opt",
            licence="SPDX / raw",
            collection="collection",
            title="title",
            path="path (first source)",
        )
        + "\n"
    )
    count = 0
    for row in rows:
        licence = row["spdx"] or (f"? {row['licence_raw']}" if row["licence_raw"] else "-")
        write(
            safe(
                IMAGE_LINE.format(
                    id=row["id"],
                    sha256=row["sha256"][:16],
                    format=row["format"],
                    size=f"{row['width']}x{row['height']}",
                    state=row["state"],
                    licence_status=row["licence_status"],
                    expires=str(row["expires_on"] or ""),
                    opt="yes" if row["opt_out"] else "",
                    licence=_cell(licence, 24),
                    collection=_cell(row["collection"], 16),
                    title=_cell(row["title"], 24),
                    path=(row["path"] or "") + (f" (+{row['sources'] - 1})" if row["sources"] > 1 else ""),
                )
            )
            + "\n"
        )
        count += 1
    return count


def print_json_array(rows) -> int:
    """A JSON array written element by element, so any number of rows streams."""
    write = sys.stdout.write
    count = 0
    for row in rows:
        write(("[\n" if count == 0 else ",\n") + _json(row))
        count += 1
    write("[]\n" if count == 0 else "\n]\n")
    return count
