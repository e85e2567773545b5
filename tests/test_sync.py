"""flask checkout sync: missed events fetched from the local Stripe and applied exactly once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from flask_paxpar_checkout import PaxparCheckout, signals
from flask_paxpar_checkout.errors import InvalidSyncWindow, SyncBusy
from flask_paxpar_checkout.state import current_state
from flask_paxpar_checkout.sync import SyncObserver, run_sync
from flask_paxpar_checkout.sync_lease import Lease, sync_state_table
from flask_paxpar_checkout.sync_window import RETENTION, choose_window, parse_since
from flask_paxpar_checkout.testing import EventBuilder, StripeStub

from .conftest import FQDN, PRICE_BASIC
from .helpers import count, rows

DAY = 86400


@pytest.fixture
def builder() -> EventBuilder:
    return EventBuilder(fqdn=FQDN)


def missed(stripe: StripeStub, builder: EventBuilder) -> list[dict[str, Any]]:
    """Two events Stripe kept that never reached the webhook: a plan paid, credits bought."""
    paid = builder.invoice_paid(user_id="1", subscription_id="sub_1", price_id=PRICE_BASIC)
    bought = builder.checkout_session_completed(user_id="2", qty=7)
    return [stripe.add_event(paid), stripe.add_event(bought)]


def sync_cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["checkout", "sync", *args])


def checkpoint(app: Flask) -> int | None:
    table = sync_state_table(current_state().database.db.metadata)
    with current_state().database.db.engine.connect() as conn:
        return conn.execute(select(table.c.checkpoint)).scalar()


def test_missed_events_are_applied_once_and_a_second_sync_changes_nothing(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub, builder: EventBuilder
) -> None:
    paid, bought = missed(stripe, builder)

    report = checkout.sync()

    assert (report.fetched, report.processed, report.duplicate, report.failed) == (2, 2, 0, 0)
    assert sorted(report.processed_events) == sorted([paid["id"], bought["id"]])
    assert checkout.credits(1) == 100 and checkout.credits(2) == 7
    assert checkout.subscription(1).status == "active"  # type: ignore[union-attr]
    changes = {c.user_id: c for c in report.changes}
    assert (changes["1"].credits_before, changes["1"].credits_after) == (None, 100)
    assert (changes["1"].status_before, changes["1"].status_after) == (None, "active")
    assert report.ok and report.checkpoint_moved
    listed = stripe.requests_to("GET", "/v1/events")[0].params
    assert sorted(listed["types"]) == current_state().pipeline.handled_types()
    assert listed["limit"] == "100"

    again = checkout.sync()

    assert (again.fetched, again.processed, again.duplicate) == (2, 0, 2)
    assert again.changes == [] and again.processed_events == []
    assert checkout.credits(1) == 100 and checkout.credits(2) == 7
    assert count("ledger") == 2 and count("events") == 2


@pytest.mark.parametrize("live_first", [True, False], ids=["live-then-sync", "sync-then-live"])
def test_a_sync_overlapping_live_deliveries_has_effects_once(
    app: Flask,
    checkout: PaxparCheckout,
    stripe: StripeStub,
    builder: EventBuilder,
    deliver: Callable[..., Any],
    live_first: bool,
) -> None:
    paid, _ = missed(stripe, builder)
    if live_first:
        assert deliver(paid).get_json()["status"] == "processed"
    report = checkout.sync()
    if not live_first:
        assert deliver(paid).get_json()["status"] == "duplicate"

    assert report.processed == (1 if live_first else 2)
    assert report.duplicate == (1 if live_first else 0)
    assert checkout.credits(1) == 100 and checkout.credits(2) == 7
    assert len([r for r in rows("ledger") if r.user_id == "1"]) == 1


def test_another_instances_events_are_left_alone(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub
) -> None:
    other = EventBuilder(fqdn="prod.paxpar.tech")
    stripe.add_event(other.checkout_session_completed(user_id="1", qty=5))

    report = checkout.sync()

    assert (report.fetched, report.ignored, report.processed) == (1, 1, 0)
    assert count("events") == 0 and checkout.credits(1) == 0
    assert report.ok


def test_more_than_a_hundred_events_are_paginated(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub, builder: EventBuilder
) -> None:
    for _ in range(150):
        stripe.add_event(builder.checkout_session_completed(user_id="1", qty=1))

    report = checkout.sync()

    assert (report.fetched, report.processed) == (150, 150)
    assert checkout.credits(1) == 150
    pages = stripe.requests_to("GET", "/v1/events")
    assert len(pages) == 2
    assert "starting_after" not in pages[0].params
    assert pages[1].params["starting_after"].startswith("evt_")


class _FailPageTwo(SyncObserver):
    """Breaks Stripe for the next page while the first one is being applied."""

    def __init__(self, stripe: StripeStub) -> None:
        self.stripe = stripe
        self.armed = True
        self.problems: list[str] = []

    def event(self, event_id: str, outcome: str) -> None:
        if self.armed:
            self.armed = False
            # Once, and once more for the stripe library's one retry (the tests' setting).
            self.stripe.fail_next("GET", "/v1/events", status=500, times=2)

    def problem(self, message: str) -> None:
        self.problems.append(message)


def test_a_stripe_error_on_page_two_then_a_rerun_ends_right(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub, builder: EventBuilder
) -> None:
    for _ in range(130):
        stripe.add_event(builder.checkout_session_completed(user_id="1", qty=1))
    observer = _FailPageTwo(stripe)

    broken = run_sync(observer=observer)

    assert not broken.ok and not broken.complete and not broken.checkpoint_moved
    assert broken.processed == 100 and checkout.credits(1) == 100
    assert any("Could not list events (after evt_" in p for p in observer.problems)
    assert checkpoint(app) is None

    rerun = checkout.sync()

    assert rerun.ok and (rerun.processed, rerun.duplicate) == (30, 100)
    assert checkout.credits(1) == 130 and count("ledger") == 130


def test_a_failing_handler_fails_the_sync_and_leaves_the_checkpoint(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub, builder: EventBuilder
) -> None:
    broken = {"on": True}

    @checkout.webhook_handler("invoice.paid")
    def host_handler(event: dict[str, Any]) -> None:
        if broken["on"]:
            raise RuntimeError("host bug")

    paid, _ = missed(stripe, builder)
    result = sync_cli(app, "--json")

    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["failed"], summary["processed"], summary["ok"]) == (1, 1, False)
    assert summary["failed_events"] == [paid["id"]]
    assert "host bug" in result.stderr
    assert checkpoint(app) is None and checkout.credits(1) == 0

    broken["on"] = False
    fixed = checkout.sync()
    assert fixed.ok and fixed.processed == 1 and checkout.credits(1) == 100


def test_the_checkpoint_sets_the_next_window_and_live_deliveries_do_not_move_it(
    app: Flask,
    checkout: PaxparCheckout,
    stripe: StripeStub,
    builder: EventBuilder,
    deliver: Callable[..., Any],
) -> None:
    first = checkout.sync()
    assert first.ok and first.subscriptions  # a first sync covers the 30 days, and resyncs
    started = checkpoint(app)
    assert started is not None
    deliver(builder.checkout_session_completed(user_id="1", qty=3))
    assert checkpoint(app) == started

    second = checkout.sync()

    gte = stripe.requests_to("GET", "/v1/events")[-1].params["created"]["gte"]
    assert int(gte) == started - 3600 == second.since
    assert not second.subscriptions  # a recent checkpoint: no gap older than the events


def test_since_overrides_the_window_and_bad_input_changes_nothing(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub, builder: EventBuilder
) -> None:
    now = int(time.time())
    stripe.add_event(builder.checkout_session_completed(user_id="1", qty=4, created=now - 5 * DAY))
    assert checkout.sync(since="3d").fetched == 0
    assert checkpoint(app) is None  # a narrower window than the default never moves it

    asked = len(stripe.requests_to("GET", "/v1/events"))
    bad = sync_cli(app, "--since", "last tuesday")
    assert bad.exit_code == 2 and "neither an age" in bad.output
    assert len(stripe.requests_to("GET", "/v1/events")) == asked and count("events") == 0

    wide = sync_cli(app, "--since", time.strftime("%Y-%m-%d", time.gmtime(now - 6 * DAY)))
    assert wide.exit_code == 0, wide.output
    assert checkout.credits(1) == 4


def test_window_rules() -> None:
    now = 1_800_000_000
    assert choose_window(now, None, None).start == now - RETENTION
    assert choose_window(now, None, now - DAY).start == now - DAY - 3600
    assert choose_window(now, None, now - 40 * DAY).truncated
    assert not choose_window(now, None, now - DAY).truncated
    assert choose_window(now, "90d", now - DAY).start == now - RETENTION
    assert parse_since("12h", now) == now - 12 * 3600
    assert parse_since("2027-01-15", now) == 1_799_971_200
    assert parse_since("2027-01-15T08:00:00+02:00", now) == 1_799_971_200 + 6 * 3600
    with pytest.raises(InvalidSyncWindow):
        parse_since("soon", now)
    with pytest.raises(InvalidSyncWindow):
        choose_window(now, now + 60, None)


def test_a_subscription_canceled_beyond_the_event_retention_is_caught_by_the_resync(
    app: Flask,
    checkout: PaxparCheckout,
    stripe: StripeStub,
    builder: EventBuilder,
    deliver: Callable[..., Any],
) -> None:
    paid_at = int(time.time()) - 60 * DAY
    deliver(
        builder.invoice_paid(
            user_id="1", subscription_id="sub_old", price_id=PRICE_BASIC, created=paid_at
        )
    )
    deliver(builder.invoice_paid(user_id="2", subscription_id="sub_new", price_id=PRICE_BASIC))
    assert checkout.subscription(1).status == "active"  # type: ignore[union-attr]
    ended = int(time.time()) - 40 * DAY
    # Stripe still lists the deletion nowhere: it is older than its 30 days of events.
    stripe.put_subscription(
        builder.subscription(
            user_id="1",
            subscription_id="sub_old",
            price_id=PRICE_BASIC,
            status="canceled",
            canceled_at=ended,
        )
    )

    report = checkout.sync()

    assert report.subscriptions and report.subscriptions_checked == 1
    assert checkout.subscription(1).status == "canceled"  # type: ignore[union-attr]
    assert [(c.status_before, c.status_after) for c in report.changes] == [("active", "canceled")]
    assert stripe.requests_to("GET", "/v1/subscriptions/sub_old")
    # Its news is recent: any change since would be among the events.
    assert not stripe.requests_to("GET", "/v1/subscriptions/sub_new")

    again = run_sync(subscriptions=True)
    assert again.ok and again.subscriptions_checked == 0  # an ended one is not fetched again


def test_a_subscription_unknown_to_stripe_is_a_problem_not_a_change(
    app: Flask, checkout: PaxparCheckout, deliver: Callable[..., Any], builder: EventBuilder
) -> None:
    deliver(builder.invoice_paid(user_id="1", subscription_id="sub_gone", price_id=PRICE_BASIC))

    result = sync_cli(app, "--subscriptions-only")

    assert result.exit_code == 1
    assert "Could not fetch subscription sub_gone" in result.stderr
    assert checkout.subscription(1).status == "active"  # type: ignore[union-attr]


def test_dry_run_writes_nothing_and_says_what_would_change(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub, builder: EventBuilder
) -> None:
    paid, _ = missed(stripe, builder)
    seen: list[Any] = []

    def observe(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    signals.credits_changed.connect(observe)
    signals.webhook_processed.connect(observe)
    try:
        result = sync_cli(app, "--dry-run")
    finally:
        signals.credits_changed.disconnect(observe)
        signals.webhook_processed.disconnect(observe)

    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was changed." in result.stdout
    assert f"would process {paid['id']}" in result.stdout
    assert "user 1: credits none -> 100, subscription none -> active" in result.stdout
    assert "user 2: credits none -> 7, subscription none -> none" in result.stdout
    assert seen == []
    for table in ("events", "ledger", "balances", "subscriptions", "customers"):
        assert count(table) == 0, table
    assert checkpoint(app) is None

    real = checkout.sync()
    assert real.processed == 2 and checkout.credits(1) == 100


def test_a_sync_refuses_to_run_beside_one_holding_the_lease(
    app: Flask, checkout: PaxparCheckout, stripe: StripeStub, builder: EventBuilder
) -> None:
    missed(stripe, builder)
    state = current_state()
    table = sync_state_table(state.database.db.metadata)
    other = Lease(state.database.db.engine, table, owner="another-host")
    assert other.acquire(int(time.time()))

    with pytest.raises(SyncBusy, match="Another sync is running"):
        checkout.sync()
    busy = sync_cli(app)
    assert busy.exit_code == 75 and "another sync is running" in busy.stderr
    assert count("events") == 0 and not stripe.requests_to("GET", "/v1/events")

    # A lease that ran out (its sync died) is taken over.
    with state.database.db.engine.begin() as conn:
        conn.execute(update(table).values(lease_until=int(time.time()) - 1))
    assert checkout.sync().processed == 2
    assert not other.renew(int(time.time()))


def test_a_rate_limit_beyond_the_librarys_retries_is_waited_out_and_said(
    app: Flask,
    stripe: StripeStub,
    builder: EventBuilder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("flask_paxpar_checkout.sync.BACKOFF", (0.01, 0.01))
    missed(stripe, builder)
    stripe.fail_next("GET", "/v1/events", status=429, error_type="rate_limit_error", times=3)
    observer = _FailPageTwo(stripe)
    observer.armed = False

    report = run_sync(observer=observer)

    assert report.ok and report.processed == 2
    assert any("rate-limiting" in p and "Waiting" in p for p in observer.problems)


def test_a_dry_run_with_a_failing_handler_and_a_resync_still_writes_nothing(
    app: Flask,
    checkout: PaxparCheckout,
    stripe: StripeStub,
    builder: EventBuilder,
    deliver: Callable[..., Any],
) -> None:
    long_ago = int(time.time()) - 60 * DAY
    deliver(
        builder.invoice_paid(
            user_id="1", subscription_id="sub_a", price_id=PRICE_BASIC, created=long_ago
        )
    )
    stripe.put_subscription(
        builder.subscription(
            user_id="1", subscription_id="sub_a", price_id=PRICE_BASIC, status="past_due"
        )
    )
    stripe.add_event(builder.checkout_session_completed(user_id="2", qty=5))

    @checkout.webhook_handler("checkout.session.completed")
    def broken(event: dict[str, Any]) -> None:
        raise RuntimeError("host bug")

    before = [tuple(r) for r in rows("events")]

    report = checkout.sync(dry_run=True)

    assert (report.failed, report.subscriptions_checked) == (1, 1)
    assert [(c.user_id, c.status_before, c.status_after) for c in report.changes] == [
        ("1", "active", "past_due")
    ]
    assert [tuple(r) for r in rows("events")] == before  # no failure stored either
    assert checkout.subscription(1).status == "active"  # type: ignore[union-attr]
    assert checkout.credits(1) == 100 and checkout.credits(2) == 0
