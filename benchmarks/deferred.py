"""The webhook's cost with one deferred handler on Celery and Redis, beside the cost
without one, and with one run in process after the answer.

    python -m benchmarks.deferred [--n 400] [--rounds 5] [--database URL] [--broker URL]

Each receiver is the plugin on its own app and schema, given ``invoice.payment_failed``
events (the built-in handler runs each time) through Flask's test client, in interleaved
rounds. No Celery worker runs: the cost is the webhook's, up to its answer; the queued
messages are dropped with the broker's database at the end. The in-process receiver is
timed up to the end of its deferred run (a handler that does nothing), which is what the
server's worker spends on it.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.testing import EventBuilder, new_id, signed

FQDN = "bench.paxpar.tech"
SECRET = "whsec_bench"
BROKER = "redis://127.0.0.1:6379/5"


def notify(event: dict[str, Any]) -> None:
    """The deferred handler: here, nothing (its own cost is not the webhook's)."""


@dataclass
class Receiver:
    name: str
    app: Flask
    db: SQLAlchemy
    client: FlaskClient
    closes: bool  # timed up to the end of the deferred run after the answer


def receiver(name: str, database: str, *, deferred: str | None, broker: str) -> Receiver:
    app = Flask(f"bench_{name.replace(' ', '_')}")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database,
        STRIPE_WEBHOOK_SECRET=SECRET,
        PAXPAR_FQDN=FQDN,
        PAXPAR_CHECKOUT_PRICES={"price_bench1": 100},
    )
    db = SQLAlchemy()
    db.init_app(app)
    checkout = PaxparCheckout(app, db=db)
    if deferred is not None:
        from benchmarks.deferred import notify as handler  # named by its module, not __main__

        checkout.webhook_handler("invoice.payment_failed", deferred=True)(handler)
    if deferred == "celery":
        from celery import Celery

        celery_app = Celery(app.name, broker=broker)
        celery_app.conf.update(task_default_queue="bench-deferred", task_ignore_result=True)
        checkout.init_celery(celery_app, app=app)
    with app.app_context():
        db.drop_all()
        db.create_all()
    return Receiver(name, app, db, app.test_client(), closes=deferred == "in process")


def deliveries(n: int) -> list[tuple[bytes, dict[str, str]]]:
    events = EventBuilder(fqdn=FQDN)
    return [
        signed(
            events.invoice_payment_failed(
                user_id=str(i % 50), subscription_id=new_id("sub"), price_id="price_bench1"
            ),
            SECRET,
        )
        for i in range(n)
    ]


def post_all(r: Receiver, batch: list[tuple[bytes, dict[str, str]]]) -> float:
    """Seconds per delivery over ``batch``; anything but 200 stops the benchmark."""
    start = time.perf_counter()
    for body, headers in batch:
        response = r.client.post("/api/checkout/webhook", data=body, headers=headers)
        if r.closes:
            response.close()
        if response.status_code != 200:
            raise SystemExit(f"{r.name}: {response.status_code} {response.get_data(True)}")
    seconds = (time.perf_counter() - start) / len(batch)
    if not r.closes:
        response.close()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="deliveries per receiver and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", help="a SQLAlchemy URL (default: SQLite files)")
    parser.add_argument("--broker", default=BROKER)
    args = parser.parse_args(argv)
    import redis

    redis.Redis.from_url(args.broker).flushdb()
    folder = Path(tempfile.mkdtemp(prefix="bench-deferred-"))
    every = []
    for name, deferred in (
        ("no deferred handler", None),
        ("deferred on Celery", "celery"),
        ("deferred in process", "in process"),
    ):
        url = args.database or f"sqlite:///{folder / name.replace(' ', '_')}.db"
        # On a server the receivers share one schema (made again by each): ids never repeat.
        every.append(receiver(name, url, deferred=deferred, broker=args.broker))
    timings: dict[str, list[float]] = {r.name: [] for r in every}
    try:
        for r in every:  # warm-up: connections, compiled statements, the broker's pool
            post_all(r, deliveries(20))
        for _ in range(args.rounds):
            random.shuffle(every)
            for r in every:
                timings[r.name].append(post_all(r, deliveries(args.n)))
    finally:
        redis.Redis.from_url(args.broker).flushdb()
    base = statistics.median(timings["no deferred handler"])
    print(f"{args.n} deliveries x {args.rounds} rounds, median per delivery:")
    for name, found in timings.items():
        us = statistics.median(found) * 1e6
        print(f"  {name:<22} {us:8.0f} us   x{statistics.median(found) / base:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
