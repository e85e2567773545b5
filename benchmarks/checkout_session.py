"""Checkout Session creation against the local Stripe stub (a process of its own): the
plugin's ``GET /api/checkout/session`` (validation, customer lookup, the session stored)
against a plain handler calling ``stripe`` directly with the same parameters.

For reference, not a target: the plain handler that also stores the created session with
one INSERT in its own transaction, on the same engine, durably: the least a handler that
remembers its sessions does, as ``floor`` is for the webhook.
"""

from __future__ import annotations

import multiprocessing
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection

import stripe
from flask import Flask, Response, jsonify, request
from flask.testing import FlaskClient
from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.engine import Engine

from flask_paxpar_checkout.state import current_state

from . import hosts
from .report import Section, Target, median
from .workload import CREDIT_PRICE, FQDN

SECRET_KEY = "sk_test_benchmarkKey"
USERS = 50
JSON = {"Accept": "application/json"}


def _serve_stub(conn: Connection) -> None:
    from flask_paxpar_checkout.testing import StripeStub

    with StripeStub() as stub:
        conn.send(stub.url)
        conn.recv()  # until told to stop


@contextmanager
def stripe_stub() -> Iterator[str]:
    """The local Stripe API in another process; yields its URL."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=_serve_stub, args=(theirs,), daemon=True)
    process.start()
    try:
        yield str(ours.recv())
    finally:
        ours.send(None)
        process.join(10)


_plain_metadata = MetaData()
PLAIN_SESSIONS = Table(
    "bench_plain_sessions",
    _plain_metadata,
    Column("id", String(255), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("qty", Integer, nullable=False),
)


def plain_app(stub_url: str, customers: dict[str, str], store: Engine | None = None) -> Flask:
    """A handler that creates the same Checkout Session with ``stripe``; with ``store``, it
    then stores the session's id, user and quantity in one committed INSERT."""
    app = Flask("bench_plain_checkout")
    if store is not None:
        _plain_metadata.drop_all(store)
        _plain_metadata.create_all(store)
        insert = hosts.driver_sql(
            store, "INSERT INTO bench_plain_sessions (id, user_id, qty) VALUES (?, ?, ?)"
        )
    client = stripe.StripeClient(
        SECRET_KEY,
        base_addresses={"api": stub_url},
        max_network_retries=2,
        http_client=stripe.RequestsClient(timeout=30),
    )

    @app.get("/checkout")
    def checkout() -> Response:
        user = request.headers["X-User"]
        qty = int(request.args["qty"])
        tags = {"paxpar_fqdn": FQDN, "paxpar_user_id": user, "paxpar_qty": str(qty)}
        session = client.v1.checkout.sessions.create(
            params={
                "mode": "payment",
                "customer": customers[user],
                "client_reference_id": user,
                "line_items": [{"price": CREDIT_PRICE, "quantity": qty}],
                "metadata": tags,
                "success_url": f"https://{FQDN}/api/checkout/success"
                "?session_id={CHECKOUT_SESSION_ID}",
                "cancel_url": f"https://{FQDN}/front/checkout/cancel",
                "payment_intent_data": {"metadata": tags},
            },
            options={"idempotency_key": f"plain-{uuid.uuid4().hex}"},
        )
        if store is not None:
            with store.begin() as conn:
                conn.exec_driver_sql(insert, (session.id, user, qty))
        return jsonify(id=session.id, url=session.url)

    return app


def _get(client: FlaskClient, path: str, users: list[str]) -> float:
    start = time.perf_counter()
    for user in users:
        answer = client.get(path, headers={**JSON, "X-User": user})
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}: {answer.data!r}")
    return time.perf_counter() - start


def run(db: hosts.Database, *, rounds: int, per_round: int, seed: int = 5) -> Section:
    """Interleaved rounds of the ways of creating a one-time payment session."""
    hosts.reset_tables(db)
    rng = random.Random(seed)
    users = [str(u) for u in range(1, USERS + 1)]
    with stripe_stub() as url:
        app, sqla = hosts.plugin_app(db, STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_API_BASE=url)
        with app.app_context():  # every user has paid before: the plugin looks the customer up
            state = current_state()
            customers = {u: f"cus_bench{u}" for u in users}
            with state.database.transaction() as tx:
                for user, customer in customers.items():
                    state.customers.link(tx, user, customer, f"user{user}@example.com")
            engine = sqla.engine
        ways: dict[str, tuple[FlaskClient, str]] = {
            "plain": (plain_app(url, customers).test_client(), "/checkout?qty=5"),
            "plain + stored": (plain_app(url, customers, engine).test_client(), "/checkout?qty=5"),
            "plugin": (app.test_client(), "/api/checkout/session?qty=5"),
        }
        timings: dict[str, list[float]] = {w: [] for w in ways}
        for n in range(rounds + 1):
            order = list(ways)
            rng.shuffle(order)
            for way in order:
                client, path = ways[way]
                picked = [rng.choice(users) for _ in range(per_round)]
                seconds = _get(client, path, picked)
                if n:
                    timings[way].append(seconds / per_round * 1e6)
        stored = hosts.count_rows(app, sqla, "SELECT count(*) FROM paxpar_checkout_sessions")
        with app.app_context():
            sqla.engine.dispose()
    ratios = [p / q for p, q in zip(timings["plugin"], timings["plain"], strict=True)]
    stored_ratios = [
        p / q for p, q in zip(timings["plugin"], timings["plain + stored"], strict=True)
    ]
    section = Section(
        title=f"Checkout Session creation against the local Stripe stub, {db.label}",
        header=("handler", "sessions/s", "us/session"),
    )
    for way, values in timings.items():
        us = median(values)
        section.rows.append((way, 1e6 / us, us))
    section.rows.append(
        ("plugin overhead (us)", None, median(timings["plugin"]) - median(timings["plain"]))
    )
    section.rows.append(("plugin/plain (median of rounds)", None, median(ratios)))
    section.rows.append(("plugin/(plain + stored) (median of rounds)", None, median(stored_ratios)))
    section.notes.append(
        f"{rounds} interleaved rounds of {per_round} sessions each (qty=5, JSON answer); "
        "the stub serves from another process; every user already has a Stripe customer"
    )
    section.notes.append(
        "plain + stored: the plain handler, then one INSERT of the session committed on the "
        "same engine (for reference: the cost of remembering a session durably)"
    )
    section.notes.append(f"sessions the plugin stored: {stored:,}")
    section.targets.append(
        Target(f"checkout session, {db.kind}: plugin/(plain + stored)", median(stored_ratios), 1.15)
    )
    return section
