"""Any order, the same money: one user's history delivered in every order, with duplicates
and the host's spends between deliveries, ends where the reference model says Stripe's own
order ends (balance, ledger sum, subscription fields).

Runs on the suite's database (SQLite, or PostgreSQL with ``PAXPAR_TEST_DATABASE_URL``);
``PAXPAR_CONVERGENCE_EXAMPLES`` sets how many histories hypothesis tries.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flask_paxpar_checkout import InsufficientCredits, PaxparCheckout
from flask_paxpar_checkout.testing import EventBuilder

from .conftest import FQDN, PRICE_BASIC, PRICE_PRO, PRICES
from .convergence_model import SUBSCRIPTION_FIELDS, Converged, Spend, converge
from .convergence_story import History, Plan, describe, history, in_effect_order, plans

EXAMPLES = int(os.environ.get("PAXPAR_CONVERGENCE_EXAMPLES") or 40)
START = int(time.time()) - 200 * 86400  # the whole history is in the past
users = itertools.count(int(time.time()) % 100_000 * 100)

examples = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Observed:
    balance: int
    ledger_sum: int
    subscription: dict[str, Any] | None


def observe(checkout: PaxparCheckout, user_id: str) -> Observed:
    """What the public API says of the user."""
    rows = checkout.ledger(user_id, limit=100_000)
    sub = checkout.subscription(user_id)
    fields = {name: getattr(sub, name) for name in SUBSCRIPTION_FIELDS} if sub else None
    if fields is not None:
        fields["cancel_at_period_end"] = bool(fields["cancel_at_period_end"])
    return Observed(checkout.credits(user_id), sum(r["delta"] for r in rows), fields)


def expected(converged: Converged) -> Observed:
    return Observed(converged.balance, converged.balance, converged.subscription)


@dataclass
class Replay:
    """Deliveries in a given order, with spends tried between them."""

    deliver: Callable[..., Any]
    checkout: PaxparCheckout

    def run(self, user_id: str, order: list[dict[str, Any]], spends: dict[int, int]) -> list[Spend]:
        succeeded: list[Spend] = []
        for position, event in enumerate(order):
            answer = self.deliver(event)
            assert answer.status_code == 200, (describe(event), answer.get_data(as_text=True))
            if position in spends:
                try:
                    self.checkout.spend_credits(user_id, spends[position])
                except InsufficientCredits:
                    continue
                succeeded.append(Spend(int(time.time()), spends[position]))
        return succeeded

    def check(
        self, h: History, order: list[dict[str, Any]], spends: dict[int, int]
    ) -> tuple[Observed, Observed]:
        done = self.run(h.user_id, order, spends)
        want = expected(converge(h.events, user_id=h.user_id, prices=PRICES, spends=done))
        return observe(self.checkout, h.user_id), want


def report(h: History, order: list[dict[str, Any]], got: Observed, want: Observed) -> str:
    """The diverging history: Stripe's order, the order delivered, both outcomes."""
    lines = ["Stripe's order:", *map(describe, h.events), "delivered:", *map(describe, order)]
    return "\n  ".join([*lines, f"got  {got}", f"want {want}"])


@pytest.fixture
def replay(deliver: Callable[..., Any], checkout: PaxparCheckout) -> Replay:
    return Replay(deliver, checkout)


def new_history(plan: Plan) -> History:
    """The plan's events for a user of its own, so each example starts from nothing."""
    user = str(next(users))
    return history(plan, fqdn=FQDN, user_id=user, prices=(PRICE_BASIC, PRICE_PRO), start=START)


