"""A rehearsal (``flask checkout sync --dry-run``): every transaction of the plugin becomes
a savepoint of one outer transaction that is rolled back at its end, and no signal is sent,
so that the effects can be measured and then undone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_rehearsing: ContextVar[bool] = ContextVar("paxpar_checkout_rehearsing", default=False)


def rehearsing() -> bool:
    """Whether the current context is a rehearsal whose writes will all be rolled back."""
    return _rehearsing.get()


@contextmanager
def rehearsal() -> Iterator[None]:
    """Mark the block as a rehearsal; the caller owns the outer transaction and rolls it back."""
    token = _rehearsing.set(True)
    try:
        yield
    finally:
        _rehearsing.reset(token)
