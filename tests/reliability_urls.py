"""Where a browser would go: a small model of the WHATWG URL parser's lenient steps.

Only what matters for open redirects: the scheme and the host a browser navigates to
when it follows ``Location: <value>`` from a page at ``base``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "file"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))


@dataclass(frozen=True)
class Target:
    """The scheme and host (lower-case, no port) a browser would go to; host None when the
    URL has none (``javascript:``, ``data:``) or is unparseable."""

    scheme: str
    host: str | None


def browser_target(location: str, base: str) -> Target:
    """Follow ``location`` from ``base`` the way a browser's URL parser would."""
    base_parts = urlsplit(base)
    base_scheme = base_parts.scheme.lower()
    base_host = (base_parts.hostname or "").lower()
    value = location.strip(_C0_OR_SPACE)
    value = value.replace("\t", "").replace("\n", "").replace("\r", "")
    match = _SCHEME.match(value)
    if match is None:
        return _relative(value, base_scheme, base_host)
    scheme = match.group(1).lower()
    rest = value[match.end() :]
    if scheme not in SPECIAL_SCHEMES:
        return Target(scheme, None)
    if scheme == base_scheme and not rest.startswith(("/", "\\")):
        return Target(scheme, base_host)  # "https:path" is relative to an https base
    return Target(scheme, _authority_host(rest.lstrip("/\\")))


def _relative(value: str, base_scheme: str, base_host: str) -> Target:
    if value[:2] in ("//", "\\\\", "/\\", "\\/"):
        return Target(base_scheme, _authority_host(value[2:].lstrip("/\\")))
    return Target(base_scheme, base_host)


def _authority_host(rest: str) -> str | None:
    end = len(rest)
    for stop in "/\\?#":
        index = rest.find(stop)
        if index != -1:
            end = min(end, index)
    authority = rest[:end]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    head, sep, port = host.rpartition(":")
    if sep and (port == "" or port.isdigit()):
        host = head
    host = unquote(host, errors="replace")
    host = unicodedata.normalize("NFKC", host).lower()
    # UTS #46 maps these full stops to "." before the DNS lookup
    for dot in ("\u3002", "\uff0e", "\uff61"):
        host = host.replace(dot, ".")
    host = host.rstrip(".")
    return host or None
