"""Refunds of credit purchases: the credits taken back in proportion to what was refunded.

A charge names its payment intent only, and each ``charge.refunded`` event carries the
charge's cumulative ``amount_refunded``. Every level seen is kept; the credits taken back
for a charge are ``floor(qty * amount_refunded / amount)`` of its highest level, each
refund taking its share at its own time. A refund of a purchase not known (yet) waits,
without effect, until the purchase's completion arrives.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Any

from . import signals
from .announce import announce_credits
from .billing import CheckoutSessions
from .clock import stripe_time, utcnow
from .database import Transaction
from .events import object_id
from .ledger import CreditLedger, Entry

log = logging.getLogger("flask_paxpar_checkout")


class Refunds:
    """Receives refunded charges and applies them to the purchases they refund."""

    def __init__(self, ledger: CreditLedger, sessions: CheckoutSessions) -> None:
        self.ledger = ledger
        self.sessions = sessions

    def receive(self, tx: Transaction, charge: dict[str, Any], *, at: int) -> None:
        """Keep this refund level of ``charge`` and apply it if its purchase is known."""
        charge_id = charge.get("id")
        payment_intent = object_id(charge.get("payment_intent"))
        amount, refunded = charge.get("amount"), charge.get("amount_refunded")
        if not (
            isinstance(charge_id, str)
            and payment_intent
            and _positive(amount)
            and _positive(refunded)
        ):
            log.info("charge %s: no refunded payment intent to apply", charge_id)
            return
        tx.execute(
            tx.sql.add_refund,
            {
                "charge_id": charge_id,
                "amount_refunded": refunded,
                "payment_intent_id": payment_intent,
                "amount": amount,
                "refunded_at": at,
                "received_at": utcnow(),
            },
        )
        purchase = self.sessions.of_payment_intent(tx, payment_intent)
        if purchase is None:
            log.info("refund of %s kept unmatched: no purchase known for it yet", payment_intent)
            return
        self.apply(tx, purchase, charge_id)

    def prune_unmatched(self, tx: Transaction, cutoff: datetime) -> int:
        """Forget refunds received before ``cutoff`` whose purchase never became known
        (another instance's, most likely)."""
        return int(tx.execute(tx.sql.prune_unmatched_refunds, {"cutoff": cutoff}).rowcount)

    def apply_to_purchase(self, tx: Transaction, purchase: Any) -> None:
        """Apply the refunds already received for a purchase that has just been completed."""
        charges = tx.execute(
            tx.sql.charges_of_payment_intent, {"payment_intent_id": purchase.payment_intent_id}
        ).scalars()
        for charge_id in list(charges):
            self.apply(tx, purchase, charge_id)

    def apply(self, tx: Transaction, purchase: Any, charge_id: str) -> None:
        """Give each refund level of the charge its share of the purchase's credits."""
        if purchase.mode != "payment" or not purchase.qty:
            return
        levels = tx.execute(tx.sql.refund_levels, {"charge_id": charge_id}).all()
        taken = 0
        for level in levels:
            total = purchase.qty * min(level.amount_refunded, level.amount) // level.amount
            share, taken = total - taken, total
            entry = Entry(
                "refund",
                -share,
                stripe_time(level.refunded_at),
                f"refund:{charge_id}:{level.amount_refunded}",
                stripe_object_id=charge_id,
            )
            change = self.ledger.record(tx, purchase.user_id, entry)
            if change is not None:
                announce_credits(tx, change)
                refunded = {
                    "user_id": purchase.user_id,
                    "session_id": purchase.id,
                    "charge_id": charge_id,
                    "credits": share,
                    "amount_refunded": level.amount_refunded,
                }
                tx.after_commit(partial(signals.send, signals.purchase_refunded, **refunded))


def _positive(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
