"""Every core write checks its actor's role in its own transaction, whoever calls it (DESIGN.md rule 5).

WRITES lists each public function of the core (governance/ without the faces cli/, web/, demo/)
that writes to the catalogue, with the permission it needs. Each is called directly: by an actor
holding each role that grants the permission (it succeeds, and what it records is in that actor's
name), and by actors who lack it, one unknown and one disabled (each is refused, and nothing is
written). A scan of the source finds every public function that writes an audit event, itself or
through anything it calls, and fails when one is missing from the table, so a new write without a
role check cannot slip in.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from stylevault.governance.catalogue import actors
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import ROLES, AuditEvent
from stylevault.governance.catalogue.output_models import OutputReview
from stylevault.governance.curation import stylesets
from stylevault.governance.door import Request, TrainingOptions
from stylevault.governance.errors import Refused
from stylevault.governance.index import builds as index_builds
from stylevault.governance.ingest.batches import BatchWriter
from stylevault.governance.ingest.examine import examine
from stylevault.governance.ingest.offers import offers_from_folder
from stylevault.governance.ingest.run import ingest
from stylevault.governance.ingest.summary import Summary
from stylevault.governance.legal import alias_edits, review
from stylevault.governance.outputs import training
from stylevault.governance.rules.policy_files import load_policy
from stylevault.governance.upkeep import checkpoints, doctor
from stylevault.governance.views import images
from tests.factories import encode, picture, run_generate, write

ROOT = Path(__file__).resolve().parent.parent
GOVERNANCE = ROOT / "governance"
FACES = ("cli", "web", "demo")
PACKAGE = "stylevault.governance"


# ---------------------------------------------------------------- the worlds the writes run in


@dataclass
class World:
    catalogue: Catalogue
    tmp: Path
    encoder_dir: Path | None = None
    rdm_dir: Path | None = None
    index: Path | None = None
    outputs: list[int] = field(default_factory=list)

    @property
    def out(self) -> Path:
        """Where a write that makes files puts them; a refused one leaves it absent."""
        return self.tmp / "out"


def holder(role: str) -> str:
    return f"only-{role}"


@pytest.fixture
def team_world(catalogue, team, tmp_path):
    """The team, and one actor holding each role alone."""
    with catalogue.write() as session:
        for role in ROLES:
            actors.add(session, "admin", holder(role), [role])
    return World(catalogue, tmp_path)


@pytest.fixture
def pending_world(team_world):
    """Two images sam ingested, pending, their licences settled (CC0)."""
    folder = team_world.tmp / "pending"
    for n in range(2):
        write(folder / f"{n}.png", encode(picture(900 + n)))
    ingest(team_world.catalogue, "sam", folder, licence="CC0", progress=False)
    return team_world


@pytest.fixture
def published_world(published, team_world, encoder_dir):
    """`looks@1`, eight approved images (the `published` fixture)."""
    team_world.encoder_dir = encoder_dir
    return team_world


@pytest.fixture
def indexed_world(published_world, rdm_dir):
    """`published_world` with its commercial index, and a tiny model to generate with."""
    world = published_world
    world.index, world.rdm_dir = world.tmp / "idx", rdm_dir
    index_builds.build(
        world.catalogue, "sam", "looks", "commercial", f"local-dir:{world.encoder_dir}", world.index
    )
    return world


class StubTrainer:
    """A trainer that writes one file: the role check is the core's, whatever the plugin does."""

    name = "stub"
    options = {"clip": TrainingOptions}

    def train(self, kind, data, out, options, *, progress) -> dict:
        out.mkdir()
        (out / "weights").write_bytes(b"weights")
        return {"model_id": "stub", "weights_sha256": "0" * 64, "path": str(out)}


@pytest.fixture
def trainable_world(indexed_world, monkeypatch):
    """`indexed_world` with a stub trainer installed."""
    monkeypatch.setattr(training, "load", lambda point, name=None: StubTrainer())
    return indexed_world


