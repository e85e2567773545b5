"""The reference model of convergence against results worked out by hand from the rules
(no database: these check the model that the property tests trust)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from flask_paxpar_checkout.testing import EventBuilder

from .conftest import FQDN, PRICE_BASIC, PRICE_PRO, PRICES
from .convergence_model import Spend, converge

T = 1_700_000_000
NOW = T + 365 * 86400
USER = "7"


@pytest.fixture(params=["2026-07-29.dahlia", "2024-04-10"], ids=["basil-era", "pre-basil"])
def b(request: pytest.FixtureRequest) -> EventBuilder:
    return EventBuilder(fqdn=FQDN, era=request.param)


def paid(b: EventBuilder, at: int, **kw: Any) -> dict[str, Any]:
    kw.setdefault("price_id", PRICE_BASIC)
    kw.setdefault("subscription_id", "sub_7")
    kw.setdefault("event_created", at)
    return b.invoice_paid(user_id=USER, created=at, **kw)


def bought(b: EventBuilder, qty: int, at: int, intent: str = "pi_1") -> dict[str, Any]:
    return b.checkout_session_completed(user_id=USER, qty=qty, created=at, payment_intent=intent)


def refund(b: EventBuilder, level: int, at: int, intent: str = "pi_1") -> dict[str, Any]:
    return b.charge_refunded(
        created=at, charge_id="ch_1", payment_intent=intent, amount=1000, amount_refunded=level
    )


def balance(events: list[dict[str, Any]], spends: tuple[Spend, ...] = ()) -> tuple[int, int]:
    """The balance and the ledger's sum, for every order of ``events`` tried here."""
    results = set()
    for seed in range(6):
        shuffled = [*events, *events[:1]]
        random.Random(seed).shuffle(shuffled)
        got = converge(shuffled, user_id=USER, prices=PRICES, spends=spends)
        results.add((got.balance, got.ledger_sum))
    assert len(results) == 1, results
    return results.pop()


def test_refunds_take_back_their_proportion_once(b: EventBuilder) -> None:
    """7 credits for 10.00: 3.00 refunded takes floor(2.1) = 2, then the full 10.00 the
    other 5; redeliveries take nothing more; a full refund alone takes 7."""
    base = [paid(b, T), bought(b, 7, T + 10)]
    assert balance(base) == (107, 107)
    assert balance([*base, refund(b, 300, T + 20), refund(b, 1000, T + 30)]) == (100, 100)
    assert balance([*base, refund(b, 1000, T + 30)]) == (100, 100)
    # 3.00 then 6.00 in all: floor(2.1) = 2, then floor(4.2) - 2 = 2.
    assert balance([*base, refund(b, 300, T + 20), refund(b, 600, T + 30)]) == (103, 103)


def test_a_refund_of_an_unknown_purchase_has_no_effect(b: EventBuilder) -> None:
    assert balance([paid(b, T), refund(b, 1000, T + 30, intent="pi_elsewhere")]) == (100, 100)


def test_a_refund_before_a_later_reset_is_absorbed_by_it(b: EventBuilder) -> None:
    events = [paid(b, T), bought(b, 7, T + 10), refund(b, 1000, T + 20), paid(b, T + 40)]
    assert balance(events) == (100, 100)


def test_at_the_same_second_the_reset_comes_first(b: EventBuilder) -> None:
    assert balance([bought(b, 7, T), paid(b, T)]) == (107, 107)


def test_a_reset_takes_its_paid_at_before_its_event_time(b: EventBuilder) -> None:
    """Paid at T, its event made at T + 5; a purchase at T + 2 comes after the reset."""
    assert balance([bought(b, 7, T + 2), paid(b, T, paid_at=T, event_created=T + 5)]) == (
        107,
        107,
    )
    assert balance([bought(b, 7, T + 2), paid(b, T + 5)]) == (100, 100)


def test_the_balance_stops_at_zero_and_the_difference_is_an_adjustment(b: EventBuilder) -> None:
    """100, bought 10 (110), all 110 spent; the purchase's refund arrives later, effective
    before the spend: 100, then the spend would leave -10, so 0 and +10 adjustment."""
    events = [paid(b, T), bought(b, 10, T + 10), refund(b, 1000, T + 20)]
    got = converge(events, user_id=USER, prices=PRICES, spends=[Spend(NOW, 110)])
    assert got.balance == got.ledger_sum == 0
    assert [d for _, d in got.deltas] == [100, 10, -10, -110, 10]
    assert got.deltas[-1][0].startswith("adjustment:")


def test_a_failed_delayed_payment_buys_nothing(b: EventBuilder) -> None:
    obj = b.checkout_session(user_id=USER, qty=7, payment_status="unpaid")
    failed = {**obj, "payment_status": "unpaid"}
    events = [
        b.event("checkout.session.completed", obj, created=T),
        b.event("checkout.session.async_payment_failed", failed, created=T + 86400),
    ]
    assert balance(events) == (0, 0)
    succeeded = {**obj, "payment_status": "paid"}
    events[1] = b.event("checkout.session.async_payment_succeeded", succeeded, created=T + 86400)
    assert balance(events) == (7, 7)


def test_a_deletion_is_final_and_ends_the_resets_from_its_cancellation(b: EventBuilder) -> None:
    """Paid before the cancellation: resets (100). The final invoice, paid three seconds
    after it on another plan, resets nothing and changes no field, though its event is
    newer than the deletion's."""
    at = T + 12 * 86400
    deleted = b.subscription_deleted(
        created=at, user_id=USER, subscription_id="sub_7", price_id=PRICE_BASIC, canceled_at=at
    )
    events = [paid(b, T), deleted, paid(b, at + 3, price_id=PRICE_PRO, paid_at=at + 3)]
    assert balance(events) == (100, 100)
    sub = converge(events, user_id=USER, prices=PRICES).subscription
    assert sub is not None
    assert (sub["status"], sub["price_id"], sub["canceled_at"]) == ("canceled", PRICE_BASIC, at)


def test_each_field_follows_the_newest_event(b: EventBuilder) -> None:
    """A plan change newer than the last invoice keeps its price; a payment failure newer
    than both makes it past due; its cancellation at period end stays."""
    end = T + 30 * 86400
    change = b.subscription_updated(
        created=T + 100,
        user_id=USER,
        subscription_id="sub_7",
        price_id=PRICE_PRO,
        period_end=end,
        cancel_at_period_end=True,
        cancel_at=end,
        canceled_at=T + 100,
    )
    failed = b.invoice_payment_failed(
        user_id=USER, subscription_id="sub_7", price_id=PRICE_PRO, created=T + 200
    )
    sub = converge([failed, change, paid(b, T, period_end=end)], user_id=USER, prices=PRICES)
    assert sub.subscription == {
        "status": "past_due",
        "price_id": PRICE_PRO,
        "current_period_end": end,
        "cancel_at_period_end": True,
        "cancel_at": end,
        "canceled_at": T + 100,
    }
