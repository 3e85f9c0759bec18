"""`stylevault serve`: the web review desk (`users passwd`, the password its actors sign in with, is
password_commands)."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import typer

from stylevault.governance.cli.apps import app, catalogue, handled
from stylevault.governance.cli.output import err, out
from stylevault.governance.web.app import create_app
from stylevault.governance.web.config import from_environment


@app.command()
@handled
def serve(
    host: Annotated[str, typer.Option(help="Address to bind; loopback unless you mean to expose it.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    trusted_header: Annotated[
        str | None,
        typer.Option(
            envvar="STYLEVAULT_TRUSTED_HEADER",
            help="A header your company proxy sets to the signed-in actor (e.g. X-Forwarded-User); "
            "never read unless given.",
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            envvar="STYLEVAULT_TRUSTED_PROXY",
            help="The address (or network, e.g. 10.0.0.0/24) the proxy connects from; --trusted-header "
            "needs it, and the header from any other address is refused. Repeat for several.",
        ),
    ] = None,
    secure_cookies: Annotated[
        bool, typer.Option(help="Secure cookies over plain http too (behind a TLS-terminating proxy).")
    ] = False,
    session_hours: Annotated[float, typer.Option(min=0.05, help="Sign-in lasts this long.")] = 8.0,
) -> None:
    """The web review desk: review queue, style sets, indexes and runs, audit and reports."""
    import uvicorn

    cat = catalogue()
    config = from_environment(
        cat.store,
        trusted_header=trusted_header,
        trusted_proxies=tuple(trusted_proxy) if trusted_proxy else None,
        secure_cookies=secure_cookies or None,
        session_seconds=int(session_hours * 3600),
    )
    if not _loopback(host):
        err.print(f"stylevault: serving on {host}, reachable from other machines")
    if config.trusted_header:
        proxies = ", ".join(config.trusted_proxies)
        err.print(f"stylevault: trusting the {config.trusted_header} header from {proxies} only")
    out.print(f"stylevault review desk on http://{host}:{port}/ over {cat.safe_url}")
    # proxy_headers off: the request's address must be the peer's own, the one --trusted-proxy names,
    # never one an X-Forwarded-For header claims.
    uvicorn.run(create_app(cat, config), host=host, port=port, log_level="warning", proxy_headers=False)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
