"""The example host service (``examples/host_app``): its pages, through its test client."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient

from examples.host_app import DEV_WEBHOOK_SECRET, create_app
from examples.host_app.extensions import checkout, db
from examples.host_app.settings import settings_from_env
from examples.host_app.views import safe_next
from flask_paxpar_checkout.testing import EventBuilder, StripeStub, signed

PASSWORD = "paxpar-demo"
SESSION_LINK = re.compile(r'href="(/api/checkout/session\?[^"]*)"')


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example reads its settings from the environment: start from none of them."""
    for key in list(os.environ):
        if key.startswith(("PAXPAR_", "STRIPE_")) or key in ("DATABASE_URL", "SECRET_KEY", "PORT"):
            monkeypatch.delenv(key)


@pytest.fixture
def make(tmp_path: Path, stripe: StripeStub) -> Iterator[Callable[..., Flask]]:
    """Build the example app on a SQLite file in tmp_path; keyword arguments are settings."""
    apps: list[Flask] = []

    def build(**settings: Any) -> Flask:
        config = {
            "TESTING": True,
            "SECRET_KEY": "test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/example-{len(apps)}.db",
            "STRIPE_SECRET_KEY": "sk_test_example",
            "STRIPE_API_BASE": stripe.url,
            "PAXPAR_CHECKOUT_STRIPE_MAX_NETWORK_RETRIES": 0,
            **settings,
        }
        app = create_app(config)
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make: Callable[..., Flask]) -> Flask:
    return make()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def sign_in(client: FlaskClient, username: str = "alice", **extra: str) -> Any:
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf_token"]
    form = {"username": username, "password": PASSWORD, "csrf_token": token, **extra}
    return client.post("/login", data=form)


