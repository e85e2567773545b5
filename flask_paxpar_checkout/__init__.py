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
    InsufficientCredits,
    InvalidRequest,
    InvalidSyncWindow,
    InvalidWebhook,
    NoStripeCustomer,
    NotAuthenticated,
    StripeServiceError,
    StripeUnavailable,
    SyncBusy,
)
from .extension import PaxparCheckout, user_key
from .store import CreditChange, SubscriptionState
from .sync import SyncReport, UserChange

__all__ = [
    "CheckoutConfig",
    "CheckoutError",
    "CheckoutHTTPError",
    "CheckoutNotConfigured",
    "ConfigurationError",
    "CreditChange",
    "CreditsDisabled",
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
    "UserChange",
    "signals",
    "user_key",
]
