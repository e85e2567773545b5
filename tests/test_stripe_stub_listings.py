"""The stub's events, webhook endpoints and stored subscriptions, through the real library."""

from __future__ import annotations

from typing import Any

import pytest
import stripe as stripe_library

from flask_paxpar_checkout.testing import EventBuilder, StripeStub

from .conftest import FQDN


@pytest.fixture
def client(stripe: StripeStub) -> Any:
    return stripe_library.StripeClient(
        "sk_test_listings", base_addresses={"api": stripe.url}, max_network_retries=0
    )


def seeded(stub: StripeStub, times: list[int]) -> list[dict[str, Any]]:
    builder = EventBuilder(fqdn=FQDN)
    return [
        stub.add_event(builder.checkout_session_completed(user_id="1", created=t)) for t in times
    ]


def test_events_are_listed_newest_first_and_filtered(stripe: StripeStub, client: Any) -> None:
    early, middle, late = seeded(stripe, [1000, 2000, 3000])
    builder = EventBuilder(fqdn=FQDN)
    paid = stripe.add_event(
        builder.invoice_paid(user_id="1", subscription_id="sub_1", price_id="price_a", created=2500)
    )

    listed = client.v1.events.list().to_dict()
    assert [e["id"] for e in listed["data"]] == [late["id"], paid["id"], middle["id"], early["id"]]
    assert listed["object"] == "list" and listed["url"] == "/v1/events" and not listed["has_more"]

    typed = client.v1.events.list(params={"types": ["invoice.paid"]}).data
    assert [e.id for e in typed] == [paid["id"]]
    one_type = client.v1.events.list(params={"type": "checkout.session.completed"}).data
    assert len(one_type) == 3
    window = client.v1.events.list(params={"created": {"gte": 2000, "lt": 3000}}).data
    assert [e.id for e in window] == [paid["id"], middle["id"]]
    after = client.v1.events.list(params={"created": {"gt": 2000, "lte": 2500}}).data
    assert [e.id for e in after] == [paid["id"]]
    assert client.v1.events.retrieve(paid["id"]).type == "invoice.paid"


def test_pages_follow_starting_after_and_ending_before(stripe: StripeStub, client: Any) -> None:
    events = seeded(stripe, list(range(1000, 1025)))
    newest_first = [e["id"] for e in reversed(events)]

    first = client.v1.events.list(params={"limit": 10}).to_dict()
    assert [e["id"] for e in first["data"]] == newest_first[:10] and first["has_more"]
    second = client.v1.events.list(params={"limit": 10, "starting_after": newest_first[9]})
    assert [e.id for e in second.data] == newest_first[10:20] and second.has_more
    last = client.v1.events.list(params={"limit": 10, "starting_after": newest_first[19]})
    assert [e.id for e in last.data] == newest_first[20:] and not last.has_more
    back = client.v1.events.list(params={"limit": 3, "ending_before": newest_first[10]})
    assert [e.id for e in back.data] == newest_first[7:10] and back.has_more
    assert len(client.v1.events.list().data) == 10  # Stripe's default page


def test_bad_list_parameters_are_refused(stripe: StripeStub, client: Any) -> None:
    with pytest.raises(stripe_library.InvalidRequestError) as too_many:
        client.v1.events.list(params={"limit": 101})
    assert too_many.value.param == "limit"
    with pytest.raises(stripe_library.InvalidRequestError) as unknown:
        client.v1.events.list(params={"starting_after": "evt_nope"})
    assert unknown.value.code == "resource_missing"
    with pytest.raises(stripe_library.InvalidRequestError):
        client.v1.events.retrieve("evt_nope")


def test_failures_on_demand_apply_to_listings(stripe: StripeStub, client: Any) -> None:
    seeded(stripe, [1000])
    stripe.fail_next("GET", "/v1/events", status=500)
    with pytest.raises(stripe_library.APIError):
        client.v1.events.list()
    assert len(client.v1.events.list().data) == 1


def test_webhook_endpoints_and_subscriptions(stripe: StripeStub, client: Any) -> None:
    made = stripe.add_webhook_endpoint(
        url="https://dev.paxpar.tech/api/checkout/webhook",
        enabled_events=["invoice.paid"],
        api_version="2026-07-29.dahlia",
        status="disabled",
        secret="whsec_listed",
    )
    [listed] = client.v1.webhook_endpoints.list().data
    assert listed.id == made["id"] and made["id"].startswith("we_")
    assert (listed.status, listed.enabled_events) == ("disabled", ["invoice.paid"])
    assert "secret" not in listed  # Stripe shows it only when the endpoint is created

    builder = EventBuilder(fqdn=FQDN)
    sub = builder.subscription(user_id="1", subscription_id="sub_kept", price_id="price_a")
    stripe.put_subscription(sub)
    assert client.v1.subscriptions.retrieve("sub_kept").status == "active"
    stripe.put_subscription({**sub, "status": "canceled"})
    assert client.v1.subscriptions.retrieve("sub_kept").status == "canceled"
    with pytest.raises(stripe_library.InvalidRequestError) as missing:
        client.v1.subscriptions.retrieve("sub_unknown")
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404