@pytest.fixture
def generated_world(published_world, rdm_dir, monkeypatch):
    """Two outputs gia generated, pending review, unflagged: the index is built under a test policy
    whose near-copy cosine (1.0) suits the tiny untrained encoder (as in test_outputs)."""
    world = published_world
    shipped = load_policy("commercial").path.read_text()
    policies = world.tmp / "policies"
    policies.mkdir()
    text = shipped.replace("name: commercial", "name: review").replace(
        "near_copy_cosine: 0.95", "near_copy_cosine: 1.0"
    )
    (policies / "review.yaml").write_text(text)
    monkeypatch.setenv("STYLEVAULT_POLICIES", str(policies))
    world.index, world.rdm_dir = world.tmp / "idx", rdm_dir
    index_builds.build(
        world.catalogue, "sam", "looks", "review", f"local-dir:{world.encoder_dir}", world.index
    )
    run_generate(world.catalogue, world.index, rdm_dir, world.tmp / "made", n=2)
    with world.catalogue.read() as session:
        world.outputs = sorted(session.scalars(sa.select(OutputReview.output_id)))
    return world


# ---------------------------------------------------------------- the table


def in_session(body: Callable) -> Callable:
    """A write that takes the caller's session, called in a write transaction of its own."""

    def call(world: World, function: Callable, actor: str):
        with world.catalogue.write() as session:
            return body(session, world, function, actor)

    return call


@dataclass(frozen=True)
class Write:
    key: str  # "room.module:function" under governance/, or "...:Class.method"
    permission: str
    world: str
    call: Callable[[World, Callable, str], object]
    prepare: Callable[[World], None] | None = None
    succeeded: Callable[[World, object], bool] | None = None
    records: bool = True  # whether a successful call always records an audit event
    left_alone: Callable[[World], bool] = lambda world: not world.out.exists()


def _alias_added(world: World) -> None:
    with world.catalogue.write() as session:
        alias_edits.add(session, "lee", "Harbour Licence 1", "LicenseRef-Harbour-1", "read on the site")


def _draft(*members: str) -> Callable[[World], None]:
    def prepare(world: World) -> None:
        with world.catalogue.write() as session:
            stylesets.create(session, "sam", "draft")
            stylesets.add(session, "sam", "draft", list(members))

    return prepare


def _new_files(world: World) -> None:
    write(world.tmp / "in" / "new.png", encode(picture(950)))


def _debris(world: World) -> None:
    (world.tmp / "debris" / f".idx.tmp-{'0' * 32}").mkdir(parents=True)


def _batch(world: World, write_batch: Callable, actor: str):
    batch = [
        (offer, examine(*offer.real, world.catalogue.store))
        for offer in offers_from_folder(world.tmp / "in", set())
    ]
    writer = BatchWriter(world.catalogue, 1, actor, source=None, licence="CC0", summary=Summary(1, "in"))
    return write_batch(writer, batch)


def _output(world: World) -> list[str]:
    return [str(world.outputs[0])]


