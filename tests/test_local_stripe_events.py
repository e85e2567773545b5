"""The local Stripe's Events API, subscriptions and webhook endpoints as a sync reads them:
filters, Stripe's cursor pagination newest first, errors, and a fault on page 2."""

from __future__ import annotations

import pytest
import stripe

from flask_paxpar_checkout.testing import EventBuilder, TestStripe

BASE = 1_800_000_000


@pytest.fixture
def client(local_stripe: TestStripe) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_local", base_addresses={"api": local_stripe.url}, max_network_retries=0
    )


@pytest.fixture
def seeded(local_stripe: TestStripe) -> list[str]:
    """Twelve events, one a second; invoice.paid and subscription updates alternate."""
    builder = EventBuilder(fqdn="dev.paxpar.tech")
    ids = []
    for i in range(12):
        if i % 2:
            event = builder.subscription_updated(
                user_id="1", subscription_id="sub_1", price_id="price_a", created=BASE + i
            )
        else:
            event = builder.invoice_paid(
                user_id="1", subscription_id="sub_1", price_id="price_a", event_created=BASE + i
            )
        ids.append(local_stripe.add_event(event)["id"])
    return ids


def test_list_is_newest_first_and_pages_with_cursors(
    client: stripe.StripeClient, seeded: list[str]
) -> None:
    first = client.v1.events.list(params={"limit": 5})
    assert [e.id for e in first.data] == seeded[::-1][:5]
    assert first.has_more is True and first.url == "/v1/events"
    second = client.v1.events.list(params={"limit": 5, "starting_after": first.data[-1].id})
    assert [e.id for e in second.data] == seeded[::-1][5:10]
    last = client.v1.events.list(params={"limit": 5, "starting_after": second.data[-1].id})
    assert [e.id for e in last.data] == seeded[::-1][10:] and last.has_more is False
    back = client.v1.events.list(params={"limit": 3, "ending_before": second.data[0].id})
    assert [e.id for e in back.data] == seeded[::-1][2:5] and back.has_more is True
    assert [e.id for e in client.v1.events.list().auto_paging_iter()] == seeded[::-1]
    assert len(client.v1.events.list().data) == 10  # Stripe's default limit


def test_filters_by_types_and_created(client: stripe.StripeClient, seeded: list[str]) -> None:
    paid = client.v1.events.list(params={"type": "invoice.paid", "limit": 100})
    assert [e.id for e in paid.data] == seeded[0::2][::-1]
    both = client.v1.events.list(
        params={"types": ["invoice.paid", "customer.subscription.updated"], "limit": 100}
    )
    assert len(both.data) == 12
    window = client.v1.events.list(params={"created": {"gte": BASE + 3, "lt": BASE + 6}})
    assert [e.created for e in window.data] == [BASE + 5, BASE + 4, BASE + 3]
    after = client.v1.events.list(params={"created": {"gt": BASE + 9, "lte": BASE + 11}})
    assert [e.created for e in after.data] == [BASE + 11, BASE + 10]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"starting_after": "evt_unknown"}, "starting_after"),
        ({"created": {"gte": "soon"}}, "created[gte]"),
    ],
)
def test_bad_list_params_are_refused(
    client: stripe.StripeClient, seeded: list[str], params: dict[str, object], param: str
) -> None:
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.events.list(params=params)  # type: ignore[arg-type]
    assert err.value.param == param


def test_a_failure_on_page_two(
    local_stripe: TestStripe, client: stripe.StripeClient, seeded: list[str]
) -> None:
    pages = client.v1.events.list(params={"limit": 5})
    local_stripe.fail_next("GET", "/v1/events", status=500)
    with pytest.raises(stripe.APIError):
        client.v1.events.list(params={"limit": 5, "starting_after": pages.data[-1].id})
    again = client.v1.events.list(params={"limit": 5, "starting_after": pages.data[-1].id})
    assert [e.id for e in again.data] == seeded[::-1][5:10]


def test_retrieve_event_subscription_and_missing_ones(
    local_stripe: TestStripe, client: stripe.StripeClient, seeded: list[str]
) -> None:
    assert client.v1.events.retrieve(seeded[3]).created == BASE + 3
    sub = EventBuilder(fqdn="x.test").subscription(
        user_id="1", subscription_id="sub_put", price_id="price_a", status="past_due"
    )
    local_stripe.put_subscription(sub)
    assert client.v1.subscriptions.retrieve("sub_put").status == "past_due"
    local_stripe.put_subscription({**sub, "status": "canceled"})
    assert client.v1.subscriptions.retrieve("sub_put").status == "canceled"
    for call in (
        lambda: client.v1.subscriptions.retrieve("sub_none"),
        lambda: client.v1.events.retrieve("evt_none"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as err:
            call()
        assert err.value.http_status == 404 and err.value.code == "resource_missing"


def test_webhook_endpoints_listed_without_secrets(
    local_stripe: TestStripe, client: stripe.StripeClient
) -> None:
    made = [
        local_stripe.add_webhook_endpoint(
            url=f"http://127.0.0.1:9/{n}", enabled_events=["invoice.paid"], api_version=None
        )
        for n in range(3)
    ]
    assert made[0]["secret"].startswith("whsec_")
    listed = client.v1.webhook_endpoints.list(params={"limit": 2})
    assert [e.id for e in listed.data] == [made[2]["id"], made[1]["id"]] and listed.has_more
    assert "secret" not in listed.data[0]
    rest = client.v1.webhook_endpoints.list(params={"starting_after": listed.data[-1].id})
    assert [e.id for e in rest.data] == [made[0]["id"]]


def test_seeding_refuses_what_stripe_would_not_hold(local_stripe: TestStripe) -> None:
    with pytest.raises(ValueError, match="Stripe event"):
        local_stripe.add_event({"object": "invoice", "id": "in_1"})
    with pytest.raises(ValueError, match="http"):
        local_stripe.add_webhook_endpoint(url="ftp://x", enabled_events=["*"])
    with pytest.raises(ValueError, match="subscription"):
        local_stripe.put_subscription({"object": "customer", "id": "cus_1"})
    assert local_stripe.events() == []
