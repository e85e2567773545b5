"""Real concurrency: the example host service under gunicorn with several worker processes,
and credits spent from several processes at once, on the suite's database.

On PostgreSQL every delivery must be answered 2xx except the injected faults; on SQLite
(one writer at a time) a delivery may also fail with a 5xx, which Stripe retries, and the
retry must succeed. Either way the final state must be exactly what the events imply.

Run the multi-process ones alone with ``pytest -m concurrency``; ``PAXPAR_RELIABILITY_SEED``
replays another story.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.testing import EventBuilder, StripeStub

from .conftest import FQDN, PRICE_BASIC, PRICE_PRO, PRICES, base_config
from .reliability_db import engine_for, isolated_database, on_postgresql
from .reliability_host import FAULTY_ENV
from .reliability_load import ROOT, Deliveries, deliver_together, gunicorn
from .reliability_model import Expected, Story, expected_state, story
from .reliability_spend import Outcome, make_app, run

SECRET = "whsec_reliabilityLoadTest"
WORKERS = 3
THREADS = 12
SEED = int(os.environ.get("PAXPAR_RELIABILITY_SEED") or 20260101)


def host_env(database_url: str, faulty: set[str]) -> dict[str, str]:
    """The example's environment: nothing inherited from the test run but the basics."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PAXPAR_", "STRIPE_", "RELIABILITY_"))
        and k not in ("DATABASE_URL", "SECRET_KEY", "PORT")
    }
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY="reliability-load-test",
        PAXPAR_FQDN=FQDN,
        PAXPAR_CHECKOUT_PUBLIC_URL="http://127.0.0.1",
        STRIPE_WEBHOOK_SECRET=SECRET,
        PAXPAR_CHECKOUT_PRICES=",".join(f"{p}:{c}" for p, c in PRICES.items()),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    env[FAULTY_ENV] = ",".join(sorted(faulty))
    return env


def init_tables(env: dict[str, str]) -> None:
    """Create the tables once, before the workers start (see reliability_host)."""
    done = subprocess.run(
        [sys.executable, "-c", "from tests.reliability_host import init_database as i; i()"],
        cwd=ROOT,
        env=env,
        timeout=120,
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-3000:]


# -- a few hundred events on three gunicorn workers ------------------------------------------


