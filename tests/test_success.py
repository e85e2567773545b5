"""GET /api/checkout/success: fulfil on return, then land on the stored redirect."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask.testing import FlaskClient

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.clock import as_utc, stripe_time
from flask_paxpar_checkout.testing import EventBuilder, StripeStub

from .conftest import FQDN, PRICE_PRO, as_user
from .helpers import rows

DEFAULT = f"https://{FQDN}/front/checkout/success"


def _checkout(client: FlaskClient, user: int, query: str) -> str:
    response = client.get(
        f"/api/checkout/session?{query}", headers=as_user(user, Accept="application/json")
    )
    assert response.status_code == 200
    return str(response.get_json()["id"])


def test_return_fulfils_before_the_webhook_and_the_webhook_adds_nothing(
    client: FlaskClient,
    stripe: StripeStub,
    checkout: PaxparCheckout,
    deliver: Callable[..., Any],
) -> None:
    session_id = _checkout(client, 5, "qty=12&redirect=/front/thanks")
    stripe.complete_session(session_id)

    response = client.get(f"/api/checkout/success?session_id={session_id}", headers=as_user(5))
    assert response.status_code == 303
    assert response.headers["Location"] == f"https://{FQDN}/front/thanks"
    assert checkout.credits(5) == 12
    assert rows("sessions")[0].status == "complete"

    # the same return twice (a reload), then the late webhook: still 12
    client.get(f"/api/checkout/success?session_id={session_id}", headers=as_user(5))
    webhook_event = EventBuilder(fqdn=FQDN).event(
        "checkout.session.completed", stripe.session(session_id)
    )
    assert deliver(webhook_event).get_json()["status"] == "processed"
    assert checkout.credits(5) == 12
    assert len(checkout.ledger(5)) == 1


def test_return_of_a_subscription_records_it(
    client: FlaskClient, stripe: StripeStub, checkout: PaxparCheckout
) -> None:
    session_id = _checkout(client, 6, f"price_id={PRICE_PRO}")
    completed = stripe.complete_session(session_id)
    client.get(f"/api/checkout/success?session_id={session_id}", headers=as_user(6))
    sub = checkout.subscription(6)
    assert sub is not None
    assert (sub.id, sub.price_id, sub.status) == (completed["subscription"], PRICE_PRO, "active")
    assert checkout.credits(6) == 0  # credits come with the invoice, not the session


def test_unpaid_session_on_return_grants_nothing(
    client: FlaskClient, stripe: StripeStub, checkout: PaxparCheckout
) -> None:
    session_id = _checkout(client, 5, "qty=3&redirect=/front/x")
    response = client.get(f"/api/checkout/success?session_id={session_id}", headers=as_user(5))
    assert response.headers["Location"] == f"https://{FQDN}/front/x"
    assert checkout.credits(5) == 0


def test_another_users_session_does_nothing(
    client: FlaskClient, stripe: StripeStub, checkout: PaxparCheckout
) -> None:
    session_id = _checkout(client, 5, "qty=12&redirect=/front/thanks")
    stripe.complete_session(session_id)
    before = len(stripe.requests)
    for headers in (as_user(6), {}):
        response = client.get(f"/api/checkout/success?session_id={session_id}", headers=headers)
        assert response.status_code == 303
        assert response.headers["Location"] == DEFAULT
    assert len(stripe.requests) == before  # not even fetched
    assert checkout.credits(5) == 0 and checkout.credits(6) == 0


def test_unknown_or_malformed_session_lands_on_the_default(
    client: FlaskClient, stripe: StripeStub
) -> None:
    for query in ("session_id=cs_test_unknown1", "session_id=../../x", "", "session_id="):
        response = client.get(f"/api/checkout/success?{query}", headers=as_user(5))
        assert response.status_code == 303
        assert response.headers["Location"] == DEFAULT
    assert stripe.requests == []


def test_another_instances_session_is_not_fulfilled(
    client: FlaskClient, stripe: StripeStub, checkout: PaxparCheckout
) -> None:
    session_id = _checkout(client, 5, "qty=4")
    stored = stripe.session(session_id)
    stored["metadata"]["paxpar_fqdn"] = "prod.paxpar.tech"  # as if it were prod's
    stripe.complete_session(session_id)
    client.get(f"/api/checkout/success?session_id={session_id}", headers=as_user(5))
    assert checkout.credits(5) == 0


def test_stripe_down_on_return_still_lands(
    client: FlaskClient, stripe: StripeStub, checkout: PaxparCheckout
) -> None:
    session_id = _checkout(client, 5, "qty=4&redirect=/front/y")
    stripe.complete_session(session_id)
    stripe.fail_next("GET", "/v1/checkout/sessions/", status=500, times=5)
    response = client.get(f"/api/checkout/success?session_id={session_id}", headers=as_user(5))
    assert response.headers["Location"] == f"https://{FQDN}/front/y"
    assert checkout.credits(5) == 0  # the webhook will fulfil it


def test_the_return_and_the_webhook_make_one_entry_at_the_webhooks_time(
    client: FlaskClient,
    stripe: StripeStub,
    checkout: PaxparCheckout,
    deliver: Callable[..., Any],
) -> None:
    """Whichever comes first, the purchase is one entry, effective at the completion event's
    time, even when Stripe's clock runs ahead of this host's; a reset paid after that
    completion absorbs it either way."""
    completed_at = int(time.time()) + 600
    for user, return_first in ((6, True), (7, False)):
        session_id = _checkout(client, user, "qty=5")
        session = stripe.complete_session(session_id)
        completion = EventBuilder(fqdn=FQDN).event(
            "checkout.session.completed", session, created=completed_at
        )
        renewal = EventBuilder(fqdn=FQDN).invoice_paid(
            user_id=str(user),
            subscription_id=f"sub_{user}",
            price_id=PRICE_PRO,
            created=completed_at + 60,
        )
        back = (f"/api/checkout/success?session_id={session_id}", as_user(user))
        if return_first:
            client.get(back[0], headers=back[1])
        deliver(completion)
        if not return_first:
            client.get(back[0], headers=back[1])
        deliver(renewal)
        [purchase] = [e for e in checkout.ledger(user) if e["reason"] == "purchase"]
        assert as_utc(purchase["effective_at"]) == stripe_time(completed_at), user
        assert checkout.credits(user) == 500, user  # the reset after it absorbed it
