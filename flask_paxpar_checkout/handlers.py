"""The built-in handlers of the supported event types.

Each works from its own event's data and the plugin's stored rows only (no Stripe API call
on the webhook path), and never lets an older event undo a newer one.
"""

from __future__ import annotations

import logging
from typing import Any

from . import signals
from .dispatch import Handler, defer
from .events import (
    QTY_KEY,
    USER_KEY,
    instance_tags,
    invoice_line,
    invoice_subscription,
    object_id,
    subscription_price_and_period_end,
)
from .state import CheckoutState, current_state
from .store import TERMINAL, CreditChange, subscription_state

log = logging.getLogger("flask_paxpar_checkout")


def on_checkout_session_completed(event: dict[str, Any]) -> None:
    """Credits for a paid one-time purchase; the subscription of a subscription checkout."""
    fulfil_checkout_session(event["data"]["object"], at=event["created"])


def on_checkout_session_expired(event: dict[str, Any]) -> None:
    """The user never paid: the stored session is marked expired (credits untouched)."""
    current_state().store.mark_session(event["data"]["object"]["id"], "expired")


def fulfil_checkout_session(obj: dict[str, Any], *, at: int) -> None:
    """Apply a completed session, once, whether it comes by webhook or by the return page."""
    state = current_state()
    store = state.store
    session_id: str = obj["id"]
    mode = obj.get("mode")
    sub_id = object_id(obj.get("subscription")) if mode == "subscription" else None
    completes = mode == "subscription" or (
        mode == "payment" and obj.get("payment_status") == "paid"
    )
    # An open stored session is marked complete by the statement that reads it.
    stored = store.mark_session(session_id, "complete", sub_id) if completes else None
    if stored is None:
        stored = store.checkout_session(session_id)
    tags = instance_tags(obj)
    user_id = stored.user_id if stored else (tags.get(USER_KEY) or obj.get("client_reference_id"))
    if not user_id:
        log.warning("Checkout Session %s names no user; nothing to fulfil", session_id)
        return
    customer = object_id(obj.get("customer"))
    if customer and (stored is None or stored.customer_id != customer):
        store.link_customer(user_id, customer)  # else linked when the session was made

    if mode == "payment":
        if not completes:
            return  # a delayed payment method: async_payment_succeeded will say when it is paid
        qty = stored.qty if stored else _int(tags.get(QTY_KEY))
        if qty and state.config.credits_enabled:
            announce(
                store.change_credits(
                    user_id,
                    reason="purchase",
                    delta=qty,
                    dedup_key=f"purchase:{session_id}",
                    stripe_object_id=session_id,
                )
            )
    elif mode == "subscription" and sub_id:
        price = stored.price_id if stored else tags.get("paxpar_price_id")
        paid = obj.get("payment_status") in ("paid", "no_payment_required")
        _start_subscription(state, sub_id, user_id, customer, price, paid, at)


def _start_subscription(
    state: CheckoutState,
    sub_id: str,
    user_id: str,
    customer: str | None,
    price: str | None,
    paid: bool,
    at: int,
) -> None:
    row = state.store.lock_subscription(sub_id, user_id)
    values: dict[str, Any] = {}
    if row.customer_id is None and customer:
        values["customer_id"] = customer
    if row.price_id is None and price:
        values["price_id"] = price
    if row.status_at == 0:  # first news of it: later events will say more
        values.update(status="active" if paid else "incomplete", status_at=at)
    _save_subscription(state, row, values)


def on_invoice_paid(event: dict[str, Any]) -> None:
    """A subscription is paid up to the invoice line's period end; credits are reset."""
    state = current_state()
    invoice = event["data"]["object"]
    found = _locked_subscription_of(state, invoice)
    if found is None:
        return
    row, user_id = found
    sub_id = row.id
    if _ended(row):
        log.info("invoice %s paid for ended subscription %s: no effect", invoice["id"], sub_id)
        return
    price, period_end = invoice_line(invoice)
    created = int(invoice.get("created") or event["created"])
    values: dict[str, Any] = {}
    customer = object_id(invoice.get("customer"))
    if row.customer_id is None and customer:
        values["customer_id"] = customer
    if row.last_paid_invoice_created is not None and created < row.last_paid_invoice_created:
        log.info("invoice %s is older than the last paid one: no effect", invoice["id"])
        _save_subscription(state, row, values)
        return
    values["last_paid_invoice_created"] = created
    if period_end and period_end > (row.current_period_end or 0):
        values["current_period_end"] = period_end
    if event["created"] >= row.status_at:
        values.update(status="active", status_at=event["created"])
        if price:
            values["price_id"] = price
    elif row.price_id is None and price:
        values["price_id"] = price  # a newer event changed the status, none said the price
    _save_subscription(state, row, values)

    per_period = credits_per_period(state, price or row.price_id)
    if not state.config.credits_enabled:
        return
    if per_period is None:
        log.warning(
            "No credits known for price %s: set PAXPAR_CHECKOUT_PRICES or the price's "
            "metadata 'credits'; credits of %s left as they are",
            price or row.price_id,
            user_id,
        )
        return
    announce(
        state.store.change_credits(
            user_id,
            reason="subscription_reset",
            target=per_period,
            dedup_key=f"reset:{invoice['id']}",
            stripe_object_id=invoice["id"],
        )
    )


