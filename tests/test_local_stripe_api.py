"""The local Stripe's API through the real ``stripe`` library: the shapes of its objects, the
Events API the sync work reads, webhook endpoints, and its deliveries (signed as Stripe
signs, sent again after a 500)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
import stripe
from stripe.params.checkout import SessionCreateParams

from flask_paxpar_checkout.testing import TestStripe

FIXTURES = Path(__file__).resolve().parent.parent / "flask_paxpar_checkout" / "fixtures"
ERA_FILES = {
    "2026-07-29.dahlia": "stripe-2026-07-29.dahlia.json",
    "2024-04-10": "stripe-2024-04-10.json",
}
SECRET = "whsec_local_api_test"
SUBSCRIBE: SessionCreateParams = {
    "mode": "subscription",
    "success_url": "http://127.0.0.1/ok?session={CHECKOUT_SESSION_ID}",
    "customer_email": "ada@example.com",
    "line_items": [{"price": "price_pro", "quantity": 1}],
    "subscription_data": {"metadata": {"paxpar_fqdn": "dev.paxpar.tech", "paxpar_user_id": "7"}},
}


class Receiver:
    """A webhook receiver on loopback: keeps each body and header, answers from ``statuses``."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[bytes, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((body, self.headers["Stripe-Signature"]))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def client(local_stripe: TestStripe) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_local", base_addresses={"api": local_stripe.url}, max_network_retries=0
    )


def wire(obj: Any) -> dict[str, Any]:
    """The object as the server sent it (the library turns decimal strings into Decimals)."""
    body: dict[str, Any] = (
        json.loads(obj.last_response.body) if obj.last_response else obj.to_dict()
    )
    return body if body.get("object") != "list" else obj.to_dict()


def _same_shape(made: dict[str, Any], example: dict[str, Any], era: str) -> None:
    moved = {"current_period_start", "current_period_end"}  # per era, checked below
    assert set(made) - moved == set(example) - moved
    for key, value in example.items():
        if value is not None and made.get(key) is not None and key not in moved:
            assert type(made[key]) is type(value), key


@pytest.mark.parametrize("era", list(ERA_FILES))
def test_objects_have_the_fixtures_shape(era: str) -> None:
    examples = json.loads((FIXTURES / ERA_FILES[era]).read_text("utf-8"))["resources"]
    with TestStripe(api_version=era) as local:
        client = stripe.StripeClient("sk_test_1", base_addresses={"api": local.url})
        session = client.v1.checkout.sessions.create(params=SUBSCRIBE)
        local.pay(session.id)
        session = client.v1.checkout.sessions.retrieve(session.id)
        customer_id, sub_id, invoice_id = session.customer, session.subscription, session.invoice
        assert isinstance(customer_id, str) and isinstance(sub_id, str)
        assert isinstance(invoice_id, str)
        sub = client.v1.subscriptions.retrieve(sub_id)
        invoice = client.v1.invoices.retrieve(invoice_id)
        made = {
            "checkout.session": wire(session),
            "subscription": wire(sub),
            "invoice": wire(invoice),
            "customer": wire(client.v1.customers.retrieve(customer_id)),
            "price": wire(client.v1.prices.retrieve("price_pro")),
            "event": wire(client.v1.events.list().data[-1]),
            "billing_portal.session": wire(
                client.v1.billing_portal.sessions.create(params={"customer": customer_id})
            ),
        }
    for resource, obj in made.items():
        _same_shape(obj, examples[resource], era)
    item = sub.to_dict()["items"]["data"][0]
    holder = item if era >= "2025-03-31" else sub.to_dict()
    assert holder["current_period_end"] > holder["current_period_start"]
    assert invoice.lines.data[0].period.end == holder["current_period_end"]
    assert invoice.status == "paid"
    tags = SUBSCRIBE["subscription_data"]["metadata"]
    if era >= "2025-03-31":
        assert invoice.parent is not None
        details = invoice.parent.subscription_details
        assert details is not None and details.metadata is not None
        assert details.subscription == sub.id
        assert details.metadata.to_dict() == tags
    else:  # the fields of that era, which the library's types no longer name
        assert invoice["subscription"] == sub.id
        assert invoice["subscription_details"]["metadata"].to_dict() == tags


