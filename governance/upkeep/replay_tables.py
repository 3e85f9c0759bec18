"""The tables the audit log describes, as they are now: one query a table, rows as plain dicts keyed
as the replay rules key them (stylevault.governance.upkeep.replay_rules), actor ids shown as names."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue.models import (
    Actor,
    ActorPassword,
    ActorRole,
    Image,
    IngestRun,
    Licence,
    LicenceAlias,
    Rejection,
    Source,
    StyleSet,
    StyleSetMember,
    StyleSetVersion,
    StyleSetVersionMember,
)
from stylevault.governance.catalogue.output_models import (
    GenerationOutput,
    GenerationRun,
    IndexBuild,
    IndexMember,
    OutputNeighbour,
    OutputReview,
    PolicyText,
)
from stylevault.governance.upkeep.replay_rules import LICENCE_FIELDS, RUN_COUNTS, SOURCE_FIELDS, Finding

STREAM = 50_000  # rows fetched at a time from the large tables
Rows = Iterable[tuple[Any, dict]]  # (key, row) pairs, keyed as the replay rules key them


def _plain(value: Any) -> Any:
    """A table value as an audit event holds it (a date as ISO text)."""
    if isinstance(value, date):
        return value.isoformat()
    return value


def read_tables(session: Session) -> Iterator[tuple[str, dict]]:
    """(the State attribute that holds what the log says of a table, the table's (key, row) pairs).

    The large tables are streamed, row by row, never held whole: the replay holds what the log says,
    and compares each row as it is read."""
    names = dict(session.execute(sa.select(Actor.id, Actor.name)).all())
    for attribute, read in READERS.items():
        yield attribute, read(session, names)


def _passwords(session: Session, names: dict[int, str]) -> Rows:
    p = ActorPassword.__table__
    return {
        names[r.actor_id]: {"session_generation": r.session_generation} for r in session.execute(sa.select(p))
    }.items()


def _runs(session: Session, names: dict[int, str]) -> Rows:
    columns = ("root", "manifest", "source", "default_licence", "status", *RUN_COUNTS)
    return _by_id(session, IngestRun.__table__, columns)


def _rejections(session: Session, names: dict[int, str]) -> Rows:
    return _by_id(session, Rejection.__table__, ("ingest_run_id", "path", "reason", "detail", "sha256"))


def _by_id(session: Session, table: sa.Table, columns: tuple[str, ...]) -> Rows:
    query = sa.select(table.c.id, *(table.c[name] for name in columns))
    for row_id, *values in _stream(session, query):
        yield row_id, dict(zip(columns, values, strict=True))


def _stream(session: Session, query: sa.Select):
    return session.execute(query.execution_options(yield_per=STREAM))


def _images(session: Session, names: dict[int, str]) -> Rows:
    i = Image.__table__
    query = sa.select(i.c.id, i.c.sha256, i.c.ingest_run_id, i.c.state, i.c.state_reason, i.c.state_by)
    for image_id, sha256, run, state, reason, state_by in _stream(session, query):
        yield (
            image_id,
            {
                "sha256": sha256,
                "ingest_run_id": run,
                "state": state,
                "state_reason": reason,
                "state_by": names.get(state_by),
            },
        )


def _licences(session: Session, names: dict[int, str]) -> Rows:
    lic = Licence.__table__
    query = sa.select(lic.c.image_id, lic.c.verified_by, *(lic.c[name] for name in LICENCE_FIELDS))
    for image_id, verified_by, *values in _stream(session, query):
        row = dict(zip(LICENCE_FIELDS, values, strict=True))
        row["expires_on"], row["verified_by"] = _plain(row["expires_on"]), names.get(verified_by)
        yield image_id, row


def _sources(session: Session, names: dict[int, str]) -> Rows:
    """Raw metadata is read as its JSON text and parsed only where a value is needed (the replay
    decodes it where an event recorded it; `truncated` where the text has one): most sources'
    metadata is never compared, and parsing it all would be most of the replay's time."""
    s = Source.__table__
    columns = [name for name in SOURCE_FIELDS if name not in ("truncated", "raw_metadata")]
    text = sa.cast(s.c.raw_metadata, sa.Text)
    query = sa.select(s.c.image_id, s.c.locator, s.c.path, text, *(s.c[name] for name in columns))
    for image_id, locator, path, metadata, *values in _stream(session, query):
        row = dict(zip(columns, values, strict=True))
        row["licence_expires"] = _plain(row["licence_expires"])
        row["truncated"] = json.loads(metadata).get("truncated") if '"truncated"' in metadata else None
        row["raw_metadata"] = metadata
        yield (image_id, locator, path), row


def _aliases(session: Session, names: dict[int, str]) -> Rows:
    a = LicenceAlias.__table__
    return {
        row.key: {"text": row.text, "spdx": row.spdx, "why": row.why} for row in session.execute(sa.select(a))
    }.items()


def _reviews(session: Session, names: dict[int, str]) -> Rows:
    columns = ("state", "reason", "override_reason", "flagged")
    r = OutputReview.__table__
    query = sa.select(r.c.output_id, *(r.c[name] for name in columns))
    for output_id, *values in _stream(session, query):
        yield output_id, dict(zip(columns, values, strict=True))


def _actors(session: Session, names: dict[int, str]) -> Rows:
    a, r = Actor.__table__, ActorRole.__table__
    found = {row.name: {"roles": [], "disabled": row.disabled} for row in session.execute(sa.select(a))}
    query = sa.select(a.c.name, r.c.role).join(a, a.c.id == r.c.actor_id).order_by(a.c.name, r.c.role)
    for name, role in session.execute(query):
        found[name]["roles"].append(role)
    return found.items()


def _stylesets(session: Session, names: dict[int, str]) -> Rows:
    s, m = StyleSet.__table__, StyleSetMember.__table__
    ids = {row.id: row.name for row in session.execute(sa.select(s.c.id, s.c.name))}
    found = {
        row.name: {
            "description": row.description,
            "owner": names.get(row.owner_id),
            "members": 0,
            "member_ids": set(),
        }
        for row in session.execute(sa.select(s))
    }
    for styleset_id, image_id in session.execute(sa.select(m.c.styleset_id, m.c.image_id)):
        entry = found[ids[styleset_id]]
        entry["members"] += 1
        entry["member_ids"].add(image_id)
    return found.items()


def _versions(session: Session, names: dict[int, str]) -> Rows:
    """Each version with its member rows counted and fingerprinted again, streamed in
    `stylesets.members_sha256` order (image id within a version)."""
    s, v, vm = StyleSet.__table__, StyleSetVersion.__table__, StyleSetVersionMember.__table__
    counts: dict[int, int] = {}
    digests: dict[int, Any] = {}
    ordered = sa.select(vm.c.version_id, vm.c.image_id, vm.c.sha256).order_by(vm.c.version_id, vm.c.image_id)
    for version_id, image_id, sha256 in _stream(session, ordered):
        if version_id not in digests:
            digests[version_id], counts[version_id] = hashlib.sha256(), 0
        digests[version_id].update(f"{image_id}:{sha256}\n".encode())
        counts[version_id] += 1
    empty = hashlib.sha256().hexdigest()
    query = sa.select(v, s.c.name.label("styleset")).join(s, s.c.id == v.c.styleset_id)
    return {
        f"{row.styleset}@{row.version}": {
            "members": row.members,
            "members_sha256": row.members_sha256,
            "note": row.note,
            "published_by": names.get(row.published_by),
            "member_rows": counts.get(row.id, 0),
            "member_rows_sha256": digests[row.id].hexdigest() if row.id in digests else empty,
        }
        for row in session.execute(query)
    }.items()


def _indexes(session: Session, names: dict[int, str]) -> Rows:
    b, m = IndexBuild.__table__, IndexMember.__table__
    s, v = StyleSet.__table__, StyleSetVersion.__table__
    counts = dict(session.execute(sa.select(m.c.build_id, sa.func.count()).group_by(m.c.build_id)).all())
    query = (
        sa.select(b, (s.c.name + "@" + sa.cast(v.c.version, sa.String)).label("styleset"))
        .join(v, v.c.id == b.c.styleset_version_id)
        .join(s, s.c.id == v.c.styleset_id)
    )
    return {
        row.index_id: {
            "path": row.path,
            "styleset": row.styleset,
            "policy": row.policy,
            "policy_sha256": row.policy_sha256,
            "encoder_id": row.encoder_id,
            "manifest_sha256": row.manifest_sha256,
            "members": row.members,
            "member_rows": counts.get(row.id, 0),
            "stale": row.stale,
            "stale_reason": row.stale_reason,
        }
        for row in session.execute(query)
    }.items()


def outputs_by_run(session: Session) -> dict[str, list[tuple[int, str]]]:
    o, r = GenerationOutput.__table__, GenerationRun.__table__
    found: dict[str, list] = {}
    query = sa.select(r.c.run_id, o.c.id, o.c.sha256).join(r, r.c.id == o.c.run_id).order_by(o.c.id)
    for run_id, output_id, sha256 in session.execute(query):
        found.setdefault(run_id, []).append((output_id, sha256))
    return found


def _generation_runs(session: Session, names: dict[int, str]) -> Rows:
    r, b = GenerationRun.__table__, IndexBuild.__table__
    o, n = GenerationOutput.__table__, OutputNeighbour.__table__
    outputs: dict[int, list] = {}
    for run, sha256 in session.execute(sa.select(o.c.run_id, o.c.sha256)):
        outputs.setdefault(run, []).append(sha256)
    neighbours: dict[int, set] = {}
    query = sa.select(o.c.run_id, n.c.image_id).join(o, o.c.id == n.c.output_id).distinct()
    for run, image_id in session.execute(query):
        neighbours.setdefault(run, set()).add(image_id)
    query = sa.select(r, b.c.index_id).join(b, b.c.id == r.c.index_build_id)
    return {
        row.run_id: {
            "index_id": row.index_id,
            "manifest_sha256": row.manifest_sha256,
            "model_id": row.model_id,
            "prompt": row.prompt,
            "outputs": sorted(outputs.get(row.id, [])),
            "neighbours": sorted(neighbours.get(row.id, set())),
        }
        for row in session.execute(query)
    }.items()


def policy_text_findings(session: Session) -> Iterator[Finding]:
    """A policy text is kept by the sha256 of its bytes: a text edited in place no longer has it."""
    for sha256, text in session.execute(sa.select(PolicyText.sha256, PolicyText.text)):
        actual = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if actual != sha256:
            yield Finding(
                "policy_text",
                sha256[:12],
                "text",
                sha256,
                actual,
                None,
                f"policy_text {sha256[:12]}: its text hashes to {actual[:12]}, not to the key it is kept by",
            )


READERS = {
    "actors": _actors,
    "passwords": _passwords,
    "runs": _runs,
    "rejections": _rejections,
    "images": _images,
    "licences": _licences,
    "sources": _sources,
    "aliases": _aliases,
    "stylesets": _stylesets,
    "versions": _versions,
    "indexes": _indexes,
    "generation_runs": _generation_runs,
    "reviews": _reviews,
}
