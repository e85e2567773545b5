"""The local Stripe under its first name: ``StripeStub`` is :class:`LocalStripe`.

Point the real ``stripe`` library at it::

    with StripeStub() as stub:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": stub.url})
"""

from __future__ import annotations

from ..local_stripe import LocalStripe, RecordedRequest, decode_form

StripeStub = LocalStripe

__all__ = ["RecordedRequest", "StripeStub", "decode_form"]
