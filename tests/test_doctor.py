"""flask checkout doctor: each problem detected and worded with its fix; a clean setup is 0."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.clock import utcnow
from flask_paxpar_checkout.doctor import handled_types
from flask_paxpar_checkout.models import SYNC_STATE
from flask_paxpar_checkout.state import current_state
from flask_paxpar_checkout.testing import EventBuilder, StripeStub

from .conftest import CREDIT_PRICE, FQDN, PRICE_BASIC, PRICE_PRO, WEBHOOK_SECRET, other_app

WEBHOOK_URL = f"https://{FQDN}/api/checkout/webhook"


def doctor(app: Flask, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = app.test_cli_runner().invoke(args=["checkout", "doctor", "--json", *args])
    return result.exit_code, json.loads(result.stdout)["findings"]


def problems(findings: list[dict[str, Any]], level: str = "error") -> list[str]:
    return [f["message"] for f in findings if f["level"] == level]


def healthy(stripe: StripeStub, **endpoint: Any) -> None:
    """A Stripe account set up as the README says."""
    options: dict[str, Any] = {
        "url": WEBHOOK_URL,
        "enabled_events": handled_types(current_state()),
        "api_version": "2026-07-29.dahlia",
        "secret": WEBHOOK_SECRET,
    }
    stripe.add_webhook_endpoint(**{**options, **endpoint})
    stripe.add_price(PRICE_BASIC)
    stripe.add_price(PRICE_PRO)
    stripe.add_price(CREDIT_PRICE, recurring=False)


@pytest.fixture
def strict_prices(stripe: StripeStub, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown prices are missing, as on Stripe (the stub makes them up by default)."""
    monkeypatch.setattr(stripe, "auto_prices", False)


def test_a_clean_setup_answers_zero(app: Flask, stripe: StripeStub, strict_prices: None) -> None:
    healthy(stripe)

    result = app.test_cli_runner().invoke(args=["checkout", "doctor"])

    assert result.exit_code == 0, result.output
    assert "[ok] secret key: the test mode key answers" in result.output
    assert f"sends the handled events to {WEBHOOK_URL}" in result.output
    assert f"[ok] prices: {CREDIT_PRICE} is active and one-time" in result.output
    assert "WARNING" not in result.output and "PROBLEM" not in result.output
    assert result.output.rstrip().endswith("all is well")


def test_an_unset_key_is_a_problem(config: dict[str, Any], app: Flask) -> None:
    with other_app({**config, "STRIPE_SECRET_KEY": None}) as (other, _, _):
        code, findings = doctor(other)
    assert code == 1
    assert problems(findings) == ["STRIPE_SECRET_KEY is not set"]


def test_a_refused_key_is_a_problem(app: Flask, stripe: StripeStub) -> None:
    stripe.fail_next(
        "GET", "/v1/webhook_endpoints", status=401, error_type="authentication_error", times=2
    )
    code, findings = doctor(app)
    assert code == 1
    assert any("refused the API key" in m for m in problems(findings))


def test_prices_of_the_other_mode_than_the_key_are_a_problem(
    app: Flask, stripe: StripeStub, strict_prices: None
) -> None:
    healthy(stripe)
    stripe.add_price(PRICE_BASIC)["livemode"] = True  # as a live key would see it
    code, findings = doctor(app)
    assert code == 1
    assert "the test mode key answers" in [f["message"] for f in findings]
    assert f"{PRICE_BASIC} is a live price, the key a test key" in problems(findings)


def test_no_endpoint_for_this_instance_is_a_problem(app: Flask, stripe: StripeStub) -> None:
    healthy(stripe, url="https://other.example/hooks")
    code, findings = doctor(app)
    assert code == 1
    [missing] = [f for f in findings if f["level"] == "error"]
    assert missing["message"] == f"no enabled endpoint sends events to {WEBHOOK_URL}"
    assert "Add an endpoint" in missing["fix"] and "invoice.paid" in missing["fix"]


def test_a_disabled_endpoint_and_one_at_another_path_are_reported(
    app: Flask, stripe: StripeStub
) -> None:
    healthy(stripe, status="disabled")
    stripe.add_webhook_endpoint(
        url=f"https://{FQDN}/api/stripe/webhook",
        enabled_events=["*"],
        api_version="2026-07-29",
        secret=WEBHOOK_SECRET,
    )
    code, findings = doctor(app)
    assert code == 1
    errors, warnings = problems(findings), problems(findings, "warning")
    assert errors == [f"no enabled endpoint sends events to {WEBHOOK_URL}"]
    assert any(f"for {WEBHOOK_URL} is disabled" in w for w in warnings)
    assert any(f"https://{FQDN}/api/stripe/webhook, another path" in w for w in warnings)
    fixes = [f["fix"] for f in findings if f["level"] == "error"]
    assert fixes == ["Enable it in the Stripe dashboard (Developers > Webhooks)."]


