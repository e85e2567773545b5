"""The plugin's tables, defined on the host's ``MetaData`` so ``db.create_all()`` and
Alembic autogenerate see them. Users are keyed by the host's user id as a string: the
plugin never references the host's user table."""

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
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

PREFIX = "paxpar_checkout_"
_ID = 255  # Stripe ids are opaque strings "up to 255 characters"
_USER = 64
_AUTO_ID = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER only
# A ledger position orders entries by comparing strings: byte order, whatever the locale.
_POSITION = String(_ID + 64).with_variant(String(_ID + 64, collation="C"), "postgresql")


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
    refunds: Table


def define_tables(metadata: MetaData) -> Tables:
    """Add the plugin's tables to ``metadata`` (once; later calls return the same tables)."""
    define_sync_state(metadata)
    existing = metadata.tables.get(PREFIX + "events")
    if existing is not None:
        t = metadata.tables
        return Tables(*(t[PREFIX + n] for n in _NAMES))
    tables = Tables(
        _customers(metadata),
        _sessions(metadata),
        _events(metadata),
        _balances(metadata),
        _ledger(metadata),
        _subscriptions(metadata),
        _prices(metadata),
        _refunds(metadata),
    )
    define_outbox_table(metadata)
    return tables


def _customers(metadata: MetaData) -> Table:
    """The Stripe customer of each user."""
    customers = Table(
        PREFIX + "customers",
        metadata,
        Column("user_id", String(_USER), primary_key=True),
        Column("stripe_customer_id", String(_ID), nullable=False, unique=True),
        Column("email", String(320)),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    return customers


def _sessions(metadata: MetaData) -> Table:
    """The Checkout Sessions this instance created, and what became of them."""
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
        # A refunded charge names its payment intent only: this is how a refund finds it.
        Column("payment_intent_id", String(_ID), index=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("completed_at", DateTime(timezone=True)),
    )
    return sessions


def _events(metadata: MetaData) -> Table:
    """Every verified event received, once, with its outcome."""
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
    return events


def _balances(metadata: MetaData) -> Table:
    """Each user's credit balance, locked while an entry is folded in."""
    balances = Table(
        PREFIX + "balances",
        metadata,
        Column("user_id", String(_USER), primary_key=True),
        Column("credits", Integer, nullable=False),
        # The position of the ledger's last entry: an entry sorting after it is appended,
        # any other is late and folds the ledger again from where it belongs.
        Column("last_position", _POSITION),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        CheckConstraint("credits >= 0", name=PREFIX + "balances_not_negative"),
    )
    return balances


def _ledger(metadata: MetaData) -> Table:
    """The credit ledger: one row per business effect, in Stripe's timeline."""
    ledger = Table(
        PREFIX + "credit_ledger",
        metadata,
        Column("id", _AUTO_ID, primary_key=True, autoincrement=True),
        Column("user_id", String(_USER), nullable=False),
        # Where the entry takes effect in Stripe's timeline, and its place in the fold:
        # "<effective time in microseconds>|<0 for a reset, else 1>|<dedup_key>".
        Column("effective_at", DateTime(timezone=True), nullable=False),
        Column("position", _POSITION, nullable=False),
        # What the entry asks: a reset's balance, else the signed change.
        Column("amount", Integer, nullable=False),
        # What it did, as folded: the change of the balance and the balance after it.
        Column("delta", Integer, nullable=False),
        Column("balance_after", Integer, nullable=False),
        Column("reason", String(32), nullable=False),
        Column("stripe_object_id", String(_ID)),
        Column("subscription_id", String(_ID)),
        # One business effect, one row: "purchase:cs_...", "reset:in_...", "local:<uuid>".
        Column("dedup_key", String(_ID + 32), nullable=False, unique=True),
        Column("memo", String(255)),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Index(PREFIX + "credit_ledger_position_idx", ledger.c.user_id, ledger.c.position, unique=True)
    return ledger


def _subscriptions(metadata: MetaData) -> Table:
    """Each subscription's state, the newest news applied to each of its parts."""
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
        Column("ended_at", BigInteger),
        # The newest news applied, by Stripe's time then the event's id, so that a late,
        # older event never rolls the record back: of the status (`status_*`), of the price
        # (`price_*`), of the period end (`period_*`), and of the cancellation fields, which
        # only the subscription's own snapshots carry (`snapshot_*`).
        Column("status_at", BigInteger, nullable=False),
        Column("status_source", String(_ID), nullable=False, server_default=""),
        Column("price_at", BigInteger, nullable=False, server_default="0"),
        Column("price_source", String(_ID), nullable=False, server_default=""),
        Column("period_at", BigInteger, nullable=False, server_default="0"),
        Column("period_source", String(_ID), nullable=False, server_default=""),
        Column("snapshot_at", BigInteger, nullable=False, server_default="0"),
        Column("snapshot_source", String(_ID), nullable=False, server_default=""),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )
    return subscriptions


def _prices(metadata: MetaData) -> Table:
    """The prices read from Stripe, and the credits each grants per period."""
    prices = Table(
        PREFIX + "prices",
        metadata,
        Column("id", String(_ID), primary_key=True),
        Column("active", Boolean, nullable=False),
        Column("recurring", Boolean, nullable=False),
        Column("credits", Integer),
        Column("fetched_at", DateTime(timezone=True), nullable=False),
    )
    return prices


def _refunds(metadata: MetaData) -> Table:
    """The refund levels seen of each charge."""
    # Every cumulative `amount_refunded` seen of a charge: a refund finds its purchase by the
    # payment intent, and waits here, without effect, until that purchase is known.
    refunds = Table(
        PREFIX + "refunds",
        metadata,
        Column("charge_id", String(_ID), primary_key=True),
        Column("amount_refunded", BigInteger, primary_key=True),
        Column("payment_intent_id", String(_ID), nullable=False, index=True),
        Column("amount", BigInteger, nullable=False),
        Column("refunded_at", BigInteger, nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False),
    )
    return refunds


_NAMES = (
    "customers",
    "sessions",
    "events",
    "balances",
    "credit_ledger",
    "subscriptions",
    "prices",
    "refunds",
)


# -- the outbox of deferred handlers ---------------------------------------------------------


def define_outbox_table(metadata: MetaData) -> Table:
    """The outbox: one row per (event, deferred handler), written in the event's transaction
    and worked off after the commit (once; later calls return the same table)."""
    existing = metadata.tables.get(PREFIX + "outbox")
    if existing is not None:
        return existing
    outbox = Table(
        PREFIX + "outbox",
        metadata,
        Column("event_id", String(_ID), nullable=False),
        Column("handler", String(255), nullable=False),
        Column("event_type", String(100), nullable=False),
        Column("payload", Text, nullable=False),
        # pending (due at next_attempt_at), running (claimed at claimed_at), done or failed
        Column("status", String(16), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", DateTime(timezone=True), nullable=False),
        Column("claimed_at", DateTime(timezone=True)),
        # When the row was last handed to the task queue; NULL when the hand-off failed.
        Column("sent_at", DateTime(timezone=True)),
        Column("last_error", Text),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("done_at", DateTime(timezone=True)),
        PrimaryKeyConstraint("event_id", "handler", name=PREFIX + "outbox_pk"),
    )
    Index(PREFIX + "outbox_status_idx", outbox.c.status, outbox.c.next_attempt_at)
    return outbox


# -- `flask checkout sync`: its checkpoint and its lease -----------------------------------

SYNC_STATE = PREFIX + "sync_state"


def define_sync_state(metadata: MetaData) -> Table:
    """The sync's one row per name: the start of the last completed sync (the checkpoint)
    and the lease that lets one sync run at a time (once; later calls return the same)."""
    existing = metadata.tables.get(SYNC_STATE)
    if existing is not None:
        return existing
    return Table(
        SYNC_STATE,
        metadata,
        Column("name", String(64), primary_key=True),
        Column("checkpoint", BigInteger),
        Column("completed_at", BigInteger),
        Column("lease_owner", String(64)),
        Column("lease_until", BigInteger),
    )
