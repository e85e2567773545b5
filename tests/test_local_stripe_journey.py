"""A user's whole journey through the plugin on the local Stripe, driven as a host's test
would with the pytest plugin: pay, buy credits, renew on the test clock, the portal, a
declined card and a card that fails at renewal."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode, urlsplit
from urllib.request import Request, urlopen

import pytest
from flask.testing import FlaskClient

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.testing import CardDeclined, LocalStripeError, TestStripe

from .conftest import PRICE_BASIC, PRICE_PRO, as_user

JSON = {"Accept": "application/json"}


def new_session(client: FlaskClient, user: int, **query: Any) -> str:
    """A Checkout Session made through the app, as the user's browser would ask for it."""
    answer = client.get("/api/checkout/session", query_string=query, headers=as_user(user, **JSON))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    session_id: str = answer.get_json()["id"]
    return session_id


def account(client: FlaskClient, user: int) -> dict[str, Any]:
    answer = client.get("/api/checkout/account", headers=as_user(user))
    assert answer.status_code == 200
    body: dict[str, Any] = answer.get_json()
    return body


def post_form(url: str, **fields: str) -> tuple[int, str]:
    """A browser's form POST to a local Stripe page (redirects not followed)."""
    request = Request(url, data=urlencode(fields).encode(), method="POST")  # noqa: S310
    try:
        with urlopen(request, timeout=10) as page:  # noqa: S310
            return page.status, page.read().decode()
    except Exception as exc:  # urllib raises for 4xx
        code = getattr(exc, "code", None)
        if code is None:
            raise
        return int(code), exc.read().decode()  # type: ignore[attr-defined]


@pytest.fixture
def subscribed(client: FlaskClient, stripe: TestStripe) -> str:
    """User 1 subscribed to the basic plan, paid; returns the subscription id."""
    stripe.deliver_to(client)
    paid = stripe.pay(new_session(client, 1, price_id=PRICE_BASIC))
    return str(paid["subscription"])


def test_pay_buy_renew_and_cancel(
    client: FlaskClient, stripe: TestStripe, checkout: PaxparCheckout, subscribed: str
) -> None:
    state = account(client, 1)
    assert state["credits"] == 100
    assert state["subscription"]["status"] == "active"
    assert state["subscription"]["id"] == subscribed
    first_end = state["subscription"]["current_period_end"]

    stripe.pay(new_session(client, 1, qty=12))
    assert checkout.credits(1) == 112

    stripe.advance_clock()
    state = account(client, 1)
    assert state["credits"] == 100  # reset by the renewal's invoice.paid
    assert state["subscription"]["current_period_end"] == first_end + 30 * 86400

    stripe.cancel_at_period_end(subscribed)
    assert account(client, 1)["subscription"]["cancel_at_period_end"] is True
    assert account(client, 1)["subscription"]["status"] == "active"
    stripe.advance_clock()
    assert account(client, 1)["subscription"]["status"] == "canceled"
    assert checkout.credits(1) == 100  # PAXPAR_CHECKOUT_CREDITS_ON_CANCEL = keep
    assert {d.state for d in stripe.deliveries} == {"succeeded"}
    assert [e["type"] for e in stripe.events()][-1] == "customer.subscription.deleted"


def test_a_declined_card_grants_nothing(
    client: FlaskClient, stripe: TestStripe, checkout: PaxparCheckout
) -> None:
    stripe.deliver_to(client)
    session_id = new_session(client, 1, price_id=PRICE_BASIC)
    with pytest.raises(CardDeclined):
        stripe.pay(session_id, card="4000 0000 0000 0002")
    with pytest.raises(LocalStripeError, match="invalid"):
        stripe.pay(session_id, card="4242 4242 4242 4241")
    assert stripe.session(session_id)["status"] == "open"
    assert stripe.events() == [] and stripe.deliveries == []
    assert checkout.credits(1) == 0
    assert checkout.subscription(1) is None

    status, page = post_form(stripe.session(session_id)["url"], card="4000000000000002")
    assert status == 402 and "Your card was declined." in page
    assert stripe.session(session_id)["status"] == "open" and checkout.credits(1) == 0


def test_a_card_that_fails_at_renewal(
    client: FlaskClient, stripe: TestStripe, checkout: PaxparCheckout, subscribed: str
) -> None:
    stripe.set_card(subscribed, "4000 0000 0000 0341")
    stripe.advance_clock()
    assert account(client, 1)["subscription"]["status"] == "past_due"
    assert checkout.credits(1) == 100  # kept; not reset by a failed invoice
    assert [e["type"] for e in stripe.events()][-2:] == [
        "invoice.payment_failed",
        "customer.subscription.updated",
    ]
    stripe.set_card(subscribed, "4242424242424242")
    stripe.advance_clock()
    assert account(client, 1)["subscription"]["status"] == "active"


def test_the_portal_page_switches_plan_then_cancels_now(
    client: FlaskClient, stripe: TestStripe, subscribed: str
) -> None:
    stripe.add_price(PRICE_PRO, unit_amount=5000)
    portal = client.get("/api/checkout/portal", headers=as_user(1, **JSON)).get_json()["url"]
    assert urlsplit(portal).netloc == urlsplit(stripe.url).netloc

    status, page = post_form(portal, subscription=subscribed, do="switch", price=PRICE_PRO)
    assert status == 200 and f"Your plan is now {PRICE_PRO}" in page
    assert account(client, 1)["subscription"]["price_id"] == PRICE_PRO

    status, page = post_form(portal, subscription=subscribed, do="cancel_now")
    assert status == 200 and "Your plan is canceled." in page
    assert account(client, 1)["subscription"]["status"] == "canceled"
    status, page = post_form(portal, subscription=subscribed, do="cancel_now")
    assert status == 400 and "is canceled" in page
    status, page = post_form(portal, subscription="sub_someone_else", do="cancel_now")
    assert status == 400 and "No such subscription" in page


def test_the_checkout_page_shows_what_is_bought(client: FlaskClient, stripe: TestStripe) -> None:
    session_id = new_session(client, 1, qty=12)
    with urlopen(stripe.session(session_id)["url"], timeout=10) as page:  # noqa: S310
        text = page.read().decode()
    assert "Local Stripe: no real payment" in text
    assert "user1@example.com" in text and "4242 4242 4242 4242" in text
    assert ">12<" in text and "120.00 USD" in text
    assert "stripe.com" not in text
    links = re.findall(r"(?:href|src|action)='([^']*)'", text)
    assert links and all(link.startswith(("/", "https://dev.paxpar.tech/")) for link in links), (
        links
    )


def test_events_reach_a_url_too(stripe: TestStripe, client: FlaskClient) -> None:
    with pytest.raises(ValueError, match="secret"):
        stripe.deliver_to("http://127.0.0.1:9/hook")
    endpoint = stripe.deliver_to("http://127.0.0.1:9/hook", secret="whsec_x")
    assert json.loads(json.dumps(endpoint))["url"] == "http://127.0.0.1:9/hook"
