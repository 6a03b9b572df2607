"""Which hook URLs Zapier may subscribe: https, an allowed host, and only public addresses.

The same address rules are enforced again at send time by the SSRF-safe HTTP client
(`requests-hardened`), because DNS can change between subscribing and sending.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from ..errors import ValidationFailed
from .models import HOOK_URL_MAX


def _reject(reason: str) -> ValidationFailed:
    return ValidationFailed("Invalid hookUrl", details={"hookUrl": [reason]})


def host_allowed(host: str, allowed_hosts: list[str]) -> bool:
    return "*" in allowed_hosts or host in allowed_hosts


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


def validate_hook_url(url: str, *, allowed_hosts: list[str], allow_private: bool) -> str:
    """Return the URL if Zapier may subscribe it; raise a 400 saying why not."""
    if len(url) > HOOK_URL_MAX:
        raise _reject(f"must be at most {HOOK_URL_MAX} characters")
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError:
        raise _reject("is not a valid URL") from None
    if parts.scheme != "https":
        raise _reject("must use https")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise _reject("must name a host")
    if parts.username or parts.password:
        raise _reject("must not carry credentials")
    if not host_allowed(host, allowed_hosts):
        raise _reject(f"host {host!r} is not allowed (allowed: {', '.join(allowed_hosts)})")
    addresses = resolve(host, port)
    if not addresses:
        raise _reject(f"host {host!r} does not resolve")
    if not allow_private:
        private = sorted({str(a) for a in addresses if not is_public(a)})
        if private:
            raise _reject(f"host {host!r} resolves to a non-public address ({', '.join(private)})")
    return url
