"""Faults: the database unreachable, failing at any write or at COMMIT, locked; Stripe's API
timing out, refusing, dropping, rate-limiting or failing; a host handler that raises.

Each time: a clear answer (5xx to Stripe so that it retries, a JSON error or page to the
user), a log line for the operator, no partial effect, and the retry processed once.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.handlers import HANDLED_TYPES
from flask_paxpar_checkout.state import current_state
from flask_paxpar_checkout.testing import ERAS, EventBuilder, StripeStub, signed

from .conftest import FQDN, PRICE_BASIC, PRICE_PRO, PRICES, WEBHOOK_SECRET, as_user, base_config
from .conftest import other_app as other_app_of
from .reliability_db import isolated_database, on_postgresql, schema_of
from .reliability_faults import FAULT_MESSAGE, connection_killed_on_write, failing_writes
from .reliability_load import free_port

URL = "/api/checkout/webhook"
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
Deliver = Callable[..., Any]


@pytest.fixture
def config(stripe: StripeStub, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The suite's app on a database of its own (a fresh schema on PostgreSQL)."""
    with isolated_database(tmp_path) as url:
        yield {
            **base_config(stripe.url, url),
            "STRIPE_SECRET_KEY": "sk_test_reliabilityFaultsKey",
            "PAXPAR_CHECKOUT_STRIPE_TIMEOUT": 1,
            "PROPAGATE_EXCEPTIONS": False,  # a crash is a 500 here, as in production
        }


def snapshot(db: SQLAlchemy) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the plugin's tables but the event log, comparable across calls."""
    db.session.rollback()
    tables = current_state().tables
    out: dict[str, list[tuple[Any, ...]]] = {}
    for name in ("customers", "sessions", "balances", "ledger", "subscriptions", "prices"):
        table = getattr(tables, name)
        out[name] = sorted(tuple(r) for r in db.session.execute(select(table)))
    db.session.rollback()
    return out


def event_rows(db: SQLAlchemy) -> dict[str, tuple[str, int]]:
    events = current_state().tables.events
    rows = db.session.execute(select(events.c.id, events.c.status, events.c.attempts))
    out = {r.id: (r.status, r.attempts) for r in rows}
    db.session.rollback()
    return out


