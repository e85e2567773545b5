"""One user's history where everything crosses: a subscription (start, renewals, a failed
renewal and its recovery, a plan change, cancellation at period end or at once with a final
invoice) and credit purchases between and across its renewals, some refunded in full, in
part or twice.

``Plan`` holds the choices, so that hypothesis (``plans()``) or a seeded ``random.Random``
(``random_plan``) can make them; ``history`` turns a plan into Stripe's events, in Stripe's
order, as Stripe would send them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

from hypothesis import strategies as st

from flask_paxpar_checkout.testing import EventBuilder, new_id
from flask_paxpar_checkout.testing.events import ERAS, Era

DAY = 86400
PERIOD = 30 * DAY
PurchaseKind = Literal["card", "delayed", "delayed_failed"]
Ending = Literal["none", "period_end", "now"]
# After a renewal: at the same second (a tie with its reset), just after, later that day,
# before a recovered renewal's payment or a plan change, late in the period, after its end.
OFFSETS = (0, 1, 7200, 2 * DAY, 20 * DAY, 35 * DAY)


@dataclass(frozen=True)
class Purchase:
    slot: int  # the renewal it follows
    offset: int
    qty: int
    kind: PurchaseKind
    refunds: tuple[int, ...]  # cumulative refunded amounts, in cents, in Stripe's order


@dataclass(frozen=True)
class Plan:
    era: Era
    renewals: int  # after the first invoice
    failed_renewal: int | None  # fails first, is paid on Stripe's retry three days later
    plan_change: int | None  # the switch to the other plan, five days after that renewal
    ending: Ending
    purchases: tuple[Purchase, ...] = field(default=())


@dataclass(frozen=True)
class History:
    user_id: str
    events: list[dict[str, Any]]  # in Stripe's order


def amount_of(qty: int) -> int:
    """A purchase's charge in cents: not a multiple of its quantity, so refunds round."""
    return 100 * qty + 37


@st.composite
def purchases(draw: st.DrawFn, renewals: int) -> Purchase:
    qty = draw(st.integers(1, 60))
    amount = amount_of(qty)
    kinds: list[PurchaseKind] = ["card", "card", "delayed", "delayed_failed"]
    kind = draw(st.sampled_from(kinds))
    partial = st.integers(1, amount - 1)
    refunds: tuple[int, ...] = ()
    if kind != "delayed_failed":
        pattern = draw(st.sampled_from(["none", "full", "partial", "partial+full", "twice"]))
        if pattern == "full":
            refunds = (amount,)
        elif pattern == "partial":
            refunds = (draw(partial),)
        elif pattern == "partial+full":
            refunds = (draw(partial), amount)
        elif pattern == "twice":
            refunds = tuple(sorted(draw(st.sets(partial, min_size=2, max_size=2))))
    return Purchase(
        slot=draw(st.integers(0, renewals)),
        offset=draw(st.sampled_from(OFFSETS)),
        qty=qty,
        kind=kind,
        refunds=refunds,
    )


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    renewals = draw(st.integers(1, 3))
    maybe_renewal = st.none() | st.integers(1, renewals)
    return Plan(
        era=draw(st.sampled_from(ERAS)),
        renewals=renewals,
        failed_renewal=draw(maybe_renewal),
        plan_change=draw(st.none() | st.integers(0, renewals)),
        ending=draw(st.sampled_from(["none", "period_end", "now"])),
        purchases=tuple(draw(st.lists(purchases(renewals), min_size=1, max_size=4))),
    )


def random_plan(rng: random.Random) -> Plan:
    """A plan of the same kinds as ``plans()``, from a seeded generator."""
    renewals = rng.randint(1, 3)
    bought: list[Purchase] = []
    for _ in range(rng.randint(1, 3)):
        qty = rng.randint(1, 60)
        amount = amount_of(qty)
        kind: PurchaseKind = rng.choice(["card", "card", "delayed", "delayed_failed"])
        partial = rng.randint(1, amount - 1)
        pattern = rng.choice([(), (amount,), (partial,), (partial, amount)])
        refunds = () if kind == "delayed_failed" else pattern
        offset = rng.choice(OFFSETS)
        bought.append(Purchase(rng.randint(0, renewals), offset, qty, kind, refunds))
    return Plan(
        era=rng.choice(ERAS),
        renewals=renewals,
        failed_renewal=rng.choice([None, rng.randint(1, renewals)]),
        plan_change=rng.choice([None, rng.randint(0, renewals)]),
        ending=rng.choice(["none", "period_end", "now"]),
        purchases=tuple(bought),
    )


