"""The plugin's tables live on the host's metadata: Alembic's autogenerate (Flask-Migrate)
must see every change of this version against a database made by version 0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, create_engine

from flask_paxpar_checkout.models import define_tables

from . import schema_0_1
from .reliability_db import isolated_database


def _changes(url: str) -> list[Any]:
    engine = create_engine(url)
    old = MetaData()
    schema_0_1.define_tables(old)
    old.create_all(engine)
    new = MetaData()
    define_tables(new)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), new)
    finally:
        old.drop_all(engine)
        engine.dispose()
    return list(diff)


def _flat(diff: list[Any]) -> list[Any]:
    out: list[Any] = []
    for change in diff:  # column type changes come grouped in lists
        out.extend(change if isinstance(change, list) else [change])
    return out


def test_autogenerate_sees_every_change_from_version_0_1(tmp_path: Path) -> None:
    with isolated_database(tmp_path) as url:
        diff = _flat(_changes(url))
    added_tables = {c[1].name for c in diff if c[0] == "add_table"}
    assert added_tables == {
        "paxpar_checkout_refunds",
        "paxpar_checkout_outbox",
        "paxpar_checkout_sync_state",
    }
    added = {(c[2], c[3].name) for c in diff if c[0] == "add_column"}
    assert {
        ("paxpar_checkout_credit_ledger", "effective_at"),
        ("paxpar_checkout_credit_ledger", "position"),
        ("paxpar_checkout_credit_ledger", "amount"),
        ("paxpar_checkout_credit_ledger", "subscription_id"),
        ("paxpar_checkout_balances", "last_position"),
        ("paxpar_checkout_sessions", "payment_intent_id"),
        ("paxpar_checkout_subscriptions", "ended_at"),
        ("paxpar_checkout_subscriptions", "status_source"),
        ("paxpar_checkout_subscriptions", "price_at"),
        ("paxpar_checkout_subscriptions", "snapshot_at"),
    } <= added
    removed = {(c[2], c[3].name) for c in diff if c[0] == "remove_column"}
    assert removed == {("paxpar_checkout_subscriptions", "last_paid_invoice_created")}
    new_indexes = {c[1].name for c in diff if c[0] == "add_index"}
    assert "paxpar_checkout_credit_ledger_position_idx" in new_indexes


def test_a_database_of_this_version_needs_no_migration(tmp_path: Path) -> None:
    with isolated_database(tmp_path) as url:
        _no_changes_on(url)


def _no_changes_on(url: str) -> None:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db = SQLAlchemy()
    db.init_app(app)
    define_tables(db.metadata)
    with app.app_context():
        db.create_all()
        try:
            with db.engine.connect() as conn:
                assert compare_metadata(MigrationContext.configure(conn), db.metadata) == []
        finally:
            db.drop_all()
            db.engine.dispose()
