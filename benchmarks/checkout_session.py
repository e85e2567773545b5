"""Checkout Session creation against the local Stripe stub (a process of its own): the
plugin's ``GET /api/checkout/session`` (validation, customer lookup, the session stored)
against a plain handler calling ``stripe`` directly with the same parameters."""

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


def plain_app(stub_url: str, customers: dict[str, str]) -> Flask:
    """A handler that creates the same Checkout Session with ``stripe`` and nothing else."""
    app = Flask("bench_plain_checkout")
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
    """Interleaved rounds of both ways of creating a one-time payment session."""
    hosts.reset_tables(db)
    rng = random.Random(seed)
    users = [str(u) for u in range(1, USERS + 1)]
    with stripe_stub() as url:
        app, sqla = hosts.plugin_app(db, STRIPE_SECRET_KEY=SECRET_KEY, STRIPE_API_BASE=url)
        with app.app_context():  # every user has paid before: the plugin looks the customer up
            store = current_state().store
            customers = {u: f"cus_bench{u}" for u in users}
            for user, customer in customers.items():
                store.link_customer(user, customer, f"user{user}@example.com")
            sqla.session.commit()
        ways: dict[str, tuple[FlaskClient, str]] = {
            "plain": (plain_app(url, customers).test_client(), "/checkout?qty=5"),
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
    section.notes.append(
        f"{rounds} interleaved rounds of {per_round} sessions each (qty=5, JSON answer); "
        "the stub serves from another process; every user already has a Stripe customer"
    )
    section.notes.append(f"sessions the plugin stored: {stored:,}")
    section.targets.append(
        Target(f"checkout session, {db.kind}: plugin/plain", median(ratios), 1.2)
    )
    return section
