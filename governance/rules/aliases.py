"""The licence alias table: spellings of a licence that map exactly to one SPDX expression.

Two parts: the shipped table (governance/licence_aliases.yaml, reviewed like code) and the site's
own aliases in the catalogue (table `licence_alias`, added by legal). An entry maps a text to an
SPDX expression, or marks it ambiguous with the reason it cannot be mapped. This module only reads
and matches the table; governance/licences.py applies it, governance/alias_edits.py changes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import sqlalchemy as sa
import yaml
from sqlmodel import Session, select

from stylevault.governance.catalogue.models import LicenceAlias
from stylevault.governance.errors import BadInput

SHIPPED = Path(__file__).with_name("licence_aliases.yaml")
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
ENTRY_KEYS = {"text", "spdx", "ambiguous", "why"}


def key(text: str) -> str:
    """What an alias is compared by: lower case, spaces squeezed, no final full stop."""
    return " ".join(text.split()).lower().rstrip(".").strip()


@dataclass(frozen=True)
class Alias:
    """One entry: `spdx` is what the text means, or None when `ambiguous` says why it cannot map."""

    text: str
    spdx: str | None
    why: str
    origin: str  # "shipped" or "site"
    ambiguous: str | None = None

    def describe(self) -> str:
        """How `images show` and the licence report name the entry that decided a mapping."""
        return f"{self.origin} alias {self.text!r}"


@dataclass(eq=False)
class AliasTable:
    """The aliases in force: shipped entries and the site's; normalisations are memoised per table."""

    entries: tuple[Alias, ...]
    by_key: dict[str, Alias] = field(init=False, repr=False)
    memo: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_key = {}
        for entry in self.entries:
            self.by_key.setdefault(key(entry.text), entry)

    def lookup(self, text: str) -> Alias | None:
        return self.by_key.get(key(text))

    def with_site(self, site: list[Alias]) -> AliasTable:
        return AliasTable((*self.entries, *site))


@cache
def shipped_entries(path: Path = SHIPPED) -> tuple[Alias, ...]:
    """The shipped table as written (targets are checked by licences.shipped_table)."""
    shown = path.name
    try:
        # libyaml's safe loader where PyYAML has it: every command that shows a licence reads this file.
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"{shown}: cannot read the licence alias table ({exc})") from None
    rows = document.get("aliases") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise BadInput(f"{shown}: expected a mapping with a list under 'aliases'")
    entries, seen = [], {}
    for n, row in enumerate(rows):
        where = f"{shown}: aliases[{n}]"
        if not isinstance(row, dict) or set(row) - ENTRY_KEYS or not row.get("text") or not row.get("why"):
            raise BadInput(
                f"{where}: an entry has text, why, and spdx or ambiguous (keys: {sorted(ENTRY_KEYS)})"
            )
        if bool(row.get("spdx")) == bool(row.get("ambiguous")):
            raise BadInput(f"{where}: give exactly one of spdx and ambiguous for {row['text']!r}")
        text = str(row["text"])
        if key(text) in seen:
            raise BadInput(f"{where}: {text!r} is already aliases[{seen[key(text)]}]")
        seen[key(text)] = n
        entries.append(Alias(text, row.get("spdx"), str(row["why"]), "shipped", row.get("ambiguous")))
    return tuple(entries)


def site_entries(session: Session) -> list[Alias]:
    """The site's aliases, oldest first. A catalogue below the revision that made the table has none
    (the migration tests ingest at the first revision, as ingest supports)."""
    if not sa.inspect(session.connection()).has_table(LicenceAlias.__tablename__):
        return []
    rows = session.exec(select(LicenceAlias).order_by(LicenceAlias.id)).all()
    return [Alias(row.text, row.spdx, row.why, "site") for row in rows]
