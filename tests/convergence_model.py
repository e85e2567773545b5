"""The reference model of convergence: a user's credits and subscription as a function of the
set of events received, whatever order they came in.

Written from the rules of the Guarantees section, not from the handlers: every event becomes
ledger entries with an effective time in Stripe's timeline, and the balance is their fold in
that order. Pure Python on plain event dicts, no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TERMINAL = frozenset({"canceled", "incomplete_expired"})
SNAPSHOTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)
SUBSCRIPTION_FIELDS = (
    "status",
    "price_id",
    "current_period_end",
    "cancel_at_period_end",
    "cancel_at",
    "canceled_at",
)


@dataclass(frozen=True)
class Entry:
    """One ledger entry: a reset sets the balance to ``amount``, any other adds it."""

    at: int
    key: str
    amount: int
    reset: bool = False

    @property
    def order(self) -> tuple[int, int, str]:
        """Effective time; at the same time, resets first, then the rest by key."""
        return (self.at, 0 if self.reset else 1, self.key)


@dataclass(frozen=True)
class Spend:
    """A host spend that succeeded, at its local time."""

    at: int
    n: int


@dataclass(frozen=True)
class Converged:
    """What the events imply: the balance, the ledger's deltas, the subscription's fields."""

    balance: int
    deltas: tuple[tuple[str, int], ...]
    subscription: dict[str, Any] | None

    @property
    def ledger_sum(self) -> int:
        return sum(delta for _, delta in self.deltas)


def converge(
    events: Iterable[Mapping[str, Any]],
    *,
    user_id: str,
    prices: Mapping[str, int],
    spends: Sequence[Spend] = (),
) -> Converged:
    """The state that ``events`` (duplicates allowed, any order) and ``spends`` imply."""
    unique = {e["id"]: e for e in events}
    ordered = sorted(unique.values(), key=lambda e: (e["created"], e["id"]))
    mine = [e for e in ordered if _user_of(e["data"]["object"]) in (user_id, None)]
    subscriptions = _subscriptions(mine)
    purchases = _purchases(mine)
    entries = [*purchases.values()]
    entries += _resets(mine, subscriptions, prices)
    entries += _refunds(mine, purchases, _quantities(mine))
    entries += [Entry(s.at, f"spend:{i:06d}", -s.n) for i, s in enumerate(spends)]
    balance, deltas = fold(entries)
    fields = [sub["fields"] for sub in subscriptions.values()]
    return Converged(balance, tuple(deltas), _current(fields))


def fold(entries: Iterable[Entry]) -> tuple[int, list[tuple[str, int]]]:
    """Fold in effective-time order from 0, never below 0; each step's delta, and an
    ``adjustment`` where the floor stopped the balance."""
    balance = 0
    deltas: list[tuple[str, int]] = []
    for entry in sorted(entries, key=lambda e: e.order):
        wanted = entry.amount if entry.reset else balance + entry.amount
        deltas.append((entry.key, wanted - balance))
        if wanted < 0:
            deltas.append((f"adjustment:{entry.key}", -wanted))
        balance = max(wanted, 0)
    return balance, deltas


# -- credits -----------------------------------------------------------------------------------


def _purchases(events: list[Mapping[str, Any]]) -> dict[str, Entry]:
    """Paid one-time sessions, by payment intent: ``+qty`` at the completing event's time."""
    found: dict[str, Entry] = {}
    for event in events:
        obj = event["data"]["object"]
        if obj.get("object") != "checkout.session" or obj.get("mode") != "payment":
            continue
        completes = event["type"] == "checkout.session.async_payment_succeeded" or (
            event["type"] == "checkout.session.completed" and obj.get("payment_status") == "paid"
        )
        qty = int(obj["metadata"]["paxpar_qty"])
        entry = Entry(int(event["created"]), f"purchase:{obj['id']}", qty)
        if completes and obj["payment_intent"] not in found:  # events are in time order
            found[obj["payment_intent"]] = entry
    return found


def _quantities(events: list[Mapping[str, Any]]) -> dict[str, int]:
    return {
        e["data"]["object"]["payment_intent"]: int(e["data"]["object"]["metadata"]["paxpar_qty"])
        for e in events
        if e["data"]["object"].get("object") == "checkout.session"
        and e["data"]["object"].get("mode") == "payment"
    }


def _refunds(
    events: list[Mapping[str, Any]], purchases: Mapping[str, Entry], qty: Mapping[str, int]
) -> list[Entry]:
    """Per charge, each refunded level takes what its proportion adds to the level below it
    in the set; refunds of an unknown purchase take nothing."""
    levels: dict[str, dict[int, tuple[int, Mapping[str, Any]]]] = {}
    for event in events:
        charge = event["data"]["object"]
        if event["type"] != "charge.refunded" or charge["payment_intent"] not in purchases:
            continue
        level = int(charge["amount_refunded"])
        levels.setdefault(charge["id"], {}).setdefault(level, (int(event["created"]), charge))
    entries: list[Entry] = []
    for charge_id, by_level in levels.items():
        taken = 0
        for level in sorted(by_level):
            at, charge = by_level[level]
            total = qty[charge["payment_intent"]] * level // int(charge["amount"])
            entries.append(Entry(at, f"refund:{charge_id}:{level}", -(total - taken)))
            taken = total
    return entries


