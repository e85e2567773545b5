"""Fixtures: a host app on SQLite (or PostgreSQL with PAXPAR_TEST_DATABASE_URL), its db and
client, a local Stripe API server, and signed webhook deliveries."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, Response, request
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.testing import EventBuilder, StripeStub, TestStripe, signed

FQDN = "dev.paxpar.tech"
WEBHOOK_SECRET = "whsec_test_secret"
CREDIT_PRICE = "price_credit1"
PRICE_BASIC = "price_basic1"
PRICE_PRO = "price_pro1"
PRICES = {PRICE_BASIC: 100, PRICE_PRO: 500}


@dataclass
class TestUser:
    id: int
    email: str | None = None


def database_url(tmp_path: Any) -> str:
    return os.environ.get("PAXPAR_TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/test.db"


def base_config(stripe_url: str, db_url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test",
        "SQLALCHEMY_DATABASE_URI": db_url,
        "STRIPE_SECRET_KEY": "sk_test_123",
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PAXPAR_FQDN": FQDN,
        "PAXPAR_CHECKOUT_CREDIT_PRICE_ID": CREDIT_PRICE,
        "PAXPAR_CHECKOUT_PRICES": PRICES,
        "PAXPAR_CHECKOUT_STRIPE_MAX_NETWORK_RETRIES": 1,
        "PAXPAR_CHECKOUT_STRIPE_TIMEOUT": 2,
    }


def make_app(config: dict[str, Any]) -> tuple[Flask, SQLAlchemy, PaxparCheckout]:
    """A host service: its own user table, a test login by header, the plugin."""
    app = Flask(__name__)
    app.config.update(config)
    db = SQLAlchemy()

    class HostUser(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "host_user"
        id: Mapped[int] = mapped_column(primary_key=True)

    db.init_app(app)
    checkout = PaxparCheckout()
    checkout.init_app(app, db=db)

    @checkout.user_loader
    def current_user() -> TestUser | None:
        uid = request.headers.get("X-Test-User")
        return TestUser(int(uid), f"user{uid}@example.com") if uid else None

    @app.get("/front/checkout/success")
    def landing() -> Response:
        return Response("landed")

    return app, db, checkout


@contextmanager
def other_app(config: dict[str, Any]) -> Iterator[tuple[Flask, SQLAlchemy, PaxparCheckout]]:
    """Another app on the same database (tables already made), inside its app context."""
    app, db, checkout = make_app(config)
    with app.app_context():
        yield app, db, checkout
        db.session.remove()
        db.engine.dispose()


pytest_plugins = ["flask_paxpar_checkout.testing.pytest_plugin"]


@pytest.fixture
def stripe(local_stripe: TestStripe) -> TestStripe:
    """The plugin's local Stripe, emptied, under the name the tests know it by."""
    return local_stripe


@pytest.fixture
def config(stripe: StripeStub, tmp_path: Any) -> dict[str, Any]:
    """Override in a test module to change the app's configuration."""
    return base_config(stripe.url, database_url(tmp_path))


@pytest.fixture
def app_parts(config: dict[str, Any]) -> Iterator[tuple[Flask, SQLAlchemy, PaxparCheckout]]:
    app, db, checkout = make_app(config)
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app, db, checkout
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture
def app(app_parts: tuple[Flask, SQLAlchemy, PaxparCheckout]) -> Iterator[Flask]:
    app = app_parts[0]
    with app.app_context():
        yield app


@pytest.fixture
def db(app_parts: tuple[Flask, SQLAlchemy, PaxparCheckout]) -> SQLAlchemy:
    return app_parts[1]


@pytest.fixture
def checkout(app_parts: tuple[Flask, SQLAlchemy, PaxparCheckout]) -> PaxparCheckout:
    return app_parts[2]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture(params=["2026-07-29.dahlia", "2024-04-10"], ids=["basil-era", "pre-basil"])
def events(request: pytest.FixtureRequest) -> EventBuilder:
    """Events of this instance, in each API era of the payloads."""
    return EventBuilder(fqdn=FQDN, era=request.param)


@pytest.fixture
def deliver(client: FlaskClient, db: SQLAlchemy) -> Callable[..., Any]:
    """POST an event to the webhook, signed as Stripe signs it.

    The request shares the test's app context, hence its session: that session's reads are
    ended first, as a server's request starts with a session of its own that holds nothing.
    """

    def post(event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, **kw: Any) -> Any:
        body, headers = signed(event, secret, **kw)
        db.session.commit()
        return client.post("/api/checkout/webhook", data=body, headers=headers)

    return post


def as_user(user_id: int, **headers: str) -> dict[str, str]:
    return {"X-Test-User": str(user_id), **headers}
