"""The `stylevault` command line: a thin Typer layer over the catalogue functions.

`root` holds the `stylevault` group, its global options and the table of its commands (so `--help` and
each command import only what they need); `apps` holds what every command shares; the commands live in
`catalogue_commands` (init, users, images, report), `ingest_commands`, `demo_commands`,
`legal_commands` (licences and review), `curation_commands` (style sets and policies),
`audit_commands` (verify, log, keygen, checkpoint) and more; `selection` declares the filters that
choose images.

Every list/show/report command takes --json. Exit status: 0 success, 1 a refused operation (role,
four-eyes, verification), 2 bad usage or input. Errors are one line on stderr.
"""

from stylevault.governance.cli.root import app  # the root group: each command module loads on first use


def main() -> None:
    app()
