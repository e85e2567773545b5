"""The whole journey of a user in headless Chromium, on the example app and the local Stripe:
subscribe and pay on the local Checkout, buy credits, renew on the test clock, cancel in the
portal; and a declined card that grants nothing. Every request the browser makes is recorded
and must go to loopback: no page links to or loads a real Stripe URL.

With ``SCREENSHOT_DIR=DIR`` the journey also writes the README's screenshots there
(``examples/screenshots.py`` runs it so).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from examples.host_app.live import CHROMIUM, CHROMIUM_ARGS, serve_example
from examples.host_app.local_stripe import CREDIT_AMOUNT, DEMO_AMOUNTS
from examples.host_app.settings import DEMO_CREDIT_PRICE, DEV_WEBHOOK_SECRET
from flask_paxpar_checkout.testing import TestStripe

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
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# What a user with a real Stripe test key sees: without the "sessions go to <stub>" hint.
HIDE_API_BASE_HINT = ".api-base { display: none; }"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example reads its settings from the environment: start from none of them."""
    for key in list(os.environ):
        if key.startswith(("PAXPAR_", "STRIPE_")) or key in ("DATABASE_URL", "SECRET_KEY"):
            monkeypatch.delenv(key)


@pytest.fixture
def site(
    clean_env: None, local_stripe: TestStripe, tmp_path: Path
) -> Iterator[tuple[str, TestStripe]]:
    """The example on the local Stripe, as ``examples/run.sh`` runs it without a key."""
    for price, cents in DEMO_AMOUNTS.items():
        local_stripe.add_price(price, unit_amount=cents, product_name=price.split("_")[1].title())
    local_stripe.add_price(
        DEMO_CREDIT_PRICE, recurring=False, unit_amount=CREDIT_AMOUNT, product_name="Credit"
    )
    config = {"LOCAL_STRIPE_URL": local_stripe.url}
    with serve_example(tmp_path / "host.db", local_stripe.url, config) as (_app, base):
        local_stripe.add_webhook_endpoint(
            url=base + "/api/checkout/webhook", enabled_events=["*"], secret=DEV_WEBHOOK_SECRET
        )
        yield base, local_stripe


@pytest.fixture
def page(site: tuple[str, TestStripe]) -> Iterator[Any]:
    """A browser page that records every request and refuses any beyond loopback."""
    seen: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1000, "height": 720})

        def loopback_only(route: Any) -> None:
            seen.append(route.request.url)
            if urlsplit(route.request.url).hostname in LOOPBACK:
                route.continue_()
            else:
                route.abort()

        context.route("**/*", loopback_only)
        page = context.new_page()
        page.set_default_timeout(10_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
    assert seen, "the browser made no request"
    assert {urlsplit(url).hostname for url in seen} <= LOOPBACK, seen


def sign_in(page: Any, base: str, user: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill("paxpar-demo")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/account")


def shoot(page: Any, name: str) -> None:
    out = os.environ.get("SCREENSHOT_DIR")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(out) / name), full_page=True)


def test_subscribe_buy_renew_and_cancel(page: Any, site: tuple[str, TestStripe]) -> None:
    base, stripe = site
    expect = sync_api.expect
    sign_in(page, base, "alice")
    expect(page.get_by_role("note")).to_contain_text("Local Stripe: no real payment")
    expect(page.locator("#credit-balance")).to_have_text("0")

    page.goto(base + "/prices")
    page.locator('a[data-price="price_basic"]').click()
    page.wait_for_url(stripe.url + "/c/pay/**")
    expect(page.locator("#customer-email")).to_have_text("alice@example.com")
    expect(page.locator("#total")).to_have_text("9.00 USD")
    expect(page.get_by_label("Card number")).to_have_value("4242 4242 4242 4242")
    shoot(page, "checkout.png")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(base + "/front/checkout/success")
    expect(page.get_by_role("heading", name="Thank you!")).to_be_visible()

    page.goto(base + "/account")
    expect(page.locator("#subscription-status")).to_have_text("active")
    expect(page.locator("#credit-balance")).to_have_text("100")

    page.goto(base + "/prices")
    page.get_by_label("Credits to buy").fill("12")
    page.get_by_role("button", name="Buy credits").click()
    page.wait_for_url(stripe.url + "/c/pay/**")
    expect(page.locator("#total")).to_have_text("1.20 USD")
    page.get_by_role("button", name="Pay").click()
    page.wait_for_url(base + "/front/checkout/success")
    page.goto(base + "/account")
    expect(page.locator("#credit-balance")).to_have_text("112")
    page.goto(base + "/prices")
    page.add_style_tag(content=HIDE_API_BASE_HINT)
    shoot(page, "prices.png")

    page.goto(base + "/account")
    page.get_by_role("link", name="test clock").click()
    page.wait_for_url(stripe.url + "/")
    page.get_by_role("button", name="Advance one period").click()
    page.wait_for_url(stripe.url + "/")
    page.goto(base + "/account")
    expect(page.locator("#credit-balance")).to_have_text("100")
    expect(page.locator("#subscription-status")).to_have_text("active")
    shoot(page, "account.png")

    page.get_by_role("link", name="Manage subscription").click()
    page.wait_for_url(stripe.url + "/p/session/**")
    page.get_by_role("button", name="Cancel now").click()
    expect(page.get_by_role("status")).to_have_text("Your plan is canceled.")
    page.get_by_role("link", name="Return").click()
    page.wait_for_url(base + "/account")
    expect(page.locator("#subscription-status")).to_have_text("canceled")
    assert {d.state for d in stripe.deliveries} == {"succeeded"}


def test_a_declined_card_stays_on_checkout_and_grants_nothing(
    page: Any, site: tuple[str, TestStripe]
) -> None:
    base, stripe = site
    expect = sync_api.expect
    sign_in(page, base, "bob")
    page.goto(base + "/prices")
    page.locator('a[data-price="price_basic"]').click()
    page.wait_for_url(stripe.url + "/c/pay/**")
    checkout_url = page.url
    page.get_by_label("Card number").fill("4000 0000 0000 0002")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    assert page.url == checkout_url
    expect(page.locator("#session-status")).to_have_text("open")

    page.get_by_role("link", name="Cancel").click()
    page.wait_for_url(base + "/front/checkout/cancel")
    page.goto(base + "/account")
    expect(page.locator("#credit-balance")).to_have_text("0")
    expect(page.locator("#subscription-status")).to_have_count(0)
    assert stripe.events() == [] and stripe.deliveries == []
