"""The per-app state kept in ``app.extensions["paxpar_checkout"]``, built by ``init_app``."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from marshmallow import Schema

from .billing import CheckoutSessions, Customers, Prices
from .checkout_sessions import CheckoutSessionMaker
from .config import CheckoutConfig
from .database import Database
from .gateway import StripeGateway
from .ledger import CreditLedger
from .models import Tables
from .pipeline import Pipeline
from .purchases import Purchases
from .records import EventRecords
from .refunds import Refunds
from .subscriptions import Subscriptions
from .users import UserSource

EXTENSION_KEY = "paxpar_checkout"


@dataclass(frozen=True)
class CheckoutState:
    """Everything one app's plugin needs, built once by ``init_app``."""

    config: CheckoutConfig
    tables: Tables
    database: Database
    records: EventRecords
    ledger: CreditLedger
    subscriptions: Subscriptions
    customers: Customers
    checkout_sessions: CheckoutSessions
    prices: Prices
    gateway: StripeGateway
    session_maker: CheckoutSessionMaker
    purchases: Purchases
    refunds: Refunds
    pipeline: Pipeline
    users: UserSource
    session_query: Schema
    portal_query: Schema


def current_state() -> CheckoutState:
    """The current app's plugin state; a clear error if ``init_app`` was not called."""
    try:
        state: CheckoutState = current_app.extensions[EXTENSION_KEY]
    except KeyError:
        raise RuntimeError(
            "flask-paxpar-checkout is not initialised on this app: call "
            "PaxparCheckout.init_app(app, db=db) first."
        ) from None
    return state
