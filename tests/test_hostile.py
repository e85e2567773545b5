"""Hostile and broken input: query parameters, redirects, webhook bodies and signatures,
huge bodies, replays, other users' and other instances' objects; and what the logs and
error bodies never show.

The properties run with hypothesis; ``PAXPAR_HYPOTHESIS_EXAMPLES`` scales them up.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import socket
import string
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from werkzeug.test import EnvironBuilder, run_wsgi_app

from examples.host_app.live import LiveServer
from flask_paxpar_checkout import PaxparCheckout, signals
from flask_paxpar_checkout.errors import UnsafeRedirect
from flask_paxpar_checkout.redirects import resolve_redirect
from flask_paxpar_checkout.state import current_state
from flask_paxpar_checkout.testing import EventBuilder, StripeStub, encode, sign_payload, signed
from flask_paxpar_checkout.testing.events import ERAS, SUPPORTED_TYPES

from .conftest import FQDN, PRICE_BASIC, PRICES, WEBHOOK_SECRET, as_user, base_config, other_app
from .helpers import checkout_row
from .reliability_db import isolated_database
from .reliability_faults import failing_writes
from .reliability_urls import browser_target

URL = "/api/checkout/webhook"
JSON = {"Accept": "application/json"}
PUBLIC = f"https://{FQDN}"
ALLOWED_EXTRA = "app.paxpar.tech"
ALLOWED = frozenset({FQDN, ALLOWED_EXTRA})
STRIPE_KEY = "sk_test_reliabilityHostileS3cretKey"
FLASK_KEY = "flask-session-key-Kx9-reliability"
EXAMPLES = int(os.environ.get("PAXPAR_HYPOTHESIS_EXAMPLES") or 150)
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def config(stripe: StripeStub, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with isolated_database(tmp_path) as url:
        yield {
            **base_config(stripe.url, url),
            "SECRET_KEY": FLASK_KEY,
            "STRIPE_SECRET_KEY": STRIPE_KEY,
            "PAXPAR_CHECKOUT_ALLOWED_REDIRECT_HOSTS": ALLOWED_EXTRA,
            "PROPAGATE_EXCEPTIONS": False,  # a crash is a 500 here, as in production
        }


@pytest.fixture
def handler_runs(checkout: PaxparCheckout, app: Flask) -> Iterator[list[str]]:
    """Every host handler run and every ``webhook_received`` signal, of any event type."""
    runs: list[str] = []
    for kind in SUPPORTED_TYPES:
        checkout.webhook_handler(kind)(lambda e: runs.append(e["id"]))

    def received(sender: Flask, **kw: Any) -> None:
        runs.append("received " + kw["event"]["id"])

    with signals.webhook_received.connected_to(received, app):
        yield runs


def count(name: str) -> int:
    table = getattr(current_state().tables, name)
    session = current_state().database.session
    n = len(list(session.execute(select(table))))
    session.rollback()
    return n


def on_site(location: str) -> bool:
    """Whether a browser following ``location`` stays on this instance's hosts."""
    target = browser_target(location, PUBLIC + "/api/checkout/success")
    return target.scheme in ("http", "https") and target.host in ALLOWED


def urlsplit_raises(value: str) -> bool:
    """Whether urlsplit itself refuses the value (a malformed URL)."""
    try:
        urlsplit(value)
    except ValueError:
        return True
    return False


# -- open redirects --------------------------------------------------------------------------

