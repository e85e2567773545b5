"""A subscription's life after Checkout: the Billing Portal's cancel and plan switch, a saved
card that fails, and the test clock that renews every live subscription one period on."""

from __future__ import annotations

import copy
from typing import Any

from .billing import (
    DECLINED_CARD,
    FAILING_CARD,
    LIVE_STATUSES,
    Billing,
    LocalStripeError,
    normalize_card,
)
from .objects import period_seconds

__all__ = ["Lifecycle"]


class Lifecycle(Billing):
    """Portal actions and the test clock, each followed by Stripe's events."""

    def _live_subscription(self, sub_id: str) -> dict[str, Any]:
        sub = self._subscriptions.get(sub_id)
        if sub is None:
            raise LocalStripeError(f"No such subscription: {sub_id!r}")
        if sub["status"] not in LIVE_STATUSES:
            raise LocalStripeError(f"Subscription {sub_id} is {sub['status']}")
        return sub

    def _updated(self, sub: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
        previous = {k: v for k, v in before.items() if sub.get(k) != v}
        return self._event("customer.subscription.updated", sub, previous_attributes=previous)

    def cancel_at_period_end(self, sub_id: str, *, wait: bool = True) -> dict[str, Any]:
        """The portal's "Cancel plan": active until the period ends, then canceled."""
        with self._lock:
            sub = self._live_subscription(sub_id)
            before = copy.deepcopy(sub)
            sub.update(
                cancel_at_period_end=True,
                cancel_at=self._period(sub)[1],
                canceled_at=self.now(),
                cancellation_details={
                    "comment": None,
                    "feedback": None,
                    "reason": "cancellation_requested",
                },
            )
            events = [self._updated(sub, before)]
            result = copy.deepcopy(sub)
        self._send(events, wait=wait)
        return result

    def cancel_now(self, sub_id: str, *, wait: bool = True) -> dict[str, Any]:
        """Cancel at once: the subscription ends now (``customer.subscription.deleted``)."""
        with self._lock:
            sub = self._live_subscription(sub_id)
            events = [self._end(sub)]
            result = copy.deepcopy(sub)
        self._send(events, wait=wait)
        return result

    def _end(self, sub: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        sub.update(status="canceled", canceled_at=sub.get("canceled_at") or now, ended_at=now)
        return self._event("customer.subscription.deleted", sub)

    def switch_plan(self, sub_id: str, price_id: str, *, wait: bool = True) -> dict[str, Any]:
        """The portal's "Update plan": the subscription's item moves to ``price_id``."""
        with self._lock:
            sub = self._live_subscription(sub_id)
            price = self._prices.get(price_id)
            if price is None or not price.get("recurring") or not price.get("active"):
                raise LocalStripeError(f"{price_id!r} is not an active recurring price")
            before = copy.deepcopy(sub)
            start, end = self._period(sub)
            item = sub["items"]["data"][0]
            fresh = self.shapes.subscription_item(sub_id, price, item["quantity"], start, end)
            fresh["id"] = item["id"]
            sub["items"]["data"][0] = fresh
            if not self.new_era:
                sub["plan"] = fresh["plan"]
            events = [self._updated(sub, {"items": before["items"]})]
            result = copy.deepcopy(sub)
        self._send(events, wait=wait)
        return result

    def set_card(self, customer_or_sub: str, card: str) -> None:
        """Save ``card`` as the customer's (or the subscription's customer's) payment method;
        ``4000 0000 0000 0341`` is saved and then fails every renewal."""
        digits = normalize_card(card)
        if digits == DECLINED_CARD:
            raise LocalStripeError("Your card was declined.")
        with self._lock:
            customer = customer_or_sub
            if customer_or_sub in self._subscriptions:
                customer = self._subscriptions[customer_or_sub]["customer"]
            if customer not in self._customers and customer not in self._cards:
                raise LocalStripeError(f"No such customer or subscription: {customer_or_sub!r}")
            self._cards[customer] = digits

    # -- the test clock --------------------------------------------------------------------

    def advance_clock(self, seconds: int | None = None, *, wait: bool = True) -> int:
        """Move the clock on ``seconds`` (default: one billing period of the subscriptions)
        and renew every live subscription whose period has ended, as a test clock does:
        ``invoice.paid``, or ``invoice.payment_failed`` for a card set to fail; one canceled
        at period end ends instead. Returns the new time."""
        if seconds is not None and seconds <= 0:
            raise LocalStripeError("the clock only moves forward: seconds must be > 0")
        with self._lock:
            live = [s for s in self._subscriptions.values() if s["status"] in LIVE_STATUSES]
            if seconds is None:
                seconds = min((self._length(s) for s in live), default=30 * 86400)
            self.clock_offset += seconds
            events: list[dict[str, Any]] = []
            for sub in live:
                while sub["status"] in LIVE_STATUSES and self._period(sub)[1] <= self.now():
                    events += self._renew(sub)
            now = self.now()
        self._send(events, wait=wait)
        return now

    def _length(self, sub: dict[str, Any]) -> int:
        items = sub["items"]["data"]
        return period_seconds(items[0]["price"].get("recurring") if items else None)

    def _renew(self, sub: dict[str, Any]) -> list[dict[str, Any]]:
        _, end = self._period(sub)
        if sub.get("cancel_at_period_end"):
            return [self._end(sub)]
        before = copy.deepcopy(sub)
        start, new_end = end, end + self._length(sub)
        self.shapes.set_period(sub, start, new_end)
        paid = self._cards.get(sub["customer"]) != FAILING_CARD
        invoice = self.shapes.invoice(
            sub,
            created=start,
            start=start,
            end=new_end,
            paid=paid,
            billing_reason="subscription_cycle",
        )
        self._invoices[invoice["id"]] = invoice
        sub["latest_invoice"] = invoice["id"]
        if paid:
            sub["status"] = "active"
            return [self._updated(sub, before), self._event("invoice.paid", invoice)]
        sub["status"] = "past_due"
        failed = self._event("invoice.payment_failed", invoice)
        return [failed, self._updated(sub, before)]