def history(plan: Plan, *, fqdn: str, user_id: str, prices: tuple[str, str], start: int) -> History:
    """Stripe's events for ``plan``, the first invoice paid at ``start``."""
    b = EventBuilder(fqdn=fqdn, era=plan.era)
    sub = _Subscription(b, user_id, prices[0], prices[1])
    sub.begin(start)
    for k in range(plan.renewals + 1):
        sub.renew(start + k * PERIOD, failed_first=k == plan.failed_renewal)
        if k == plan.plan_change:
            sub.change_plan(start + k * PERIOD + 5 * DAY)
    last = start + plan.renewals * PERIOD
    if plan.ending == "period_end":
        sub.cancel_at_period_end(last + 10 * DAY)
    elif plan.ending == "now":
        sub.cancel_now(last + 12 * DAY)
    events = sub.events
    for p in plan.purchases:
        events += _purchase(b, user_id, p, start + p.slot * PERIOD + p.offset, sub.customer)
    # Another instance's refund, or one whose purchase never reached this instance: no effect.
    events.append(
        b.charge_refunded(
            created=start + DAY, payment_intent=new_id("pi"), amount=1037, amount_refunded=500
        )
    )
    events.sort(key=lambda e: e["created"])  # stable: ties keep the order they were made in
    return History(user_id, events)


class _Subscription:
    """Builds one subscription's events; ``events`` in the order they were made."""

    def __init__(self, b: EventBuilder, user_id: str, price: str, other_price: str) -> None:
        self.b, self.user_id = b, user_id
        self.price, self.other_price = price, other_price
        self.id, self.customer = new_id("sub"), new_id("cus")
        self.period_end = 0
        self.renewed = False
        self.events: list[dict[str, Any]] = []

    def begin(self, at: int) -> None:
        self.events.append(
            self.b.checkout_session_completed(
                created=at - 100,
                user_id=self.user_id,
                mode="subscription",
                price_id=self.price,
                subscription_id=self.id,
                customer_id=self.customer,
            )
        )

    def snapshot(self, at: int, **kw: Any) -> None:
        kw.setdefault("status", "active")
        kind = (
            self.b.subscription_deleted
            if kw["status"] == "canceled"
            else self.b.subscription_updated
        )
        self.events.append(
            kind(
                created=at,
                user_id=self.user_id,
                subscription_id=self.id,
                customer_id=self.customer,
                price_id=self.price,
                period_end=self.period_end,
                **kw,
            )
        )

    def paid(
        self, invoice_id: str, created: int, at: int, *, period_end: int, stamped: bool = True
    ) -> None:
        """``invoice.paid``, paid at ``at`` and its event made a second later; unless
        ``stamped``, without ``status_transitions.paid_at`` (its reset then takes the event's
        time, ``at``)."""
        self.events.append(
            self.b.invoice_paid(
                event_created=at + 1 if stamped else at,
                created=created,
                paid_at=at if stamped else None,
                invoice_id=invoice_id,
                user_id=self.user_id,
                subscription_id=self.id,
                customer_id=self.customer,
                price_id=self.price,
                period_end=period_end,
            )
        )

    def renew(self, at: int, *, failed_first: bool) -> None:
        """A new period's invoice; a failed one is retried and paid three days later. The
        first one carries no ``paid_at``."""
        invoice = new_id("in")
        self.period_end = at + PERIOD
        if not failed_first:
            self.paid(invoice, at, at, period_end=self.period_end, stamped=self.renewed)
            self.snapshot(at + 2)
            self.renewed = True
            return
        self.events.append(
            self.b.invoice_payment_failed(
                event_created=at,
                created=at,
                invoice_id=invoice,
                user_id=self.user_id,
                subscription_id=self.id,
                customer_id=self.customer,
                price_id=self.price,
                period_end=self.period_end,
            )
        )
        self.snapshot(at + 2, status="past_due")
        self.paid(invoice, at, at + 3 * DAY, period_end=self.period_end)
        self.snapshot(at + 3 * DAY + 2)
        self.renewed = True

    def change_plan(self, at: int) -> None:
        """The switch to the other plan, invoiced at once (a proration, paid)."""
        self.price, self.other_price = self.other_price, self.price
        self.snapshot(at)
        self.paid(new_id("in"), at + 1, at + 1, period_end=self.period_end)

    def cancel_at_period_end(self, at: int) -> None:
        """Asked at ``at``; Stripe deletes the subscription when the period ends."""
        end = self.period_end
        self.snapshot(at, cancel_at_period_end=True, cancel_at=end, canceled_at=at)
        self.snapshot(
            end,
            status="canceled",
            cancel_at_period_end=True,
            cancel_at=end,
            canceled_at=at,
            ended_at=end,
        )

    def cancel_now(self, at: int) -> None:
        """Deleted at once; its final invoice (prorations) is paid a few seconds later."""
        self.snapshot(at, status="canceled", canceled_at=at, ended_at=at)
        self.paid(new_id("in"), at + 2, at + 3, period_end=at)