def post(client: FlaskClient, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(URL, data=body, headers=headers)


@dataclass(frozen=True)
class Kit:
    """The suite's app and what a test of it uses, as one object: its database, a client,
    the extension, the local Stripe, events of one API era, a signed delivery, the config."""

    app: Flask
    db: SQLAlchemy
    client: FlaskClient
    checkout: PaxparCheckout
    stripe: StripeStub
    events: EventBuilder
    deliver: Deliver
    config: dict[str, Any]


@pytest.fixture
def kit(
    app: Flask,
    db: SQLAlchemy,
    client: FlaskClient,
    checkout: PaxparCheckout,
    stripe: StripeStub,
    events: EventBuilder,
    deliver: Deliver,
    config: dict[str, Any],
) -> Kit:
    """The suite's app and its parts; a test that needs no particular API era runs in one
    (``one_era``), as a test that built its own events did."""
    return Kit(app, db, client, checkout, stripe, events, deliver, config)


one_era = pytest.mark.parametrize("events", [ERAS[0]], indirect=True, ids=["one-era"])
"""For a test whose events' era does not matter: it runs once, not once per era."""


# -- the database, during a webhook ---------------------------------------------------------


@one_era
@pytest.mark.parametrize("host_handler", [False, True], ids=["own", "host-session"])
def test_database_unreachable_is_a_5xx_then_the_redelivery_is_processed_once(
    host_handler: bool, kit: Kit, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if on_postgresql():  # nothing listens there
        unreachable = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    else:  # a directory is not a database file
        unreachable = f"sqlite:///{tmp_path}"
    event = EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="4", qty=9)
    body, headers = signed(event, WEBHOOK_SECRET)
    ran: list[str] = []

    with other_app_of({**kit.config, "SQLALCHEMY_DATABASE_URI": unreachable}) as (down, _, ext):
        if host_handler:
            ext.webhook_handler("checkout.session.completed")(lambda e: ran.append(e["id"]))
        answer = post(down.test_client(), body, headers)
        assert answer.status_code == 500
        assert answer.get_json()["message"] == f"Event {event['id']} failed; Stripe will retry it."
        assert ran == []
    assert f"Webhook event {event['id']} (checkout.session.completed) failed" in caplog.text

    assert event_rows(kit.db) == {}
    assert kit.checkout.credits(4) == 0
    assert post(kit.client, body, headers).get_json()["status"] == "processed"
    assert post(kit.client, body, headers).get_json()["status"] == "duplicate"
    assert kit.checkout.credits(4) == 9
    assert event_rows(kit.db) == {event["id"]: ("processed", 1)}


@pytest.fixture(params=["own", "host-session"])
def transaction(request: pytest.FixtureRequest, checkout: PaxparCheckout) -> str:
    """The transaction an event runs in: the plugin's own when only the built-in handlers
    handle it, the host's ``db.session`` one when a host handler is registered too."""
    if request.param == "host-session":
        for kind in HANDLED_TYPES:
            checkout.webhook_handler(kind)(lambda event: None)
    return str(request.param)


Scenario = Callable[[Kit, str], tuple[dict[str, Any], Callable[[], None]]]


def purchase(kit: Kit, user: str) -> tuple[dict[str, Any], Callable[[], None]]:
    """Credits bought through /session: the stored session is completed by the webhook."""
    made = kit.client.get("/api/checkout/session?qty=7", headers=as_user(int(user), **JSON))
    session_id = made.get_json()["id"]
    event = kit.events.event("checkout.session.completed", kit.stripe.complete_session(session_id))

    def effects() -> None:
        assert kit.checkout.credits(user) == 7
        assert [e["delta"] for e in kit.checkout.ledger(user)] == [7]
        [stored] = [r for r in snapshot_rows("sessions") if r.id == session_id]
        assert stored.status == "complete"

    return event, effects


def subscribe(kit: Kit, user: str) -> tuple[dict[str, Any], Callable[[], None]]:
    """A subscription checkout seen by the webhook first: the customer and subscription."""
    event = kit.events.checkout_session_completed(
        user_id=user,
        mode="subscription",
        price_id=PRICE_PRO,
        subscription_id=f"sub_{user}",
        customer_id=f"cus_{user}",
    )

    def effects() -> None:
        sub = kit.checkout.subscription(user)
        assert sub is not None
        assert (sub.id, sub.status, sub.price_id) == (f"sub_{user}", "active", PRICE_PRO)
        assert kit.checkout.customer_id(user) == f"cus_{user}"

    return event, effects


def renewal(kit: Kit, user: str) -> tuple[dict[str, Any], Callable[[], None]]:
    """A paid renewal of a subscription whose user was credited and spent some."""
    before = int(time.time()) - 3000
    kit.deliver(
        kit.events.invoice_paid(
            user_id=user,
            subscription_id=f"sub_{user}",
            price_id=PRICE_BASIC,
            created=before,
            period_end=before + 100,
        )
    )
    kit.checkout.spend_credits(user, 40)
    now = int(time.time()) + 5  # paid after the spend, in Stripe's timeline too
    event = kit.events.invoice_paid(
        user_id=user,
        subscription_id=f"sub_{user}",
        price_id=PRICE_PRO,
        created=now,
        period_end=now + 9999,
    )

    def effects() -> None:
        sub = kit.checkout.subscription(user)
        assert sub is not None
        assert (sub.status, sub.price_id, sub.current_period_end) == (
            "active",
            PRICE_PRO,
            now + 9999,
        )
        assert kit.checkout.credits(user) == PRICES[PRICE_PRO]
        reasons = [e["reason"] for e in kit.checkout.ledger(user)]
        assert reasons == ["subscription_reset", "spend", "subscription_reset"]

    return event, effects


def snapshot_rows(name: str) -> list[Any]:
    table = getattr(current_state().tables, name)
    return list(current_state().database.session.execute(select(table)))


# (a scenario, the table whose writes fail): each table the scenario must write to
WRITE_FAULTS: list[tuple[Scenario, str]] = [
    (purchase, "balances"),
    (purchase, "credit_ledger"),
    (purchase, "sessions"),
    (subscribe, "customers"),
    (subscribe, "subscriptions"),
    (renewal, "subscriptions"),
    (renewal, "credit_ledger"),
    (renewal, "balances"),
]


@pytest.mark.parametrize(
    ("scenario", "table"), WRITE_FAULTS, ids=[f"{s.__name__}-{t}" for s, t in WRITE_FAULTS]
)
def test_a_write_failing_mid_transaction_leaves_no_partial_effect(
    transaction: str, kit: Kit, scenario: Scenario, table: str
) -> None:
    user = "31"
    db, deliver = kit.db, kit.deliver
    event, effects = scenario(kit, user)
    before = snapshot(db)
    known = event_rows(db)

    with failing_writes(db, f"paxpar_checkout_{table}", f"NEW.user_id = '{user}'"):
        answer = deliver(event)
        assert answer.status_code == 500, answer.get_data(as_text=True)
        assert "will retry" in answer.get_json()["message"]
        assert FAULT_MESSAGE not in answer.get_data(as_text=True)
        assert snapshot(db) == before  # the writes before the failing one were undone
        assert event_rows(db) == {**known, event["id"]: ("failed", 1)}

    assert deliver(event).get_json()["status"] == "processed"
    assert deliver(event).get_json()["status"] == "duplicate"
    effects()
    assert event_rows(db)[event["id"]] == ("processed", 2)


def test_the_event_record_failing_too_leaves_nothing_then_the_redelivery_works(
    transaction: str, kit: Kit, caplog: pytest.LogCaptureFixture
) -> None:
    """The claim of the event is the first write; its failure can't even be recorded."""
    db, deliver = kit.db, kit.deliver
    event, effects = purchase(kit, "34")
    with failing_writes(db, "paxpar_checkout_events", f"NEW.id = '{event['id']}'"):
        assert deliver(event).status_code == 500
        assert deliver(event).status_code == 500  # Stripe's retry, still failing
        assert event_rows(db) == {}
        assert snapshot(db)["ledger"] == []
    assert f"Could not record the failure of event {event['id']}" in caplog.text
    assert deliver(event).get_json()["status"] == "processed"
    effects()
    assert event_rows(db) == {event["id"]: ("processed", 1)}


@pytest.mark.parametrize("scenario", [purchase, subscribe, renewal], ids=lambda s: s.__name__)
def test_a_failing_commit_leaves_no_partial_effect(
    transaction: str, kit: Kit, scenario: Scenario
) -> None:
    if not on_postgresql():
        pytest.skip("a failing COMMIT is injected with PostgreSQL's deferred triggers")
    db, deliver = kit.db, kit.deliver
    event, effects = scenario(kit, "33")
    before = snapshot(db)
    with failing_writes(db, "paxpar_checkout_events", f"NEW.id = '{event['id']}'", at_commit=True):
        assert deliver(event).status_code == 500
        assert snapshot(db) == before
    assert deliver(event).get_json()["status"] == "processed"
    effects()


def test_a_connection_lost_mid_event_is_a_5xx_then_the_redelivery_is_processed(
    kit: Kit, transaction: str
) -> None:
    """The server ends the connection in the middle of the event's transaction: nothing of
    it lands, the broken connection leaves the pool, and the redelivery is processed."""
    if not on_postgresql():
        pytest.skip("a connection ended by the server mid-transaction is a PostgreSQL fault")
    db, deliver = kit.db, kit.deliver
    event, effects = purchase(kit, "37")
    before = snapshot(db)
    with connection_killed_on_write(db, "paxpar_checkout_credit_ledger", "NEW.user_id = '37'"):
        assert deliver(event).status_code == 500
        assert snapshot(db) == before
    for _ in range(3):  # whichever pooled connection serves them, they work
        assert deliver(event).status_code == 200
    effects()
    assert event_rows(db)[event["id"]][0] == "processed"


def test_a_host_handler_raising_a_database_error_undoes_the_builtin_effects(kit: Kit) -> None:
    db, deliver = kit.db, kit.deliver
    event, effects = renewal(kit, "35")
    broken = {"on": True}

    @kit.checkout.webhook_handler("invoice.paid")
    def host(event: dict[str, Any]) -> None:
        db.session.execute(text("SELECT 1"))
        if broken["on"]:
            raise OperationalError("UPDATE host_orders ...", {}, Exception("connection reset"))

    before = snapshot(db)
    assert deliver(event).status_code == 500
    assert snapshot(db) == before
    broken["on"] = False
    assert deliver(event).get_json()["status"] == "processed"
    effects()


def test_a_locked_database_is_a_5xx_then_the_retry_succeeds(
    app_parts: Any, config: dict[str, Any], tmp_path: Path
) -> None:
    """SQLite's one writer (or a PostgreSQL lock held too long) makes the delivery wait, then
    fail: never a lost event, a 500 that Stripe retries."""
    event = EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="36", qty=5)
    body, headers = signed(event, WEBHOOK_SECRET)
    url = config["SQLALCHEMY_DATABASE_URI"]
    engine_options: dict[str, Any]
    if on_postgresql():
        options = f"-c search_path={schema_of(url)} -c lock_timeout=300"
        engine_options = {"connect_args": {"options": options}}
    else:
        engine_options = {"connect_args": {"timeout": 0.3}}
    locked = {**config, "SQLALCHEMY_ENGINE_OPTIONS": engine_options}

    with other_app_of(locked) as (app, db, checkout):
        client = app.test_client()
        db.session.rollback()
        holder = _hold_write_lock(db, url)
        try:
            started = time.monotonic()
            assert post(client, body, headers).status_code == 500
            assert time.monotonic() - started < 5
        finally:
            holder()
        assert checkout.credits(36) == 0
        assert post(client, body, headers).get_json()["status"] == "processed"
        assert post(client, body, headers).get_json()["status"] == "duplicate"
        assert checkout.credits(36) == 5
        assert [e["delta"] for e in checkout.ledger(36)] == [5]
        db.session.rollback()


