"""``floor + writes``, for reference and not a target: the floor's route writing, in its one
transaction, the rows the plugin's built-in effects write for the same event, into the
plugin's own tables, with hand-written SQL and nothing else.

No signature, no ordering guards, no locks, no signals: the least any receiver pays that
stores the event and applies its effects durably before answering. The plugin's cost over
this one is its own (verification, dispatch, the guards and reads); the floor's is the
writes'.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.engine import Connection

from flask_paxpar_checkout.events import (
    FQDN_KEY,
    instance_tags,
    invoice_line,
    invoice_subscription,
    object_id,
)

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


def writes_app(db: hosts.Database) -> tuple[Flask, SQLAlchemy]:
    """The floor's route, plus the effects' rows written by hand in its transaction."""
    app, sqla, engine = hosts.durable_host("bench_floor_writes", db)
    sql = {
        name: hosts.driver_sql(engine, text)
        for name, text in {
            "event": EVENT,
            "session": SESSION_DONE,
            "add": ADD_CREDITS,
            "set": SET_CREDITS,
            "ledger": LEDGER,
            "subscription": SUBSCRIPTION,
        }.items()
    }

    @app.post("/webhook")
    def webhook() -> tuple[str, int]:
        body = request.get_data()
        event = json.loads(body)
        obj = event["data"]["object"]
        if instance_tags(obj).get(FQDN_KEY) != FQDN:
            return "", 200  # another instance's: nothing stored, as the plugin does
        with engine.begin() as conn:
            _write(conn, sql, event, obj, body.decode("utf-8"))
        return "", 200

    return app, sqla


def _write(
    conn: Connection, sql: dict[str, str], event: dict[str, Any], obj: dict[str, Any], body: str
) -> None:
    now = datetime.now(timezone.utc)
    run = conn.exec_driver_sql
    kind = event["type"]
    fresh = run(
        sql["event"],
        (event["id"], kind, FQDN, event["api_version"], event["created"], False, now, now, body),
    ).first()
    if fresh is None:
        return  # a duplicate
    if kind == "checkout.session.completed":
        sub = object_id(obj.get("subscription"))
        done = run(sql["session"], (now, sub, obj["id"])).first()
        if done is None:
            return
        user, qty = done
        if sub is None:
            after = run(sql["add"], (user, qty, now)).scalar_one()
            key = f"purchase:{obj['id']}"
            ledger = (user, now, _position(now, key), qty, qty, after, "purchase", obj["id"], key)
            run(sql["ledger"], (*ledger, now))
        else:
            customer = object_id(obj.get("customer"))
            row = (sub, user, customer, None, "active", None, False, event["created"], event["id"])
            run(sql["subscription"], (*row, now, now))
    elif kind in ("invoice.paid", "invoice.payment_failed"):
        sub = invoice_subscription(obj)
        user = instance_tags(obj).get("paxpar_user_id")
        price, period_end = invoice_line(obj)
        paid = kind == "invoice.paid"
        status = "active" if paid else "past_due"
        customer = object_id(obj.get("customer"))
        row = (sub, user, customer, price, status, period_end, False, event["created"], event["id"])
        run(sql["subscription"], (*row, now, now))
        if paid and price in PRICES:
            credits = PRICES[price]
            run(sql["set"], (user, credits, now))
            reset = f"reset:{obj['id']}"
            row = (user, now, _position(now, reset), credits, credits, credits)
            run(sql["ledger"], (*row, "subscription_reset", obj["id"], reset, now))


def _position(at: datetime, key: str) -> str:
    """A ledger entry's place, as the plugin writes it."""
    return f"{int(at.timestamp() * 1_000_000):017d}|1|{key}"
