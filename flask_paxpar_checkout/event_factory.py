"""Realistic Stripe events for the ``trigger`` command and for tests, signed as Stripe signs
them.

Objects start from Stripe's own fixtures (``flask_paxpar_checkout/fixtures``) of either API
era and get this instance's tags, the given user, price and ids. Shipped code imports them
from here; ``flask_paxpar_checkout.testing`` re-exports them for host apps' tests.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import secrets
import time
from functools import cache
from importlib import resources
from typing import Any, Literal

Era = Literal["2026-07-29.dahlia", "2024-04-10"]
ERAS: tuple[Era, ...] = ("2026-07-29.dahlia", "2024-04-10")
SUPPORTED_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.expired",
    "checkout.session.async_payment_failed",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "charge.refunded",
)


def sign_payload(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe would send for ``payload``: ``t=...,v1=...``."""
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{text}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


@cache
def _fixtures(era: Era) -> dict[str, Any]:
    name = f"stripe-{era}.json"
    text = resources.files("flask_paxpar_checkout").joinpath("fixtures", name).read_text()
    resources_: dict[str, Any] = json.loads(text)["resources"]
    charge = resources.files("flask_paxpar_checkout").joinpath(
        "fixtures", f"stripe-charge-{era}.json"
    )
    resources_.update(json.loads(charge.read_text())["resources"])
    return resources_


def fixture(resource: str, era: Era = "2026-07-29.dahlia") -> dict[str, Any]:
    """A deep copy of Stripe's example object of ``resource`` in ``era``."""
    return copy.deepcopy(_fixtures(era)[resource])


