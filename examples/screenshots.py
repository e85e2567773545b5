"""Take the README's screenshots, ``docs/prices.png`` and ``docs/account.png``.

Same setup as the browser test: the example app served on 127.0.0.1, Stripe replaced by
the local stub, Debian's Chromium driven by Playwright, no network. From the repo root::

    .venv/bin/python -m examples.screenshots
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from examples.host_app.extensions import checkout
from examples.host_app.live import CHROMIUM, CHROMIUM_ARGS, serve_example
from examples.host_app.settings import DEMO_CREDIT_PRICE, DEMO_PRICES
from flask_paxpar_checkout.testing import StripeStub

ROOT = Path(__file__).resolve().parent.parent
# What a user with a real Stripe test key sees: without the "sessions go to <stub>" hint.
HIDE_STUB_HINT = ".api-base { display: none; }"


def take(out: Path) -> None:
    """Subscribe, get an invoice paid, spend and buy credits; shoot both pages."""
    out.mkdir(parents=True, exist_ok=True)
    config = {
        "PAXPAR_CHECKOUT_PRICES": DEMO_PRICES,
        "PAXPAR_CHECKOUT_CREDIT_PRICE_ID": DEMO_CREDIT_PRICE,
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        StripeStub() as stripe,
        serve_example(Path(tmp) / "host.db", stripe.url, config) as (app, base),
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1000, "height": 720})
            context.route("**/*", _local_only(base, stripe.url))
            page = context.new_page()
            page.set_default_timeout(10_000)

            page.goto(base + "/login")
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password").fill("paxpar-demo")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(base + "/account")

            page.goto(base + "/prices")
            page.locator('a[data-price="price_basic"]').click()
            page.wait_for_url(stripe.url + "/c/pay/**")
            page.get_by_role("button", name="Pay").click()
            page.wait_for_url(base + "/front/checkout/success")

            trigger = app.test_cli_runner().invoke(
                args=["checkout", "trigger", "invoice.paid", "--user", "1"]
            )
            if trigger.exit_code != 0:
                raise RuntimeError(trigger.output)
            with app.app_context():
                checkout.spend_credits(1, 12, memo="report export")

            page.goto(base + "/prices")
            page.get_by_label("Credits to buy").fill("25")
            page.get_by_role("button", name="Buy credits").click()
            page.wait_for_url(stripe.url + "/c/pay/**")
            page.get_by_role("button", name="Pay").click()
            page.wait_for_url(base + "/front/checkout/success")

            page.goto(base + "/prices")
            page.add_style_tag(content=HIDE_STUB_HINT)
            page.screenshot(path=str(out / "prices.png"), full_page=True)
            page.goto(base + "/account")
            page.screenshot(path=str(out / "account.png"), full_page=True)
            context.close()
        finally:
            browser.close()


def _local_only(*allowed: str) -> Any:
    def route(route: Any) -> None:
        if route.request.url.startswith(tuple(a + "/" for a in allowed)):
            route.continue_()
        else:
            route.abort()

    return route


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs", help="default: docs/")
    args = parser.parse_args()
    take(args.out)
    print(f"wrote {args.out / 'prices.png'} and {args.out / 'account.png'}")


if __name__ == "__main__":
    main()