def _resets(
    events: list[Mapping[str, Any]],
    subscriptions: Mapping[str, dict[str, Any]],
    prices: Mapping[str, int],
) -> list[Entry]:
    """Paid invoices set the balance to the plan's credits at their payment time, unless
    paid at or after their subscription's cancellation."""
    entries: dict[str, Entry] = {}
    for event in events:
        invoice = event["data"]["object"]
        if event["type"] != "invoice.paid":
            continue
        price, _ = invoice_line(invoice)
        paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
        at = int(paid_at if paid_at is not None else event["created"])
        ended = subscriptions.get(invoice_subscription(invoice), {}).get("ended")
        if price not in prices or (ended is not None and at >= ended):
            continue
        entries.setdefault(invoice["id"], Entry(at, f"reset:{invoice['id']}", prices[price], True))
    return list(entries.values())


# -- subscriptions -----------------------------------------------------------------------------


def _subscriptions(events: list[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each field of each subscription from the newest event that says it (events come in
    (created, id) order). A terminal snapshot sets every field and ends the subscription:
    nothing after it changes a field, whatever its time."""
    subs: dict[str, dict[str, Any]] = {}
    for event in events:
        found = _subscription_news(event)
        if found is None:
            continue
        sub_id, news = found
        sub = subs.setdefault(sub_id, {"fields": dict.fromkeys(SUBSCRIPTION_FIELDS), "ended": None})
        if sub["ended"] is not None:
            continue
        if sub["fields"]["cancel_at_period_end"] is None:
            sub["fields"].update(cancel_at_period_end=False)
        sub["fields"].update(news)
        if event["type"] in SNAPSHOTS and news["status"] in TERMINAL:
            obj = event["data"]["object"]
            canceled = obj.get("canceled_at")
            sub["ended"] = int(canceled if canceled is not None else obj["ended_at"])
    return subs


def _subscription_news(event: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The subscription an event speaks of and the fields it sets."""
    obj = event["data"]["object"]
    kind = event["type"]
    if kind in SNAPSHOTS:
        price, period_end = subscription_price_and_period_end(obj)
        status = "canceled" if kind == "customer.subscription.deleted" else obj["status"]
        return obj["id"], {
            "status": status,
            "price_id": price,
            "current_period_end": period_end,
            "cancel_at_period_end": bool(obj.get("cancel_at_period_end")),
            "cancel_at": obj.get("cancel_at"),
            "canceled_at": obj.get("canceled_at"),
        }
    if kind == "invoice.paid":
        price, period_end = invoice_line(obj)
        return invoice_subscription(obj), {
            "status": "active",
            "price_id": price,
            "current_period_end": period_end,
        }
    if kind == "invoice.payment_failed":
        return invoice_subscription(obj), {"status": "past_due"}
    if kind == "checkout.session.completed" and obj.get("mode") == "subscription":
        paid = obj.get("payment_status") in ("paid", "no_payment_required")
        news = {"status": "active" if paid else "incomplete"}
        return obj["subscription"], {**news, "price_id": obj["metadata"]["paxpar_price_id"]}
    return None


def _current(fields: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A live subscription first, else the last one (the public API's choice)."""
    live = [f for f in fields if f["status"] not in TERMINAL]
    chosen = live or fields
    return dict(chosen[-1]) if chosen else None


# -- reading Stripe's objects, in both API eras ------------------------------------------------


def _user_of(obj: Mapping[str, Any]) -> str | None:
    """The user an object is tagged with; None for a charge (it carries no tags)."""
    if obj.get("object") == "charge":
        return None
    if obj.get("object") == "invoice":
        parent = obj.get("parent") or {}
        details = parent.get("subscription_details") or obj.get("subscription_details") or {}
        return str(details["metadata"]["paxpar_user_id"])
    return str(obj["metadata"]["paxpar_user_id"])


def invoice_subscription(invoice: Mapping[str, Any]) -> str:
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return str(details.get("subscription") or invoice["subscription"])


def invoice_line(invoice: Mapping[str, Any]) -> tuple[str, int]:
    line = invoice["lines"]["data"][0]
    pricing = line.get("pricing")
    price = pricing["price_details"]["price"] if pricing else line["price"]["id"]
    return str(price), int(line["period"]["end"])


def subscription_price_and_period_end(sub: Mapping[str, Any]) -> tuple[str, int]:
    item = sub["items"]["data"][0]
    end = sub.get("current_period_end") or item["current_period_end"]
    return str(item["price"]["id"]), int(end)
