"""The plugin's tables as version 0.1 defined them, to check that a host's migration tool sees
every change of this version (``tests/test_migration.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

PREFIX = "paxpar_checkout_"
_ID = 255  # Stripe ids are opaque strings "up to 255 characters"
_USER = 64
_AUTO_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only


@dataclass(frozen=True)
class Tables:
    """The plugin's tables in one host ``MetaData``."""

    customers: Table
    sessions: Table
    events: Table
    balances: Table
    ledger: Table
    subscriptions: Table
    prices: Table


def define_tables(metadata: MetaData) -> Tables:
    """Add the plugin's tables to ``metadata`` (once; later calls return the same tables)."""
    existing = metadata.tables.get(PREFIX + "events")
    if existing is not None:
        t = metadata.tables
        return Tables(*(t[PREFIX + n] for n in _NAMES))

    customers = Table(
        PREFIX + "customers",
        metadata,
        Column("user_id", String(_USER), primary_key=True),
        Column("stripe_customer_id", String(_ID), nullable=False, unique=True),
        Column("email", String(320)),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    sessions = Table(
        PREFIX + "sessions",
        metadata,
        Column("id", String(_ID), primary_key=True),
        Column("user_id", String(_USER), nullable=False, index=True),
        Column("mode", String(16), nullable=False),
        Column("qty", Integer),
        Column("price_id", String(_ID)),
        Column("customer_id", String(_ID)),
        Column("redirect_url", Text, nullable=False),
        Column("status", String(16), nullable=False),
        Column("subscription_id", String(_ID)),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("completed_at", DateTime(timezone=True)),
    )
    events = Table(
        PREFIX + "events",
        metadata,
        Column("id", String(_ID), primary_key=True),
        Column("type", String(100), nullable=False),
        Column("fqdn", String(253)),
        Column("api_version", String(64)),
        Column("created", BigInteger, nullable=False),
        Column("livemode", Boolean, nullable=False),
        Column("status", String(16), nullable=False),
        Column("reason", String(255)),
        Column("attempts", Integer, nullable=False),
        Column("last_error", Text),
        Column("received_at", DateTime(timezone=True), nullable=False, index=True),
        Column("processed_at", DateTime(timezone=True)),
        Column("payload", Text, nullable=False),
    )
    # Each index is written by every delivery: only what is looked up. `received_at` serves
    # listing and pruning; failed events, which `retry-failed` looks for, are few.
    failed = events.c.status == "failed"
    Index(
        PREFIX + "events_failed_idx",
        events.c.created,
        sqlite_where=failed,
        postgresql_where=failed,
    )
    balances = Table(
        PREFIX + "balances",
        metadata,
        Column("user_id", String(_USER), primary_key=True),
        Column("credits", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        CheckConstraint("credits >= 0", name=PREFIX + "balances_not_negative"),
    )
    ledger = Table(
        PREFIX + "credit_ledger",
        metadata,
        Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        Column("user_id", String(_USER), nullable=False, index=True),
        Column("delta", Integer, nullable=False),
        Column("balance_after", Integer, nullable=False),
        Column("reason", String(32), nullable=False),
        Column("stripe_object_id", String(_ID)),
        # One business effect, one row: "purchase:cs_...", "reset:in_...". NULL for spends.
        Column("dedup_key", String(_ID + 32), unique=True),
        Column("memo", String(255)),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    subscriptions = Table(
        PREFIX + "subscriptions",
        metadata,
        Column("id", String(_ID), primary_key=True),
        Column("user_id", String(_USER), nullable=False, index=True),
        Column("customer_id", String(_ID)),
        Column("price_id", String(_ID)),
        Column("status", String(32), nullable=False),
        Column("current_period_end", BigInteger),
        Column("cancel_at_period_end", Boolean, nullable=False),
        Column("cancel_at", BigInteger),
        Column("canceled_at", BigInteger),
        # Stripe `created` of the newest event applied to status / to credits, so that a late,
        # older event never rolls the record back.
        Column("status_at", BigInteger, nullable=False),
        Column("last_paid_invoice_created", BigInteger),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    prices = Table(
        PREFIX + "prices",
        metadata,
        Column("id", String(_ID), primary_key=True),
        Column("active", Boolean, nullable=False),
        Column("recurring", Boolean, nullable=False),
        Column("credits", Integer),
        Column("fetched_at", DateTime(timezone=True), nullable=False),
    )
    return Tables(customers, sessions, events, balances, ledger, subscriptions, prices)


_NAMES = ("customers", "sessions", "events", "balances", "credit_ledger", "subscriptions", "prices")
