"""POST /api/checkout/webhook: verification, routing to this instance, exactly-once effects."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_paxpar_checkout import PaxparCheckout, signals
from flask_paxpar_checkout.testing import EventBuilder, encode, sign_payload, signed

from .conftest import FQDN, PRICE_BASIC, PRICE_PRO, WEBHOOK_SECRET, other_app
from .helpers import count, ledger_total, rows

Deliver = Callable[..., Any]
URL = "/api/checkout/webhook"


def post_raw(client: FlaskClient, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post(URL, data=body, headers=headers)


# -- verification ------------------------------------------------------------------------


def _bad_deliveries(event: dict[str, Any]) -> list[tuple[str, bytes, str | None, str]]:
    body = encode(event)
    good = sign_payload(body, WEBHOOK_SECRET)
    now = int(time.time())
    return [
        ("missing header", body, None, "Missing Stripe-Signature"),
        ("empty header", body, "", "Missing Stripe-Signature"),
        ("garbled header", body, "nonsense", "Malformed"),
        ("no v1 scheme", body, f"t={now},v0=abc", "Malformed"),
        ("wrong secret", body, sign_payload(body, "whsec_other"), "No signature matches"),
        (
            "tampered body",
            body.replace(b'"livemode": false', b'"livemode": true'),
            good,
            "No signature matches",
        ),
        ("stale timestamp", body, sign_payload(body, WEBHOOK_SECRET, now - 301), "tolerance"),
        ("not utf-8", b"\xff\xfe" + body, sign_payload(b"x", WEBHOOK_SECRET), "UTF-8"),
        # The checks come in order: the header's form, its time, then the signature.
        ("stale and wrong", body, sign_payload(body, "whsec_other", now - 301), "tolerance"),
        ("timestamp not a number", body, f"t=soon,v1={'0' * 64}", "Malformed"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_unverified_deliveries_are_refused_and_change_nothing(
    client: FlaskClient, checkout: PaxparCheckout, case: int
) -> None:
    event = EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="1", qty=5)
    name, body, signature, reason = _bad_deliveries(event)[case]
    ran: list[str] = []
    checkout.webhook_handler("checkout.session.completed")(lambda e: ran.append(e["id"]))
    with signals.webhook_received.connected_to(lambda *a, **k: ran.append("signal")):
        response = post_raw(client, body, signature)

    assert response.status_code == 400, name
    assert reason in response.get_json()["message"], name
    assert response.get_json()["code"] == 400
    assert ran == []
    assert count("events") == 0
    assert checkout.credits(1) == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a Stripe event"),
        (b'{"object": "event", "id": "evt_1", "type": "x"}', "lacks"),
        (
            b'{"object": "event", "id": "x_1", "type": "invoice.paid", "created": 1,'
            b' "data": {"object": {}}}',
            "lacks",
        ),
    ],
)
def test_signed_garbage_is_refused(client: FlaskClient, body: bytes, reason: str) -> None:
    response = post_raw(client, body, sign_payload(body, WEBHOOK_SECRET))
    assert response.status_code == 400
    assert reason in response.get_json()["message"]
    assert count("events") == 0


def test_any_of_several_secrets_verifies(
    app_parts: Any, config: dict[str, Any], checkout: PaxparCheckout
) -> None:
    event = EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="1", qty=5)
    body = encode(event)
    with other_app({**config, "STRIPE_WEBHOOK_SECRET": "whsec_old, whsec_new"}) as (
        app,
        _,
        checkout,
    ):
        client = app.test_client()
        answer = post_raw(client, body, sign_payload(body, "whsec_new"))
        assert answer.status_code == 200, answer.get_json()
        assert answer.get_json()["status"] == "processed", answer.get_json()
        assert post_raw(client, body, sign_payload(body, "whsec_third")).status_code == 400
        assert checkout.credits(1) == 5


def test_huge_body_is_refused_before_reading(client: FlaskClient) -> None:
    body = b"{" + b" " * (1024 * 1024 + 1) + b"}"
    response = post_raw(client, body, sign_payload(body, WEBHOOK_SECRET))
    assert response.status_code == 413
    assert response.get_json()["code"] == 413


# -- routing -------------------------------------------------------------------------------


def test_another_instances_event_is_ignored(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    other = EventBuilder(fqdn="prod.paxpar.tech", era=events.era)
    for event in (
        other.checkout_session_completed(user_id="1", qty=5),
        other.invoice_paid(user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC),
    ):
        response = deliver(event)
        assert response.status_code == 200
        assert response.get_json()["status"] == "ignored"
        assert "prod.paxpar.tech" in response.get_json()["reason"]
    assert checkout.credits(1) == 0
    assert checkout.subscription(1) is None
    assert rows("events") == []  # another instance's customers are not stored here


def test_untagged_events_are_ignored_unless_accepted(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    invoice = events.invoice_paid(
        user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC, tagged=False
    )
    response = deliver(invoice)
    assert response.get_json() == {
        "status": "ignored",
        "event": invoice["id"],
        "reason": "untagged: the object carries no paxpar_fqdn metadata",
    }
    [row] = rows("events")
    assert (row.status, row.reason) == ("ignored", response.get_json()["reason"])


def test_unknown_types_are_ignored_with_200(deliver: Deliver, events: EventBuilder) -> None:
    event = events.event(
        "payment_intent.created",
        {"object": "payment_intent", "id": "pi_1", "metadata": events.tags("1")},
    )
    response = deliver(event)
    assert response.status_code == 200
    assert response.get_json()["reason"] == "no handler for payment_intent.created"


# -- one-time purchases ----------------------------------------------------------------------


def test_paid_purchase_adds_credits_once(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    event = events.checkout_session_completed(user_id="42", qty=12)
    assert deliver(event).get_json()["status"] == "processed"
    assert deliver(event).get_json()["status"] == "duplicate"
    assert checkout.credits("42") == 12
    assert checkout.credits(42) == 12

    # the same session through another event (a redelivery under a new id) grants nothing more
    again = events.event("checkout.session.completed", event["data"]["object"])
    assert deliver(again).get_json()["status"] == "processed"
    assert checkout.credits(42) == 12
    [entry] = checkout.ledger(42)
    assert (entry["delta"], entry["reason"], entry["balance_after"]) == (12, "purchase", 12)
    assert entry["stripe_object_id"] == event["data"]["object"]["id"]


def test_delayed_payment_credits_on_async_success(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    obj = events.checkout_session(user_id="3", qty=7, payment_status="unpaid")
    deliver(events.event("checkout.session.completed", obj))
    assert checkout.credits(3) == 0
    obj["payment_status"] = "paid"
    deliver(events.event("checkout.session.async_payment_succeeded", obj))
    assert checkout.credits(3) == 7


def test_stored_event_record(deliver: Deliver, events: EventBuilder) -> None:
    event = events.checkout_session_completed(user_id="42", qty=1)
    deliver(event)
    [row] = rows("events")
    assert (row.id, row.type, row.fqdn, row.api_version) == (
        event["id"],
        "checkout.session.completed",
        FQDN,
        events.era,
    )
    assert (row.created, row.status, row.attempts, row.last_error) == (
        event["created"],
        "processed",
        1,
        None,
    )
    assert json.loads(row.payload) == event


# -- subscriptions ---------------------------------------------------------------------------


def _subscribe(
    events: EventBuilder, user: str, sub: str, price: str = PRICE_BASIC, **kw: Any
) -> dict[str, Any]:
    return events.checkout_session_completed(
        user_id=user, mode="subscription", price_id=price, subscription_id=sub, **kw
    )


def test_subscription_checkout_then_invoice_paid(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    start = _subscribe(events, "8", "sub_8", customer_id="cus_8")
    assert deliver(start).status_code == 200
    sub = checkout.subscription(8)
    assert sub is not None
    assert (sub.id, sub.price_id, sub.status, sub.customer_id) == (
        "sub_8",
        PRICE_BASIC,
        "active",
        "cus_8",
    )
    end = int(time.time()) + 30 * 86400
    paid = events.invoice_paid(
        user_id="8",
        subscription_id="sub_8",
        price_id=PRICE_BASIC,
        period_end=end,
        customer_id="cus_8",
    )
    assert deliver(paid).get_json()["status"] == "processed"
    assert checkout.credits(8) == 100
    sub = checkout.subscription(8)
    assert sub is not None and sub.status == "active" and sub.current_period_end == end
    assert sub.is_active


def test_invoice_paid_before_checkout_completed(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    now = int(time.time())
    paid = events.invoice_paid(
        user_id="8",
        subscription_id="sub_8",
        price_id=PRICE_PRO,
        created=now,
        period_end=now + 1000,
    )
    start = _subscribe(events, "8", "sub_8", price=PRICE_PRO, created=now - 5)
    deliver(paid)
    deliver(start)
    sub = checkout.subscription(8)
    assert sub is not None
    assert (sub.status, sub.price_id, sub.current_period_end) == ("active", PRICE_PRO, now + 1000)
    assert checkout.credits(8) == 500


def test_each_invoice_resets_credits_once(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    now = int(time.time())
    first = events.invoice_paid(
        user_id="5", subscription_id="sub_5", price_id=PRICE_BASIC, created=now - 100
    )
    deliver(first)
    checkout.spend_credits(5, 30)
    assert checkout.credits(5) == 70
    assert deliver(first).get_json()["status"] == "duplicate"
    assert deliver(events.event("invoice.paid", first["data"]["object"])).status_code == 200
    assert checkout.credits(5) == 70  # the same invoice under another event id: no reset

    second = events.invoice_paid(  # paid after the spend, in Stripe's timeline too
        user_id="5", subscription_id="sub_5", price_id=PRICE_BASIC, created=now + 5
    )
    deliver(second)
    assert checkout.credits(5) == 100
    reasons = [e["reason"] for e in checkout.ledger(5)]
    assert reasons == ["subscription_reset", "spend", "subscription_reset"]


def test_an_older_invoice_arriving_late_changes_nothing(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    now = int(time.time())
    new = events.invoice_paid(
        user_id="5",
        subscription_id="sub_5",
        price_id=PRICE_BASIC,
        created=now,
        period_end=now + 2000,
    )
    old = events.invoice_paid(
        user_id="5",
        subscription_id="sub_5",
        price_id=PRICE_BASIC,
        created=now - 3000,
        period_end=now - 1000,
    )
    deliver(new)
    checkout.spend_credits(5, 10)
    assert deliver(old).get_json()["status"] == "processed"
    assert checkout.credits(5) == 90
    sub = checkout.subscription(5)
    assert sub is not None and sub.current_period_end == now + 2000


def test_payment_failed_marks_past_due_and_signals(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder, app: Flask
) -> None:
    now = int(time.time())
    deliver(
        events.invoice_paid(
            user_id="6", subscription_id="sub_6", price_id=PRICE_BASIC, created=now - 100
        )
    )
    checkout.spend_credits(6, 1)
    told: list[dict[str, Any]] = []

    def tell(sender: Flask, **kw: Any) -> None:
        told.append(kw)

    failed = events.invoice_payment_failed(
        user_id="6", subscription_id="sub_6", price_id=PRICE_BASIC, created=now
    )
    with signals.payment_failed.connected_to(tell, app):
        assert deliver(failed).get_json()["status"] == "processed"
    sub = checkout.subscription(6)
    assert sub is not None and sub.status == "past_due" and not sub.is_active
    assert checkout.credits(6) == 99
    assert len(told) == 1
    assert told[0]["user_id"] == "6" and told[0]["subscription_id"] == "sub_6"
    assert told[0]["invoice"]["id"] == failed["data"]["object"]["id"]

    # the retried invoice is paid: active again
    deliver(
        events.invoice_paid(
            user_id="6", subscription_id="sub_6", price_id=PRICE_BASIC, created=now + 1
        )
    )
    sub = checkout.subscription(6)
    assert sub is not None and sub.status == "active"


def test_a_stale_payment_failure_is_ignored(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    now = int(time.time())
    deliver(
        events.invoice_paid(user_id="6", subscription_id="sub_6", price_id=PRICE_BASIC, created=now)
    )
    deliver(
        events.invoice_payment_failed(
            user_id="6", subscription_id="sub_6", price_id=PRICE_BASIC, created=now - 500
        )
    )
    sub = checkout.subscription(6)
    assert sub is not None and sub.status == "active"


def test_credits_disabled_leaves_credits_alone(app_parts: Any, config: dict[str, Any]) -> None:
    events = EventBuilder(fqdn=FQDN)
    with other_app({**config, "PAXPAR_CHECKOUT_CREDITS_ENABLED": False}) as (
        app,
        _,
        checkout,
    ):
        client = app.test_client()
        for event in (
            events.checkout_session_completed(user_id="1", qty=5),
            events.invoice_paid(user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC),
        ):
            body = encode(event)
            assert post_raw(client, body, sign_payload(body, WEBHOOK_SECRET)).status_code == 200
        assert checkout.credits(1) == 0
        assert count("ledger") == 0
        sub = checkout.subscription(1)
        assert sub is not None and sub.status == "active"
        account = client.get("/api/checkout/account", headers={"X-Test-User": "1"}).get_json()
        assert account["credits"] is None and account["credits_enabled"] is False


# -- failures, handlers, signals -------------------------------------------------------------


def test_a_failing_handler_rolls_back_and_is_retried(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder, app: Flask
) -> None:
    broken = {"on": True}
    seen: list[str] = []

    @checkout.webhook_handler("checkout.session.completed")
    def host_handler(event: dict[str, Any]) -> None:
        seen.append(event["id"])
        if broken["on"]:
            raise RuntimeError("mail server down")

    changes: list[Any] = []
    event = events.checkout_session_completed(user_id="9", qty=4)
    with signals.credits_changed.connected_to(lambda s, **kw: changes.append(kw), app):
        response = deliver(event)
        assert response.status_code == 500
        assert "will retry" in response.get_json()["message"]
        assert "mail server down" not in response.get_data(as_text=True)
        assert checkout.credits(9) == 0  # the built-in grant was rolled back with it
        assert changes == []  # no signal for an effect that did not land
        [row] = rows("events")
        assert (row.status, row.attempts) == ("failed", 1)
        assert "RuntimeError: mail server down" in row.last_error
        assert "Traceback" in row.last_error

        assert deliver(event).status_code == 500  # Stripe retries; still broken
        assert rows("events")[0].attempts == 2

        broken["on"] = False
        assert deliver(event).get_json()["status"] == "processed"
    assert checkout.credits(9) == 4
    assert [c["after"] for c in changes] == [4]
    [row] = rows("events")
    assert (row.status, row.attempts) == ("processed", 3)
    assert seen == [event["id"]] * 3
    assert deliver(event).get_json()["status"] == "duplicate"


def test_host_handler_writes_share_the_event_transaction(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder, db: Any
) -> None:
    from sqlalchemy import text

    db.session.rollback()
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS host_audit"))
        conn.execute(text("CREATE TABLE host_audit (event_id VARCHAR(255))"))

    @checkout.webhook_handler("invoice.paid")
    def audit(event: dict[str, Any]) -> None:
        db.session.execute(text("INSERT INTO host_audit VALUES (:e)"), {"e": event["id"]})
        if event["data"]["object"]["id"].endswith("boom"):
            raise ValueError("boom")

    ok = events.invoice_paid(user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC)
    bad = events.invoice_paid(
        user_id="2", subscription_id="sub_2", price_id=PRICE_BASIC, invoice_id="in_boom"
    )
    assert deliver(ok).status_code == 200
    assert deliver(bad).status_code == 500
    audited = db.session.execute(text("SELECT event_id FROM host_audit")).scalars().all()
    assert audited == [ok["id"]]
    assert checkout.credits(2) == 0 and checkout.subscription(2) is None
    db.session.rollback()  # end the read transaction before the DDL (PostgreSQL locks)
    with db.engine.begin() as conn:
        conn.execute(text("DROP TABLE host_audit"))


def test_signals_follow_the_commit(deliver: Deliver, events: EventBuilder, app: Flask) -> None:
    got: list[tuple[str, Any]] = []
    receivers = {
        name: (lambda n: lambda sender, **kw: got.append((n, sender)))(name)
        for name in (
            "webhook_received",
            "webhook_processed",
            "webhook_ignored",
            "credits_changed",
            "subscription_changed",
        )
    }
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver)
    try:
        deliver(events.invoice_paid(user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC))
        deliver(EventBuilder(fqdn="prod.paxpar.tech").checkout_session_completed(user_id="1"))
    finally:
        for name, receiver in receivers.items():
            getattr(signals, name).disconnect(receiver)
    assert [n for n, _ in got] == [
        "webhook_received",
        "subscription_changed",
        "credits_changed",
        "webhook_processed",
        "webhook_received",
        "webhook_ignored",
    ]
    assert all(sender is app for _, sender in got)


def test_handler_registry_holds_strong_references(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    import gc

    calls: list[str] = []

    def register() -> None:
        checkout.webhook_handler("invoice.payment_failed")(lambda e: calls.append(e["id"]))

    register()
    gc.collect()
    event = events.invoice_payment_failed(
        user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC
    )
    deliver(event)
    assert calls == [event["id"]]


def test_credit_ledger_never_drifts_from_the_balance(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    now = int(time.time())
    deliver(events.checkout_session_completed(user_id="4", qty=30, created=now - 300))
    checkout.spend_credits(4, 5)  # effective now: after every event of this history
    paid = events.invoice_paid(
        user_id="4", subscription_id="sub_4", price_id=PRICE_BASIC, created=now - 200
    )
    deliver(paid)
    checkout.spend_credits(4, 7, memo="export")
    deliver(events.checkout_session_completed(user_id="4", qty=3, created=now - 100))
    # In Stripe's timeline: +30, reset to 100, +3, then the two spends.
    assert checkout.credits(4) == 91
    assert ledger_total("4") == 91
    entries = list(reversed(checkout.ledger(4)))
    assert [e["balance_after"] for e in entries] == [30, 100, 103, 98, 91]
    assert [e["delta"] for e in entries] == [30, 70, 3, -5, -7]


def test_observed_engines_take_sqlalchemys_path_with_the_same_effects(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder, db: Any
) -> None:
    """With a listener on the engine (tracing, query recording), every statement goes through
    SQLAlchemy's execution, where the listener sees it; the effects are the same."""
    from sqlalchemy import event as sa_event

    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa_event.listen(db.engine, "before_cursor_execute", record)
    now = int(time.time())
    try:
        purchase = events.checkout_session_completed(user_id="11", qty=9, created=now - 20)
        assert deliver(purchase).get_json()["status"] == "processed"
        assert deliver(purchase).get_json()["status"] == "duplicate"
        paid = events.invoice_paid(
            user_id="11", subscription_id="sub_11", price_id=PRICE_PRO, created=now - 10
        )
        deliver(paid)
        checkout.spend_credits(11, 20)
    finally:
        sa_event.remove(db.engine, "before_cursor_execute", record)
    assert any("paxpar_checkout_events" in s for s in seen)
    assert any("paxpar_checkout_credit_ledger" in s for s in seen)
    assert checkout.credits(11) == 480
    assert [e["reason"] for e in checkout.ledger(11)] == ["spend", "subscription_reset", "purchase"]
    sub = checkout.subscription(11)
    assert sub is not None and (sub.status, sub.price_id) == ("active", PRICE_PRO)


