"""`stylevault doctor`: what a run killed at the wrong moment leaves behind, and tidying it up.

A build or generate run writes into a hidden `.OUT.tmp-ID` folder and renames it to OUT inside the
transaction that records it; killed between the rename and COMMIT, OUT holds an index or outputs
the catalogue never recorded, and a rerun into OUT is refused. Killed earlier, the temp folder
stays. A killed ingest leaves its run `running`. Each run holds a liveness lock while it works
(stylevault.governance.catalogue.liveness), so what a live run is writing is never taken for debris.

`examine` looks in the folders it is given and beside every recorded index and output folder;
`repair` moves an unrecorded index or output folder into the store's quarantine (kept, never
deleted), removes temp folders, and closes dead runs as failed, each an audit event.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit, liveness
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import IngestRun, utcnow
from stylevault.governance.catalogue.output_models import GenerationRun, IndexBuild
from stylevault.governance.errors import BadInput
from stylevault.governance.index.builds import FORMAT as INDEX_FORMAT
from stylevault.governance.index.builds import MANIFEST
from stylevault.governance.outputs.files import FORMAT as RUN_FORMAT

TEMP = re.compile(r"^\.(?P<out>.+)\.tmp-(?P<id>[0-9a-f]{32})$")


@dataclass
class Finding:
    kind: str  # orphan-index, orphan-outputs, temp, dead-run
    target: str  # a folder, or `ingest run N`
    detail: str
    repair: str  # what --repair does about it
    repaired: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def examine(catalogue: Catalogue, folders: list[Path]) -> list[Finding]:
    """Every orphaned folder, temp folder and dead run found; changes nothing."""
    for folder in folders:
        if not folder.is_dir():
            raise BadInput(f"{folder}: not a folder")
    with catalogue.read() as session:
        indexes = dict(session.execute(sa.select(IndexBuild.index_id, IndexBuild.path)).all())
        runs = dict(session.execute(sa.select(GenerationRun.run_id, GenerationRun.out_dir)).all())
        running = list(session.scalars(sa.select(IngestRun.id).where(IngestRun.status == "running")))
    places = {Path(p).parent for p in (*indexes.values(), *runs.values())}
    places |= {f.absolute() for f in folders}
    findings = []
    for place in sorted(p for p in places if p.is_dir()):
        for folder in sorted([place, *(p for p in place.iterdir() if p.is_dir())]):
            found = _look_at(catalogue, folder, indexes, runs)
            if found is not None and found.target not in {f.target for f in findings}:
                findings.append(found)
    for run_id in running:
        if not liveness.alive(catalogue, "ingest", run_id):
            findings.append(
                Finding(
                    "dead-run",
                    f"ingest run {run_id}",
                    "recorded as running, but no process holds it",
                    "record it as failed (a rerun of the same ingest completes it)",
                )
            )
    return findings


def _look_at(catalogue: Catalogue, folder: Path, indexes: dict, runs: dict) -> Finding | None:
    temp = TEMP.match(folder.name)
    if temp:
        ident = temp["id"]
        if liveness.alive(catalogue, "index", ident) or liveness.alive(catalogue, "generate", ident):
            return None
        return Finding("temp", str(folder), "a temporary folder no running build or run holds", "remove it")
    index_id = _index_id(folder)
    if index_id is not None and index_id not in indexes and not liveness.alive(catalogue, "index", index_id):
        return Finding(
            "orphan-index",
            str(folder),
            f"holds index {index_id}, which this catalogue never recorded",
            "move it into the quarantine",
        )
    run_id = _run_id(folder)
    if run_id is not None and run_id not in runs and not liveness.alive(catalogue, "generate", run_id):
        return Finding(
            "orphan-outputs",
            str(folder),
            f"holds the outputs of run {run_id}, which this catalogue never recorded",
            "move it into the quarantine",
        )
    return None


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _index_id(folder: Path) -> str | None:
    manifest = _read_json(folder / MANIFEST)
    if manifest and manifest.get("format") == INDEX_FORMAT and isinstance(manifest.get("index_id"), str):
        return manifest["index_id"]
    return None


def _run_id(folder: Path) -> str | None:
    for sidecar in sorted(folder.glob("*.json")):
        record = _read_json(sidecar)
        if record and record.get("format") == RUN_FORMAT and isinstance(record.get("run_id"), str):
            return record["run_id"]
    return None


def repair(catalogue: Catalogue, actor_name: str | None, findings: list[Finding]) -> list[Finding]:
    """Do what each finding's `repair` says; one audit event for the folders, one per run closed."""
    with catalogue.read() as session:  # before any folder moves; checked again where it is recorded
        actors.require(session, actor_name, "doctor.repair")
    quarantine = catalogue.store / "quarantine"
    moved, removed = [], []
    for finding in findings:
        folder = Path(finding.target)
        if finding.kind == "temp":
            shutil.rmtree(folder)
            removed.append(finding.target)
        elif finding.kind in ("orphan-index", "orphan-outputs"):
            quarantine.mkdir(parents=True, exist_ok=True)
            stamp = utcnow().strftime("%Y%m%dT%H%M%S")
            place = quarantine / f"{stamp}-{folder.name}"
            shutil.move(folder, place)
            moved.append({"from": finding.target, "to": str(place), "why": finding.detail})
        else:
            continue
        finding.repaired = True
    closing = [f for f in findings if f.kind == "dead-run"]
    with catalogue.write() as session:
        actor = actors.require(session, actor_name, "doctor.repair").name
        changes = [_close(session, finding) for finding in closing]
        if moved or removed:
            state = {"quarantined": moved, "removed": removed}
            changes.append(audit.Change("doctor.repair", "folders", "index-and-output", None, state))
        audit.record(session, actor, [c for c in changes if c is not None])
    return findings


def _close(session: Session, finding: Finding) -> audit.Change | None:
    run_id = int(finding.target.rsplit(" ", 1)[1])
    run = session.get(IngestRun, run_id, with_for_update=True)
    if run.status != "running":
        return None  # it finished on its own meanwhile
    run.status, run.finished_at = "failed", utcnow()
    session.add(run)
    finding.repaired = True
    counts = {"offered": run.offered, "catalogued": run.catalogued, "duplicates": run.duplicates}
    after = {**counts, "rejected": run.rejected, "status": "failed", "closed_by": "doctor"}
    return audit.Change("ingest.fail", "ingest_run", run.id, {"status": "running"}, after)
