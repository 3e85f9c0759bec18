"""The `stylevault` command line: a thin Typer layer over the catalogue functions.

`apps` holds the application and what every command shares; the commands live in
`catalogue_commands` (catalogue core), `legal_commands` (licences and review),
`curation_commands` (style sets and policies), `audit_commands` (verify, log, keygen, checkpoint)
and more; `selection` declares the filters that choose images.

Every list/show/report command takes --json. Exit status: 0 success, 1 a refused operation (role,
four-eyes, verification), 2 bad usage or input. Errors are one line on stderr.
"""

from stylevault.governance.cli import (  # importing a command module attaches its commands to the apps
    audit_commands,  # noqa: F401
    catalogue_commands,  # noqa: F401
    curation_commands,  # noqa: F401
    doctor_commands,  # noqa: F401
    generation_commands,  # noqa: F401
    legal_commands,  # noqa: F401
    licence_commands,  # noqa: F401
    output_commands,  # noqa: F401
    train_commands,  # noqa: F401
    web_commands,  # noqa: F401
)
from stylevault.governance.cli.apps import app


def main() -> None:
    app()