OPEN_REDIRECTS = [
    "//evil.com",
    "///evil.com",
    "////evil.com/",
    "/\\evil.com",
    "\\\\evil.com",
    "\\/evil.com",
    "/\\/evil.com",
    "/%2F%2Fevil.com",
    "%2F%2Fevil.com",
    "/%5Cevil.com",
    "/%2f%2fevil.com",
    "%5C%5Cevil.com",
    "https:evil.com",
    "http:evil.com",
    "https:/evil.com",
    "https:\\\\evil.com",
    "https:/\\evil.com",
    "https:///evil.com",
    "HTTPS://evil.com",
    "https://evil.com",
    "https://evil.com/https://dev.paxpar.tech/",
    "https://dev.paxpar.tech.evil.com/",
    "https://dev.paxpar.tech@evil.com",
    "https://dev.paxpar.tech:443@evil.com/",
    "https://dev.paxpar.tech%40evil.com",
    "https://dev.paxpar.tech%2F@evil.com",
    "https://dev.paxpar.tech%252F@evil.com",
    "https://dev.paxpar.tech\\@evil.com",
    "https://dev.paxpar.tech%5C@evil.com",
    "https://evil.com#@dev.paxpar.tech",
    "https://evil.com?@dev.paxpar.tech",
    "https://evil.com\\dev.paxpar.tech",
    "https://dev.paxpar.tech:evil.com",
    "https://dev.paxpar.tech%00.evil.com",
    "https://dev.paxpar.tech%2eevil.com",
    "https://dev.paxpar.tech\u3002evil.com",
    "https://dev.paxpar.tech\uff0eevil.com",
    "https://\u0435vil.com",  # Cyrillic e
    "https://dev.p\u0430xpar.tech/",  # Cyrillic a: a look-alike of this instance
    "https://\u217eev.paxpar.tech/",  # small roman numeral five hundred
    "https://dev.paxpar.tech\u200b.evil.com",
    "https://dev.paxpar.tech\u2215evil.com",
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "\t//evil.com",
    " //evil.com",
    "//evil.com ",
    "/ok\r\nLocation: https://evil.com",
    "/ok%0d%0aLocation:%20https://evil.com",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(document.domain)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "ftp://evil.com",
    "//0x7f.1",
    "https://0x7f.0.0.1/",
    "https://[::1]/",
    "http://169.254.169.254/latest/meta-data/",
    "https://evil.com:443",
    "/" + "a" * 3000,
]


# Literal percent-escapes in a path: accepted, and they stay a path on this host.
ON_SITE_PATHS = {
    "/%2F%2Fevil.com",
    "/%2f%2fevil.com",
    "/%5Cevil.com",
    "/ok%0d%0aLocation:%20https://evil.com",
}


@pytest.mark.parametrize("payload", OPEN_REDIRECTS)
def test_known_open_redirect_payloads_are_refused(payload: str) -> None:
    if payload not in ON_SITE_PATHS:
        with pytest.raises(UnsafeRedirect):
            resolve_redirect(payload, public_url=PUBLIC, allowed_hosts=ALLOWED)
        return
    resolved = resolve_redirect(payload, public_url=PUBLIC, allowed_hosts=ALLOWED)
    assert resolved == PUBLIC + payload and on_site(resolved)


@pytest.mark.parametrize("raw", [False, True], ids=["literal", "url-decoded"])
def test_open_redirect_payloads_through_session_and_portal(
    client: FlaskClient, stripe: StripeStub, raw: bool
) -> None:
    """The payloads as the server receives them: literally, and percent-decoded once more
    (a payload written straight into the link)."""
    assert client.get("/api/checkout/session?qty=1", headers=as_user(3)).status_code == 303
    for payload in OPEN_REDIRECTS:
        if raw:
            query = "qty=1&redirect=" + quote(payload, safe="/:@%?&=\\;,+!$'()*[]~")
        else:
            query = urlencode({"qty": "1", "redirect": payload})
        answer = client.get(f"/api/checkout/session?{query}", headers=as_user(3, **JSON))
        if raw:  # decoded once more, some become plain paths ("%2F@" is "/@"): on site
            assert answer.status_code in (200, 400), (payload, answer.status_code)
        else:
            expected = 200 if payload in ON_SITE_PATHS else 400
            assert answer.status_code == expected, (payload, answer.status_code)
        portal = client.get(
            "/api/checkout/portal?" + query.partition("&")[2], headers=as_user(3, **JSON)
        )
        assert portal.status_code in (200, 400), (payload, portal.status_code)
    stored = [
        r.redirect_url
        for r in current_state().database.session.execute(
            select(current_state().tables.sessions.c.redirect_url)
        )
    ]
    assert all(on_site(url) for url in stored), stored
    returns = [r.params["return_url"] for r in stripe.requests_to("POST", "/v1/billing_portal")]
    assert all(on_site(url) for url in returns), returns


