"""Syncs at the same time on one PostgreSQL database, and a sync racing live deliveries."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.errors import SyncBusy
from flask_paxpar_checkout.sync import SyncReport
from flask_paxpar_checkout.testing import EventBuilder, StripeStub, signed

from .conftest import FQDN, WEBHOOK_SECRET
from .helpers import count

pytestmark = pytest.mark.skipif(
    not (os.environ.get("PAXPAR_TEST_DATABASE_URL") or "").startswith("postgresql"),
    reason="concurrent writers need PostgreSQL (SQLite has one writer at a time)",
)
WAIT = 30  # seconds: a bound on every wait, so a broken build fails instead of hanging


def in_thread(app: Flask, work: Callable[[], Any], results: dict[str, Any], name: str) -> Any:
    def run() -> None:
        with app.app_context():
            try:
                results[name] = work()
            except Exception as exc:  # reported to the test, which asserts on it
                results[name] = exc

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def test_a_second_sync_says_another_is_running_while_the_first_works(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub
) -> None:
    builder = EventBuilder(fqdn=FQDN)
    for _ in range(3):
        stripe.add_event(builder.checkout_session_completed(user_id="1", qty=2))
    inside, go_on = threading.Event(), threading.Event()

    @checkout.webhook_handler("checkout.session.completed")
    def slow_host_handler(event: dict[str, Any]) -> None:
        inside.set()
        if not go_on.wait(WAIT):
            raise RuntimeError("the test never let the first sync go on")

    results: dict[str, Any] = {}
    first = in_thread(app, checkout.sync, results, "first")
    assert inside.wait(WAIT), "the first sync never reached a handler"

    with pytest.raises(SyncBusy):
        checkout.sync()
    go_on.set()
    first.join(WAIT)

    report = results["first"]
    assert isinstance(report, SyncReport) and report.ok and report.processed == 3
    assert checkout.credits(1) == 6
    again = checkout.sync()
    assert (again.processed, again.duplicate) == (0, 3)


def test_two_syncs_started_together_apply_each_event_once(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub
) -> None:
    builder = EventBuilder(fqdn=FQDN)
    for _ in range(120):
        stripe.add_event(builder.checkout_session_completed(user_id="1", qty=1))
    start = threading.Barrier(2, timeout=WAIT)
    results: dict[str, Any] = {}

    def sync_together() -> Any:
        start.wait()
        return checkout.sync()

    threads = [in_thread(app, sync_together, results, name) for name in ("a", "b")]
    for thread in threads:
        thread.join(WAIT)

    outcomes = [results["a"], results["b"]]
    reports = [r for r in outcomes if isinstance(r, SyncReport)]
    assert all(isinstance(r, (SyncReport, SyncBusy)) for r in outcomes), outcomes
    assert reports and all(r.ok for r in reports)
    assert sum(r.processed for r in reports) == 120
    assert checkout.credits(1) == 120 and count("ledger") == 120 and count("events") == 120


def test_a_sync_racing_live_deliveries_of_the_same_events_has_effects_once(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub
) -> None:
    builder = EventBuilder(fqdn=FQDN)
    events = [builder.checkout_session_completed(user_id="1", qty=1) for _ in range(40)]
    for event in events:
        stripe.add_event(event)
    start = threading.Barrier(2, timeout=WAIT)
    results: dict[str, Any] = {}

    def deliver_all() -> list[str]:
        client = app.test_client()
        start.wait()
        answers = []
        for event in reversed(events):  # the other way round from the sync
            body, headers = signed(event, WEBHOOK_SECRET)
            response = client.post("/api/checkout/webhook", data=body, headers=headers)
            answers.append(response.get_json()["status"])
        return answers

    def sync_all() -> SyncReport:
        start.wait()
        return checkout.sync()

    threads = [
        in_thread(app, deliver_all, results, "live"),
        in_thread(app, sync_all, results, "sync"),
    ]
    for thread in threads:
        thread.join(WAIT)

    live, report = results["live"], results["sync"]
    assert isinstance(report, SyncReport) and report.ok, report
    assert live.count("processed") + report.processed == 40
    assert live.count("duplicate") + report.duplicate == 40
    assert checkout.credits(1) == 40 and count("ledger") == 40
