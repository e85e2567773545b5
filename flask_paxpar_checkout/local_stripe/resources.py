"""The local Stripe's API: its objects (customers, prices, Checkout and portal sessions,
subscriptions, events, webhook endpoints) and the endpoints that read and create them."""

from __future__ import annotations

import bisect
import copy
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from .listing import list_events, page_of
from .objects import Shapes
from .serving import HttpServer
from .sessions import build_session
from .wire import (
    ApiError,
    RecordedRequest,
    Reply,
    json_reply,
    mask,
    missing,
    new_id,
    no_such,
    unrecognized,
)

__all__ = ["Resources"]


@dataclass
class _Stored:
    path: str
    params: dict[str, Any]
    reply: Reply
    request_id: str


class Resources(HttpServer):
    """The objects and API endpoints, shaped after ``api_version``'s fixtures; with
    ``auto_prices`` unknown price ids are accepted and made up on first use."""

    def __init__(
        self,
        *,
        api_version: str = "2026-07-29.dahlia",
        auto_prices: bool = True,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self.api_version = api_version
        self.auto_prices = auto_prices
        self.shapes = Shapes(api_version)
        self.new_era = self.shapes.new_era
        self.clock_offset = 0
        self._idempotent: dict[str, _Stored] = {}
        self._customers: dict[str, dict[str, Any]] = {}
        self._sessions: dict[str, dict[str, Any]] = {}
        self._session_params: dict[str, dict[str, Any]] = {}
        self._session_lines: dict[str, list[dict[str, Any]]] = {}
        self._prices: dict[str, dict[str, Any]] = {}
        self._products: dict[str, dict[str, Any]] = {}
        self._subscriptions: dict[str, dict[str, Any]] = {}
        self._portal_sessions: dict[str, dict[str, Any]] = {}
        self._invoices: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []  # oldest first
        self._last_event_created = 0
        self._endpoints: list[dict[str, Any]] = []  # oldest first

    def now(self) -> int:
        """The local Stripe's time: the wall clock moved on by every advance of the test clock,
        and never the second of an event already sent (what happens next is later news)."""
        return max(int(time.time()) + self.clock_offset, self._last_event_created + 1)

    def _stores(self) -> list[Any]:
        return [
            self._idempotent,
            self._customers,
            self._sessions,
            self._session_params,
            self._session_lines,
            self._prices,
            self._products,
            self._subscriptions,
            self._portal_sessions,
            self._invoices,
            self._events,
            self._endpoints,
        ]

    # -- inspection ------------------------------------------------------------------------

    def session(self, session_id: str) -> dict[str, Any]:
        """The stored checkout session (the live dict: changes show in later GETs)."""
        with self._lock:
            return self._sessions[session_id]

    def session_params(self, session_id: str) -> dict[str, Any]:
        """The decoded params the checkout session was created with (``line_items``...)."""
        with self._lock:
            return self._session_params[session_id]

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        """A stored subscription (made by paying a session, or put by a test)."""
        with self._lock:
            return self._subscriptions[subscription_id]

    def customer(self, customer_id: str) -> dict[str, Any]:
        """A customer created through the local Stripe."""
        with self._lock:
            return self._customers[customer_id]

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """Every kept event (of one type if given), oldest first."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._events if event_type in (None, e["type"])]

    # -- seeding ---------------------------------------------------------------------------

    def add_price(
        self,
        price_id: str,
        *,
        recurring: bool = True,
        active: bool = True,
        metadata: dict[str, str] | None = None,
        product_metadata: dict[str, str] | None = None,
        unit_amount: int = 1000,
        product_name: str | None = None,
    ) -> dict[str, Any]:
        """Make a price (and its product) known; returns the price (product as an id)."""
        now = self.now()
        product_id = new_id("prod_")
        product = self.shapes.product(
            product_id,
            price_id,
            now,
            metadata=dict(product_metadata or {}),
            name=product_name or f"Product of {price_id}",
        )
        price = self.shapes.price(
            price_id,
            product_id,
            now,
            active=active,
            metadata=dict(metadata or {}),
            recurring=recurring,
            unit_amount=unit_amount,
        )
        with self._lock:
            self._products[product_id] = product
            self._prices[price_id] = price
        return price

    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Keep an event as Stripe's Events API keeps it (listed and retrievable, not sent)."""
        if event.get("object") != "event" or not str(event.get("id", "")).startswith("evt_"):
            raise ValueError("add_event takes a Stripe event: object 'event', an id 'evt_...'")
        if not isinstance(event.get("created"), int) or not isinstance(event.get("type"), str):
            raise ValueError("add_event takes a Stripe event with an int created and a type")
        kept = copy.deepcopy(event)
        with self._lock:
            if any(e["id"] == kept["id"] for e in self._events):
                self._events = [e for e in self._events if e["id"] != kept["id"]]
            bisect.insort_right(self._events, kept, key=lambda e: e["created"])
        return copy.deepcopy(kept)

    def add_webhook_endpoint(
        self,
        *,
        url: str,
        enabled_events: list[str],
        api_version: str | None = None,
        status: str = "enabled",
        secret: str | None = None,
    ) -> dict[str, Any]:
        """A ``webhook_endpoint``: the events the local Stripe sends from now on whose type is
        in ``enabled_events`` (or ``"*"``) are delivered to ``url``, signed with ``secret``."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"a webhook endpoint's url must be http(s), got {url!r}")
        if status not in ("enabled", "disabled") or not enabled_events:
            raise ValueError("status must be 'enabled' or 'disabled'; enabled_events non-empty")
        endpoint: dict[str, Any] = {
            "id": new_id("we_", 24),
            "object": "webhook_endpoint",
            "api_version": api_version,
            "application": None,
            "created": self.now(),
            "description": None,
            "enabled_events": list(enabled_events),
            "livemode": False,
            "metadata": {},
            "secret": secret or new_id("whsec_", 32),
            "status": status,
            "url": url,
        }
        with self._lock:
            self._endpoints.append(endpoint)
        return copy.deepcopy(endpoint)

    def put_subscription(self, subscription: dict[str, Any]) -> None:
        """Store or replace a subscription object (``GET /v1/subscriptions/{id}`` serves it)."""
        if subscription.get("object") != "subscription" or not subscription.get("id"):
            raise ValueError("put_subscription takes a Stripe subscription with an id")
        with self._lock:
            self._subscriptions[str(subscription["id"])] = copy.deepcopy(subscription)

    # -- API -------------------------------------------------------------------------------

    def _api(self, rec: RecordedRequest, request_id: str) -> Reply:
        self._authenticate(rec)
        key = rec.idempotency_key if rec.method == "POST" else None
        if key is not None and key in self._idempotent:
            return self._replay(rec, key, self._idempotent[key])
        headers = {"Stripe-Version": rec.headers.get("stripe-version", self.api_version)}
        reply = json_reply(200, self._route(rec), headers)
        if key is not None:
            stored = Reply(200, reply.body, reply.content_type, dict(headers))
            self._idempotent[key] = _Stored(rec.path, rec.params, stored, request_id)
        return reply

    @staticmethod
    def _authenticate(rec: RecordedRequest) -> None:
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise ApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
                error_type="authentication_error",
            )
        api_key = auth[7:].strip()
        if not api_key.startswith(("sk_test_", "rk_test_")):
            raise ApiError(
                401,
                f"Invalid API Key provided: {mask(api_key)}",
                error_type="authentication_error",
                code="api_key_invalid",
            )

    @staticmethod
    def _replay(rec: RecordedRequest, key: str, stored: _Stored) -> Reply:
        if stored.path != rec.path:
            raise ApiError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{rec.path}' vs '{stored.path}'). Try using a key other than "
                f"'{key}' if you meant to execute a different request.",
                error_type="idempotency_error",
            )
        if stored.params != rec.params:
            raise ApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                error_type="idempotency_error",
            )
        headers = dict(stored.reply.headers)
        headers.update({"Idempotent-Replayed": "true", "Original-Request": stored.request_id})
        return Reply(stored.reply.status, stored.reply.body, stored.reply.content_type, headers)

    def _route(self, rec: RecordedRequest) -> dict[str, Any]:
        parts = [unquote_plus(p) for p in rec.path.strip("/").split("/")]
        p = rec.params
        match rec.method, parts:
            case "POST", ["v1", "customers"]:
                customer = self.shapes.customer(p, self.now())
                self._customers[customer["id"]] = customer
                return customer
            case "GET", ["v1", "customers", cus_id]:
                return self._get(self._customers, "customer", cus_id)
            case "POST", ["v1", "checkout", "sessions"]:
                return self._create_session(p)
            case "GET", ["v1", "checkout", "sessions", cs_id]:
                return self._get_session(cs_id, p)
            case "GET", ["v1", "checkout", "sessions", cs_id, "line_items"]:
                self._get_session(cs_id, {})
                return self._line_items_list(cs_id)
            case "GET", ["v1", "prices", price_id]:
                return self._get_price(price_id, p)
            case "GET", ["v1", "subscriptions", sub_id]:
                return self._get(self._subscriptions, "subscription", sub_id)
            case "GET", ["v1", "invoices", in_id]:
                return self._get(self._invoices, "invoice", in_id)
            case "POST", ["v1", "billing_portal", "sessions"]:
                return self._create_portal_session(p)
            case "GET", ["v1", "events"]:
                return list_events(self._events, p)
            case "GET", ["v1", "events", evt_id]:
                found = {e["id"]: e for e in self._events}
                return self._get(found, "event", evt_id)
            case "GET", ["v1", "webhook_endpoints"]:
                listed = [{k: v for k, v in e.items() if k != "secret"} for e in self._endpoints]
                return page_of(listed[::-1], p, "/v1/webhook_endpoints")
        raise unrecognized(rec)

    @staticmethod
    def _get(store: dict[str, dict[str, Any]], kind: str, obj_id: str) -> dict[str, Any]:
        if obj_id not in store:
            raise no_such(kind, obj_id)
        return store[obj_id]

    def _price_for(self, price_id: str, recurring: bool, param: str) -> tuple[dict[str, Any], str]:
        price = self._prices.get(price_id)
        if price is None:
            if not self.auto_prices:
                raise no_such("price", price_id, param=param, status=400)
            price = self.add_price(price_id, recurring=recurring)
        return price, str(self._products[price["product"]]["name"])

    def _get_price(self, price_id: str, p: dict[str, Any]) -> dict[str, Any]:
        if price_id not in self._prices and not self.auto_prices:
            raise no_such("price", price_id)
        price = copy.deepcopy(self._price_for(price_id, True, "id")[0])
        if "product" in (p.get("expand") or []):
            price["product"] = self._products[price["product"]]
        return price

    def _create_session(self, p: dict[str, Any]) -> dict[str, Any]:
        session, lines = build_session(self.shapes, p, self._price_for, self.url, self.now())
        self._sessions[session["id"]] = session
        self._session_params[session["id"]] = p
        self._session_lines[session["id"]] = lines
        return session

    def _line_items_list(self, cs_id: str) -> dict[str, Any]:
        return {
            "object": "list",
            "data": copy.deepcopy(self._session_lines.get(cs_id, [])),
            "has_more": False,
            "url": f"/v1/checkout/sessions/{cs_id}/line_items",
        }

    def _get_session(self, cs_id: str, p: dict[str, Any]) -> dict[str, Any]:
        session = self._get(self._sessions, "checkout.session", cs_id)
        if "line_items" not in (p.get("expand") or []):
            return session
        return {**session, "line_items": self._line_items_list(cs_id)}

    def _create_portal_session(self, p: dict[str, Any]) -> dict[str, Any]:
        customer = p.get("customer")
        if not customer:
            raise missing("customer")
        if not str(customer).startswith("cus_"):
            raise no_such("customer", str(customer), param="customer", status=400)
        bps_id = new_id("bps_", 24)
        portal = self.shapes.template("billing_portal.session")
        portal.update(
            id=bps_id,
            configuration=p.get("configuration") or new_id("bpc_", 24),
            created=self.now(),
            customer=customer,
            flow=None,
            livemode=False,
            locale=p.get("locale"),
            on_behalf_of=None,
            return_url=p.get("return_url"),
            url=f"{self.url}/p/session/{bps_id}",
        )
        self._portal_sessions[bps_id] = portal
        return portal
