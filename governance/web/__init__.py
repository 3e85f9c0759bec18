"""The web review desk: a server-rendered FastAPI app over the same catalogue functions as the CLI.

`create_app` builds it; `stylevault serve` runs it with uvicorn. Every write goes through a
`governance` function that checks the actor's role and records the change in the audit chain; the web
layer adds sign-in, sessions, CSRF protection and pages, and no business rule of its own.
"""

from stylevault.governance.web.app import create_app
from stylevault.governance.web.config import WebConfig

__all__ = ["WebConfig", "create_app"]
