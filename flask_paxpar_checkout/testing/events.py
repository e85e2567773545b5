"""Realistic, signed Stripe events for tests: re-exported from the package's event factory,
where the ``trigger`` command reads them too, so that shipped code never imports ``testing``."""

from __future__ import annotations

from ..event_factory import (
    ERAS,
    SUPPORTED_TYPES,
    Era,
    EventBuilder,
    encode,
    fixture,
    new_id,
    sign_payload,
    signed,
)

__all__ = [
    "ERAS",
    "SUPPORTED_TYPES",
    "Era",
    "EventBuilder",
    "encode",
    "fixture",
    "new_id",
    "sign_payload",
    "signed",
]
