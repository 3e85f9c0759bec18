"""Replaying the audit log against the tables it describes (DESIGN.md rule 11).

The chain proves the events are the ones written; the replay proves the tables are what those events
say. Each action has a rule that turns its event into the state it leaves (an image's approval, a
licence, a source, a style-set version and its members' fingerprint, an index's stale flag, an
output's review state, an actor's roles ...), and checks its `before` against what the log had left:
a row changed without an event shows up at the next event that touches it, or at the end, when each
table is read once (one query a table) and compared with what the log says, row by row.

An action without a rule is a finding, never skipped: a new kind of event needs a rule in
stylevault.governance.upkeep.replay_rules.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue.models import AuditEvent
from stylevault.governance.upkeep.replay_rules import RULES, Event, Expected, Finding, State, shown
from stylevault.governance.upkeep.replay_tables import outputs_by_run, policy_text_findings, read_tables


@dataclass
class Replay:
    events: int = 0
    rows: int = 0  # table rows compared
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "events": self.events,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "findings": [f.as_dict() for f in self.findings],
        }


def _events(session: Session) -> Iterator[Event]:
    e = AuditEvent.__table__
    query = sa.select(e.c.id, e.c.actor, e.c.action, e.c.target_type, e.c.target_id, e.c.before, e.c.after)
    loads = json.loads
    for seq, actor, action, target_type, target_id, before, after in session.execute(
        query.order_by(e.c.id)
    ).yield_per(10_000):
        before = None if before is None else loads(before)
        yield Event(
            seq, actor, action, target_type, target_id, before, None if after is None else loads(after)
        )


def replay(session: Session) -> Replay:
    """Replay every event, then compare each table with what the log says of it.

    Read in one snapshot (`Catalogue.read()`), or a write committed in between shows as a finding."""
    started = time.perf_counter()
    st = State(outputs_by_run(session))
    result = Replay()
    for ev in _events(session):
        result.events += 1
        apply = RULES.get(ev.action)
        if apply is None:
            st.event_problem(ev, f"unknown action {ev.action!r}: no replay rule says what it changes")
            continue
        try:
            apply(st, ev)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            st.event_problem(ev, f"{ev.action} event the replay cannot read ({type(exc).__name__}: {exc})")
    for attribute, found in read_tables(session):
        result.rows += _compare(st, getattr(st, attribute), found)
    st.findings.extend(policy_text_findings(session))
    result.findings = st.findings
    result.seconds = time.perf_counter() - started
    return result


def _compare(st: State, expected: Expected, found: Iterable[tuple]) -> int:
    """Compare each row as it is read with what the log says of it; returns the rows compared. The
    log's rows are taken as they are met: those left at the end are rows the table no longer has."""
    table, rows = expected.table, 0
    for key, row in found:
        rows += 1
        recorded = expected.rows.pop(key, None)
        where = f"{table} {expected.describe(key)}"
        if recorded is None:
            seq = expected.gone.get(key)
            why = f"removed by event {seq} but still there" if seq else "no event records this row"
            st.find(expected, key, None, None, "present", seq, f"{where}: {why}")
            continue
        for name, value in recorded.items():
            actual = row.get(name)
            if name in expected.decode and actual is not None:
                actual = expected.decode[name](actual)
            if actual == value:
                continue
            if isinstance(value, set):
                extra, missing = sorted(actual - value)[:5], sorted(value - actual)[:5]
                detail = f"members {extra} not added by any event, {missing} removed without one"
                both = (sorted(value), sorted(actual))
            else:
                detail = f"{name} is {shown(actual)} but the log says {shown(value)}"
                both = (value, actual)
            seq = expected.seq.get(key)
            st.find(expected, key, name, *both, seq, f"{where}: {detail} (event {seq})")
    for key in expected.rows:
        seq = expected.seq.get(key)
        st.find(
            expected,
            key,
            None,
            "present",
            None,
            seq,
            f"{table} {expected.describe(key)}: recorded by event {seq}, but the table has no such row",
        )
    return rows
