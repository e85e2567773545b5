"""A local stand-in for the few Stripe API endpoints the plugin calls, for tests.

Point the real ``stripe`` library at it::

    with StripeStub() as stub:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": stub.url})

Objects are shaped after Stripe's own fixtures shipped in ``flask_paxpar_checkout/fixtures``.
Standard library only; this module must not import ``stripe``.
"""

from __future__ import annotations

import copy
import html
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

__all__ = ["RecordedRequest", "StripeStub", "decode_form"]

_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
_NEW_ERA_FIXTURE = "stripe-2026-07-29.dahlia.json"
_OLD_ERA_FIXTURE = "stripe-2024-04-10.json"
_BASIL = "2025-03-31"  # first API version where invoices name their subscription in `parent`
_ALPHABET = string.ascii_letters + string.digits
_KEY_RE = re.compile(r"\[([^\]]*)\]")
_SESSION_MODES = ("payment", "setup", "subscription")
_DAY = 86400


def _new_id(prefix: str, length: int = 14) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def decode_form(raw: str) -> dict[str, Any]:
    """Decode Stripe's bracketed form encoding into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        head, _, rest = key.partition("[")
        segments = [head, *_KEY_RE.findall("[" + rest)] if rest else [head]
        node = root
        for seg in segments[:-1]:
            seg = seg or str(len(node))  # `a[]` appends
            child = node.get(seg)
            if not isinstance(child, dict):
                child = node[seg] = {}
            node = child
        node[segments[-1] or str(len(node))] = value
    return {k: _listify(v, k) if isinstance(v, dict) else v for k, v in root.items()}


def _listify(node: dict[str, Any], name: str) -> Any:
    out = {k: _listify(v, k) if isinstance(v, dict) else v for k, v in node.items()}
    if name != "metadata" and out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stub received."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    raw: str = ""

    @property
    def idempotency_key(self) -> str | None:
        """The ``Idempotency-Key`` header, if sent."""
        return self.headers.get("idempotency-key")


@dataclass
class _Fault:
    kind: str  # "fail" | "delay" | "drop"
    method: str
    path_prefix: str
    remaining: int
    status: int = 500
    error: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    should_retry: bool | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and method == self.method and path.startswith(self.path_prefix)


@dataclass
class _Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Stored:
    path: str
    params: dict[str, Any]
    reply: _Reply
    request_id: str


class _ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = _error_body(error_type, message, code, param)


def _error_body(
    error_type: str, message: str, code: str | None, param: str | None
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type, "message": message}
    if code is not None:
        error["code"] = code
    if param is not None:
        error["param"] = param
    return {"error": error}


def _json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, json.dumps(body).encode(), headers=dict(headers or {}))


def _missing(param: str) -> _ApiError:
    return _ApiError(
        400, f"Missing required param: {param}.", code="parameter_missing", param=param
    )


def _no_such(kind: str, obj_id: str, param: str | None = None, status: int = 404) -> _ApiError:
    return _ApiError(status, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


def _mask(api_key: str) -> str:
    if len(api_key) <= 12:
        return api_key
    return api_key[:8] + "*" * (len(api_key) - 12) + api_key[-4:]


def _unrecognized(rec: RecordedRequest) -> _ApiError:
    return _ApiError(
        404,
        f"Unrecognized request URL ({rec.method}: {rec.path}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/.",
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: StripeStub

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients that time out or hang up are expected in tests."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        stub = self.server.stub
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length > 0 else ""
        raw = body if self.command == "POST" else split.query
        rec = RecordedRequest(
            method=self.command,
            path=split.path,
            params=decode_form(raw),
            headers={k.lower(): v for k, v in self.headers.items()},
            raw=raw,
        )
        fault = stub._arrive(rec)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            return
        if fault is not None and fault.kind == "delay" and stub._stopping.wait(fault.seconds):
            self.close_connection = True
            return
        reply = stub._fault_reply(fault) if fault is not None and fault.kind == "fail" else None
        if reply is None:
            reply = stub._answer(rec)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True


class StripeStub:
    """Local Stripe API server (127.0.0.1, random port) for end-to-end tests.

    ``api_version`` picks the shape of the objects (the fixture file of that era);
    with ``auto_prices`` unknown price ids are accepted and made up on first use.
    """

    def __init__(self, *, api_version: str = "2026-07-29.dahlia", auto_prices: bool = True) -> None:
        self.api_version = api_version
        self.auto_prices = auto_prices
        new_era = api_version[:10] >= _BASIL
        self.new_era = new_era
        fixture = _FIXTURES / (_NEW_ERA_FIXTURE if new_era else _OLD_ERA_FIXTURE)
        self._templates: dict[str, dict[str, Any]] = json.loads(fixture.read_text("utf-8"))[
            "resources"
        ]
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url = ""
        self._faults: list[_Fault] = []
        self._idempotent: dict[str, _Stored] = {}
        self._customers: dict[str, dict[str, Any]] = {}
        self._sessions: dict[str, dict[str, Any]] = {}
        self._session_params: dict[str, dict[str, Any]] = {}
        self._session_lines: dict[str, list[dict[str, Any]]] = {}
        self._prices: dict[str, dict[str, Any]] = {}
        self._products: dict[str, dict[str, Any]] = {}
        self._subscriptions: dict[str, dict[str, Any]] = {}
        self._portal_sessions: dict[str, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._webhook_endpoints: dict[str, dict[str, Any]] = {}

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base address, e.g. ``http://127.0.0.1:PORT``; valid after :meth:`start`."""
        if not self._url:
            raise RuntimeError("StripeStub is not started")
        return self._url

    def start(self) -> StripeStub:
        """Bind and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.stub = self
        self._server = server
        self._url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(5)
        self._server = self._thread = None
        self._url = ""

    def __enter__(self) -> StripeStub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget requests, objects, idempotency keys and pending faults."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            for store in (
                self._idempotent,
                self._customers,
                self._sessions,
                self._session_params,
                self._session_lines,
                self._prices,
                self._products,
                self._subscriptions,
                self._portal_sessions,
                self._webhook_endpoints,
            ):
                store.clear()
            self._events.clear()

    # -- inspection ------------------------------------------------------------------------

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        """Recorded requests with this method whose path starts with ``path_prefix``."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == method.upper() and r.path.startswith(path_prefix)
            ]

    def session(self, session_id: str) -> dict[str, Any]:
        """The stored checkout session (the live dict: changes show in later GETs)."""
        with self._lock:
            return self._sessions[session_id]

    def session_params(self, session_id: str) -> dict[str, Any]:
        """The decoded params the checkout session was created with (``line_items``...)."""
        with self._lock:
            return self._session_params[session_id]

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        """A subscription made by :meth:`complete_session`."""
        with self._lock:
            return self._subscriptions[subscription_id]

    def customer(self, customer_id: str) -> dict[str, Any]:
        """A customer created through the stub."""
        with self._lock:
            return self._customers[customer_id]

    # -- setup -----------------------------------------------------------------------------

    def add_price(
        self,
        price_id: str,
        *,
        recurring: bool = True,
        active: bool = True,
        metadata: dict[str, str] | None = None,
        product_metadata: dict[str, str] | None = None,
        unit_amount: int = 1000,
    ) -> dict[str, Any]:
        """Make a price (and its product) known; returns the price (product as an id)."""
        now = int(time.time())
        product = copy.deepcopy(self._templates["product"])
        product_id = _new_id("prod_")
        product.update(
            id=product_id,
            created=now,
            updated=now,
            default_price=price_id,
            description=None,
            images=[],
            livemode=False,
            metadata=dict(product_metadata or {}),
            name=f"Product of {price_id}",
            package_dimensions=None,
        )
        price = copy.deepcopy(self._templates["price"])
        interval = copy.deepcopy(price.get("recurring")) or {
            "interval": "month",
            "interval_count": 1,
            "usage_type": "licensed",
        }
        price.update(
            id=price_id,
            active=active,
            created=now,
            currency="usd",
            custom_unit_amount=None,
            livemode=False,
            lookup_key=None,
            metadata=dict(metadata or {}),
            nickname=None,
            product=product_id,
            recurring=interval if recurring else None,
            tax_behavior="unspecified",
            transform_quantity=None,
            type="recurring" if recurring else "one_time",
            unit_amount=unit_amount,
            unit_amount_decimal=str(unit_amount),
        )
        with self._lock:
            self._products[product_id] = product
            self._prices[price_id] = price
        return price

    def complete_session(
        self, session_id: str, *, payment_status: str = "paid", subscription: str | None = None
    ) -> dict[str, Any]:
        """Mark a session complete as Stripe would after payment; returns the stored session.

        Subscription mode: sets ``subscription`` (made up unless given, and retrievable via
        ``GET /v1/subscriptions/{id}``), a customer if none, and an ``invoice`` id.
        """
        with self._lock:
            session = self._sessions[session_id]
            session["status"] = "complete"
            session["payment_status"] = payment_status
            mode = session["mode"]
            if mode == "subscription" and session.get("customer") is None:
                customer = self._make_customer({"email": session.get("customer_email")})
                session["customer"] = customer["id"]
            email = session.get("customer_email")
            if email is None and session.get("customer") in self._customers:
                email = self._customers[session["customer"]].get("email")
            session["customer_details"] = {
                "address": None,
                "email": email,
                "name": None,
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            }
            if mode == "subscription":
                sub_id = subscription or session.get("subscription") or _new_id("sub_", 24)
                session["subscription"] = sub_id
                session["invoice"] = session.get("invoice") or _new_id("in_", 24)
                if sub_id not in self._subscriptions:
                    self._subscriptions[sub_id] = self._make_subscription(sub_id, session)
            elif mode == "payment":
                session["payment_intent"] = session.get("payment_intent") or _new_id("pi_", 24)
            else:
                session["setup_intent"] = session.get("setup_intent") or _new_id("seti_", 24)
            return session

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        *,
        status: int = 500,
        times: int = 1,
        error_type: str = "api_error",
        message: str = "Injected failure",
        code: str | None = None,
        param: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with a Stripe-shaped error.

        ``Stripe-Should-Retry: true`` is sent on 409, 429 and 5xx unless ``should_retry``
        says otherwise; the answer is never stored under the idempotency key.
        """
        error = _error_body(error_type, message, code, param)
        self._add_fault(
            _Fault("fail", method.upper(), path_prefix, times, status, error, 0.0, should_retry)
        )

    def delay_next(self, method: str, path_prefix: str, *, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` matching requests for ``seconds``, then answer normally."""
        self._add_fault(_Fault("delay", method.upper(), path_prefix, times, seconds=seconds))

    def drop_next(self, method: str, path_prefix: str, *, times: int = 1) -> None:
        """Close the connection of the next ``times`` matching requests without answering."""
        self._add_fault(_Fault("drop", method.upper(), path_prefix, times))

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    # -- request handling (called from the server threads) ---------------------------------

    def _arrive(self, rec: RecordedRequest) -> _Fault | None:
        with self._lock:
            self.requests.append(rec)
            for fault in self._faults:
                if fault.matches(rec.method, rec.path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _fault_reply(self, fault: _Fault) -> _Reply:
        headers = {"Request-Id": _new_id("req_")}
        retry = fault.should_retry
        if retry is None and (fault.status in (409, 429) or fault.status >= 500):
            retry = True
        if retry is not None:
            headers["Stripe-Should-Retry"] = "true" if retry else "false"
        return _json_reply(fault.status, fault.error, headers)

    def _answer(self, rec: RecordedRequest) -> _Reply:
        request_id = _new_id("req_")
        with self._lock:
            try:
                if rec.path.startswith(("/c/pay/", "/p/session/")):
                    reply = self._page(rec)
                elif rec.path.startswith("/v1/"):
                    reply = self._api(rec, request_id)
                else:
                    raise _unrecognized(rec)
            except _ApiError as exc:
                reply = _json_reply(exc.status, exc.body)
        reply.headers["Request-Id"] = request_id
        return reply

    def _api(self, rec: RecordedRequest, request_id: str) -> _Reply:
        self._authenticate(rec)
        key = rec.idempotency_key if rec.method == "POST" else None
        if key is not None and key in self._idempotent:
            return self._replay(rec, key, self._idempotent[key])
        headers = {"Stripe-Version": rec.headers.get("stripe-version", self.api_version)}
        reply = _json_reply(200, self._route(rec), headers)
        if key is not None:
            stored = _json_reply(200, None, headers)
            stored.body = reply.body
            self._idempotent[key] = _Stored(rec.path, rec.params, stored, request_id)
        return reply

    @staticmethod
    def _authenticate(rec: RecordedRequest) -> None:
        auth = rec.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise _ApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
                error_type="authentication_error",
            )
        api_key = auth[7:].strip()
        if not api_key.startswith(("sk_", "rk_")):
            raise _ApiError(
                401,
                f"Invalid API Key provided: {_mask(api_key)}",
                error_type="authentication_error",
                code="api_key_invalid",
            )

    @staticmethod
    def _replay(rec: RecordedRequest, key: str, stored: _Stored) -> _Reply:
        if stored.path != rec.path:
            raise _ApiError(
                400,
                "Keys for idempotent requests can only be used for the same endpoint they were "
                f"first used for ('{rec.path}' vs '{stored.path}'). Try using a key other than "
                f"'{key}' if you meant to execute a different request.",
                error_type="idempotency_error",
            )
        if stored.params != rec.params:
            raise _ApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                error_type="idempotency_error",
            )
        headers = dict(stored.reply.headers)
        headers.update({"Idempotent-Replayed": "true", "Original-Request": stored.request_id})
        return _Reply(stored.reply.status, stored.reply.body, stored.reply.content_type, headers)

    def _route(self, rec: RecordedRequest) -> dict[str, Any]:
        parts = [unquote_plus(p) for p in rec.path.strip("/").split("/")]
        p = rec.params
        listed = self._route_listings(rec.method, parts, p)
        if listed is not None:
            return listed
        match rec.method, parts:
            case "POST", ["v1", "customers"]:
                return self._make_customer(p)
            case "GET", ["v1", "customers", cus_id] if cus_id in self._customers:
                return self._customers[cus_id]
            case "GET", ["v1", "customers", cus_id]:
                raise _no_such("customer", cus_id)
            case "POST", ["v1", "checkout", "sessions"]:
                return self._create_session(p)
            case "GET", ["v1", "checkout", "sessions", cs_id]:
                return self._get_session(cs_id, p)
            case "GET", ["v1", "checkout", "sessions", cs_id, "line_items"]:
                self._get_session(cs_id, {})
                return self._line_items_list(cs_id)
            case "GET", ["v1", "prices", price_id]:
                return self._get_price(price_id, p)
            case "GET", ["v1", "subscriptions", sub_id] if sub_id in self._subscriptions:
                return self._subscriptions[sub_id]
            case "GET", ["v1", "subscriptions", sub_id]:
                raise _no_such("subscription", sub_id)
            case "POST", ["v1", "billing_portal", "sessions"]:
                return self._create_portal_session(p)
        raise _unrecognized(rec)

    # -- objects ---------------------------------------------------------------------------

    def _make_customer(self, p: dict[str, Any]) -> dict[str, Any]:
        customer = copy.deepcopy(self._templates["customer"])
        customer.update(
            id=_new_id("cus_"),
            created=int(time.time()),
            description=p.get("description"),
            discount=None,
            email=p.get("email"),
            livemode=False,
            metadata=dict(p.get("metadata") or {}),
            name=p.get("name"),
            phone=p.get("phone"),
            shipping=None,
        )
        self._customers[customer["id"]] = customer
        return customer

    def _price_for(self, price_id: str, *, recurring: bool, param: str) -> dict[str, Any]:
        price = self._prices.get(price_id)
        if price is None:
            if not self.auto_prices:
                raise _no_such("price", price_id, param=param, status=400)
            price = self.add_price(price_id, recurring=recurring)
        return price

    def _get_price(self, price_id: str, p: dict[str, Any]) -> dict[str, Any]:
        if price_id not in self._prices and not self.auto_prices:
            raise _no_such("price", price_id)
        price = copy.deepcopy(self._price_for(price_id, recurring=True, param="id"))
        if "product" in (p.get("expand") or []):
            price["product"] = self._products[price["product"]]
        return price

    def _create_session(self, p: dict[str, Any]) -> dict[str, Any]:
        mode = p.get("mode")
        if not mode:
            raise _missing("mode")
        if mode not in _SESSION_MODES:
            raise _ApiError(
                400,
                f"Invalid mode: must be one of {', '.join(_SESSION_MODES)}",
                code="parameter_invalid_string",
                param="mode",
            )
        if p.get("ui_mode", "hosted") == "hosted" and not p.get("success_url"):
            raise _missing("success_url")
        if p.get("customer") and p.get("customer_email"):
            raise _ApiError(
                400,
                "You may only specify one of these parameters: customer, customer_email.",
                param="customer_email",
            )
        if mode == "subscription" and "payment_intent_data" in p:
            raise _ApiError(
                400,
                "You can not pass `payment_intent_data` in `subscription` mode.",
                param="payment_intent_data",
            )
        if mode == "payment" and "subscription_data" in p:
            raise _ApiError(
                400,
                "You can not pass `subscription_data` in `payment` mode.",
                param="subscription_data",
            )
        items = p.get("line_items")
        if mode != "setup" and not items:
            raise _missing("line_items")
        lines = self._session_line_items(mode, items if isinstance(items, list) else [])

        now = int(time.time())
        cs_id = _new_id("cs_test_a1", 56)
        session = copy.deepcopy(self._templates["checkout.session"])
        total = sum(line["amount_total"] for line in lines) if lines else None
        session.update(
            id=cs_id,
            object="checkout.session",
            after_expiration=None,
            amount_subtotal=total,
            amount_total=total,
            cancel_url=p.get("cancel_url"),
            client_reference_id=p.get("client_reference_id"),
            created=now,
            currency=lines[0]["currency"] if lines else None,
            currency_conversion=None,
            customer=p.get("customer"),
            customer_details=None,
            customer_email=p.get("customer_email"),
            expires_at=now + _DAY,
            invoice=None,
            livemode=False,
            locale=p.get("locale"),
            metadata=dict(p.get("metadata") or {}),
            mode=mode,
            payment_intent=None,
            payment_status="no_payment_required" if mode == "setup" else "unpaid",
            setup_intent=None,
            shipping_address_collection=None,
            shipping_cost=None,
            status="open",
            subscription=None,
            success_url=p.get("success_url"),
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            ui_mode=p.get("ui_mode", "hosted"),
            url=f"{self.url}/c/pay/{cs_id}",
        )
        self._sessions[cs_id] = session
        self._session_params[cs_id] = p
        self._session_lines[cs_id] = lines
        return session

    def _session_line_items(self, mode: str, items: list[Any]) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        has_recurring = False
        for i, item in enumerate(items):
            item = item if isinstance(item, dict) else {}
            param = f"line_items[{i}][price]"
            raw_qty = item.get("quantity", "1")
            try:
                quantity = int(raw_qty)
            except (TypeError, ValueError):
                raise _ApiError(
                    400,
                    f"Invalid integer: {raw_qty}",
                    code="parameter_invalid_integer",
                    param=f"line_items[{i}][quantity]",
                ) from None
            if "price" in item:
                price = self._price_for(item["price"], recurring=mode != "payment", param=param)
                if not price["active"]:
                    raise _ApiError(
                        400,
                        "The price specified is inactive. This field only accepts active prices.",
                        param=param,
                    )
                price = copy.deepcopy(price)
                unit_amount = int(price["unit_amount"])
                description = self._products[price["product"]]["name"]
            elif isinstance(item.get("price_data"), dict):
                data = item["price_data"]
                unit_amount = int(data.get("unit_amount") or 0)
                price = {"id": _new_id("price_"), "object": "price", "unit_amount": unit_amount}
                price["currency"] = data.get("currency", "usd")
                price["recurring"] = data.get("recurring")
                price["type"] = "recurring" if data.get("recurring") else "one_time"
                description = str((data.get("product_data") or {}).get("name", ""))
            else:
                raise _missing(param)
            if price.get("recurring") and mode == "payment":
                raise _ApiError(
                    400,
                    "You specified `payment` mode but passed a recurring price. Either switch "
                    "to `subscription` mode or use only one-time prices.",
                    param=param,
                )
            has_recurring = has_recurring or bool(price.get("recurring"))
            lines.append(
                {
                    "id": _new_id("li_", 24),
                    "object": "item",
                    "amount_discount": 0,
                    "amount_subtotal": unit_amount * quantity,
                    "amount_tax": 0,
                    "amount_total": unit_amount * quantity,
                    "currency": price.get("currency", "usd"),
                    "description": description,
                    "price": price,
                    "quantity": quantity,
                }
            )
        if mode == "subscription" and not has_recurring:
            raise _ApiError(
                400,
                "You must provide at least one recurring price in `subscription` mode when "
                "using prices.",
                param="line_items",
            )
        return lines

    def _line_items_list(self, cs_id: str) -> dict[str, Any]:
        return {
            "object": "list",
            "data": copy.deepcopy(self._session_lines.get(cs_id, [])),
            "has_more": False,
            "url": f"/v1/checkout/sessions/{cs_id}/line_items",
        }

    def _get_session(self, cs_id: str, p: dict[str, Any]) -> dict[str, Any]:
        session = self._sessions.get(cs_id)
        if session is None:
            raise _no_such("checkout.session", cs_id)
        expand = p.get("expand") or []
        if "line_items" not in expand:
            return session
        return {**session, "line_items": self._line_items_list(cs_id)}

    def _make_subscription(self, sub_id: str, session: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        start, end = now, now + 30 * _DAY
        sub = copy.deepcopy(self._templates["subscription"])
        template_item = sub["items"]["data"][0]
        items = []
        for line in self._session_lines.get(session["id"], []):
            price = line["price"]
            if not price.get("recurring"):
                continue
            item = copy.deepcopy(template_item)
            item.update(
                id=_new_id("si_"),
                billing_thresholds=None,
                created=now,
                discounts=[],
                metadata={},
                plan=_plan_of(price),
                price=copy.deepcopy(price),
                quantity=line["quantity"],
                subscription=sub_id,
                tax_rates=[],
            )
            if self.new_era:
                item.update(current_period_start=start, current_period_end=end)
            items.append(item)
        sub_data = self._session_params.get(session["id"], {}).get("subscription_data") or {}
        sub.update(
            id=sub_id,
            application=None,
            billing_cycle_anchor=start,
            billing_cycle_anchor_config=None,
            cancel_at=None,
            cancel_at_period_end=False,
            canceled_at=None,
            created=now,
            currency=session.get("currency") or "usd",
            customer=session["customer"],
            discounts=[],
            ended_at=None,
            latest_invoice=session.get("invoice"),
            livemode=False,
            metadata=dict(sub_data.get("metadata") or {}),
            next_pending_invoice_item_invoice=None,
            pause_collection=None,
            pending_invoice_item_interval=None,
            pending_update=None,
            schedule=None,
            start_date=start,
            status="active",
            transfer_data=None,
            trial_end=None,
            trial_start=None,
        )
        sub["items"] = {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        }
        if not self.new_era:
            sub.update(current_period_start=start, current_period_end=end)
        return sub

    def _create_portal_session(self, p: dict[str, Any]) -> dict[str, Any]:
        customer = p.get("customer")
        if not customer:
            raise _missing("customer")
        if not str(customer).startswith("cus_"):
            raise _no_such("customer", str(customer), param="customer", status=400)
        bps_id = _new_id("bps_", 24)
        portal = copy.deepcopy(self._templates["billing_portal.session"])
        portal.update(
            id=bps_id,
            configuration=p.get("configuration") or _new_id("bpc_", 24),
            created=int(time.time()),
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

    # -- events, webhook endpoints, stored subscriptions (sync and doctor) -----------------

    def add_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Keep an event object, listed by ``GET /v1/events``; returns the kept copy."""
        kept = copy.deepcopy(event)
        with self._lock:
            self._events = [e for e in self._events if e["id"] != kept["id"]]
            self._events.append(kept)
        return kept

    def add_webhook_endpoint(
        self,
        *,
        url: str,
        enabled_events: list[str],
        api_version: str | None = None,
        status: str = "enabled",
        secret: str | None = None,
    ) -> dict[str, Any]:
        """Make a webhook endpoint known, listed by ``GET /v1/webhook_endpoints``."""
        endpoint: dict[str, Any] = {
            "id": _new_id("we_", 24),
            "object": "webhook_endpoint",
            "api_version": api_version,
            "application": None,
            "created": int(time.time()),
            "description": None,
            "enabled_events": list(enabled_events),
            "livemode": False,
            "metadata": {},
            "status": status,
            "url": url,
        }
        if secret is not None:  # Stripe shows the secret only to its creator
            endpoint["secret"] = secret
        with self._lock:
            self._webhook_endpoints[endpoint["id"]] = endpoint
        return copy.deepcopy(endpoint)

    def put_subscription(self, subscription: dict[str, Any]) -> None:
        """Store or replace a subscription object (``GET /v1/subscriptions/{id}``)."""
        with self._lock:
            self._subscriptions[subscription["id"]] = copy.deepcopy(subscription)

    def _route_listings(
        self, method: str, parts: list[str], p: dict[str, Any]
    ) -> dict[str, Any] | None:
        if method != "GET":
            return None
        match parts:
            case ["v1", "events"]:
                return self._list_events(p)
            case ["v1", "events", event_id]:
                for event in self._events:
                    if event["id"] == event_id:
                        return event
                raise _no_such("event", event_id)
            case ["v1", "webhook_endpoints"]:
                endpoints = sorted(
                    self._webhook_endpoints.values(), key=lambda e: -int(e["created"])
                )
                return _list_page(endpoints, p, "/v1/webhook_endpoints")
        return None

    def _list_events(self, p: dict[str, Any]) -> dict[str, Any]:
        types = p.get("types")
        wanted = set(types) if isinstance(types, list) else None
        if isinstance(p.get("type"), str):
            wanted = {p["type"]}
        created = p.get("created")
        bounds = created if isinstance(created, dict) else {}
        checks = {
            "gte": lambda c, b: c >= b,
            "gt": lambda c, b: c > b,
            "lte": lambda c, b: c <= b,
            "lt": lambda c, b: c < b,
        }
        for op in bounds:
            if op not in checks or not str(bounds[op]).isdigit():
                raise _ApiError(400, f"Invalid created[{op}]", param=f"created[{op}]")
        # Newest first; among equal times, the later added first, as Stripe lists them.
        ordered = [
            e for _, e in sorted(enumerate(self._events), key=lambda x: (-x[1]["created"], -x[0]))
        ]
        chosen = [
            e
            for e in ordered
            if (wanted is None or e["type"] in wanted)
            and all(checks[op](int(e["created"]), int(v)) for op, v in bounds.items())
        ]
        return _list_page(chosen, p, "/v1/events")

    # -- offline pages for a browser -------------------------------------------------------

    def _page(self, rec: RecordedRequest) -> _Reply:
        parts = rec.path.strip("/").split("/")
        obj_id = html.escape(unquote_plus(parts[2]) if len(parts) > 2 else "")
        if parts[0] == "p":
            portal = self._portal_sessions.get(unquote_plus(parts[2]) if len(parts) > 2 else "")
            back = html.escape(str((portal or {}).get("return_url") or ""), quote=True)
            body = f"<p>Billing portal session <code>{obj_id}</code></p>"
            body += f'<p><a href="{back}">Return</a></p>' if back else ""
            return _page_reply(body)
        session = self._sessions.get(unquote_plus(parts[2]) if len(parts) > 2 else "")
        if session is None:
            return _page_reply(f"<p>No such checkout session <code>{obj_id}</code></p>", 404)
        if rec.method == "POST" and session["status"] == "open":
            self.complete_session(session["id"])
        if rec.method == "POST":
            target = str(session.get("success_url") or "").replace(
                "{CHECKOUT_SESSION_ID}", session["id"]
            )
            return _Reply(303, b"", "text/plain", {"Location": target})
        cancel = html.escape(str(session.get("cancel_url") or ""), quote=True)
        body = (
            f"<p>Checkout session <code>{obj_id}</code> ({html.escape(session['mode'])}, "
            f"{html.escape(session['status'])})</p>"
            f'<form method="post"><button type="submit">Pay</button></form>'
        )
        body += f'<p><a href="{cancel}">Cancel</a></p>' if cancel else ""
        return _page_reply(body)


def _list_page(items: list[dict[str, Any]], p: dict[str, Any], url: str) -> dict[str, Any]:
    """One page of a Stripe list: ``limit`` (1 to 100), ``starting_after``, ``ending_before``."""
    raw_limit = p.get("limit", "10")
    if not str(raw_limit).isdigit() or not 1 <= int(raw_limit) <= 100:
        raise _ApiError(
            400,
            "This value must be greater than or equal to 1 and less than or equal to 100.",
            code="parameter_invalid_integer",
            param="limit",
        )
    limit = int(raw_limit)
    ids = [item["id"] for item in items]
    for cursor in ("starting_after", "ending_before"):
        if cursor in p and p[cursor] not in ids:
            raise _no_such("object", str(p[cursor]), param=cursor, status=400)
    if "starting_after" in p:
        rest = items[ids.index(p["starting_after"]) + 1 :]
        data, more = rest[:limit], len(rest) > limit
    elif "ending_before" in p:
        before = items[: ids.index(p["ending_before"])]
        data, more = before[-limit:], len(before) > limit
    else:
        data, more = items[:limit], len(items) > limit
    return {"object": "list", "data": copy.deepcopy(data), "has_more": more, "url": url}


def _page_reply(body: str, status: int = 200) -> _Reply:
    title = "Stripe Checkout (local test stub)"
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1>{body}</body></html>"
    )
    return _Reply(status, doc.encode(), "text/html; charset=utf-8")


def _plan_of(price: dict[str, Any]) -> dict[str, Any]:
    recurring = price.get("recurring") or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price.get("active", True),
        "amount": price.get("unit_amount"),
        "amount_decimal": price.get("unit_amount_decimal"),
        "billing_scheme": "per_unit",
        "created": price.get("created"),
        "currency": price.get("currency", "usd"),
        "interval": recurring.get("interval", "month"),
        "interval_count": recurring.get("interval_count", 1),
        "livemode": False,
        "metadata": dict(price.get("metadata") or {}),
        "nickname": None,
        "product": price.get("product"),
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": recurring.get("usage_type", "licensed"),
    }
