"""Helpers for testing a host app: signed Stripe events and a local Stripe API server."""

from __future__ import annotations

from .events import ERAS, EventBuilder, encode, fixture, new_id, sign_payload, signed
from .stripe_stub import RecordedRequest, StripeStub

__all__ = [
    "ERAS",
    "EventBuilder",
    "RecordedRequest",
    "StripeStub",
    "encode",
    "fixture",
    "new_id",
    "sign_payload",
    "signed",
]