WRITES = [
    Write(
        "catalogue.actors:add",
        "actors.manage",
        "team",
        in_session(lambda s, w, f, a: f(s, a, "newcomer", ["viewer"])),
    ),
    Write(
        "catalogue.actors:grant",
        "actors.manage",
        "team",
        in_session(lambda s, w, f, a: f(s, a, "val", ["reviewer"])),
    ),
    Write(
        "catalogue.actors:set_disabled",
        "actors.manage",
        "team",
        in_session(lambda s, w, f, a: f(s, a, "val", True)),
    ),
    Write(
        "legal.review:decide",
        "review",
        "pending",
        in_session(lambda s, w, f, a: f(s, a, "approve", ["1", "2"], None)),
        succeeded=lambda w, result: len(result.changed) == 2,
    ),
    Write(
        "legal.review:decide_matching",
        "review",
        "pending",
        in_session(lambda s, w, f, a: f(s, a, "approve", {"state": "pending"}, None)),
        succeeded=lambda w, result: len(result.changed) == 2 and not result.skipped,
    ),
    Write(
        "legal.licence_decisions:set_licence",
        "licence.set",
        "pending",
        in_session(
            lambda s, w, f, a: f(s, w.catalogue.store, a, images.resolve(s, "1"), licence="CC-BY-4.0")
        ),
    ),
    Write(
        "legal.licence_decisions:record_verified",
        "licence.set",
        "pending",
        in_session(lambda s, w, f, a: f(s, w.catalogue.store, a, [1, 2], licence="CC0-1.0")),
    ),
    Write(
        "legal.alias_edits:add",
        "licence.alias",
        "team",
        in_session(
            lambda s, w, f, a: f(s, a, "Harbour Licence 1", "LicenseRef-Harbour-1", "read on the site")
        ),
    ),
    Write(
        "legal.alias_edits:remove",
        "licence.alias",
        "team",
        in_session(lambda s, w, f, a: f(s, a, "Harbour Licence 1")),
        prepare=_alias_added,
    ),
    # With the aliases unchanged nothing is derived differently, so there may be nothing to record.
    Write(
        "legal.alias_edits:rederive_all",
        "licence.alias",
        "pending",
        in_session(lambda s, w, f, a: f(s, a)),
        records=False,
    ),
    Write(
        "curation.stylesets:create", "styleset.edit", "team", in_session(lambda s, w, f, a: f(s, a, "fresh"))
    ),
    Write(
        "curation.stylesets:add",
        "styleset.edit",
        "pending",
        in_session(lambda s, w, f, a: f(s, a, "draft", ["2"])),
        prepare=_draft("1"),
    ),
    Write(
        "curation.stylesets:remove",
        "styleset.edit",
        "pending",
        in_session(lambda s, w, f, a: f(s, a, "draft", ["1"])),
        prepare=_draft("1", "2"),
    ),
    Write(
        "curation.stylesets:publish",
        "styleset.edit",
        "pending",
        in_session(lambda s, w, f, a: f(s, a, "draft")),
        prepare=_draft("1", "2"),
    ),
    Write(
        "ingest.run:ingest",
        "ingest",
        "team",
        lambda w, f, a: f(w.catalogue, a, w.tmp / "in", licence="CC0", progress=False),
        prepare=_new_files,
        succeeded=lambda w, summary: summary.catalogued == 1,
    ),
    Write("ingest.batches:BatchWriter.write", "ingest", "pending", _batch, prepare=_new_files),
    Write(
        "index.builds:build",
        "index.build",
        "published",
        lambda w, f, a: f(
            w.catalogue, a, "looks", "commercial", f"local-dir:{w.encoder_dir}", w.out, on=date(2026, 11, 27)
        ),
    ),
    Write(
        "outputs.runs:generate",
        "generate",
        "indexed",
        lambda w, f, a: f(
            w.catalogue, a, Request(prompt="a harbour", steps=2, k=3), w.index, w.rdm_dir, w.out, device="cpu"
        ),
    ),
    Write(
        "outputs.training:train",
        "generate",
        "trainable",
        lambda w, f, a: f(w.catalogue, a, "clip", w.index, w.out),
    ),
    Write(
        "outputs.signoff:rescore",
        "output.score",
        "generated",
        lambda w, f, a: f(w.catalogue, a, _output(w), device="cpu"),
    ),
    Write(
        "outputs.signoff:release",
        "output.release",
        "generated",
        in_session(lambda s, w, f, a: f(s, a, _output(w))),
        succeeded=lambda w, result: result["refused"] == [],
    ),
    Write(
        "outputs.signoff:withhold",
        "output.release",
        "generated",
        in_session(lambda s, w, f, a: f(s, a, _output(w), "not for this client")),
    ),
    Write(
        "upkeep.doctor:repair",
        "doctor.repair",
        "team",
        lambda w, f, a: f(w.catalogue, a, doctor.examine(w.catalogue, [w.tmp / "debris"])),
        prepare=_debris,
        left_alone=lambda w: (w.tmp / "debris" / f".idx.tmp-{'0' * 32}").is_dir(),
    ),
    Write(
        "upkeep.checkpoints:checkpoint",
        "audit.checkpoint",
        "team",
        lambda w, f, a: f(w.catalogue, a, w.tmp / "audit.key", w.out),
        prepare=lambda w: checkpoints.keygen(w.tmp / "audit.key"),
    ),
    # The desk's own write (passwords belong to the desk), held to the same rule.
    Write(
        "web.passwords:set_password",
        "actors.manage",
        "team",
        in_session(lambda s, w, f, a: f(s, a, "val", "a long passphrase")),
    ),
]

