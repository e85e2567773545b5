"""``LocalStripe``: the API, the pages and the webhook deliveries on one loopback server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote_plus, urlencode

from .billing import LocalStripeError
from .delivery import DEFAULT_RETRY_DELAYS, Deliverer
from .lifecycle import Lifecycle
from .pages import checkout_page, dashboard_page, deliveries_page, page, portal_page
from .wire import ApiError, RecordedRequest, Reply, json_reply, new_id, unrecognized

__all__ = ["LocalStripe"]


def _html(answer: tuple[int, str]) -> Reply:
    return Reply(answer[0], answer[1].encode(), "text/html; charset=utf-8")


def _see_other(location: str) -> Reply:
    return Reply(303, b"", "text/plain", {"Location": location})


class LocalStripe(Lifecycle):
    """A stateful Stripe on ``http://127.0.0.1:PORT`` (a free port unless given).

    It speaks the API endpoints the plugin calls with objects shaped after ``api_version``'s
    fixtures, serves hosted Checkout and Billing Portal pages, a dashboard with a test clock
    and a delivery log, and sends the events Stripe sends to its webhook endpoints, retrying
    after ``retry_delays`` seconds. Standard library only: it never imports ``stripe``.
    """

    def __init__(
        self,
        *,
        api_version: str = "2026-07-29.dahlia",
        auto_prices: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
        retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS,
        delivery_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            api_version=api_version,
            auto_prices=auto_prices,
            host=host,
            port=port,
            deliverer=Deliverer(retry_delays=retry_delays, timeout=delivery_timeout),
        )

    def stop(self) -> None:
        """Stop serving; pending retries are given up."""
        self.deliverer.stop()
        super().stop()

    def reset(self) -> None:
        """Forget requests, objects, events, endpoints, deliveries, the clock and faults."""
        self._clear_requests_and_faults()
        with self._lock:
            for store in self._stores():
                store.clear()
            self._transports.clear()
            self._cards.clear()
            self.clock_offset = 0
            self._last_event_created = 0
        self.deliverer.restart()

    def _answer(self, rec: RecordedRequest) -> Reply:
        request_id = new_id("req_")
        try:
            if rec.path.startswith("/v1/"):
                with self._lock:
                    reply = self._api(rec, request_id)
            else:
                reply = self._page(rec)
        except ApiError as exc:
            reply = json_reply(exc.status, exc.body)
        reply.headers["Request-Id"] = request_id
        return reply

    def _page(self, rec: RecordedRequest) -> Reply:
        parts = [unquote_plus(p) for p in rec.path.strip("/").split("/")]
        match rec.method, parts:
            case _, ["c", "pay", cs_id]:
                return self._checkout(rec, cs_id)
            case _, ["p", "session", bps_id]:
                return self._portal(rec, bps_id)
            case "GET", [""]:
                with self._lock:
                    subs = list(self._subscriptions.values())
                return _html(dashboard_page(self.now(), subs, self._period_end))
            case "POST", ["clock", "advance"]:
                self.advance_clock(wait=False)
                return _see_other("/")
            case "GET", ["deliveries"]:
                return _html(deliveries_page(self.deliveries))
        if rec.path.startswith("/v1"):
            raise unrecognized(rec)
        return _html(page("Not found", "<p>No such page.</p>", 404))

    def _period_end(self, sub: dict[str, Any]) -> int:
        return self._period(sub)[1]

    def _checkout(self, rec: RecordedRequest, cs_id: str) -> Reply:
        with self._lock:
            session = self._sessions.get(cs_id)
            lines = list(self._session_lines.get(cs_id, []))
            email = None if session is None else self._customer_details(session)["email"]
        if session is None:
            return _html(page("Not found", f"<p>No such checkout session {cs_id!r}</p>", 404))
        if rec.method == "POST" and session["status"] == "open":
            try:
                self.pay(cs_id, card=str(rec.params.get("card") or "4242424242424242"), wait=False)
            except LocalStripeError as exc:  # declined, or not a card number
                return _html(checkout_page(session, lines, email, str(exc)))
        if rec.method == "POST":
            target = str(session.get("success_url") or "")
            return _see_other(target.replace("{CHECKOUT_SESSION_ID}", session["id"]))
        return _html(checkout_page(session, lines, email))

    def _portal(self, rec: RecordedRequest, bps_id: str) -> Reply:
        with self._lock:
            portal = self._portal_sessions.get(bps_id)
        if portal is None:
            return _html(page("Not found", f"<p>No such portal session {bps_id!r}</p>", 404))
        error = ""
        if rec.method == "POST":
            try:
                done = self._portal_action(portal, rec.params)
            except LocalStripeError as exc:
                error = str(exc)
            else:
                return _see_other(f"/p/session/{bps_id}?" + urlencode({"done": done}))
        with self._lock:
            subs = [s for s in self._subscriptions.values() if s["customer"] == portal["customer"]]
            prices = [p["id"] for p in self._prices.values() if p.get("recurring") and p["active"]]
        message = str(rec.params.get("done") or "") if rec.method == "GET" else ""
        return _html(portal_page(portal, subs, prices, self._period_end, message, error))

    def _portal_action(self, portal: dict[str, Any], p: dict[str, Any]) -> str:
        sub_id = str(p.get("subscription") or "")
        with self._lock:
            sub = self._subscriptions.get(sub_id)
        if sub is None or sub["customer"] != portal["customer"]:
            raise LocalStripeError(f"No such subscription of this customer: {sub_id!r}")
        action = p.get("do")
        if action == "cancel_at_period_end":
            self.cancel_at_period_end(sub_id, wait=False)
            return "Your plan will be canceled at the end of the period."
        if action == "cancel_now":
            self.cancel_now(sub_id, wait=False)
            return "Your plan is canceled."
        if action == "switch":
            self.switch_plan(sub_id, str(p.get("price") or ""), wait=False)
            return f"Your plan is now {p.get('price')}."
        if action == "card":
            self.set_card(sub_id, str(p.get("card") or ""))
            return "Your card is updated."
        raise LocalStripeError(f"Unknown action {action!r}")