class EventBuilder:
    """Builds Stripe-shaped events tagged for one paxpar instance.

    >>> events = EventBuilder(fqdn="dev.paxpar.tech")
    >>> event = events.invoice_paid(user_id="42", subscription_id="sub_1", price_id="price_1")
    """

    def __init__(self, *, fqdn: str, era: Era = "2026-07-29.dahlia") -> None:
        if era not in ERAS:
            raise ValueError(f"era must be one of {ERAS}")
        self.fqdn = fqdn
        self.era = era

    def tags(self, user_id: str, **extra: str) -> dict[str, str]:
        return {"paxpar_fqdn": self.fqdn, "paxpar_user_id": str(user_id), **extra}

    def event(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        created: int | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """Wrap ``obj`` in an event envelope of ``event_type``."""
        envelope = fixture("event", self.era)
        envelope.update(
            id=event_id or new_id("evt"),
            type=event_type,
            created=int(time.time()) if created is None else created,
            api_version=self.era,
            livemode=False,
            data={"object": obj},
            pending_webhooks=1,
            request={"id": None, "idempotency_key": None},
        )
        return envelope

    # -- checkout sessions -----------------------------------------------------------------

    def checkout_session(
        self,
        *,
        user_id: str,
        mode: Literal["payment", "subscription"] = "payment",
        qty: int = 10,
        price_id: str = "price_credit",
        session_id: str | None = None,
        customer_id: str | None = None,
        subscription_id: str | None = None,
        payment_status: str = "paid",
        status: str = "complete",
        payment_intent: str | None = None,
    ) -> dict[str, Any]:
        """A Checkout Session; one in payment mode carries a ``payment_intent`` (a new id
        unless given), as its charge and refunds name it."""
        obj = fixture("checkout.session", self.era)
        if mode == "payment":
            tags = self.tags(user_id, paxpar_qty=str(qty))
        else:
            tags = self.tags(user_id, paxpar_price_id=price_id)
        obj.update(
            id=session_id or new_id("cs_test"),
            object="checkout.session",
            mode=mode,
            status=status,
            payment_status=payment_status,
            client_reference_id=str(user_id),
            customer=customer_id or new_id("cus"),
            metadata=tags,
            subscription=(subscription_id or new_id("sub")) if mode == "subscription" else None,
            payment_intent=(payment_intent or new_id("pi")) if mode == "payment" else None,
            created=int(time.time()),
            livemode=False,
        )
        return obj

    def checkout_session_completed(self, **kwargs: Any) -> dict[str, Any]:
        created = kwargs.pop("created", None)
        return self.event(
            "checkout.session.completed", self.checkout_session(**kwargs), created=created
        )

    def checkout_session_async(
        self, *, succeeded: bool, created: int | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """The end of a delayed payment: ``async_payment_succeeded`` (paid) or
        ``async_payment_failed`` (unpaid, no credits)."""
        kwargs.setdefault("payment_status", "paid" if succeeded else "unpaid")
        kind = "succeeded" if succeeded else "failed"
        return self.event(
            f"checkout.session.async_payment_{kind}",
            self.checkout_session(**kwargs),
            created=created,
        )

    def checkout_session_expired(self, **kwargs: Any) -> dict[str, Any]:
        created = kwargs.pop("created", None)
        obj = self.checkout_session(payment_status="unpaid", status="expired", **kwargs)
        return self.event("checkout.session.expired", obj, created=created)

    # -- invoices --------------------------------------------------------------------------

    def invoice(
        self,
        *,
        user_id: str,
        subscription_id: str,
        price_id: str,
        invoice_id: str | None = None,
        customer_id: str | None = None,
        period_end: int | None = None,
        created: int | None = None,
        paid: bool = True,
        tagged: bool = True,
        paid_at: int | None = None,
    ) -> dict[str, Any]:
        """A subscription invoice in this builder's API era; ``paid_at`` goes to
        ``status_transitions.paid_at`` (Stripe's time of the payment)."""
        now = int(time.time())
        created = now if created is None else created
        end = period_end if period_end is not None else created + 30 * 86400
        obj = fixture("invoice", self.era)
        tags = self.tags(user_id) if tagged else {}
        obj.update(
            id=invoice_id or new_id("in"),
            object="invoice",
            customer=customer_id or obj.get("customer"),
            created=created,
            status="paid" if paid else "open",
            billing_reason="subscription_cycle",
        )
        if paid_at is not None:
            obj["status_transitions"] = {
                **(obj.get("status_transitions") or {}),
                "paid_at": paid_at,
            }
        line = obj["lines"]["data"][0]
        line["period"] = {"start": end - 30 * 86400, "end": end}
        line["invoice"] = obj["id"]
        if self.era == "2024-04-10":
            obj["subscription"] = subscription_id
            obj["subscription_details"] = {"metadata": tags}
            line["subscription"] = subscription_id
            line["price"] = {**(line.get("price") or {}), "id": price_id, "object": "price"}
            if isinstance(line.get("plan"), dict):
                line["plan"]["id"] = price_id
        else:
            obj["parent"] = {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"subscription": subscription_id, "metadata": tags},
            }
            line["subscription"] = subscription_id
            line["pricing"] = {
                "type": "price_details",
                "price_details": {"price": price_id, "product": "prod_example"},
                "unit_amount_decimal": "1000",
            }
        if self.era == "2024-04-10":
            obj["paid"] = paid  # removed from invoices in API 2025-03-31
        return obj

    def invoice_paid(self, *, event_created: int | None = None, **kwargs: Any) -> dict[str, Any]:
        invoice = self.invoice(**kwargs)
        return self.event("invoice.paid", invoice, created=event_created or invoice["created"])

    def invoice_payment_failed(
        self, *, event_created: int | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        invoice = self.invoice(paid=False, **kwargs)
        return self.event(
            "invoice.payment_failed", invoice, created=event_created or invoice["created"]
        )

    # -- subscriptions ---------------------------------------------------------------------

    def subscription(
        self,
        *,
        user_id: str,
        subscription_id: str,
        price_id: str,
        status: str = "active",
        customer_id: str | None = None,
        period_end: int | None = None,
        cancel_at_period_end: bool = False,
        cancel_at: int | None = None,
        canceled_at: int | None = None,
        ended_at: int | None = None,
    ) -> dict[str, Any]:
        """A subscription; its period end on the item (current era) or on top (2024). An
        ended one's ``ended_at`` is ``canceled_at`` unless given."""
        now = int(time.time())
        end = period_end if period_end is not None else now + 30 * 86400
        obj = fixture("subscription", self.era)
        obj.update(
            id=subscription_id,
            object="subscription",
            status=status,
            customer=customer_id or obj.get("customer"),
            metadata=self.tags(user_id),
            cancel_at_period_end=cancel_at_period_end,
            cancel_at=cancel_at,
            canceled_at=canceled_at,
            ended_at=ended_at
            if ended_at is not None
            else (canceled_at if status == "canceled" else None),
        )
        item = obj["items"]["data"][0]
        item["price"] = {**item["price"], "id": price_id}
        if isinstance(item.get("plan"), dict):
            item["plan"]["id"] = price_id
        if self.era == "2024-04-10":
            obj["current_period_start"] = end - 30 * 86400
            obj["current_period_end"] = end
            item.pop("current_period_end", None)
        else:
            obj.pop("current_period_end", None)
            obj.pop("current_period_start", None)
            item["current_period_start"] = end - 30 * 86400
            item["current_period_end"] = end
        return obj

    def subscription_updated(self, *, created: int | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.event(
            "customer.subscription.updated", self.subscription(**kwargs), created=created
        )

    def subscription_deleted(self, *, created: int | None = None, **kwargs: Any) -> dict[str, Any]:
        kwargs.setdefault("status", "canceled")
        kwargs.setdefault("canceled_at", int(time.time()))
        return self.event(
            "customer.subscription.deleted", self.subscription(**kwargs), created=created
        )

    # -- charges -----------------------------------------------------------------------------

    def charge(
        self,
        *,
        payment_intent: str,
        amount: int = 1000,
        amount_refunded: int = 0,
        charge_id: str | None = None,
        customer_id: str | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """The charge of a payment intent; it carries none of the plugin's metadata."""
        obj = fixture("charge", self.era)
        obj.update(
            id=charge_id or new_id("ch"),
            object="charge",
            payment_intent=payment_intent,
            customer=customer_id or obj.get("customer"),
            amount=amount,
            amount_captured=amount,
            amount_refunded=amount_refunded,
            refunded=amount_refunded >= amount,
            created=int(time.time()) if created is None else created,
            livemode=False,
        )
        return obj

    def charge_refunded(
        self, *, created: int | None = None, event_id: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """``charge.refunded``: the charge with its cumulative ``amount_refunded``."""
        return self.event(
            "charge.refunded", self.charge(**kwargs), created=created, event_id=event_id
        )

    def _any_charge_refunded(
        self, *, payment_intent: str | None = None, customer_id: str | None = None, **_: Any
    ) -> dict[str, Any]:
        """A full refund of an unknown payment intent (``build``'s other arguments do not
        apply to a charge)."""
        return self.charge_refunded(
            payment_intent=payment_intent or new_id("pi"),
            customer_id=customer_id,
            amount_refunded=1000,
        )

    def build(self, event_type: str, **kwargs: Any) -> dict[str, Any]:
        """An event of any supported type, by name (``trigger`` uses this)."""
        builders = {
            "checkout.session.completed": self.checkout_session_completed,
            "checkout.session.async_payment_succeeded": lambda **kw: self.event(
                "checkout.session.async_payment_succeeded", self.checkout_session(**kw)
            ),
            "checkout.session.expired": self.checkout_session_expired,
            "checkout.session.async_payment_failed": lambda **kw: self.checkout_session_async(
                succeeded=False, **kw
            ),
            "invoice.paid": self.invoice_paid,
            "invoice.payment_failed": self.invoice_payment_failed,
            "customer.subscription.updated": self.subscription_updated,
            "customer.subscription.deleted": self.subscription_deleted,
            "charge.refunded": self._any_charge_refunded,
        }
        try:
            builder = builders[event_type]
        except KeyError:
            raise ValueError(
                f"cannot build {event_type!r}; supported: {', '.join(SUPPORTED_TYPES)}"
            ) from None
        return builder(**kwargs)


def encode(event: dict[str, Any]) -> bytes:
    """The body as Stripe sends it (pretty-printed JSON)."""
    return json.dumps(event, indent=2).encode("utf-8")


def signed(
    event: dict[str, Any], secret: str, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """``(body, headers)`` of a delivery of ``event`` signed with ``secret``."""
    body = encode(event)
    return body, {
        "Stripe-Signature": sign_payload(body, secret, timestamp),
        "Content-Type": "application/json; charset=utf-8",
    }
