"""The doctor's checks on the Stripe side: the webhook endpoint and the prices."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select

from .errors import StripeServiceError
from .events import metadata_credits
from .findings import Finding
from .state import CheckoutState

# The API versions whose payloads the plugin reads: its fixtures' eras, oldest and newest.
OLDEST_READ_VERSION = "2024-04-10"
NEWEST_READ_VERSION = "2026-07-29"
LIVE_STATUSES = ("active", "trialing", "past_due")


def handled_types(state: CheckoutState) -> list[str]:
    """The event types this app handles: what the endpoint must send and sync fetches."""
    return state.pipeline.handled_types()


def check_endpoints(state: CheckoutState, endpoints: list[dict[str, Any]]) -> list[Finding]:
    """An enabled endpoint at this instance's webhook URL, with the handled events, an API
    version whose payloads the plugin reads."""
    config = state.config
    expected = f"{config.public_url}{config.url_prefix}/webhook"
    types = handled_types(state)
    same = [e for e in endpoints if _same_url(e.get("url"), expected)]
    enabled = [e for e in same if e.get("status") == "enabled"]
    findings: list[Finding] = []
    if not enabled:
        fix = (
            "Enable it in the Stripe dashboard (Developers > Webhooks)."
            if same
            else f"Add an endpoint for {expected} in the Stripe dashboard (Developers > "
            f"Webhooks) with the events {', '.join(types)}, and put its signing secret in "
            "STRIPE_WEBHOOK_SECRET."
        )
        findings.append(
            Finding(
                "error", "webhook endpoint", f"no enabled endpoint sends events to {expected}", fix
            )
        )
    for endpoint in enabled:
        findings += _endpoint_findings(endpoint, types)
    for endpoint in same:
        if endpoint.get("status") != "enabled":
            findings.append(
                Finding(
                    "warning",
                    "webhook endpoint",
                    f"endpoint {endpoint['id']} for {expected} is {endpoint.get('status')}",
                    "Enable it, or delete it if another endpoint replaced it.",
                )
            )
    host = urlsplit(expected).netloc.lower()
    for endpoint in endpoints:
        url = str(endpoint.get("url") or "")
        if urlsplit(url).netloc.lower() == host and not _same_url(url, expected):
            findings.append(
                Finding(
                    "warning",
                    "webhook endpoint",
                    f"endpoint {endpoint['id']} points at {url}, another path of this host: its "
                    "events are answered 404",
                    f"Point it at {expected}, or delete it.",
                )
            )
    return findings


def _endpoint_findings(endpoint: dict[str, Any], types: list[str]) -> list[Finding]:
    found: list[Finding] = []
    name = f"endpoint {endpoint['id']}"
    events = set(endpoint.get("enabled_events") or [])
    missing = [t for t in types if t not in events]
    if "*" not in events and missing:
        found.append(
            Finding(
                "error",
                "webhook endpoint",
                f"{name} does not send {', '.join(missing)}",
                "Add these events to the endpoint in the Stripe dashboard, then run `flask "
                "checkout sync` for what it missed.",
            )
        )
    version = _version_finding(name, endpoint.get("api_version"))
    if version is not None:
        found.append(version)
    if not found:
        found.append(
            Finding(
                "ok",
                "webhook endpoint",
                f"{name} sends the handled events to {endpoint.get('url')}",
            )
        )
    return found


def _version_finding(name: str, version: str | None) -> Finding | None:
    """Whether the endpoint's API version is one whose payloads the plugin reads."""
    if version is None:
        return Finding(
            "warning",
            "webhook endpoint",
            f"{name} sends the account's default API version, which this check cannot see",
            f"Pin the endpoint's API version to one from {OLDEST_READ_VERSION} to "
            f"{NEWEST_READ_VERSION}.",
        )
    if version[:10] < OLDEST_READ_VERSION:
        return Finding(
            "error",
            "webhook endpoint",
            f"{name} sends API version {version}, older than any whose payloads the plugin "
            f"reads ({OLDEST_READ_VERSION} on)",
            "Create an endpoint with a newer API version and move STRIPE_WEBHOOK_SECRET to "
            "its secret.",
        )
    if version[:10] > NEWEST_READ_VERSION:
        return Finding(
            "warning",
            "webhook endpoint",
            f"{name} sends API version {version}, newer than any the plugin was tested with "
            f"(up to {NEWEST_READ_VERSION})",
            "Upgrade flask-paxpar-checkout, or pin the endpoint to a version it reads.",
        )
    return None


def _same_url(url: Any, expected: str) -> bool:
    if not isinstance(url, str):
        return False
    a, b = urlsplit(url), urlsplit(expected)
    return (a.scheme.lower(), a.netloc.lower(), a.path.rstrip("/")) == (
        b.scheme.lower(),
        b.netloc.lower(),
        b.path.rstrip("/"),
    )


