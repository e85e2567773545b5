"""Turning a ``redirect`` parameter into a safe absolute URL, or refusing it.

Browsers "fix" URLs generously (backslashes become slashes, tabs and newlines vanish,
``http:evil.com`` is read as ``http://evil.com``), so the rules are strict: a path on
this instance, or an http(s) URL whose host is this instance's or an allowed one.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import UnsafeRedirect

MAX_LENGTH = 2048


def resolve_redirect(value: str, *, public_url: str, allowed_hosts: frozenset[str]) -> str:
    """Return ``value`` as an absolute URL, or raise ``UnsafeRedirect`` saying why."""
    if not value:
        raise UnsafeRedirect("must not be empty")
    if len(value) > MAX_LENGTH:
        raise UnsafeRedirect(f"must be at most {MAX_LENGTH} characters")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        raise UnsafeRedirect("must not contain control characters")
    if "\\" in value:
        raise UnsafeRedirect("must not contain backslashes")
    if value != value.strip():
        raise UnsafeRedirect("must not start or end with spaces")

    if value.startswith("/"):
        if value.startswith("//"):
            raise UnsafeRedirect("a scheme-relative URL ('//host') is not allowed")
        return public_url + value

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise UnsafeRedirect("is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UnsafeRedirect("must be a path starting with '/' or an http(s) URL")
    if not value.lower().startswith(parts.scheme.lower() + "://") or not parts.netloc:
        raise UnsafeRedirect("an absolute URL must read 'https://host/...'")
    if "@" in parts.netloc:
        raise UnsafeRedirect("must not contain credentials ('user@host')")
    if not parts.netloc.isascii():
        raise UnsafeRedirect("the host must be ASCII (use its punycode form)")
    if not _host_allowed(parts.netloc.lower(), allowed_hosts):
        raise UnsafeRedirect(
            f"host {parts.netloc!r} is not this instance's nor in "
            "PAXPAR_CHECKOUT_ALLOWED_REDIRECT_HOSTS"
        )
    return value


def _host_allowed(netloc: str, allowed: frozenset[str]) -> bool:
    if netloc in allowed:
        return True
    host, _, port = netloc.rpartition(":")
    # "example.com" in the allow-list admits any port of it; "example.com:8443" only that one.
    return bool(port.isdigit() and host in allowed)