@pytest.mark.concurrency
def test_duplicated_out_of_order_events_on_gunicorn_workers_are_applied_exactly_once(
    tmp_path: Path,
) -> None:
    """A few hundred events, each delivered three times at the same moment from different
    threads (so to different workers) in shuffled order, a third of them once more later;
    12 of them fail in a host handler on their first attempt, and a worker is killed on the
    way. Every 5xx or dropped delivery is retried until a 2xx, as Stripe does. Subscribers
    buy credits too, so purchases and resets cross: balances and subscriptions must end
    where the reference model of convergence says."""
    rng = random.Random(SEED)
    tale = story(
        rng,
        fqdn=FQDN,
        prices=PRICES,
        buyers=20,
        subscribers=24,
        foreign=10,
        start=int(time.time()) - 86400,
    )
    expected = expected_state(tale, prices=PRICES)
    faulty = set(rng.sample(sorted(expected.processed), 12))
    # Every event three times at the same moment, a third of them a fourth time later;
    # the order shuffled, so that renewals, cancellations and invoices cross.
    groups = [(event, 3) for event in tale.events]
    rng.shuffle(groups)
    late = [(event, 1) for event in rng.sample(tale.events, len(tale.events) // 3)]

    with isolated_database(tmp_path, "load") as url:
        env = host_env(url, faulty)
        init_tables(env)
        log = Deliveries()
        killed: list[int] = []
        started = time.monotonic()
        with gunicorn("tests.reliability_host:create_app()", env, tmp_path / "gunicorn.log") as g:
            webhook = g.url + "/api/checkout/webhook"
            kill_at = len(groups) * 3 * 2 // 5  # 40% of the way

            def kill_a_worker_once() -> None:
                """A worker dies mid-load (OOM killer, deploy): its request is dropped."""
                with log.lock:
                    if killed or log.done < kill_at:
                        return
                    victim = g.workers()[0]
                    killed.append(victim)
                os.kill(victim, signal.SIGKILL)

            deliver_together(
                webhook,
                groups,
                SECRET,
                log,
                threads=THREADS,
                after_each=kill_a_worker_once,
            )
            deliver_together(webhook, late, SECRET, log, threads=THREADS)
            elapsed = time.monotonic() - started
            assert_huge_body_refused_early(g.url)
            server_log = g.log_text()

        with engine_for(url) as engine:
            check_final_state(engine, tale, expected)
        check_answers(log, tale, expected, faulty)
        if on_postgresql():
            assert "Exception on /api/checkout/webhook" not in server_log, server_log[-5000:]
        figures = Counter(
            "connection dropped" if a.status is None else f"{a.status} {a.outcome or ''}".strip()
            for a in log.answers
        )
        print(
            f"\n{len(tale.events)} events, {len(log.answers)} HTTP deliveries, "
            f"{WORKERS} workers, {len(faulty)} faulty events, worker killed: {killed}, "
            f"seed {SEED}, {elapsed:.1f}s: {dict(sorted(figures.items()))}"
        )


def check_final_state(engine: Engine, tale: Story, expected: Expected) -> None:
    """The database holds exactly what the events imply, each effect once."""
    with engine.connect() as conn:
        events = {
            r.id: r
            for r in conn.execute(text("SELECT id, status, attempts FROM paxpar_checkout_events"))
        }
        # Untagged events are stored as ignored; another instance's are not stored at all.
        assert set(events) == expected.processed | expected.recorded_ignored
        wrong = {
            eid: r.status
            for eid, r in events.items()
            if r.status != ("ignored" if eid in expected.recorded_ignored else "processed")
        }
        assert wrong == {}, wrong

        runs = conn.execute(text("SELECT event_id, pid FROM reliability_handler_runs")).all()
        per_event = Counter(r.event_id for r in runs)
        assert {e: n for e, n in per_event.items() if n != 1} == {}, "a handler ran twice"
        assert set(per_event) == expected.processed
        assert len({r.pid for r in runs}) >= 2, "all the work landed on one worker"

        balances: dict[str, int] = dict(
            conn.execute(text("SELECT user_id, credits FROM paxpar_checkout_balances")).all()
        )
        got = {user: balances.get(user, 0) for user in tale.users}
        assert got == expected.credits

        ledger: dict[str, list[Any]] = defaultdict(list)
        for row in conn.execute(
            text(
                "SELECT user_id, delta, balance_after, dedup_key FROM "
                "paxpar_checkout_credit_ledger ORDER BY user_id, position"
            )
        ):
            ledger[row.user_id].append(row)
        for user in tale.users:
            balance = 0
            for row in ledger[user]:  # in the fold's order, each applies on the one before
                assert row.balance_after == balance + row.delta, (user, ledger[user])
                balance = row.balance_after
            assert balance == expected.credits[user], user
            assert sum(row.delta for row in ledger[user]) == expected.credits[user], user
            purchases = {r.dedup_key for r in ledger[user] if r.dedup_key.startswith("purchase:")}
            assert purchases == {f"purchase:{cs}" for cs in expected.purchases[user]}, user

        subs = {
            r.id: r
            for r in conn.execute(
                text(
                    "SELECT id, user_id, customer_id, price_id, status, current_period_end, "
                    "cancel_at_period_end, cancel_at, canceled_at FROM "
                    "paxpar_checkout_subscriptions"
                )
            )
        }
        assert set(subs) == set(expected.subscriptions)
        for sub_id, model in expected.subscriptions.items():
            row = subs[sub_id]
            got_sub = (
                row.user_id,
                row.customer_id,
                row.price_id,
                row.status,
                row.current_period_end,
                bool(row.cancel_at_period_end),
                row.cancel_at,
                row.canceled_at,
            )
            want = (
                model.user_id,
                model.customer_id,
                model.price_id,
                model.status,
                model.current_period_end,
                model.cancel_at_period_end,
                model.cancel_at,
                model.canceled_at,
            )
            assert got_sub == want, sub_id

        customers: dict[str, str] = dict(
            conn.execute(
                text("SELECT user_id, stripe_customer_id FROM paxpar_checkout_customers")
            ).all()
        )
        assert customers == expected.customers


def check_answers(log: Deliveries, tale: Story, expected: Expected, faulty: set[str]) -> None:
    """What Stripe saw: one "processed" per event, the rest "duplicate" (or "ignored"), and
    a 5xx only where a fault was injected (any, on SQLite: Stripe retries those)."""
    by_event: dict[str, list[Any]] = defaultdict(list)
    for answer in log.answers:
        by_event[answer.event_id].append(answer)
    assert set(by_event) == expected.processed | expected.ignored
    assert {a.status for a in log.answers} <= {200, 500, None}
    dropped = [a for a in log.answers if a.status is None]
    assert len(dropped) <= 1, "only the killed worker's request may be dropped"
    for event_id, answers in by_event.items():
        outcomes = Counter(a.outcome for a in answers if a.status == 200)
        if event_id in expected.ignored:
            assert set(outcomes) == {"ignored"}, (event_id, outcomes)
            continue
        assert set(outcomes) <= {"processed", "duplicate"}, (event_id, outcomes)
        was_dropped = any(a.status is None for a in answers)
        # Exactly one delivery did the work; it may be the one whose answer was lost.
        if was_dropped:
            assert outcomes["processed"] <= 1, (event_id, outcomes)
        else:
            assert outcomes["processed"] == 1, (event_id, outcomes)
        failures = [a for a in answers if a.status == 500]
        if event_id in faulty:
            assert failures, f"the injected fault of {event_id} never showed"
        elif on_postgresql():
            assert failures == [], f"{event_id} answered 500 without an injected fault"


def assert_huge_body_refused_early(base_url: str) -> None:
    """A 50 MB Content-Length is answered 413 after a few bytes, not after reading it."""
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /api/checkout/webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nStripe-Signature: t=1,v1=00\r\nContent-Length: 50000000\r\n\r\n{" + b" " * 1000
        )
        head = sock.recv(200)
    assert head.startswith(b"HTTP/1.1 413"), head


# -- spends from several processes -----------------------------------------------------------


@pytest.mark.concurrency
def test_concurrent_spends_from_several_processes_never_go_negative_nor_get_lost(
    tmp_path: Path,
) -> None:
    """Three processes spend from one balance while a fourth grants, all released at once:
    more is asked than there is, so some spends are refused; none is lost, none overdraws."""
    user, initial, spenders, rounds = "77", 300, 3, 60
    with isolated_database(tmp_path, "spend") as url:
        app, db, checkout = make_app(url)
        with app.app_context():
            db.create_all()
            checkout.add_credits(user, initial, memo="initial")
            db.session.remove()
        ctx = multiprocessing.get_context("spawn")
        barrier = ctx.Barrier(spenders + 1)
        queue = ctx.Queue()
        roles = ["spend"] * spenders + ["grant"]
        procs = [
            ctx.Process(
                target=run,
                args=(
                    url,
                    user,
                    role,
                    SEED + i,
                    rounds if role == "spend" else 20,
                    barrier,
                    queue,
                ),
            )
            for i, role in enumerate(roles)
        ]
        for proc in procs:
            proc.start()
        try:
            outcomes: list[Outcome] = []
            for _ in procs:
                outcomes += queue.get(timeout=120)[2]
        finally:
            for proc in procs:
                proc.join(30)
                if proc.is_alive():
                    proc.kill()
                    proc.join()
            queue.close()
            queue.join_thread()
        assert all(proc.exitcode == 0 for proc in procs)

        spent = [n for kind, n, _ in outcomes if kind == "spent"]
        granted = [n for kind, n, _ in outcomes if kind == "granted"]
        refused = [n for kind, n, _ in outcomes if kind == "refused"]
        locked = [n for kind, n, _ in outcomes if kind == "locked"]
        assert [o for o in outcomes if o[0] == "error"] == []
        assert len(spent) + len(refused) + len(locked) == spenders * rounds
        assert len(granted) == 20
        assert all(after >= 0 for kind, _, after in outcomes if kind != "locked")
        assert refused, "the spenders should have asked for more than there was"
        if on_postgresql():
            assert locked == []

        with app.app_context():
            balance = checkout.credits(user)
            rows = list(reversed(checkout.ledger(user, limit=10_000)))
            db.session.remove()
            db.engine.dispose()
        assert balance == initial + sum(granted) - sum(spent)
        assert sum(r["delta"] for r in rows) == balance
        assert sorted(-r["delta"] for r in rows if r["reason"] == "spend") == sorted(spent)
        running = 0
        for row in rows:  # serialised: each row applies on the one before it
            assert row["balance_after"] == running + row["delta"] >= 0, row
            running = row["balance_after"]
        print(
            f"\n{spenders} spending processes + 1 granting: {len(spent)} spends of "
            f"{sum(spent)} credits, {len(refused)} refused, {len(granted)} grants of "
            f"{sum(granted)}, {len(locked)} 'database is locked'; balance {balance}"
        )


# -- found on the way ---------------------------------------------------------------------------


@pytest.fixture
def config(stripe: StripeStub, tmp_path: Path) -> Iterator[dict[str, Any]]:
    with isolated_database(tmp_path) as url:
        yield base_config(stripe.url, url)


def test_an_older_invoice_arriving_after_a_plan_change_keeps_the_new_price(
    deliver: Callable[..., Any], checkout: PaxparCheckout, events: EventBuilder
) -> None:
    """Stripe's order: basic paid, then the switch to pro. Delivered the other way round,
    the late basic invoice must not put the subscription back on basic."""
    now = int(time.time())
    paid_basic = events.invoice_paid(
        user_id="5", subscription_id="sub_5", price_id=PRICE_BASIC, created=now - 1000
    )
    to_pro = events.subscription_updated(
        user_id="5", subscription_id="sub_5", price_id=PRICE_PRO, created=now - 500
    )
    assert deliver(to_pro).get_json()["status"] == "processed"
    assert deliver(paid_basic).get_json()["status"] == "processed"
    sub = checkout.subscription(5)
    assert sub is not None and sub.status == "active"
    assert sub.price_id == PRICE_PRO


@pytest.mark.concurrency
def test_example_workers_starting_together_all_boot(tmp_path: Path) -> None:
    """What ``gunicorn --workers 3 'examples.host_app:create_app()'`` does on a new
    database: worker 2 starts while worker 1 is inserting the demo users."""
    if not on_postgresql():
        pytest.skip("SQLite has one writer: the second worker waits, then finds the users")
    with isolated_database(tmp_path, "boot") as url:
        env = host_env(url, set())
        init_tables(env)
        with engine_for(url) as engine, engine.connect() as worker_one:
            worker_one.execute(text("DELETE FROM example_user"))  # a new database's state
            worker_one.commit()
            worker_one.execute(
                text(
                    "INSERT INTO example_user (username, email, password_hash) "
                    "VALUES ('alice', 'alice@example.com', 'x')"
                )
            )
            worker_two = subprocess.Popen(
                [sys.executable, "-c", "from examples.host_app import create_app; create_app()"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                _wait_until_blocked(engine, worker_two)
                worker_one.commit()  # worker one's seeding ends
                _, errors = worker_two.communicate(timeout=60)
            finally:
                if worker_two.poll() is None:
                    worker_two.kill()
                    worker_two.communicate()
        assert worker_two.returncode == 0, errors.decode()[-2000:]


def _wait_until_blocked(engine: Engine, proc: subprocess.Popen[bytes]) -> None:
    """Until a database backend waits for a lock (or the process has ended)."""
    deadline = time.monotonic() + 30
    with engine.connect() as conn:
        while time.monotonic() < deadline and proc.poll() is None:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            ).scalar_one()
            conn.rollback()
            if waiting:
                return
            time.sleep(0.05)
