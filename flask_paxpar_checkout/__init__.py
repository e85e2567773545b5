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
    InvalidWebhook,
    NoStripeCustomer,
    NotAuthenticated,
    StripeServiceError,
    StripeUnavailable,
)
from .extension import PaxparCheckout, user_key
from .store import CreditChange, SubscriptionState

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
    "InvalidWebhook",
    "NoStripeCustomer",
    "NotAuthenticated",
    "PaxparCheckout",
    "StripeServiceError",
    "StripeUnavailable",
    "SubscriptionState",
    "signals",
    "user_key",
]
