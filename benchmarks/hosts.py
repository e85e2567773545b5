"""The three receivers compared, each a small host app, and the databases they run on.

- ``floor``: read the body, store it with one INSERT in its own transaction, answer 200.
- ``usual``: Stripe's Flask sample: ``stripe.Webhook.construct_event`` and a branch on the
  type, no storage.
- ``plugin``: a host app with ``PaxparCheckout``; its ``POST /api/checkout/webhook``.

SQLite runs durably, as the host chooses to configure it: WAL with ``synchronous=FULL``
(an acknowledged event survives a power cut), set on every connection by a SQLAlchemy
``connect`` event; the database file lives on the real disk under ``benchmarks/.data``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import stripe
from flask import Flask, Response, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Column, Integer, MetaData, Table, Text, event, text
from sqlalchemy.engine import Engine, make_url

from flask_paxpar_checkout import PaxparCheckout

from .workload import CREDIT_PRICE, FQDN, PRICES, WEBHOOK_SECRET

DATA_DIR = Path(__file__).resolve().parent / ".data"
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/paxpar_bench"
WEBHOOK_PATH = {"floor": "/webhook", "usual": "/webhook", "plugin": "/api/checkout/webhook"}
VARIANTS = ("floor", "usual", "plugin")


@dataclass(frozen=True)
class Database:
    """A database the benchmark may wipe: ``kind`` is ``sqlite`` or ``postgresql``."""

    kind: str
    url: str

    @property
    def label(self) -> str:
        return "SQLite (WAL, synchronous=FULL)" if self.kind == "sqlite" else "PostgreSQL"


def sqlite_database(name: str = "bench") -> Database:
    """A fresh SQLite file on the real disk (not tmpfs: fsync must mean something)."""
    DATA_DIR.mkdir(exist_ok=True)
    db = Database("sqlite", f"sqlite:///{DATA_DIR / name}.db")
    remove_sqlite(db)
    return db


def remove_sqlite(db: Database) -> None:
    """Delete a SQLite database's files."""
    path = db.url.removeprefix("sqlite:///")
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def pg_database(url: str | None = None, suffix: str = "") -> Database:
    """A PostgreSQL database of the benchmark's own, created if missing."""
    import psycopg

    url = url or os.environ.get("PAXPAR_BENCH_DATABASE_URL") or DEFAULT_PG_URL
    if suffix:
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(path=parts.path + suffix))
    parsed = make_url(url)
    name = parsed.database
    assert name, "the PostgreSQL URL names no database"
    admin = parsed.set(drivername="postgresql", database="postgres")
    dsn = admin.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(f'CREATE DATABASE "{name}"')
    return Database("postgresql", url)


def pg_settings(db: Database) -> dict[str, str]:
    """The PostgreSQL settings that decide durability."""
    import psycopg

    dsn = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        out = {}
        for name in ("server_version", "synchronous_commit", "fsync", "wal_sync_method"):
            row = conn.execute(f"SHOW {name}").fetchone()
            out[name] = str(row[0]) if row else "?"
        return out


def durable_sqlite(engine: Engine, synchronous: str = "FULL") -> None:
    """WAL and ``synchronous=FULL`` on every new connection (a no-op on PostgreSQL)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()


def durable_host(
    name: str, db: Database, *, synchronous: str = "FULL", **config: Any
) -> tuple[Flask, SQLAlchemy, Engine]:
    """A host app with Flask-SQLAlchemy on ``db`` (SQLite made durable on every connection),
    and its engine."""
    app = Flask(name)
    app.config.update(app_config(db, **config))
    sqla = SQLAlchemy()
    sqla.init_app(app)
    with app.app_context():
        engine = sqla.engine
        durable_sqlite(engine, synchronous)
    return app, sqla, engine


def driver_sql(engine: Engine, text: str) -> str:
    """``text``, written with ``?`` placeholders, in the driver's paramstyle (SQLite's qmark
    or psycopg's format)."""
    return text if engine.dialect.paramstyle == "qmark" else text.replace("?", "%s")


def _ping(app: Flask) -> None:
    """``GET /ping``: the server is up (for the HTTP benchmark)."""
    app.add_url_rule("/ping", "ping", lambda: "ok")


def app_config(db: Database, **extra: Any) -> dict[str, Any]:
    """The configuration every benchmark host app shares, on ``db``."""
    return {
        "SQLALCHEMY_DATABASE_URI": db.url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": 5, "max_overflow": 5},
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PAXPAR_FQDN": FQDN,
        "PAXPAR_CHECKOUT_PRICES": dict(PRICES),
        "PAXPAR_CHECKOUT_CREDIT_PRICE_ID": CREDIT_PRICE,
        **extra,
    }