# Public functions that write only as part of a write that has checked its actor already: their
# callers are in WRITES (the scan counts calling one as writing), and no face calls them.
CONSEQUENCES = {
    "index.staleness:mark_stale": "marks an index stale for the write that un-cleared a member",
    "standing.rejudge:rejudge": "re-judges indexes and released outputs for a write that changed an image",
    "legal.alias_edits:rederive": "derives licences again for an alias change or rederive_all",
    "outputs.signoff:record_scores": "stores the scores generate or rescore computed",
    "outputs.signoff:reopen": "reopens the released outputs rejudge found no longer cleared",
}
# Public functions that record what anyone reading finds, in nobody's name but their own: verifying
# an index marks it stale when a member's licence has expired since (a fact, not a decision).
SYSTEM = {"index.verification:verify": "an index found stale on verification is recorded as stale"}


def target(key: str) -> Callable:
    module, _, qualname = key.partition(":")
    found = importlib.import_module(f"{PACKAGE}.{module}")
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def chain_length(catalogue: Catalogue) -> int:
    with catalogue.read() as session:
        return session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))


def events_since(catalogue: Catalogue, seq: int) -> list[AuditEvent]:
    with catalogue.read() as session:
        return list(session.scalars(sa.select(AuditEvent).where(AuditEvent.id > seq).order_by(AuditEvent.id)))


def granting(permission: str) -> list[str]:
    return sorted(actors.PERMISSIONS[permission])


SUCCESSES = [pytest.param(w, role, id=f"{w.key}-{role}") for w in WRITES for role in granting(w.permission)]


# ---------------------------------------------------------------- the role check of each write


@pytest.mark.parametrize("entry, role", SUCCESSES)
def test_each_role_that_grants_the_permission_may_write(entry: Write, role: str, request):
    world = request.getfixturevalue(f"{entry.world}_world")
    if entry.prepare:
        entry.prepare(world)
    before = chain_length(world.catalogue)
    result = entry.call(world, target(entry.key), holder(role))
    if entry.succeeded:
        assert entry.succeeded(world, result)
    recorded = events_since(world.catalogue, before)
    if entry.records:
        assert recorded, f"{entry.key} recorded nothing"
    assert {event.actor for event in recorded} <= {holder(role)}


@pytest.mark.parametrize("entry", [pytest.param(w, id=w.key) for w in WRITES])
def test_an_actor_without_the_permission_is_refused_and_nothing_is_written(entry: Write, request):
    world = request.getfixturevalue(f"{entry.world}_world")
    if entry.prepare:
        entry.prepare(world)
    with world.catalogue.write() as session:
        actors.add(session, "admin", "gone", granting(entry.permission))
        actors.set_disabled(session, "admin", "gone", True)
    lacking = [role for role in ROLES if role not in actors.PERMISSIONS[entry.permission]]
    assert lacking, f"{entry.permission}: every role grants it"
    refusals = [(holder(role), f"may not {entry.permission}") for role in lacking]
    refusals += [("nobody", "unknown actor 'nobody'"), ("gone", "actor 'gone' is disabled")]
    before = chain_length(world.catalogue)
    for actor, message in refusals:
        with pytest.raises(Refused, match=re.escape(message)):
            entry.call(world, target(entry.key), actor)
        assert chain_length(world.catalogue) == before, f"{entry.key} by {actor}: the refusal wrote"
        assert entry.left_alone(world), f"{entry.key} by {actor}: the refusal left files behind"


# Writes that work outside the catalogue (embedding, generating, scoring, moving folders, reading
# files) between an early check, which fails fast, and the transaction that records their work.
LONG_WRITES = [
    "index.builds:build",
    "ingest.run:ingest",
    "outputs.runs:generate",
    "outputs.signoff:rescore",
    "outputs.training:train",
    "upkeep.doctor:repair",
]


