"""A local Stripe for development and tests: stateful API, hosted Checkout and Billing Portal
pages, a test clock and webhook delivery with retries, on loopback, offline.

Standard library only (it never imports ``stripe``). Run it on its own with
``flask checkout local-stripe`` or ``python -m flask_paxpar_checkout.local_stripe``.
"""

from __future__ import annotations

from .billing import CardDeclined, LocalStripeError
from .delivery import Attempt, Delivery, sign
from .pages import BANNER
from .server import LocalStripe
from .wire import RecordedRequest, decode_form

__all__ = [
    "BANNER",
    "Attempt",
    "CardDeclined",
    "Delivery",
    "LocalStripe",
    "LocalStripeError",
    "RecordedRequest",
    "decode_form",
    "sign",
]
