"""Persistence that needs care: an event recorded once, credits that never drift nor go
below zero, a subscription record that an older event never rolls back.

Statements are built once per app; each call only binds parameters. Everything runs on the
host's ``db.session``, so a webhook's effects, the host handlers' writes and the event's
"processed" mark commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Row, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .errors import InsufficientCredits
from .models import Tables

Claim = Literal["new", "retry", "duplicate"]
TERMINAL = frozenset({"canceled", "incomplete_expired"})


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class CreditChange:
    """One applied change of a user's balance."""

    user_id: str
    before: int
    after: int
    reason: str
    stripe_object_id: str | None


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

    @property
    def is_active(self) -> bool:
        """Whether the user currently has what they pay for (active or trialing)."""
        return self.status in ("active", "trialing")


class Store:
    """The plugin's reads and writes, on the host's Flask-SQLAlchemy session."""

    def __init__(self, db: SQLAlchemy, tables: Tables) -> None:
        self.db = db
        self.t = tables
        self._dialect: Any = None
        t = tables
        self._customer_of = select(t.customers.c.stripe_customer_id).where(
            t.customers.c.user_id == _bind("user_id")
        )
        self._user_of_customer = select(t.customers.c.user_id).where(
            t.customers.c.stripe_customer_id == _bind("customer_id")
        )
        self._session_by_id = select(t.sessions).where(t.sessions.c.id == _bind("id"))
        self._balance = select(t.balances.c.credits).where(t.balances.c.user_id == _bind("user_id"))
        self._balance_for_update = self._balance.with_for_update()
        self._set_balance = (
            update(t.balances)
            .where(t.balances.c.user_id == _bind("uid"))
            .values(credits=_bind("new_credits"), updated_at=_bind("now"))
        )
        self._take_credits = (
            update(t.balances)
            .where(t.balances.c.user_id == _bind("uid"), t.balances.c.credits >= _bind("n"))
            .values(credits=t.balances.c.credits - _bind("n"), updated_at=_bind("now"))
            .returning(t.balances.c.credits)
        )
        self._retry_event = (
            update(t.events)
            .where(
                t.events.c.id == _bind("event_id"),
                t.events.c.status.in_(bindparam("from_statuses", expanding=True)),
            )
            .values(
                status="processed",
                attempts=t.events.c.attempts + 1,
                processed_at=_bind("now"),
            )
            .returning(t.events.c.id)
        )
        self._subscription_for_update = (
            select(t.subscriptions).where(t.subscriptions.c.id == _bind("id")).with_for_update()
        )
        self._user_subscriptions = (
            select(t.subscriptions)
            .where(t.subscriptions.c.user_id == _bind("user_id"))
            .order_by(t.subscriptions.c.status_at.desc())
        )
        self._price = select(t.prices).where(t.prices.c.id == _bind("id"))

    @property
    def session(self) -> Session:
        return self.db.session  # type: ignore[return-value]

    def _insert(self, table: Any) -> Any:
        """An INSERT with ON CONFLICT support for the engine's dialect."""
        if self._dialect is None:
            name = self.db.engine.dialect.name
            if name not in ("sqlite", "postgresql"):
                raise RuntimeError(
                    f"flask-paxpar-checkout supports SQLite and PostgreSQL, not {name}"
                )
            self._dialect = postgresql if name == "postgresql" else sqlite
        return self._dialect.insert(table)

    # -- customers -------------------------------------------------------------------------

    def customer_id(self, user_id: str) -> str | None:
        return self.session.execute(self._customer_of, {"user_id": user_id}).scalar()

    def user_of_customer(self, customer_id: str) -> str | None:
        return self.session.execute(self._user_of_customer, {"customer_id": customer_id}).scalar()

    def link_customer(self, user_id: str, customer_id: str, email: str | None = None) -> str:
        """Remember a user's Stripe customer (first one wins); return the stored id."""
        stmt = self._insert(self.t.customers).on_conflict_do_nothing()
        self.session.execute(
            stmt,
            {
                "user_id": user_id,
                "stripe_customer_id": customer_id,
                "email": email,
                "created_at": utcnow(),
            },
        )
        return self.customer_id(user_id) or customer_id

    # -- checkout sessions -----------------------------------------------------------------

    def add_session(self, **values: Any) -> None:
        self.session.execute(
            self.t.sessions.insert(), {"status": "open", "created_at": utcnow(), **values}
        )

    def checkout_session(self, session_id: str) -> Row[Any] | None:
        return self.session.execute(self._session_by_id, {"id": session_id}).first()

    def mark_session(
        self, session_id: str, status: str, subscription_id: str | None = None
    ) -> None:
        """Move a stored session to ``complete`` or ``expired`` (never back to ``open``)."""
        s = self.t.sessions
        values: dict[str, Any] = {"status": status}
        if status == "complete":
            values["completed_at"] = utcnow()
        if subscription_id:
            values["subscription_id"] = subscription_id
        self.session.execute(
            update(s).where(s.c.id == session_id, s.c.status == "open").values(**values)
        )

    # -- events ----------------------------------------------------------------------------

    def claim_event(self, row: dict[str, Any], *, replay: bool = False) -> Claim:
        """Record an event as processed, first statement of its transaction.

        ``new``: first delivery; ``retry``: it had failed before; ``duplicate``: it was
        processed already (or is being processed by a concurrent delivery, whose commit
        this waits for). With ``replay`` a processed event is claimed again.
        """
        now = utcnow()
        stmt = (
            self._insert(self.t.events)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(self.t.events.c.id)
        )
        inserted = self.session.execute(
            stmt,
            {**row, "status": "processed", "attempts": 1, "received_at": now, "processed_at": now},
        )
        if inserted.first() is not None:
            return "new"
        statuses = ["failed", "processed", "ignored"] if replay else ["failed"]
        retried = self.session.execute(
            self._retry_event, {"event_id": row["id"], "from_statuses": statuses, "now": now}
        )
        return "retry" if retried.first() is not None else "duplicate"

    def record_ignored(self, row: dict[str, Any], reason: str) -> None:
        stmt = self._insert(self.t.events).on_conflict_do_nothing(index_elements=["id"])
        self.session.execute(
            stmt,
            {
                **row,
                "status": "ignored",
                "reason": reason[:255],
                "attempts": 1,
                "received_at": utcnow(),
            },
        )

    def record_failure(self, row: dict[str, Any], error: str) -> None:
        """Store a failed attempt in its own transaction (the effects were rolled back)."""
        e = self.t.events
        stmt = self._insert(e)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"status": "failed", "attempts": e.c.attempts + 1, "last_error": error},
            where=e.c.status != "processed",
        )
        self.session.execute(
            stmt,
            {
                **row,
                "status": "failed",
                "attempts": 1,
                "last_error": error,
                "received_at": utcnow(),
            },
        )

    # -- credits ---------------------------------------------------------------------------

    def credits(self, user_id: str) -> int:
        return self.session.execute(self._balance, {"user_id": user_id}).scalar() or 0

    def change_credits(
        self,
        user_id: str,
        *,
        reason: str,
        delta: int | None = None,
        target: int | None = None,
        dedup_key: str | None = None,
        stripe_object_id: str | None = None,
        memo: str | None = None,
    ) -> CreditChange | None:
        """Add ``delta`` or set the balance to ``target``, with its ledger row.

        Returns ``None`` when ``dedup_key`` was applied before (the effect happens once).
        """
        now = utcnow()
        ensure = self._insert(self.t.balances).on_conflict_do_nothing(index_elements=["user_id"])
        self.session.execute(ensure, {"user_id": user_id, "credits": 0, "updated_at": now})
        before: int = self.session.execute(
            self._balance_for_update, {"user_id": user_id}
        ).scalar_one()
        after = before + delta if delta is not None else target
        assert after is not None
        if after < 0:
            raise InsufficientCredits(user_id, -(delta or 0), before)
        ledger = self._insert(self.t.ledger).returning(self.t.ledger.c.id)
        if dedup_key is not None:
            ledger = ledger.on_conflict_do_nothing(index_elements=["dedup_key"])
        written = self.session.execute(
            ledger,
            {
                "user_id": user_id,
                "delta": after - before,
                "balance_after": after,
                "reason": reason,
                "stripe_object_id": stripe_object_id,
                "dedup_key": dedup_key,
                "memo": memo,
                "created_at": now,
            },
        )
        if written.first() is None:
            return None
        self.session.execute(self._set_balance, {"uid": user_id, "new_credits": after, "now": now})
        return CreditChange(user_id, before, after, reason, stripe_object_id)

    def spend(self, user_id: str, n: int, memo: str | None) -> CreditChange:
        """Take ``n`` credits in one conditional UPDATE: never below zero, never lost."""
        now = utcnow()
        after = self.session.execute(
            self._take_credits, {"uid": user_id, "n": n, "now": now}
        ).scalar()
        if after is None:
            raise InsufficientCredits(user_id, n, self.credits(user_id))
        self.session.execute(
            self.t.ledger.insert(),
            {
                "user_id": user_id,
                "delta": -n,
                "balance_after": after,
                "reason": "spend",
                "memo": memo,
                "created_at": now,
            },
        )
        return CreditChange(user_id, after + n, after, "spend", None)

    def ledger(self, user_id: str, limit: int = 50) -> list[Row[Any]]:
        lg = self.t.ledger
        stmt = select(lg).where(lg.c.user_id == user_id).order_by(lg.c.id.desc()).limit(limit)
        return list(self.session.execute(stmt))

    def ledger_total(self, user_id: str) -> int:
        lg = self.t.ledger
        stmt = select(func.coalesce(func.sum(lg.c.delta), 0)).where(lg.c.user_id == user_id)
        return int(self.session.execute(stmt).scalar_one())

    # -- subscriptions ---------------------------------------------------------------------

    def lock_subscription(self, sub_id: str, user_id: str) -> Row[Any]:
        """The subscription's row, created empty if new, locked until commit."""
        now = utcnow()
        stmt = self._insert(self.t.subscriptions).on_conflict_do_nothing(index_elements=["id"])
        self.session.execute(
            stmt,
            {
                "id": sub_id,
                "user_id": user_id,
                "status": "incomplete",
                "cancel_at_period_end": False,
                "status_at": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
        return self.session.execute(self._subscription_for_update, {"id": sub_id}).one()

    def update_subscription(self, sub_id: str, values: dict[str, Any]) -> None:
        s = self.t.subscriptions
        self.session.execute(
            update(s).where(s.c.id == sub_id).values(**values, updated_at=utcnow())
        )

    def subscription(self, user_id: str) -> SubscriptionState | None:
        """The user's current subscription: a live one first, else the latest."""
        rows = list(self.session.execute(self._user_subscriptions, {"user_id": user_id}))
        if not rows:
            return None
        live = [r for r in rows if r.status not in TERMINAL and r.status_at > 0]
        return subscription_state((live or rows)[0]._mapping)

    # -- prices ----------------------------------------------------------------------------

    def price(self, price_id: str) -> Row[Any] | None:
        return self.session.execute(self._price, {"id": price_id}).first()

    def save_price(
        self, price_id: str, *, active: bool, recurring: bool, credits: int | None
    ) -> None:
        stmt = self._insert(self.t.prices)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "active": active,
                "recurring": recurring,
                "credits": credits,
                "fetched_at": utcnow(),
            },
        )
        self.session.execute(
            stmt,
            {
                "id": price_id,
                "active": active,
                "recurring": recurring,
                "credits": credits,
                "fetched_at": utcnow(),
            },
        )


def subscription_state(row: Mapping[Any, Any]) -> SubscriptionState:
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
    )


def _bind(name: str) -> Any:
    return bindparam(name)
