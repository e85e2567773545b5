"""The extension object: init_app, configuration, users, CSRF, migrations, the Python API."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from werkzeug.test import TestResponse

from flask_paxpar_checkout import (
    ConfigurationError,
    InsufficientCredits,
    PaxparCheckout,
)
from flask_paxpar_checkout.testing import EventBuilder, StripeStub, signed

from .conftest import FQDN, PRICE_BASIC, WEBHOOK_SECRET, as_user, other_app
from .helpers import count, ledger_total


def _app(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI="sqlite://",
        PAXPAR_FQDN=FQDN,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    app.config.update(config)
    return app


def test_init_twice_is_refused() -> None:
    app, db = _app(), SQLAlchemy()
    db.init_app(app)
    checkout = PaxparCheckout(app, db=db)
    with pytest.raises(RuntimeError, match="already initialised"):
        checkout.init_app(app, db=db)


def test_one_extension_serves_two_apps() -> None:
    checkout, db = PaxparCheckout(), SQLAlchemy()
    dev, prod = _app(), _app(PAXPAR_FQDN="prod.paxpar.tech")
    for app in (dev, prod):
        db.init_app(app)
        checkout.init_app(app, db=db)
    with dev.app_context():
        assert checkout.config.fqdn == FQDN
    with prod.app_context():
        assert checkout.config.fqdn == "prod.paxpar.tech"
    assert not hasattr(checkout, "app")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"PAXPAR_FQDN": None}, "PAXPAR_FQDN is required"),
        ({"PAXPAR_FQDN": "not a host!"}, "not a host name"),
        ({"STRIPE_WEBHOOK_SECRET": None}, "STRIPE_WEBHOOK_SECRET is required"),
        ({"STRIPE_WEBHOOK_SECRET": "sk_test_1"}, "whsec_"),
        ({"STRIPE_SECRET_KEY": "pk_test_123"}, "publishable key"),
        ({"STRIPE_API_BASE": "localhost:12111"}, "STRIPE_API_BASE must be an http"),
        ({"PAXPAR_CHECKOUT_PUBLIC_URL": "https://x.org/app"}, "without a path"),
        ({"PAXPAR_CHECKOUT_URL_PREFIX": "api/"}, "URL_PREFIX"),
        ({"PAXPAR_CHECKOUT_CREDIT_PRICE_ID": "prod_1"}, "not a Stripe price id"),
        ({"PAXPAR_CHECKOUT_MAX_QTY": 0}, "PAXPAR_CHECKOUT_MAX_QTY must be an integer >= 1"),
        ({"PAXPAR_CHECKOUT_PRICES": {"price_a": -1}}, "credits >= 0"),
        ({"PAXPAR_CHECKOUT_PRICES": {"nope": 1}}, "not a price id"),
        ({"PAXPAR_CHECKOUT_PRICES": "price_a=1"}, "price_a:100"),
        ({"PAXPAR_CHECKOUT_CREDITS_ENABLED": "maybe"}, "must be a boolean"),
        ({"PAXPAR_CHECKOUT_CREDITS_ON_CANCEL": "refund"}, "'keep' or 'zero'"),
        ({"PAXPAR_CHECKOUT_DEFAULT_REDIRECT": "https://evil.com/"}, "unsafe"),
        ({"PAXPAR_CHECKOUT_LOGIN_URL": "javascript:x"}, "LOGIN_URL"),
    ],
)
def test_bad_configuration_fails_at_start_up(config: dict[str, Any], message: str) -> None:
    app, db = _app(**config), SQLAlchemy()
    db.init_app(app)
    with pytest.raises(ConfigurationError, match=message):
        PaxparCheckout(app, db=db)
    assert "paxpar_checkout" not in app.extensions


def test_configuration_from_environment_strings() -> None:
    app, db = (
        _app(
            PAXPAR_CHECKOUT_PRICES="price_a:100, price_b:500",
            PAXPAR_CHECKOUT_CREDITS_ENABLED="false",
            PAXPAR_CHECKOUT_MAX_QTY="50",
            STRIPE_WEBHOOK_SECRET="whsec_a,whsec_b",
            PAXPAR_CHECKOUT_ALLOWED_REDIRECT_HOSTS="App.Paxpar.Tech, localhost:3000",
        ),
        SQLAlchemy(),
    )
    db.init_app(app)
    checkout = PaxparCheckout(app, db=db)
    with app.app_context():
        c = checkout.config
        assert dict(c.prices or {}) == {"price_a": 100, "price_b": 500}
        assert (c.credits_enabled, c.max_qty) == (False, 50)
        assert c.webhook_secrets == ("whsec_a", "whsec_b")
        assert c.allowed_redirect_hosts == {"app.paxpar.tech", "localhost:3000"}
        assert c.public_url == f"https://{FQDN}"


def test_tables_are_prefixed_and_seen_by_alembic_autogenerate() -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    app, db = _app(), SQLAlchemy()
    db.init_app(app)
    PaxparCheckout(app, db=db)
    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    added = {d[1].name for d in diff if d[0] == "add_table"}
    assert added == {
        "paxpar_checkout_customers",
        "paxpar_checkout_sessions",
        "paxpar_checkout_events",
        "paxpar_checkout_outbox",
        "paxpar_checkout_balances",
        "paxpar_checkout_credit_ledger",
        "paxpar_checkout_subscriptions",
        "paxpar_checkout_prices",
        "paxpar_checkout_refunds",
        "paxpar_checkout_sync_state",
    }


def test_flask_login_current_user_is_the_default(config: dict[str, Any], app_parts: Any) -> None:
    from flask_login import LoginManager, UserMixin, login_user  # type: ignore[import-untyped]

    class User(UserMixin):  # type: ignore[misc]
        def __init__(self, uid: int) -> None:
            self.id = uid
            self.email = f"u{uid}@example.com"

    app, db = Flask(__name__), SQLAlchemy()
    app.config.update(config)
    db.init_app(app)
    PaxparCheckout(app, db=db)
    manager = LoginManager(app)
    manager.user_loader(lambda uid: User(int(uid)))

    @app.post("/login/<int:uid>")
    def login(uid: int) -> str:
        login_user(User(uid))
        return "ok"

    with app.app_context():
        client = app.test_client()
        assert client.get("/api/checkout/account").status_code == 401
        client.post("/login/77")
        account = client.get("/api/checkout/account").get_json()
        assert account["user_id"] == "77"
        db.session.remove()
        db.engine.dispose()


@pytest.mark.parametrize("order", ["csrf-first", "csrf-after"])
def test_webhook_is_exempt_from_flask_wtf_csrf(
    config: dict[str, Any], app_parts: Any, order: str
) -> None:
    from flask_wtf.csrf import CSRFProtect  # type: ignore[import-untyped]

    app, db = Flask(__name__), SQLAlchemy()
    app.config.update(config, TESTING=False, WTF_CSRF_ENABLED=True)
    db.init_app(app)
    csrf = CSRFProtect()
    if order == "csrf-first":
        csrf.init_app(app)
    checkout = PaxparCheckout(app, db=db)
    if order == "csrf-after":
        csrf.init_app(app)

    @app.post("/host-form")
    def host_form() -> str:
        return "ok"

    body, headers = signed(
        EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="1"), WEBHOOK_SECRET
    )
    with app.app_context():
        client = app.test_client()
        assert client.post("/host-form").status_code == 400  # CSRF still guards the host
        response = client.post("/api/checkout/webhook", data=body, headers=headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert checkout.credits(1) == 10
        db.session.remove()
        db.engine.dispose()


# -- credits API -------------------------------------------------------------------------------


def test_user_ids_as_int_or_str(app: Flask, checkout: PaxparCheckout) -> None:
    assert checkout.add_credits(42, 5) == 5
    assert checkout.credits("42") == 5
    assert checkout.spend_credits("42", 2) == 3
    assert checkout.credits(42) == 3
    assert checkout.customer_id(42) is None
    with pytest.raises(TypeError):
        checkout.credits(4.2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1 to 64"):
        checkout.credits("")


def test_spend_more_than_the_balance_takes_nothing(app: Flask, checkout: PaxparCheckout) -> None:
    checkout.add_credits(1, 3)
    with pytest.raises(InsufficientCredits) as caught:
        checkout.spend_credits(1, 4)
    assert (caught.value.requested, caught.value.available) == (4, 3)
    assert checkout.credits(1) == 3
    with pytest.raises(InsufficientCredits):
        checkout.spend_credits(2, 1)  # a user with no balance at all
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="positive whole number"):
            checkout.spend_credits(1, bad)  # type: ignore[arg-type]
    assert len(checkout.ledger(1)) == 1


def test_an_entry_after_the_last_one_is_appended_in_two_statements(
    app: Flask, checkout: PaxparCheckout, db: SQLAlchemy
) -> None:
    """The usual case: the entry and the balance row, nothing else; a new user's first
    entry, a spend past the balance and a late entry go the general way and stay right."""
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()[:3]))

    checkout.add_credits(1, 5)  # a new balance row: the general way
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert checkout.add_credits(1, 7) == 12
        assert statements == [
            "INSERT INTO paxpar_checkout_credit_ledger",
            "UPDATE paxpar_checkout_balances SET",
        ]
        assert checkout.spend_credits(1, 12) == 0
        with pytest.raises(InsufficientCredits):
            checkout.spend_credits(1, 1)
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    entries = [(e["reason"], e["delta"], e["balance_after"]) for e in checkout.ledger(1)]
    assert entries == [("spend", -12, 0), ("grant", 7, 12), ("grant", 5, 5)]
    assert ledger_total("1") == checkout.credits(1) == 0


def test_spend_without_commit_joins_the_callers_transaction(
    app: Flask, checkout: PaxparCheckout, db: SQLAlchemy
) -> None:
    checkout.add_credits(1, 10)
    checkout.spend_credits(1, 4, commit=False)
    assert checkout.credits(1) == 6
    db.session.rollback()
    assert checkout.credits(1) == 10
    checkout.spend_credits(1, 4, commit=False, memo="report")
    db.session.commit()
    assert checkout.credits(1) == 6
    assert checkout.ledger(1)[0]["memo"] == "report"


def test_concurrent_spenders_never_overdraw_nor_lose_a_spend(
    app: Flask, checkout: PaxparCheckout
) -> None:
    checkout.add_credits(1, 50)
    results: list[str] = []
    lock = threading.Lock()

    def spender() -> None:
        with app.app_context():
            for _ in range(10):
                try:
                    checkout.spend_credits(1, 3)
                    outcome = "spent"
                except InsufficientCredits:
                    outcome = "refused"
                except Exception as exc:  # SQLite's one writer may time out: not a spend
                    outcome = f"error {type(exc).__name__}"
                with lock:
                    results.append(outcome)

    threads = [threading.Thread(target=spender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    spent = results.count("spent")
    assert spent == 16  # 50 // 3: every credit that could be spent was, and no more
    assert results.count("refused") == 40 - spent - sum(r.startswith("error") for r in results)
    assert checkout.credits(1) == 50 - 3 * spent == 2

    assert ledger_total("1") == 2


# -- account, success callback, configuration gaps ----------------------------------------------


def test_account_json(client: Any, checkout: PaxparCheckout, deliver: Any) -> None:
    deliver(
        EventBuilder(fqdn=FQDN).invoice_paid(
            user_id="3", subscription_id="sub_3", price_id=PRICE_BASIC, period_end=2_000_000_000
        )
    )
    response = client.get("/api/checkout/account", headers=as_user(3))
    assert response.headers["Deprecation"] == "@1767225600"
    assert response.get_json() == {
        "user_id": "3",
        "credits": 100,
        "credits_enabled": True,
        "subscription": {
            "id": "sub_3",
            "price_id": PRICE_BASIC,
            "status": "active",
            "active": True,
            "current_period_end": 2_000_000_000,
            "cancel_at_period_end": False,
            "cancel_at": None,
        },
    }
    assert client.get("/api/checkout/account").status_code == 401


def test_without_secret_key_checkout_says_what_to_set(
    config: dict[str, Any], app_parts: Any
) -> None:
    with other_app({**config, "STRIPE_SECRET_KEY": None}) as (app, _, _):
        response = app.test_client().get("/api/checkout/session?qty=1", headers=as_user(1))
        assert response.status_code == 503
        assert "STRIPE_SECRET_KEY" in response.get_json()["message"]


def test_without_credit_price_qty_says_what_to_set(config: dict[str, Any], app_parts: Any) -> None:
    with other_app({**config, "PAXPAR_CHECKOUT_CREDIT_PRICE_ID": None}) as (app, _, _):
        response = app.test_client().get("/api/checkout/session?qty=1", headers=as_user(1))
        assert response.status_code == 503
        assert "PAXPAR_CHECKOUT_CREDIT_PRICE_ID" in response.get_json()["message"]
        assert count("sessions") == 0


def test_without_allow_list_prices_are_checked_on_stripe_once(
    config: dict[str, Any], app_parts: Any, stripe: StripeStub
) -> None:
    stripe.add_price("price_monthly", recurring=True, product_metadata={"credits": "250"})
    stripe.add_price("price_once", recurring=False)
    stripe.add_price("price_old", recurring=True, active=False)
    config = {k: v for k, v in config.items() if k != "PAXPAR_CHECKOUT_PRICES"}
    with other_app(config) as (app, _, checkout):
        client = app.test_client()

        def get(query: str) -> TestResponse:
            return client.get(f"/api/checkout/session?{query}", headers=as_user(1))

        assert get("price_id=price_monthly").status_code == 303
        assert get("price_id=price_monthly").status_code == 303
        assert len(stripe.requests_to("GET", "/v1/prices/price_monthly")) == 1
        assert stripe.requests_to("GET", "/v1/prices/")[0].params == {"expand": ["product"]}
        for price, words in (("price_once", "recurring"), ("price_old", "recurring")):
            response = get(f"price_id={price}")
            assert response.status_code == 400
            assert words in response.get_json()["errors"]["price_id"][0]
        stripe.auto_prices = False
        response = get("price_id=price_missing")
        assert response.status_code == 400
        assert "No such price" in response.get_json()["errors"]["price_id"][0]

        # the credits kept from the price's product metadata drive the invoice reset
        body, headers = signed(
            EventBuilder(fqdn=FQDN).invoice_paid(
                user_id="1", subscription_id="sub_1", price_id="price_monthly"
            ),
            WEBHOOK_SECRET,
        )
        assert client.post("/api/checkout/webhook", data=body, headers=headers).status_code == 200
        assert checkout.credits(1) == 250
        stripe.auto_prices = True
