"""Creating a Checkout Session for a user: their Stripe customer, Stripe's parameters, and
the stored session that the return from Stripe and the webhooks will find."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from . import signals
from .billing import CheckoutSessions, Customers, Prices
from .config import CheckoutConfig
from .database import Database
from .errors import CheckoutNotConfigured, CreditsDisabled, InvalidRequest, StripeServiceError
from .events import FQDN_KEY, PRICE_KEY, QTY_KEY, USER_KEY, metadata_credits
from .gateway import StripeGateway
from .schemas import CheckoutRequest
from .users import CheckoutUser


@dataclass(frozen=True)
class CreatedSession:
    id: str
    url: str


class CheckoutSessionMaker:
    """Turns a validated request into a Stripe Checkout Session and its stored row."""

    def __init__(
        self,
        config: CheckoutConfig,
        gateway: StripeGateway,
        database: Database,
        *,
        sessions: CheckoutSessions,
        customers: Customers,
        prices: Prices,
    ) -> None:
        self.config = config
        self.gateway = gateway
        self.database = database
        self.sessions = sessions
        self.customers = customers
        self.prices = prices
        self.success_url = (
            f"{config.public_url}{config.url_prefix}/success?session_id={{CHECKOUT_SESSION_ID}}"
        )

    def create(
        self, user: CheckoutUser, request: CheckoutRequest, *, cancel_url: str
    ) -> CreatedSession:
        """Create the session on Stripe, then store it; nothing is stored if Stripe fails."""
        if request.qty is not None:
            line_item, mode = self._credit_line(request.qty), "payment"
        else:
            assert request.price_id is not None
            self._check_subscription_price(request.price_id)
            line_item, mode = {"price": request.price_id, "quantity": 1}, "subscription"

        # Nothing of the request stays open across the calls to Stripe: a slow Stripe must
        # hold no pooled connection nor transaction. Each read or write below is then a
        # short transaction of its own.
        self.database.commit_session()
        customer = self._customer(user)
        tags = {FQDN_KEY: self.config.fqdn, USER_KEY: user.id}
        if request.qty is not None:
            tags[QTY_KEY] = str(request.qty)
        else:
            tags[PRICE_KEY] = str(request.price_id)
        params: dict[str, Any] = {
            "mode": mode,
            "customer": customer,
            "client_reference_id": user.id,
            "line_items": [line_item],
            "metadata": tags,
            "success_url": self.success_url,
            "cancel_url": cancel_url,
        }
        if mode == "subscription":
            params["subscription_data"] = {"metadata": tags}
        else:
            params["payment_intent_data"] = {"metadata": tags}

        # A fresh key per click: the library's network retries reuse it, while a user who
        # comes back after paying gets a new session rather than the completed one.
        key = f"paxpar-checkout-{self.config.fqdn}-{user.id}-{uuid.uuid4().hex}"
        session = self.gateway.create_checkout_session(params, idempotency_key=key)
        with self.database.transaction() as tx:
            self.sessions.add(
                tx,
                id=session["id"],
                user_id=user.id,
                mode=mode,
                qty=request.qty,
                price_id=request.price_id or self.config.credit_price_id,
                customer_id=customer,
                redirect_url=request.redirect_url,
            )
        signals.send(
            signals.checkout_session_created, user_id=user.id, session_id=session["id"], mode=mode
        )
        return CreatedSession(session["id"], session["url"])

    def _credit_line(self, qty: int) -> dict[str, Any]:
        if not self.config.credits_enabled:
            raise CreditsDisabled(
                "Buying credits is no longer possible: the credit system has been retired. "
                "Subscribe with price_id instead."
            )
        if self.config.credit_price_id is None:
            raise CheckoutNotConfigured(
                "Buying credits is not configured on this server: set "
                "PAXPAR_CHECKOUT_CREDIT_PRICE_ID to the one-time price of one credit."
            )
        return {"price": self.config.credit_price_id, "quantity": qty}

    def _check_subscription_price(self, price_id: str) -> None:
        """Without an allow-list, a price must exist on Stripe, be active and recurring.

        Looked up once and kept, with its ``credits`` metadata for the invoice handler.
        """
        if self.config.prices is not None:
            return  # the schema already held it against the allow-list
        self.database.commit_session()
        with self.database.transaction() as tx:
            known = self.prices.get(tx, price_id)
        if known is None:
            try:
                price = self.gateway.retrieve_price(price_id)
            except StripeServiceError as exc:
                if exc.stripe_code == "resource_missing":
                    raise InvalidRequest(
                        "Unknown price.", errors={"price_id": ["No such price on Stripe."]}
                    ) from None
                raise
            active = price.get("active") is True
            recurring = isinstance(price.get("recurring"), dict)
            with self.database.transaction() as tx:
                self.prices.save(
                    tx,
                    price_id,
                    active=active,
                    recurring=recurring,
                    credits=metadata_credits(price),
                )
        else:
            active, recurring = bool(known.active), bool(known.recurring)
        if not (active and recurring):
            raise InvalidRequest(
                "This price cannot be subscribed to.",
                errors={"price_id": ["Must be an active, recurring price."]},
            )

    def _customer(self, user: CheckoutUser) -> str:
        """The user's one Stripe customer, created on their first checkout."""
        with self.database.transaction() as tx:
            existing = self.customers.customer_of(tx, user.id)
        if existing is not None:
            return existing
        # One key per user and instance: a retry, a double click or two workers racing
        # all get the same customer back from Stripe instead of making a second one.
        created = self.gateway.create_customer(
            email=user.email,
            metadata={FQDN_KEY: self.config.fqdn, USER_KEY: user.id},
            idempotency_key=f"paxpar-customer-{self.config.fqdn}-{user.id}",
        )
        with self.database.transaction() as tx:
            return self.customers.link(tx, user.id, created, user.email)
