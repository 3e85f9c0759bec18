"""Reports for legal: which licences the catalogue holds, in which approval states, and what needs
attention (unrecognised or conflicting licences, expiring licences, opt-outs).

Each section is one GROUP BY (or one bounded SELECT) so the report stays fast at a million images.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue.models import APPROVAL_STATES, Image, Licence, Source
from stylevault.governance.errors import BadInput
from stylevault.governance.rules import licences

FLAGGED = ("missing", "unrecognised", "conflict")
SETTLED = ("normalised", "verified")  # how an SPDX id was reached: read automatically, or legal's
LIST_LIMIT = 100
MAPPING_LIMIT = 1000  # (SPDX id, statement as found) pairs listed: legal audits the mapping itself


def licence_report(session: Session, *, expiring_within: int = 90, today: date | None = None) -> dict:
    today = today or date.today()
    i, lic = Image.__table__, Licence.__table__
    joined = i.join(lic, lic.c.image_id == i.c.id)

    label = sa.case((lic.c.status.in_(FLAGGED), sa.literal("(") + lic.c.status + ")"), else_=lic.c.spdx)
    by_licence: dict[str, dict] = {}
    for licence, state, status, count in session.execute(
        sa.select(label, i.c.state, lic.c.status, sa.func.count())
        .select_from(joined)
        .group_by(label, i.c.state, lic.c.status)
    ):
        entry = by_licence.setdefault(
            licence,
            {"licence": licence, **{s: 0 for s in APPROVAL_STATES}, **{s: 0 for s in SETTLED}, "total": 0},
        )
        entry[state] += count
        if status in SETTLED:
            entry[status] += count
        entry["total"] += count

    flagged = [
        {"raw": raw, "status": status, "images": count}
        for raw, status, count in session.execute(
            sa.select(lic.c.raw, lic.c.status, sa.func.count())
            .where(lic.c.status.in_(FLAGGED))
            .group_by(lic.c.raw, lic.c.status)
            .order_by(sa.func.count().desc(), lic.c.raw)
            .limit(LIST_LIMIT)
        )
    ]

    horizon = today + timedelta(days=expiring_within)
    expiring_where = sa.and_(lic.c.expires_on.is_not(None), lic.c.expires_on <= horizon)
    expiring_total = session.execute(
        sa.select(sa.func.count()).select_from(lic).where(expiring_where)
    ).scalar()
    expiring = [
        {**dict(row._mapping), "expired": row.expires_on < today}
        for row in session.execute(
            sa.select(i.c.id, i.c.sha256, lic.c.spdx, i.c.state, lic.c.expires_on)
            .select_from(joined)
            .where(expiring_where)
            .order_by(lic.c.expires_on, i.c.id)
            .limit(LIST_LIMIT)
        )
    ]
    opted_out = session.execute(
        sa.select(sa.func.count()).select_from(lic).where(lic.c.opt_out.is_(True))
    ).scalar()
    rows = sorted(by_licence.values(), key=lambda e: (-e["total"], e["licence"] or ""))
    return {
        "generated_on": today,
        "images": sum(e["total"] for e in rows),
        "by_licence": rows,
        "mappings": _mappings(session),
        "flagged": flagged,
        "expiring_within_days": expiring_within,
        "expiring_total": expiring_total,
        "expiring": expiring,
        "opted_out": opted_out,
    }


def _mappings(session: Session) -> list[dict]:
    """Which statements, as found, produced each SPDX id: for an automatic licence the statement it
    was read from, with the alias or rule that read it (`via`); for legal's verified one, every
    statement its image's sources make (what legal decided over). One GROUP BY each."""
    lic, src = Licence.__table__, Source.__table__
    automatic = (
        sa.select(lic.c.spdx, lic.c.status, lic.c.raw, sa.func.count())
        .where(lic.c.status == "normalised")
        .group_by(lic.c.spdx, lic.c.status, lic.c.raw)
    )
    verified = (
        sa.select(lic.c.spdx, lic.c.status, src.c.licence_raw, sa.func.count(sa.distinct(lic.c.image_id)))
        .select_from(lic.join(src, src.c.image_id == lic.c.image_id))
        .where(lic.c.status == "verified")
        .group_by(lic.c.spdx, lic.c.status, src.c.licence_raw)
    )
    table = licences.alias_table(session)
    found = []
    for query in (automatic, verified):
        for spdx, status, raw, count in session.execute(query.limit(MAPPING_LIMIT)):
            via = licences.normalise(raw, table).via if status == "normalised" else ()
            found.append({"spdx": spdx, "how": status, "raw": raw, "images": count, "via": list(via)})
    return sorted(found, key=lambda m: (m["spdx"] or "", m["how"], -m["images"], m["raw"] or ""))


