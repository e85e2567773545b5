"""The local Stripe stub, driven through the real ``stripe`` library."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import stripe
from stripe.params.checkout import SessionCreateParams

from flask_paxpar_checkout.testing.stripe_stub import StripeStub, decode_form

FIXTURES = Path(__file__).resolve().parent.parent / "flask_paxpar_checkout" / "fixtures"


class FastRetryClient(stripe.RequestsClient):
    """Retries without the library's 0.5 s minimum back-off."""

    def _sleep_time_seconds(self, num_retries: int) -> float:
        return 0.01


@pytest.fixture
def stub(local_stripe: StripeStub) -> StripeStub:
    """The pytest plugin's local Stripe, emptied."""
    return local_stripe


@pytest.fixture(scope="module")
def http_client() -> Iterator[stripe.HTTPClient]:
    client = FastRetryClient(timeout=5)
    yield client
    client.close()  # type: ignore[no-untyped-call]  # stripe's RequestsClient.close is untyped


def make_client(
    stub: StripeStub, http_client: stripe.HTTPClient, retries: int = 2, key: str = "sk_test_123"
) -> stripe.StripeClient:
    return stripe.StripeClient(
        key,
        base_addresses={"api": stub.url},
        max_network_retries=retries,
        http_client=http_client,
    )


@pytest.fixture
def client(stub: StripeStub, http_client: stripe.HTTPClient) -> stripe.StripeClient:
    return make_client(stub, http_client)


