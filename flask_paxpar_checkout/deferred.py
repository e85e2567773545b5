"""Deferred handlers: slow work that leaves the database, run after the event's commit.

The event's transaction writes one outbox row per deferred handler (``outbox``). After the
commit the rows are handed off: to the host's Celery app when ``init_celery`` was called,
else run in this process once the webhook's answer is sent. Either way a row is claimed by
one runner at a time, retried with backoff when its handler raises, and left ``failed``
with its traceback after the last attempt. No worker pool of our own: Celery's workers, or
``flask checkout outbox run`` from cron, do the rest.
"""

from __future__ import annotations

import json
import logging
import traceback
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask, after_this_request, current_app, has_app_context, has_request_context
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Table
from werkzeug.wrappers import Response

from . import outbox, telemetry
from .config import CheckoutConfig
from .errors import CheckoutError
from .outbox import OutboxKey

log = logging.getLogger("flask_paxpar_checkout")

Handler = Callable[[dict[str, Any]], None]
TASK_NAME = "flask_paxpar_checkout.run_deferred"
RUNTIME_KEY = "paxpar_checkout_deferred"
# A broker that does not answer must not hold the webhook's answer: one quick retry, then
# the row waits for `outbox run`.
# The Flask app given to init_celery, per Celery app: for a task running outside its context.
_flask_apps: weakref.WeakKeyDictionary[Any, Flask] = weakref.WeakKeyDictionary()
_SEND_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


class DeferredHandlers:
    """The registry of deferred handlers: by event type, and by the name rows carry."""

    def __init__(self) -> None:
        self.names_by_type: dict[str, list[str]] = {}
        self.by_name: dict[str, Handler] = {}
        self.celery_task: Any = None  # set by init_celery without an app: every app's queue

    def register(self, event_type: str, handler: Handler) -> str:
        """Register ``handler`` for ``event_type``; returns the name its rows carry."""
        name = handler_name(handler)
        if name.startswith("__main__."):
            raise ValueError(
                f"deferred handler {name!r} is defined in a script run as __main__: its name "
                "would differ in the worker; define it in an importable module"
            )
        known = self.by_name.setdefault(name, handler)
        if known is not handler:
            raise ValueError(f"another deferred handler is already registered as {name!r}")
        names = self.names_by_type.setdefault(event_type, [])
        if name not in names:
            names.append(name)
        return name


def handler_name(handler: Handler) -> str:
    """The stable name of a handler in outbox rows: its module and qualified name."""
    return f"{handler.__module__}.{getattr(handler, '__qualname__', repr(handler))}"


@dataclass
class DeferredRuntime:
    """One app's deferred machinery, kept in ``app.extensions``."""

    db: SQLAlchemy
    table: Table
    config: CheckoutConfig
    registry: DeferredHandlers
    celery_task: Any = None

    @property
    def task(self) -> Any:
        return self.celery_task if self.celery_task is not None else self.registry.celery_task


def init_app(
    app: Flask, db: SQLAlchemy, config: CheckoutConfig, registry: DeferredHandlers
) -> None:
    """Keep ``app``'s deferred runtime in its extensions."""
    table = outbox_table(db)
    app.extensions[RUNTIME_KEY] = DeferredRuntime(db, table, config, registry)


def outbox_table(db: SQLAlchemy) -> Table:
    from .models import define_outbox_table

    return define_outbox_table(db.metadata)


def runtime() -> DeferredRuntime:
    """The current app's deferred runtime."""
    try:
        found: DeferredRuntime = current_app.extensions[RUNTIME_KEY]
    except KeyError:
        raise RuntimeError(
            "flask-paxpar-checkout is not initialised on this app: call "
            "PaxparCheckout.init_app(app, db=db) first."
        ) from None
    return found


def init_celery(celery_app: Any, registry: DeferredHandlers, app: Flask | None = None) -> Any:
    """Register the plugin's one task on ``celery_app`` (``acks_late``: a worker killed
    mid-task has it delivered again) and send ``app``'s rows to it, or every app's."""
    task = celery_app.tasks.get(TASK_NAME)
    if task is None:
        task = celery_app.task(
            name=TASK_NAME,
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
        )(_run_task)
    if app is None and has_app_context():
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app is None:
        registry.celery_task = task
    else:
        found = app.extensions.get(RUNTIME_KEY)
        if found is None:
            raise RuntimeError("call checkout.init_app(app, db=db) before init_celery")
        found.celery_task = task
        _flask_apps[celery_app] = app
    return task


def _run_task(task: Any, event_id: str, handler: str) -> None:
    """The Celery task: run one row in the Flask app's context; look again when asked."""
    with _app_context(task):
        key = OutboxKey(event_id, handler)
        wait = run_one(key)
        if wait is not None:
            _send(runtime(), [key], countdown=wait)


@contextmanager
def _app_context(task: Any) -> Iterator[None]:
    if has_app_context():  # Flask's Celery pattern: the task runs in the app's context
        yield
        return
    app = _flask_apps.get(task.app)
    if app is None:
        raise CheckoutError(
            f"{TASK_NAME} needs the Flask app's context: use Flask's Celery pattern (a Task "
            "class whose __call__ pushes app.app_context()) or init_celery(celery_app, app=app)"
        )
    with app.app_context():
        yield


