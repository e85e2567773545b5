"""The plugin's SQL: every statement, built once per database dialect as a Core construct.

Parameters are bound by name (``bindparam``); SQLAlchemy compiles each statement once and
keeps it in its compiled cache. Upserts use the dialect's ``INSERT ... ON CONFLICT``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    Table,
    bindparam,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from .models import Tables

SETS_BALANCE = ("subscription_reset", "subscription_canceled")
"""Ledger reasons whose entry sets the balance rather than changing it."""


def _param(name: str) -> Any:
    return bindparam(name)


class Statements:
    """Every statement of the plugin for one dialect (``sqlite`` or ``postgresql``)."""

    def __init__(self, t: Tables, dialect_name: str) -> None:
        if dialect_name not in ("sqlite", "postgresql"):
            raise RuntimeError(
                f"flask-paxpar-checkout supports SQLite and PostgreSQL, not {dialect_name}"
            )
        dml: Any = postgresql if dialect_name == "postgresql" else sqlite
        self._events(t, dml)
        self._customers_sessions_prices(t, dml)
        self._balances(t, dml)
        self._ledger(t, dml)
        self._subscriptions_refunds(t, dml)

    def _events(self, t: Tables, dml: Any) -> None:
        e = t.events
        self.claim_event = _claim(dml, t, again=("failed",))
        self.replay_event = _claim(dml, t, again=("failed", "processed", "ignored"))
        self.record_ignored = dml.insert(e).on_conflict_do_nothing(index_elements=["id"])
        failure = dml.insert(e)
        self.record_failure = failure.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "status": "failed",
                "attempts": e.c.attempts + 1,
                "last_error": failure.excluded.last_error,
            },
            where=e.c.status != "processed",
        )

    def _customers_sessions_prices(self, t: Tables, dml: Any) -> None:
        c, s, p = t.customers, t.sessions, t.prices
        self.customer_of = select(c.c.stripe_customer_id).where(c.c.user_id == _param("user_id"))
        self.user_of_customer = select(c.c.user_id).where(
            c.c.stripe_customer_id == _param("customer_id")
        )
        self.link_customer = dml.insert(c).on_conflict_do_nothing()
        self.add_session = dml.insert(s).on_conflict_do_nothing(index_elements=["id"])
        self.session_by_id = select(s).where(s.c.id == _param("id"))
        self.session_by_payment_intent = select(s).where(
            s.c.payment_intent_id == _param("payment_intent_id")
        )
        # An open session is completed once; its row as it is then, and whether refunds of
        # its payment intent arrived before it.
        refunded = (
            select(t.refunds.c.charge_id)
            .where(t.refunds.c.payment_intent_id == _param("new_payment_intent_id"))
            .exists()
        )
        self.complete_session = (
            update(s)
            .where(s.c.id == _param("session_id"), s.c.status == "open")
            .values(
                status="complete",
                completed_at=_param("now"),
                subscription_id=_param("new_subscription_id"),
                payment_intent_id=_param("new_payment_intent_id"),
            )
            .returning(*_untimed(s), refunded.label("refunded"))
        )
        self.end_session = (
            update(s)
            .where(s.c.id == _param("session_id"), s.c.status == "open")
            .values(status=_param("new_status"))
        )
        self.price = select(p).where(p.c.id == _param("id"))
        price = dml.insert(p)
        self.save_price = price.on_conflict_do_update(
            index_elements=["id"],
            set_={
                k: getattr(price.excluded, k)
                for k in ("active", "recurring", "credits", "fetched_at")
            },
        )

    def _balances(self, t: Tables, dml: Any) -> None:
        b = t.balances
        # Made if new, else locked as it is (a no-op update): one statement for both.
        self.lock_balance = (
            dml.insert(b)
            .on_conflict_do_update(index_elements=["user_id"], set_={"credits": b.c.credits})
            .returning(b.c.credits, b.c.last_position)
        )
        self.balance = select(b.c.credits).where(b.c.user_id == _param("user_id"))
        self.set_balance = (
            update(b)
            .where(b.c.user_id == _param("balance_of"))
            .values(
                credits=_param("new_credits"),
                last_position=_param("new_last_position"),
                updated_at=_param("now"),
            )
        )

    def _ledger(self, t: Tables, dml: Any) -> None:
        lg = t.ledger
        user = lg.c.user_id == _param("user_id")
        self.append_entry = _append_entry(t, dml)
        self.add_entry = (
            dml.insert(lg).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(lg.c.id)
        )
        fold_columns = (
            lg.c.id,
            lg.c.position,
            lg.c.amount,
            lg.c.reason,
            lg.c.delta,
            lg.c.balance_after,
            lg.c.effective_at,
        )
        self.entry_by_key = select(*fold_columns).where(lg.c.dedup_key == _param("dedup_key"))
        self.entry_before = (
            select(lg.c.balance_after, lg.c.position)
            .where(user, lg.c.position < _param("position"))
            .order_by(lg.c.position.desc())
            .limit(1)
        )
        self.entries_from = (
            select(*fold_columns)
            .where(user, lg.c.position >= _param("position"))
            .order_by(lg.c.position)
        )
        self.fold_entry = (
            update(lg)
            .where(lg.c.id == _param("entry_id"))
            .values(delta=_param("new_delta"), balance_after=_param("new_balance_after"))
        )
        self.change_entry = (
            update(lg)
            .where(lg.c.id == _param("entry_id"))
            .values(
                amount=_param("new_amount"),
                effective_at=_param("new_effective_at"),
                position=_param("new_position"),
            )
        )
        self.delete_entry = delete(lg).where(lg.c.id == _param("entry_id"))
        self.delete_adjustments_from = delete(lg).where(
            user, lg.c.position >= _param("position"), lg.c.reason == "adjustment"
        )
        self.resets_of_subscription = select(*fold_columns).where(
            user,
            lg.c.subscription_id == _param("subscription_id"),
            lg.c.reason == "subscription_reset",
        )
        self.ledger_page = select(lg).where(user).order_by(lg.c.position.desc()).limit(_param("n"))
        self.ledger_total = select(func.coalesce(func.sum(lg.c.delta), 0)).where(user)

    def _subscriptions_refunds(self, t: Tables, dml: Any) -> None:
        s, r = t.subscriptions, t.refunds
        # Made empty if new, else locked as it is (a no-op update), and returned either way.
        self.lock_subscription = (
            dml.insert(s)
            .on_conflict_do_update(index_elements=["id"], set_={"status_at": s.c.status_at})
            .returning(*_untimed(s))
        )
        self.save_subscription = (
            update(s)
            .where(s.c.id == _param("sub_id"))
            .values({name: _param(f"v_{name}") for name in SUBSCRIPTION_FIELDS})
        )
        self.subscriptions_of_user = (
            select(s).where(s.c.user_id == _param("user_id")).order_by(s.c.status_at.desc())
        )
        refund = dml.insert(r)
        # A level seen twice takes effect at its earliest news.
        self.add_refund = refund.on_conflict_do_update(
            index_elements=["charge_id", "amount_refunded"],
            set_={
                "refunded_at": case(
                    (refund.excluded.refunded_at < r.c.refunded_at, refund.excluded.refunded_at),
                    else_=r.c.refunded_at,
                )
            },
        )
        self.refund_levels = (
            select(r.c.amount_refunded, r.c.amount, r.c.refunded_at)
            .where(r.c.charge_id == _param("charge_id"))
            .order_by(r.c.amount_refunded)
        )
        known = select(t.sessions.c.payment_intent_id).where(
            t.sessions.c.payment_intent_id.is_not(None)
        )
        self.prune_unmatched_refunds = delete(r).where(
            r.c.received_at < _param("cutoff"), r.c.payment_intent_id.not_in(known)
        )
        self.charges_of_payment_intent = (
            select(r.c.charge_id)
            .where(r.c.payment_intent_id == _param("payment_intent_id"))
            .distinct()
        )


def _append_entry(t: Tables, dml: Any) -> Executable:
    """Add an entry that sorts after the user's last one, folded on the balance row it
    locks; no row unless there is one, the entry is last and new, and the fold stays at or
    above zero (and ``require``): then the entry goes the general way."""
    b, lg = t.balances, t.ledger
    amount = bindparam("new_amount", type_=Integer)
    after = case((bindparam("sets_balance", type_=Boolean), amount), else_=b.c.credits + amount)
    values = {
        "user_id": b.c.user_id,
        "effective_at": bindparam("new_effective_at", type_=lg.c.effective_at.type),
        "position": bindparam("new_position", type_=lg.c.position.type),
        "amount": amount,
        "delta": after - b.c.credits,
        "balance_after": after,
        "reason": bindparam("new_reason", type_=lg.c.reason.type),
        "stripe_object_id": bindparam("new_stripe_object_id", type_=lg.c.stripe_object_id.type),
        "subscription_id": bindparam("new_subscription_id", type_=lg.c.subscription_id.type),
        "dedup_key": bindparam("new_dedup_key", type_=lg.c.dedup_key.type),
        "memo": bindparam("new_memo", type_=lg.c.memo.type),
        "created_at": bindparam("new_created_at", type_=lg.c.created_at.type),
    }
    source = (
        select(*(expression.label(name) for name, expression in values.items()))
        .where(
            b.c.user_id == bindparam("balance_of", type_=b.c.user_id.type),
            or_(b.c.last_position.is_(None), b.c.last_position < values["position"]),
            after >= 0,
            b.c.credits >= bindparam("require", type_=Integer),
        )
        .with_for_update()
    )
    return (  # type: ignore[no-any-return]
        dml.insert(lg)
        .from_select(list(values), source)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(lg.c.delta, lg.c.balance_after)
    )


def _untimed(table: Table) -> tuple[Column[Any], ...]:
    """A row's columns but its timestamps, for rows the handlers read back and never use the
    timestamps of (reading them back is most of the work of reading a row on SQLite)."""
    return tuple(c for c in table.c if not isinstance(c.type, DateTime))


SUBSCRIPTION_FIELDS = (
    "customer_id",
    "price_id",
    "status",
    "current_period_end",
    "cancel_at_period_end",
    "cancel_at",
    "canceled_at",
    "ended_at",
    "status_at",
    "status_source",
    "price_at",
    "price_source",
    "period_at",
    "period_source",
    "snapshot_at",
    "snapshot_source",
    "updated_at",
)
"""The columns of a subscription that its news may change, all written by one UPDATE."""


def _claim(dml: Any, t: Tables, *, again: tuple[str, ...]) -> Executable:
    """Insert an event as processed, or claim it again if its status is one of ``again``;
    its id if claimed, no row if it is a duplicate."""
    e = t.events
    stmt = dml.insert(e)
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["id"],
        set_={
            "status": "processed",
            "attempts": e.c.attempts + 1,
            "processed_at": stmt.excluded.processed_at,
        },
        where=e.c.status.in_([literal(s) for s in again]),
    ).returning(e.c.id)