def raw(
    stub: StripeStub, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP exchange with the stub, socket closed afterwards."""
    url = urlsplit(stub.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


SUBSCRIPTION_PARAMS: SessionCreateParams = {
    "mode": "subscription",
    "success_url": "https://app.test/ok?session={CHECKOUT_SESSION_ID}",
    "cancel_url": "https://app.test/cancel",
    "client_reference_id": "user-7",
    "line_items": [{"price": "price_pro", "quantity": 1}],
    "metadata": {"user_id": "7", "plan": "pro"},
    "subscription_data": {"metadata": {"user_id": "7"}},
    "expand": ["subscription"],
}


def test_decode_form_nested() -> None:
    raw_form = (
        "metadata[k]=v&metadata[0]=z&line_items[0][price]=p1&line_items[0][quantity]=2"
        "&line_items[1][price]=p2&expand[0]=product&tags[]=a&tags[]=b&empty="
    )
    assert decode_form(raw_form) == {
        "metadata": {"k": "v", "0": "z"},
        "line_items": [{"price": "p1", "quantity": "2"}, {"price": "p2"}],
        "expand": ["product"],
        "tags": ["a", "b"],
        "empty": "",
    }


def test_post_params_and_headers_recorded(stub: StripeStub, client: stripe.StripeClient) -> None:
    client.v1.checkout.sessions.create(params=SUBSCRIPTION_PARAMS)
    (rec,) = stub.requests_to("POST", "/v1/checkout/sessions")
    assert rec.params == {
        **SUBSCRIPTION_PARAMS,
        "line_items": [{"price": "price_pro", "quantity": "1"}],
    }
    assert rec.headers["authorization"] == "Bearer sk_test_123"
    assert rec.headers["stripe-version"] == stripe.api_version
    assert rec.idempotency_key  # the library makes one up for every POST
    assert rec.headers["idempotency-key"] == rec.idempotency_key


def test_get_query_decoded(stub: StripeStub, client: stripe.StripeClient) -> None:
    client.v1.prices.retrieve("price_x", params={"expand": ["product"]})
    (rec,) = stub.requests_to("GET", "/v1/prices/")
    assert rec.path == "/v1/prices/price_x"
    assert rec.params == {"expand": ["product"]}
    assert rec.idempotency_key is None


def test_customer_create(stub: StripeStub, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": "a@b.test", "metadata": {"uid": "7"}})
    assert customer.id.startswith("cus_")
    assert customer.object == "customer"
    assert customer.email == "a@b.test"
    assert customer.metadata is not None
    assert customer.metadata.to_dict() == {"uid": "7"}
    assert customer.livemode is False
    assert stub.customer(customer.id)["email"] == "a@b.test"


def test_checkout_session_lifecycle(stub: StripeStub, client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"email": "a@b.test"})
    params: SessionCreateParams = {**SUBSCRIPTION_PARAMS, "customer": customer.id}
    session = client.v1.checkout.sessions.create(params=params)
    assert session.id.startswith("cs_test_")
    assert session.object == "checkout.session"
    assert session.mode == "subscription"
    assert session.status == "open"
    assert session.payment_status == "unpaid"
    assert session.customer == customer.id
    assert session.client_reference_id == "user-7"
    assert session.metadata is not None
    assert session.metadata.to_dict() == {"user_id": "7", "plan": "pro"}
    assert session.url == f"{stub.url}/c/pay/{session.id}"
    assert session.subscription is None
    assert session.payment_intent is None
    assert session.expires_at > session.created
    assert stub.session_params(session.id)["line_items"] == [
        {"price": "price_pro", "quantity": "1"}
    ]

    assert client.v1.checkout.sessions.retrieve(session.id).status == "open"
    done = stub.complete_session(session.id)
    assert done is stub.session(session.id)
    fetched = client.v1.checkout.sessions.retrieve(session.id, params={"expand": ["line_items"]})
    assert fetched.status == "complete"
    assert fetched.payment_status == "paid"
    assert isinstance(fetched.subscription, str) and fetched.subscription.startswith("sub_")
    assert fetched.line_items is not None
    [line] = fetched.line_items.data
    assert line.price is not None and line.price.id == "price_pro"

    sub = client.v1.subscriptions.retrieve(fetched.subscription)
    assert sub.customer == customer.id
    assert sub.status == "active"
    assert sub.metadata.to_dict() == {"user_id": "7"}
    assert sub["items"].data[0].current_period_end > time.time()


def test_complete_session_given_subscription_old_era(http_client: stripe.HTTPClient) -> None:
    with StripeStub(api_version="2024-04-10") as old:
        client = make_client(old, http_client)
        session = client.v1.checkout.sessions.create(params=SUBSCRIPTION_PARAMS)
        old.complete_session(session.id, subscription="sub_given", payment_status="paid")
        sub = client.v1.subscriptions.retrieve("sub_given")
        assert sub["current_period_end"] > time.time()  # top-level before basil
        customer = client.v1.checkout.sessions.retrieve(session.id).customer
        assert isinstance(customer, str) and customer.startswith("cus_")


def test_unknown_session_is_404(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.retrieve("cs_test_nope")
    assert err.value.http_status == 404
    assert err.value.code == "resource_missing"
    assert err.value.user_message == "No such checkout.session: 'cs_test_nope'"


def test_subscription_mode_rejects_payment_intent_data(
    stub: StripeStub, client: stripe.StripeClient
) -> None:
    params: SessionCreateParams = {
        **SUBSCRIPTION_PARAMS,
        "payment_intent_data": {"metadata": {"a": "b"}},
    }
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(params=params)
    assert err.value.http_status == 400
    assert err.value.param == "payment_intent_data"
    assert err.value.user_message == (
        "You can not pass `payment_intent_data` in `subscription` mode."
    )


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"success_url": "https://a.test", "line_items": [{"price": "p"}]}, "mode"),
        ({"mode": "payment", "line_items": [{"price": "p"}]}, "success_url"),
        ({"mode": "payment", "success_url": "https://a.test"}, "line_items"),
        (
            {"mode": "payment", "success_url": "https://a.test", "line_items": [{"quantity": 1}]},
            "line_items[0][price]",
        ),
    ],
)
def test_session_validation(
    client: stripe.StripeClient, params: SessionCreateParams, param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.checkout.sessions.create(params=params)
    assert err.value.http_status == 400
    assert err.value.param == param


def test_unknown_price_rejected_without_auto_prices(http_client: stripe.HTTPClient) -> None:
    with StripeStub(auto_prices=False) as strict:
        strict.add_price("price_known", recurring=False)
        client = make_client(strict, http_client)
        params: SessionCreateParams = {
            "mode": "payment",
            "success_url": "https://a.test",
            "line_items": [{"price": "price_known"}, {"price": "price_nope"}],
        }
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.checkout.sessions.create(params=params)
        assert err.value.http_status == 400
        assert err.value.code == "resource_missing"
        assert err.value.param == "line_items[1][price]"
        assert err.value.user_message == "No such price: 'price_nope'"
        with pytest.raises(stripe.InvalidRequestError) as err:
            client.v1.prices.retrieve("price_nope")
        assert err.value.http_status == 404


def test_price_expand(stub: StripeStub, client: stripe.StripeClient) -> None:
    stub.add_price(
        "price_credits",
        recurring=False,
        metadata={"credits": "100"},
        product_metadata={"kind": "credits"},
        unit_amount=500,
    )
    plain = client.v1.prices.retrieve("price_credits")
    assert isinstance(plain.product, str)
    assert plain.product.startswith("prod_")
    assert plain.type == "one_time"
    assert plain.recurring is None
    assert plain.unit_amount == 500
    assert plain.metadata.to_dict() == {"credits": "100"}

    expanded = client.v1.prices.retrieve("price_credits", params={"expand": ["product"]})
    product = expanded.product
    assert isinstance(product, stripe.Product)
    assert product.id == plain.product
    assert product.object == "product"
    assert product.metadata.to_dict() == {"kind": "credits"}

    made_up = client.v1.prices.retrieve("price_whatever")
    assert made_up.active is True
    assert made_up.type == "recurring"
    assert made_up.recurring is not None and made_up.recurring.interval == "month"


def test_recurring_price_rejected_in_payment_mode(
    stub: StripeStub, client: stripe.StripeClient
) -> None:
    stub.add_price("price_monthly")
    params: SessionCreateParams = {
        "mode": "payment",
        "success_url": "https://a.test",
        "line_items": [{"price": "price_monthly"}],
    }
    with pytest.raises(stripe.InvalidRequestError, match="recurring price"):
        client.v1.checkout.sessions.create(params=params)


def test_idempotent_replay(stub: StripeStub, client: stripe.StripeClient) -> None:
    options: Any = {"idempotency_key": "order-42"}
    first = client.v1.checkout.sessions.create(params=SUBSCRIPTION_PARAMS, options=options)
    again = client.v1.checkout.sessions.create(params=SUBSCRIPTION_PARAMS, options=options)
    assert again.id == first.id
    assert again.last_response is not None
    assert first.last_response is not None
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert again.last_response.request_id != first.last_response.request_id
    assert [r.idempotency_key for r in stub.requests_to("POST", "/v1/checkout")] == [
        "order-42",
        "order-42",
    ]

    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(
            params={**SUBSCRIPTION_PARAMS, "client_reference_id": "other"}, options=options
        )
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(options=options)


def test_fail_next_500_is_retried_with_same_key(
    stub: StripeStub, client: stripe.StripeClient
) -> None:
    stub.fail_next("POST", "/v1/checkout/sessions", status=500)
    session = client.v1.checkout.sessions.create(params=SUBSCRIPTION_PARAMS)
    attempts = stub.requests_to("POST", "/v1/checkout/sessions")
    assert len(attempts) == 2
    assert attempts[0].idempotency_key == attempts[1].idempotency_key
    assert stub.session(session.id)["status"] == "open"


def test_fail_next_answer_shape(stub: StripeStub) -> None:
    stub.fail_next(
        "GET",
        "/v1/prices",
        status=429,
        error_type="invalid_request_error",
        code="rate_limit",
        message="Too many",
    )
    status, headers, body = raw(stub, "GET", "/v1/prices/p", {"Authorization": "Bearer sk_test_1"})
    assert status == 429
    assert headers["content-type"] == "application/json"
    assert headers["request-id"].startswith("req_")
    assert headers["stripe-should-retry"] == "true"
    assert json.loads(body) == {
        "error": {"type": "invalid_request_error", "message": "Too many", "code": "rate_limit"}
    }
    status, _, _ = raw(stub, "GET", "/v1/prices/p", {"Authorization": "Bearer sk_test_1"})
    assert status == 200  # consumed


def test_fail_next_surfaces_without_retries(
    stub: StripeStub, http_client: stripe.HTTPClient
) -> None:
    client = make_client(stub, http_client, retries=0)
    stub.fail_next(
        "POST",
        "/v1/customers",
        status=400,
        error_type="invalid_request_error",
        message="Bad email",
        code="email_invalid",
        param="email",
    )
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create(params={"email": "x"})
    assert err.value.http_status == 400
    assert err.value.code == "email_invalid"
    assert err.value.param == "email"
    assert (err.value.request_id or "").startswith("req_")
    assert client.v1.customers.create(params={"email": "x"}).email == "x"


def test_rate_limit_exhausts_retries(stub: StripeStub, client: stripe.StripeClient) -> None:
    stub.fail_next(
        "POST",
        "/v1/customers",
        status=429,
        times=3,
        error_type="invalid_request_error",
        code="rate_limit",
        message="Too many requests",
    )
    with pytest.raises(stripe.RateLimitError) as err:
        client.v1.customers.create()
    assert err.value.http_status == 429
    assert len(stub.requests_to("POST", "/v1/customers")) == 3


def test_drop_next(stub: StripeStub, http_client: stripe.HTTPClient) -> None:
    stub.drop_next("POST", "/v1/billing_portal")
    portal = make_client(stub, http_client).v1.billing_portal.sessions.create(
        params={"customer": "cus_x"}
    )
    assert portal.customer == "cus_x"
    keys = {r.idempotency_key for r in stub.requests_to("POST", "/v1/billing_portal")}
    assert len(keys) == 1

    stub.drop_next("POST", "/v1/billing_portal")
    with pytest.raises(stripe.APIConnectionError):
        make_client(stub, http_client, retries=0).v1.billing_portal.sessions.create(
            params={"customer": "cus_x"}
        )


def test_delay_next_times_out_then_retry_succeeds(stub: StripeStub) -> None:
    impatient = FastRetryClient(timeout=0.3)
    try:
        stub.delay_next("POST", "/v1/customers", seconds=0.8)
        customer = make_client(stub, impatient).v1.customers.create(params={"email": "t@t"})
        attempts = stub.requests_to("POST", "/v1/customers")
        assert len(attempts) == 2
        assert attempts[0].idempotency_key == attempts[1].idempotency_key
        assert stub.customer(customer.id)["email"] == "t@t"

        stub.delay_next("GET", "/v1/prices", seconds=0.8)
        with pytest.raises(stripe.APIConnectionError):
            make_client(stub, impatient, retries=0).v1.prices.retrieve("price_x")
        time.sleep(0.8)  # let the held requests finish before the next test resets
    finally:
        impatient.close()  # type: ignore[no-untyped-call]  # stripe's RequestsClient.close


def test_authentication(stub: StripeStub, http_client: stripe.HTTPClient) -> None:
    with pytest.raises(stripe.AuthenticationError) as err:
        make_client(stub, http_client, key="pk_test_123").v1.customers.create()
    assert err.value.http_status == 401

    status, headers, body = raw(stub, "GET", "/v1/checkout/sessions/cs_x")
    assert status == 401
    assert headers["request-id"].startswith("req_")
    assert json.loads(body)["error"]["type"] == "authentication_error"


def test_unknown_path(stub: StripeStub) -> None:
    status, headers, body = raw(stub, "GET", "/v1/nothing", {"Authorization": "Bearer rk_test_1"})
    assert status == 404
    assert headers["content-type"] == "application/json"
    assert headers["request-id"].startswith("req_")
    assert json.loads(body)["error"]["type"] == "invalid_request_error"


def test_billing_portal(stub: StripeStub, client: stripe.StripeClient) -> None:
    portal = client.v1.billing_portal.sessions.create(
        params={"customer": "cus_abc", "return_url": "https://app.test/account"}
    )
    assert portal.object == "billing_portal.session"
    assert portal.url == f"{stub.url}/p/session/{portal.id}"
    assert portal.return_url == "https://app.test/account"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.billing_portal.sessions.create(params={"return_url": "https://a.test"})
    assert err.value.http_status == 400
    assert err.value.param == "customer"


def test_offline_pages(stub: StripeStub, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=SUBSCRIPTION_PARAMS)
    assert session.url is not None
    status, headers, body = raw(stub, "GET", urlsplit(session.url).path)
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b"Stripe Checkout (local test stub)" in body
    assert session.id.encode() in body

    status, headers, _ = raw(stub, "POST", urlsplit(session.url).path)
    assert status == 303
    assert headers["location"] == f"https://app.test/ok?session={session.id}"
    assert stub.session(session.id)["status"] == "complete"

    portal = client.v1.billing_portal.sessions.create(params={"customer": "cus_abc"})
    assert portal.url is not None
    status, _, body = raw(stub, "GET", urlsplit(portal.url).path)
    assert status == 200
    assert portal.id.encode() in body


def test_reset_keeps_serving(stub: StripeStub, client: stripe.StripeClient) -> None:
    session = client.v1.checkout.sessions.create(params=SUBSCRIPTION_PARAMS)
    stub.fail_next("POST", "/v1/customers", times=5)
    stub.reset()
    assert stub.requests == []
    with pytest.raises(KeyError):
        stub.session(session.id)
    assert client.v1.customers.create().object == "customer"


@pytest.mark.parametrize("name", ["stripe-2026-07-29.dahlia.json", "stripe-2024-04-10.json"])
def test_shipped_fixtures_have_subscription_invoices(name: str) -> None:
    doc = json.loads((FIXTURES / name).read_text("utf-8"))
    resources = doc["resources"]
    assert set(resources) >= {"checkout.session", "invoice", "subscription", "event", "price"}
    invoice = resources["invoice"]
    sub_id = resources["subscription"]["id"]
    line = invoice["lines"]["data"][0]
    assert line["period"]["end"] > line["period"]["start"]
    if doc["api_version"] >= "2025-03-31":
        assert invoice["parent"]["type"] == "subscription_details"
        assert invoice["parent"]["subscription_details"]["subscription"] == sub_id
        assert invoice["parent"]["subscription_details"]["metadata"] == {}
        assert line["pricing"]["price_details"]["price"] == resources["price"]["id"]
    else:
        assert invoice["subscription"] == sub_id
        assert invoice["subscription_details"]["metadata"] == {}
        assert line["price"]["recurring"]["interval"] == "month"
