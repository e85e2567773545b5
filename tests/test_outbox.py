"""The outbox's rules on a real database, the settings of deferred handlers, their
registration, and the ``outbox`` commands' answers to bad input."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import select, update

from flask_paxpar_checkout import ConfigurationError, PaxparCheckout
from flask_paxpar_checkout import outbox as ob
from flask_paxpar_checkout.clock import utcnow
from flask_paxpar_checkout.config import CheckoutConfig
from flask_paxpar_checkout.deferred import outbox_table
from flask_paxpar_checkout.testing import EventBuilder, new_id, signed
from tests.conftest import FQDN, PRICE_BASIC, WEBHOOK_SECRET

RUNS: list[str] = []


def send_the_email(event: dict[str, Any]) -> None:
    RUNS.append(event["id"])


def deliver(client: FlaskClient, event: dict[str, Any]) -> int:
    body, headers = signed(event, WEBHOOK_SECRET)
    response = client.post("/api/checkout/webhook", data=body, headers=headers)
    response.close()  # as a WSGI server does once the answer is sent
    return response.status_code


def payment_failed() -> dict[str, Any]:
    return EventBuilder(fqdn=FQDN).invoice_payment_failed(
        user_id="1", subscription_id=new_id("sub"), price_id=PRICE_BASIC
    )


@pytest.fixture(autouse=True)
def no_runs() -> None:
    RUNS.clear()


def test_retry_delays_double_from_the_backoff_up_to_ten_seconds() -> None:
    assert [ob.retry_delay(n, 1) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert [ob.retry_delay(n, 0.5) for n in range(1, 4)] == [0.5, 1, 2]
    assert ob.retry_delay(3, 0) == 0


def test_the_settings_have_their_defaults_and_refuse_bad_values() -> None:
    base = {"PAXPAR_FQDN": FQDN, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET}
    config = CheckoutConfig.from_mapping(base)
    assert (config.deferred_backoff, config.deferred_max_attempts) == (1.0, 5)
    assert config.outbox_resend_after == 300
    given = {
        "PAXPAR_CHECKOUT_DEFERRED_BACKOFF": "2.5",
        "PAXPAR_CHECKOUT_DEFERRED_MAX_ATTEMPTS": "3",
        "PAXPAR_CHECKOUT_OUTBOX_RESEND_AFTER": 60,
    }
    config = CheckoutConfig.from_mapping({**base, **given})
    assert (config.deferred_backoff, config.deferred_max_attempts) == (2.5, 3)
    assert config.outbox_resend_after == 60
    for key, value in [
        ("PAXPAR_CHECKOUT_DEFERRED_BACKOFF", "soon"),
        ("PAXPAR_CHECKOUT_DEFERRED_BACKOFF", -1),
        ("PAXPAR_CHECKOUT_DEFERRED_BACKOFF", float("nan")),
        ("PAXPAR_CHECKOUT_DEFERRED_BACKOFF", True),
        ("PAXPAR_CHECKOUT_DEFERRED_MAX_ATTEMPTS", 0),
        ("PAXPAR_CHECKOUT_OUTBOX_RESEND_AFTER", "5m"),
    ]:
        with pytest.raises(ConfigurationError, match=key):
            CheckoutConfig.from_mapping({**base, key: value})


def test_a_deferred_handler_needs_a_name_of_its_own(checkout: PaxparCheckout) -> None:
    checkout.webhook_handler("invoice.payment_failed", deferred=True)(send_the_email)
    checkout.webhook_handler("invoice.paid", deferred=True)(send_the_email)  # same one: fine

    def send_the_email_again(event: dict[str, Any]) -> None: ...

    send_the_email_again.__qualname__ = "send_the_email"
    with pytest.raises(ValueError, match=r"already registered as 'tests\.test_outbox\.send_"):
        checkout.webhook_handler("invoice.paid", deferred=True)(send_the_email_again)
    send_the_email_again.__module__ = "__main__"
    with pytest.raises(ValueError, match="__main__"):
        checkout.webhook_handler("invoice.paid", deferred=True)(send_the_email_again)
    with pytest.raises(ValueError, match="not a Stripe event type"):
        checkout.webhook_handler("invoice paid", deferred=True)


def test_rows_are_written_once_and_claimed_by_one_runner(app: Flask, db: SQLAlchemy) -> None:
    table = outbox_table(db)
    event = {"id": "evt_1", "type": "invoice.paid", "payload": "{}"}
    with db.engine.begin() as connection:
        written = ob.write_event_rows(connection, table, event, ["h.a", "h.b"])
        again = ob.write_event_rows(connection, table, event, ["h.a"])
    assert [k.handler for k in written] == ["h.a", "h.b"]
    assert again == []
    key = ob.OutboxKey("evt_1", "h.a")
    with db.engine.begin() as connection:
        first = ob.claim(connection, table, key, lease=300)
        second = ob.claim(connection, table, key, lease=300)
    assert (first.claimed, first.attempts, first.payload) == (True, 1, "{}")
    assert not second.claimed
    assert second.wait is not None and 299 < second.wait <= 300  # the runner's lease

    # The runner died: once its lease is over, another one claims the row.
    with db.engine.begin() as connection:
        past = utcnow() - timedelta(seconds=301)
        connection.execute(update(table).where(table.c.handler == "h.a").values(claimed_at=past))
        third = ob.claim(connection, table, key, lease=300)
    assert (third.claimed, third.attempts) == (True, 2)


def test_a_failure_backs_off_then_fails_for_good(app: Flask, db: SQLAlchemy) -> None:
    table = outbox_table(db)
    key = ob.OutboxKey("evt_2", "h.a")
    with db.engine.begin() as connection:
        ob.write_event_rows(
            connection, table, {"id": "evt_2", "type": "t", "payload": "{}"}, ["h.a"]
        )
        assert ob.claim(connection, table, key, lease=300).claimed
        delay = ob.mark_failed(connection, table, key, "boom 1", backoff=1, max_attempts=2)
        assert delay == 1
        early = ob.claim(connection, table, key, lease=300)
        assert not early.claimed and early.wait is not None and 0 < early.wait <= 1
        soon = utcnow() - timedelta(seconds=1)
        connection.execute(update(table).values(next_attempt_at=soon))
        assert ob.claim(connection, table, key, lease=300).claimed
        assert ob.mark_failed(connection, table, key, "boom 2", backoff=1, max_attempts=2) is None
        row = connection.execute(select(table)).one()
        assert (row.status, row.attempts, row.last_error) == ("failed", 2, "boom 2")
        assert ob.claim(connection, table, key, lease=300) == ob.Claim()
        assert ob.counts(connection, table) == {"pending": 0, "running": 0, "done": 0, "failed": 1}


def test_an_event_with_only_a_deferred_handler_is_processed(
    app: Flask, checkout: PaxparCheckout, client: FlaskClient
) -> None:
    checkout.webhook_handler("customer.created", deferred=True)(send_the_email)
    builder = EventBuilder(fqdn=FQDN)
    event = builder.event("customer.created", {"id": "cus_1", "metadata": builder.tags("1")})
    assert deliver(client, event) == 200
    assert [event["id"]] == RUNS


def test_a_failing_handler_in_the_transaction_writes_no_outbox_row(
    app: Flask, checkout: PaxparCheckout, client: FlaskClient, db: SQLAlchemy
) -> None:
    broken = [True]

    def check_the_books(event: dict[str, Any]) -> None:
        if broken[0]:
            raise RuntimeError("the books do not balance")

    checkout.webhook_handler("invoice.payment_failed")(check_the_books)
    checkout.webhook_handler("invoice.payment_failed", deferred=True)(send_the_email)
    event = payment_failed()
    assert deliver(client, event) == 500
    with db.engine.connect() as connection:
        assert connection.execute(select(outbox_table(db))).all() == []
    assert RUNS == []

    broken[0] = False
    result = app.test_cli_runner().invoke(args=["checkout", "events", "retry-failed"])
    assert result.exit_code == 0, result.output
    assert [event["id"]] == RUNS  # outside a request, right after the commit


def test_the_outbox_commands_refuse_bad_input_and_change_nothing(
    app: Flask, checkout: PaxparCheckout, client: FlaskClient, db: SQLAlchemy
) -> None:
    checkout.webhook_handler("invoice.payment_failed", deferred=True)(send_the_email)
    event = payment_failed()
    assert deliver(client, event) == 200
    runner = app.test_cli_runner()
    bad_status = runner.invoke(args=["checkout", "outbox", "list", "--status", "lost"])
    assert bad_status.exit_code == 2
    assert "'lost' is not one of" in bad_status.output
    unknown = runner.invoke(args=["checkout", "outbox", "retry", "evt_unknown"])
    assert unknown.exit_code == 1
    assert "no outbox row of event evt_unknown" in unknown.output
    none_failed = runner.invoke(args=["checkout", "outbox", "retry", event["id"]])
    assert none_failed.output.startswith("0 failed row(s) retried")
    listed = runner.invoke(args=["checkout", "outbox", "list"]).output
    assert f"{event['id']}  tests.test_outbox.send_the_email  done     attempts=1" in listed
    assert [event["id"]] == RUNS
