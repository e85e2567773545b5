"""The per-app state kept in ``app.extensions["paxpar_checkout"]``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app

from .config import CheckoutConfig
from .gateway import StripeGateway
from .models import Tables
from .store import Store

if TYPE_CHECKING:
    from marshmallow import Schema

    from .dispatch import Dispatcher
    from .extension import PaxparCheckout
    from .sessions import SessionFactory

EXTENSION_KEY = "paxpar_checkout"


@dataclass(frozen=True)
class CheckoutState:
    """Everything one app's plugin needs, built once by ``init_app``."""

    extension: PaxparCheckout
    config: CheckoutConfig
    tables: Tables
    store: Store
    gateway: StripeGateway
    sessions: SessionFactory
    dispatcher: Dispatcher
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