def _hold_write_lock(db: SQLAlchemy, url: str) -> Callable[[], None]:
    """Another process's transaction holding the lock a webhook needs; returns its release."""
    if on_postgresql():
        conn = db.engine.connect()
        conn.execute(text("LOCK TABLE paxpar_checkout_balances IN ACCESS EXCLUSIVE MODE"))

        def release_pg() -> None:
            conn.rollback()
            conn.close()

        return release_pg
    raw = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    raw.execute("BEGIN IMMEDIATE")

    def release_sqlite() -> None:
        raw.rollback()
        raw.close()

    return release_sqlite


# -- Stripe, during checkout -------------------------------------------------------------------


@dataclass(frozen=True)
class StripeFault:
    inject: Callable[[StripeStub, str], None]
    status: int  # the user's answer
    words: str  # in its message
    answered: bool  # Stripe answered (a request id), or the network failed
    attempts: int  # requests made (the library retries what may be retried)


STRIPE_FAULTS = {
    "500": StripeFault(
        lambda s, p: s.fail_next("POST", p, status=500, times=2), 502, "Stripe failed", True, 2
    ),
    "429": StripeFault(
        lambda s, p: s.fail_next("POST", p, status=429, error_type="rate_limit_error", times=2),
        503,
        "rate-limiting",
        True,
        2,
    ),
    "invalid-request": StripeFault(
        lambda s, p: s.fail_next(
            "POST", p, status=400, error_type="invalid_request_error", message="Bad email."
        ),
        502,
        "Stripe rejected the request",
        True,
        1,
    ),
    "timeout": StripeFault(
        lambda s, p: s.delay_next("POST", p, seconds=1.6, times=2),
        503,
        "could not be reached",
        False,
        2,
    ),
    "dropped": StripeFault(
        lambda s, p: s.drop_next("POST", p, times=2), 503, "could not be reached", False, 2
    ),
}