def test_an_event_runs_in_a_transaction_of_its_own_unless_the_host_takes_part(
    app: Flask,
    db: Any,
    client: FlaskClient,
    checkout: PaxparCheckout,
    deliver: Deliver,
    events: EventBuilder,
) -> None:
    """Only built-in handlers: the plugin's own transaction, beside the ORM session. A host
    handler, or the request's session already at work: ``db.session``'s transaction, which
    the host's writes share."""
    from sqlalchemy import event as sa_event
    from sqlalchemy.orm import Session

    begun: list[Any] = []

    def on_begin(session: Any, transaction: Any, connection: Any) -> None:
        begun.append(session)

    sa_event.listen(Session, "after_begin", on_begin)
    now = int(time.time())
    try:
        own = events.checkout_session_completed(user_id="21", qty=2, created=now - 30)
        assert deliver(own).get_json()["status"] == "processed"
        assert begun == []

        ran: list[str] = []
        checkout.webhook_handler("checkout.session.completed")(lambda e: ran.append(e["id"]))
        shared = events.checkout_session_completed(user_id="21", qty=3, created=now - 20)
        assert deliver(shared).get_json()["status"] == "processed"
        assert ran == [shared["id"]] and len(begun) == 1

        # The session holds an uncommitted spend when the event comes: the event joins that
        # transaction (on SQLite, a second writer would wait for it until it timed out).
        db.session.commit()
        checkout.spend_credits(21, 4, commit=False)
        paid = events.invoice_paid(  # paid after the spend, in Stripe's timeline too
            user_id="21", subscription_id="sub_21", price_id=PRICE_BASIC, created=now + 5
        )
        body, headers = signed(paid, WEBHOOK_SECRET)
        answer = client.post("/api/checkout/webhook", data=body, headers=headers)
        assert answer.get_json()["status"] == "processed"
        assert not db.session().in_transaction()  # committed with the event
    finally:
        sa_event.remove(Session, "after_begin", on_begin)
    assert checkout.credits(21) == 100
    assert [e["reason"] for e in checkout.ledger(21)] == [
        "subscription_reset",
        "spend",
        "purchase",
        "purchase",
    ]


def test_a_second_late_reset_makes_the_zero_floors_adjustment_again(
    deliver: Deliver, checkout: PaxparCheckout, events: EventBuilder
) -> None:
    """Credits spent, then two renewals paid before the spends arrive late: each fold
    stops the balance at zero again, with one adjustment, and the ledger still sums."""
    start = int(time.time()) - 1000

    def renewal(n: int) -> dict[str, Any]:
        return events.invoice_paid(
            user_id="9", subscription_id="sub_9", price_id=PRICE_BASIC, created=start + n
        )

    deliver(renewal(0))
    deliver(events.checkout_session_completed(user_id="9", qty=1, created=start + 10))
    checkout.spend_credits(9, 1)
    checkout.spend_credits(9, 100)
    assert checkout.credits(9) == 0
    for late in (20, 30):
        deliver(renewal(late))  # 100, then the two spends: 100 - 1 - 100 stops at 0
        assert checkout.credits(9) == 0
        assert ledger_total("9") == 0
        adjustments = [e for e in checkout.ledger(9) if e["reason"] == "adjustment"]
        assert [e["delta"] for e in adjustments] == [1]
