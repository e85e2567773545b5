"""GET /api/checkout/session: validation, the exact Stripe request, persistence, errors."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_paxpar_checkout.testing import StripeStub

from .conftest import CREDIT_PRICE, FQDN, PRICE_BASIC, PRICE_PRO, as_user
from .helpers import count, rows

JSON = {"Accept": "application/json"}


def test_credit_purchase_redirects_to_stripe(client: FlaskClient, stripe: StripeStub) -> None:
    response = client.get("/api/checkout/session?qty=12", headers=as_user(42))

    assert response.status_code == 303
    [create] = stripe.requests_to("POST", "/v1/checkout/sessions")
    [stored] = rows("sessions")
    assert response.headers["Location"] == stripe.session(stored.id)["url"]
    assert response.headers["Location"].startswith(f"{stripe.url}/c/pay/cs_test_")
    p = create.params
    assert p["mode"] == "payment"
    assert p["line_items"] == [{"price": CREDIT_PRICE, "quantity": "12"}]
    assert p["client_reference_id"] == "42"
    tags = {"paxpar_fqdn": FQDN, "paxpar_user_id": "42", "paxpar_qty": "12"}
    assert p["metadata"] == tags
    assert p["payment_intent_data"] == {"metadata": tags}
    assert "subscription_data" not in p
    assert (
        p["success_url"]
        == f"https://{FQDN}/api/checkout/success?session_id={{CHECKOUT_SESSION_ID}}"
    )
    assert p["cancel_url"] == f"https://{FQDN}/front/checkout/cancel"
    assert p["customer"].startswith("cus_")
    assert create.idempotency_key and create.idempotency_key.startswith("paxpar-checkout-")
    assert response.headers["Deprecation"] == "@1767225600"
    assert (stored.user_id, stored.mode, stored.qty, stored.status) == ("42", "payment", 12, "open")
    assert stored.redirect_url == f"https://{FQDN}/front/checkout/success"
    assert stored.customer_id == p["customer"]


def test_subscription_uses_subscription_data_metadata(
    client: FlaskClient, stripe: StripeStub
) -> None:
    response = client.get(f"/api/checkout/session?price_id={PRICE_BASIC}", headers=as_user(7))

    assert response.status_code == 303
    assert "Deprecation" not in response.headers
    [create] = stripe.requests_to("POST", "/v1/checkout/sessions")
    p = create.params
    tags = {"paxpar_fqdn": FQDN, "paxpar_user_id": "7", "paxpar_price_id": PRICE_BASIC}
    assert p["mode"] == "subscription"
    assert p["line_items"] == [{"price": PRICE_BASIC, "quantity": "1"}]
    assert p["metadata"] == tags
    assert p["subscription_data"] == {"metadata": tags}
    assert "payment_intent_data" not in p  # Stripe rejects it in subscription mode
    [stored] = rows("sessions")
    assert (stored.mode, stored.price_id, stored.qty) == ("subscription", PRICE_BASIC, None)


def test_json_answer_for_fetch(client: FlaskClient, stripe: StripeStub) -> None:
    response = client.get("/api/checkout/session?qty=3", headers=as_user(1, **JSON))
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"].startswith("cs_test_")
    assert body["url"] == stripe.session(body["id"])["url"]


def test_one_customer_per_user(client: FlaskClient, stripe: StripeStub) -> None:
    client.get("/api/checkout/session?qty=1", headers=as_user(5))
    client.get(f"/api/checkout/session?price_id={PRICE_PRO}", headers=as_user(5))
    client.get("/api/checkout/session?qty=2", headers=as_user(6))

    customers = stripe.requests_to("POST", "/v1/customers")
    assert len(customers) == 2
    assert customers[0].params["email"] == "user5@example.com"
    assert customers[0].params["metadata"] == {"paxpar_fqdn": FQDN, "paxpar_user_id": "5"}
    assert customers[0].idempotency_key == f"paxpar-customer-{FQDN}-5"
    sessions = stripe.requests_to("POST", "/v1/checkout/sessions")
    assert sessions[0].params["customer"] == sessions[1].params["customer"]
    assert sessions[2].params["customer"] != sessions[0].params["customer"]
    assert count("customers") == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("qty=12&price_id=price_basic1", "_schema"),
        ("", "_schema"),
        ("redirect=/x", "_schema"),
        ("qty=0", "qty"),
        ("qty=-3", "qty"),
        ("qty=1.5", "qty"),
        ("qty=abc", "qty"),
        ("qty=", "qty"),
        ("qty=%201", "qty"),
        ("qty=1_0", "qty"),
        ("qty=10001", "qty"),
        ("qty=99999999999999999999999999", "qty"),
        ("qty=1&qty=2", "qty"),
        ("price_id=prod_123", "price_id"),
        ("price_id=price_", "price_id"),
        ("price_id=price_abc-def", "price_id"),
        ("price_id=price_unknown9", "price_id"),
        ("qty=1&redirect=//evil.com", "redirect"),
        ("qty=1&redirect=https://evil.com/", "redirect"),
        ("qty=1&redirect=/%5Cevil.com", "redirect"),
        ("qty=1&redirect=javascript:alert(1)", "redirect"),
        ("qty=1&redirect=http:evil.com", "redirect"),
        ("qty=1&redirect=/ok%0d%0aSet-Cookie:x", "redirect"),
        ("qty=1&redirect=https://dev.paxpar.tech@evil.com/", "redirect"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(
    client: FlaskClient, stripe: StripeStub, query: str, field: str
) -> None:
    response = client.get(f"/api/checkout/session?{query}", headers=as_user(1))

    assert response.status_code == 400
    body = response.get_json()
    assert body["code"] == 400 and body["status"] == "Bad Request"
    if field == "_schema":
        assert "exactly one of qty" in body["message"]
    else:
        assert field in body["errors"], body
    assert stripe.requests == []  # nothing sent to Stripe
    assert count("sessions") == 0 and count("customers") == 0


def test_no_user_is_401_json(client: FlaskClient, stripe: StripeStub) -> None:
    response = client.get("/api/checkout/session?qty=1")
    assert response.status_code == 401
    assert response.get_json()["code"] == 401
    assert stripe.requests == []


def test_relative_and_allowed_redirects(client: FlaskClient, stripe: StripeStub) -> None:
    client.get(
        "/api/checkout/session?qty=1&redirect=/front/account?tab=credits", headers=as_user(1)
    )
    client.get(f"/api/checkout/session?qty=1&redirect=https://{FQDN}/front/x", headers=as_user(1))
    stored = sorted(r.redirect_url for r in rows("sessions"))
    assert stored == [
        f"https://{FQDN}/front/account?tab=credits",
        f"https://{FQDN}/front/x",
    ]


def test_credits_disabled_is_410(
    app_parts: Any, config: dict[str, Any], stripe: StripeStub
) -> None:
    from .conftest import other_app

    with other_app({**config, "PAXPAR_CHECKOUT_CREDITS_ENABLED": False}) as (app, _, _):
        client = app.test_client()
        response = client.get("/api/checkout/session?qty=3", headers=as_user(1))
        assert response.status_code == 410
        assert "credit system" in response.get_json()["message"]
        assert stripe.requests == []
        response = client.get(f"/api/checkout/session?price_id={PRICE_BASIC}", headers=as_user(1))
        assert response.status_code == 303
        assert "Deprecation" not in response.headers


@pytest.mark.parametrize(
    ("status", "error_type", "expected", "words"),
    [
        (400, "invalid_request_error", 502, "No such price"),
        (401, "authentication_error", 502, "STRIPE_SECRET_KEY"),
        (429, "rate_limit_error", 503, "rate-limiting"),
        (500, "api_error", 502, "Stripe failed"),
    ],
)
def test_stripe_errors_answer_clearly_and_store_nothing(
    client: FlaskClient,
    stripe: StripeStub,
    status: int,
    error_type: str,
    expected: int,
    words: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stripe.fail_next(
        "POST",
        "/v1/checkout/sessions",
        status=status,
        error_type=error_type,
        message="No such price: 'price_credit1'",
        param="line_items[0][price]" if status == 400 else None,
        times=5,
    )
    response = client.get("/api/checkout/session?qty=2", headers=as_user(3))

    assert response.status_code == expected
    body = response.get_json()
    assert words in body["message"]
    assert "sk_test_123" not in response.get_data(as_text=True)
    assert count("sessions") == 0
    request_id = response.headers["X-Stripe-Request-Id"]
    assert request_id.startswith("req_")
    assert request_id in caplog.text
    if status == 400:
        assert "PAXPAR_CHECKOUT_CREDIT_PRICE_ID" in body["message"]


def test_a_failed_attempt_is_retried_with_the_same_idempotency_key(
    client: FlaskClient, stripe: StripeStub
) -> None:
    stripe.fail_next("POST", "/v1/checkout/sessions", status=500)
    response = client.get("/api/checkout/session?qty=2", headers=as_user(3))

    assert response.status_code == 303
    first, retry = stripe.requests_to("POST", "/v1/checkout/sessions")
    assert first.idempotency_key == retry.idempotency_key
    assert count("sessions") == 1


def test_a_timeout_is_retried_then_reported(client: FlaskClient, stripe: StripeStub) -> None:
    stripe.delay_next("POST", "/v1/checkout/sessions", seconds=2.5)
    response = client.get("/api/checkout/session?qty=2", headers=as_user(3))
    assert response.status_code == 303  # the retry answered
    keys = {r.idempotency_key for r in stripe.requests_to("POST", "/v1/checkout/sessions")}
    assert len(keys) == 1

    stripe.reset()
    stripe.delay_next("POST", "/v1/checkout/sessions", seconds=2.5, times=2)
    response = client.get("/api/checkout/session?qty=2", headers=as_user(4))
    assert response.status_code == 503
    assert "could not be reached" in response.get_json()["message"]
    assert count("sessions") == 1


def test_customer_created_before_a_failed_session_is_kept_and_reused(
    client: FlaskClient, stripe: StripeStub
) -> None:
    stripe.fail_next(
        "POST", "/v1/checkout/sessions", status=400, error_type="invalid_request_error"
    )
    assert client.get("/api/checkout/session?qty=2", headers=as_user(9)).status_code == 502
    assert count("customers") == 1 and count("sessions") == 0
    assert client.get("/api/checkout/session?qty=2", headers=as_user(9)).status_code == 303
    assert len(stripe.requests_to("POST", "/v1/customers")) == 1


def test_login_redirect_for_a_browser(
    app_parts: Any, stripe: StripeStub, config: dict[str, Any]
) -> None:
    from .conftest import other_app

    with other_app({**config, "PAXPAR_CHECKOUT_LOGIN_URL": "/login"}) as (app, _, _):
        client = app.test_client()
        response = client.get("/api/checkout/session?qty=12&redirect=/front/x")
        assert response.status_code == 303
        assert (
            response.headers["Location"]
            == "/login?next=%2Fapi%2Fcheckout%2Fsession%3Fqty%3D12%26redirect%3D%2Ffront%2Fx"
        )
        response = client.get("/api/checkout/session?qty=12", headers=JSON)
        assert response.status_code == 401


def test_created_session_is_signalled(client: FlaskClient, stripe: StripeStub, app: Flask) -> None:
    from flask_paxpar_checkout import signals

    seen: list[dict[str, Any]] = []
    with signals.checkout_session_created.connected_to(lambda s, **kw: seen.append(kw), app):
        client.get(f"/api/checkout/session?price_id={PRICE_BASIC}", headers=as_user(2))
        stripe.fail_next(
            "POST", "/v1/checkout/sessions", status=400, error_type="invalid_request_error"
        )
        client.get(f"/api/checkout/session?price_id={PRICE_BASIC}", headers=as_user(2))
    [stored] = rows("sessions")
    assert seen == [{"user_id": "2", "session_id": stored.id, "mode": "subscription"}]


def test_a_browser_gets_the_error_as_a_page(client: FlaskClient, stripe: StripeStub) -> None:
    browser = as_user(1, Accept="text/html,application/xhtml+xml,*/*;q=0.8")
    response = client.get("/api/checkout/session?qty=0&redirect=//evil.com", headers=browser)
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "qty: Must be between 1 and 10000." in page
    assert "scheme-relative" in page
    assert f'href="https://{FQDN}/"' in page

    stripe.fail_next(
        "POST", "/v1/checkout/sessions", status=429, error_type="rate_limit_error", times=3
    )
    response = client.get("/api/checkout/session?qty=1", headers=browser)
    assert response.status_code == 503 and response.mimetype == "text/html"
    assert "rate-limiting" in response.get_data(as_text=True)

    response = client.get("/api/checkout/session?qty=0", headers=as_user(1, Accept="*/*"))
    assert response.mimetype == "application/json"


def test_error_page_escapes_what_it_echoes(client: FlaskClient) -> None:
    browser = as_user(1, Accept="text/html")
    response = client.get(
        "/api/checkout/session?qty=1&redirect=<script>x</script>", headers=browser
    )
    assert response.status_code == 400
    assert "<script>" not in response.get_data(as_text=True)
