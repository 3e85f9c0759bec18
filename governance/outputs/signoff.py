"""Output review: every output starts pending and counts as released only when a person signs it off.

- `release` needs the legal or reviewer role; under a policy with `signoff_required` the actor who
  generated the output cannot release it (four-eyes). A flagged output (a near copy, or scores that
  could not be computed) is released only by legal with an explicit `--override REASON`.
- `withhold` takes a pending or released output out of use, with a reason; a withheld output is not
  released again (a release is refused with its history).
- A released output that retrieved an image no longer cleared under its index's policy (revoked, its
  licence changed to one the policy excludes, opted out) goes back to pending (`reopen`, called by
  governance/standing).
- `score` computes an output's scores again (or for the first time) from its run's index.

Each output of a bulk release or withhold is decided on its own: the allowed ones change, every
refused one is reported with its reason. Every change is an output_decision row and an audit event.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlmodel import Session

from stylevault.governance.catalogue import actors, audit
from stylevault.governance.catalogue.db import Catalogue
from stylevault.governance.catalogue.models import Actor
from stylevault.governance.catalogue.output_models import (
    GenerationOutput,
    GenerationRun,
    IndexBuild,
    OutputDecision,
    OutputNeighbour,
    OutputReview,
    OutputScore,
)
from stylevault.governance.errors import BadInput, Refused
from stylevault.governance.index.encoders import load_encoder
from stylevault.governance.index.handle import IndexHandle
from stylevault.governance.outputs import files
from stylevault.governance.outputs.scoring import Scorer, Scores, missing

MIN_PREFIX = 12
SCORE_COLUMNS = (
    "status",
    "detail",
    "encoder_id",
    "prompt_alignment",
    "style_neighbours",
    "style_centroid",
    "nearest_cosine",
    "nearest_cosine_image_id",
    "nearest_hash_distance",
    "nearest_hash_image_id",
    "policy_name",
    "policy_sha256",
)


# ---------------------------------------------------------------- finding outputs


def resolve(session: Session, ref: str) -> GenerationOutput:
    """An output by id, by a file (its chunks, file hash or pixel hash), or by a sha256 (prefix of at
    least 12 hex digits) of its file or its pixels."""
    text = str(ref).strip()
    if text.isdigit() and len(text) < MIN_PREFIX:
        output = session.get(GenerationOutput, int(text))
        if output is None:
            raise BadInput(f"OUTPUT {ref}: no output with that id")
        return output
    if os.path.sep in text or text.lower().endswith(".png") or Path(text).is_file():
        return files.find_output(session, text)
    lowered = text.lower()
    if len(lowered) < MIN_PREFIX or len(lowered) > 64 or any(c not in "0123456789abcdef" for c in lowered):
        raise BadInput(
            f"OUTPUT {ref!r}: give an output id, a PNG file, or at least {MIN_PREFIX} hex digits of a sha256"
        )
    o = GenerationOutput
    found = session.scalars(
        sa.select(o)
        .where(sa.or_(o.sha256.startswith(lowered), o.pixels_sha256.startswith(lowered)))
        .order_by(o.id)
        .limit(2)
    ).all()
    if not found:
        raise BadInput(f"OUTPUT {ref}: no output with that sha256")
    if len(found) > 1:
        raise BadInput(f"OUTPUT {ref}: prefix matches more than one output; give more digits")
    return found[0]


def resolve_many(session: Session, refs: list[str]) -> list[GenerationOutput]:
    if not refs:
        raise BadInput("OUTPUT: give at least one output")
    found: dict[int, GenerationOutput] = {}
    for ref in refs:
        output = resolve(session, ref)
        found.setdefault(output.id, output)
    return list(found.values())


# ---------------------------------------------------------------- scores


def record_scores(session: Session, output_id: int, scores: Scores, actor: Actor | None = None) -> dict:
    """Append one score row for an output and carry its flag to the review state. A released output
    that a new score flags goes back to review."""
    row = OutputScore(
        output_id=output_id,
        **{column: getattr(scores, column) for column in SCORE_COLUMNS},
        thresholds=dict(sorted(scores.thresholds.items())),
        flagged=scores.flagged,
        flags=list(scores.flags),
    )
    session.add(row)
    review = session.get(OutputReview, output_id, with_for_update=True)
    if review is None:
        review = OutputReview(output_id=output_id, state="pending", flagged=scores.flagged)
        session.add(review)
        session.flush()
        return scores.as_dict()
    review.flagged = scores.flagged
    if scores.flagged and review.state == "released" and actor is not None:
        _move(session, actor, review, "reopen", "pending", "; ".join(scores.flags))
    session.add(review)
    session.flush()
    return scores.as_dict()


def rescore(catalogue: Catalogue, actor_name: str | None, refs: list[str], *, device: str | None = None):
    """Score outputs again from their run's index (verified, stale allowed: the question is what the
    output is close to). An index that is gone or fails verification, or an output file that is gone,
    is recorded as missing scores, not an error."""
    from PIL import Image as PILImage

    with catalogue.read() as session:  # before any scoring; checked again where each score is recorded
        actors.require(session, actor_name, "output.score")
        items = []
        for output in resolve_many(session, refs):
            run = session.get(GenerationRun, output.run_id)
            build = session.get(IndexBuild, run.index_build_id)
            neighbours = session.scalars(
                sa.select(OutputNeighbour.image_id)
                .where(OutputNeighbour.output_id == output.id)
                .order_by(OutputNeighbour.rank)
            ).all()
            items.append(
                (output.id, output.path, run.prompt, build.path, run.manifest_sha256, list(neighbours))
            )
    scorers: dict[str, object] = {}
    results = []
    for output_id, path, prompt, index_path, manifest_sha256, neighbours in items:
        scorer = scorers.get(index_path)
        if scorer is None:
            try:
                handle = IndexHandle.open(catalogue, index_path, allow_stale=True)
                if handle.manifest_sha256 != manifest_sha256:
                    raise Refused(f"index {index_path} is not the one the run used (manifest sha256 differs)")
                encoder = load_encoder(handle.manifest["encoder"]["spec"], device=device)
                handle.require_encoder(encoder.id)
                scorer = Scorer(handle, encoder)
            except (Refused, BadInput) as exc:
                scorer = str(exc)
            scorers[index_path] = scorer
        if isinstance(scorer, str):
            scores = missing(scorer)
        else:
            try:
                image = PILImage.open(path)
                image.load()
            except OSError as exc:
                scores = missing(f"output file {path} cannot be read ({exc})")
            else:
                scores = scorer.score([image], prompt, [neighbours])[0]
        with catalogue.write() as session:
            actor = actors.require(session, actor_name, "output.score")
            record_scores(session, output_id, scores, actor)
            audit.record(
                session,
                actor.name,
                [audit.Change("output.score", "output", output_id, None, _score_summary(scores))],
            )
        results.append({"output_id": output_id, **scores.as_dict()})
    return results


def _score_summary(scores: Scores) -> dict:
    return {
        "status": scores.status,
        "nearest_cosine": scores.nearest_cosine,
        "nearest_hash_distance": scores.nearest_hash_distance,
        "flagged": scores.flagged,
        "flags": scores.flags,
        "policy": scores.policy_name,
        "policy_sha256": scores.policy_sha256,
    }


def latest_scores(session: Session, output_ids: list[int]) -> dict[int, dict]:
    s = OutputScore.__table__
    newest = (
        sa.select(sa.func.max(s.c.id))
        .where(s.c.output_id.in_(output_ids))
        .group_by(s.c.output_id)
        .scalar_subquery()
    )
    found = {}
    for row in session.execute(sa.select(s).where(s.c.id.in_(newest))):
        values = dict(row._mapping)
        values["computed_at"] = audit.timestamp(values["computed_at"])
        found[values.pop("output_id")] = values
    return found


# ---------------------------------------------------------------- decisions


def _move(session: Session, actor: Actor, review: OutputReview, action: str, to: str, reason, override=None):
    before = {"state": review.state, "reason": review.reason}
    session.add(
        OutputDecision(
            output_id=review.output_id,
            actor_id=actor.id,
            action=action,
            from_state=review.state,
            to_state=to,
            reason=reason,
            override=override is not None,
        )
    )
    review.state, review.reason, review.override_reason = to, reason, override
    review.updated_by, review.updated_at = actor.id, datetime.now(UTC)
    session.add(review)
    after = {"state": to, "reason": reason} | ({"override": override} if override else {})
    audit.record(
        session, actor.name, [audit.Change(f"output.{action}", "output", review.output_id, before, after)]
    )


def history(session: Session, output_id: int) -> list[dict]:
    d, a = OutputDecision.__table__, Actor.__table__
    rows = session.execute(
        sa.select(
            d.c.at,
            a.c.name.label("actor"),
            d.c.action,
            d.c.from_state,
            d.c.to_state,
            d.c.reason,
            d.c.override,
        )
        .select_from(d.join(a, a.c.id == d.c.actor_id))
        .where(d.c.output_id == output_id)
        .order_by(d.c.id)
    )
    return [{**dict(row._mapping), "at": audit.timestamp(row.at)} for row in rows]


def _history_line(entries: list[dict]) -> str:
    return "; ".join(
        f"{e['at']} {e['actor']} {e['action']} {e['from_state']}->{e['to_state']}"
        + (f" ({e['reason']})" if e["reason"] else "")
        for e in entries
    )


def _locked(session: Session, refs: list[str]) -> list[tuple[GenerationOutput, OutputReview]]:
    outputs = sorted(resolve_many(session, refs), key=lambda o: o.id)
    reviews = {
        r.output_id: r
        for r in session.scalars(
            sa.select(OutputReview)
            .where(OutputReview.output_id.in_([o.id for o in outputs]))
            .order_by(OutputReview.output_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    }
    return [(o, reviews[o.id]) for o in outputs]


def release(
    session: Session,
    actor_name: str | None,
    refs: list[str],
    reason: str | None = None,
    override: str | None = None,
) -> dict:
    """Release each output that may be released; return {"released": [...], "refused": [...]}."""
    actor = actors.require(session, actor_name, "output.release")
    if override is not None and not override.strip():
        raise BadInput("--override: give the reason for releasing a flagged output")
    roles = set(actors.roles_of(session, actor))
    items = _locked(session, refs)
    scores = latest_scores(session, [o.id for o, _ in items])
    makers = dict(
        session.execute(
            sa.select(GenerationOutput.id, GenerationRun.actor_id)
            .join(GenerationRun, GenerationRun.id == GenerationOutput.run_id)
            .where(GenerationOutput.id.in_([o.id for o, _ in items]))
        ).all()
    )
    released, refused = [], []
    for output, review in items:
        problem = _release_problem(
            session, actor, roles, output, review, scores.get(output.id), makers, override
        )
        if problem:
            refused.append({"output_id": output.id, "state": review.state, "reason": problem})
            continue
        if review.state == "released":
            released.append({"output_id": output.id, "state": "released", "changed": False})
            continue
        _move(session, actor, review, "release", "released", reason, override if review.flagged else None)
        released.append({"output_id": output.id, "state": "released", "changed": True})
    session.flush()
    return {"released": released, "refused": refused}


def _release_problem(session, actor, roles, output, review, scores, makers, override) -> str | None:
    if review.state == "withheld":
        return f"output {output.id} is withheld and is not released again; history: " + _history_line(
            history(session, output.id)
        )
    if review.state == "released":
        return None
    if scores is None:
        return f"output {output.id} has no scores; score it first with `stylevault outputs score {output.id}`"
    signoff = scores["thresholds"].get("signoff_required", True)
    if signoff and makers.get(output.id) == actor.id:
        return f"output {output.id}: {actor.name} generated it and cannot release it (four-eyes)"
    if review.flagged:
        flags = "; ".join(scores["flags"]) or "flagged"
        if override is None:
            return f"output {output.id} is flagged ({flags}): release needs legal's --override REASON"
        if "legal" not in roles:
            return f"output {output.id} is flagged ({flags}): only the legal role may override"
    return None


def withhold(session: Session, actor_name: str | None, refs: list[str], reason: str | None) -> dict:
    """Withhold each pending or released output, with a reason."""
    actor = actors.require(session, actor_name, "output.release")
    if not (reason and reason.strip()):
        raise BadInput("--reason: say why the output is withheld")
    done = []
    for output, review in _locked(session, refs):
        if review.state == "withheld":
            done.append({"output_id": output.id, "state": "withheld", "changed": False})
            continue
        _move(session, actor, review, "withhold", "withheld", reason)
        done.append({"output_id": output.id, "state": "withheld", "changed": True})
    session.flush()
    return {"withheld": done, "refused": []}


def reopen(session: Session, actor: Actor, reasons: dict[int, str]) -> list[int]:
    """Send each named output that is released back to pending, with its reason (governance/standing
    decides which: those that retrieved an image no longer cleared under their index's policy).
    Returns the ids moved, in id order."""
    moved = []
    for review in session.scalars(
        sa.select(OutputReview)
        .where(OutputReview.output_id.in_(sorted(reasons)), OutputReview.state == "released")
        .order_by(OutputReview.output_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ):
        _move(session, actor, review, "reopen", "pending", reasons[review.output_id])
        moved.append(review.output_id)
    return moved


# ---------------------------------------------------------------- reading