@pytest.mark.parametrize("key", LONG_WRITES)
def test_a_role_revoked_while_a_long_write_works_refuses_its_record(key: str, request, monkeypatch):
    """The role is revoked just after the early check passes (before the next write transaction
    opens): the transaction that records the work checks again, and refuses."""
    entry = next(w for w in WRITES if w.key == key)
    world = request.getfixturevalue(f"{entry.world}_world")
    if entry.prepare:
        entry.prepare(world)
    role = granting(entry.permission)[0]
    actor, checked, revoked = holder(role), [], []
    require, write = actors.require, Catalogue.write

    def require_then_revoke(session, name, permission):
        found = require(session, name, permission)
        checked.append(name)
        return found

    def write_after_revoking(self):
        if checked and not revoked:
            with write(self) as session:
                actors.grant(session, "admin", actor, [role], revoke=True)
            revoked.append(chain_length(world.catalogue))
        return write(self)

    monkeypatch.setattr(actors, "require", require_then_revoke)
    monkeypatch.setattr(Catalogue, "write", write_after_revoking)
    with pytest.raises(Refused, match=re.escape(f"actor {actor!r} may not {entry.permission}")):
        entry.call(world, target(key), actor)
    assert revoked, f"{key}: no write transaction after the first check"
    # What a refused ingest still records is that its run failed; nothing else is in the actor's name.
    after = {e.action for e in events_since(world.catalogue, revoked[0]) if e.actor == actor}
    assert after <= {"ingest.fail"}


# ---------------------------------------------------------------- four-eyes and the first admin


def test_four_eyes_the_approver_is_not_the_ingester(team_world):
    """kim holds the legal role, so only four-eyes (in review, not in the role check) stops kim
    approving what kim ingested; by filter the image is skipped with that reason."""
    world = team_world
    write(world.tmp / "kim" / "0.png", encode(picture(960)))
    ingest(world.catalogue, "kim", world.tmp / "kim", licence="CC0", progress=False)
    before = chain_length(world.catalogue)
    with (
        pytest.raises(Refused, match=re.escape("image 1: kim ingested it and cannot approve it (four-eyes)")),
        world.catalogue.write() as session,
    ):
        review.decide(session, "kim", "approve", ["1"], None)
    with world.catalogue.write() as session:
        skipped = review.decide_matching(session, "kim", "approve", {"state": "pending"}, None).skipped
    assert [(s["id"], s["why"]) for s in skipped] == [(1, "four-eyes")]
    assert chain_length(world.catalogue) == before
    with world.catalogue.write() as session:
        assert review.decide(session, "lee", "approve", ["1"], None).changed


def test_four_eyes_counts_every_source_of_an_image_not_only_the_first(team_world):
    """sam ingests an image first and kim adds a source of the same file: kim still ingested it."""
    world = team_world
    data = encode(picture(961))
    write(world.tmp / "sam" / "0.png", data)
    write(world.tmp / "kim" / "copy.png", data)
    ingest(world.catalogue, "sam", world.tmp / "sam", licence="CC0", progress=False)
    ingest(world.catalogue, "kim", world.tmp / "kim", licence="CC0", progress=False)
    with pytest.raises(Refused, match="four-eyes"), world.catalogue.write() as session:
        review.decide(session, "kim", "approve", ["1"], None)


def test_only_an_empty_catalogue_bootstraps_an_actor_without_an_admin(catalogue):
    with catalogue.write() as session:
        actors.add(session, None, "first", ["admin"])
    before = chain_length(catalogue)
    with pytest.raises(Refused, match="already has actors"), catalogue.write() as session:
        actors.add(session, None, "second", ["admin"])
    assert chain_length(catalogue) == before


# ---------------------------------------------------------------- the table is complete


