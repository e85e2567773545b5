"""A host service with a deferred handler, shared by the tests and the processes they start:
a Celery worker (``celery -A tests.celery_app worker``) and a web server
(``python -m tests.deferred_host PORT``).

The handler does what the event's ``metadata.test_behaviour`` says and writes each run to
``<runs>/<event id>.log``, so that a test sees every run, in whichever process it happened.
Settings come from the ``DEFERRED_HOST`` environment variable (JSON) in another process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy

from flask_paxpar_checkout import PaxparCheckout, signals

FQDN = "dev.paxpar.tech"
WEBHOOK_SECRET = "whsec_test_secret"
GATE_SECONDS = 60  # a gated or hanging handler gives up after this, and the test fails


def settings_from_env() -> dict[str, Any]:
    settings: dict[str, Any] = json.loads(os.environ["DEFERRED_HOST"])
    return settings


def create_app(settings: dict[str, Any]) -> Flask:
    """The host app: ``database``, ``runs`` (a folder), ``broker`` and ``queue`` for Celery
    (none: deferred handlers run in process), ``config`` (more Flask config)."""
    app = Flask(__name__)
    app.config.update(
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=settings["database"],
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        PAXPAR_FQDN=FQDN,
        PAXPAR_CHECKOUT_PRICES={"price_basic1": 100},
        PAXPAR_CHECKOUT_DEFERRED_BACKOFF=0,
        PAXPAR_CHECKOUT_DEFERRED_MAX_ATTEMPTS=3,
        TEST_RUNS=settings["runs"],
    )
    app.config.update(settings.get("config", {}))
    db = SQLAlchemy()
    db.init_app(app)
    checkout = PaxparCheckout(app, db=db)
    checkout.webhook_handler("invoice.payment_failed", deferred=True)(email_the_user)
    if settings.get("broker"):
        checkout.init_celery(celery_init_app(app, settings["broker"], settings["queue"]))
    if settings.get("crash_after_commit"):
        signals.webhook_processed.connect(_crash, sender=app, weak=False)
    app.extensions["test_db"] = db
    return app


def celery_init_app(app: Flask, broker: str, queue: str) -> Any:
    """Flask's Celery pattern: tasks run in the app's context."""
    from celery import Celery, Task  # type: ignore[import-untyped]

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.conf.update(
        broker_url=broker,
        task_default_queue=queue,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        # A killed worker's unacknowledged task is given to another worker this soon: it
        # is unacknowledged for 2 s, and the workers look for such tasks every second.
        broker_transport_options={
            "visibility_timeout": 2,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app


def email_the_user(event: dict[str, Any]) -> None:
    """The deferred handler: slow work outside the database, as the event's behaviour says."""
    runs = Path(current_app.config["TEST_RUNS"])
    behaviour = event["data"]["object"].get("metadata", {}).get("test_behaviour", "ok")
    log = runs / f"{event['id']}.log"
    if behaviour == "gated":
        _wait_for(runs / "go")
    attempt = _count(log) + 1
    _append(log, f"start {attempt} pid={os.getpid()}")
    if behaviour == "hang_first" and attempt == 1:
        _wait_for(runs / "never")  # the test kills the worker meanwhile
    kind, _, times = behaviour.partition(":")
    if kind == "fail" and attempt <= int(times):
        raise RuntimeError(f"SMTP server down (attempt {attempt})")
    if kind == "always" and not (runs / "fixed").exists():
        raise RuntimeError("SMTP server refuses the address")
    _append(log, f"end {attempt}")


def runs_of(runs: Path, event_id: str) -> list[str]:
    """The lines a handler wrote for ``event_id``."""
    log = runs / f"{event_id}.log"
    return log.read_text().splitlines() if log.exists() else []


def _count(log: Path) -> int:
    return (
        sum(line.startswith("start") for line in log.read_text().splitlines())
        if log.exists()
        else 0
    )


def _append(log: Path, line: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + GATE_SECONDS
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)


def _crash(sender: Any, **_: Any) -> None:
    """The process dies after the event's commit, before its deferred handler runs."""
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    from werkzeug.serving import make_server

    from tests import deferred_host  # the handler's name is the module's, not __main__'s

    app = deferred_host.create_app(settings_from_env())
    server = make_server("127.0.0.1", int(sys.argv[1]), app)
    print("serving", flush=True)
    server.serve_forever()