def on_invoice_payment_failed(event: dict[str, Any]) -> None:
    """The subscription is past due; credits stay; the host is told by a signal."""
    state = current_state()
    invoice = event["data"]["object"]
    found = _locked_subscription_of(state, invoice)
    if found is None:
        return
    row, user_id = found
    sub_id = row.id
    created = int(invoice.get("created") or event["created"])
    stale = (
        _ended(row)
        or created < (row.last_paid_invoice_created or 0)
        or event["created"] < row.status_at
    )
    if stale:
        log.info("payment failure of invoice %s is older than the record: no effect", invoice["id"])
        return
    _save_subscription(state, row, {"status": "past_due", "status_at": event["created"]})
    defer(
        signals.payment_failed,
        user_id=user_id,
        subscription_id=sub_id,
        invoice=invoice,
    )


def on_subscription_updated(event: dict[str, Any]) -> None:
    """Follow Stripe's status, price, period end and cancellation of a subscription."""
    state = current_state()
    sub = event["data"]["object"]
    user_id = _user_of(state, sub)
    if user_id is None:
        return
    row = state.store.lock_subscription(sub["id"], user_id)
    if _ended(row) or event["created"] < row.status_at:
        log.info("event %s is older than subscription %s's record", event["id"], sub["id"])
        return
    status = "canceled" if event["type"] == "customer.subscription.deleted" else sub["status"]
    price, period_end = subscription_price_and_period_end(sub)
    values: dict[str, Any] = {
        "status": status,
        "status_at": event["created"],
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "cancel_at": sub.get("cancel_at"),
        "canceled_at": sub.get("canceled_at"),
    }
    if price:
        values["price_id"] = price  # credits follow it from the next paid invoice on
    if period_end:
        values["current_period_end"] = period_end
    customer = object_id(sub.get("customer"))
    if customer and row.customer_id is None:
        values["customer_id"] = customer
    state_after = _save_subscription(state, row, values)
    if status in TERMINAL:
        defer(signals.subscription_canceled, user_id=user_id, subscription=state_after)
        if state.config.credits_enabled and state.config.credits_on_cancel == "zero":
            announce(
                state.store.change_credits(
                    user_id,
                    reason="subscription_canceled",
                    target=0,
                    dedup_key=f"cancel:{sub['id']}",
                    stripe_object_id=sub["id"],
                )
            )


def credits_per_period(state: CheckoutState, price_id: str | None) -> int | None:
    """A plan's credits: the allow-list, else the price's metadata kept at checkout."""
    if price_id is None:
        return None
    if state.config.prices is not None:
        return state.config.prices.get(price_id)
    row = state.store.price(price_id)
    return row.credits if row is not None else None


def _ended(row: Any) -> bool:
    """A subscription known to have ended: no later event may revive it."""
    return row.status in TERMINAL and row.status_at > 0


def _locked_subscription_of(
    state: CheckoutState, invoice: dict[str, Any]
) -> tuple[Any, str] | None:
    """The invoice's subscription row (locked) and user; None for a one-off invoice or an
    invoice naming nobody."""
    sub_id = invoice_subscription(invoice)
    user_id = _user_of(state, invoice)
    if sub_id is None or user_id is None:
        return None
    return state.store.lock_subscription(sub_id, user_id), user_id


def _user_of(state: CheckoutState, obj: dict[str, Any]) -> str | None:
    user = instance_tags(obj).get(USER_KEY)
    if isinstance(user, str) and user:
        return user
    customer = object_id(obj.get("customer"))
    return state.store.user_of_customer(customer) if customer else None


def _save_subscription(state: CheckoutState, row: Any, values: dict[str, Any]) -> Any:
    if not values:
        return subscription_state(row._mapping)
    state.store.update_subscription(row.id, values)
    after = subscription_state({**row._mapping, **values})
    defer(signals.subscription_changed, user_id=after.user_id, subscription=after)
    return after


def announce(change: CreditChange | None) -> None:
    if change is not None:
        defer(
            signals.credits_changed,
            user_id=change.user_id,
            before=change.before,
            after=change.after,
            reason=change.reason,
            stripe_object_id=change.stripe_object_id,
        )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


BUILTIN_HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": on_checkout_session_completed,
    "checkout.session.async_payment_succeeded": on_checkout_session_completed,
    "checkout.session.expired": on_checkout_session_expired,
    "invoice.paid": on_invoice_paid,
    "invoice.payment_failed": on_invoice_payment_failed,
    "customer.subscription.updated": on_subscription_updated,
    "customer.subscription.deleted": on_subscription_updated,
}
