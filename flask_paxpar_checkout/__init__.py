"""Stripe Checkout for a paxpar instance's Flask service."""

from __future__ import annotations

from . import signals
from .config import CheckoutConfig
from .errors import (
    CheckoutError,
    CheckoutHTTPError,
    CheckoutNotConfigured,
    ConfigurationError,
    CreditsDisabled,
    HandlerFailed,
    InsufficientCredits,
    InvalidRequest,
    InvalidSyncWindow,
    InvalidWebhook,
    NoStripeCustomer,
    NotAuthenticated,
    StripeServiceError,
    StripeUnavailable,
    SyncBusy,
    UnsafeRedirect,
)
from .extension import PaxparCheckout
from .ledger import CreditChange
from .registry import UnknownEventType
from .subscriptions import SubscriptionState
from .sync import SyncReport, UserChange
from .users import user_key

__all__ = [
    "CheckoutConfig",
    "CheckoutError",
    "CheckoutHTTPError",
    "CheckoutNotConfigured",
    "ConfigurationError",
    "CreditChange",
    "CreditsDisabled",
    "HandlerFailed",
    "InsufficientCredits",
    "InvalidRequest",
    "InvalidSyncWindow",
    "InvalidWebhook",
    "NoStripeCustomer",
    "NotAuthenticated",
    "PaxparCheckout",
    "StripeServiceError",
    "StripeUnavailable",
    "SubscriptionState",
    "SyncBusy",
    "SyncReport",
    "UnknownEventType",
    "UnsafeRedirect",
    "UserChange",
    "signals",
    "user_key",
]
