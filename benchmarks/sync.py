"""``python -m benchmarks.sync``: how fast ``flask checkout sync`` applies missed events.

Seeds the local Stripe (``StripeStub``) with missed events (credit purchases and paid
invoices of distinct users), then times, on a durable host app: a dry run, the first sync
(every event processed), and a second sync (every event a duplicate). The stripe library
talks to the stub over HTTP, as it would to Stripe.

    .venv/bin/python -m benchmarks.sync --events 2000
    .venv/bin/python -m benchmarks.sync --db postgresql --pg-url postgresql+psycopg://...

PostgreSQL runs only on a database named with ``--pg-url``: its plugin tables are wiped.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from flask_paxpar_checkout.sync import SyncReport, run_sync
from flask_paxpar_checkout.testing import EventBuilder, StripeStub

from . import hosts
from .workload import FQDN

PRICE = "price_basic"


def seed(stub: StripeStub, count: int) -> None:
    """``count`` missed events: half credit purchases, half paid invoices."""
    builder = EventBuilder(fqdn=FQDN)
    for n in range(count):
        user = str(n % 500)
        if n % 2:
            event = builder.checkout_session_completed(user_id=user, qty=1)
        else:
            event = builder.invoice_paid(user_id=user, subscription_id=f"sub_{n}", price_id=PRICE)
        stub.add_event(event)


def timed(work: Callable[[], SyncReport]) -> tuple[float, SyncReport]:
    start = time.perf_counter()
    report = work()
    return time.perf_counter() - start, report


def run(db: hosts.Database, stub: StripeStub, count: int) -> list[tuple[str, float, int]]:
    """Seconds and events of each step of one database."""
    extra = {"STRIPE_SECRET_KEY": "sk_test_bench", "STRIPE_API_BASE": stub.url}
    app, sqla = hosts.plugin_app(db, PAXPAR_CHECKOUT_PRICES={PRICE: 100}, **extra)
    hosts.reset_plugin_tables(app, sqla)
    rows = []
    with app.app_context():
        for step, work, counted in (
            ("dry run", lambda: run_sync(dry_run=True), "processed"),
            ("first sync", run_sync, "processed"),
            ("second sync", run_sync, "duplicate"),
        ):
            seconds, report = timed(work)
            assert report.ok and getattr(report, counted) == count, report.problems
            rows.append((step, seconds, count))
        sqla.session.remove()
        sqla.drop_all()
        sqla.engine.dispose()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sync", description=__doc__)
    parser.add_argument("--events", type=int, default=1000, help="missed events to apply")
    parser.add_argument("--db", default="sqlite", help="sqlite, postgresql or both")
    parser.add_argument("--pg-url", default=None, help="a PostgreSQL database it may wipe")
    args = parser.parse_args(argv)
    kinds = args.db.split(",")
    if "postgresql" in kinds and not args.pg_url:
        parser.error("--db postgresql needs --pg-url: a database whose plugin tables it may wipe")
    print(f"{'database':<32} {'step':<12} {'events':>7} {'seconds':>8} {'events/s':>9}")
    with StripeStub() as stub:
        seed(stub, args.events)
        for kind in kinds:
            db = hosts.sqlite_database("sync") if kind == "sqlite" else None
            db = db or hosts.Database("postgresql", args.pg_url)
            for step, seconds, count in run(db, stub, args.events):
                print(
                    f"{db.label:<32} {step:<12} {count:>7} {seconds:>8.2f} {count / seconds:>9.0f}"
                )
            if kind == "sqlite":
                hosts.remove_sqlite(db)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
