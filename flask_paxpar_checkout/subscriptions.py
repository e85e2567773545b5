"""Each subscription's record, the same whatever order Stripe's news of it arrives in.

Every field follows the newest news that carries it, by Stripe's time then the event's id:
the status, the price, the period end, and the cancellation fields (which only the
subscription's own snapshots carry). ``canceled`` and
``incomplete_expired`` are terminal: the first news of an ending applies whatever its
time, its fields are final, and nothing after it revives the subscription.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .clock import utcnow
from .database import Transaction
from .statements import SUBSCRIPTION_FIELDS

TERMINAL = frozenset({"canceled", "incomplete_expired"})


@dataclass(frozen=True)
class SubscriptionState:
    """A user's subscription as the plugin knows it."""

    id: str
    user_id: str
    customer_id: str | None
    price_id: str | None
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    canceled_at: int | None
    ended_at: int | None = None

    @property
    def is_active(self) -> bool:
        """Whether the user currently has what they pay for (active or trialing)."""
        return self.status in ("active", "trialing")

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL

    @property
    def cancelled_since(self) -> int | None:
        """When an ended subscription stopped: its ``canceled_at``, else ``ended_at``."""
        return self.canceled_at or self.ended_at if self.ended else None


@dataclass(frozen=True)
class News:
    """What one event (or a fetched snapshot) says of a subscription, and when.

    ``snapshot`` holds the cancellation fields of the subscription object itself
    (``cancel_at_period_end``, ``cancel_at``, ``canceled_at``, ``ended_at``); an invoice or
    a Checkout Session carries none.
    """

    at: int
    source: str
    status: str | None = None
    price_id: str | None = None
    current_period_end: int | None = None
    customer_id: str | None = None
    snapshot: dict[str, Any] | None = field(default=None)


@dataclass(frozen=True)
class Applied:
    """A subscription's record after some news, and what the news did to it."""

    state: SubscriptionState
    changed: bool
    ended_now: bool


class Subscriptions:
    """Subscription records, each change under the row's lock."""

    def apply(self, tx: Transaction, sub_id: str, user_id: str, news: News) -> Applied:
        """Apply ``news`` to the subscription's record (made if new)."""
        row = self._lock(tx, sub_id, user_id)
        values = dict(row._mapping)
        merged = _merge(values, news)
        state = state_of(merged)
        if merged == values:
            return Applied(state, changed=False, ended_now=False)
        merged["updated_at"] = utcnow()  # written, not read back
        tx.execute(
            tx.sql.save_subscription,
            {"sub_id": sub_id, **{f"v_{name}": merged[name] for name in SUBSCRIPTION_FIELDS}},
        )
        was_ended = values["status"] in TERMINAL and values["status_at"] > 0
        return Applied(state, changed=True, ended_now=state.ended and not was_ended)

    def of_user(self, tx: Transaction, user_id: str) -> SubscriptionState | None:
        """The user's current subscription: a live one first, else the latest."""
        rows = tx.execute(tx.sql.subscriptions_of_user, {"user_id": user_id}).all()
        known = [r for r in rows if r.status_at > 0]
        live = [r for r in known if r.status not in TERMINAL]
        chosen = live or known
        return state_of(chosen[0]._mapping) if chosen else None

    def _lock(self, tx: Transaction, sub_id: str, user_id: str) -> Any:
        now = utcnow()
        return tx.first(
            tx.sql.lock_subscription,
            {
                "id": sub_id,
                "user_id": user_id,
                "status": "incomplete",
                "cancel_at_period_end": False,
                "status_at": 0,
                "status_source": "",
                "price_at": 0,
                "price_source": "",
                "period_at": 0,
                "period_source": "",
                "snapshot_at": 0,
                "snapshot_source": "",
                "created_at": now,
                "updated_at": now,
            },
        )


def _merge(row: dict[str, Any], news: News) -> dict[str, Any]:
    """The record's values after ``news``, by the rules of the module."""
    merged = dict(row)
    ended = row["status"] in TERMINAL and row["status_at"] > 0
    if ended:  # only an earlier ending (delivered late) takes the place of this one
        earlier_end = news.status in TERMINAL and news.snapshot is not None
        if earlier_end and (news.at, news.source) < (row["status_at"], row["status_source"]):
            return _final(merged, news)
        return merged
    if news.status in TERMINAL and news.snapshot is not None:
        return _final(merged, news)
    if news.status and _newer(row, "status", news):
        merged.update(_stamped("status", news), status=news.status)
    if news.price_id and _newer(row, "price", news):
        merged.update(_stamped("price", news), price_id=news.price_id)
    if news.current_period_end and _newer(row, "period", news):
        merged.update(_stamped("period", news), current_period_end=news.current_period_end)
    if news.snapshot is not None and _newer(row, "snapshot", news):
        merged.update(_stamped("snapshot", news), **_cancellation(news.snapshot))
    if merged["customer_id"] is None and news.customer_id:
        merged["customer_id"] = news.customer_id
    return merged


def _final(merged: dict[str, Any], news: News) -> dict[str, Any]:
    """An ending's snapshot, which no later news changes."""
    assert news.snapshot is not None
    merged.update(
        _cancellation(news.snapshot),
        **_stamped("status", news),
        **_stamped("snapshot", news),
        status=news.status,
    )
    if news.price_id:
        merged.update(_stamped("price", news), price_id=news.price_id)
    if news.current_period_end:
        merged.update(_stamped("period", news), current_period_end=news.current_period_end)
    if merged["customer_id"] is None and news.customer_id:
        merged["customer_id"] = news.customer_id
    if merged["canceled_at"] is None and merged["ended_at"] is None:
        merged["ended_at"] = news.at  # an ending says when, one way or another
    return merged


def _newer(row: dict[str, Any], group: str, news: News) -> bool:
    return (news.at, news.source) > (row[f"{group}_at"], row[f"{group}_source"])


def _stamped(group: str, news: News) -> dict[str, Any]:
    return {f"{group}_at": news.at, f"{group}_source": news.source}


def _cancellation(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {
        "cancel_at_period_end": bool(snapshot.get("cancel_at_period_end")),
        "cancel_at": _int(snapshot.get("cancel_at")),
        "canceled_at": _int(snapshot.get("canceled_at")),
        "ended_at": _int(snapshot.get("ended_at")),
    }


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def state_of(row: Any) -> SubscriptionState:
    """A subscription row (or its values) as the public value object."""
    return SubscriptionState(
        id=row["id"],
        user_id=row["user_id"],
        customer_id=row["customer_id"],
        price_id=row["price_id"],
        status=row["status"],
        current_period_end=row["current_period_end"],
        cancel_at_period_end=bool(row["cancel_at_period_end"]),
        cancel_at=row["cancel_at"],
        canceled_at=row["canceled_at"],
        ended_at=row["ended_at"],
    )
