"""A story of Stripe events for many users, and the state it implies, computed on its own.

``story()`` builds realistic timelines: credit purchases (paid, delayed then paid, expired,
never paid, the same session under two event ids) and subscriptions (checkout, invoices,
a failed renewal paid on retry, plan changes, cancellation and deletion), plus events of
another instance and untagged ones. Subscribers buy credits too, at times that cross their
invoices' resets. ``expected_state()`` takes each user's balance and subscription fields
from the reference model of convergence, and the rest (which events are processed, the
customers, the purchases) from a replay in Stripe's order; the plugin, fed the same events
duplicated and in any order, must end in that state.

The timelines keep to what Stripe sends: every status change is followed by a
``customer.subscription.updated`` carrying the whole subscription, creation times are
distinct within a subscription, and a plan change is followed by its invoice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from flask_paxpar_checkout.testing import EventBuilder, new_id
from flask_paxpar_checkout.testing.events import ERAS

from .convergence_model import converge

DAY = 86400


@dataclass
class SubscriptionModel:
    user_id: str
    customer_id: str | None = None
    price_id: str | None = None
    status: str = "incomplete"
    current_period_end: int | None = None
    cancel_at_period_end: bool = False
    cancel_at: int | None = None
    canceled_at: int | None = None


@dataclass
class Expected:
    """What the events imply, independently of the plugin."""

    credits: dict[str, int] = field(default_factory=dict)  # from the reference model
    purchases: dict[str, set[str]] = field(default_factory=dict)  # user -> paid session ids
    customers: dict[str, str] = field(default_factory=dict)  # user -> first Stripe customer
    subscriptions: dict[str, SubscriptionModel] = field(default_factory=dict)
    processed: set[str] = field(default_factory=set)  # event ids run by the handlers
    ignored: set[str] = field(default_factory=set)  # event ids answered "ignored"
    recorded_ignored: set[str] = field(default_factory=set)  # of those, the ones stored


@dataclass
class Story:
    events: list[dict[str, Any]]
    foreign: set[str]  # ids of events that this instance must ignore
    users: list[str]
    untagged: set[str]  # of those, the ones with no instance tag (stored as ignored)


def story(
    rng: random.Random,
    *,
    fqdn: str,
    prices: dict[str, int],
    buyers: int,
    subscribers: int,
    foreign: int,
    start: int,
) -> Story:
    """Events of ``buyers`` + ``subscribers`` users, and ``foreign`` events to ignore."""
    events: list[dict[str, Any]] = []
    users: list[str] = []
    for n in range(buyers):
        user = str(1000 + n)
        users.append(user)
        builder = EventBuilder(fqdn=fqdn, era=rng.choice(ERAS))
        events += _purchases(rng, builder, user, start + n * 7)
    for n in range(subscribers):
        user = str(2000 + n)
        users.append(user)
        builder = EventBuilder(fqdn=fqdn, era=rng.choice(ERAS))
        customer = new_id("cus")
        t = start + n * 11
        events += _subscription(rng, builder, user, prices, t, customer)
        # Bought around the subscription's resets (t + 1, t + 20, t + 31), one at the same
        # second as the first.
        events += _purchases(rng, builder, user, t + rng.choice([-5, 0, 1]), customer)
    others: set[str] = set()
    untagged: set[str] = set()
    for n in range(foreign):
        user = str(1000 + n % max(buyers, 1))
        if n % 2:
            builder = EventBuilder(fqdn="prod." + fqdn.partition(".")[2], era=rng.choice(ERAS))
            event = builder.checkout_session_completed(user_id=user, qty=rng.randint(1, 40))
        else:  # made in Stripe's dashboard: no instance tag at all
            builder = EventBuilder(fqdn=fqdn, era=rng.choice(ERAS))
            event = builder.invoice_paid(
                user_id=user,
                subscription_id=new_id("sub"),
                price_id=rng.choice(sorted(prices)),
                created=start + n,
                tagged=False,
            )
            untagged.add(event["id"])
        others.add(event["id"])
        events.append(event)
    return Story(events, others, users, untagged)


def _purchases(
    rng: random.Random, b: EventBuilder, user: str, t: int, customer: str | None = None
) -> list[dict[str, Any]]:
    customer = customer or new_id("cus")
    out: list[dict[str, Any]] = []

    def session(**kw: Any) -> dict[str, Any]:
        return b.checkout_session(user_id=user, customer_id=customer, qty=rng.randint(1, 50), **kw)

    for i in range(rng.randint(1, 3)):  # paid by card
        obj = session()
        out.append(b.event("checkout.session.completed", obj, created=t + i))
        if rng.random() < 0.3:  # the same session again under another event id
            out.append(b.event("checkout.session.completed", obj, created=t + i))
    if rng.random() < 0.6:  # a delayed method: completed unpaid, paid later
        obj = session(payment_status="unpaid")
        out.append(b.event("checkout.session.completed", obj, created=t + 10))
        paid = {**obj, "payment_status": "paid"}
        out.append(b.event("checkout.session.async_payment_succeeded", paid, created=t + 3000))
    if rng.random() < 0.5:  # left Checkout without paying
        obj = session(payment_status="unpaid", status="expired")
        out.append(b.event("checkout.session.expired", obj, created=t + 20))
    if rng.random() < 0.3:  # a delayed payment that never came
        obj = session(payment_status="unpaid")
        out.append(b.event("checkout.session.completed", obj, created=t + 30))
    return out


def _subscription(
    rng: random.Random,
    b: EventBuilder,
    user: str,
    prices: dict[str, int],
    t: int,
    customer: str,
) -> list[dict[str, Any]]:
    price = rng.choice(sorted(prices))
    sub = new_id("sub")
    out: list[dict[str, Any]] = []
    end = t + 30 * DAY

    def updated(at: int, **kw: Any) -> None:
        kw.setdefault("price_id", price)
        kw.setdefault("period_end", end)
        out.append(
            b.subscription_updated(
                created=at, user_id=user, subscription_id=sub, customer_id=customer, **kw
            )
        )

    def paid(at: int, invoice_created: int, **kw: Any) -> None:
        kw.setdefault("price_id", price)
        out.append(
            b.invoice_paid(
                event_created=at,
                created=invoice_created,
                user_id=user,
                subscription_id=sub,
                customer_id=customer,
                period_end=end,
                **kw,
            )
        )

    out.append(
        b.checkout_session_completed(
            created=t,
            user_id=user,
            mode="subscription",
            price_id=price,
            subscription_id=sub,
            customer_id=customer,
        )
    )
    paid(t + 1, t + 1)
    updated(t + 2, status="active")
    if rng.random() < 0.6:  # the renewal fails once, then is paid on Stripe's retry
        end += 30 * DAY
        renewal = new_id("in")
        out.append(
            b.invoice_payment_failed(
                event_created=t + 10,
                created=t + 10,
                invoice_id=renewal,
                user_id=user,
                subscription_id=sub,
                price_id=price,
                customer_id=customer,
                period_end=end,
            )
        )
        updated(t + 11, status="past_due")
        paid(t + 20, t + 10, invoice_id=renewal)
        updated(t + 21, status="active")
    if rng.random() < 0.5:  # a plan change, invoiced at once
        price = next(p for p in sorted(prices) if p != price)
        updated(t + 30, status="active")
        end += 30 * DAY
        paid(t + 31, t + 31)
        updated(t + 32, status="active")
    if rng.random() < 0.4:  # cancelled at period end, then deleted
        updated(t + 40, status="active", cancel_at_period_end=True, cancel_at=end)
        out.append(
            b.subscription_deleted(
                created=t + 50,
                user_id=user,
                subscription_id=sub,
                customer_id=customer,
                price_id=price,
                period_end=end,
                cancel_at=end,
                canceled_at=t + 50,
            )
        )
    return out


def expected_state(s: Story, *, prices: dict[str, int]) -> Expected:
    """Balances and subscription fields from the reference model; the rest from a replay in
    Stripe's order (credits are kept on cancellation, the default)."""
    exp = Expected()
    mine = [e for e in s.events if e["id"] not in s.foreign]
    for user in s.users:
        exp.purchases[user] = set()
        exp.credits[user] = converge(mine, user_id=user, prices=prices).balance
    ordered = sorted(s.events, key=lambda e: e["created"])  # stable: ties keep story order
    for event in ordered:
        if event["id"] in s.foreign:
            exp.ignored.add(event["id"])
            if event["id"] in s.untagged:
                exp.recorded_ignored.add(event["id"])
            continue
        exp.processed.add(event["id"])
        obj = event["data"]["object"]
        kind = event["type"]
        if kind.startswith("checkout.session."):
            _model_checkout(exp, kind, obj)
        elif kind.startswith("invoice."):
            _model_invoice(exp, obj)
        else:
            _model_subscription(exp, obj)
    for sub_id, sub in exp.subscriptions.items():
        fields = converge(_of_subscription(mine, sub_id), user_id=sub.user_id, prices=prices)
        assert fields.subscription is not None
        for name, value in fields.subscription.items():
            setattr(sub, name, value)
    return exp


