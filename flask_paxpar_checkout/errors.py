"""The package's exceptions: one base class, HTTP-facing ones subclass werkzeug's."""

from __future__ import annotations

from typing import Any

from werkzeug.exceptions import (
    BadGateway,
    BadRequest,
    Gone,
    HTTPException,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
)


class CheckoutError(Exception):
    """Base class of every error raised by flask-paxpar-checkout."""


class ConfigurationError(CheckoutError, RuntimeError):
    """The app's configuration is missing or invalid; raised by ``init_app``."""


class HandlerFailed(CheckoutError):
    """A webhook handler raised; its effects were rolled back and the failure stored."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"a handler of event {event_id} failed")
        self.event_id = event_id


class UnsafeRedirect(CheckoutError, ValueError):
    """The redirect is not a path on this instance nor a URL of an allowed host."""


class InsufficientCredits(CheckoutError):
    """``spend_credits`` asked for more credits than the user has; nothing was taken."""

    def __init__(self, user_id: str, requested: int, available: int) -> None:
        super().__init__(f"user {user_id!r} has {available} credit(s), {requested} were requested")
        self.user_id = user_id
        self.requested = requested
        self.available = available


class CheckoutHTTPError(CheckoutError, HTTPException):
    """An error answered to the client with the package's JSON error shape."""

    errors: dict[str, Any] | None = None

    def __init__(self, description: str, *, errors: dict[str, Any] | None = None) -> None:
        HTTPException.__init__(self, description)
        self.errors = errors


class InvalidRequest(CheckoutHTTPError, BadRequest):
    """A query parameter is missing or invalid (400); ``errors`` names the fields."""


class InvalidWebhook(CheckoutHTTPError, BadRequest):
    """A webhook delivery is not a verified Stripe event (400); no handler ran."""


class NotAuthenticated(CheckoutHTTPError, Unauthorized):
    """No user is signed in (401)."""


class NoStripeCustomer(CheckoutHTTPError, NotFound):
    """The user has never paid, so there is no Stripe customer to manage (404)."""


class CreditsDisabled(CheckoutHTTPError, Gone):
    """The deprecated credit system is switched off (410)."""


class StripeServiceError(CheckoutHTTPError, BadGateway):
    """Stripe refused or failed a request (502); ``request_id`` is Stripe's, for support."""

    def __init__(
        self,
        description: str,
        *,
        request_id: str | None = None,
        stripe_code: str | None = None,
        stripe_param: str | None = None,
    ) -> None:
        super().__init__(description)
        self.request_id = request_id
        self.stripe_code = stripe_code
        self.stripe_param = stripe_param


class StripeUnavailable(StripeServiceError, ServiceUnavailable):
    """Stripe rate-limited us or could not be reached (503): retry later."""

    code = 503


class CheckoutNotConfigured(CheckoutHTTPError, ServiceUnavailable):
    """A setting this request needs is unset (503); the message names it."""


class SyncBusy(CheckoutError):
    """Another ``flask checkout sync`` holds the lease on this database; nothing was done."""


class InvalidSyncWindow(CheckoutError, ValueError):
    """``--since`` is neither an age (``3d``, ``12h``, ``30m``) nor an ISO date."""
