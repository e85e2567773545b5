"""Processes that spend and grant credits at the same time, each with its own app and
connection pool, as several gunicorn workers or job runners of a host would."""

from __future__ import annotations

import random
from typing import Any

from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.exc import OperationalError

from flask_paxpar_checkout import InsufficientCredits, PaxparCheckout

# (kind, n, value): ("spent", n, balance after), ("refused", n, balance seen),
# ("granted", n, balance after), ("locked", n, 0) for SQLite's "database is locked",
# ("error", n, 0) for anything else (a bug)
Outcome = tuple[str, int, int]


def make_app(database_url: str) -> tuple[Flask, SQLAlchemy, PaxparCheckout]:
    app = Flask("reliability_spender")
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url,
        PAXPAR_FQDN="dev.paxpar.tech",
        STRIPE_WEBHOOK_SECRET="whsec_reliability",
    )
    db = SQLAlchemy()
    db.init_app(app)
    return app, db, PaxparCheckout(app, db=db)


def run(
    database_url: str, user: str, role: str, seed: int, rounds: int, barrier: Any, results: Any
) -> None:
    """Spend (or grant, with ``role="grant"``) ``rounds`` times; put the outcomes on
    ``results`` as ``(role, seed, outcomes)``."""
    rng = random.Random(seed)
    app, db, checkout = make_app(database_url)
    outcomes: list[Outcome] = []
    with app.app_context():
        checkout.credits(user)  # connect before the start line
        barrier.wait(60)
        for i in range(rounds):
            n = rng.randint(1, 5)
            try:
                if role == "grant":
                    outcomes.append(("granted", n, checkout.add_credits(user, n, memo=f"g{i}")))
                else:
                    outcomes.append(("spent", n, checkout.spend_credits(user, n, memo=f"s{i}")))
            except InsufficientCredits as exc:
                outcomes.append(("refused", n, exc.available))
            except OperationalError as exc:
                outcomes.append(("locked" if "locked" in str(exc.orig) else "error", n, 0))
                db.session.rollback()
            except Exception:
                outcomes.append(("error", n, 0))
                db.session.rollback()
        db.session.remove()
        db.engine.dispose()
    results.put((role, seed, outcomes))