def _of_subscription(events: list[dict[str, Any]], sub_id: str) -> list[dict[str, Any]]:
    """The events that speak of one subscription (its checkout, invoices, snapshots)."""
    out = []
    for event in events:
        obj = event["data"]["object"]
        ids = {obj.get("id"), obj.get("subscription")}
        if obj.get("object") == "invoice":
            ids.add(_invoice_tags(obj)[1])
        if sub_id in ids:
            out.append(event)
    return out


def _model_checkout(exp: Expected, kind: str, obj: dict[str, Any]) -> None:
    user = obj["metadata"]["paxpar_user_id"]
    if kind == "checkout.session.expired":
        return
    exp.customers.setdefault(user, obj["customer"])
    if obj["mode"] == "payment":
        if obj["payment_status"] == "paid":
            exp.purchases[user].add(obj["id"])
        return
    sub = exp.subscriptions.get(obj["subscription"])
    if sub is None:
        exp.subscriptions[obj["subscription"]] = SubscriptionModel(
            user_id=user,
            customer_id=obj["customer"],
            price_id=obj["metadata"]["paxpar_price_id"],
            status="active",
        )


def _model_invoice(exp: Expected, obj: dict[str, Any]) -> None:
    tags, sub_id = _invoice_tags(obj)
    user = tags["paxpar_user_id"]
    sub = exp.subscriptions.setdefault(sub_id, SubscriptionModel(user_id=user))
    sub.customer_id = sub.customer_id or obj["customer"]


def _model_subscription(exp: Expected, obj: dict[str, Any]) -> None:
    user = obj["metadata"]["paxpar_user_id"]
    sub = exp.subscriptions.setdefault(obj["id"], SubscriptionModel(user_id=user))
    sub.customer_id = sub.customer_id or obj["customer"]


def _invoice_tags(obj: dict[str, Any]) -> tuple[dict[str, str], str]:
    parent = obj.get("parent")
    if isinstance(parent, dict) and parent.get("subscription_details"):
        details = parent["subscription_details"]
        return details["metadata"], details["subscription"]
    return obj["subscription_details"]["metadata"], obj["subscription"]