# (what the user asks for, the Stripe call made slow, whether the user has paid before)
SLOW_STRIPE_CALLS = {
    "customer": ("/api/checkout/session?qty=2", "POST", "/v1/customers", False),
    "session": ("/api/checkout/session?qty=2", "POST", "/v1/checkout/sessions", True),
    "success": ("/api/checkout/success?session_id={made}", "GET", "/v1/checkout/sessions/", True),
    "portal": ("/api/checkout/portal", "POST", "/v1/billing_portal/sessions", True),
}


@pytest.mark.parametrize("call", sorted(SLOW_STRIPE_CALLS))
def test_a_slow_stripe_holds_no_database_connection(
    app_parts: Any, config: dict[str, Any], stripe: StripeStub, call: str
) -> None:
    """No transaction stays open across a call to Stripe: with a pool of one connection, a
    webhook is served while a request of the user waits on Stripe."""
    path, method, stripe_path, paid_before = SLOW_STRIPE_CALLS[call]
    url = config["SQLALCHEMY_DATABASE_URI"]
    pool: dict[str, Any] = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.5}
    if on_postgresql():
        pool["connect_args"] = {"options": f"-c search_path={schema_of(url)}"}
    event = EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="41", qty=4)
    body, headers = signed(event, WEBHOOK_SECRET)
    answers: list[Any] = []

    with other_app_of({**config, "SQLALCHEMY_ENGINE_OPTIONS": pool}) as (app, db, checkout):
        user = app.test_client()
        if paid_before:
            made = user.get("/api/checkout/session?qty=1", headers=as_user(40, **JSON))
            path = path.format(made=made.get_json()["id"])
        db.session.commit()
        stripe.delay_next(method, stripe_path, seconds=0.8)
        before = len(stripe.requests_to(method, stripe_path))

        def ask() -> None:
            with app.app_context():
                answers.append(app.test_client().get(path, headers=as_user(40, **JSON)))

        asking = threading.Thread(target=ask)
        asking.start()
        deadline = time.monotonic() + 5
        while len(stripe.requests_to(method, stripe_path)) == before:
            assert time.monotonic() < deadline, "the request never reached Stripe"
            time.sleep(0.01)
        answer = post(app.test_client(), body, headers)
        asking.join(5)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.get_json()["status"] == "processed"
        assert checkout.credits(41) == 4
    [asked] = answers
    assert asked.status_code in (200, 303), asked.get_data(as_text=True)


