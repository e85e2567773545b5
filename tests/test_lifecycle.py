"""Subscription lifecycle: cancellation, plan changes, ordering, expiry, the customer portal."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_paxpar_checkout import PaxparCheckout, signals
from flask_paxpar_checkout.testing import EventBuilder, StripeStub

from .conftest import FQDN, PRICE_BASIC, PRICE_PRO, as_user, other_app
from .helpers import rows

Deliver = Callable[..., Any]
NOW = int(time.time())


def _start(deliver: Deliver, events: EventBuilder, user: str = "1", sub: str = "sub_1") -> None:
    deliver(
        events.invoice_paid(
            user_id=user,
            subscription_id=sub,
            price_id=PRICE_BASIC,
            created=NOW - 1000,
            customer_id="cus_1",
        )
    )


def test_cancel_at_period_end_then_deletion(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder, app: Flask
) -> None:
    _start(deliver, events)
    end = NOW + 5000
    canceled: list[Any] = []
    with signals.subscription_canceled.connected_to(lambda s, **kw: canceled.append(kw), app):
        deliver(
            events.subscription_updated(
                user_id="1",
                subscription_id="sub_1",
                price_id=PRICE_BASIC,
                status="active",
                cancel_at_period_end=True,
                cancel_at=end,
                period_end=end,
                created=NOW - 500,
            )
        )
        sub = checkout.subscription(1)
        assert sub is not None
        assert (sub.status, sub.cancel_at_period_end, sub.cancel_at) == ("active", True, end)
        assert sub.current_period_end == end and sub.is_active
        assert canceled == []

        deliver(
            events.subscription_deleted(
                user_id="1",
                subscription_id="sub_1",
                price_id=PRICE_BASIC,
                period_end=end,
                canceled_at=end,
                created=NOW,
            )
        )
    sub = checkout.subscription(1)
    assert sub is not None and sub.status == "canceled" and not sub.is_active
    assert sub.canceled_at == end
    assert len(canceled) == 1 and canceled[0]["subscription"].status == "canceled"
    assert checkout.credits(1) == 100  # PAXPAR_CHECKOUT_CREDITS_ON_CANCEL defaults to keep


def test_immediate_cancellation(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    _start(deliver, events)
    deliver(
        events.subscription_deleted(
            user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC, created=NOW
        )
    )
    sub = checkout.subscription(1)
    assert sub is not None and sub.status == "canceled"
    # a late invoice.paid of that subscription neither revives it nor resets credits
    checkout.spend_credits(1, 40)
    deliver(
        events.invoice_paid(
            user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC, created=NOW + 1
        )
    )
    sub = checkout.subscription(1)
    assert sub is not None and sub.status == "canceled"
    assert checkout.credits(1) == 60


def test_late_updated_after_deleted_never_revives(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    _start(deliver, events)
    deleted = events.subscription_deleted(
        user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC, created=NOW
    )
    late_same_second = events.subscription_updated(
        user_id="1", subscription_id="sub_1", price_id=PRICE_PRO, status="active", created=NOW
    )
    late_older = events.subscription_updated(
        user_id="1",
        subscription_id="sub_1",
        price_id=PRICE_PRO,
        status="past_due",
        created=NOW - 10,
    )
    for event in (deleted, late_same_second, late_older):
        assert deliver(event).get_json()["status"] == "processed"
    sub = checkout.subscription(1)
    assert sub is not None
    assert (sub.status, sub.price_id) == ("canceled", PRICE_BASIC)


def test_older_update_never_rolls_back_a_newer_one(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    _start(deliver, events)
    newer = events.subscription_updated(
        user_id="1",
        subscription_id="sub_1",
        price_id=PRICE_PRO,
        status="active",
        period_end=NOW + 9000,
        created=NOW,
    )
    older = events.subscription_updated(
        user_id="1",
        subscription_id="sub_1",
        price_id=PRICE_BASIC,
        status="past_due",
        period_end=NOW + 100,
        created=NOW - 100,
    )
    deliver(newer)
    deliver(older)
    sub = checkout.subscription(1)
    assert sub is not None
    assert (sub.status, sub.price_id, sub.current_period_end) == ("active", PRICE_PRO, NOW + 9000)


def test_plan_upgrade_changes_credits_from_the_next_paid_invoice(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder, app: Flask
) -> None:
    _start(deliver, events)
    checkout.spend_credits(1, 30)
    changed: list[Any] = []
    with signals.subscription_changed.connected_to(lambda s, **kw: changed.append(kw), app):
        deliver(
            events.subscription_updated(
                user_id="1",
                subscription_id="sub_1",
                price_id=PRICE_PRO,
                status="active",
                created=NOW - 10,
            )
        )
    assert changed and changed[-1]["subscription"].price_id == PRICE_PRO
    sub = checkout.subscription(1)
    assert sub is not None and sub.price_id == PRICE_PRO
    assert checkout.credits(1) == 70  # credits already granted are not touched
    later = int(time.time()) + 5  # paid after the spend, in Stripe's timeline too
    deliver(
        events.invoice_paid(user_id="1", subscription_id="sub_1", price_id=PRICE_PRO, created=later)
    )
    assert checkout.credits(1) == 500


@pytest.mark.parametrize("era", ["2026-07-29.dahlia", "2024-04-10"])
def test_period_end_read_in_both_payload_eras(
    deliver: Deliver, checkout: PaxparCheckout, era: Any
) -> None:
    events = EventBuilder(fqdn=FQDN, era=era)
    event = events.subscription_updated(
        user_id="1",
        subscription_id="sub_1",
        price_id=PRICE_PRO,
        status="trialing",
        period_end=NOW + 1234,
    )
    obj = event["data"]["object"]
    if era == "2024-04-10":
        assert obj["current_period_end"] == NOW + 1234
        assert "current_period_end" not in obj["items"]["data"][0]
    else:
        assert "current_period_end" not in obj
        assert obj["items"]["data"][0]["current_period_end"] == NOW + 1234
    deliver(event)
    sub = checkout.subscription(1)
    assert sub is not None
    assert (sub.status, sub.price_id, sub.current_period_end) == ("trialing", PRICE_PRO, NOW + 1234)
    assert sub.is_active


@pytest.mark.parametrize("status", ["unpaid", "paused", "incomplete", "incomplete_expired"])
def test_status_follows_stripe(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder, status: str
) -> None:
    _start(deliver, events)
    deliver(
        events.subscription_updated(
            user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC, status=status, created=NOW
        )
    )
    sub = checkout.subscription(1)
    assert sub is not None and sub.status == status and not sub.is_active


def test_another_instances_subscription_events_change_nothing(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    _start(deliver, events)
    prod = EventBuilder(fqdn="prod.paxpar.tech", era=events.era)
    for event in (
        prod.subscription_updated(
            user_id="1", subscription_id="sub_1", price_id=PRICE_PRO, status="past_due", created=NOW
        ),
        prod.subscription_deleted(
            user_id="1", subscription_id="sub_1", price_id=PRICE_PRO, created=NOW
        ),
    ):
        assert deliver(event).get_json()["status"] == "ignored"
    sub = checkout.subscription(1)
    assert sub is not None and (sub.status, sub.price_id) == ("active", PRICE_BASIC)


def test_credits_zeroed_on_cancel_when_configured(app_parts: Any, config: dict[str, Any]) -> None:
    from flask_paxpar_checkout.testing import signed

    events = EventBuilder(fqdn=FQDN)
    with other_app({**config, "PAXPAR_CHECKOUT_CREDITS_ON_CANCEL": "zero"}) as (app, _, checkout):
        client = app.test_client()

        def deliver(event: dict[str, Any]) -> Any:
            body, headers = signed(event, config["STRIPE_WEBHOOK_SECRET"])
            return client.post("/api/checkout/webhook", data=body, headers=headers)

        _start(deliver, events)
        deleted = events.subscription_deleted(
            user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC, created=NOW
        )
        deliver(deleted)
        deliver(events.event("customer.subscription.deleted", deleted["data"]["object"]))
        assert checkout.credits(1) == 0
        [zeroed, _reset] = checkout.ledger(1)
        assert (zeroed["reason"], zeroed["delta"]) == ("subscription_canceled", -100)
        assert zeroed["stripe_object_id"] == "sub_1"


def test_expired_session_is_marked_and_grants_nothing(
    client: FlaskClient, deliver: Deliver, checkout: PaxparCheckout, stripe: StripeStub
) -> None:
    session_id = client.get(
        "/api/checkout/session?qty=5", headers=as_user(3, Accept="application/json")
    ).get_json()["id"]
    events = EventBuilder(fqdn=FQDN)
    deliver(events.checkout_session_expired(user_id="3", qty=5, session_id=session_id))
    [stored] = rows("sessions")
    assert stored.status == "expired"
    assert checkout.credits(3) == 0
    # a completion can no longer reopen it, but a paid one would still be credited once
    assert [e.status for e in rows("events")] == ["processed"]


# -- the customer portal ---------------------------------------------------------------------


def test_portal_for_a_paying_user(
    client: FlaskClient, stripe: StripeStub, deliver: Deliver, checkout: PaxparCheckout
) -> None:
    deliver(
        EventBuilder(fqdn=FQDN).checkout_session_completed(
            user_id="4", qty=1, customer_id="cus_four"
        )
    )
    assert checkout.customer_id(4) == "cus_four"
    response = client.get("/api/checkout/portal?redirect=/front/account", headers=as_user(4))
    assert response.status_code == 303
    [create] = stripe.requests_to("POST", "/v1/billing_portal/sessions")
    assert create.params == {
        "customer": "cus_four",
        "return_url": f"https://{FQDN}/front/account",
    }
    assert response.headers["Location"].startswith(f"{stripe.url}/p/session/")

    body = client.get("/api/checkout/portal", headers=as_user(4, Accept="application/json"))
    assert body.status_code == 200
    assert body.get_json()["url"].startswith(f"{stripe.url}/p/session/")
    assert stripe.requests_to("POST", "/v1/billing_portal/sessions")[1].params["return_url"] == (
        f"https://{FQDN}/"
    )


def test_portal_without_user_or_customer(client: FlaskClient, stripe: StripeStub) -> None:
    assert client.get("/api/checkout/portal").status_code == 401
    response = client.get("/api/checkout/portal", headers=as_user(5))
    assert response.status_code == 404
    assert "never paid" in response.get_json()["message"]
    response = client.get("/api/checkout/portal?redirect=https://evil.com", headers=as_user(5))
    assert response.status_code == 400
    assert stripe.requests == []


def test_portal_stripe_error(client: FlaskClient, stripe: StripeStub, deliver: Deliver) -> None:
    deliver(EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="4", customer_id="cus_x"))
    stripe.fail_next(
        "POST",
        "/v1/billing_portal/sessions",
        status=400,
        error_type="invalid_request_error",
        message="You can't create a portal session in test mode until you save your "
        "customer portal settings",
        times=3,
    )
    response = client.get("/api/checkout/portal", headers=as_user(4))
    assert response.status_code == 502
    assert "portal settings" in response.get_json()["message"]
    assert response.headers["X-Stripe-Request-Id"].startswith("req_")
