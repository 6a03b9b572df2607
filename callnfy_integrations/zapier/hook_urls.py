"""Which hook URLs Zapier may subscribe: https, an allowed host, and only public addresses.

The same address rules are enforced again at send time by the SSRF-safe HTTP client
(`requests-hardened`), because DNS can change between subscribing and sending.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from urllib.parse import urlsplit

from ..errors import ValidationFailed
from .models import HOOK_URL_MAX


def _reject(reason: str) -> ValidationFailed:
    return ValidationFailed("Invalid hookUrl", details={"hookUrl": [reason]})


def host_allowed(host: str, allowed_hosts: list[str]) -> bool:
    return "*" in allowed_hosts or host in allowed_hosts


# IPv6 prefixes that carry an IPv4 address a translator or tunnel may turn back into a private one
# (NAT64, 6to4, the deprecated IPv4-compatible form): never a target, whatever IPv4 address they hold.
_TRANSLATED = tuple(ipaddress.ip_network(net) for net in ("64:ff9b::/96", "64:ff9b:1::/48", "2002::/16", "::/96"))


_PORT = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_ANY_HOST = r"[a-z0-9.\-]+|\[[0-9a-f:.]+\]"


def hook_url_pattern(allowed_hosts: list[str]) -> str:
    """The hook URLs this deployment accepts, as the document's `pattern` and as the check itself:
    https, an allowed host (lower case, as Zapier sends it), a port 1-65535, then printable ASCII.
    Whether the host resolves to a public address is the one rule left to the time of subscribing."""
    # Host names hold [a-z0-9.-]; escaping only the rest keeps the pattern valid ECMA-262 too (`\-` is not).
    named = "|".join(re.sub(r"([^a-z0-9-])", r"\\\1", h) for h in allowed_hosts)
    host = _ANY_HOST if "*" in allowed_hosts else named
    return rf"^https://({host})\.?(:{_PORT})?([/?#][!-~]*)?$"


def is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif any(address in net for net in _TRANSLATED):
            return False
    return address.is_global and not address.is_multicast


def _unsafe_character(url: str) -> bool:
    """Whitespace, control and invisible (format) characters, and lone surrogates. urlsplit silently
    drops tabs and newlines and strips leading spaces, so such a URL would be checked as one URL and
    stored (and sent) as another; CR/LF must never reach a request line either."""
    return any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in url)


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
    if _unsafe_character(url):
        raise _reject("must not contain whitespace or control characters")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise _reject("must name a host")
    if parts.username or parts.password:
        raise _reject("must not carry credentials")
    if not host_allowed(host, allowed_hosts):
        raise _reject(f"host {host!r} is not allowed (allowed: {', '.join(allowed_hosts)})")
    if not re.fullmatch(hook_url_pattern(allowed_hosts), url):
        raise _reject("must match the documented pattern (lower-case host, a port 1-65535, printable ASCII)")
    # One answer for "no address" and "a non-public address", and never the addresses themselves:
    # the error must not reveal which internal names exist or what they resolve to.
    addresses = resolve(host, port)
    if not addresses or not (allow_private or all(is_public(a) for a in addresses)):
        raise _reject(f"host {host!r} does not resolve, or resolves to a non-public address")
    return url