def _module_name(path: Path) -> str:
    parts = path.relative_to(GOVERNANCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


class _Calls(ast.NodeVisitor):
    """The functions and methods of one module, and for each, the calls it makes resolved to
    "module:qualname" (modules relative to stylevault.governance) where the names allow it."""

    def __init__(self, module: str, tree: ast.Module, modules: set[str]):
        self.module, self.modules = module, modules
        self.aliases: dict[str, str] = {}  # local name -> module
        self.names: dict[str, str] = {}  # local name -> "module:name"
        self.calls: dict[str, set[str]] = {}
        self.local = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        }
        for node in tree.body:
            self._imports(node)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.calls[node.name] = self._called(node, None)
            elif isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                        self.calls[f"{node.name}.{item.name}"] = self._called(item, node.name)

    def _own(self, dotted: str | None) -> str | None:
        if dotted and (dotted == PACKAGE or dotted.startswith(PACKAGE + ".")):
            return dotted[len(PACKAGE) + 1 :]
        return None

    def _imports(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (own := self._own(alias.name)) is not None and alias.asname:
                    self.aliases[alias.asname] = own
        elif isinstance(node, ast.ImportFrom) and (own := self._own(node.module)) is not None:
            for alias in node.names:
                local = alias.asname or alias.name
                inner = f"{own}.{alias.name}" if own else alias.name
                if inner in self.modules:
                    self.aliases[local] = inner
                else:
                    self.names[local] = f"{own}:{alias.name}"

    def _called(self, function: ast.AST, cls: str | None) -> set[str]:
        found = set()
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            callee = node.func
            if isinstance(callee, ast.Name):
                if callee.id in self.local:
                    found.add(f"{self.module}:{callee.id}")
                elif callee.id in self.names:
                    found.add(self.names[callee.id])
            elif isinstance(callee, ast.Attribute) and isinstance(callee.value, ast.Name):
                owner, attr = callee.value.id, callee.attr
                if owner in self.aliases:
                    found.add(f"{self.aliases[owner]}:{attr}")
                elif owner == "self" and cls:
                    found.add(f"{self.module}:{cls}.{attr}")
                elif owner in self.local:
                    found.add(f"{self.module}:{owner}.{attr}")
                elif owner in self.names:
                    found.add(f"{self.names[owner]}.{attr}")
        return found


def _scan(include_faces: bool = False) -> dict[str, set[str]]:
    paths = sorted(GOVERNANCE.rglob("*.py"))
    modules = {_module_name(path) for path in paths}
    calls: dict[str, set[str]] = {}
    for path in paths:
        module = _module_name(path)
        if module.split(".")[0] in FACES and not include_faces:
            continue
        scanned = _Calls(module, ast.parse(path.read_text(encoding="utf-8")), modules)
        calls.update({f"{module}:{name}": called for name, called in scanned.calls.items()})
    return calls


def _public(key: str) -> bool:
    module, _, qualname = key.partition(":")
    return not any(part.startswith("_") for part in (*module.split("."), *qualname.split(".")))


def core_writers() -> set[str]:
    """Every public core function that writes an audit event, itself or through what it calls (a
    SYSTEM record excepted: calling `verify` to read an index is not a write in the caller's name)."""
    calls = _scan()
    writers = {"catalogue.audit:record"}
    while True:
        more = {
            key for key, called in calls.items() if key not in writers and called & (writers - set(SYSTEM))
        }
        if not more:
            return {key for key in writers if _public(key)} - {"catalogue.audit:record"}
        writers |= more


def test_every_core_write_is_in_the_table():
    listed = {w.key for w in WRITES if w.key.split(".")[0] not in FACES}
    found = core_writers()
    assert found - listed - set(CONSEQUENCES) - set(SYSTEM) == set(), "core writes missing from WRITES"
    assert (listed | set(CONSEQUENCES) | set(SYSTEM)) - found == set(), "listed, but not found writing"
    assert len({w.key for w in WRITES}) == len(WRITES)


def test_no_face_calls_a_consequence_or_checks_a_role_itself():
    """The faces pass the actor's name; the one role check in a face guards the desk's own write."""
    calls = {key: called for key, called in _scan(include_faces=True).items() if key.split(".")[0] in FACES}
    by_faces = set().union(*calls.values())
    assert by_faces & set(CONSEQUENCES) == set()
    checking = sorted(key for key, called in calls.items() if "catalogue.actors:require" in called)
    assert checking == ["web.passwords:set_password"]
