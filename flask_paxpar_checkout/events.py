"""Reading a verified event: its envelope, its instance and user, and both API eras.

The payload's shape follows the webhook endpoint's API version, not ours: an invoice names
its subscription under ``parent.subscription_details`` from API 2025-03-31 ("basil") on,
at the top level (``subscription``, ``subscription_details``) before it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import InvalidWebhook

FQDN_KEY = "paxpar_fqdn"
USER_KEY = "paxpar_user_id"
QTY_KEY = "paxpar_qty"
PRICE_KEY = "paxpar_price_id"

KNOWN_EVENT_TYPES = frozenset(
    f"{family}.{action}"
    for family, actions in {
        "charge": "captured expired failed pending refunded succeeded updated",
        "charge.dispute": "closed created funds_reinstated funds_withdrawn updated",
        "charge.refund": "updated",
        "checkout.session": "async_payment_failed async_payment_succeeded completed expired",
        "coupon": "created deleted updated",
        "customer": "created deleted updated",
        "customer.discount": "created deleted updated",
        "customer.source": "created deleted expiring updated",
        "customer.subscription": "created deleted paused pending_update_applied "
        "pending_update_expired resumed trial_will_end updated",
        "customer.tax_id": "created deleted updated",
        "invoice": "created deleted finalization_failed finalized marked_uncollectible "
        "overdue overpaid paid payment_action_required payment_failed payment_succeeded "
        "sent upcoming updated voided will_be_due",
        "invoiceitem": "created deleted",
        "invoice_payment": "paid",
        "payment_intent": "amount_capturable_updated canceled created partially_funded "
        "payment_failed processing requires_action succeeded",
        "payment_method": "attached automatically_updated detached updated",
        "payout": "canceled created failed paid reconciliation_completed updated",
        "price": "created deleted updated",
        "product": "created deleted updated",
        "promotion_code": "created updated",
        "refund": "created failed updated",
        "setup_intent": "canceled created requires_action setup_failed succeeded",
        "subscription_schedule": "aborted canceled completed created expiring released updated",
        "billing_portal.configuration": "created updated",
        "billing_portal.session": "created",
        "test_helpers.test_clock": "advancing created deleted internal_failure ready",
    }.items()
    for action in actions.split()
)
"""Stripe's event types of the objects a Checkout integration meets: registering a handler
for another one warns (a typo like ``invoice.payed`` would never be called)."""


@dataclass(frozen=True)
class Event:
    """The envelope fields the plugin reads, plus the whole payload as plain data."""

    id: str
    type: str
    created: int
    livemode: bool
    api_version: str | None
    object: dict[str, Any]
    payload: dict[str, Any]
    fqdn: str | None
    user_id: str | None


def parse_event(body: bytes) -> Event:
    """Read a verified body; raise ``InvalidWebhook`` unless it is a Stripe event."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise InvalidWebhook("The body is not JSON.") from None
    if not isinstance(payload, dict) or payload.get("object") != "event":
        raise InvalidWebhook("The body is not a Stripe event.")
    event_id, event_type, created = payload.get("id"), payload.get("type"), payload.get("created")
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if (
        not isinstance(event_id, str)
        or not event_id.startswith("evt_")
        or len(event_id) > 255
        or not isinstance(event_type, str)
        or not event_type
        or len(event_type) > 100
        or not isinstance(created, int)
        or isinstance(created, bool)
        or not isinstance(obj, dict)
    ):
        raise InvalidWebhook("The event lacks an id, a type, a created time or a data.object.")
    api_version = payload.get("api_version")
    tags = instance_tags(obj)
    return Event(
        id=event_id,
        type=event_type,
        created=created,
        livemode=payload.get("livemode") is True,
        api_version=api_version if isinstance(api_version, str) else None,
        object=obj,
        payload=payload,
        fqdn=_text(tags.get(FQDN_KEY)),
        user_id=_text(tags.get(USER_KEY)),
    )


def instance_tags(obj: dict[str, Any]) -> dict[str, Any]:
    """The metadata that carries this plugin's tags, wherever the object keeps it."""
    if obj.get("object") == "invoice":
        parent = obj.get("parent")
        details = parent.get("subscription_details") if isinstance(parent, dict) else None
        if not isinstance(details, dict):
            details = obj.get("subscription_details")  # before API 2025-03-31
        metadata = details.get("metadata") if isinstance(details, dict) else None
        if isinstance(metadata, dict) and FQDN_KEY in metadata:
            return metadata
    metadata = obj.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The id of an invoice's subscription, in either API era, or ``None``."""
    parent = invoice.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, dict) else None
    subscription = details.get("subscription") if isinstance(details, dict) else None
    if subscription is None:
        subscription = invoice.get("subscription")
    return object_id(subscription)


def invoice_line(invoice: dict[str, Any]) -> tuple[str | None, int | None]:
    """The price id and period end of an invoice's subscription line, in either era."""
    lines = invoice.get("lines")
    data = lines.get("data") if isinstance(lines, dict) else None
    if not isinstance(data, list):
        return None, None
    for line in data:
        if not isinstance(line, dict):
            continue
        price = object_id(line.get("price"))  # before API 2025-03-31: a price object
        if price is None:
            pricing = line.get("pricing")
            details = pricing.get("price_details") if isinstance(pricing, dict) else None
            price = object_id(details.get("price")) if isinstance(details, dict) else None
        if price is None:
            plan = line.get("plan")
            price = object_id(plan)
        period = line.get("period")
        end = period.get("end") if isinstance(period, dict) else None
        if price is not None:
            return price, end if isinstance(end, int) else None
    return None, None


def subscription_price_and_period_end(sub: dict[str, Any]) -> tuple[str | None, int | None]:
    """A subscription's price and current period end: on its items since API 2025-03-31,
    at the top level before."""
    items = sub.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    price: str | None = None
    end = sub.get("current_period_end")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        item = data[0]
        price = object_id(item.get("price")) or object_id(item.get("plan"))
        if not isinstance(end, int):
            end = item.get("current_period_end")
    return price, end if isinstance(end, int) else None


def metadata_credits(price: dict[str, Any]) -> int | None:
    """``credits`` from a price's metadata, else from its (expanded) product's."""
    for holder in (price, price.get("product")):
        metadata = holder.get("metadata") if isinstance(holder, dict) else None
        value = metadata.get("credits") if isinstance(metadata, dict) else None
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
    return None


def object_id(value: Any) -> str | None:
    """The id of an expandable field: a string id, or an object with an ``id``."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None