def test_missing_event_types_are_a_problem_and_a_wildcard_is_not(
    app: Flask, stripe: StripeStub
) -> None:
    healthy(stripe, enabled_events=["checkout.session.completed"])
    code, findings = doctor(app)
    assert code == 1
    [missing] = problems(findings)
    assert "does not send" in missing and "invoice.paid" in missing
    assert "checkout.session.completed," not in missing

    stripe.reset()
    healthy(stripe, enabled_events=["*"])
    assert doctor(app)[0] == 0


@pytest.mark.parametrize(
    ("version", "level", "words"),
    [
        ("2023-10-16", "error", "older than any whose payloads the plugin reads"),
        ("2027-03-01.future", "warning", "newer than any the plugin was tested with"),
        (None, "warning", "the account's default API version"),
    ],
)
def test_the_endpoints_api_version(
    app: Flask, stripe: StripeStub, version: str | None, level: str, words: str
) -> None:
    healthy(stripe, api_version=version)
    code, findings = doctor(app)
    assert code == (1 if level == "error" else 0)
    assert any(words in m for m in problems(findings, level))


def test_missing_inactive_and_wrongly_kinded_prices_are_problems(
    app: Flask, stripe: StripeStub, strict_prices: None
) -> None:
    stripe.add_webhook_endpoint(
        url=WEBHOOK_URL, enabled_events=["*"], api_version="2026-07-29", secret=WEBHOOK_SECRET
    )
    stripe.add_price(PRICE_BASIC, active=False)
    stripe.add_price(PRICE_PRO, recurring=False)
    stripe.add_price(CREDIT_PRICE, recurring=True)

    code, findings = doctor(app)

    assert code == 1
    assert problems(findings) == [
        f"{PRICE_BASIC} is archived (inactive): Checkout refuses it",
        f"{PRICE_PRO} is a one-time price, configured as a subscription plan",
        f"{CREDIT_PRICE} is recurring, configured as the credit price",
    ]
    stripe.reset()
    stripe.add_webhook_endpoint(
        url=WEBHOOK_URL, enabled_events=["*"], api_version="2026-07-29", secret=WEBHOOK_SECRET
    )
    code, findings = doctor(app)
    assert f"{PRICE_BASIC} does not exist in this account's test mode" in problems(findings)


def test_a_plan_whose_credits_nobody_knows_is_a_problem(
    app: Flask, stripe: StripeStub, deliver: Callable[..., Any]
) -> None:
    healthy(stripe)
    events = EventBuilder(fqdn=FQDN)
    deliver(events.invoice_paid(user_id="1", subscription_id="sub_1", price_id="price_legacy9"))
    code, findings = doctor(app)
    assert code == 1
    assert problems(findings) == [
        "credits per period of price_legacy9 are unknown (1 live subscription(s)): its invoices "
        "reset no credits"
    ]


def test_missing_tables_are_a_problem(app: Flask, checkout: PaxparCheckout) -> None:
    state = current_state()
    state.database.db.metadata.tables[SYNC_STATE].drop(state.database.db.engine)
    code, findings = doctor(app)
    assert code == 1
    [missing] = findings[:1]
    assert missing["message"] == f"missing table(s): {SYNC_STATE}"
    assert "db.create_all()" in missing["fix"]


def test_failed_events_and_a_long_silence_are_warned_about(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub, deliver: Callable[..., Any]
) -> None:
    healthy(stripe)
    events = EventBuilder(fqdn=FQDN)
    deliver(events.invoice_paid(user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC))

    @checkout.webhook_handler("checkout.session.completed")
    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("host bug")

    assert deliver(events.checkout_session_completed(user_id="2")).status_code == 500
    state = current_state()
    e = state.tables.events
    state.database.session.execute(update(e).values(received_at=utcnow() - timedelta(days=5)))
    state.database.session.commit()

    code, findings = doctor(app)

    assert code == 0  # warnings: worth a look, not a failed check
    warnings = problems(findings, "warning")
    assert "1 event(s) failed, waiting for Stripe's retry" in warnings
    assert any(w.startswith("no event received since ") for w in warnings)
    assert any("1 subscription(s) are live" in w for w in warnings)
    code, findings = doctor(app, "--quiet-after", "7d")
    assert not any("no event received" in w for w in problems(findings, "warning"))
    bad = app.test_cli_runner().invoke(args=["checkout", "doctor", "--quiet-after", "soon"])
    assert bad.exit_code == 2 and "not an age" in bad.output