@pytest.mark.parametrize(
    "payload", ["https://[", "http://[::1", "https://\uff0f", "https://a\uff03b"]
)
def test_a_malformed_url_redirect_is_a_400_not_a_500(
    client: FlaskClient, stripe: StripeStub, payload: str
) -> None:
    query = urlencode({"qty": "1", "redirect": payload})
    answer = client.get(f"/api/checkout/session?{query}", headers=as_user(3, **JSON))
    assert answer.status_code == 400
    portal = client.get(f"/api/checkout/portal?{query}", headers=as_user(3, **JSON))
    assert portal.status_code == 400
    with pytest.raises(UnsafeRedirect):
        resolve_redirect(payload, public_url=PUBLIC, allowed_hosts=ALLOWED)


TOKENS = [
    "/", "//", "\\", "@", ":", "%2f", "%5c", "%40", "%2e", "%00", "%09", "evil.com", FQDN,
    ALLOWED_EXTRA, "\u3002", "\uff0e", "\uff0f", "\u2215", "\u200b", "\u0430", "\t", "\n",
    "\r", "#", "?", "&", "=", ";", "https:", "http:", "https://", "http://", "HTTPS://", " ",
    "\u00a0", "javascript:", ".", "443", "[", "]", "::1", "\x00", "\x7f", "\x85",
]  # fmt: skip
hostile_text = st.one_of(
    st.lists(st.sampled_from(TOKENS), min_size=1, max_size=10).map("".join),
    st.from_regex(r"\A(https?:)?[/\\]{0,3}[a-z.@:%0-9\\/]{0,30}\Z"),
    st.text(max_size=60),
)


@fuzz
@given(value=hostile_text)
@example(value="https://dev.paxpar.tech@evil.com")
@example(value="/\\evil.com")
def test_the_redirect_parser_never_resolves_off_the_allowed_hosts(value: str) -> None:
    assume(not urlsplit_raises(value))
    try:
        resolved = resolve_redirect(value, public_url=PUBLIC, allowed_hosts=ALLOWED)
    except UnsafeRedirect:
        return
    assert on_site(resolved), (value, resolved)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in resolved), resolved


# -- /session and /success query strings ---------------------------------------------------

keys = st.one_of(
    st.sampled_from(["qty", "price_id", "redirect", "session_id"]), st.text(max_size=8)
)
values = st.one_of(
    hostile_text,
    st.from_regex(r"\A[0-9]{0,30}\Z"),
    st.sampled_from([*PRICES, "price_unknown1", "price_", "1", "10000", "10001", "0", "-1"]),
)


@fuzz
@given(
    pairs=st.lists(st.tuples(keys, values), max_size=4),
    # what a server passes on as QUERY_STRING (gunicorn refuses raw bytes over 0x7e)
    raw=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60),
)
def test_session_query_strings_never_crash_nor_store_an_off_site_redirect(
    client: FlaskClient, stripe: StripeStub, pairs: list[tuple[str, str]], raw: str
) -> None:
    assume(not any(urlsplit_raises(v) for k, v in pairs if k == "redirect"))
    raw_pairs = parse_qsl(raw, keep_blank_values=True)
    assume(not any(urlsplit_raises(v) for k, v in raw_pairs if k == "redirect"))
    for query in (urlencode(pairs), raw):
        stripe.requests.clear()
        before = count("sessions")
        answer = client.get(
            "/api/checkout/session",
            headers=as_user(4, **JSON),
            environ_overrides={"QUERY_STRING": query},
        )
        assert answer.status_code in (200, 400), (query, answer.status_code)
        if answer.status_code == 400:
            assert answer.get_json()["code"] == 400
            assert stripe.requests_to("POST", "/v1/checkout/sessions") == []
            assert count("sessions") == before
            continue
        created = checkout_row(answer.get_json()["id"])
        current_state().database.session.rollback()
        assert created is not None and on_site(created.redirect_url), created


def test_qty_is_ascii_digits_only_without_a_trailing_newline(
    client: FlaskClient, stripe: StripeStub
) -> None:
    answer = client.get("/api/checkout/session?qty=12%0A", headers=as_user(4, **JSON))
    assert answer.status_code == 400
    assert stripe.requests == []


@fuzz
@given(session_id=st.one_of(hostile_text, st.from_regex(r"\Acs_(test|live)_[A-Za-z0-9]{1,30}\Z")))
def test_success_with_any_session_id_lands_on_site_and_asks_stripe_nothing(
    client: FlaskClient, stripe: StripeStub, checkout: PaxparCheckout, session_id: str
) -> None:
    stripe.requests.clear()
    answer = client.get(
        "/api/checkout/success", query_string={"session_id": session_id}, headers=as_user(5)
    )
    assert answer.status_code == 303
    assert answer.headers["Location"] == f"{PUBLIC}/front/checkout/success"
    assert stripe.requests == []
    assert checkout.credits(5) == 0


