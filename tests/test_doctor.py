"""`stylevault doctor`: an index folder and outputs left unrecorded by a failed COMMIT, temp folders,
and an ingest killed mid-run, found, repaired with audit events, and reruns told what to do."""

from __future__ import annotations

import multiprocessing
import time
from datetime import date

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import audit, liveness
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import IngestRun
from stylevault.governance.catalogue.output_models import IndexBuild
from stylevault.governance.errors import BadInput
from stylevault.governance.index import builds as index
from stylevault.governance.upkeep import doctor
from tests.factories import folder_of_images
from tests.factories import run_generate as generate

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def fail_commit():
    """fail_commit(when): the first COMMIT at which `when()` holds (the rename done) raises, as when
    the database goes away at that moment."""
    listeners = []

    def arm(when):
        def boom(session):
            if when():
                sa.event.remove(Session, "before_commit", boom)
                listeners.remove(boom)
                raise OSError("the connection dropped at COMMIT")

        sa.event.listen(Session, "before_commit", boom)
        listeners.append(boom)

    yield arm
    for boom in listeners:
        sa.event.remove(Session, "before_commit", boom)


def build(catalogue, encoder_dir, out):
    return index.build(
        catalogue, "sam", "looks", "commercial", f"local-dir:{encoder_dir}", out, on=date(2026, 11, 27)
    )


def test_an_index_left_by_a_failed_commit_is_found_quarantined_and_the_rerun_goes_through(
    published, encoder_dir, tmp_path, cli, fail_commit
):
    out = tmp_path / "idx"
    fail_commit(lambda: (out / "manifest.json").exists())
    with pytest.raises(OSError, match="dropped at COMMIT"):
        build(published, encoder_dir, out)
    with published.read() as session:
        assert session.scalars(sa.select(IndexBuild)).all() == []
    assert out.is_dir()  # the folder is there, the record is not
    with pytest.raises(BadInput, match=rf"already exists; .*`stylevault doctor {tmp_path}` finds it"):
        build(published, encoder_dir, out)
    debris = tmp_path / f".other.tmp-{'a' * 32}"
    debris.mkdir()
    live = tmp_path / f".busy.tmp-{'b' * 32}"
    live.mkdir()

    with liveness.held(published, "index", "b" * 32):  # a build still writing its temp folder
        found = doctor.examine(published, [tmp_path])
        assert [(f.kind, f.target) for f in found] == [("temp", str(debris)), ("orphan-index", str(out))]
        looked = cli("doctor", tmp_path)
        assert looked.exit_code == 1 and "--repair would move it into the quarantine" in looked.stdout
        refused = cli("doctor", tmp_path, "--repair", actor="val")
        assert refused.exit_code == 1 and "needs the steward role" in refused.stderr
        repaired = cli("doctor", tmp_path, "--repair", actor="sam")
    assert repaired.exit_code == 0, repaired.stdout + repaired.stderr
    assert not out.exists() and not debris.exists() and live.exists()
    [kept] = (published.store / "quarantine").iterdir()
    assert (kept / "manifest.json").is_file()
    with published.read() as session:
        [event] = audit.log(session, action="doctor.repair")
        assert audit.verify(session).ok
    assert event["actor"] == "sam" and event["after"]["removed"] == [str(debris)]
    assert event["after"]["quarantined"][0]["from"] == str(out)
    build(published, encoder_dir, out)  # the rerun into the same --out
    # The build that held its temp folder is gone now: that folder is debris too.
    assert [(f.kind, f.target) for f in doctor.examine(published, [tmp_path])] == [("temp", str(live))]


def test_outputs_left_by_a_failed_commit_are_found(indexed, rdm_dir, tmp_path, fail_commit):
    catalogue, folder = indexed
    out = tmp_path / "out"
    fail_commit(lambda: out.is_dir() and any(out.glob("*.png")))
    with pytest.raises(OSError, match="dropped at COMMIT"):
        generate(catalogue, folder, rdm_dir, out)
    with pytest.raises(BadInput, match="not an empty folder; .*`stylevault doctor"):
        generate(catalogue, folder, rdm_dir, out)
    [found] = doctor.examine(catalogue, [tmp_path])
    assert found.kind == "orphan-outputs" and found.target == str(out)
    doctor.repair(catalogue, "sam", [found])
    assert not out.exists() and found.repaired
    generate(catalogue, folder, rdm_dir, out)
    assert doctor.examine(catalogue, [tmp_path]) == []


def _ingest_and_hang(url: str, store: str, folder: str, ready) -> None:
    """An ingest that stops inside its first batch, as one does when it is killed there."""
    from stylevault.governance.ingest.batches import BatchWriter
    from stylevault.governance.ingest.run import ingest

    def hang(self, batch):
        ready.set()
        time.sleep(3600)

    BatchWriter.write = hang
    ingest(Catalogue.open(url, store), "sam", folder, progress=False)


def test_a_killed_ingest_is_closed_as_failed_and_a_running_one_is_left_alone(catalogue, team, tmp_path):
    folder_of_images(tmp_path / "in", 3)
    ready = SPAWN.Event()
    worker = SPAWN.Process(
        target=_ingest_and_hang, args=(catalogue.url, str(catalogue.store), str(tmp_path / "in"), ready)
    )
    worker.start()
    assert ready.wait(120)
    with catalogue.read() as session:
        [killed] = session.scalars(sa.select(IngestRun.id).where(IngestRun.status == "running")).all()
    assert liveness.alive(catalogue, "ingest", killed)
    assert doctor.examine(catalogue, []) == []  # still at work: not dead
    worker.kill()
    worker.join()
    # The server ends a killed client's session (and its lock) when it sees the socket close.
    for _ in range(10_000):
        if not liveness.alive(catalogue, "ingest", killed):
            break
        time.sleep(0.01)
    [found] = doctor.examine(catalogue, [])
    assert (found.kind, found.target) == ("dead-run", f"ingest run {killed}")
    doctor.repair(catalogue, "sam", [found])
    with catalogue.read() as session:
        run = session.get(IngestRun, killed)
        [event] = [e for e in audit.log(session, action="ingest.fail") if e["after"].get("closed_by")]
        assert audit.verify(session).ok
    assert run.status == "failed" and run.finished_at is not None
    assert event["target"] == f"ingest_run:{killed}" and event["actor"] == "sam"
    assert doctor.examine(catalogue, []) == []
