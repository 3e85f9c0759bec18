"""`stylevault users passwd`: the password an actor signs in to the web desk with (the desk's own
write, governance/web/passwords.py); kept apart from `serve` so that it loads no web framework."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from stylevault.governance.cli.apps import catalogue, handled, settings, users_app
from stylevault.governance.cli.output import out
from stylevault.governance.errors import BadInput
from stylevault.governance.web import passwords


@users_app.command("passwd")
@handled
def users_passwd(
    name: str,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin.")
    ] = False,
) -> None:
    """Set the password an actor signs in to the web desk with (admin; from a prompt, STYLEVAULT_PASSWORD
    or --password-stdin). The audit log records that it was set, never the password."""

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif os.environ.get("STYLEVAULT_PASSWORD"):
        password = os.environ["STYLEVAULT_PASSWORD"]
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        raise BadInput("password: give it at the prompt, in STYLEVAULT_PASSWORD or with --password-stdin")
    with catalogue().write() as session:
        result = passwords.set_password(session, settings.actor, name, password)
    out.print(f"password {'replaced' if result['replaced'] else 'set'} for {name}")
