"""``PaxparCheckout``: ``init_app``, the handler registry and the public Python API."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from . import deferred as deferred_work
from .announce import announce_credits
from .billing import CheckoutSessions, Customers, Prices
from .checkout_sessions import CheckoutSessionMaker
from .config import CheckoutConfig
from .database import Database
from .gateway import StripeGateway
from .handlers import BuiltinHandlers
from .ledger import CreditLedger, local_entry
from .models import define_tables
from .pipeline import Pipeline
from .purchases import Purchases
from .records import EventRecords
from .refunds import Refunds
from .registry import Handler, HandlerRegistry
from .schemas import redirect_query, session_query
from .state import EXTENSION_KEY, CheckoutState, current_state
from .subscriptions import Subscriptions, SubscriptionState
from .sync import SyncReport, run_sync
from .users import CheckoutUser, UserLoader, UserSource, user_key

log = logging.getLogger("flask_paxpar_checkout")
H = TypeVar("H", bound=Handler)


class PaxparCheckout:
    """Stripe Checkout for a paxpar instance: one object may serve several apps."""

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None) -> None:
        self.registry = HandlerRegistry()
        self.users = UserSource()
        self.deferred_handlers = deferred_work.DeferredHandlers()
        if app is not None:
            if db is None:
                raise TypeError("PaxparCheckout(app, db=db): the host's SQLAlchemy is required")
            self.init_app(app, db=db)

    def init_app(self, app: Flask, *, db: SQLAlchemy) -> None:
        """Validate the config, define the tables on ``db``, register the blueprint and CLI.

        Every configuration key is listed, with its default, in the README's table; a
        missing or malformed one raises ``ConfigurationError`` naming it.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "flask-paxpar-checkout is already initialised on this app; call "
                "init_app once per app (one PaxparCheckout may serve several apps)."
            )
        config = CheckoutConfig.from_mapping(app.config)
        if config.secret_key is None:
            log.info("STRIPE_SECRET_KEY is not set: checkout links answer 503 until it is")
        app.extensions[EXTENSION_KEY] = _build_state(
            config, db, self.registry, self.users, self.deferred_handlers
        )
        deferred_work.init_app(app, db, config, self.deferred_handlers)

        from .cli import checkout_cli
        from .views import blueprint, exempt_from_csrf

        deferred_work.init_app(app, db, config, self.deferred_handlers)
        app.register_blueprint(blueprint, url_prefix=config.url_prefix)
        exempt_from_csrf(app)
        app.cli.add_command(checkout_cli)

    # -- registration ----------------------------------------------------------------------

    def user_loader(self, loader: UserLoader) -> UserLoader:
        """Register the function that returns the signed-in user (``.id``, ``.email``) or None."""
        self.users.loader = loader
        return loader

    def webhook_handler(
        self, event_type: str, *, deferred: bool = False, allow_unknown: bool = False
    ) -> Callable[[H], H]:
        """Register a handler of ``event_type``; it receives the verified event as plain data.

        By default it runs in the event's transaction, after the built-in one. With
        ``deferred=True`` it runs after the commit, at least once, from an outbox row keyed
        by (event id, handler name): on the Celery app given to ``init_celery``, else in
        this process once the webhook has answered; retried with backoff when it raises.

        A type this release does not know warns (``UnknownEventType``), since a typo would
        never be called; ``allow_unknown=True`` is for types Stripe added since.
        """

        self.registry.check(event_type, allow_unknown=True)  # a bad name fails here, at once

        def register(handler: H) -> H:
            if deferred:
                self.registry.check(event_type, allow_unknown=allow_unknown)
                self.deferred_handlers.register(event_type, handler)
            else:
                self.registry.add(event_type, handler, allow_unknown=allow_unknown)
            return handler

        return register

    def init_celery(self, celery_app: Any, *, app: Flask | None = None) -> Any:
        """Run deferred handlers on ``celery_app``: registers the plugin's one task there
        (``acks_late``) and hands ``app``'s rows to it (the current app's inside an app
        context; else every app's). Returns the task."""
        return deferred_work.init_celery(celery_app, self.deferred_handlers, app)

    def init_metrics(self, app: Flask, *, registry: Any = None) -> None:
        """Record ``app``'s Prometheus metrics in ``registry`` (the global one by default);
        needs the ``[metrics]`` extra."""
        from . import signals
        from .metrics import CheckoutMetrics
        from .telemetry import METRICS_KEY

        metrics = CheckoutMetrics.of(registry)
        app.extensions[METRICS_KEY] = metrics
        signals.credits_changed.connect(metrics.credits_changed, sender=app, weak=False)

    def current_user(self) -> CheckoutUser | None:
        """The signed-in user, from the ``user_loader`` or else Flask-Login, or None."""
        return self.users.current()

    # -- public API ------------------------------------------------------------------------

    def credits(self, user_id: int | str) -> int:
        """The user's credit balance (deprecated credit system)."""
        state = current_state()
        with state.database.reading() as tx:
            return state.ledger.balance(tx, user_key(user_id))

    def spend_credits(
        self, user_id: int | str, n: int, *, memo: str | None = None, commit: bool = True
    ) -> int:
        """Take ``n`` credits atomically and return the new balance, or raise
        ``InsufficientCredits`` having taken nothing. With ``commit=False`` the spend joins
        the caller's transaction on ``db.session`` (the caller commits)."""
        _check_count("spend_credits", n)
        state = current_state()
        uid = user_key(user_id)
        joined = state.database.joined() if not commit else None
        with joined or state.database.transaction() as tx:
            change = state.ledger.spend(tx, uid, n, memo)
            announce_credits(tx, change)
        return change.after

    def add_credits(self, user_id: int | str, n: int, *, memo: str | None = None) -> int:
        """Grant ``n`` credits by hand (support, goodwill); recorded in the ledger."""
        _check_count("add_credits", n)
        state = current_state()
        with state.database.transaction() as tx:
            change = state.ledger.record(tx, user_key(user_id), local_entry("grant", n, memo))
            announce_credits(tx, change)
        assert change is not None  # a local entry's key is new
        return change.after

    def ledger(self, user_id: int | str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The user's latest credit ledger entries, newest effective time first, as dicts
        (``effective_at`` and ``created_at`` both)."""
        state = current_state()
        with state.database.reading() as tx:
            return state.ledger.entries(tx, user_key(user_id), limit)

    def subscription(self, user_id: int | str) -> SubscriptionState | None:
        """The user's current subscription (a live one first, else the latest), or None."""
        state = current_state()
        with state.database.reading() as tx:
            return state.subscriptions.of_user(tx, user_key(user_id))

    def customer_id(self, user_id: int | str) -> str | None:
        """The user's Stripe customer id, once they have been to Checkout (else None)."""
        state = current_state()
        with state.database.reading() as tx:
            return state.customers.customer_of(tx, user_key(user_id))

    def sync(self, since: str | int | datetime | None = None, dry_run: bool = False) -> SyncReport:
        """Fetch the events Stripe kept and apply those this database missed, through the
        webhook's pipeline (exactly once); see ``flask checkout sync`` in the README.

        :param since: how far back: an age (``"3d"``), an ISO date, a ``datetime`` or a Unix
            time; by default from an hour before the last completed sync (30 days at first).
        :param dry_run: apply everything in a transaction that is rolled back, and report
            per user the credits and subscription status before and after.
        :raises SyncBusy: another sync holds the lease on this database.
        """
        return run_sync(since=since, dry_run=dry_run)

    @property
    def config(self) -> CheckoutConfig:
        """The current app's validated configuration."""
        return current_state().config


def _build_state(
    config: CheckoutConfig,
    db: SQLAlchemy,
    registry: HandlerRegistry,
    users: UserSource,
    deferred: deferred_work.DeferredHandlers,
) -> CheckoutState:
    """Every part of the plugin for one app, each given what it needs."""
    tables = define_tables(db.metadata)
    database = Database(db, tables)
    gateway = StripeGateway(config)
    ledger, subscriptions = CreditLedger(), Subscriptions()
    customers, sessions, prices = Customers(), CheckoutSessions(), Prices()
    refunds = Refunds(ledger, sessions)
    purchases = Purchases(config, database, sessions, customers, ledger, subscriptions, refunds)
    builtins = BuiltinHandlers(
        config,
        ledger=ledger,
        subscriptions=subscriptions,
        customers=customers,
        sessions=sessions,
        prices=prices,
        purchases=purchases,
        refunds=refunds,
    )
    records = EventRecords(tables)
    return CheckoutState(
        config=config,
        tables=tables,
        database=database,
        records=records,
        ledger=ledger,
        subscriptions=subscriptions,
        customers=customers,
        checkout_sessions=sessions,
        prices=prices,
        gateway=gateway,
        session_maker=CheckoutSessionMaker(
            config, gateway, database, sessions=sessions, customers=customers, prices=prices
        ),
        purchases=purchases,
        refunds=refunds,
        pipeline=Pipeline(
            config,
            database,
            records,
            builtins.by_type(),
            registry,
            deferred=deferred.names_by_type,
            outbox=deferred_work.outbox_table(db),
        ),
        users=users,
        session_query=session_query(config),
        portal_query=redirect_query(config, "/"),
    )


def _check_count(name: str, n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{name}: n must be a positive whole number, not {n!r}")


__all__ = ["PaxparCheckout", "user_key"]
