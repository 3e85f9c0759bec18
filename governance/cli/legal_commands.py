"""Legal's commands: licence set and review approve|reject|revoke, for named images or for every
image the filters of `images list` match (with --dry-run)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

import typer

from stylevault.governance.cli import selection
from stylevault.governance.cli.apps import (
    JsonFlag,
    catalogue,
    handled,
    licence_app,
    review_app,
    settings,
)
from stylevault.governance.cli.output import out, print_json
from stylevault.governance.errors import BadInput
from stylevault.governance.legal import licence_decisions, review
from stylevault.governance.views import images


def id_ranges(ids: list[int], most: int = 12) -> str:
    """`1-400, 402, 405-410`: a long list of ids in a line, its first `most` runs."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs[:most])
    return text + (f", … ({len(runs) - most} more runs)" if len(runs) > most else "")


def _say(line: str) -> None:
    out.print(line)


# ------------------------------------------------------------------ licence set


@licence_app.command("set")
@handled
@selection.with_filters(spdx="spdx")
def licence_set(
    licence: Annotated[str, typer.Option(help="SPDX expression; LicenseRef-<name> for contracts.")],
    image: Annotated[str | None, typer.Argument(help="One image; or choose images with filters.")] = None,
    evidence: Annotated[str | None, typer.Option(help="URL, or a file copied into the store.")] = None,
    attribution: Annotated[str | None, typer.Option(help="Attribution text the licence requires.")] = None,
    expires: Annotated[str | None, typer.Option(help="Expiry date, YYYY-MM-DD (not in the past).")] = None,
    note: Annotated[str | None, typer.Option(help="Why; kept with the licence.")] = None,
    filters: dict | None = None,  # the filter options (selection.with_filters)
    dry_run: selection.DryRun = False,
    as_json: JsonFlag = False,
) -> None:
    """Record a verified licence for an image, or for every image the filters match (legal)."""

    if image is not None and selection.chosen(filters):
        raise BadInput("IMAGE: give one image or filters, not both")
    cat = catalogue()

    def record(session):
        ids = [images.resolve(session, image).id] if image is not None else images.matching_ids(**filters)
        return licence_decisions.record_verified(
            session,
            cat.store,
            settings.actor,
            ids,
            licence=licence,
            evidence=evidence,
            attribution=attribution,
            expires=expires,
            note=note,
            dry_run=dry_run,
        )

    recorded = cat.transact(record)
    if as_json:
        if image is not None and not dry_run:
            print_json(
                {
                    "id": recorded.images[0]["id"],
                    **recorded.images[0]["after"],
                    "stale_indexes": recorded.stale_indexes,
                    "reopened_outputs": recorded.reopened_outputs,
                }
            )
        else:
            print_json(recorded.as_dict())
        return
    _print_recorded(recorded, single=image is not None)


def _print_recorded(recorded, *, single: bool) -> None:
    count = len(recorded.images)
    if single and not recorded.dry_run:
        _say(f"image {recorded.images[0]['id']}: licence {recorded.spdx} verified")
    elif not count:
        _say("no image matches: nothing to record")
        return
    else:
        verb = "would be recorded" if recorded.dry_run else "recorded"
        _say(f"{count} image{'' if count == 1 else 's'}: licence {recorded.spdx} {verb} as verified")
    if not single or recorded.dry_run:
        groups: dict[tuple, list[int]] = {}
        for entry in recorded.images:
            before = entry["before"]
            groups.setdefault((before["status"], before["spdx"], before["raw"]), []).append(entry["id"])
        for (status, spdx, raw), ids in sorted(groups.items(), key=lambda g: -len(g[1])):
            was = f"{status} {spdx or '-'} (as found: {raw!r})"
            _say(f"  {len(ids)} {'were' if not recorded.dry_run else 'now'} {was}: images {id_ranges(ids)}")
    _print_consequences(recorded)
    if recorded.dry_run:
        held = recorded.indexes_to_rejudge
        if held:
            _say(f"  indexes holding these images, re-judged when applied: {', '.join(held)}")
        _say("dry run: nothing changed")