@one_era
@pytest.mark.parametrize("path", ["/v1/customers", "/v1/checkout/sessions"])
@pytest.mark.parametrize("fault", sorted(STRIPE_FAULTS))
def test_stripe_faults_during_checkout(
    kit: Kit, caplog: pytest.LogCaptureFixture, fault: str, path: str
) -> None:
    client, db, stripe = kit.client, kit.db, kit.stripe
    case = STRIPE_FAULTS[fault]
    case.inject(stripe, path)
    caplog.set_level(logging.INFO, logger="flask_paxpar_checkout")

    answer = client.get("/api/checkout/session?qty=3", headers=as_user(8, **JSON))

    assert answer.status_code == case.status
    body = answer.get_json()
    assert body["code"] == case.status and case.words in body["message"]
    assert kit.config["STRIPE_SECRET_KEY"] not in answer.get_data(as_text=True)
    attempts = stripe.requests_to("POST", path)
    assert len(attempts) == case.attempts  # the library's retries ...
    assert len({a.idempotency_key for a in attempts}) == 1  # ... reuse the key
    [line] = [r for r in caplog.records if r.name == "flask_paxpar_checkout"]
    assert line.levelno == logging.WARNING
    if case.answered:
        request_id = answer.headers["X-Stripe-Request-Id"]
        assert re.fullmatch(r"req_\w+", request_id)
        assert f"request_id={request_id}" in line.getMessage()
    else:
        assert "APIConnectionError" in line.getMessage()
    state = snapshot(db)
    assert state["sessions"] == []  # nothing half-made
    assert len(state["customers"]) == (1 if path == "/v1/checkout/sessions" else 0)

    # the user clicks again once Stripe is back: one customer, reused, and a session
    again = client.get("/api/checkout/session?qty=3", headers=as_user(8, **JSON))
    assert again.status_code == 200
    customers = stripe.requests_to("POST", "/v1/customers")
    assert len({c.idempotency_key for c in customers}) == 1
    state = snapshot(db)
    assert len(state["sessions"]) == 1 and len(state["customers"]) == 1
    created = {c.params.get("email") for c in customers}
    assert created == {"user8@example.com"}


