"""End to end in headless Chromium: sign in, subscribe through the local Stripe stub's
Checkout page, play the invoice's payment with ``flask checkout trigger``, see the credits.

Needs Debian's ``chromium`` (/usr/bin/chromium) and the ``playwright`` package; never
downloads a browser. Every request the page makes outside the two local servers is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.host_app.live import CHROMIUM, CHROMIUM_ARGS, serve_example
from flask_paxpar_checkout.testing import StripeStub

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="the playwright package is not installed: pip install -e '.[browser]'",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example reads its settings from the environment: start from none of them."""
    for key in list(os.environ):
        if key.startswith(("PAXPAR_", "STRIPE_")) or key in ("DATABASE_URL", "SECRET_KEY"):
            monkeypatch.delenv(key)


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.mark.usefixtures("clean_env")
def test_subscribe_then_invoice_paid_resets_credits(
    browser: Any, stripe: StripeStub, tmp_path: Path
) -> None:
    expect = sync_api.expect
    with serve_example(tmp_path / "host.db", stripe.url) as (app, base):
        context = browser.new_context()
        refused: list[str] = []

        def local_only(route: Any) -> None:
            url = route.request.url
            if url.startswith((base + "/", stripe.url + "/")):
                route.continue_()
            else:
                refused.append(url)
                route.abort()

        context.route("**/*", local_only)
        page = context.new_page()
        page.set_default_timeout(10_000)
        try:
            page.goto(base + "/login")
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password").fill("paxpar-demo")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(base + "/account")
            expect(page.locator("#credit-balance")).to_have_text("0")

            page.goto(base + "/prices")
            button = page.locator('a[data-price="price_basic"]')
            expect(button).to_have_attribute("href", "/api/checkout/session?price_id=price_basic")
            button.click()

            page.wait_for_url(stripe.url + "/c/pay/**")
            [created] = stripe.requests_to("POST", "/v1/checkout/sessions")
            session_id = page.url.rsplit("/", 1)[1]
            assert session_id.startswith("cs_test_")
            assert stripe.session(session_id)["url"] == page.url
            assert created.params["line_items"] == [{"price": "price_basic", "quantity": "1"}]
            assert created.params["success_url"].startswith(base + "/api/checkout/success?")

            page.get_by_role("button", name="Pay").click()
            page.wait_for_url(base + "/front/checkout/success")
            expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()

            page.goto(base + "/account")
            expect(page.locator("#subscription-status")).to_have_text("active")
            expect(page.locator("#credit-balance")).to_have_text("0")  # until the invoice

            result = app.test_cli_runner().invoke(
                args=["checkout", "trigger", "invoice.paid", "--user", "1"]
            )
            assert result.exit_code == 0, result.output
            assert f"-> {base}/api/checkout/webhook" in result.output
            assert '"status": "processed"' in result.output
            subscription = stripe.session(session_id)["subscription"]
            assert f"subscription={subscription}" in result.output

            page.reload()
            expect(page.locator("#credit-balance")).to_have_text("100")
            expect(page.locator("#subscription-status")).to_have_text("active")
            expect(page.get_by_role("cell", name="subscription_reset")).to_be_visible()
            expect(page.get_by_role("link", name="Manage subscription")).to_be_visible()
        finally:
            context.close()
    assert refused == []
