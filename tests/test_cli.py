"""flask checkout events ...: list, show, replay, retry-failed, prune."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import update

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.clock import utcnow
from flask_paxpar_checkout.state import current_state
from flask_paxpar_checkout.testing import EventBuilder

from .conftest import FQDN, PRICE_BASIC
from .helpers import rows


def run(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["checkout", "events", *args])


def test_list_show_and_filters(app: Flask, deliver: Callable[..., Any]) -> None:
    events = EventBuilder(fqdn=FQDN)
    paid = events.invoice_paid(user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC)
    deliver(paid)
    deliver(events.event("customer.created", {"object": "customer", "id": "cus_1", "metadata": {}}))

    listed = run(app, "list")
    assert listed.exit_code == 0
    assert paid["id"] in listed.output and "ignored" in listed.output
    only_failed = run(app, "list", "--status", "failed")
    assert only_failed.output == ""
    by_type = run(app, "list", "--type", "invoice.paid")
    assert by_type.output.count("\n") == 1 and paid["id"] in by_type.output

    shown = run(app, "show", paid["id"])
    assert shown.exit_code == 0
    assert "status: processed" in shown.output and '"invoice.paid"' in shown.output
    assert run(app, "show", "evt_nope").exit_code == 1


def test_retry_failed_after_the_handler_is_fixed(
    app: Flask, checkout: PaxparCheckout, deliver: Callable[..., Any]
) -> None:
    broken = {"on": True}

    @checkout.webhook_handler("checkout.session.completed")
    def flaky(event: dict[str, Any]) -> None:
        if broken["on"]:
            raise ConnectionError("CRM unreachable")

    event = EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="2", qty=6)
    assert deliver(event).status_code == 500
    still = run(app, "retry-failed")
    assert still.exit_code == 1 and "0 processed, 1 still failing" in still.output
    assert checkout.credits(2) == 0

    broken["on"] = False
    fixed = run(app, "retry-failed")
    assert fixed.exit_code == 0 and "1 processed, 0 still failing" in fixed.output
    assert checkout.credits(2) == 6
    [row] = rows("events")
    assert (row.status, row.attempts) == ("processed", 3)
    assert run(app, "retry-failed").output.strip() == "0 processed, 0 still failing"
    assert deliver(event).get_json()["status"] == "duplicate"


def test_replay_is_idempotent_for_built_in_effects(
    app: Flask, checkout: PaxparCheckout, deliver: Callable[..., Any]
) -> None:
    event = EventBuilder(fqdn=FQDN).checkout_session_completed(user_id="3", qty=5)
    deliver(event)
    replayed = run(app, "replay", event["id"])
    assert replayed.exit_code == 0 and f"{event['id']}: processed" in replayed.output
    assert checkout.credits(3) == 5
    assert rows("events")[0].attempts == 2


def test_prune_keeps_recent_and_failed_events(
    app: Flask, checkout: PaxparCheckout, deliver: Callable[..., Any]
) -> None:
    events = EventBuilder(fqdn=FQDN)
    old_ok = events.checkout_session_completed(user_id="1")
    recent = events.checkout_session_completed(user_id="1")

    @checkout.webhook_handler("invoice.paid")
    def fail(event: dict[str, Any]) -> None:
        raise RuntimeError("x")

    old_failed = events.invoice_paid(user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC)
    for e in (old_ok, recent, old_failed):
        deliver(e)
    state = current_state()
    t = state.tables.events
    state.database.session.execute(
        update(t)
        .where(t.c.id.in_([old_ok["id"], old_failed["id"]]))
        .values(received_at=utcnow() - timedelta(days=100))
    )
    state.database.session.commit()

    assert run(app, "prune", "--older-than", "soon").exit_code == 2
    pruned = run(app, "prune", "--older-than", "90d")
    assert pruned.exit_code == 0 and "deleted 1 event" in pruned.output
    assert {r.id for r in rows("events")} == {recent["id"], old_failed["id"]}
    run(app, "prune", "--older-than", "90d", "--include-failed")
    assert {r.id for r in rows("events")} == {recent["id"]}
