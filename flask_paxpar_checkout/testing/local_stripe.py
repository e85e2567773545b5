"""``TestStripe``: the local Stripe with its events delivered to a Flask test client too."""

from __future__ import annotations

from typing import Any, Protocol

from flask import Flask

from ..local_stripe import LocalStripe

__all__ = ["TEST_RETRY_DELAYS", "TestStripe"]

WEBHOOK_PATH = "/api/checkout/webhook"
# Retries come quickly in tests; the schedule's shape is Stripe's.
TEST_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4)


class _TestClient(Protocol):
    application: Flask

    def post(self, path: str, *, data: bytes, headers: dict[str, str]) -> Any: ...


class TestStripe(LocalStripe):
    """The local Stripe with a way to deliver its events to a Flask test client."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    def deliver_to(
        self,
        target: _TestClient | str,
        *,
        secret: str | None = None,
        path: str = WEBHOOK_PATH,
        enabled_events: list[str] | None = None,
    ) -> dict[str, Any]:
        """Send every later event to ``target``: a test client (at ``path``) or a URL.

        The secret defaults to the test client's app's first ``STRIPE_WEBHOOK_SECRET``. A test
        client's request runs in an app context of its own, as a server's request would: end
        the test's own write transaction first, or the webhook waits for its locks.
        """
        if isinstance(target, str):
            if secret is None:
                raise ValueError("deliver_to(url) needs the endpoint's secret=")
            return self.add_webhook_endpoint(
                url=target, enabled_events=enabled_events or ["*"], secret=secret
            )
        client = target
        app = client.application
        if secret is None:
            configured = app.config.get("STRIPE_WEBHOOK_SECRET")
            if isinstance(configured, str):
                configured = configured.split(",")
            secret = str(next(iter(configured or [""]))).strip()
            if not secret:
                raise ValueError("the app has no STRIPE_WEBHOOK_SECRET: pass deliver_to(secret=)")
        endpoint = self.add_webhook_endpoint(
            url=f"http://localhost{path}", enabled_events=enabled_events or ["*"], secret=secret
        )

        def through_test_client(
            url: str, body: bytes, headers: dict[str, str], timeout: float
        ) -> tuple[int | None, str]:
            with app.app_context():
                answer = client.post(path, data=body, headers=headers)
            return int(answer.status_code), answer.get_data(as_text=True)

        self.route_endpoint(endpoint["id"], through_test_client)
        return endpoint
