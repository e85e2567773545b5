"""The convergence property over HTTP: several users' crossing histories (refunds included),
shuffled, each event delivered twice at the same moment to the example host service on
several gunicorn workers, must end in the reference model's state, read through the public
API of another app on the same database."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from .conftest import FQDN, PRICE_BASIC, PRICE_PRO, PRICES
from .convergence_model import SUBSCRIPTION_FIELDS, converge
from .convergence_story import History, describe, history, random_plan
from .reliability_db import isolated_database
from .reliability_load import Deliveries, deliver_together, gunicorn
from .reliability_spend import make_app
from .test_concurrency import SECRET, host_env, init_tables

USERS = 8
SEED = int(os.environ.get("PAXPAR_RELIABILITY_SEED") or 20260101)


@pytest.mark.concurrency
def test_crossing_histories_delivered_together_on_gunicorn_workers_converge(
    tmp_path: Path,
) -> None:
    rng = random.Random(SEED)
    start = int(time.time()) - 200 * 86400
    histories = [
        history(
            random_plan(rng),
            fqdn=FQDN,
            user_id=str(3000 + n),
            prices=(PRICE_BASIC, PRICE_PRO),
            start=start + n * 13,
        )
        for n in range(USERS)
    ]
    groups = [(event, 2) for h in histories for event in h.events]
    rng.shuffle(groups)
    with isolated_database(tmp_path, "converge") as url:
        env = host_env(url, set())
        init_tables(env)
        log = Deliveries()
        with gunicorn("tests.reliability_host:create_app()", env, tmp_path / "gunicorn.log") as g:
            deliver_together(g.url + "/api/checkout/webhook", groups, SECRET, log, threads=8)
        assert {a.status for a in log.answers} <= {200, 500}, "a delivery was dropped"
        diverged = []
        for h in histories:
            got, want = observe(url, h)
            if got != want:
                lines = "\n  ".join(map(describe, h.events))
                diverged.append(f"user {h.user_id}: got {got}, want {want}\n  {lines}")
    assert diverged == [], "\n".join(diverged)


def observe(url: str, h: History) -> tuple[tuple[object, ...], tuple[object, ...]]:
    """The user's (balance, ledger sum, subscription fields) read by another app, beside
    the reference model's."""
    want = converge(h.events, user_id=h.user_id, prices=PRICES)
    app, db, checkout = make_app(url)
    with app.app_context():
        sub = checkout.subscription(h.user_id)
        fields = {name: getattr(sub, name) for name in SUBSCRIPTION_FIELDS} if sub else None
        if fields is not None:
            fields["cancel_at_period_end"] = bool(fields["cancel_at_period_end"])
        rows = checkout.ledger(h.user_id, limit=100_000)
        got = (checkout.credits(h.user_id), sum(r["delta"] for r in rows), fields)
        db.session.remove()
        db.engine.dispose()
    return got, (want.balance, want.ledger_sum, want.subscription)