# -- the webhook: unverified bodies and signatures -------------------------------------------


def sign_bytes(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """``sign_payload`` over any bytes, UTF-8 or not."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _signature_headers(body: bytes) -> st.SearchStrategy[str | None]:
    now = int(time.time())
    other = EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="1", qty=1)
    return st.one_of(
        st.none(),
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=120),
        st.builds(
            lambda t, sig: f"t={t},v1={sig}",
            st.integers(min_value=-(2**63), max_value=2**63),
            st.text(alphabet="0123456789abcdef", min_size=0, max_size=70),
        ),
        st.sampled_from(
            [
                sign_bytes(body, "whsec_attacker"),
                sign_bytes(body, WEBHOOK_SECRET + "x"),
                sign_bytes(body, WEBHOOK_SECRET, now - 301),
                sign_bytes(encode(other), WEBHOOK_SECRET),
                sign_bytes(body, WEBHOOK_SECRET, now - 3600).replace("t=", f"t={now},t=", 1),
                f"t={now},v0={sign_bytes(body, WEBHOOK_SECRET, now).split('v1=')[1]}",
                f"t={now},v1=" + "0" * 64,
                f"t={now}",
                "v1=" + sign_bytes(body, WEBHOOK_SECRET, now).split("v1=")[1],
            ]
        ),
    )


json_values = st.recursive(  # numbers as JSON carries them safely (Stripe's are far smaller)
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def unverified_deliveries(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """A real event of this instance (maybe altered) or garbage, and a header that is not
    a valid signature of that body with this endpoint's secret."""
    builder = EventBuilder(fqdn=FQDN, era=draw(st.sampled_from(ERAS)))
    kind = draw(st.sampled_from(SUPPORTED_TYPES))
    event = builder.build(kind, user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC)
    body = draw(
        st.one_of(
            st.just(encode(event)),
            st.binary(max_size=200),
            json_values.map(lambda v: json.dumps(v).encode()),
        )
    )
    return body, draw(_signature_headers(body))


@fuzz
@given(delivery=unverified_deliveries())
def test_an_unverified_delivery_is_refused_and_runs_nothing(
    client: FlaskClient, handler_runs: list[str], delivery: tuple[bytes, str | None]
) -> None:
    body, signature = delivery
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    answer = client.post(URL, data=body, headers=headers)
    assert answer.status_code == 400, answer.get_data(as_text=True)
    assert answer.get_json()["code"] == 400
    assert handler_runs == []
    assert count("events") == 0


printable = st.text(alphabet=string.ascii_letters + string.digits + "_-. ", max_size=20)
objects = st.dictionaries(
    st.sampled_from(["id", "object", "metadata", "parent", "customer", "mode", "lines", "x"]),
    json_values,
    max_size=6,
)


@fuzz
@given(
    envelope=st.fixed_dictionaries(
        {
            "object": st.sampled_from(["event", "evnt", None]),
            "id": st.one_of(printable.map(lambda s: "evt_" + s), printable),
            "type": st.one_of(st.sampled_from([*SUPPORTED_TYPES, "charge.refunded"]), printable),
            "created": st.one_of(st.integers(min_value=0, max_value=2**40), json_values),
            "data": st.one_of(st.fixed_dictionaries({"object": objects}), json_values),
        }
    )
)
def test_signed_bodies_that_are_not_this_instances_events_never_crash_nor_run_handlers(
    client: FlaskClient, handler_runs: list[str], envelope: dict[str, Any]
) -> None:
    """Signed with the secret but not an event, or an event of nobody (no instance tag):
    a 400 or an ignored 200, never a 500 nor a handler run."""
    body = encode(envelope)
    answer = client.post(
        URL,
        data=body,
        headers={"Stripe-Signature": sign_payload(body, WEBHOOK_SECRET)},
    )
    assert answer.status_code in (200, 400), answer.get_data(as_text=True)
    if answer.status_code == 200:
        assert answer.get_json()["status"] in ("ignored", "duplicate"), answer.get_json()
    assert [r for r in handler_runs if not r.startswith("received ")] == []


# -- huge bodies, replays ----------------------------------------------------------------------


@pytest.mark.parametrize("host_limit", [None, 256, 64 * 1024 * 1024])
def test_the_webhook_size_limit_is_its_own_and_exact(
    app_parts: Any, config: dict[str, Any], host_limit: int | None
) -> None:
    """``PAXPAR_CHECKOUT_WEBHOOK_MAX_BYTES`` holds whatever the host's
    ``MAX_CONTENT_LENGTH`` says about its other routes."""
    limit = 8192
    limited = {
        **config,
        "PAXPAR_CHECKOUT_WEBHOOK_MAX_BYTES": limit,
        "MAX_CONTENT_LENGTH": host_limit,
    }
    event = EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="1", qty=1)
    body = encode(event)
    with other_app(limited) as (app, _, checkout):
        client = app.test_client()
        for size, status in ((limit, 200), (limit + 1, 413)):
            padded = body[:-1] + b" " * (size - len(body)) + b"}"
            assert len(padded) == size
            headers = {"Stripe-Signature": sign_payload(padded, WEBHOOK_SECRET)}
            answer = client.post(URL, data=padded, headers=headers)
            assert answer.status_code == status, (size, answer.get_data(as_text=True))
        assert checkout.credits(1) == 1


