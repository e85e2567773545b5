"""``PaxparCheckout``: ``init_app``, the handler registry and the public Python API."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from flask import Flask, has_request_context
from flask_sqlalchemy import SQLAlchemy

from .config import CheckoutConfig
from .dispatch import Dispatcher, Handler, unit_of_work
from .errors import CheckoutError
from .gateway import StripeGateway
from .handlers import BUILTIN_HANDLERS, announce
from .models import define_tables
from .schemas import redirect_query, session_query
from .sessions import CheckoutUser, SessionFactory
from .state import EXTENSION_KEY, CheckoutState, current_state
from .store import CreditChange, Store, SubscriptionState
from .sync import SyncReport, run_sync

log = logging.getLogger("flask_paxpar_checkout")
H = TypeVar("H", bound=Handler)
UserLoader = Callable[[], Any]


class PaxparCheckout:
    """Stripe Checkout for a paxpar instance: one object may serve several apps."""

    def __init__(self, app: Flask | None = None, *, db: SQLAlchemy | None = None) -> None:
        self._user_loader: UserLoader | None = None
        # Strong references: a registered handler can never silently vanish.
        self.handlers: dict[str, list[Handler]] = {
            event_type: [handler] for event_type, handler in BUILTIN_HANDLERS.items()
        }
        if app is not None:
            if db is None:
                raise TypeError("PaxparCheckout(app, db=db): the host's SQLAlchemy is required")
            self.init_app(app, db=db)

    def init_app(self, app: Flask, *, db: SQLAlchemy) -> None:
        """Validate the config, define the tables on ``db``, register the blueprint and CLI."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "flask-paxpar-checkout is already initialised on this app; call "
                "init_app once per app (one PaxparCheckout may serve several apps)."
            )
        config = CheckoutConfig.from_mapping(app.config)
        tables = define_tables(db.metadata)
        store = Store(db, tables)
        gateway = StripeGateway(config)
        if config.secret_key is None:
            log.info("STRIPE_SECRET_KEY is not set: checkout links answer 503 until it is")
        app.extensions[EXTENSION_KEY] = CheckoutState(
            extension=self,
            config=config,
            tables=tables,
            store=store,
            gateway=gateway,
            sessions=SessionFactory(config, gateway, store),
            dispatcher=Dispatcher(config, store, self.handlers, BUILTIN_HANDLERS.values()),
            session_query=session_query(config),
            portal_query=redirect_query(config, "/"),
        )

        from .cli import checkout_cli
        from .views import blueprint, exempt_from_csrf

        app.register_blueprint(blueprint, url_prefix=config.url_prefix)
        exempt_from_csrf(app)
        app.cli.add_command(checkout_cli)

    # -- registration ----------------------------------------------------------------------

    def user_loader(self, loader: UserLoader) -> UserLoader:
        """Register the function that returns the signed-in user (``.id``, ``.email``) or None."""
        self._user_loader = loader
        return loader

    def webhook_handler(self, event_type: str) -> Callable[[H], H]:
        """Register a handler of ``event_type``; it runs in the event's transaction, after the
        built-in one, and receives the verified event as plain data."""
        if not isinstance(event_type, str) or not event_type or " " in event_type:
            raise ValueError(f"not a Stripe event type: {event_type!r}")

        def register(handler: H) -> H:
            self.handlers.setdefault(event_type, []).append(handler)
            return handler

        return register

    def current_user(self) -> CheckoutUser | None:
        """The signed-in user, from the ``user_loader`` or else Flask-Login, or None."""
        if self._user_loader is not None:
            user = self._user_loader()
        else:
            user = _flask_login_user()
        if user is None or getattr(user, "id", None) is None:
            return None
        email = getattr(user, "email", None)
        return CheckoutUser(user_key(user.id), email if isinstance(email, str) else None)

    # -- public API ------------------------------------------------------------------------

    def credits(self, user_id: int | str) -> int:
        """The user's credit balance (deprecated credit system)."""
        return current_state().store.credits(user_key(user_id))

    def spend_credits(
        self, user_id: int | str, n: int, *, memo: str | None = None, commit: bool = True
    ) -> int:
        """Take ``n`` credits atomically and return the new balance, or raise
        ``InsufficientCredits`` having taken nothing. With ``commit=False`` the spend joins
        the caller's transaction on ``db.session`` (the caller commits)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"spend_credits: n must be a positive whole number, not {n!r}")
        store = current_state().store
        uid = user_key(user_id)
        if not commit:
            change = store.spend(uid, n, memo)
            announce(change)
            return change.after
        with unit_of_work(store):
            change = store.spend(uid, n, memo)
            announce(change)
        return change.after

    def add_credits(self, user_id: int | str, n: int, *, memo: str | None = None) -> int:
        """Grant ``n`` credits by hand (support, goodwill); recorded in the ledger."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"add_credits: n must be a positive whole number, not {n!r}")
        store = current_state().store
        with unit_of_work(store):
            change = store.change_credits(user_key(user_id), reason="grant", delta=n, memo=memo)
            announce(change)
        assert change is not None
        return change.after

    def ledger(self, user_id: int | str, *, limit: int = 50) -> list[dict[str, Any]]:
        """The user's latest credit ledger rows, newest first, as dicts."""
        rows = current_state().store.ledger(user_key(user_id), limit)
        return [dict(r._mapping) for r in rows]

    def subscription(self, user_id: int | str) -> SubscriptionState | None:
        """The user's current subscription (a live one first, else the latest), or None."""
        return current_state().store.subscription(user_key(user_id))

    def customer_id(self, user_id: int | str) -> str | None:
        """The user's Stripe customer id, once they have been to Checkout (else None)."""
        return current_state().store.customer_id(user_key(user_id))

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


def user_key(user_id: object) -> str:
    """The host's user id as the plugin stores it: ``42`` and ``"42"`` are the same user."""
    if isinstance(user_id, bool) or not isinstance(user_id, (int, str)):
        raise TypeError(f"a user id is an int or a str, not {type(user_id).__name__}")
    key = str(user_id).strip()
    if not key or len(key) > 64:
        raise ValueError(f"a user id must have 1 to 64 characters, got {user_id!r}")
    return key


def _flask_login_user() -> Any:
    try:
        from flask_login import current_user  # type: ignore[import-untyped]
    except ImportError:
        return None
    if not has_request_context() or not getattr(current_user, "is_authenticated", False):
        return None
    return current_user


__all__ = ["CheckoutError", "CreditChange", "PaxparCheckout", "user_key"]