# -- plugin ------------------------------------------------------------------------------


def plugin_app(
    db: Database, *, synchronous: str = "FULL", **config: Any
) -> tuple[Flask, SQLAlchemy]:
    """A host service with the plugin, users named by an ``X-User`` header."""
    app, sqla, _ = durable_host("bench_plugin", db, synchronous=synchronous, **config)
    checkout = PaxparCheckout(app, db=sqla)
    _ping(app)

    @checkout.user_loader
    def current_user() -> Any:
        uid = request.headers.get("X-User")
        return _User(uid, f"user{uid}@example.com") if uid else None

    return app, sqla


@dataclass(frozen=True)
class _User:
    id: str
    email: str


def reset_plugin_tables(app: Flask, sqla: SQLAlchemy) -> None:
    with app.app_context():
        sqla.drop_all()
        sqla.create_all()


# -- floor -------------------------------------------------------------------------------

_floor_metadata = MetaData()
FLOOR_TABLE = Table(
    "bench_floor",
    _floor_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payload", Text, nullable=False),
)


def floor_app(db: Database) -> tuple[Flask, SQLAlchemy]:
    """The least a durable receiver does: the body in one INSERT, committed, then 200."""
    app, sqla, engine = durable_host("bench_floor", db)
    sql = driver_sql(engine, "INSERT INTO bench_floor (payload) VALUES (?)")

    @app.post("/webhook")
    def floor() -> tuple[str, int]:
        payload = request.get_data().decode("utf-8")
        with engine.begin() as conn:
            conn.exec_driver_sql(sql, (payload,))
        return "", 200

    _ping(app)
    return app, sqla


def reset_floor_table(app: Flask, sqla: SQLAlchemy) -> None:
    with app.app_context():
        _floor_metadata.drop_all(sqla.engine)
        _floor_metadata.create_all(sqla.engine)


# -- usual -------------------------------------------------------------------------------


def usual_app() -> Flask:
    """The handler of Stripe's Flask samples: ``construct_event``, then a branch on type."""
    app = Flask("bench_usual")
    endpoint_secret = WEBHOOK_SECRET

    @app.post("/webhook")
    def webhook() -> Response | tuple[str, int]:
        payload = request.data
        sig_header = request.headers.get("Stripe-Signature")
        try:
            event = stripe.Webhook.construct_event(payload, sig_header, endpoint_secret)
        except ValueError:
            return "Invalid payload", 400
        except stripe.SignatureVerificationError:
            return "Invalid signature", 400
        if event.type == "checkout.session.completed":
            session = event.data.object  # fulfil the purchase here
            assert session.id
        elif event.type == "invoice.paid":
            invoice = event.data.object  # continue to provision the subscription
            assert invoice.id
        elif event.type == "invoice.payment_failed":
            invoice = event.data.object  # tell the customer to update their card
            assert invoice.id
        return jsonify(success=True)

    _ping(app)
    return app


# -- all three ---------------------------------------------------------------------------


def make(variant: str, db: Database) -> Flask:
    """The app of ``variant`` on ``db`` (tables already made)."""
    if variant == "plugin":
        return plugin_app(db)[0]
    if variant == "floor":
        return floor_app(db)[0]
    return usual_app()


def reset_tables(db: Database) -> None:
    """Empty the plugin's and the floor's tables on ``db``."""
    app, sqla = plugin_app(db)
    reset_plugin_tables(app, sqla)
    fapp, fsqla = floor_app(db)
    reset_floor_table(fapp, fsqla)
    with app.app_context():
        sqla.engine.dispose()
    with fapp.app_context():
        fsqla.engine.dispose()


def seed_sessions(
    app: Flask, sqla: SQLAlchemy, sessions: list[tuple[Any, ...]], prefix: str = "b"
) -> None:
    """Store the Checkout Sessions the plugin made before Stripe completes them."""
    if not sessions:
        return
    from flask_paxpar_checkout.clock import utcnow
    from flask_paxpar_checkout.state import current_state

    with app.app_context():
        table = current_state().tables.sessions
        now = utcnow()
        rows = [
            {
                "id": sid,
                "user_id": user,
                "mode": mode,
                "qty": qty,
                "price_id": price,
                "customer_id": f"cus_{prefix}{user}",
                "redirect_url": "https://bench.paxpar.tech/front/checkout/success",
                "status": "open",
                "created_at": now,
                "completed_at": None,
                "subscription_id": None,
            }
            for sid, user, mode, qty, price in sessions
        ]
        sqla.session.execute(table.insert(), rows)
        sqla.session.commit()


def count_rows(app: Flask, sqla: SQLAlchemy, sql: str) -> int:
    with app.app_context():
        return int(sqla.session.execute(text(sql)).scalar_one())
