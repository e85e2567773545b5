"""The built-in handlers of the supported event types.

Each works from its own event's data and the plugin's stored rows only (no Stripe API call
on the webhook path), and its effects are the same whatever order the events arrive in
(see ``ledger`` and ``subscriptions``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import signals
from .announce import announce_credits, announce_subscription
from .billing import CheckoutSessions, Customers, Prices
from .clock import as_utc, stripe_time
from .config import CheckoutConfig
from .database import Transaction
from .events import (
    USER_KEY,
    Event,
    instance_tags,
    invoice_line,
    invoice_subscription,
    object_id,
    subscription_price_and_period_end,
)
from .ledger import CreditLedger, Entry
from .purchases import Purchases
from .refunds import Refunds
from .subscriptions import News, Subscriptions, SubscriptionState

log = logging.getLogger("flask_paxpar_checkout")

BuiltinHandler = Callable[[Transaction, Event], None]
HANDLED_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "charge.refunded",
)
"""The event types the plugin handles itself: the webhook endpoint's enabled events."""


class BuiltinHandlers:
    """The plugin's own effects of each event type, given what they need when built."""

    def __init__(
        self,
        config: CheckoutConfig,
        *,
        ledger: CreditLedger,
        subscriptions: Subscriptions,
        customers: Customers,
        sessions: CheckoutSessions,
        prices: Prices,
        purchases: Purchases,
        refunds: Refunds,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.subscriptions = subscriptions
        self.customers = customers
        self.sessions = sessions
        self.prices = prices
        self.purchases = purchases
        self.refunds = refunds

    def by_type(self) -> dict[str, BuiltinHandler]:
        """The handler of each of ``HANDLED_TYPES``."""
        handlers: dict[str, BuiltinHandler] = {
            "checkout.session.completed": self.session_completed,
            "checkout.session.async_payment_succeeded": self.session_completed,
            "checkout.session.async_payment_failed": self.session_failed,
            "checkout.session.expired": self.session_expired,
            "invoice.paid": self.invoice_paid,
            "invoice.payment_failed": self.invoice_payment_failed,
            "customer.subscription.created": self.subscription_changed,
            "customer.subscription.updated": self.subscription_changed,
            "customer.subscription.deleted": self.subscription_changed,
            "charge.refunded": self.charge_refunded,
        }
        assert tuple(handlers) == HANDLED_TYPES
        return handlers

    def session_completed(self, tx: Transaction, event: Event) -> None:
        """Credits for a paid one-time purchase; the subscription of a subscription checkout."""
        self.purchases.fulfil(
            tx,
            event.object,
            completed_at=stripe_time(event.created),
            at=event.created,
            source=event.id,
        )

    def session_failed(self, tx: Transaction, event: Event) -> None:
        """A delayed payment failed: the stored session is marked failed, no credits."""
        self.sessions.end(tx, event.object["id"], "failed")

    def session_expired(self, tx: Transaction, event: Event) -> None:
        """The user never paid: the stored session is marked expired (credits untouched)."""
        self.sessions.end(tx, event.object["id"], "expired")

    def invoice_paid(self, tx: Transaction, event: Event) -> None:
        """The subscription is active up to the line's period end; credits are reset at the
        invoice's payment, unless it was paid once the subscription had ended."""
        invoice = event.object
        found = self._subscription_of(tx, invoice)
        if found is None:
            return
        sub_id, user_id = found
        price, period_end = invoice_line(invoice)
        news = News(
            at=event.created,
            source=event.id,
            status="active",
            price_id=price,
            current_period_end=period_end,
            customer_id=object_id(invoice.get("customer")),
        )
        state = self._apply(tx, sub_id, user_id, news)
        paid_at = _paid_at(invoice) or event.created
        ended = state.cancelled_since
        if ended is not None and paid_at >= ended:
            log.info("invoice %s was paid after %s ended: no reset", invoice["id"], sub_id)
            return
        self._reset_credits(tx, user_id, invoice["id"], sub_id, price or state.price_id, paid_at)

    def invoice_payment_failed(self, tx: Transaction, event: Event) -> None:
        """The subscription is past due; credits stay; the host is told by a signal."""
        invoice = event.object
        found = self._subscription_of(tx, invoice)
        if found is None:
            return
        sub_id, user_id = found
        news = News(
            at=event.created,
            source=event.id,
            status="past_due",
            customer_id=object_id(invoice.get("customer")),
        )
        if self._apply(tx, sub_id, user_id, news).status != "past_due":
            log.info("payment failure of invoice %s is older than the record", invoice["id"])
            return
        tx.after_commit(
            lambda: signals.send(
                signals.payment_failed, user_id=user_id, subscription_id=sub_id, invoice=invoice
            )
        )

    def subscription_changed(self, tx: Transaction, event: Event) -> None:
        """Follow Stripe's snapshot of a subscription: status, price, period end and
        cancellation; an ending takes back the resets of invoices paid after it."""
        sub = event.object
        user_id = self._user_of(tx, sub)
        if user_id is None:
            return
        deleted = event.type == "customer.subscription.deleted"
        price, period_end = subscription_price_and_period_end(sub)
        news = News(
            at=event.created,
            source=event.id,
            status="canceled" if deleted else sub.get("status"),
            price_id=price,
            current_period_end=period_end,
            customer_id=object_id(sub.get("customer")),
            snapshot=sub,
        )
        state = self._apply(tx, sub["id"], user_id, news)
        if state.ended:
            self._take_back_late_resets(tx, state)

    def charge_refunded(self, tx: Transaction, event: Event) -> None:
        """Take back a refunded purchase's credits in proportion (see ``refunds``)."""
        if self.config.credits_enabled:
            self.refunds.receive(tx, event.object, at=event.created)

    def _take_back_late_resets(self, tx: Transaction, state: SubscriptionState) -> None:
        """An ended subscription: resets of invoices paid at or after its end never were
        (whichever arrived first), and with ``credits_on_cancel = "zero"`` the balance is
        set to zero at its end."""
        ended = state.cancelled_since
        if ended is None or not self.config.credits_enabled:
            return
        resets = tx.execute(
            tx.sql.resets_of_subscription, {"user_id": state.user_id, "subscription_id": state.id}
        ).all()
        late = [r for r in resets if as_utc(r.effective_at) >= stripe_time(ended)]
        announce_credits(tx, self.ledger.remove(tx, state.user_id, late))
        if self.config.credits_on_cancel == "zero":
            entry = Entry(
                "subscription_canceled",
                0,
                stripe_time(ended),
                f"cancel:{state.id}",
                stripe_object_id=state.id,
                subscription_id=state.id,
            )
            announce_credits(tx, self.ledger.record(tx, state.user_id, entry))

    def _reset_credits(
        self,
        tx: Transaction,
        user_id: str,
        invoice_id: str,
        sub_id: str,
        price: str | None,
        paid_at: int,
    ) -> None:
        if not self.config.credits_enabled:
            return
        per_period = self.credits_per_period(tx, price)
        if per_period is None:
            log.warning(
                "No credits known for price %s: set PAXPAR_CHECKOUT_PRICES or the price's "
                "metadata 'credits'; credits of %s left as they are",
                price,
                user_id,
            )
            return
        entry = Entry(
            "subscription_reset",
            per_period,
            stripe_time(paid_at),
            f"reset:{invoice_id}",
            stripe_object_id=invoice_id,
            subscription_id=sub_id,
        )
        announce_credits(tx, self.ledger.record(tx, user_id, entry))

    def credits_per_period(self, tx: Transaction, price_id: str | None) -> int | None:
        """A plan's credits: the allow-list, else the price's metadata kept at checkout."""
        if price_id is None:
            return None
        if self.config.prices is not None:
            return self.config.prices.get(price_id)
        row = self.prices.get(tx, price_id)
        return row.credits if row is not None else None

    def _apply(self, tx: Transaction, sub_id: str, user_id: str, news: News) -> SubscriptionState:
        applied = self.subscriptions.apply(tx, sub_id, user_id, news)
        announce_subscription(tx, applied)
        return applied.state

    def _subscription_of(self, tx: Transaction, invoice: dict[str, Any]) -> tuple[str, str] | None:
        """The invoice's subscription and user; None for a one-off invoice or one naming
        nobody."""
        sub_id = invoice_subscription(invoice)
        user_id = self._user_of(tx, invoice)
        if sub_id is None or user_id is None:
            return None
        return sub_id, user_id

    def _user_of(self, tx: Transaction, obj: dict[str, Any]) -> str | None:
        user = instance_tags(obj).get(USER_KEY)
        if isinstance(user, str) and user:
            return user
        customer = object_id(obj.get("customer"))
        return self.customers.user_of(tx, customer) if customer else None


def _paid_at(invoice: dict[str, Any]) -> int | None:
    transitions = invoice.get("status_transitions")
    paid_at = transitions.get("paid_at") if isinstance(transitions, dict) else None
    return paid_at if isinstance(paid_at, int) and not isinstance(paid_at, bool) else None