def test_stripe_unreachable_gives_a_clear_page_to_a_browser(
    app_parts: Any, config: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    refused = {**config, "STRIPE_API_BASE": f"http://127.0.0.1:{free_port()}"}
    with other_app_of(refused) as (app, db, _):
        client = app.test_client()
        page = client.get(
            f"/api/checkout/session?price_id={PRICE_BASIC}", headers=as_user(9, **BROWSER)
        )
        assert page.status_code == 503
        assert page.mimetype == "text/html"
        assert "could not be reached" in page.get_data(as_text=True)
        assert "Traceback" not in page.get_data(as_text=True)
        api = client.get(
            f"/api/checkout/session?price_id={PRICE_BASIC}", headers=as_user(9, **JSON)
        )
        assert api.status_code == 503 and "could not be reached" in api.get_json()["message"]
        assert snapshot(db) == {k: [] for k in snapshot(db)}
    assert "APIConnectionError" in caplog.text


# -- a host handler that raises, fixed later ---------------------------------------------------


def test_failed_events_are_retried_by_the_cli_once_the_host_handler_is_fixed(kit: Kit) -> None:
    """A CRM outage fails a renewal and then the cancellation behind it; Stripe's retries
    fail too; once fixed, ``retry-failed`` applies them oldest first, each once."""
    db, checkout, deliver, events = kit.db, kit.checkout, kit.deliver, kit.events
    db.session.rollback()
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE host_crm (event_id VARCHAR(255) NOT NULL)"))
    down = {"on": True}

    def crm(event: dict[str, Any]) -> None:
        if down["on"]:
            raise ConnectionError("CRM unreachable")
        db.session.execute(text("INSERT INTO host_crm VALUES (:e)"), {"e": event["id"]})

    for kind in ("invoice.paid", "customer.subscription.deleted"):
        checkout.webhook_handler(kind)(crm)
    now = int(time.time())
    paid = events.invoice_paid(
        user_id="12", subscription_id="sub_12", price_id=PRICE_PRO, created=now - 100
    )
    deleted = events.subscription_deleted(
        user_id="12", subscription_id="sub_12", price_id=PRICE_PRO, created=now - 50
    )
    for event in (deleted, paid, deleted, paid):  # out of order, and retried by Stripe
        assert deliver(event).status_code == 500
    assert event_rows(db) == {deleted["id"]: ("failed", 2), paid["id"]: ("failed", 2)}

    runner = kit.app.test_cli_runner()
    still = runner.invoke(args=["checkout", "events", "retry-failed"])
    assert still.exit_code == 1 and "0 processed, 2 still failing" in still.output
    assert checkout.credits(12) == 0 and checkout.subscription(12) is None

    down["on"] = False
    fixed = runner.invoke(args=["checkout", "events", "retry-failed"])
    assert fixed.exit_code == 0 and "2 processed, 0 still failing" in fixed.output
    # oldest first: the renewal's credits, then the cancellation (credits kept)
    assert checkout.credits(12) == PRICES[PRICE_PRO]
    sub = checkout.subscription(12)
    assert sub is not None and sub.status == "canceled"
    assert deliver(paid).get_json()["status"] == "duplicate"  # Stripe's late retry
    again = runner.invoke(args=["checkout", "events", "retry-failed"])
    assert again.output.strip() == "0 processed, 0 still failing"
    crm_rows = db.session.execute(text("SELECT event_id FROM host_crm")).scalars().all()
    assert sorted(crm_rows) == sorted([paid["id"], deleted["id"]])  # each handled once
    db.session.rollback()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE host_crm"))
