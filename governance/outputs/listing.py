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
    """An output's review state, newest scores and decision history (for `provenance show`)."""
    review = session.get(OutputReview, output_id)
    state = (
        {
            "state": review.state,
            "flagged": review.flagged,
            "reason": review.reason,
            "override": review.override_reason,
        }
        if review
        else None
    )
    return {
        "review": state,
        "scores": latest_scores(session, [output_id]).get(output_id),
        "decisions": history(session, output_id),
    }


def show(session: Session, ref: str) -> dict:
    output = resolve(session, ref)
    run = session.get(GenerationRun, output.run_id)
    neighbours = [
        dict(row._mapping)
        for row in session.execute(
            sa.select(
                OutputNeighbour.rank, OutputNeighbour.image_id, OutputNeighbour.score, OutputNeighbour.licence
            )
            .where(OutputNeighbour.output_id == output.id)
            .order_by(OutputNeighbour.rank)
        )
    ]
    return {
        "output_id": output.id,
        "run_id": run.run_id,
        "ordinal": output.ordinal,
        "path": output.path,
        "sha256": output.sha256,
        "prompt": run.prompt,
        "neighbours": neighbours,
        **review_of(session, output.id),
    }
