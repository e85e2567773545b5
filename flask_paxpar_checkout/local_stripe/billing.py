"""What happens on the local Stripe after a click: paying a session, the portal's changes
and the test clock, each followed by the events Stripe sends, kept and delivered."""

from __future__ import annotations

import copy
from typing import Any

from ..errors import CheckoutError
from .delivery import Deliverer, Delivery, Transport
from .objects import period_seconds
from .resources import Resources
from .wire import new_id

__all__ = ["Billing", "CardDeclined", "LocalStripeError", "normalize_card"]

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
# Stripe's "attaches, then every charge fails": accepted as a saved card, declined when charged.
FAILING_CARD = "4000000000000341"
LIVE_STATUSES = ("active", "past_due", "trialing")


class LocalStripeError(CheckoutError):
    """A request the local Stripe cannot carry out (unknown object, wrong state, bad card)."""


class CardDeclined(LocalStripeError):
    """The card was declined, as Stripe's test card ``4000 0000 0000 0002`` is."""


def normalize_card(card: str) -> str:
    """The card number's digits; ``LocalStripeError`` unless it passes the Luhn check."""
    digits = "".join(c for c in card if not c.isspace())
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise LocalStripeError("Your card number is incomplete or invalid.")
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    if total % 10:
        raise LocalStripeError("Your card number is invalid.")
    return digits


