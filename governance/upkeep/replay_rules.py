"""What each audit action leaves in the tables: one replay rule per action (DESIGN.md rule 11).

`State` is the catalogue as the log describes it, built event by event; each rule sets the rows its
event says it changed, and checks the event's `before` against what the log had left there, so a row
changed without an event shows at the next event that touches it. `RULES` maps every action stylevault
writes to its rule (tests/test_audit_anchor.py checks that none is missing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from stylevault.governance.catalogue import models
from stylevault.governance.catalogue.models import LICENCE_FIELDS
from stylevault.governance.curation.stylesets import members_sha256

SOURCE_FIELDS = (
    *models.SOURCE_FIELDS,
    "truncated",  # raw_metadata["truncated"]: which values ingest cut, and the sha256 of each whole one
    "raw_metadata",
)
RUN_COUNTS = ("offered", "catalogued", "duplicates", "rejected")
SHOWN = 200  # characters of a value a finding quotes


@dataclass
class Finding:
    """A table row that disagrees with the log: which table, row and field, what each says, and the
    event that last set it (None: no event ever did)."""

    table: str
    row: str
    field: str | None
    recorded: Any
    found: Any
    event: int | None
    problem: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Event:
    seq: int
    actor: str | None
    action: str
    target_type: str
    target_id: str
    before: dict | None
    after: dict | None


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


class Expected:
    """What the log says one table holds: key -> {field: value}, and the event that last set each row."""

    def __init__(self, table: str, describe: Callable[[Any], str] = str, decode: dict | None = None):
        self.table = table
        self.describe = describe
        # field -> how to read the table's stored value, for a field read as text and decoded only
        # when an event says what it should be
        self.decode = decode or {}
        self.rows: dict[Any, dict] = {}
        self.seq: dict[Any, int] = {}
        self.gone: dict[Any, int] = {}

    def set(self, key: Any, seq: int, fields: dict) -> None:
        self.rows.setdefault(key, {}).update(fields)
        self.seq[key] = seq
        self.gone.pop(key, None)

    def drop(self, key: Any, seq: int) -> None:
        self.rows.pop(key, None)
        self.seq.pop(key, None)
        self.gone[key] = seq


class State:
    """The catalogue as the log describes it, event by event."""

    def __init__(self, outputs_by_run: dict[str, list[tuple[int, str]]]):
        self.actors = Expected("actor")
        self.passwords = Expected("actor_password")
        self.runs = Expected("ingest_run")
        self.rejections = Expected("rejection")
        self.images = Expected("image")
        self.licences = Expected("licence", lambda key: f"of image {key}")
        self.sources = Expected(
            "source",
            lambda key: f"of image {key[0]} at {key[1]!r} (file {key[2]!r})",
            decode={"raw_metadata": json.loads},
        )
        self.aliases = Expected("licence_alias", repr)
        self.stylesets = Expected("styleset", repr)
        self.versions = Expected("styleset_version")
        self.indexes = Expected("index_build")
        self.generation_runs = Expected("generation_run")
        self.reviews = Expected("output_review")
        self.findings: list[Finding] = []
        # generation_output rows by run id: generate.run names its outputs by sha256, later output
        # events by their row id.
        self.outputs_by_run = outputs_by_run

    def find(self, expected: Expected, key, field_name, recorded, found, seq, problem) -> None:
        self.findings.append(
            Finding(expected.table, expected.describe(key), field_name, recorded, found, seq, problem)
        )

    def before(self, ev: Event, expected: Expected, key, fields: dict | None) -> None:
        """The state `ev` found must be the state the log had left: a difference is a change made
        without an event before `ev`."""
        known = expected.rows.get(key)
        if known is None or not fields:
            return
        for name, value in fields.items():
            if name in known and known[name] != value:
                where = f"{expected.table} {expected.describe(key)}"
                self.find(
                    expected,
                    key,
                    name,
                    known[name],
                    value,
                    ev.seq,
                    f"{where}: event {ev.seq} ({ev.action}) found {name} {shown(value)}, but the log had "
                    f"left {shown(known[name])} (event {expected.seq.get(key)}): changed without an event",
                )

    def event_problem(self, ev: Event, problem: str) -> None:
        self.findings.append(
            Finding(
                "audit_event", str(ev.seq), "action", ev.action, None, ev.seq, f"event {ev.seq}: {problem}"
            )
        )


# ---------------------------------------------------------------- the rules, one per action

Rule = Callable[[State, Event], None]
RULES: dict[str, Rule] = {}


def rule(*actions: str):
    def register(fn: Rule) -> Rule:
        for action in actions:
            RULES[action] = fn
        return fn

    return register


@rule("web.signin", "web.refused", "doctor.repair", "model.train", "audit.checkpoint")
def _no_table_state(st: State, ev: Event) -> None:
    """Recorded in the log only: a sign-in, a refused request, folders moved aside, a trained model
    (its folder carries its own provenance), a checkpoint taken."""


@rule("actor.add")
def _actor_add(st: State, ev: Event) -> None:
    st.actors.set(ev.target_id, ev.seq, {"roles": sorted(ev.after["roles"]), "disabled": False})


@rule("actor.grant_role", "actor.revoke_role")
def _actor_roles(st: State, ev: Event) -> None:
    st.before(ev, st.actors, ev.target_id, {"roles": sorted(ev.before["roles"])})
    st.actors.set(ev.target_id, ev.seq, {"roles": sorted(ev.after["roles"])})


@rule("actor.disable", "actor.enable")
def _actor_disabled(st: State, ev: Event) -> None:
    st.before(ev, st.actors, ev.target_id, {"disabled": ev.before["disabled"]})
    st.actors.set(ev.target_id, ev.seq, {"disabled": ev.after["disabled"]})
    if "session_generation" in ev.after:
        _generation(st, ev)


@rule("actor.password_set")
def _password_set(st: State, ev: Event) -> None:
    if ev.before.get("password_set") and ev.target_id not in st.passwords.rows:
        st.event_problem(ev, f"replaces the password of {ev.target_id!r}, which no event set")
    _generation(st, ev)


@rule("web.signout")
def _generation(st: State, ev: Event) -> None:
    """A desk session generation moved on (sign-out, a new password, disabling)."""
    st.before(ev, st.passwords, ev.target_id, {"session_generation": ev.before["session_generation"]})
    st.passwords.set(ev.target_id, ev.seq, {"session_generation": ev.after["session_generation"]})


@rule("ingest.start")
def _ingest_start(st: State, ev: Event) -> None:
    a = ev.after
    fields = {"root": a["root"], "manifest": a["manifest"], "source": a["source"]}
    st.runs.set(int(ev.target_id), ev.seq, {**fields, "default_licence": a["licence"], "status": "running"})


@rule("ingest.finish", "ingest.fail")
def _ingest_end(st: State, ev: Event) -> None:
    run = int(ev.target_id)
    if ev.before:
        st.before(ev, st.runs, run, ev.before)
    st.runs.set(run, ev.seq, {name: ev.after[name] for name in (*RUN_COUNTS, "status")})


@rule("ingest.reject")
def _ingest_reject(st: State, ev: Event) -> None:
    a = ev.after
    fields = {"ingest_run_id": a["run"], "path": a["path"], "reason": a["reason"], "detail": a["detail"]}
    st.rejections.set(int(ev.target_id), ev.seq, {**fields, "sha256": a["sha256"]})


def _source_fields(state: dict) -> dict:
    return {name: state[name] for name in SOURCE_FIELDS if name in state}


def _new_source(state: dict) -> dict:
    """A source as first recorded: a value ingest did not cut has no `truncated` entry."""
    return {**_source_fields(state), "truncated": state.get("truncated")}


@rule("image.ingest")
def _image_ingest(st: State, ev: Event) -> None:
    image_id, a = int(ev.target_id), ev.after
    st.images.set(
        image_id,
        ev.seq,
        {
            "sha256": a["sha256"],
            "ingest_run_id": a["run"],
            "state": "pending",
            "state_reason": None,
            "state_by": None,
        },
    )
    source = a["source"]
    st.sources.set((image_id, source["locator"], source["path"]), ev.seq, _new_source(source))
    st.licences.set(image_id, ev.seq, {**a["licence"], "verified_by": None})


@rule("source.add")
def _source_add(st: State, ev: Event) -> None:
    a = ev.after
    st.sources.set((int(ev.target_id), a["locator"], a["path"]), ev.seq, _new_source(a))


@rule("source.update")
def _source_update(st: State, ev: Event) -> None:
    key = (int(ev.target_id), ev.after["locator"], ev.after["path"])
    st.before(ev, st.sources, key, _source_fields(ev.before))
    fields = _source_fields(ev.after)
    if "raw_metadata" in fields:
        fields["truncated"] = fields["raw_metadata"].get("truncated")
    st.sources.set(key, ev.seq, fields)


@rule("licence.derive", "licence.set")
def _licence(st: State, ev: Event) -> None:
    image_id = int(ev.target_id)
    st.before(
        ev, st.licences, image_id, {name: ev.before[name] for name in LICENCE_FIELDS if name in ev.before}
    )
    fields = {name: ev.after[name] for name in LICENCE_FIELDS if name in ev.after}
    if ev.action == "licence.set":
        fields["verified_by"] = ev.actor
    st.licences.set(image_id, ev.seq, fields)


@rule("review.approve", "review.reject", "review.revoke")
def _review(st: State, ev: Event) -> None:
    image_id = int(ev.target_id)
    st.before(ev, st.images, image_id, {"state": ev.before["state"], "state_reason": ev.before["reason"]})
    fields = {"state": ev.after["state"], "state_reason": ev.after["reason"], "state_by": ev.actor}
    st.images.set(image_id, ev.seq, fields)


@rule("licence.alias.add")
def _alias_add(st: State, ev: Event) -> None:
    st.aliases.set(ev.target_id, ev.seq, dict(ev.after))


@rule("licence.alias.remove")
def _alias_remove(st: State, ev: Event) -> None:
    st.before(ev, st.aliases, ev.target_id, ev.before)
    st.aliases.drop(ev.target_id, ev.seq)


@rule("styleset.create")
def _styleset_create(st: State, ev: Event) -> None:
    a = ev.after
    fields = {"description": a["description"], "owner": a["owner"], "members": 0, "member_ids": set()}
    st.stylesets.set(ev.target_id, ev.seq, fields)


def _member_change(st: State, ev: Event, change: dict, sign: int) -> None:
    known = st.stylesets.rows.get(ev.target_id)
    if known is None:
        st.event_problem(ev, f"changes style set {ev.target_id!r}, which no event created")
        return
    st.stylesets.set(ev.target_id, ev.seq, {"members": known["members"] + sign * change["count"]})
    ids = known.get("member_ids")
    if ids is not None and "image_ids" in change:
        listed = set(change["image_ids"])
        known["member_ids"] = ids | listed if sign > 0 else ids - listed
    else:
        known.pop("member_ids", None)  # a large change records only a hash of its ids: from here, the count


@rule("styleset.add")
def _styleset_add(st: State, ev: Event) -> None:
    _member_change(st, ev, ev.after, +1)


@rule("styleset.remove")
def _styleset_remove(st: State, ev: Event) -> None:
    _member_change(st, ev, ev.before, -1)


@rule("styleset.publish")
def _styleset_publish(st: State, ev: Event) -> None:
    a = ev.after
    name = ev.target_id.rsplit("@", 1)[0]
    fields = {
        "members": a["members"],
        "members_sha256": a["members_sha256"],
        "note": a["note"],
        "published_by": ev.actor,
        "member_rows": a["members"],
        "member_rows_sha256": a["members_sha256"],
    }
    st.versions.set(ev.target_id, ev.seq, fields)
    ids = st.stylesets.rows.get(name, {}).get("member_ids")
    if ids is None:
        return
    # What was published is what the log had added: the frozen members' fingerprint from the log's
    # membership and the images' sha256s as ingested.
    shas = st.images.rows
    fingerprint = members_sha256((i, shas.get(i, {}).get("sha256")) for i in sorted(ids))
    if fingerprint != a["members_sha256"] or len(ids) != a["members"]:
        st.find(
            st.stylesets,
            name,
            "member_ids",
            len(ids),
            a["members"],
            ev.seq,
            f"styleset {name!r}: event {ev.seq} published {a['members']} members that are not the "
            f"{len(ids)} the log had added: members changed without an event",
        )


@rule("index.build")
def _index_build(st: State, ev: Event) -> None:
    a = ev.after
    fields = {
        "path": a["path"],
        "styleset": a["styleset"],
        "policy": a["policy"],
        "policy_sha256": a["policy_sha256"],
        "encoder_id": a["encoder"],
        "manifest_sha256": a["manifest_sha256"],
        "members": a["members"],
        "member_rows": a["members"],
        "stale": False,
        "stale_reason": None,
    }
    st.indexes.set(ev.target_id, ev.seq, fields)


@rule("index.stale")
def _index_stale(st: State, ev: Event) -> None:
    st.before(ev, st.indexes, ev.target_id, {"stale": ev.before["stale"]})
    st.indexes.set(ev.target_id, ev.seq, {"stale": True, "stale_reason": ev.after["reason"]})


@rule("generate.run")
def _generate_run(st: State, ev: Event) -> None:
    a = ev.after
    fields = {
        "index_id": a["index_id"],
        "manifest_sha256": a["manifest_sha256"],
        "model_id": a["model"],
        "prompt": a["prompt"],
        "outputs": sorted(a["outputs"]),
        "neighbours": sorted(a["neighbours"]),
    }
    st.generation_runs.set(ev.target_id, ev.seq, fields)
    flagged = set(a["flagged"])
    for output_id, sha256 in st.outputs_by_run.get(ev.target_id, []):
        if sha256 in a["outputs"]:
            st.reviews.set(
                output_id,
                ev.seq,
                {"state": "pending", "reason": None, "override_reason": None, "flagged": sha256 in flagged},
            )


@rule("output.score")
def _output_score(st: State, ev: Event) -> None:
    st.reviews.set(int(ev.target_id), ev.seq, {"flagged": ev.after["flagged"]})


@rule("output.release", "output.withhold", "output.reopen")
def _output_move(st: State, ev: Event) -> None:
    output_id = int(ev.target_id)
    st.before(ev, st.reviews, output_id, ev.before)
    fields = {
        "state": ev.after["state"],
        "reason": ev.after["reason"],
        "override_reason": ev.after.get("override"),
    }
    st.reviews.set(output_id, ev.seq, fields)
