"""The plugin's records of what Stripe holds: customers, Checkout Sessions and prices."""

from __future__ import annotations

from typing import Any

from .clock import utcnow
from .database import Transaction
from .events import object_id


class Customers:
    """Each user's one Stripe customer (the first one linked wins)."""

    def customer_of(self, tx: Transaction, user_id: str) -> str | None:
        return tx.scalar(tx.sql.customer_of, {"user_id": user_id})  # type: ignore[no-any-return]

    def user_of(self, tx: Transaction, customer_id: str) -> str | None:
        return tx.scalar(tx.sql.user_of_customer, {"customer_id": customer_id})  # type: ignore[no-any-return]

    def link(
        self, tx: Transaction, user_id: str, customer_id: str, email: str | None = None
    ) -> str:
        """Remember ``customer_id`` as the user's unless one is known; the stored one."""
        params = {
            "user_id": user_id,
            "stripe_customer_id": customer_id,
            "email": email,
            "created_at": utcnow(),
        }
        tx.execute(tx.sql.link_customer, params)
        return self.customer_of(tx, user_id) or customer_id


class CheckoutSessions:
    """The Checkout Sessions this instance created, and what became of them."""

    def add(
        self,
        tx: Transaction,
        *,
        id: str,
        user_id: str,
        mode: str,
        qty: int | None,
        price_id: str | None,
        customer_id: str | None,
        redirect_url: str,
    ) -> None:
        tx.execute(
            tx.sql.add_session,
            {
                "id": id,
                "user_id": user_id,
                "mode": mode,
                "qty": qty,
                "price_id": price_id,
                "customer_id": customer_id,
                "redirect_url": redirect_url,
                "status": "open",
                "subscription_id": None,
                "payment_intent_id": None,
                "created_at": utcnow(),
                "completed_at": None,
            },
        )

    def get(self, tx: Transaction, session_id: str) -> Any:
        return tx.first(tx.sql.session_by_id, {"id": session_id})

    def remember(
        self,
        tx: Transaction,
        session: dict[str, Any],
        *,
        user_id: str,
        qty: int | None,
        price_id: str | None,
    ) -> Any:
        """Store a completed session this instance did not create; its row."""
        tx.execute(
            tx.sql.add_session,
            {
                "id": session["id"],
                "user_id": user_id,
                "mode": session.get("mode"),
                "qty": qty,
                "price_id": price_id,
                "customer_id": object_id(session.get("customer")),
                "redirect_url": "",
                "status": "complete",
                "subscription_id": object_id(session.get("subscription")),
                "payment_intent_id": object_id(session.get("payment_intent")),
                "created_at": utcnow(),
                "completed_at": utcnow(),
            },
        )
        return self.get(tx, session["id"])

    def of_payment_intent(self, tx: Transaction, payment_intent_id: str) -> Any:
        return tx.first(tx.sql.session_by_payment_intent, {"payment_intent_id": payment_intent_id})

    def complete(
        self,
        tx: Transaction,
        session_id: str,
        *,
        subscription_id: str | None,
        payment_intent_id: str | None,
    ) -> Any:
        """Mark an open stored session complete; its row, or ``None`` if it is not stored or
        no longer open."""
        return tx.first(
            tx.sql.complete_session,
            {
                "session_id": session_id,
                "now": utcnow(),
                "new_subscription_id": subscription_id,
                "new_payment_intent_id": payment_intent_id,
            },
        )

    def end(self, tx: Transaction, session_id: str, status: str) -> None:
        """Mark an open stored session ``expired`` or ``failed`` (never after complete)."""
        tx.execute(tx.sql.end_session, {"session_id": session_id, "new_status": status})


class Prices:
    """Subscription prices looked up on Stripe once, with their credits per period."""

    def get(self, tx: Transaction, price_id: str) -> Any:
        return tx.first(tx.sql.price, {"id": price_id})

    def save(
        self, tx: Transaction, price_id: str, *, active: bool, recurring: bool, credits: int | None
    ) -> None:
        tx.execute(
            tx.sql.save_price,
            {
                "id": price_id,
                "active": active,
                "recurring": recurring,
                "credits": credits,
                "fetched_at": utcnow(),
            },
        )
