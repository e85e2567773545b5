"""The one module that imports ``stripe``: API calls and webhook signature checks.

Everything leaving this module is plain data (``dict``) or one of our own errors, so the
rest of the package never sees a ``StripeObject`` or a ``stripe`` exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any, NoReturn

import stripe

from . import telemetry
from .config import CheckoutConfig
from .errors import (
    CheckoutNotConfigured,
    InvalidWebhook,
    StripeServiceError,
    StripeUnavailable,
)

log = logging.getLogger("flask_paxpar_checkout")


class StripeGateway:
    """One ``stripe.StripeClient`` per app, with network retries and a timeout."""

    def __init__(self, config: CheckoutConfig) -> None:
        self._client: stripe.StripeClient | None = None
        if config.secret_key:
            self._client = stripe.StripeClient(
                config.secret_key,
                base_addresses={"api": config.api_base} if config.api_base else None,
                max_network_retries=config.stripe_max_network_retries,
                http_client=stripe.RequestsClient(timeout=config.stripe_timeout),
                stripe_version=config.stripe_api_version,
            )

    @property
    def client(self) -> stripe.StripeClient:
        if self._client is None:
            raise CheckoutNotConfigured(
                "Checkout is not configured on this server: set STRIPE_SECRET_KEY "
                "(a Stripe test key sk_test_... to try it)."
            )
        return self._client

    def create_customer(
        self, *, email: str | None, metadata: dict[str, str], idempotency_key: str
    ) -> str:
        """Create a Stripe customer and return its id."""
        params: dict[str, Any] = {"metadata": metadata}
        if email:
            params["email"] = email
        with telemetry.stripe_request("customers.create"):
            try:
                customer = self.client.v1.customers.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": idempotency_key},
                )
            except stripe.StripeError as exc:
                _raise_for(exc, "create a customer")
        return str(customer.id)

    def create_checkout_session(
        self, params: dict[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """Create a Checkout Session; returns its ``id`` and ``url``, all that the caller
        uses, without converting the whole object."""
        with telemetry.stripe_request("checkout.sessions.create"):
            try:
                session = self.client.v1.checkout.sessions.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": idempotency_key},
                )
            except stripe.StripeError as exc:
                _raise_for(exc, "create a Checkout Session")
        telemetry.session_created(params)
        return {"id": session.id, "url": session.url}

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        """Fetch a Checkout Session as plain data."""
        with telemetry.stripe_request("checkout.sessions.retrieve"):
            try:
                return self.client.v1.checkout.sessions.retrieve(session_id).to_dict()
            except stripe.StripeError as exc:
                _raise_for(exc, "retrieve a Checkout Session")

    def retrieve_price(self, price_id: str) -> dict[str, Any]:
        """Fetch a price with its product expanded, as plain data."""
        with telemetry.stripe_request("prices.retrieve"):
            try:
                price = self.client.v1.prices.retrieve(price_id, params={"expand": ["product"]})
            except stripe.StripeError as exc:
                _raise_for(exc, f"retrieve price {price_id}")
        return price.to_dict()

    def create_portal_session(self, *, customer: str, return_url: str) -> dict[str, Any]:
        """Create a Billing Portal session for ``customer``; returns it as plain data."""
        with telemetry.stripe_request("billing_portal.sessions.create"):
            try:
                portal = self.client.v1.billing_portal.sessions.create(
                    params={"customer": customer, "return_url": return_url}
                )
            except stripe.StripeError as exc:
                _raise_for(exc, "create a Billing Portal session")
        return portal.to_dict()

    # -- read-only calls of `flask checkout sync` and `doctor` -----------------------------

    def list_events(
        self,
        *,
        types: list[str],
        created_gte: int,
        limit: int = 100,
        starting_after: str | None = None,
    ) -> dict[str, Any]:
        """One page of the Events API, newest first, as plain data (``data``, ``has_more``).

        The page's JSON as Stripe sent it (``raw_request``), not a ``StripeObject`` tree
        turned back into dicts: building that tree is most of the cost of a sync.
        """
        params: dict[str, Any] = {"types": types, "created": {"gte": created_gte}, "limit": limit}
        if starting_after is not None:
            params["starting_after"] = starting_after
        try:
            page: dict[str, Any] = self.client.raw_request("get", "/v1/events", **params).data
        except stripe.StripeError as exc:
            _raise_for(exc, "list events")
        return page

    def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """Fetch a subscription as plain data."""
        try:
            return self.client.v1.subscriptions.retrieve(subscription_id).to_dict()
        except stripe.StripeError as exc:
            _raise_for(exc, f"retrieve subscription {subscription_id}")

    def list_webhook_endpoints(self) -> dict[str, Any]:
        """The account's webhook endpoints (first 100), as plain data."""
        try:
            return self.client.v1.webhook_endpoints.list(params={"limit": 100}).to_dict()
        except stripe.StripeError as exc:
            _raise_for(exc, "list webhook endpoints")


