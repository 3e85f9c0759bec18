"""Reading outputs for review: the filtered list (keyset pages), and one output in full with its scores
and decisions."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import audit
from stylevault.governance.catalogue.models import OUTPUT_STATES, Actor, StyleSet, StyleSetVersion
from stylevault.governance.catalogue.output_models import (
    GenerationOutput,
    GenerationRun,
    IndexBuild,
    OutputNeighbour,
    OutputReview,
    OutputScore,
)
from stylevault.governance.curation.stylesets import parse_ref
from stylevault.governance.errors import BadInput
from stylevault.governance.outputs.signoff import history, latest_scores, resolve
from stylevault.governance.views import images
from stylevault.governance.views.shapes import NeighbourView, OutputView, RunRecord


def listing(
    session: Session,
    *,
    state: str | None = None,
    flagged: bool | None = None,
    index: str | None = None,
    styleset: str | None = None,
    limit: int | None = None,
) -> list[dict]:
    """Outputs with their review state and newest scores; every filter is a WHERE clause."""
    if state is not None and state not in OUTPUT_STATES:
        raise BadInput(f"--state: unknown state {state!r} (states: {', '.join(OUTPUT_STATES)})")
    if limit is not None and limit < 1:
        raise BadInput(f"--limit: must be 1 or more, got {limit}")
    o, run, rv, b = (
        GenerationOutput.__table__,
        GenerationRun.__table__,
        OutputReview.__table__,
        IndexBuild.__table__,
    )
    sv, ss, s, a = StyleSetVersion.__table__, StyleSet.__table__, OutputScore.__table__, Actor.__table__
    newest = (
        sa.select(s.c.output_id, sa.func.max(s.c.id).label("score_id")).group_by(s.c.output_id).subquery()
    )
    query = (
        sa.select(
            o.c.id.label("output_id"),
            run.c.run_id,
            o.c.ordinal,
            o.c.path,
            o.c.sha256,
            run.c.prompt,
            run.c.created_at,
            a.c.name.label("generated_by"),
            b.c.index_id,
            (ss.c.name + "@" + sa.cast(sv.c.version, sa.String)).label("styleset"),
            rv.c.state,
            rv.c.flagged,
            s.c.status.label("score_status"),
            s.c.nearest_cosine,
            s.c.nearest_hash_distance,
            s.c.prompt_alignment,
            s.c.style_centroid,
        )
        .select_from(
            o.join(run, run.c.id == o.c.run_id)
            .join(a, a.c.id == run.c.actor_id)
            .join(rv, rv.c.output_id == o.c.id)
            .join(b, b.c.id == run.c.index_build_id)
            .join(sv, sv.c.id == b.c.styleset_version_id)
            .join(ss, ss.c.id == sv.c.styleset_id)
            .outerjoin(newest, newest.c.output_id == o.c.id)
            .outerjoin(s, s.c.id == newest.c.score_id)
        )
        .order_by(o.c.id)
    )
    if state is not None:
        query = query.where(rv.c.state == state)
    if flagged is not None:
        query = query.where(rv.c.flagged.is_(flagged))
    if index is not None:
        query = query.where(sa.or_(b.c.index_id == index, b.c.path == str(Path(index).absolute())))
    if styleset is not None:
        name, version = parse_ref(styleset)
        query = query.where(ss.c.name == name)
        if version is not None:
            query = query.where(sv.c.version == version)
    if limit is not None:
        query = query.limit(limit)
    return [
        {**dict(row._mapping), "created_at": audit.timestamp(row.created_at)}
        for row in session.execute(query)
    ]


def review_of(session: Session, output_id: int) -> dict:
    """An output's review state, newest scores and decision history. Every output has a review row
    (0005_output_review gave one to each output recorded before it)."""
    review = session.get(OutputReview, output_id)
    return {
        "review": {
            "state": review.state,
            "flagged": review.flagged,
            "reason": review.reason,
            "override": review.override_reason,
        },
        "scores": latest_scores(session, [output_id]).get(output_id),
        "decisions": history(session, output_id),
    }


def views(session: Session, made: list[GenerationOutput]) -> list[OutputView]:
    """Outputs in full: each with its run's record, its neighbours as recorded (and the source they
    are credited to now), its index's standing and its review. Neighbours in one query."""
    runs = {
        run.id: run
        for run in session.scalars(
            sa.select(GenerationRun).where(GenerationRun.id.in_({o.run_id for o in made}))
        )
    }
    builds = {
        build.id: build
        for build in session.scalars(
            sa.select(IndexBuild).where(IndexBuild.id.in_({run.index_build_id for run in runs.values()}))
        )
    }
    n = OutputNeighbour.__table__
    rows = session.execute(
        sa.select(n).where(n.c.output_id.in_([o.id for o in made])).order_by(n.c.output_id, n.c.rank)
    ).all()
    credited = images.first_sources(session, sorted({row.image_id for row in rows}))
    neighbours: dict[int, list[NeighbourView]] = {}
    for row in rows:
        source = credited.get(row.image_id, {})
        neighbours.setdefault(row.output_id, []).append(
            NeighbourView(
                **{k: v for k, v in row._mapping.items() if k != "output_id"},
                creator=source.get("creator"),
                title=source.get("title"),
                source_url=source.get("url"),
            )
        )
    shown = []
    for output in made:
        run = runs[output.run_id]
        build = builds[run.index_build_id]
        shown.append(
            OutputView(
                output_id=output.id,
                run=RunRecord.of(run.record),
                ordinal=output.ordinal,
                seed=output.seed,
                file=Path(output.path).name,
                path=output.path,
                sha256=output.sha256,
                pixels_sha256=output.pixels_sha256,
                neighbours=neighbours.get(output.id, []),
                index_now={
                    "index_id": build.index_id,
                    "stale": build.stale,
                    "stale_reason": build.stale_reason,
                },
                **review_of(session, output.id),
            )
        )
    return shown


def show(session: Session, ref: str) -> OutputView:
    """One output by its id (`outputs show`)."""
    return views(session, [resolve(session, ref)])[0]
