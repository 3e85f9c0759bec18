"""The audit commands: verify (chain, checkpoints, replay), log, keygen, checkpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from stylevault.governance.cli.apps import JsonFlag, audit_app, catalogue, handled, settings
from stylevault.governance.cli.output import err, out, print_json, print_table
from stylevault.governance.errors import BadInput
from stylevault.governance.upkeep import checkpoints
from stylevault.governance.upkeep.log_check import verify_log
from stylevault.governance.views import images


@audit_app.command("verify")
@handled
def audit_verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="A checkpoint file (JSON Lines): prove the log only grew since each checkpoint."),
    ] = None,
    pubkey: Annotated[
        Path | None,
        typer.Option(
            help="The public key the checkpoints must be signed with (KEYFILE.pub of `audit keygen`)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Walk the chain, check the checkpoints, replay the log against the tables; exit 1 naming the
    first that fails (an edited, deleted, inserted or reordered event; a rewritten history; a table
    row changed without an event)."""
    if pubkey is not None and checkpoint is None:
        raise BadInput("--pubkey: it checks checkpoints; give --checkpoint FILE too")
    public = checkpoints.load_public_key(pubkey) if pubkey is not None else None
    with catalogue().read() as session:
        result = verify_log(session, checkpoint, public)
    if as_json:
        print_json(result.as_dict())
    else:
        _print_verification(result)
    if not result.ok:
        raise typer.Exit(1)


def _print_verification(result) -> None:
    chain, replayed, kept = result.chain, result.replay, result.checkpoints
    if chain.ok:
        out.print(f"audit chain intact: {chain.events} events, head {chain.head_hash}")
    if kept is not None and kept.ok:
        latest = max(kept.lines, key=lambda line: line.seq)
        whose = (
            f"signed by the given key {kept.key}"
            if kept.key
            else "each signed by the key it names (give --pubkey to check whose key that is)"
        )
        out.print(
            f"checkpoints: {len(kept.lines)} in {kept.file}, {whose}; the log holds each signed head"
            f" (latest: event {latest.seq}, {latest.at})"
        )
    if replayed.ok:
        out.print(f"replay: {replayed.events} events agree with {replayed.rows} table rows")
    if not result.ok:
        err.print(f"stylevault: {result.failure}")


@audit_app.command("log")
@handled
def audit_log(
    target: Annotated[str | None, typer.Option(help="TYPE:ID (e.g. actor:alice), or an IMAGE.")] = None,
    action: Annotated[str | None, typer.Option(help="Action or prefix, e.g. review.")] = None,
    actor: Annotated[str | None, typer.Option(help="Events by this actor.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Newest N events.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Audit events, newest first."""
    with catalogue().read() as session:
        events = images.audit_events(session, target=target, action=action, actor=actor, limit=limit)
    if as_json:
        print_json(events)
        return
    print_table(
        [
            {**e, "change": json.dumps(e["after"], ensure_ascii=False)[:80] if e["after"] else ""}
            for e in events
        ],
        ["seq", "at", "actor", "action", "target", "change"],
    )


@audit_app.command("keygen")
@handled
def audit_keygen(
    out_file: Annotated[Path, typer.Option("--out", help="The private key file to write (mode 0600).")],
    as_json: JsonFlag = False,
) -> None:
    """Make an Ed25519 key for signing checkpoints: KEYFILE (private, mode 0600) and KEYFILE.pub.
    Keep KEYFILE off the database host; never overwrites a file."""
    made = checkpoints.keygen(out_file)
    if as_json:
        print_json(made)
        return
    out.print(
        f"private key {made['key']} (mode 0600: keep it off the database host)",
        f"public key {made['public_key']}: give it to `audit verify --pubkey`",
        f"fingerprint {made['fingerprint']}",
    )


@audit_app.command("checkpoint")
@handled
def audit_checkpoint(
    key: Annotated[
        Path, typer.Option(envvar="STYLEVAULT_AUDIT_KEY", help="The private key from `audit keygen`.")
    ],
    out_file: Annotated[
        Path, typer.Option("--out", help="The checkpoint file to append to (JSON Lines; made if missing).")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Sign the audit head (admin or legal): records an `audit.checkpoint` event, signs the head that
    event makes and appends the checkpoint to FILE. Keep FILE off the database host."""
    signed = checkpoints.checkpoint(catalogue(), settings.actor, key, out_file)
    if as_json:
        print_json(signed)
        return
    out.print(
        f"checkpoint of event {signed['seq']} (head {signed['head']}) signed by {signed['key']},"
        f" appended to {out_file}"
    )
