"""The local Stripe's HTML pages: hosted Checkout, Billing Portal, the dashboard with the test
clock, and the delivery log. Plain HTML rendered from plain data; nothing loads from elsewhere."""

from __future__ import annotations

import html
import time
from collections.abc import Iterable
from typing import Any

from .delivery import Delivery

__all__ = ["BANNER", "checkout_page", "dashboard_page", "deliveries_page", "page", "portal_page"]

BANNER = "Local Stripe: no real payment"
_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;background:#f6f8fa;color:#1a1f36}
.banner{background:#fff3cd;color:#664d03;padding:.5rem 1rem;font-weight:600;text-align:center}
main{max-width:44rem;margin:1.5rem auto;background:#fff;padding:1.5rem 2rem;border-radius:8px;
box-shadow:0 1px 3px #0002}
table{border-collapse:collapse;width:100%}
td,th{padding:.35rem .5rem;border-bottom:1px solid #e3e8ee;text-align:left;vertical-align:top}
.amount{text-align:right}
input{font:inherit;padding:.45rem;border:1px solid #c1c9d2;border-radius:4px;width:16rem}
button{font:inherit;padding:.5rem 1.1rem;border:0;border-radius:4px;background:#635bff;color:#fff;
cursor:pointer}button.secondary{background:#e3e8ee;color:#1a1f36}
.error{color:#b3093c;font-weight:600}.ok{color:#0a7c42}form.inline{display:inline}
nav a{margin-right:1rem}code{font-size:90%}
"""


def esc(value: Any) -> str:
    """``value`` as safe HTML text or attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def money(amount: Any, currency: Any) -> str:
    """``1000, "usd"`` as ``10.00 USD``."""
    if not isinstance(amount, int):
        return "-"
    return f"{amount / 100:.2f} {str(currency or 'usd').upper()}"


def when(timestamp: Any) -> str:
    """A Unix time as UTC text."""
    if not isinstance(timestamp, (int, float)):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def page(title: str, body: str, status: int = 200) -> tuple[int, str]:
    """A whole page: the banner, the local Stripe's navigation, ``body``."""
    nav = '<nav><a href="/">Dashboard</a><a href="/deliveries">Delivery log</a></nav>'
    doc = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{_STYLE}</style></head><body><div class='banner' role='note'>{BANNER}</div>"
        f"<main>{nav}{body}</main></body></html>"
    )
    return status, doc


def checkout_page(
    session: dict[str, Any], lines: list[dict[str, Any]], email: str | None, error: str = ""
) -> tuple[int, str]:
    """The hosted Checkout page: what is bought, by whom, a card field, Pay and Cancel."""
    rows = "".join(
        f"<tr><td>{esc(line['description'])}</td><td>{esc(line['quantity'])}</td>"
        f"<td class='amount'>{money(line['amount_total'], line['currency'])}</td></tr>"
        for line in lines
    )
    total = money(session.get("amount_total"), session.get("currency"))
    mode = "Subscribe" if session["mode"] == "subscription" else "Pay"
    body = (
        f"<h1>Checkout</h1><p>Session <code>{esc(session['id'])}</code> "
        f"({esc(session['mode'])}, <span id='session-status'>{esc(session['status'])}</span>)</p>"
        f"<p>Email <strong id='customer-email'>{esc(email or '-')}</strong></p>"
        f"<table><tr><th>Item</th><th>Qty</th><th class='amount'>Amount</th></tr>{rows}"
        f"<tr><th colspan='2'>Total</th><th class='amount' id='total'>{total}</th></tr></table>"
    )
    if error:
        body += f"<p class='error' role='alert'>{esc(error)}</p>"
    if session["status"] == "open":
        body += (
            "<form method='post'><p><label>Card number <input name='card' "
            "value='4242 4242 4242 4242' autocomplete='off'></label></p>"
            f"<p><button type='submit'>Pay</button> <small>({mode})</small></p></form>"
            "<p><small>Test cards: 4242 4242 4242 4242 pays, 4000 0000 0000 0002 is "
            "declined.</small></p>"
        )
    if session.get("cancel_url"):
        body += f"<p><a href='{esc(session['cancel_url'])}'>Cancel</a></p>"
    return page("Stripe Checkout (local test stub)", body, 402 if error else 200)


def _subscription_rows(
    subs: Iterable[dict[str, Any]], prices: list[str], period_end: Any, action: str
) -> str:
    out = ""
    for sub in subs:
        item = (sub["items"]["data"] or [{}])[0]
        price = (item.get("price") or {}).get("id")
        sid = esc(sub["id"])
        hidden = f"<input type='hidden' name='subscription' value='{sid}'>"
        out += (
            f"<tr><td><code>{sid}</code></td><td class='price'>{esc(price)}</td>"
            f"<td class='status'>{esc(sub['status'])}"
            f"{' (cancels at period end)' if sub.get('cancel_at_period_end') else ''}</td>"
            f"<td>{when(period_end(sub))}</td></tr>"
        )
        if sub["status"] in ("active", "past_due", "trialing"):
            choices = "".join(
                f"<option value='{esc(p)}'>{esc(p)}</option>" for p in prices if p != price
            )
            out += f"<tr><td colspan='4'><form class='inline' method='post' action='{action}'>"
            out += f"{hidden}<button name='do' value='cancel_at_period_end'>"
            out += "Cancel at period end</button> <button name='do' value='cancel_now' "
            out += "class='secondary'>Cancel now</button></form>"
            if choices:
                out += f" <form class='inline' method='post' action='{action}'>{hidden}"
                out += f"<select name='price' aria-label='New plan'>{choices}</select> "
                out += "<button name='do' value='switch'>Switch plan</button></form>"
            out += f"<form method='post' action='{action}'>{hidden}<label>New card "
            out += "<input name='card' value='4000 0000 0000 0341'></label> "
            out += "<button name='do' value='card' class='secondary'>Update card</button>"
            out += "</form></td></tr>"
    return out


def portal_page(
    portal: dict[str, Any],
    subs: list[dict[str, Any]],
    prices: list[str],
    period_end: Any,
    message: str = "",
    error: str = "",
) -> tuple[int, str]:
    """The Billing Portal of one customer: their subscriptions and what can be done to them."""
    action = f"/p/session/{esc(portal['id'])}"
    rows = _subscription_rows(subs, prices, period_end, action)
    body = (
        f"<h1>Billing portal</h1><p>Billing portal session <code>{esc(portal['id'])}</code>, "
        f"customer <code>{esc(portal['customer'])}</code></p>"
    )
    if message:
        body += f"<p class='ok' role='status'>{esc(message)}</p>"
    if error:
        body += f"<p class='error' role='alert'>{esc(error)}</p>"
    body += (
        "<table><tr><th>Subscription</th><th>Plan</th><th>Status</th><th>Period ends</th></tr>"
        f"{rows or '<tr><td colspan=4>No subscription.</td></tr>'}</table>"
    )
    if portal.get("return_url"):
        body += f"<p><a href='{esc(portal['return_url'])}'>Return</a></p>"
    return page("Billing portal (local Stripe)", body, 400 if error else 200)


def dashboard_page(now: int, subs: list[dict[str, Any]], period_end: Any) -> tuple[int, str]:
    """The test clock and the subscriptions it renews."""
    rows = "".join(
        f"<tr><td><code>{esc(s['id'])}</code></td><td>{esc(s['customer'])}</td>"
        f"<td>{esc(s['status'])}</td><td>{when(period_end(s))}</td></tr>"
        for s in subs
    )
    body = (
        f"<h1>Local Stripe</h1><p>Test clock: <strong id='clock'>{when(now)}</strong></p>"
        "<form method='post' action='/clock/advance'><button type='submit'>Advance one "
        "period</button></form><h2>Subscriptions</h2><table><tr><th>Subscription</th>"
        f"<th>Customer</th><th>Status</th><th>Period ends</th></tr>{rows}</table>"
    )
    return page("Local Stripe", body)


def deliveries_page(deliveries: list[Delivery]) -> tuple[int, str]:
    """Each event sent, its attempts and the app's answers, newest first."""
    rows = ""
    for d in reversed(deliveries):
        attempts = "".join(
            f"<li>{when(a.at)}: {esc(a.status if a.status is not None else 'no answer')} "
            f"<code>{esc(a.answer[:200])}</code></li>"
            for a in d.attempts
        )
        rows += (
            f"<tr><td><code>{esc(d.event_id)}</code><br>{esc(d.event_type)}</td>"
            f"<td>{esc(d.url)}</td><td class='state'>{esc(d.state)}</td><td><ol>{attempts}"
            "</ol></td></tr>"
        )
    body = (
        "<h1>Delivery log</h1><table><tr><th>Event</th><th>Endpoint</th><th>State</th>"
        f"<th>Attempts</th></tr>{rows or '<tr><td colspan=4>Nothing sent yet.</td></tr>'}</table>"
    )
    return page("Delivery log (local Stripe)", body)
