"""``floor + writes``, for reference and not a target: the floor's route writing, in its one
transaction, the rows the plugin's built-in effects write for the same event, into the
plugin's own tables, with hand-written SQL and nothing else.

No signature, no ordering guards, no locks, no signals: the least any receiver pays that
stores the event and applies its effects durably before answering. The plugin's cost over
this one is its own (verification, dispatch, the guards and reads); the floor's is the
writes'.

``floor + writes (Core)`` writes the same rows with the same statements, written as
SQLAlchemy Core constructs and run by ``Connection.execute``, the way the plugin runs its
own: the difference between the two is the cost of that execution path alone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, bindparam, func, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from flask_paxpar_checkout.events import (
    FQDN_KEY,
    instance_tags,
    invoice_line,
    invoice_subscription,
    object_id,
)
from flask_paxpar_checkout.models import define_tables

from . import hosts
from .workload import FQDN, PRICES

_P = "paxpar_checkout_"
EVENT = (
    f"INSERT INTO {_P}events (id, type, fqdn, api_version, created, livemode, status, "
    "attempts, received_at, processed_at, payload) "
    "VALUES (?, ?, ?, ?, ?, ?, 'processed', 1, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING id"
)
SESSION_DONE = (
    f"UPDATE {_P}sessions SET status = 'complete', completed_at = ?, subscription_id = ? "
    "WHERE id = ? AND status = 'open' RETURNING user_id, qty"
)
ADD_CREDITS = (
    f"INSERT INTO {_P}balances (user_id, credits, updated_at) VALUES (?, ?, ?) "
    f"ON CONFLICT (user_id) DO UPDATE SET credits = {_P}balances.credits + excluded.credits, "
    "updated_at = excluded.updated_at RETURNING credits"
)
SET_CREDITS = (
    f"INSERT INTO {_P}balances (user_id, credits, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (user_id) DO UPDATE SET credits = excluded.credits, "
    "updated_at = excluded.updated_at RETURNING credits"
)
LEDGER = (
    f"INSERT INTO {_P}credit_ledger (user_id, effective_at, position, amount, delta, "
    "balance_after, reason, stripe_object_id, dedup_key, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING"
)
SUBSCRIPTION = (
    f"INSERT INTO {_P}subscriptions (id, user_id, customer_id, price_id, status, "
    "current_period_end, cancel_at_period_end, status_at, status_source, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at, "
    "status_source = excluded.status_source, current_period_end = coalesce("
    f"excluded.current_period_end, {_P}subscriptions.current_period_end), "
    "updated_at = excluded.updated_at"
)


# The parameters of each statement, in the order of its placeholders.
COLUMNS = {
    "event": (
        "id", "type", "fqdn", "api_version", "created", "livemode", "received_at",
        "processed_at", "payload",
    ),
    "session": ("new_completed_at", "new_subscription_id", "session_id"),
    "add": ("user_id", "credits", "updated_at"),
    "set": ("user_id", "credits", "updated_at"),
    "ledger": (
        "user_id", "effective_at", "position", "amount", "delta", "balance_after", "reason",
        "stripe_object_id", "dedup_key", "created_at",
    ),
    "subscription": (
        "id", "user_id", "customer_id", "price_id", "status", "current_period_end",
        "cancel_at_period_end", "status_at", "status_source", "created_at", "updated_at",
    ),
}  # fmt: skip

Run = Callable[[Connection, str, dict[str, Any]], Any]


def writes_app(db: hosts.Database, *, core: bool = False) -> tuple[Flask, SQLAlchemy]:
    """The floor's route, plus the effects' rows written in its transaction: by hand-written
    driver SQL, or with ``core`` by the same statements as Core constructs."""
    app, sqla, engine = hosts.durable_host("bench_floor_writes", db)
    run = _core_runner(engine.dialect.name) if core else _driver_runner(engine)

    @app.post("/webhook")
    def webhook() -> tuple[str, int]:
        body = request.get_data()
        event = json.loads(body)
        obj = event["data"]["object"]
        if instance_tags(obj).get(FQDN_KEY) != FQDN:
            return "", 200  # another instance's: nothing stored, as the plugin does
        with engine.begin() as conn:
            _write(conn, run, event, obj, body.decode("utf-8"))
        return "", 200

    return app, sqla


def _driver_runner(engine: Any) -> Run:
    texts = {
        "event": EVENT,
        "session": SESSION_DONE,
        "add": ADD_CREDITS,
        "set": SET_CREDITS,
        "ledger": LEDGER,
        "subscription": SUBSCRIPTION,
    }
    sql = {name: hosts.driver_sql(engine, text) for name, text in texts.items()}

    def run(conn: Connection, name: str, params: dict[str, Any]) -> Any:
        return conn.exec_driver_sql(sql[name], tuple(params[k] for k in COLUMNS[name]))

    return run


def _core_runner(dialect_name: str) -> Run:
    t = define_tables(MetaData())
    dml: Any = postgresql if dialect_name == "postgresql" else sqlite
    e, s, b, lg, sub = t.events, t.sessions, t.balances, t.ledger, t.subscriptions
    balance = dml.insert(b)
    subscription = dml.insert(sub)
    statements = {
        "event": dml.insert(e)
        .values(status="processed", attempts=1)
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(e.c.id),
        "session": update(s)
        .where(s.c.id == bindparam("session_id"), s.c.status == "open")
        .values(
            status="complete",
            completed_at=bindparam("new_completed_at"),
            subscription_id=bindparam("new_subscription_id"),
        )
        .returning(s.c.user_id, s.c.qty),
        "add": balance.on_conflict_do_update(
            index_elements=["user_id"],
            set_={
                "credits": b.c.credits + balance.excluded.credits,
                "updated_at": balance.excluded.updated_at,
            },
        ).returning(b.c.credits),
        "set": balance.on_conflict_do_update(
            index_elements=["user_id"],
            set_={"credits": balance.excluded.credits, "updated_at": balance.excluded.updated_at},
        ).returning(b.c.credits),
        "ledger": dml.insert(lg).on_conflict_do_nothing(index_elements=["dedup_key"]),
        "subscription": subscription.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "status": subscription.excluded.status,
                "status_at": subscription.excluded.status_at,
                "status_source": subscription.excluded.status_source,
                "current_period_end": func.coalesce(
                    subscription.excluded.current_period_end, sub.c.current_period_end
                ),
                "updated_at": subscription.excluded.updated_at,
            },
        ),
    }

    def run(conn: Connection, name: str, params: dict[str, Any]) -> Any:
        return conn.execute(statements[name], params)

    return run


def _write(
    conn: Connection, run: Run, event: dict[str, Any], obj: dict[str, Any], body: str
) -> None:
    now = datetime.now(timezone.utc)
    kind = event["type"]
    fresh = run(
        conn,
        "event",
        {
            "id": event["id"],
            "type": kind,
            "fqdn": FQDN,
            "api_version": event["api_version"],
            "created": event["created"],
            "livemode": False,
            "received_at": now,
            "processed_at": now,
            "payload": body,
        },
    ).first()
    if fresh is None:
        return  # a duplicate
    if kind == "checkout.session.completed":
        sub = object_id(obj.get("subscription"))
        done = run(
            conn,
            "session",
            {"new_completed_at": now, "new_subscription_id": sub, "session_id": obj["id"]},
        ).first()
        if done is None:
            return
        user, qty = done
        if sub is None:
            after = run(conn, "add", {"user_id": user, "credits": qty, "updated_at": now})
            key = f"purchase:{obj['id']}"
            entry = (qty, qty, after.scalar_one(), "purchase", obj["id"], key)
            run(conn, "ledger", _entry(user, now, key, *entry))
        else:
            customer = object_id(obj.get("customer"))
            run(
                conn,
                "subscription",
                _subscription(sub, user, customer, None, "active", None, event, now),
            )
    elif kind in ("invoice.paid", "invoice.payment_failed"):
        sub = invoice_subscription(obj)
        user = instance_tags(obj).get("paxpar_user_id")
        price, period_end = invoice_line(obj)
        paid = kind == "invoice.paid"
        status = "active" if paid else "past_due"
        customer = object_id(obj.get("customer"))
        row = _subscription(sub, user, customer, price, status, period_end, event, now)
        run(conn, "subscription", row)
        if paid and price in PRICES:
            credits = PRICES[price]
            run(conn, "set", {"user_id": user, "credits": credits, "updated_at": now})
            reset = f"reset:{obj['id']}"
            entry = (credits, credits, credits, "subscription_reset", obj["id"], reset)
            run(conn, "ledger", _entry(user, now, reset, *entry))


def _entry(
    user: str,
    at: datetime,
    key: str,
    amount: int,
    delta: int,
    after: int,
    reason: str,
    object_id: str,
    dedup_key: str,
) -> dict[str, Any]:
    return {
        "user_id": user,
        "effective_at": at,
        "position": _position(at, key),
        "amount": amount,
        "delta": delta,
        "balance_after": after,
        "reason": reason,
        "stripe_object_id": object_id,
        "dedup_key": dedup_key,
        "created_at": at,
    }


def _subscription(
    sub: str | None,
    user: str | None,
    customer: str | None,
    price: str | None,
    status: str,
    period_end: int | None,
    event: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": sub,
        "user_id": user,
        "customer_id": customer,
        "price_id": price,
        "status": status,
        "current_period_end": period_end,
        "cancel_at_period_end": False,
        "status_at": event["created"],
        "status_source": event["id"],
        "created_at": now,
        "updated_at": now,
    }


def _position(at: datetime, key: str) -> str:
    """A ledger entry's place, as the plugin writes it."""
    return f"{int(at.timestamp() * 1_000_000):017d}|1|{key}"
