"""The ways a stylevault operation fails, mapped to the CLI's exit statuses."""


class StylevaultError(Exception):
    """Base class; the message is one line naming the file, field or value at fault."""

    exit_code = 2


class BadInput(StylevaultError):
    """Bad usage or input (exit 2): a malformed manifest, an unknown image, a bad date."""

    exit_code = 2


class Refused(StylevaultError):
    """A well-formed request the rules refuse (exit 1): a role, four-eyes, a verification."""

    exit_code = 1


class Busy(StylevaultError):
    """Concurrent writers kept aborting the transaction (exit 2): nothing changed; run it again."""

    exit_code = 2