def render(report: dict, fmt: str) -> str:
    if fmt == "md":
        return _markdown(report)
    if fmt == "csv":
        return _csv(report)
    raise BadInput(f"--format: unknown format {fmt!r} (md, csv, json)")


def _markdown(report: dict) -> str:
    states = list(APPROVAL_STATES)
    out = [
        f"# Licence report ({report['generated_on']})",
        "",
        f"{report['images']} images; {report['opted_out']} opted out of use or data mining.",
        "",
        "## Licences by approval state",
        "",
        "| licence | " + " | ".join(states) + " | automatic | verified by legal | total |",
        "|---" * (len(states) + 4) + "|",
    ]
    for entry in report["by_licence"]:
        out.append(
            f"| {entry['licence']} | "
            + " | ".join(str(entry[s]) for s in (*states, *SETTLED))
            + f" | {entry['total']} |"
        )
    out += ["", "## How each licence was reached (statements as found)", ""]
    if report["mappings"]:
        out += ["| licence | how | licence as found | images | via |", "|---|---|---|---|---|"]
        out += [
            f"| {m['spdx']} | {'automatic' if m['how'] == 'normalised' else 'verified by legal'} | "
            f"{_cell(m['raw'])} | {m['images']} | {_cell('; '.join(m['via']) or '')} |"
            for m in report["mappings"]
        ]
    else:
        out.append("None.")
    out += ["", "## Licences that need legal (unrecognised, conflicting or missing)", ""]
    if report["flagged"]:
        out += ["| licence as found | status | images |", "|---|---|---|"]
        out += [f"| {_cell(f['raw'])} | {f['status']} | {f['images']} |" for f in report["flagged"]]
    else:
        out.append("None.")
    out += [
        "",
        f"## Expired or expiring within {report['expiring_within_days']} days ({report['expiring_total']})",
        "",
    ]
    if report["expiring"]:
        out += ["| image | sha256 | licence | state | expires | |", "|---|---|---|---|---|---|"]
        out += [
            f"| {e['id']} | {e['sha256'][:12]} | {e['spdx']} | {e['state']} | {e['expires_on']} | "
            f"{'EXPIRED' if e['expired'] else ''} |"
            for e in report["expiring"]
        ]
        if report["expiring_total"] > len(report["expiring"]):
            out.append(f"\n(first {len(report['expiring'])} of {report['expiring_total']})")
    else:
        out.append("None.")
    return "\n".join(out) + "\n"


def _cell(value) -> str:
    return "(none)" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


# What makes a spreadsheet read a cell as a formula (OWASP, "CSV Injection"): `=cmd|' /C calc'!A0`
# in a licence as found would run when legal opens the report.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_cell(value):
    """A CSV cell a spreadsheet shows as text: one that starts like a formula gets a leading `'`
    (OWASP's advice), which spreadsheets hide; numbers and other text are written as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _csv(report: dict) -> str:
    """One table with a `section` column, so a spreadsheet can filter it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def row(*cells) -> None:
        writer.writerow([spreadsheet_cell(value) for value in cells])

    row("section", "licence", "status", "state", "images", "image_id", "sha256", "expires_on", "raw", "via")
    for entry in report["by_licence"]:
        for state in APPROVAL_STATES:
            if entry[state]:
                row("by_licence", entry["licence"], "", state, entry[state], "", "", "", "", "")
        for status in SETTLED:
            if entry[status]:
                row("by_status", entry["licence"], status, "", entry[status], "", "", "", "", "")
    for m in report["mappings"]:
        row("mapping", m["spdx"], m["how"], "", m["images"], "", "", "", m["raw"] or "", "; ".join(m["via"]))
    for f in report["flagged"]:
        row("flagged", f["raw"] or "", f["status"], "", f["images"], "", "", "", f["raw"] or "", "")
    for e in report["expiring"]:
        section = "expired" if e["expired"] else "expiring"
        row(section, e["spdx"] or "", "", e["state"], 1, e["id"], e["sha256"], e["expires_on"], "", "")
    return buffer.getvalue()
