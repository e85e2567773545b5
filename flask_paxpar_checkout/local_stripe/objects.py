"""Stripe-shaped objects, each started from Stripe's own example of its API era (the package's
``fixtures/``) and filled in from the local Stripe's state."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from .wire import new_id

__all__ = ["BASIL", "PERIOD_DAYS", "Shapes", "period_seconds"]

_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
_NEW_ERA_FIXTURE = "stripe-2026-07-29.dahlia.json"
_OLD_ERA_FIXTURE = "stripe-2024-04-10.json"
BASIL = "2025-03-31"  # first API version where invoices name their subscription in `parent`
DAY = 86400
PERIOD_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def period_seconds(recurring: dict[str, Any] | None) -> int:
    """The length of one billing period of a price's ``recurring`` (a month is 30 days)."""
    recurring = recurring or {}
    days = PERIOD_DAYS.get(str(recurring.get("interval", "month")), 30)
    return days * int(recurring.get("interval_count") or 1) * DAY


class Shapes:
    """Builds objects in the shape of one API version's fixtures."""

    def __init__(self, api_version: str) -> None:
        self.api_version = api_version
        self.new_era = api_version[:10] >= BASIL
        fixture = _FIXTURES / (_NEW_ERA_FIXTURE if self.new_era else _OLD_ERA_FIXTURE)
        self.templates: dict[str, dict[str, Any]] = json.loads(fixture.read_text("utf-8"))[
            "resources"
        ]

    def template(self, resource: str) -> dict[str, Any]:
        """A deep copy of Stripe's example ``resource``."""
        return copy.deepcopy(self.templates[resource])

    def customer(self, p: dict[str, Any], now: int) -> dict[str, Any]:
        customer = self.template("customer")
        customer.update(
            id=new_id("cus_"),
            created=now,
            description=p.get("description"),
            discount=None,
            email=p.get("email"),
            livemode=False,
            metadata=dict(p.get("metadata") or {}),
            name=p.get("name"),
            phone=p.get("phone"),
            shipping=None,
        )
        return customer

    def product(self, product_id: str, price_id: str, now: int, **fields: Any) -> dict[str, Any]:
        product = self.template("product")
        product.update(
            id=product_id,
            created=now,
            updated=now,
            default_price=price_id,
            description=None,
            images=[],
            livemode=False,
            package_dimensions=None,
            **fields,
        )
        return product

    def price(self, price_id: str, product_id: str, now: int, **fields: Any) -> dict[str, Any]:
        price = self.template("price")
        unit_amount = int(fields.pop("unit_amount"))
        recurring = fields.pop("recurring")
        interval = copy.deepcopy(price.get("recurring")) or {
            "interval": "month",
            "interval_count": 1,
            "usage_type": "licensed",
        }
        price.update(
            id=price_id,
            created=now,
            currency="usd",
            custom_unit_amount=None,
            livemode=False,
            lookup_key=None,
            nickname=None,
            product=product_id,
            recurring=interval if recurring else None,
            tax_behavior="unspecified",
            transform_quantity=None,
            type="recurring" if recurring else "one_time",
            unit_amount=unit_amount,
            unit_amount_decimal=str(unit_amount),
            **fields,
        )
        return price

    def subscription_item(
        self, sub_id: str, price: dict[str, Any], quantity: int, start: int, end: int
    ) -> dict[str, Any]:
        item: dict[str, Any] = copy.deepcopy(self.templates["subscription"]["items"]["data"][0])
        item.update(
            id=new_id("si_"),
            billing_thresholds=None,
            created=start,
            discounts=[],
            metadata={},
            plan=plan_of(price),
            price=copy.deepcopy(price),
            quantity=quantity,
            subscription=sub_id,
            tax_rates=[],
        )
        if self.new_era:
            item.update(current_period_start=start, current_period_end=end)
        else:
            item.pop("current_period_start", None)
            item.pop("current_period_end", None)
        return item

    def subscription(
        self, sub_id: str, session: dict[str, Any], items: list[dict[str, Any]], **fields: Any
    ) -> dict[str, Any]:
        start, end = int(fields.pop("start")), int(fields.pop("end"))
        sub = self.template("subscription")
        sub.update(
            id=sub_id,
            application=None,
            billing_cycle_anchor=start,
            billing_cycle_anchor_config=None,
            cancel_at=None,
            cancel_at_period_end=False,
            canceled_at=None,
            created=start,
            currency=session.get("currency") or "usd",
            customer=session["customer"],
            discounts=[],
            ended_at=None,
            livemode=False,
            next_pending_invoice_item_invoice=None,
            pause_collection=None,
            pending_invoice_item_interval=None,
            pending_update=None,
            schedule=None,
            start_date=start,
            status="active",
            test_clock=None,
            transfer_data=None,
            trial_end=None,
            trial_start=None,
            **fields,
        )
        sub["items"] = {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        }
        self.set_period(sub, start, end)
        return sub

    def set_period(self, sub: dict[str, Any], start: int, end: int) -> None:
        """Put a subscription's current period where its API era keeps it."""
        if self.new_era:
            sub.pop("current_period_start", None)
            sub.pop("current_period_end", None)
            for item in sub["items"]["data"]:
                item.update(current_period_start=start, current_period_end=end)
        else:
            sub.update(current_period_start=start, current_period_end=end)

    def invoice(
        self, sub: dict[str, Any], *, created: int, start: int, end: int, **fields: Any
    ) -> dict[str, Any]:
        """An invoice of one period of ``sub``; ``paid`` says whether its charge went through."""
        paid = bool(fields.pop("paid"))
        invoice = self.template("invoice")
        invoice_id = new_id("in_", 24)
        template_line = invoice["lines"]["data"][0]
        lines = [
            self._invoice_line(template_line, invoice_id, sub, item, start, end)
            for item in sub["items"]["data"]
        ]
        total = sum(int(line["amount"]) for line in lines)
        invoice.update(
            id=invoice_id,
            amount_due=total,
            amount_paid=total if paid else 0,
            amount_remaining=0 if paid else total,
            attempt_count=1,
            attempted=True,
            created=created,
            currency=sub.get("currency") or "usd",
            customer=sub["customer"],
            due_date=None,
            effective_at=created,
            hosted_invoice_url=None,
            invoice_pdf=None,
            last_finalization_error=None,
            livemode=False,
            metadata={},
            next_payment_attempt=None if paid else created + DAY,
            period_end=start,
            period_start=start,
            status="paid" if paid else "open",
            subtotal=total,
            total=total,
            test_clock=None,
            **fields,
        )
        invoice["lines"] = {
            "object": "list",
            "data": lines,
            "has_more": False,
            "url": f"/v1/invoices/{invoice_id}/lines",
        }
        tags = dict(sub.get("metadata") or {})
        if self.new_era:
            invoice["parent"] = {
                "type": "subscription_details",
                "quote_details": None,
                "subscription_details": {"subscription": sub["id"], "metadata": tags},
            }
        else:
            invoice.update(subscription=sub["id"], subscription_details={"metadata": tags})
            invoice["paid"] = paid
        return invoice

    def _invoice_line(
        self,
        template: dict[str, Any],
        invoice_id: str,
        sub: dict[str, Any],
        item: dict[str, Any],
        start: int,
        end: int,
    ) -> dict[str, Any]:
        line = copy.deepcopy(template)
        price = item["price"]
        amount = int(price.get("unit_amount") or 0) * int(item.get("quantity") or 1)
        line.update(
            id=new_id("il_", 24),
            amount=amount,
            currency=price.get("currency", "usd"),
            invoice=invoice_id,
            period={"start": start, "end": end},
            quantity=item.get("quantity") or 1,
            subscription=sub["id"],
        )
        if self.new_era:
            line["pricing"] = {
                "type": "price_details",
                "price_details": {"price": price["id"], "product": price.get("product")},
                "unit_amount_decimal": str(price.get("unit_amount") or 0),
            }
            details = (line.get("parent") or {}).get("subscription_item_details")
            if isinstance(details, dict):
                details.update(subscription=sub["id"], subscription_item=item["id"])
        else:
            line.update(price=copy.deepcopy(price), plan=plan_of(price))
            line["subscription_item"] = item["id"]
        return line

    def event(
        self, event_type: str, obj: dict[str, Any], created: int, **fields: Any
    ) -> dict[str, Any]:
        """An event envelope around a snapshot of ``obj``."""
        event = self.template("event")
        event.update(
            id=new_id("evt_", 24),
            type=event_type,
            created=created,
            api_version=self.api_version,
            livemode=False,
            data={"object": copy.deepcopy(obj), **fields},
            pending_webhooks=0,
            request={"id": None, "idempotency_key": None},
        )
        return event


def plan_of(price: dict[str, Any]) -> dict[str, Any]:
    """The legacy ``plan`` object of a recurring price."""
    recurring = price.get("recurring") or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price.get("active", True),
        "amount": price.get("unit_amount"),
        "amount_decimal": price.get("unit_amount_decimal"),
        "billing_scheme": "per_unit",
        "created": price.get("created"),
        "currency": price.get("currency", "usd"),
        "interval": recurring.get("interval", "month"),
        "interval_count": recurring.get("interval_count", 1),
        "livemode": False,
        "metadata": dict(price.get("metadata") or {}),
        "nickname": None,
        "product": price.get("product"),
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": recurring.get("usage_type", "licensed"),
    }