def page(client: FlaskClient, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def deliver(client: FlaskClient, event: dict[str, Any]) -> Any:
    body, headers = signed(event, DEV_WEBHOOK_SECRET)
    return client.post("/api/checkout/webhook", data=body, headers=headers)


# -- sign-in -----------------------------------------------------------------------------


def test_sign_in_page_shows_the_demo_logins(client: FlaskClient) -> None:
    html = page(client, "/login")
    assert "<code>alice</code>" in html and "<code>bob</code>" in html
    assert f"<code>{PASSWORD}</code>" in html


def test_sign_in_and_out(client: FlaskClient) -> None:
    response = sign_in(client)
    assert response.status_code == 303
    assert response.headers["Location"] == "/account"
    html = page(client, "/account")
    assert "alice" in html and "alice@example.com" in html

    assert client.post("/logout", data={}).status_code == 400  # no CSRF token
    with client.session_transaction() as session:
        token = session["csrf_token"]
    response = client.post("/logout", data={"csrf_token": token})
    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    assert client.get("/account").status_code == 302


def test_wrong_password(client: FlaskClient) -> None:
    client.get("/login")
    with client.session_transaction() as session:
        token = session["csrf_token"]
    response = client.post(
        "/login", data={"username": "alice", "password": "nope", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "wrong password" in response.get_data(as_text=True)
    assert client.get("/account").status_code == 302


def test_sign_in_needs_the_forms_token(client: FlaskClient) -> None:
    response = client.post("/login", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/account").status_code == 302


def test_account_needs_a_sign_in(client: FlaskClient) -> None:
    response = client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Faccount"
    assert sign_in(client, next="/account").headers["Location"] == "/account"


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/path",
        "/\\evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        "evil.example",
        "",
    ],
)
def test_next_must_be_a_local_path(client: FlaskClient, target: str) -> None:
    response = sign_in(client, next=target)
    assert (response.status_code, response.headers["Location"]) == (303, "/account")
    assert safe_next(target) is None


def test_safe_next_keeps_local_paths() -> None:
    path = "/api/checkout/session?price_id=price_basic"
    assert safe_next(path) == path
    assert safe_next("/account") == "/account"


# -- prices ------------------------------------------------------------------------------


def test_prices_page_links_are_the_documented_ones(client: FlaskClient) -> None:
    html = page(client, "/prices")
    assert SESSION_LINK.findall(html) == [
        "/api/checkout/session?price_id=price_basic",
        "/api/checkout/session?price_id=price_pro",
    ]
    assert "100 credits" in html and "500 credits" in html
    assert "Checkout is not configured" not in html


def test_prices_come_from_the_plugins_config(make: Callable[..., Flask]) -> None:
    app = make(PAXPAR_CHECKOUT_PRICES="price_1KqDAWK0npsJqs8Ma6zyHflo:250")
    html = page(app.test_client(), "/prices")
    assert SESSION_LINK.findall(html) == [
        "/api/checkout/session?price_id=price_1KqDAWK0npsJqs8Ma6zyHflo"
    ]
    assert "250 credits" in html


def test_prices_from_the_environment(
    make: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAXPAR_CHECKOUT_PRICES", "price_envA:10,price_envB:20")
    html = page(make().test_client(), "/prices")
    assert SESSION_LINK.findall(html) == [
        "/api/checkout/session?price_id=price_envA",
        "/api/checkout/session?price_id=price_envB",
    ]


def test_credits_form(client: FlaskClient) -> None:
    html = page(client, "/prices")
    form = re.search(r"<form[^>]*action=\"/api/checkout/session\"[^>]*>(.*?)</form>", html, re.S)
    assert form is not None
    assert 'method="get"' in form.group(0)
    assert re.search(r'<input name="qty" type="number" min="1" max="10000"', form.group(1))
    assert "Buy credits" in form.group(1)


def test_credits_form_submits_to_the_plugin(client: FlaskClient, stripe: StripeStub) -> None:
    sign_in(client)
    response = client.get("/api/checkout/session?qty=25")
    assert response.status_code == 303
    assert response.headers["Location"].startswith(stripe.url + "/c/pay/cs_test_")
    [create] = stripe.requests_to("POST", "/v1/checkout/sessions")
    assert create.params["line_items"] == [{"price": "price_credit", "quantity": "25"}]
    assert create.params["metadata"]["paxpar_fqdn"] == "localhost"


def test_without_a_stripe_key_the_pages_say_what_to_set(make: Callable[..., Flask]) -> None:
    client = make(STRIPE_SECRET_KEY=None, STRIPE_API_BASE=None).test_client()
    html = page(client, "/prices")
    assert "Checkout is not configured yet" in html
    assert "STRIPE_SECRET_KEY=sk_test_" in html
    assert "STRIPE_API_BASE=http://127.0.0.1:12111" in html  # stripe-mock
    assert "checkout trigger invoice.paid" in html
    assert SESSION_LINK.findall(html) == []  # no link that would answer 503
    assert "<code>/api/checkout/session?price_id=price_basic</code>" in html
    assert re.search(r'<button type="submit" disabled>Buy credits</button>', html)

    sign_in(client)
    assert "alice" in page(client, "/account")
    response = client.get("/api/checkout/session?price_id=price_basic")
    assert response.status_code == 503
    assert "STRIPE_SECRET_KEY" in response.get_json()["message"]


def test_demo_prices_are_pointed_out_with_a_real_key(make: Callable[..., Flask]) -> None:
    html = page(make(STRIPE_API_BASE=None).test_client(), "/prices")
    assert "made-up price ids" in html
    html = page(make().test_client(), "/prices")  # against a local Stripe (stripe-mock)
    assert "made-up price ids" not in html
    assert "Checkout Sessions are created on" in html


def test_without_a_credit_price(make: Callable[..., Flask]) -> None:
    html = page(make(PAXPAR_CHECKOUT_CREDIT_PRICE_ID=None).test_client(), "/prices")
    assert "Buying credits needs <code>PAXPAR_CHECKOUT_CREDIT_PRICE_ID</code>" in html
    assert "Buy credits" not in html


# -- checkout ----------------------------------------------------------------------------


def test_anonymous_checkout_goes_to_sign_in_and_back(
    client: FlaskClient, stripe: StripeStub
) -> None:
    link = "/api/checkout/session?price_id=price_basic"
    response = client.get(link)
    assert response.status_code == 303
    assert response.headers["Location"] == "/login?next=" + quote(link, safe="")
    assert stripe.requests == []

    html = page(client, response.headers["Location"])
    assert f'name="next" value="{link}"'.replace("&", "&amp;") in html

    response = sign_in(client, next=link)
    assert (response.status_code, response.headers["Location"]) == (303, link)
    response = client.get(link)
    assert response.status_code == 303
    assert response.headers["Location"].startswith(stripe.url + "/c/pay/cs_test_")
    [create] = stripe.requests_to("POST", "/v1/checkout/sessions")
    assert create.params["client_reference_id"] == "1"
    assert create.params["success_url"].startswith("http://localhost:5000/api/checkout/success?")
    assert create.params["cancel_url"] == "http://localhost:5000/front/checkout/cancel"


def test_return_from_stripe_and_portal(client: FlaskClient, stripe: StripeStub) -> None:
    sign_in(client, "bob")
    location = client.get("/api/checkout/session?price_id=price_pro").headers["Location"]
    session_id = location.rsplit("/", 1)[1]
    stripe.complete_session(session_id)

    response = client.get(f"/api/checkout/success?session_id={session_id}")
    assert (response.status_code, response.headers["Location"]) == (
        303,
        "http://localhost:5000/front/checkout/success",
    )
    assert "Thank you!" in page(client, "/front/checkout/success")
    html = page(client, "/account")
    assert 'id="subscription-status">active<' in html
    assert "price_pro" in html and "500 credits per period" in html

    portal = client.get("/api/checkout/portal?redirect=/account")
    assert portal.status_code == 303
    assert portal.headers["Location"].startswith(stripe.url + "/p/session/bps_")
    [create] = stripe.requests_to("POST", "/v1/billing_portal/sessions")
    assert create.params["return_url"] == "http://localhost:5000/account"


def test_cancel_page(client: FlaskClient) -> None:
    html = page(client, "/front/checkout/cancel")
    assert "Nothing was charged" in html


# -- account -----------------------------------------------------------------------------


def test_account_page_shows_balance_ledger_and_subscription(
    app: Flask, client: FlaskClient
) -> None:
    sign_in(client)
    html = page(client, "/account")
    assert 'id="credit-balance">0<' in html
    assert "No subscription yet" in html
    assert "No credit movements yet" in html
    assert "Manage subscription" not in html

    events = EventBuilder(fqdn="localhost")
    paid = events.invoice_paid(user_id="1", subscription_id="sub_demo1", price_id="price_basic")
    assert deliver(client, paid).get_json()["status"] == "processed"
    with app.app_context():
        checkout.spend_credits(1, 30, memo="report export")

    html = page(client, "/account")
    assert 'id="credit-balance">70<' in html
    assert 'id="subscription-status">active<' in html
    assert "sub_demo1" in html and "100 credits per period" in html
    assert "subscription_reset" in html and paid["data"]["object"]["id"] in html
    assert "+100" in html and "-30" in html and "report export" in html
    assert 'href="/api/checkout/portal?redirect=/account">Manage subscription' in html
    assert "checkout trigger invoice.paid --user 1" in html

    failed = events.invoice_payment_failed(  # a later event: two of one second tie by id
        user_id="1",
        subscription_id="sub_demo1",
        price_id="price_basic",
        event_created=int(time.time()) + 5,
    )
    assert deliver(client, failed).get_json()["status"] == "processed"
    assert 'id="subscription-status">past_due<' in page(client, "/account")


def test_each_user_sees_their_own_account(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        checkout.add_credits(2, 9)
    sign_in(client, "bob")
    assert 'id="credit-balance">9<' in page(client, "/account")
    other = app.test_client()
    sign_in(other, "alice")
    assert 'id="credit-balance">0<' in page(other, "/account")


def test_account_without_credits(make: Callable[..., Flask]) -> None:
    client = make(PAXPAR_CHECKOUT_CREDITS_ENABLED="false").test_client()
    sign_in(client)
    html = page(client, "/account")
    assert "credit-balance" not in html and "Credit ledger" not in html
    assert "switched off" in page(client, "/prices")


# -- service -----------------------------------------------------------------------------


def test_health(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_home_goes_to_prices(client: FlaskClient) -> None:
    assert client.get("/").headers["Location"] == "/prices"


def test_demo_users_are_seeded_once(make: Callable[..., Flask], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.db"
    make(SQLALCHEMY_DATABASE_URI=url)
    app = make(SQLALCHEMY_DATABASE_URI=url)  # a restart on the same database
    with app.app_context():
        from examples.host_app.models import User

        assert sorted(u.username for u in db.session.query(User)) == ["alice", "bob"]


def test_settings_from_the_environment() -> None:
    defaults = settings_from_env({})
    assert defaults["PAXPAR_FQDN"] == "localhost"
    assert defaults["STRIPE_WEBHOOK_SECRET"] == DEV_WEBHOOK_SECRET
    assert defaults["PAXPAR_CHECKOUT_PUBLIC_URL"] == "http://localhost:5000"
    assert defaults["PAXPAR_CHECKOUT_LOGIN_URL"] == "/login"
    assert "STRIPE_SECRET_KEY" not in defaults
    assert "SQLALCHEMY_DATABASE_URI" not in defaults  # instance/host_app.db

    env = {
        "PORT": "8000",
        "PAXPAR_FQDN": "dev.paxpar.tech",
        "STRIPE_SECRET_KEY": "sk_test_abc",
        "STRIPE_API_BASE": "http://127.0.0.1:12111",
        "STRIPE_WEBHOOK_SECRET": "whsec_fromStripeListen",
        "DATABASE_URL": "postgres://u:p@db/paxpar",
        "HOME": "/root",
    }
    settings = settings_from_env(env)
    assert settings["PAXPAR_CHECKOUT_PUBLIC_URL"] == "http://localhost:8000"
    assert settings["PAXPAR_FQDN"] == "dev.paxpar.tech"
    assert settings["STRIPE_SECRET_KEY"] == "sk_test_abc"
    assert settings["STRIPE_API_BASE"] == "http://127.0.0.1:12111"
    assert settings["STRIPE_WEBHOOK_SECRET"] == "whsec_fromStripeListen"
    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db/paxpar"
    assert "HOME" not in settings


def test_run_script_is_valid_shell() -> None:
    import subprocess

    script = Path(__file__).resolve().parent.parent / "examples" / "run.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["sh", "-n", str(script)], check=True)