class Billing(Resources):
    """Payments, portal actions and the test clock on top of the API's objects."""

    def __init__(self, *, deliverer: Deliverer | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.deliverer = deliverer or Deliverer()
        self._transports: dict[str, Transport] = {}
        self._cards: dict[str, str] = {}  # customer id -> the saved card's number

    def route_endpoint(self, endpoint_id: str, transport: Transport) -> None:
        """Deliver an endpoint's events through ``transport`` instead of HTTP (a test client)."""
        with self._lock:
            self._transports[endpoint_id] = transport

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery so far, oldest first."""
        return list(self.deliverer.deliveries)

    def wait_for_deliveries(self, timeout: float = 30.0) -> None:
        """Return once every delivery has succeeded or given up (bounded by ``timeout``)."""
        self.deliverer.wait_idle(timeout)

    # -- paying ----------------------------------------------------------------------------

    def complete_session(
        self, session_id: str, *, payment_status: str = "paid", subscription: str | None = None
    ) -> dict[str, Any]:
        """Mark a session complete as Stripe would after payment, without events; returns it.

        Subscription mode: sets ``subscription`` (made up unless given, and retrievable via
        ``GET /v1/subscriptions/{id}``), a customer if none, and an ``invoice`` id.
        """
        with self._lock:
            session = self._sessions[session_id]
            session["status"] = "complete"
            session["payment_status"] = payment_status
            mode = session["mode"]
            if mode == "subscription" and session.get("customer") is None:
                email = {"email": session.get("customer_email")}
                customer = self.shapes.customer(email, self.now())
                self._customers[customer["id"]] = customer
                session["customer"] = customer["id"]
            session["customer_details"] = self._customer_details(session)
            if mode == "subscription":
                sub_id = subscription or session.get("subscription") or new_id("sub_", 24)
                session["subscription"] = sub_id
                session["invoice"] = session.get("invoice") or new_id("in_", 24)
                if sub_id not in self._subscriptions:
                    self._subscriptions[sub_id] = self._make_subscription(sub_id, session)
            elif mode == "payment":
                session["payment_intent"] = session.get("payment_intent") or new_id("pi_", 24)
            else:
                session["setup_intent"] = session.get("setup_intent") or new_id("seti_", 24)
            return session

    def _customer_details(self, session: dict[str, Any]) -> dict[str, Any]:
        email = session.get("customer_email")
        if email is None and session.get("customer") in self._customers:
            email = self._customers[session["customer"]].get("email")
        return {
            "address": None,
            "email": email,
            "name": None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        }

    def pay(self, session_id: str, *, card: str = GOOD_CARD, wait: bool = True) -> dict[str, Any]:
        """Pay an open session with ``card`` as the hosted page's Pay button does, then send
        the events Stripe sends; with ``wait`` every retry of their deliveries is done before
        this returns. ``CardDeclined`` for a declined card (the session stays open)."""
        digits = normalize_card(card)
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                raise LocalStripeError(f"No such checkout session: {session_id!r}")
            if session["status"] != "open":
                raise LocalStripeError(f"Checkout session {session_id} is {session['status']}")
            if digits in (DECLINED_CARD, FAILING_CARD):
                raise CardDeclined("Your card was declined.")
            self.complete_session(session_id)
            events = [self._event("checkout.session.completed", session)]
            if session["mode"] == "subscription":
                self._cards[session["customer"]] = digits
                events += self._first_invoice(session)
            paid = copy.deepcopy(session)
        self._send(events, wait=wait)
        return paid

    def _first_invoice(self, session: dict[str, Any]) -> list[dict[str, Any]]:
        sub = self._subscriptions[session["subscription"]]
        start, end = self._period(sub)
        invoice = self.shapes.invoice(
            sub,
            created=self.now(),
            start=start,
            end=end,
            paid=True,
            billing_reason="subscription_create",
        )
        invoice["id"] = session["invoice"]
        for line in invoice["lines"]["data"]:
            line["invoice"] = invoice["id"]
        self._invoices[invoice["id"]] = invoice
        sub["latest_invoice"] = invoice["id"]
        return [
            self._event("customer.subscription.created", sub),
            self._event("invoice.paid", invoice),
        ]

    def _make_subscription(self, sub_id: str, session: dict[str, Any]) -> dict[str, Any]:
        start = self.now()
        lines = [
            line
            for line in self._session_lines.get(session["id"], [])
            if line["price"].get("recurring")
        ]
        length = period_seconds(lines[0]["price"].get("recurring")) if lines else 30 * 86400
        items = [
            self.shapes.subscription_item(
                sub_id, line["price"], line["quantity"], start, start + length
            )
            for line in lines
        ]
        sub_data = self._session_params.get(session["id"], {}).get("subscription_data") or {}
        return self.shapes.subscription(
            sub_id,
            session,
            items,
            start=start,
            end=start + length,
            latest_invoice=session.get("invoice"),
            metadata=dict(sub_data.get("metadata") or {}),
        )

    def _period(self, sub: dict[str, Any]) -> tuple[int, int]:
        holder = sub if not self.new_era else (sub["items"]["data"] or [{}])[0]
        start = int(holder.get("current_period_start") or sub.get("start_date") or self.now())
        end = int(holder.get("current_period_end") or start + 30 * 86400)
        return start, end

    # -- events ----------------------------------------------------------------------------

    def _event(self, event_type: str, obj: dict[str, Any], **data: Any) -> dict[str, Any]:
        # Each event in a second of its own (see ``now``): the plugin orders events of one
        # second by their ids, and a person's next click is never the same news.
        created = self.now()
        self._last_event_created = created
        event = self.shapes.event(event_type, obj, created, **data)
        event["pending_webhooks"] = len(self._endpoints_for(event_type))
        self.add_event(event)
        return event

    def _endpoints_for(self, event_type: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self._endpoints
            if e["status"] == "enabled"
            and ("*" in e["enabled_events"] or event_type in e["enabled_events"])
        ]

    def _send(self, events: list[dict[str, Any]], *, wait: bool) -> None:
        """Deliver each event to its endpoints, in order, outside the lock."""
        for event in events:
            with self._lock:
                targets = [
                    (e, self._transports.get(e["id"])) for e in self._endpoints_for(event["type"])
                ]
            for endpoint, transport in targets:
                self.deliverer.send(event, endpoint, transport, wait=wait)
