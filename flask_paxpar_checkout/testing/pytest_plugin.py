"""A pytest plugin for hosts' tests: a local Stripe on a free port, the settings that point an
app at it, and its events delivered to the app's test client or to a URL.

Enable it in a ``conftest.py``::

    pytest_plugins = ["flask_paxpar_checkout.testing.pytest_plugin"]

    @pytest.fixture
    def app(local_stripe_config):
        return create_app({**local_stripe_config, "STRIPE_WEBHOOK_SECRET": "whsec_test"})

    def test_subscribe(app, client, local_stripe):
        local_stripe.deliver_to(client)
        session = client.get("/api/checkout/session?price_id=price_basic",
                             headers={"Accept": "application/json"}).get_json()
        local_stripe.pay(session["id"])         # checkout.session.completed, invoice.paid...
        local_stripe.advance_clock()            # the next period: invoice.paid again
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..local_stripe.command import TEST_KEY
from .local_stripe import TEST_RETRY_DELAYS, TestStripe

__all__ = ["local_stripe", "local_stripe_config", "local_stripe_server"]


@pytest.fixture(scope="session")
def local_stripe_server() -> Iterator[TestStripe]:
    """One local Stripe for the whole test session (use ``local_stripe`` in tests)."""
    with TestStripe(retry_delays=TEST_RETRY_DELAYS, delivery_timeout=10.0) as stripe:
        yield stripe


@pytest.fixture
def local_stripe(local_stripe_server: TestStripe) -> TestStripe:
    """The local Stripe, emptied: no object, event, endpoint or fault left by another test."""
    local_stripe_server.reset()
    return local_stripe_server


@pytest.fixture
def local_stripe_config(local_stripe: TestStripe) -> dict[str, Any]:
    """The settings that point an app at the local Stripe, with a test key."""
    return {
        "STRIPE_API_BASE": local_stripe.url,
        "STRIPE_SECRET_KEY": TEST_KEY,
        "PAXPAR_CHECKOUT_STRIPE_MAX_NETWORK_RETRIES": 0,
    }
