"""Scaling: the per-event cost with few stored events and with many, side by side.

Two databases, one seeded with ``small`` stored events and one with ``large`` (plus the
ledger entries and checkout sessions that many events leave behind), are sent the same mix
in interleaved rounds. Seeded rows are written directly with SQL (their payloads short: what
matters is the size of the indexes the webhook path looks up and writes to).
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import text

from . import hosts
from .inprocess import Receiver, post_all
from .report import Section, Target, median
from .workload import FQDN, Delivery, Workload

PAYLOAD = '{"object": "event", "seeded": true, "pad": "' + "x" * 300 + '"}'
LEDGER_SHARE = 2  # a ledger entry per 2 events
SESSION_SHARE = 3  # a checkout session per 3 events

_SQLITE_SEED = [
    """WITH RECURSIVE n(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM n WHERE i < :last)
    INSERT INTO paxpar_checkout_events (id, type, fqdn, api_version, created, livemode, status,
        reason, attempts, last_error, received_at, processed_at, payload)
    SELECT 'evt_' || lower(hex(randomblob(12))),
        CASE i % 4 WHEN 0 THEN 'invoice.paid' WHEN 1 THEN 'checkout.session.completed'
            WHEN 2 THEN 'invoice.payment_failed' ELSE 'customer.subscription.updated' END,
        :fqdn, '2026-07-29.dahlia', 1600000000 + i, 0,
        CASE WHEN i % 10 = 0 THEN 'ignored' ELSE 'processed' END, NULL, 1, NULL,
        strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (:last - i) || ' seconds'),
        strftime('%Y-%m-%d %H:%M:%f', 'now', '-' || (:last - i) || ' seconds'), :payload
    FROM n""",
    """WITH RECURSIVE n(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM n WHERE i < :last),
    k(i, key) AS (SELECT i, 'reset:in_' || lower(hex(randomblob(12))) FROM n
        WHERE i % :ledger = 0)
    INSERT INTO paxpar_checkout_credit_ledger (user_id, effective_at, position, amount, delta,
        balance_after, reason, stripe_object_id, dedup_key, memo, created_at)
    SELECT CAST(1 + abs(random()) % 5000 AS TEXT),
        strftime('%Y-%m-%d %H:%M:%f', 1600000000 + i, 'unixepoch'),
        printf('%017d|0|', (1600000000 + i) * 1000000) || key, 100, 100, 100,
        'subscription_reset', 'in_seed' || i, key, NULL, strftime('%Y-%m-%d %H:%M:%f', 'now')
    FROM k""",
    """WITH RECURSIVE n(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM n WHERE i < :last)
    INSERT INTO paxpar_checkout_sessions (id, user_id, mode, qty, price_id, customer_id,
        redirect_url, status, subscription_id, created_at, completed_at)
    SELECT 'cs_test_' || lower(hex(randomblob(16))), CAST(1 + abs(random()) % 5000 AS TEXT),
        'payment', 5, 'price_benchcredit', NULL, 'https://bench.paxpar.tech/', 'complete', NULL,
        strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', 'now')
    FROM n WHERE i % :sessions = 0""",
]

_PG_SEED = [
    """INSERT INTO paxpar_checkout_events (id, type, fqdn, api_version, created, livemode,
        status, reason, attempts, last_error, received_at, processed_at, payload)
    SELECT 'evt_' || substr(md5(random()::text || i), 1, 24),
        (ARRAY['invoice.paid', 'checkout.session.completed', 'invoice.payment_failed',
            'customer.subscription.updated'])[1 + i % 4],
        :fqdn, '2026-07-29.dahlia', 1600000000 + i, false,
        CASE WHEN i % 10 = 0 THEN 'ignored' ELSE 'processed' END, NULL, 1, NULL,
        now() - make_interval(secs => :last - i), now() - make_interval(secs => :last - i),
        :payload
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i""",
    """INSERT INTO paxpar_checkout_credit_ledger (user_id, effective_at, position, amount,
        delta, balance_after, reason, stripe_object_id, dedup_key, memo, created_at)
    SELECT (1 + floor(random() * 5000))::int::text, to_timestamp(1600000000 + i),
        lpad(((1600000000 + i) * 1000000)::text, 17, '0') || '|0|' || key, 100, 100, 100,
        'subscription_reset', 'in_seed' || i, key, NULL, now()
    FROM (SELECT i, 'reset:in_' || md5(random()::text || i) AS key
        FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
        WHERE i % :ledger = 0) AS k""",
    """INSERT INTO paxpar_checkout_sessions (id, user_id, mode, qty, price_id, customer_id,
        redirect_url, status, subscription_id, created_at, completed_at)
    SELECT 'cs_test_' || md5(random()::text || i), (1 + floor(random() * 5000))::int::text,
        'payment', 5, 'price_benchcredit', NULL, 'https://bench.paxpar.tech/', 'complete',
        NULL, now(), now()
    FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i
    WHERE i % :sessions = 0""",
]


def _database(kind: str, name: str, pg_url: str | None) -> hosts.Database:
    if kind == "sqlite":
        return hosts.sqlite_database(f"scale_{name}")
    return hosts.pg_database(pg_url, suffix=f"_{name}")


def seed(db: hosts.Database, events: int, chunk: int = 100_000) -> float:
    """Store ``events`` events (and their ledger entries and sessions); seconds taken."""
    start = time.monotonic()
    app, sqla = hosts.plugin_app(db)
    hosts.reset_plugin_tables(app, sqla)
    with app.app_context():
        sqla.engine.dispose()
    params = {"fqdn": FQDN, "payload": PAYLOAD, "ledger": LEDGER_SHARE, "sessions": SESSION_SHARE}
    if db.kind == "sqlite":
        path = db.url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA synchronous=OFF")
            for first in range(1, events + 1, chunk):
                last = min(events, first + chunk - 1)
                for sql in _SQLITE_SEED:
                    conn.execute(sql, {**params, "first": first, "last": last})
                conn.commit()
            conn.execute("ANALYZE")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        app, sqla = hosts.plugin_app(db)
        with app.app_context():
            for first in range(1, events + 1, chunk):
                last = min(events, first + chunk - 1)
                with sqla.engine.begin() as conn:
                    for sql in _PG_SEED:
                        conn.execute(text(sql), {**params, "first": first, "last": last})
            with sqla.engine.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                for table in ("events", "credit_ledger", "sessions"):
                    conn.execute(text(f"VACUUM ANALYZE paxpar_checkout_{table}"))
                conn.execute(text("CHECKPOINT"))
            sqla.engine.dispose()
    os.sync()  # the seeded pages on disk now, not flushed during the measurement
    return time.monotonic() - start


def run(
    kind: str,
    *,
    pg_url: str | None,
    small: int,
    large: int,
    rounds: int,
    per_round: int,
    seed_value: int = 13,
) -> Section:
    """Interleaved rounds of the plugin on a database of ``small`` and one of ``large``."""
    seeded: dict[str, tuple[hosts.Database, int, float]] = {}
    for name, events in (("small", small), ("large", large)):
        db = _database(kind, name, pg_url)
        seeded[name] = (db, events, seed(db, events))

    rng = random.Random(seed_value)
    receivers: dict[str, Receiver] = {}
    works: dict[str, Workload] = {}
    for name, (db, _events, _took) in seeded.items():
        app, sqla = hosts.plugin_app(db)
        receivers[name] = Receiver(
            name, app, app.test_client(), hosts.WEBHOOK_PATH["plugin"], _seeder(app, sqla, name[0])
        )
        works[name] = Workload(seed=seed_value, prefix=name[0])
    timings: dict[str, list[float]] = {name: [] for name in receivers}
    for n in range(rounds + 1):
        order = list(receivers)
        rng.shuffle(order)
        for name in order:
            deliveries = works[name].deliveries(per_round)
            receivers[name].seed(deliveries)
            seconds = post_all(receivers[name], deliveries)
            if n:
                timings[name].append(seconds / per_round * 1e6)
    for receiver in receivers.values():
        with receiver.app.app_context():
            receiver.app.extensions["sqlalchemy"].engine.dispose()
    ratios = [g / s for g, s in zip(timings["large"], timings["small"], strict=True)]
    ratio = median(ratios)

    label = "SQLite (WAL, synchronous=FULL)" if kind == "sqlite" else "PostgreSQL"
    section = Section(
        title=f"Scaling with stored events, {label}",
        header=("stored events", "seeded in s", "events/s", "us/event"),
    )
    for name, (_db, events, took) in seeded.items():
        us = median(timings[name])
        section.rows.append((events, took, 1e6 / us, us))
    section.rows.append((f"{large:,} / {small:,} (median of rounds)", None, None, ratio))
    section.notes.append(
        f"{rounds} interleaved rounds of {per_round} deliveries on each database; a ledger "
        f"entry per {LEDGER_SHARE} and a checkout session per {SESSION_SHARE} stored events"
    )
    section.targets.append(
        Target(f"scaling, {kind}: |cost at {large:,} / cost at {small:,} - 1|", abs(ratio - 1), 0.2)
    )
    _drop_large(seeded["large"][0])
    return section


def _seeder(app: Flask, sqla: SQLAlchemy, prefix: str) -> Callable[[list[Delivery]], None]:
    """Stores the sessions a batch of deliveries completes, as the host's checkout did."""

    def store(deliveries: list[Delivery]) -> None:
        hosts.seed_sessions(app, sqla, [d.session for d in deliveries if d.session], prefix)

    return store


def _drop_large(db: hosts.Database) -> None:
    """Give the disk back: the large database is rebuilt on each run."""
    if db.kind == "sqlite":
        hosts.remove_sqlite(db)
        return
    app, sqla = hosts.plugin_app(db)
    with app.app_context():
        sqla.drop_all()
        sqla.engine.dispose()
