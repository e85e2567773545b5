"""The host's webhook handlers, held strongly, by event type."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from .events import KNOWN_EVENT_TYPES

Handler = Callable[[dict[str, Any]], None]


class UnknownEventType(UserWarning):
    """A handler was registered for an event type this release does not know."""


class HandlerRegistry:
    """Handlers registered with ``@checkout.webhook_handler(event_type)``."""

    def __init__(self) -> None:
        # Strong references: a registered handler can never silently vanish.
        self._handlers: dict[str, list[Handler]] = {}

    def add(self, event_type: str, handler: Handler, *, allow_unknown: bool = False) -> None:
        self.check(event_type, allow_unknown=allow_unknown)
        self._handlers.setdefault(event_type, []).append(handler)

    def check(self, event_type: str, *, allow_unknown: bool = False) -> None:
        """Refuse what is not an event type; warn of one this release does not know."""
        if not isinstance(event_type, str) or not event_type or " " in event_type:
            raise ValueError(f"not a Stripe event type: {event_type!r}")
        if event_type not in KNOWN_EVENT_TYPES and not allow_unknown:
            warnings.warn(
                f"{event_type!r} is not a Stripe event type this release knows: a typo? If "
                "Stripe added it since, register it with "
                f"webhook_handler({event_type!r}, allow_unknown=True).",
                UnknownEventType,
                stacklevel=4,
            )

    def types(self) -> set[str]:
        """The event types with a host handler."""
        return {event_type for event_type, chain in self._handlers.items() if chain}

    def handlers_of(self, event_type: str) -> list[Handler]:
        return self._handlers.get(event_type, [])
