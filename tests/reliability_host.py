"""The example host service as the load test serves it under gunicorn.

``create_app()`` is ``examples.host_app.create_app()`` (configured by the environment) with
one host handler per event type that writes a row per run, in the event's transaction, so
that the test can count how many times each event was really handled. The events named in
``RELIABILITY_FAULTY_EVENTS`` (comma-separated ids) fail on their first attempt, as a host
handler with a transient fault would.

``init_database()`` creates every table once, before the workers start: the example creates
its tables and demo users when each app is built, which several workers starting together
on an empty database would race on.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from flask_paxpar_checkout.state import EXTENSION_KEY
from flask_paxpar_checkout.testing.events import SUPPORTED_TYPES

HANDLER_RUNS = Table(
    "reliability_handler_runs",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
)
FAULTY_ENV = "RELIABILITY_FAULTY_EVENTS"


class InjectedFault(RuntimeError):
    """The host handler's deliberate failure."""


def create_app() -> Flask:
    from examples.host_app import create_app as create_host_app
    from examples.host_app.extensions import checkout, db

    app = create_host_app()
    faulty = frozenset(filter(None, os.environ.get(FAULTY_ENV, "").split(",")))
    events = app.extensions[EXTENSION_KEY].tables.events

    def record_run(event: dict[str, Any]) -> None:
        attempts = db.session.execute(
            select(events.c.attempts).where(events.c.id == event["id"])
        ).scalar_one()
        if event["id"] in faulty and attempts == 1:
            raise InjectedFault(f"first attempt of {event['id']} fails on purpose")
        db.session.execute(HANDLER_RUNS.insert(), {"event_id": event["id"], "pid": os.getpid()})

    for event_type in SUPPORTED_TYPES:
        checkout.webhook_handler(event_type)(record_run)
    return app


def init_database() -> None:
    """Create the example's tables, the plugin's and the handler-run table, then stop."""
    from examples.host_app import create_app as create_host_app
    from examples.host_app.extensions import db

    app = create_host_app()
    with app.app_context():
        HANDLER_RUNS.metadata.create_all(db.engine)
        db.session.remove()
        db.engine.dispose()