def verify_signature(
    payload: bytes, header: str | None, secrets: Iterable[str], tolerance: int
) -> None:
    """Check ``Stripe-Signature`` over the raw body against any of ``secrets``.

    The header's form and its timestamp are checked first, so that each failure is told by
    the check that found it; the signature itself by stripe's primitive, which is much
    cheaper than ``stripe.Webhook.construct_event`` (no ``StripeObject`` tree).
    """
    if not header:
        raise InvalidWebhook("Missing Stripe-Signature header.")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidWebhook("The body is not UTF-8 text.") from None
    timestamp = _signed_at(header)
    if timestamp is None:
        raise InvalidWebhook("Malformed Stripe-Signature header.")
    if timestamp < time.time() - tolerance:
        raise InvalidWebhook("The signature's timestamp is outside the tolerance (a replay?).")
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance)
        except stripe.SignatureVerificationError:
            continue
        return
    raise InvalidWebhook("No signature matches this endpoint's signing secret.")


def _signed_at(header: str) -> int | None:
    """The header's timestamp, if it has one and at least one ``v1`` signature."""
    items = [item.split("=", 1) for item in header.split(",")]
    pairs = [(key.strip(), value.strip()) for key, value in (i for i in items if len(i) == 2)]
    stamps = [value for key, value in pairs if key == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit() or not any(k == "v1" for k, _ in pairs):
        return None
    return int(stamps[0])


def _raise_for(exc: stripe.StripeError, action: str) -> NoReturn:
    """Translate a Stripe error into ours, logging what an operator needs (never the key)."""
    request_id = exc.request_id
    code = exc.code
    param = getattr(exc, "param", None)
    if isinstance(exc, stripe.RateLimitError):
        error: StripeServiceError = StripeUnavailable(
            f"Stripe is rate-limiting requests; could not {action}. Try again shortly.",
        )
    elif isinstance(exc, stripe.APIConnectionError):
        error = StripeUnavailable(f"Stripe could not be reached to {action}. Try again shortly.")
    elif isinstance(exc, stripe.AuthenticationError):
        error = StripeServiceError(
            f"Stripe refused the API key while trying to {action}: check STRIPE_SECRET_KEY."
        )
    elif isinstance(exc, stripe.PermissionError):
        error = StripeServiceError(
            f"The Stripe key may not {action}: give the restricted key that permission."
        )
    elif isinstance(exc, stripe.InvalidRequestError):
        hint = _hint(param)
        error = StripeServiceError(
            f"Stripe rejected the request to {action}: {exc.user_message or 'invalid request'}"
            + (f" {hint}" if hint else "")
        )
    else:
        error = StripeServiceError(f"Stripe failed to {action}; try again later.")
    error.request_id = request_id
    error.stripe_code = code
    error.stripe_param = param
    log.warning(
        "Stripe error while trying to %s: %s (status=%s, code=%s, param=%s, request_id=%s)",
        action,
        type(exc).__name__,
        exc.http_status,
        code,
        param,
        request_id,
    )
    raise error from None


def _hint(param: str | None) -> str:
    if param and param.startswith("line_items"):
        return (
            "Check PAXPAR_CHECKOUT_CREDIT_PRICE_ID and PAXPAR_CHECKOUT_PRICES against the "
            "prices of this Stripe account (test and live prices differ)."
        )
    if param == "customer":
        return "The stored Stripe customer may belong to another Stripe account or mode."
    return ""
