"""One path for what a change in an image's standing does (governance/standing): a licence change,
an opt-out found at ingest and a revocation mark stale the indexes that no longer clear the image and
reopen the released outputs that retrieved it; an expiry, found by verify, marks stale and reopens
nothing; and the path is set-based (its statements do not grow with the members)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import date
from urllib.parse import urlencode

import sqlalchemy as sa

from stylevault.governance.catalogue import actors
from stylevault.governance.catalogue.models import Image, Licence
from stylevault.governance.catalogue.output_models import (
    GenerationOutput,
    GenerationRun,
    IndexBuild,
    IndexMember,
    OutputNeighbour,
    OutputReview,
)
from stylevault.governance.curation import stylesets
from stylevault.governance.index import verification
from stylevault.governance.ingest.run import ingest
from stylevault.governance.legal import licence_decisions, review
from stylevault.governance.outputs import signoff as outputs
from stylevault.governance.rules import policy_texts
from stylevault.governance.rules.policy_files import load_policy
from stylevault.governance.standing.rejudge import rejudge
from tests.desk import client_for, give_passwords, post, sign_in
from tests.factories import encode, picture, write, write_csv
from tests.test_outputs import output_ids, state_of


def released_neighbour(catalogue) -> tuple[int, int, str]:
    """Release the first output: (its id, the first image it retrieved, its index's id)."""
    first, _ = output_ids(catalogue)
    with catalogue.write() as session:
        assert outputs.release(session, "rita", [str(first)])["refused"] == []
        neighbour = session.scalars(
            sa.select(OutputNeighbour.image_id)
            .where(OutputNeighbour.output_id == first)
            .order_by(OutputNeighbour.image_id)
        ).first()
        index_id = session.scalars(sa.select(IndexBuild.index_id)).one()
    return first, neighbour, index_id


def fresh(catalogue) -> bool:
    with catalogue.read() as session:
        return not session.scalars(sa.select(IndexBuild)).one().stale


def test_a_licence_the_policy_excludes_reopens_the_released_output_and_stales_the_index(reviewed, cli):
    catalogue, _, _ = reviewed
    first, neighbour, index_id = released_neighbour(catalogue)
    done = cli("licence", "set", str(neighbour), "--licence", "CC-BY-NC-4.0", "--json", actor="lee")
    assert done.exit_code == 0, done.output
    shown = json.loads(done.stdout)
    assert shown["spdx"] == "CC-BY-NC-4.0"
    assert (shown["stale_indexes"], shown["reopened_outputs"]) == ([index_id], [first])
    row = state_of(catalogue, first)
    assert row.state == "pending"
    why = f"licence of image {neighbour} set to CC-BY-NC-4.0: image {neighbour} is no longer cleared"
    assert row.reason.startswith(f"{why} under review")
    assert not fresh(catalogue)
    with catalogue.read() as session:
        assert [h["action"] for h in outputs.history(session, first)] == ["release", "reopen"]


def test_licence_set_says_which_outputs_went_back_to_pending(reviewed, cli):
    catalogue, _, _ = reviewed
    first, neighbour, index_id = released_neighbour(catalogue)
    done = cli("licence", "set", str(neighbour), "--licence", "CC-BY-NC-4.0", actor="lee")
    assert done.exit_code == 0, done.output
    assert f"index {index_id} is now stale" in done.output
    assert f"released outputs back to pending: {first}" in done.output


def test_a_licence_the_policy_still_clears_changes_neither(reviewed):
    catalogue, _, _ = reviewed
    first, neighbour, _ = released_neighbour(catalogue)
    with catalogue.write() as session:
        recorded = licence_decisions.record_verified(
            session, catalogue.store, "lee", [neighbour], licence="CC-BY-4.0"
        )
    assert (recorded.stale_indexes, recorded.reopened_outputs) == ([], [])
    assert state_of(catalogue, first).state == "released" and fresh(catalogue)


def test_an_opt_out_found_by_a_second_ingest_reopens_and_stales(reviewed, tmp_path):
    catalogue, _, _ = reviewed
    first, neighbour, _ = released_neighbour(catalogue)
    n = neighbour - 1  # the published fixture's file for image id n + 1
    write(tmp_path / "again" / "copy.png", (tmp_path / "in" / f"{n}.png").read_bytes())
    with catalogue.read() as session:
        raw = session.get(Licence, neighbour).raw
    rows = [{"path": "copy.png", "licence": raw, "opt_out": "true"}]
    ingest(
        catalogue, "sam", tmp_path / "again", manifest=write_csv(tmp_path / "again.csv", rows), progress=False
    )
    with catalogue.read() as session:
        assert session.get(Licence, neighbour).opt_out
        record = session.scalars(sa.select(IndexBuild)).one()
    assert record.stale and "licence re-derived by ingest run 2" in record.stale_reason
    assert f"image {neighbour}" in record.stale_reason and "opted out" in record.stale_reason.lower()
    row = state_of(catalogue, first)
    assert row.state == "pending" and row.reason.startswith("licence re-derived by ingest run 2")


def test_an_expiry_found_by_verify_stales_the_index_and_reopens_nothing(reviewed):
    """A licence's end stops new uses, not what was released while it was in force."""
    catalogue, folder, _ = reviewed
    first, _, _ = released_neighbour(catalogue)
    with catalogue.write() as session:
        with_neighbours = session.scalars(
            sa.select(OutputNeighbour.image_id).where(OutputNeighbour.output_id == first)
        ).all()
        # every image the output retrieved gets a licence that ends in 2030 (still cleared today)
        licence_decisions.record_verified(
            session, catalogue.store, "lee", list(with_neighbours), licence="CC0-1.0", expires="2030-06-30"
        )
    assert fresh(catalogue) and state_of(catalogue, first).state == "released"
    later = verification.verify(catalogue, folder, on=date(2030, 7, 1))
    assert not later.ok and "licence expired" in later.stale
    assert not fresh(catalogue)
    assert state_of(catalogue, first).state == "released"


def test_a_revocation_of_an_image_no_released_output_retrieved_reopens_nothing(reviewed):
    catalogue, _, _ = reviewed
    first, _, index_id = released_neighbour(catalogue)
    with catalogue.read() as session:
        retrieved = set(
            session.scalars(sa.select(OutputNeighbour.image_id).where(OutputNeighbour.output_id == first))
        )
        held = set(session.scalars(sa.select(IndexMember.image_id)))
    other = min(held - retrieved)
    with catalogue.write() as session:
        decision = review.decide(session, "lee", "revoke", [str(other)], "takedown")
    assert (decision.stale_indexes, decision.reopened_outputs) == ([index_id], [])
    assert state_of(catalogue, first).state == "released"


# ---------------------------------------------------------------- set-based


def recorded_build(catalogue, name: str, count: int, seed: int, tmp_path) -> tuple[list[int], int]:
    """`count` approved CC0 images in a published version `name@1`, an index build of all of them
    recorded directly (no embedding: only its rows matter here) and one released output that
    retrieved the first three. Returns (member ids, output id)."""
    folder = tmp_path / name
    rows = []
    for n in range(count):
        write(folder / f"{n}.png", encode(picture(seed + n, size=(16, 16))))
        rows.append({"path": f"{n}.png", "licence": "CC0"})
    ingest(catalogue, "sam", folder, manifest=write_csv(tmp_path / f"{name}.csv", rows), progress=False)
    policy = load_policy("commercial")
    with catalogue.write() as session:
        newest = sa.select(sa.func.max(Image.ingest_run_id)).scalar_subquery()
        ids = sorted(session.scalars(sa.select(Image.id).where(Image.ingest_run_id == newest)))
        review.decide(session, "lee", "approve", [str(i) for i in ids], None)
        stylesets.create(session, "sam", name)
        stylesets.add(session, "sam", name, [str(i) for i in ids])
        stylesets.publish(session, "sam", name)
        _, version = stylesets.resolve_version(session, f"{name}@1")
        sam = actors.find(session, "sam")
        policy_texts.record(session, policy)
        build = IndexBuild(
            index_id=uuid.uuid4().hex,
            path=str(tmp_path / f"{name}-idx"),
            styleset_version_id=version.id,
            policy=policy.name,
            policy_sha256=policy.hash,
            encoder_id="test",
            encoder_weights_sha256="0" * 64,
            manifest_sha256=uuid.uuid4().hex * 2,
            members=count,
            search="exact",
            built_by=sam.id,
        )
        session.add(build)
        session.flush()
        session.execute(
            sa.insert(IndexMember.__table__),
            [{"build_id": build.id, "image_id": i, "position": p} for p, i in enumerate(ids)],
        )
        run = GenerationRun(
            run_id=uuid.uuid4().hex, actor_id=sam.id, generator="test", prompt="p", seed=0, sampler="t",
            steps=1, guidance=1.0, k=3, n=1, model_id="m", model_weights_sha256="0" * 64, model_path="/m",
            index_build_id=build.id, manifest_sha256="0" * 64, encoder_id="test", out_dir="/o", record="{}",
        )  # fmt: skip
        session.add(run)
        session.flush()
        output = GenerationOutput(
            run_id=run.id, ordinal=0, seed=0, path=f"/o/{name}.png", sha256="1" * 64, pixels_sha256="2" * 64
        )
        session.add(output)
        session.flush()
        for rank, image_id in enumerate(ids[:3], start=1):
            session.add(
                OutputNeighbour(
                    output_id=output.id,
                    rank=rank,
                    image_id=image_id,
                    sha256="3" * 64,
                    score=0.5,
                    obligations="[]",
                )
            )
        session.add(OutputReview(output_id=output.id, state="released"))
        output_id = output.id
    return ids, output_id


def statements_to_rejudge(catalogue, ids: list[int]) -> tuple[int, object]:
    """Change the licence of every one of `ids` to one commercial excludes (as a bulk change would),
    then count the SQL statements `rejudge` sends."""
    statements = []

    def counted(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with catalogue.write() as session:
        session.execute(sa.update(Licence).where(Licence.image_id.in_(ids)).values(spdx="CC-BY-NC-4.0"))
        sa.event.listen(catalogue.engine, "before_cursor_execute", counted)
        try:
            done = rejudge(session, "lee", ids, "licences changed")
        finally:
            sa.event.remove(catalogue.engine, "before_cursor_execute", counted)
    return len(statements), done


def test_the_one_path_sends_as_many_statements_for_200_members_as_for_10(catalogue, team, tmp_path):
    few, few_output = recorded_build(catalogue, "few", 10, 5000, tmp_path)
    many, many_output = recorded_build(catalogue, "many", 200, 6000, tmp_path)
    for_few, done_few = statements_to_rejudge(catalogue, few)
    for_many, done_many = statements_to_rejudge(catalogue, many)
    assert done_few.reopened_outputs == [few_output] and done_many.reopened_outputs == [many_output]
    assert len(done_few.stale_indexes) == len(done_many.stale_indexes) == 1
    with catalogue.read() as session:
        reasons = [b.stale_reason for b in session.scalars(sa.select(IndexBuild).order_by(IndexBuild.id))]
    assert f"image {few[0]} is no longer cleared under commercial" in reasons[0]
    assert f"image {many[0]} is no longer cleared under commercial" in reasons[1]
    assert for_few == for_many


def test_the_desk_says_which_indexes_a_licence_for_a_whole_queue_staled_and_which_outputs_it_reopened(
    reviewed,
):
    catalogue, _, _ = reviewed
    first, neighbour, index_id = released_neighbour(catalogue)
    with catalogue.read() as session:
        raw = session.get(Licence, neighbour).raw
    give_passwords(catalogue, ["lee"])
    client = client_for(catalogue)
    sign_in(client, "lee")
    q = urlencode({"state": "approved", "raw": raw})
    fields = dict(q=q, decision="licence", licence="CC-BY-NC-4.0")
    preview = post(client, f"/queue?{q}", "/queue/bulk", **fields)
    count = re.search(r'<p id="bulk-summary">\s*<strong>(\d+)</strong>', preview.text).group(1)
    done = post(client, f"/queue?{q}", "/queue/bulk", **fields, expected=count)
    assert done.status_code == 303
    said = client.get(done.headers["location"]).text
    assert f"indexes now stale: {index_id}" in said
    assert f"released outputs back to pending: {first}" in said
    assert state_of(catalogue, first).state == "pending" and not fresh(catalogue)
