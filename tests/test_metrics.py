"""Metrics in the host's Prometheus registry, and one log record per webhook event."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.testing import EventBuilder, StripeStub, new_id, signed
from tests.conftest import FQDN, PRICE_BASIC, WEBHOOK_SECRET, as_user, base_config, database_url

prometheus_client = pytest.importorskip("prometheus_client")
EVENTS = "paxpar_checkout_webhook_events_total"
STRIPE = "paxpar_checkout_stripe_requests_total"


@pytest.fixture
def config(stripe: StripeStub, tmp_path: Any) -> dict[str, Any]:
    return {
        **base_config(stripe.url, database_url(tmp_path)),
        "PAXPAR_CHECKOUT_DEFERRED_MAX_ATTEMPTS": 1,
    }


def refuse_the_email(event: dict[str, Any]) -> None:
    raise RuntimeError("SMTP server refuses the address")


def expire_fails(event: dict[str, Any]) -> None:
    raise RuntimeError("the host's handler failed")


def deliver(client: FlaskClient, event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> int:
    body, headers = signed(event, secret)
    response = client.post("/api/checkout/webhook", data=body, headers=headers)
    response.close()  # as a WSGI server does once the answer is sent
    return response.status_code


def test_a_mix_of_events_shows_the_exact_counts(
    app: Flask, checkout: PaxparCheckout, client: FlaskClient, stripe: StripeStub
) -> None:
    registry = prometheus_client.CollectorRegistry()
    checkout.init_metrics(app, registry=registry)
    checkout.webhook_handler("invoice.payment_failed", deferred=True)(refuse_the_email)
    checkout.webhook_handler("checkout.session.expired")(expire_fails)
    events = EventBuilder(fqdn=FQDN)

    assert client.get("/api/checkout/session?qty=10", headers=as_user(1)).status_code == 303
    assert (
        client.get(f"/api/checkout/session?price_id={PRICE_BASIC}", headers=as_user(1)).status_code
        == 303
    )
    stripe.fail_next(
        "POST", "/v1/checkout/sessions", status=400, error_type="invalid_request_error"
    )
    assert client.get("/api/checkout/session?qty=1", headers=as_user(2)).status_code == 502

    paid = events.invoice_paid(user_id="1", subscription_id=new_id("sub"), price_id=PRICE_BASIC)
    other = EventBuilder(fqdn="other.paxpar.tech")
    answers = [
        deliver(client, events.checkout_session_completed(user_id="1", qty=10)),
        deliver(client, paid),
        deliver(client, paid),
        deliver(client, other.invoice_paid(user_id="1", subscription_id="sub_x", price_id="p")),
        deliver(client, paid, secret="whsec_wrong"),
        deliver(client, events.checkout_session_expired(user_id="1")),
        deliver(
            client,
            events.invoice_payment_failed(
                user_id="1", subscription_id=new_id("sub"), price_id=PRICE_BASIC
            ),
        ),
    ]
    assert answers == [200, 200, 200, 200, 400, 500, 200]

    text = prometheus_client.generate_latest(registry).decode()
    lines = {line for line in text.splitlines() if not line.startswith("#")}
    expected = {
        EVENTS + '{outcome="processed",type="checkout.session.completed"} 1.0',
        EVENTS + '{outcome="processed",type="invoice.paid"} 1.0',
        EVENTS + '{outcome="duplicate",type="invoice.paid"} 1.0',
        EVENTS + '{outcome="ignored",type="invoice.paid"} 1.0',
        EVENTS + '{outcome="invalid",type="unknown"} 1.0',
        EVENTS + '{outcome="failed",type="checkout.session.expired"} 1.0',
        EVENTS + '{outcome="processed",type="invoice.payment_failed"} 1.0',
        "paxpar_checkout_webhook_seconds_count 7.0",
        'paxpar_checkout_sessions_created_total{mode="payment"} 1.0',
        'paxpar_checkout_sessions_created_total{mode="subscription"} 1.0',
        STRIPE + '{operation="customers.create",outcome="ok"} 2.0',
        STRIPE + '{operation="checkout.sessions.create",outcome="ok"} 2.0',
        STRIPE + '{operation="checkout.sessions.create",outcome="error"} 1.0',
        'paxpar_checkout_credits_changes_total{reason="purchase"} 1.0',
        'paxpar_checkout_credits_changes_total{reason="subscription_reset"} 1.0',
        "paxpar_checkout_outbox_pending 0.0",
        "paxpar_checkout_outbox_failed 1.0",
    }
    assert expected <= lines, sorted(expected - lines)
    counted = {line.rsplit(" ", 1)[0] for line in lines if line.startswith(_COUNTERS)}
    assert counted == {line.rsplit(" ", 1)[0] for line in expected if line.startswith(_COUNTERS)}


_COUNTERS = (
    "paxpar_checkout_webhook_events_total",
    "paxpar_checkout_sessions_created_total",
    "paxpar_checkout_stripe_requests_total",
    "paxpar_checkout_credits_changes_total",
)


def test_the_outbox_gauges_follow_the_rows(
    app: Flask, checkout: PaxparCheckout, client: FlaskClient
) -> None:
    registry = prometheus_client.CollectorRegistry()
    checkout.init_metrics(app, registry=registry)
    checkout.webhook_handler("invoice.payment_failed", deferred=True)(refuse_the_email)
    event = EventBuilder(fqdn=FQDN).invoice_payment_failed(
        user_id="1", subscription_id=new_id("sub"), price_id=PRICE_BASIC
    )
    body, headers = signed(event, WEBHOOK_SECRET)
    response = client.post("/api/checkout/webhook", data=body, headers=headers)
    assert registry.get_sample_value("paxpar_checkout_outbox_pending") == 1.0  # not run yet
    response.close()
    assert registry.get_sample_value("paxpar_checkout_outbox_pending") == 0.0
    assert registry.get_sample_value("paxpar_checkout_outbox_failed") == 1.0


def test_metrics_of_two_apps_share_one_registry(
    app: Flask, checkout: PaxparCheckout, config: dict[str, Any]
) -> None:
    from tests.conftest import make_app

    registry = prometheus_client.CollectorRegistry()
    checkout.init_metrics(app, registry=registry)
    other_app, _, other = make_app(config)
    other.init_metrics(other_app, registry=registry)  # no duplicated time series
    assert (
        app.extensions["paxpar_checkout_metrics"] is other_app.extensions["paxpar_checkout_metrics"]
    )


def test_one_log_record_per_webhook_event_without_payload_nor_secret(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    event = EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="1", qty=10)
    caplog.set_level(logging.INFO, logger="flask_paxpar_checkout")
    assert deliver(client, event) == 200
    assert deliver(client, event) == 200
    assert deliver(client, event, secret="whsec_wrong") == 400
    records = [r for r in caplog.records if hasattr(r, "outcome")]
    fields = [vars(r) for r in records]  # the log's `extra` fields, set on each record
    assert [(f["event_id"], f["event_type"], f["outcome"]) for f in fields] == [
        (event["id"], "checkout.session.completed", "processed"),
        (event["id"], "checkout.session.completed", "duplicate"),
        (None, None, "invalid"),
    ]
    assert all(isinstance(f["duration_ms"], float) and f["duration_ms"] > 0 for f in fields)
    secrets = (event["data"]["object"]["id"], event["data"]["object"]["customer"], WEBHOOK_SECRET)
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        assert not any(s in text for s in secrets), record.getMessage()
