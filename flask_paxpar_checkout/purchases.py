"""Fulfilling a completed Checkout Session, once, whether the webhook or the return page
brings it: a purchase's credits, or a subscription's start."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from .announce import announce_credits, announce_subscription
from .billing import CheckoutSessions, Customers
from .clock import utcnow
from .config import CheckoutConfig
from .database import Database, Transaction
from .events import PRICE_KEY, QTY_KEY, USER_KEY, instance_tags, object_id
from .ledger import CreditLedger, Entry
from .refunds import Refunds
from .subscriptions import News, Subscriptions

log = logging.getLogger("flask_paxpar_checkout")


class Purchases:
    """Completed Checkout Sessions turned into credits or a subscription."""

    def __init__(
        self,
        config: CheckoutConfig,
        database: Database,
        sessions: CheckoutSessions,
        customers: Customers,
        ledger: CreditLedger,
        subscriptions: Subscriptions,
        refunds: Refunds,
    ) -> None:
        self.config = config
        self.database = database
        self.sessions = sessions
        self.customers = customers
        self.ledger = ledger
        self.subscriptions = subscriptions
        self.refunds = refunds

    def fulfil_return(self, session: dict[str, Any]) -> None:
        """The return page's news of a session, in a transaction of its own: the purchase
        takes effect now until the webhook's completion time replaces it."""
        with self.database.transaction() as tx:
            at = int(session.get("created") or 0)
            self.fulfil(
                tx, session, completed_at=utcnow(), at=at, source=session["id"], provisional=True
            )

    def fulfil(
        self,
        tx: Transaction,
        session: dict[str, Any],
        *,
        completed_at: datetime,
        at: int,
        source: str,
        provisional: bool = False,
    ) -> None:
        """Apply a completed session: credits once per session, a subscription's start as
        news at ``at`` from ``source``."""
        session_id: str = session["id"]
        mode = session.get("mode")
        sub_id = object_id(session.get("subscription")) if mode == "subscription" else None
        paid = session.get("payment_status") in ("paid", "no_payment_required")
        completes = mode == "subscription" or (mode == "payment" and paid)
        payment_intent = object_id(session.get("payment_intent"))
        stored = None
        if completes:
            stored = self.sessions.complete(
                tx, session_id, subscription_id=sub_id, payment_intent_id=payment_intent
            )
        if stored is None:
            stored = self.sessions.get(tx, session_id)
        tags = instance_tags(session)
        user_id = (
            stored.user_id if stored else (tags.get(USER_KEY) or session.get("client_reference_id"))
        )
        if not user_id:
            log.warning("Checkout Session %s names no user; nothing to fulfil", session_id)
            return
        customer = object_id(session.get("customer"))
        if customer and (stored is None or stored.customer_id != customer):
            self.customers.link(tx, user_id, customer)
        if stored is None and completes:
            # Made elsewhere (another process, by hand): remembered, so a refund finds it.
            stored = self.sessions.remember(
                tx,
                session,
                user_id=user_id,
                qty=_int(tags.get(QTY_KEY)),
                price_id=tags.get(PRICE_KEY),
            )
        if mode == "payment" and completes and stored is not None:
            self._credit(tx, stored, completed_at, provisional)
        elif mode == "subscription" and sub_id:
            price = stored.price_id if stored else None
            news = News(
                at=at,
                source=source,
                status="active" if paid else "incomplete",
                price_id=price,
                customer_id=customer,
            )
            announce_subscription(tx, self.subscriptions.apply(tx, sub_id, user_id, news))

    def _credit(self, tx: Transaction, purchase: Any, at: datetime, provisional: bool) -> None:
        if not purchase.qty or not self.config.credits_enabled:
            return
        session_id = purchase.id
        entry = Entry(
            "purchase",
            purchase.qty,
            at,
            f"purchase:{session_id}",
            stripe_object_id=session_id,
            provisional=provisional,
        )
        announce_credits(tx, self.ledger.record(tx, purchase.user_id, entry))
        # A refund may have come first: it waited for this purchase.
        if purchase.payment_intent_id and getattr(purchase, "refunded", True):
            self.refunds.apply_to_purchase(tx, purchase)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None