def check_prices(state: CheckoutState, *, live: bool) -> list[Finding]:
    """Every configured price exists, is active, is of the right kind and mode; every plan's
    credits per period are known."""
    config = state.config
    wanted: list[tuple[str, bool]] = [(p, True) for p in sorted(config.prices or {})]
    if config.credits_enabled and config.credit_price_id:
        wanted.append((config.credit_price_id, False))
    findings: list[Finding] = []
    for price_id, recurring in wanted:
        findings += _price_findings(state, price_id, recurring=recurring, live=live)
    if config.credits_enabled:
        findings += _credits_known(state)
    return findings


def _price_findings(
    state: CheckoutState, price_id: str, *, recurring: bool, live: bool
) -> list[Finding]:
    key = "PAXPAR_CHECKOUT_PRICES" if recurring else "PAXPAR_CHECKOUT_CREDIT_PRICE_ID"
    mode = "live" if live else "test"
    try:
        price = state.gateway.retrieve_price(price_id)
    except StripeServiceError as exc:
        if exc.stripe_code == "resource_missing":
            return [
                Finding(
                    "error",
                    "prices",
                    f"{price_id} does not exist in this account's {mode} mode",
                    f"Use this mode's price ids in {key}: test and live prices differ.",
                )
            ]
        return [Finding("error", "prices", f"{price_id}: {exc.description}", None)]
    found: list[Finding] = []
    if price.get("active") is not True:
        found.append(
            Finding(
                "error",
                "prices",
                f"{price_id} is archived (inactive): Checkout refuses it",
                f"Reactivate it in the Stripe dashboard or replace it in {key}.",
            )
        )
    if bool(price.get("livemode")) != live:
        found.append(
            Finding(
                "error",
                "prices",
                f"{price_id} is a {'live' if price.get('livemode') else 'test'} price, the key a "
                f"{mode} key",
                f"Use {mode} prices in {key}, or the other key.",
            )
        )
    kind = _kind_finding(price_id, price, recurring=recurring)
    if kind is not None:
        found.append(kind)
    if not found:
        found.append(
            Finding(
                "ok",
                "prices",
                f"{price_id} is active and {'recurring' if recurring else 'one-time'}",
            )
        )
    return found


def _kind_finding(price_id: str, price: dict[str, Any], *, recurring: bool) -> Finding | None:
    """Plans must be recurring prices, the credit price a one-time one."""
    is_recurring = isinstance(price.get("recurring"), dict)
    if recurring and not is_recurring:
        return Finding(
            "error",
            "prices",
            f"{price_id} is a one-time price, configured as a subscription plan",
            "Use a recurring price in PAXPAR_CHECKOUT_PRICES.",
        )
    if not recurring and is_recurring:
        return Finding(
            "error",
            "prices",
            f"{price_id} is recurring, configured as the credit price",
            "Use a one-time price in PAXPAR_CHECKOUT_CREDIT_PRICE_ID.",
        )
    return None


def _credits_known(state: CheckoutState) -> list[Finding]:
    """The plans subscribed to here whose credits per period nobody says."""
    s = state.tables.subscriptions
    stmt = (
        select(s.c.price_id, func.count())
        .where(s.c.price_id.is_not(None), s.c.status.in_(LIVE_STATUSES))
        .group_by(s.c.price_id)
    )
    in_use: dict[str, int] = {row[0]: row[1] for row in state.database.session.execute(stmt)}
    prices = state.config.prices
    findings: list[Finding] = []
    if prices is None:
        findings.append(
            Finding(
                "warning",
                "prices",
                "PAXPAR_CHECKOUT_PRICES is not set: any active recurring price may be subscribed "
                "to, its credits read from its metadata",
                "List the plans and their credits per period in PAXPAR_CHECKOUT_PRICES.",
            )
        )
    for price_id, users in sorted(in_use.items()):
        if prices is not None:
            known = price_id in prices
        else:
            with state.database.reading() as tx:
                row = state.prices.get(tx, price_id)
            known = (
                row.credits if row is not None else _fetched_credits(state, price_id)
            ) is not None
        if not known:
            findings.append(
                Finding(
                    "error",
                    "prices",
                    f"credits per period of {price_id} are unknown ({users} live "
                    "subscription(s)): its invoices reset no credits",
                    f"Add {price_id} to PAXPAR_CHECKOUT_PRICES, or set the price's metadata "
                    "'credits'.",
                )
            )
    return findings


def _fetched_credits(state: CheckoutState, price_id: str) -> int | None:
    try:
        return metadata_credits(state.gateway.retrieve_price(price_id))
    except StripeServiceError:
        return None
