"""Helpers for testing a host app: signed Stripe events and the local Stripe.

Its pytest fixtures are in ``flask_paxpar_checkout.testing.pytest_plugin``.
"""

from __future__ import annotations

from ..local_stripe import CardDeclined, LocalStripe, LocalStripeError
from .events import ERAS, EventBuilder, encode, fixture, new_id, sign_payload, signed
from .local_stripe import TestStripe
from .stripe_stub import RecordedRequest, StripeStub

__all__ = [
    "ERAS",
    "CardDeclined",
    "EventBuilder",
    "LocalStripe",
    "LocalStripeError",
    "RecordedRequest",
    "StripeStub",
    "TestStripe",
    "encode",
    "fixture",
    "new_id",
    "sign_payload",
    "signed",
]