def deliveries(n: int) -> st.SearchStrategy[list[int]]:
    """Positions of ``n`` events: each at least once, some twice or three times, in any
    order (positions, so that a failure's report stays short)."""
    again = st.lists(st.integers(0, n - 1), max_size=n // 2)
    return again.flatmap(lambda more: st.permutations([*range(n), *more]))


def spends_between(n: int) -> st.SearchStrategy[dict[int, int]]:
    """Spends tried after some of ``n`` deliveries (refused ones are left out)."""
    return st.dictionaries(st.integers(0, n - 1), st.integers(1, 120), max_size=4)


# -- the property ------------------------------------------------------------------------------


@examples
@given(data=st.data())
def test_any_order_with_duplicates_and_spends_converges_to_stripes_order(
    replay: Replay, data: st.DataObject
) -> None:
    h = new_history(data.draw(plans(), label="plan"))
    order = [h.events[i] for i in data.draw(deliveries(len(h.events)), label="order")]
    spends = data.draw(spends_between(len(order)), label="spends")
    got, want = replay.check(h, order, spends)
    assert got == want, report(h, order, got, want)


@examples
@given(data=st.data())
def test_in_order_without_refunds_the_harness_matches_the_model(
    replay: Replay, data: st.DataObject
) -> None:
    """The harness itself: in the order the effects take place, with no refunds and the
    spends after the last delivery (a spend's local time is after every event's), nothing
    crosses, so the model and the plugin agree on any release that handles events in
    order."""
    plan = data.draw(plans(), label="plan")
    plan = replace(plan, purchases=tuple(replace(p, refunds=()) for p in plan.purchases))
    h = new_history(plan)
    spends = {len(h.events) - 1: data.draw(st.integers(1, 120), label="spend")}
    order = in_effect_order(h.events)
    got, want = replay.check(h, order, spends)
    assert got == want, report(h, order, got, want)


# -- the examples of the issue, worked out by hand -----------------------------------------------


@pytest.fixture
def user() -> str:
    return str(next(users))


def _paid(events: EventBuilder, user: str, sub: str, at: int, **kw: Any) -> dict[str, Any]:
    kw.setdefault("price_id", PRICE_BASIC)
    return events.invoice_paid(
        user_id=user, subscription_id=sub, created=at, event_created=at, paid_at=at, **kw
    )


def _bought(events: EventBuilder, user: str, qty: int, at: int) -> dict[str, Any]:
    return events.checkout_session_completed(user_id=user, qty=qty, created=at)


ORDERS = {
    "stripe": [0, 1, 2, 3],
    "reversed": [3, 2, 1, 0],
    "late resets": [1, 3, 0, 2, 0, 2],
    "late purchases": [0, 2, 1, 3, 1],
    "first last": [3, 0, 1, 2, 3],
}


@pytest.mark.parametrize("order", ORDERS.values(), ids=ORDERS.keys())
def test_two_renewals_and_two_purchases_end_at_105_in_any_order(
    replay: Replay, events: EventBuilder, user: str, order: list[int]
) -> None:
    """Reset to 100, buy 7 (107), reset to 100, buy 5: 105, however delivered."""
    sub = "sub_" + user
    day = 86400
    stripe_order = [
        _paid(events, user, sub, START),
        _bought(events, user, 7, START + day),
        _paid(events, user, sub, START + 30 * day),
        _bought(events, user, 5, START + 31 * day),
    ]
    replay.run(user, [stripe_order[i] for i in order], {})
    got = observe(replay.checkout, user)
    assert (got.balance, got.ledger_sum) == (105, 105), order


@pytest.mark.parametrize("deletion_first", [False, True], ids=["in order", "deletion first"])
def test_purchase_then_cancellation_ends_at_107_even_when_the_deletion_comes_first(
    replay: Replay, events: EventBuilder, user: str, deletion_first: bool
) -> None:
    """Reset to 100, buy 7, cancel at period end, deleted at the end: 107. The invoice was
    paid before the cancellation, so it resets whatever order it arrives in."""
    sub, end = "sub_" + user, START + 30 * 86400
    common = {"user_id": user, "subscription_id": sub, "price_id": PRICE_BASIC, "period_end": end}
    paid = _paid(events, user, sub, START, period_end=end)
    bought = _bought(events, user, 7, START + 86400)
    asked = START + 10 * 86400
    cancel = events.subscription_updated(
        created=asked, cancel_at_period_end=True, cancel_at=end, canceled_at=asked, **common
    )
    deleted = events.subscription_deleted(
        created=end, cancel_at_period_end=True, cancel_at=end, canceled_at=asked, **common
    )
    in_order = [paid, bought, cancel, deleted]
    replay.run(user, [deleted, cancel, bought, paid] if deletion_first else in_order, {})
    got = observe(replay.checkout, user)
    assert (got.balance, got.ledger_sum) == (107, 107)
    assert got.subscription is not None and got.subscription["status"] == "canceled"


def test_a_deletion_older_than_the_final_invoice_still_cancels(
    replay: Replay, events: EventBuilder, user: str
) -> None:
    """Deleted at once; the final invoice (prorations) is paid three seconds later and
    delivered first. Stripe's ``canceled`` is terminal: the subscription ends canceled, and
    the final invoice, paid after the cancellation, resets nothing (100 stays 100)."""
    sub, at = "sub_" + user, START + 12 * 86400
    first = _paid(events, user, sub, START, period_end=START + 30 * 86400)
    deleted = events.subscription_deleted(
        created=at, user_id=user, subscription_id=sub, price_id=PRICE_BASIC, canceled_at=at
    )
    final = _paid(events, user, sub, at + 3, price_id=PRICE_PRO, period_end=at)
    replay.run(user, [first, final, deleted], {})
    got = observe(replay.checkout, user)
    assert got.subscription is not None and got.subscription["status"] == "canceled"
    assert got.subscription["canceled_at"] == at
    assert (got.balance, got.ledger_sum) == (100, 100)
