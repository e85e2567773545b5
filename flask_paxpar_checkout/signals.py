"""Blinker signals for observers. Business logic belongs in ``webhook_handler``s: blinker
holds receivers weakly, a handler registry does not.

Every signal's sender is the Flask app. Domain signals are sent after the transaction that
made the change has committed, so an observer never sees an effect that was rolled back.
"""

from __future__ import annotations

from typing import Any

from blinker import Namespace, Signal
from flask import current_app

from .rehearsal import rehearsing

_signals = Namespace()

webhook_received = _signals.signal(
    "webhook-received",
    doc="A verified event arrived. Kwargs: ``event`` (the payload, a dict).",
)
webhook_processed = _signals.signal(
    "webhook-processed",
    doc="An event's handlers ran and committed. Kwargs: ``event``.",
)
webhook_ignored = _signals.signal(
    "webhook-ignored",
    doc="An event was answered 200 without effect. Kwargs: ``event``, ``reason`` (str).",
)
webhook_failed = _signals.signal(
    "webhook-failed",
    doc="A handler raised; effects rolled back, answered 500. Kwargs: ``event``, ``error``.",
)
checkout_session_created = _signals.signal(
    "checkout-session-created",
    doc="A Checkout Session was created. Kwargs: ``user_id``, ``session_id``, ``mode``.",
)
credits_changed = _signals.signal(
    "credits-changed",
    doc=(
        "A user's credit balance changed (deprecated credit system). Kwargs: ``user_id``, "
        "``before``, ``after`` (the balance before and after the ledger was folded), "
        "``reason`` ('purchase', 'subscription_reset', 'refund', 'spend', 'grant', "
        "'subscription_canceled'), ``stripe_object_id``."
    ),
)
subscription_changed = _signals.signal(
    "subscription-changed",
    doc="A subscription's record changed. Kwargs: ``user_id``, ``subscription`` "
    "(a ``SubscriptionState``).",
)
subscription_canceled = _signals.signal(
    "subscription-canceled",
    doc="A subscription ended. Kwargs: ``user_id``, ``subscription``.",
)
purchase_refunded = _signals.signal(
    "purchase-refunded",
    doc="A credit purchase was refunded, in full or in part, and its credits taken back in "
    "proportion. Kwargs: ``user_id``, ``session_id``, ``charge_id``, ``credits`` (taken back "
    "by this refund), ``amount_refunded`` (the charge's cumulative refunded amount).",
)
payment_failed = _signals.signal(
    "payment-failed",
    doc="A subscription invoice's payment failed; tell the user. Kwargs: ``user_id``, "
    "``subscription_id``, ``invoice`` (the invoice payload, a dict).",
)

__all__ = [
    "checkout_session_created",
    "credits_changed",
    "payment_failed",
    "purchase_refunded",
    "send",
    "subscription_canceled",
    "subscription_changed",
    "webhook_failed",
    "webhook_ignored",
    "webhook_processed",
    "webhook_received",
]


def send(signal: Signal, **kwargs: Any) -> None:
    """Send ``signal`` from the current app, if anything listens (never in a dry run)."""
    if signal.receivers and not rehearsing():
        signal.send(current_app._get_current_object(), **kwargs)  # type: ignore[attr-defined]