def _print_consequences(done) -> None:
    """What a change in images' standing did (governance/standing): stale indexes, reopened outputs."""
    for index_id in done.stale_indexes:
        _say(f"  index {index_id} is now stale")
    if done.reopened_outputs:
        outputs = ", ".join(str(i) for i in done.reopened_outputs)
        _say(f"  released outputs back to pending: {outputs}")


# ------------------------------------------------------------------ review


def _print_decision(decision, review) -> None:
    target = review.TARGET[decision.decision]
    changed = decision.changed
    unchanged = [r for r in decision.images if not r["changed"]]
    verb = f"would be {target}" if decision.dry_run else target
    line = f"{len(changed)} {verb}" + (f", {len(unchanged)} already {target}" if unchanged else "")
    if decision.skipped:
        line += f"; {len(decision.skipped)} skipped"
    _say(line)
    if decision.dry_run and changed:
        _say(f"  images {id_ranges([r['id'] for r in changed])}")
    why = Counter(s["why"] for s in decision.skipped)
    labels = {
        "four-eyes": f"ingested by {settings.actor} (four-eyes: another legal reviewer decides them)",
        "licence": "licence not settled (record it with `stylevault licence set`)",
        "state": f"in a state that cannot be {target}",
        "reason": "need --reason (not pending)",
    }
    for kind, count in why.most_common():
        ids = [s["id"] for s in decision.skipped if s["why"] == kind]
        _say(f"  skipped {count} {labels.get(kind, kind)}: images {id_ranges(ids)}")
    _print_consequences(decision)
    if decision.dry_run:
        _say("dry run: nothing changed")


def _review(
    decision: str,
    refs: list[str] | None,
    reason: str | None,
    as_json: bool,
    filters: dict | None = None,
    dry_run: bool = False,
) -> None:
    filters = filters or selection.filters()
    if refs and (selection.chosen(filters) or dry_run):
        raise BadInput("IMAGE: give images or filters (with --dry-run), not both")

    def work(session):
        if refs:
            return review.decide(session, settings.actor, decision, refs, reason)
        return review.decide_matching(session, settings.actor, decision, filters, reason, dry_run=dry_run)

    result = catalogue().transact(work)
    if as_json:
        print_json(result.as_dict())
    else:
        _print_decision(result, review)


Images = Annotated[
    list[str] | None, typer.Argument(help="Image ids, sha256s or sha256 prefixes (12+ digits).")
]
Reason = Annotated[str | None, typer.Option(help="Why; required except for a first approval.")]


def _filtered_review(decision: str, doc: str) -> None:
    """`review approve` and `review reject`: named images, or every image the filters match."""

    def command(
        image: Images = None,
        reason: Reason = None,
        filters: dict | None = None,
        dry_run: selection.DryRun = False,
        as_json: JsonFlag = False,
    ) -> None:
        _review(decision, image, reason, as_json, filters=filters, dry_run=dry_run)

    command.__doc__ = doc
    review_app.command(decision)(handled(selection.with_filters()(command)))


_filtered_review(
    "approve",
    """Approve images (legal; not the actor who ingested them). Named images are approved all or
    none; by filter, an image a rule refuses (four-eyes, an unsettled licence) is skipped and listed.""",
)
_filtered_review("reject", """Reject pending images, named or by filter.""")


@review_app.command("revoke")
@handled
def review_revoke(
    image: Annotated[list[str], typer.Argument(help="Image ids, sha256s or sha256 prefixes (12+ digits).")],
    reason: Reason = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke images (licence withdrawn, takedown, opt-out): their indexes go stale, the released
    outputs that used them go back to pending, and both are listed."""
    _review("revoke", image, reason, as_json)
