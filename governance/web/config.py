"""How the web desk is configured: the session secret, the trusted proxy and its header, cookie flags."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from stylevault.governance.errors import BadInput

SECRET_FILE = "web-secret.key"
SESSION_HOURS = 8


@dataclass(frozen=True)
class WebConfig:
    secret_key: bytes
    # A header (e.g. X-Forwarded-User) a company proxy sets to the signed-in actor; None: never read.
    trusted_header: str | None = None
    # The addresses (or networks) the proxy connects from: the header is believed from them only.
    trusted_proxies: tuple[str, ...] = ()
    # Secure cookies even over plain http (behind a TLS-terminating proxy); https requests always get them.
    secure_cookies: bool = False
    session_seconds: int = SESSION_HOURS * 3600
    # Sign-in attempts one name, and one client address, may make within the window before further
    # ones are refused outright (stylevault.governance.web.throttle); a success is not counted.
    signin_attempts: int = 5
    signin_client_attempts: int = 20
    signin_window_seconds: int = 15 * 60
    page_size: int = 50
    _proxies: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.trusted_header and not self.trusted_proxies:
            raise BadInput(
                f"--trusted-header {self.trusted_header}: give --trusted-proxy ADDR, the address your proxy "
                "connects from; the header is refused from anyone else"
            )
        object.__setattr__(self, "_proxies", tuple(_network(value) for value in self.trusted_proxies))

    def from_trusted_proxy(self, client: str | None) -> bool:
        """Whether a request's peer address is one of the trusted proxies."""
        try:
            address = ipaddress.ip_address(client or "")
        except ValueError:
            return False
        return any(address in network for network in self._proxies)


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise BadInput(f"--trusted-proxy: {value!r} is not an IP address or network") from None


def secret_key(store: Path) -> bytes:
    """STYLEVAULT_SECRET_KEY, else the key stored beside the catalogue, made on first use (mode 0600)."""
    configured = os.environ.get("STYLEVAULT_SECRET_KEY", "").strip()
    if configured:
        if len(configured) < 32:
            raise BadInput("STYLEVAULT_SECRET_KEY: use at least 32 characters")
        return configured.encode()
    path = Path(store) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another server made it first: use theirs
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    key = path.read_text().strip()
    if len(key) < 32:
        raise BadInput(f"{path}: the session secret is too short; delete it to make a new one")
    return key.encode()


def from_environment(store: Path, **overrides) -> WebConfig:
    """The configuration `serve` uses: environment variables, then the command's options."""
    header = os.environ.get("STYLEVAULT_TRUSTED_HEADER", "").strip() or None
    proxies = tuple(p for p in os.environ.get("STYLEVAULT_TRUSTED_PROXY", "").replace(",", " ").split())
    secure = os.environ.get("STYLEVAULT_SECURE_COOKIES", "").strip() in ("1", "true", "yes")
    values = {
        "secret_key": secret_key(store),
        "trusted_header": header,
        "trusted_proxies": proxies,
        "secure_cookies": secure,
    }
    values.update({key: value for key, value in overrides.items() if value is not None})
    return WebConfig(**values)
