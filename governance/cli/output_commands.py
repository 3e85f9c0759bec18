"""Commands for output review: outputs list, show, score, release, withhold."""

from __future__ import annotations

from typing import Annotated

import typer

from stylevault.governance.cli.apps import JsonFlag, catalogue, handled, outputs_app, settings
from stylevault.governance.cli.output import err, out, print_json, print_table
from stylevault.governance.outputs import listing as output_listing
from stylevault.governance.outputs import signoff as outputs

OutputRefs = Annotated[
    list[str], typer.Argument(help="Outputs: ids, PNG files, or 12+ hex digits of a file or pixel sha256.")
]


@outputs_app.command("list")
@handled
def outputs_list(
    state: Annotated[str | None, typer.Option(help="pending, released or withheld.")] = None,
    flagged: Annotated[
        bool | None, typer.Option("--flagged/--not-flagged", help="Only flagged (or unflagged) outputs.")
    ] = None,
    index: Annotated[str | None, typer.Option(help="An index id or folder.")] = None,
    styleset: Annotated[
        str | None, typer.Option(help="NAME or NAME@VERSION of the index's style set.")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Outputs with their review state, flag and nearest-member scores."""

    with catalogue().read() as session:
        rows = output_listing.listing(
            session, state=state, flagged=flagged, index=index, styleset=styleset, limit=limit
        )
    if as_json:
        print_json(rows)
        return
    print_table(
        rows,
        [
            "output_id",
            "state",
            "flagged",
            "nearest_cosine",
            "nearest_hash_distance",
            "prompt_alignment",
            "styleset",
            "generated_by",
            "prompt",
        ],
    )
    out.print(f"{len(rows)} outputs")


@outputs_app.command("show")
@handled
def outputs_show(output: str, as_json: JsonFlag = False) -> None:
    """One output: its scores, the thresholds they were judged by, its state and decision history."""

    with catalogue().read() as session:
        detail = output_listing.show(session, output).as_dict()
    if as_json:
        print_json(detail)
        return
    review, scores = detail["review"], detail["scores"]
    lines = [
        f"output {detail['output_id']} ({detail['path']}): run {detail['run_id']}, "
        f"prompt {detail['prompt']!r}",
        f"  state {review['state']}" + (" FLAGGED" if review["flagged"] else ""),
    ]
    if scores is None:
        lines.append("  not scored")
    elif scores["status"] == "missing":
        lines.append(f"  scores missing: {scores['detail']}")
    else:
        limits = scores["thresholds"]
        lines += [
            f"  prompt alignment {scores['prompt_alignment']:.4f}; style: neighbours "
            + (f"{scores['style_neighbours']:.4f}" if scores["style_neighbours"] is not None else "-")
            + f", centroid {scores['style_centroid']:.4f}",
            f"  nearest member by cosine: image {scores['nearest_cosine_image_id']} "
            f"({scores['nearest_cosine']:.4f}; flag at >= {limits.get('near_copy_cosine')})",
            f"  nearest member by phash: image {scores['nearest_hash_image_id']} "
            f"({scores['nearest_hash_distance']} bits; flag at <= {limits.get('near_copy_hash')})",
            f"  thresholds from policy {scores['policy_name']} (sha256 {str(scores['policy_sha256'])[:12]})",
        ]
    lines += [f"  flag: {flag}" for flag in (scores or {}).get("flags", [])]
    for entry in detail["decisions"]:
        lines.append(
            f"  {entry['at']} {entry['actor']} {entry['action']}: "
            f"{entry['from_state']} -> {entry['to_state']}"
            + (f" ({entry['reason']})" if entry["reason"] else "")
            + (" [override]" if entry["override"] else "")
        )
    out.print(*lines)


@outputs_app.command("score")
@handled
def outputs_score(
    refs: OutputRefs,
    device: Annotated[str | None, typer.Option(help="cpu or cuda.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score outputs again from their run's index; an index that is gone is recorded as missing."""

    results = outputs.rescore(catalogue(), settings.actor, refs, device=device)
    if as_json:
        print_json(results)
        return
    for r in results:
        if r["status"] == "missing":
            out.print(f"output {r['output_id']}: scores missing ({r['detail']})")
        else:
            flag = " FLAGGED: " + "; ".join(r["flags"]) if r["flagged"] else ""
            out.print(
                f"output {r['output_id']}: nearest cosine {r['nearest_cosine']:.4f}, "
                f"phash distance {r['nearest_hash_distance']}{flag}",
            )


def _report(result: dict, done_key: str, verb: str, as_json: bool) -> None:
    if as_json:
        print_json(result)
    else:
        for item in result[done_key]:
            change = verb if item["changed"] else f"already {item['state']}"
            out.print(f"output {item['output_id']}: {change}")
        for item in result["refused"]:
            err.print(f"stylevault: refused: {item['reason']}")
    if result["refused"]:
        raise typer.Exit(1)


@outputs_app.command("release")
@handled
def outputs_release(
    refs: OutputRefs,
    reason: Annotated[str | None, typer.Option(help="Why (optional for an unflagged output).")] = None,
    override: Annotated[
        str | None, typer.Option(help="Legal only: release flagged outputs anyway, for this reason.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Sign outputs off for use. Each output is decided on its own; exit 1 if any was refused."""

    with catalogue().write() as session:
        result = outputs.release(session, settings.actor, refs, reason, override)
    _report(result, "released", "released", as_json)


@outputs_app.command("withhold")
@handled
def outputs_withhold(
    refs: OutputRefs,
    reason: Annotated[str | None, typer.Option(help="Why the outputs are withheld (required).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Take outputs out of use, with a reason."""

    with catalogue().write() as session:
        result = outputs.withhold(session, settings.actor, refs, reason)
    _report(result, "withheld", "withheld", as_json)