def _purchase(
    b: EventBuilder, user_id: str, p: Purchase, at: int, customer: str
) -> list[dict[str, Any]]:
    """A credit purchase completed at ``at`` (a delayed one settles two days later) and its
    refunds, a day apart, each ``charge.refunded`` with the cumulative amount."""
    intent = new_id("pi")
    obj = b.checkout_session(
        user_id=user_id,
        qty=p.qty,
        customer_id=customer,
        payment_intent=intent,
        payment_status="paid" if p.kind == "card" else "unpaid",
    )
    out = [b.event("checkout.session.completed", obj, created=at)]
    paid_at = at
    if p.kind != "card":
        paid_at = at + 2 * DAY
        out.append(
            b.checkout_session_async(
                succeeded=p.kind == "delayed",
                created=paid_at,
                user_id=user_id,
                qty=p.qty,
                customer_id=customer,
                payment_intent=intent,
                session_id=obj["id"],
            )
        )
    charge = new_id("ch")
    for n, refunded in enumerate(p.refunds, start=1):
        out.append(
            b.charge_refunded(
                created=paid_at + n * DAY,
                charge_id=charge,
                payment_intent=intent,
                customer_id=customer,
                amount=amount_of(p.qty),
                amount_refunded=refunded,
            )
        )
    return out


def in_effect_order(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events in the order their effects take place: a paid invoice at its ``paid_at``
    and before anything else of the same second, the rest at their ``created``."""

    def effect(event: dict[str, Any]) -> tuple[int, int, int]:
        obj = event["data"]["object"]
        if event["type"] != "invoice.paid":
            return (event["created"], 1, event["created"])
        paid_at = (obj.get("status_transitions") or {}).get("paid_at")
        return (event["created"] if paid_at is None else paid_at, 0, event["created"])

    return sorted(events, key=effect)


def describe(event: dict[str, Any]) -> str:
    """One line for a failure's report: time, type, object and what matters of it."""
    obj = event["data"]["object"]
    facts = [str(event["created"]), event["type"], obj["id"]]
    if obj.get("object") == "checkout.session" and obj.get("mode") == "payment":
        facts += [f"qty={obj['metadata'].get('paxpar_qty')}", str(obj.get("payment_status"))]
    elif obj.get("object") == "charge":
        facts += [f"refunded={obj['amount_refunded']}/{obj['amount']}", obj["payment_intent"]]
    elif obj.get("object") == "invoice":
        facts.append(f"paid_at={(obj.get('status_transitions') or {}).get('paid_at')}")
    elif obj.get("object") == "subscription":
        facts += [obj["status"], f"canceled_at={obj.get('canceled_at')}"]
    return " ".join(facts)