def test_sent_events_verify_with_stripes_own_check(
    local_stripe: TestStripe, client: stripe.StripeClient
) -> None:
    with Receiver([]) as receiver:
        local_stripe.add_webhook_endpoint(url=receiver.url, enabled_events=["*"], secret=SECRET)
        session = client.v1.checkout.sessions.create(params=SUBSCRIBE)
        local_stripe.pay(session.id)
    types = [json.loads(body)["type"] for body, _ in receiver.received]
    assert types == ["checkout.session.completed", "customer.subscription.created", "invoice.paid"]
    for body, header in receiver.received:
        assert stripe.WebhookSignature.verify_header(body.decode(), header, SECRET, tolerance=300)
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.WebhookSignature.verify_header(body.decode(), header, "whsec_other")
        event = stripe.Webhook.construct_event(body.decode(), header, SECRET)
        assert client.v1.events.retrieve(event.id).type == event.type


def test_a_webhook_answering_500_gets_the_event_again(
    local_stripe: TestStripe, client: stripe.StripeClient
) -> None:
    with Receiver([500, 503]) as receiver:
        local_stripe.add_webhook_endpoint(
            url=receiver.url, enabled_events=["checkout.session.completed"], secret=SECRET
        )
        session = client.v1.checkout.sessions.create(params=SUBSCRIBE)
        local_stripe.pay(session.id, wait=False)
        local_stripe.wait_for_deliveries(timeout=10)
    bodies = [body for body, _ in receiver.received]
    assert len(bodies) == 3 and len(set(bodies)) == 1  # the same event, three times
    [delivery] = local_stripe.deliveries
    assert [a.status for a in delivery.attempts] == [500, 503, 200]
    assert delivery.state == "succeeded"
    with urlopen(local_stripe.url + "/deliveries", timeout=5) as page:  # noqa: S310
        text = page.read().decode()
    assert delivery.event_id in text and "500" in text and "succeeded" in text


def test_a_webhook_that_never_answers_2xx_is_given_up(
    local_stripe: TestStripe, client: stripe.StripeClient
) -> None:
    with Receiver([500] * 10) as receiver:
        local_stripe.add_webhook_endpoint(
            url=receiver.url, enabled_events=["checkout.session.completed"], secret=SECRET
        )
        session = client.v1.checkout.sessions.create(params=SUBSCRIBE)
        local_stripe.pay(session.id)
    [delivery] = local_stripe.deliveries
    assert delivery.state == "failed"
    assert len(delivery.attempts) == len(receiver.received) == 5  # first try + four retries


def test_a_webhook_that_is_down_is_retried_then_given_up(
    local_stripe: TestStripe, client: stripe.StripeClient
) -> None:
    with socket.socket() as bound_not_listening:  # connections to it are refused
        bound_not_listening.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{bound_not_listening.getsockname()[1]}/hook"
        local_stripe.add_webhook_endpoint(url=url, enabled_events=["*"], secret=SECRET)
        session = client.v1.checkout.sessions.create(params=SUBSCRIBE)
        local_stripe.pay(session.id)
    assert {d.state for d in local_stripe.deliveries} == {"failed"}
    assert all(a.status is None for d in local_stripe.deliveries for a in d.attempts)


def test_disabled_and_unmatched_endpoints_get_nothing(
    local_stripe: TestStripe, client: stripe.StripeClient
) -> None:
    with Receiver([]) as receiver:
        local_stripe.add_webhook_endpoint(
            url=receiver.url, enabled_events=["*"], secret=SECRET, status="disabled"
        )
        local_stripe.add_webhook_endpoint(
            url=receiver.url, enabled_events=["invoice.payment_failed"], secret=SECRET
        )
        local_stripe.pay(client.v1.checkout.sessions.create(params=SUBSCRIBE).id)
    assert receiver.received == []
    assert [e["type"] for e in local_stripe.events()] == [
        "checkout.session.completed",
        "customer.subscription.created",
        "invoice.paid",
    ]