def hand_off(rows: Sequence[OutboxKey]) -> None:
    """After the event's commit: send ``rows`` to Celery, or run them in this process once
    the answer has been sent (at once outside of a request)."""
    if not rows:
        return
    rt = runtime()
    if rt.task is not None:
        _send(rt, rows)
    elif has_request_context():
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
        keys = list(rows)

        @after_this_request
        def run_after_answer(response: Response) -> Response:
            response.call_on_close(lambda: _run_in(app, keys))
            return response

    else:
        for key in rows:
            run_one(key)
    _refresh_gauges(rt)


def _run_in(app: Flask, keys: Sequence[OutboxKey]) -> None:
    """Run ``keys`` after the answer; what cannot run now waits for ``outbox run``."""
    with app.app_context():
        for key in keys:
            try:
                run_one(key)
            except Exception:  # the database failed: the row waits for `outbox run`
                log.exception(
                    "Could not run deferred handler %s of event %s", key.handler, key.event_id
                )
        _refresh_gauges(runtime())


def _send(rt: DeferredRuntime, keys: Sequence[OutboxKey], countdown: float | None = None) -> int:
    """Publish ``keys`` to the queue; those the broker refused are marked unsent, for
    ``outbox run`` to send again. Returns how many were sent."""
    refused = []
    for key in keys:
        try:
            rt.task.apply_async(
                (key.event_id, key.handler),
                countdown=countdown,
                retry=True,
                retry_policy=_SEND_RETRY,
            )
        except Exception as exc:  # the broker is down: the row is durable, it waits
            log.warning(
                "Could not hand deferred handler %s of event %s to the queue: %s",
                key.handler,
                key.event_id,
                type(exc).__name__,
            )
            refused.append(key)
    if refused:
        try:
            with rt.db.engine.begin() as connection:
                outbox.mark_sent(connection, rt.table, refused, sent=False)
        except Exception:  # then it is sent again once RESEND_AFTER has passed
            log.exception("Could not mark %d outbox row(s) unsent", len(refused))
    return len(keys) - len(refused)


def run_one(key: OutboxKey) -> float | None:
    """Claim ``key``'s row and run its handler once, marking it done or failed.

    Returns the seconds after which to look at the row again (a retry after the backoff,
    a row not yet due or claimed by another runner), or None when there is nothing left.
    """
    rt = runtime()
    engine = rt.db.engine
    with engine.begin() as connection:
        got = outbox.claim(connection, rt.table, key, lease=rt.config.outbox_resend_after)
    if not got.claimed:
        return got.wait
    assert got.payload is not None
    try:
        handler = rt.registry.by_name.get(key.handler)
        if handler is None:
            raise CheckoutError(f"no deferred handler named {key.handler!r} is registered")
        handler(json.loads(got.payload))
    except Exception as exc:
        error = "".join(traceback.format_exception(exc))[-20000:]
        with engine.begin() as connection:
            delay = outbox.mark_failed(
                connection,
                rt.table,
                key,
                error,
                backoff=rt.config.deferred_backoff,
                max_attempts=rt.config.deferred_max_attempts,
            )
        log.log(
            logging.ERROR if delay is None else logging.WARNING,
            "Deferred handler %s of event %s failed (attempt %d%s): %s",
            key.handler,
            key.event_id,
            got.attempts,
            "; no attempt left" if delay is None else f"; again in {delay:g} s",
            type(exc).__name__,
        )
        return delay
    with engine.begin() as connection:
        outbox.mark_done(connection, rt.table, key)
    return None


def run_due(limit: int = 100) -> tuple[int, int]:
    """Run the rows that are due in this process (cron, without Celery); returns how many
    ran and how many of those are still not done."""
    rt = runtime()
    with rt.db.engine.connect() as connection:
        keys = outbox.due(connection, rt.table, lease=rt.config.outbox_resend_after, limit=limit)
    unfinished = sum(run_one(key) is not None for key in keys)
    _refresh_gauges(rt)
    return len(keys), unfinished


def resend(limit: int = 100) -> tuple[int, int]:
    """Send again to Celery the rows it may have lost; returns how many were found and how
    many the broker took."""
    rt = runtime()
    with rt.db.engine.begin() as connection:
        keys = outbox.unsent(
            connection, rt.table, resend_after=rt.config.outbox_resend_after, limit=limit
        )
        outbox.mark_sent(connection, rt.table, keys, sent=True)
    return len(keys), _send(rt, keys)


def retry(keys: Sequence[OutboxKey] | None = None) -> list[OutboxKey]:
    """Make failed rows pending again and hand them off; returns the rows retried."""
    rt = runtime()
    with rt.db.engine.begin() as connection:
        again = outbox.retry(connection, rt.table, keys)
    if rt.task is not None:
        _send(rt, again)
    else:
        for key in again:
            run_one(key)
    _refresh_gauges(rt)
    return again


def uses_celery() -> bool:
    """Whether the current app hands its rows to Celery."""
    return runtime().task is not None


def _refresh_gauges(rt: DeferredRuntime) -> None:
    if not telemetry.metrics_enabled():
        return
    try:
        with rt.db.engine.connect() as connection:
            telemetry.outbox_counts(outbox.counts(connection, rt.table))
    except Exception:  # a gauge is not worth failing the work it describes
        log.exception("Could not count the outbox rows for the metrics")