def test_a_huge_body_is_refused_before_it_is_read(app: Flask, handler_runs: list[str]) -> None:
    """Over a real socket: 50 MB announced, a few bytes sent, and the 413 comes at once."""
    with LiveServer() as server:
        server.app = app
        port = int(server.url.rpartition(":")[2])
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(
                b"POST /api/checkout/webhook HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=0"
                b"\r\nContent-Length: 50000000\r\n\r\n{" + b" " * 1000
            )
            head = sock.recv(100)
        assert head.startswith(b"HTTP/1.1 413"), head
        assert time.monotonic() - started < 3
    assert handler_runs == []
    assert count("events") == 0


class EndlessBody(io.RawIOBase):
    """A request body that never ends (chunked, no Content-Length); counts what is read."""

    def __init__(self) -> None:
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = b" " * size
        self.taken += size
        return size


def _post_endless(app: Flask) -> tuple[int, EndlessBody]:
    """POST an endless chunked body the way gunicorn hands it to the app: no
    Content-Length, ``wsgi.input_terminated`` set; returns the status and the body."""
    body = EndlessBody()
    headers = [("Stripe-Signature", "t=1,v1=00"), ("Transfer-Encoding", "chunked")]
    environ = EnvironBuilder(path=URL, method="POST", headers=headers).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": body, "wsgi.input_terminated": True})
    answer, status, _ = run_wsgi_app(app, environ, buffered=True)
    if hasattr(answer, "close"):
        answer.close()
    return int(status.split()[0]), body


def test_an_endless_body_without_length_is_cut_at_the_limit(
    app: Flask, handler_runs: list[str]
) -> None:
    status, body = _post_endless(app)
    assert 400 <= status < 500
    assert body.taken <= 1024 * 1024 + 64 * 1024  # the limit, give or take one read
    assert handler_runs == []
    assert count("events") == 0


def test_an_endless_body_without_length_is_a_413(app: Flask) -> None:
    status, _ = _post_endless(app)
    assert status == 413


def test_replayed_deliveries_are_refused_once_the_tolerance_has_passed(
    app_parts: Any, config: dict[str, Any]
) -> None:
    events = EventBuilder(fqdn=FQDN)
    with other_app({**config, "PAXPAR_CHECKOUT_WEBHOOK_TOLERANCE": 60}) as (app, _, checkout):
        client = app.test_client()
        now = int(time.time())
        captured = events.checkout_session_completed(user_id="2", qty=4)
        body, headers = signed(captured, WEBHOOK_SECRET, now - 50)
        assert client.post(URL, data=body, headers=headers).get_json()["status"] == "processed"
        # the same delivery replayed within the tolerance: a duplicate, nothing more
        assert client.post(URL, data=body, headers=headers).get_json()["status"] == "duplicate"
        assert checkout.credits(2) == 4

        # an event captured 61 s ago (never delivered here): too old, whatever is done to it
        old = events.checkout_session_completed(user_id="2", qty=100)
        body = encode(old)
        stale = sign_payload(body, WEBHOOK_SECRET, now - 61)
        signature = stale.split("v1=")[1]
        for header in (
            stale,
            f"t={now},{stale}",
            f"{stale},t={now}",
            f"t={now},v1={signature}",
            f"{stale},v1={'0' * 64}",
        ):
            answer = client.post(URL, data=body, headers={"Stripe-Signature": header})
            assert answer.status_code == 400, header
        assert checkout.credits(2) == 4


