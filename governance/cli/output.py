"""How the CLI prints: JSON (streamed where a list can be long), tables, and fixed-width lines."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

out = Console(soft_wrap=True)
if not out.is_terminal:
    out.width = 200  # piped output: do not truncate tables to a guessed 80 columns
err = Console(stderr=True, soft_wrap=True)


def _plain(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def print_json(data) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=_plain, ensure_ascii=False) + "\n")


def print_table(rows: list[dict], columns: list[str], title: str | None = None) -> None:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=60)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)


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
            + "\n"
        )
        count += 1
    return count


def print_json_array(rows) -> int:
    """A JSON array written element by element, so any number of rows streams."""
    write = sys.stdout.write
    count = 0
    for row in rows:
        write(("[\n" if count == 0 else ",\n") + json.dumps(row, default=_plain, ensure_ascii=False))
        count += 1
    write("[]\n" if count == 0 else "\n]\n")
    return count