# -- other users, other instances, other prices ----------------------------------------------

LOOK_ALIKES = [
    "prod.paxpar.tech",
    "dev.paxpar.tech.evil.com",
    "evil-dev.paxpar.tech",
    "dev.paxpar.tec",
    "dev.paxpar.tech\u200b",
    "dev\u3002paxpar.tech",
    "dev.p\u0430xpar.tech",
    "*",
    "",
]


@pytest.mark.parametrize("fqdn", LOOK_ALIKES)
def test_another_instances_events_of_every_type_change_nothing(
    deliver: Callable[..., Any],
    db: SQLAlchemy,
    checkout: PaxparCheckout,
    handler_runs: list[str],
    fqdn: str,
) -> None:
    charges: set[str] = set()  # a host handler of refunds sees every instance's: it is told
    for era in ERAS:
        other = EventBuilder(fqdn=fqdn, era=era)
        for kind in SUPPORTED_TYPES:
            event = other.build(kind, user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC)
            if kind == "charge.refunded":
                charges.add(event["id"])
            answer = deliver(event)
            assert answer.status_code == 200
            # A charge names no instance: its refund waits, unmatched and without effect,
            # for a purchase of this instance that never comes.
            expected = "processed" if kind == "charge.refunded" else "ignored"
            assert answer.get_json()["status"] == expected, (kind, answer.get_json())
    assert [r for r in handler_runs if not r.startswith("received ") and r not in charges] == []
    assert count("refunds") == len(ERAS)
    assert checkout.credits(1) == 0 and checkout.subscription(1) is None
    for table in ("customers", "balances", "ledger", "subscriptions", "sessions"):
        assert count(table) == 0, table


def test_a_tampered_user_tag_cannot_divert_a_purchase(
    client: FlaskClient,
    stripe: StripeStub,
    checkout: PaxparCheckout,
    deliver: Callable[..., Any],
) -> None:
    """The session's owner is the stored one: metadata naming another user (edited on the
    Stripe side) changes nobody else's balance, by the return page or by the webhook."""
    made = client.get("/api/checkout/session?qty=6", headers=as_user(21, **JSON))
    session_id = made.get_json()["id"]
    stripe.session(session_id)["metadata"]["paxpar_user_id"] = "666"
    stripe.session(session_id)["client_reference_id"] = "666"
    completed = stripe.complete_session(session_id)

    for user in (666, 22):  # the named user, and a bystander, return with the session id
        client.get(f"/api/checkout/success?session_id={session_id}", headers=as_user(user))
    assert checkout.credits(21) == 0
    client.get(f"/api/checkout/success?session_id={session_id}", headers=as_user(21))
    late_webhook = EventBuilder(fqdn=FQDN).event("checkout.session.completed", completed)
    assert deliver(late_webhook).get_json()["status"] == "processed"
    assert (checkout.credits(21), checkout.credits(666), checkout.credits(22)) == (6, 0, 0)


def test_a_price_off_the_allow_list_is_refused_and_grants_nothing(
    client: FlaskClient,
    stripe: StripeStub,
    checkout: PaxparCheckout,
    deliver: Callable[..., Any],
    events: EventBuilder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for price in ("price_notOffered1", PRICE_BASIC + "x", "price_basic2"):
        answer = client.get(f"/api/checkout/session?price_id={price}", headers=as_user(1, **JSON))
        assert answer.status_code == 400
        assert answer.get_json()["errors"] == {"price_id": ["This price is not offered here."]}
    assert stripe.requests == []
    assert count("sessions") == 0 and count("customers") == 0

    # a subscription to it made elsewhere (the dashboard) and tagged for us: no credits
    paid = events.invoice_paid(user_id="1", subscription_id="sub_x", price_id="price_notOffered1")
    assert deliver(paid).status_code == 200
    assert checkout.credits(1) == 0 and checkout.ledger(1) == []
    assert "No credits known for price price_notOffered1" in caplog.text


# -- what logs and error bodies never show ---------------------------------------------------

EMAIL, NAME, PHONE, STREET = (
    "victim.person@example.org",
    "Victoria Personne",
    "+33 6 12 34 56 78",
    "12 rue du Secret",
)
CUSTOMER: dict[str, Any] = {
    "email": EMAIL,
    "name": NAME,
    "phone": PHONE,
    "address": {"line1": STREET, "postal_code": "75099", "city": "Paris"},
}
CARD = "4242424242424242"


def test_logs_and_error_bodies_never_show_secrets_nor_customer_data(
    app: Flask,
    client: FlaskClient,
    db: SQLAlchemy,
    stripe: StripeStub,
    checkout: PaxparCheckout,
    deliver: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="flask_paxpar_checkout")
    answers: list[Any] = []
    events = EventBuilder(fqdn=FQDN)

    def sensitive_event(user: str, qty: int) -> dict[str, Any]:
        event = events.checkout_session_completed(user_id=user, qty=qty)
        obj = event["data"]["object"]
        obj["customer_details"] = {**CUSTOMER, "tax_exempt": "none", "tax_ids": []}
        obj["customer_email"] = EMAIL
        obj["payment_method_details"] = {"card": {"number": CARD, "last4": CARD[-4:]}}
        return event

    # the checkout itself, and Stripe refusing it in every way
    answers.append(client.get("/api/checkout/session?qty=2", headers=as_user(7, **JSON)))
    masked = f"Invalid API Key provided: {STRIPE_KEY[:8]}{'*' * 20}{STRIPE_KEY[-4:]}"
    for status, kind, message in (
        (400, "invalid_request_error", "No such price: 'price_credit1'"),
        (401, "authentication_error", masked),  # Stripe masks the key it echoes
    ):
        stripe.fail_next(
            "POST", "/v1/checkout/sessions", status=status, error_type=kind, message=message
        )
        answers.append(client.get("/api/checkout/session?qty=2", headers=as_user(7, **JSON)))
    stripe.fail_next("POST", "/v1/checkout/sessions", status=500, times=2)
    answers.append(client.get("/api/checkout/session?qty=2", headers=as_user(7)))

    # webhooks: good, duplicate, forged, stale, failing in a handler, failing in the database
    good = sensitive_event("7", 3)
    answers += [deliver(good), deliver(good)]
    answers.append(deliver(sensitive_event("7", 3), secret="whsec_attacker"))
    answers.append(deliver(sensitive_event("7", 3), timestamp=int(time.time()) - 3600))

    @checkout.webhook_handler("checkout.session.completed")
    def host(event: dict[str, Any]) -> None:
        if event["data"]["object"]["metadata"]["paxpar_qty"] == "13":
            raise RuntimeError("the CRM refused the order")

    answers.append(deliver(sensitive_event("7", 13)))
    with failing_writes(db, "paxpar_checkout_credit_ledger", "NEW.user_id = '8'"):
        answers.append(deliver(sensitive_event("8", 5)))
    failing = sensitive_event("9", 5)
    with failing_writes(db, "paxpar_checkout_events", f"NEW.id = '{failing['id']}'"):
        answers.append(deliver(failing))

    # the pages of the user, of another user, and the portal
    answers.append(client.get("/api/checkout/account", headers=as_user(7)))
    answers.append(client.get("/api/checkout/portal", headers=as_user(7, **JSON)))
    answers.append(client.get("/api/checkout/portal", headers=as_user(99, **JSON)))

    shown = caplog.text + "".join(a.get_data(as_text=True) + str(a.headers) for a in answers)
    assert any(a.status_code >= 500 for a in answers)  # the failures did happen
    for secret in (STRIPE_KEY, STRIPE_KEY[8:], WEBHOOK_SECRET, FLASK_KEY, CARD):
        assert secret not in shown, secret
    for value in (EMAIL, NAME, PHONE, STREET):
        assert value not in shown, value


def test_a_database_error_during_checkout_keeps_the_customers_email_out_of_the_logs(
    client: FlaskClient, db: SQLAlchemy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with failing_writes(db, "paxpar_checkout_customers", "NEW.user_id = '7'"):
        answer = client.get("/api/checkout/session?qty=2", headers=as_user(7, **JSON))
    assert answer.status_code in (500, 503)
    assert "user7@example.com" not in caplog.text
