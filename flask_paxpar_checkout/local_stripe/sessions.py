"""Checkout Sessions as Stripe validates and builds them: the parameters it refuses and the
line items it derives from prices."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .objects import DAY, Shapes
from .wire import ApiError, missing, new_id

__all__ = ["build_session", "line_items"]

SESSION_MODES = ("payment", "setup", "subscription")
# (price id, recurring if made up, param) -> (price, its product's name)
PriceLookup = Callable[[str, bool, str], tuple[dict[str, Any], str]]


def _refuse_conflicts(p: dict[str, Any]) -> str:
    mode = p.get("mode")
    if not mode:
        raise missing("mode")
    if mode not in SESSION_MODES:
        raise ApiError(
            400,
            f"Invalid mode: must be one of {', '.join(SESSION_MODES)}",
            code="parameter_invalid_string",
            param="mode",
        )
    if p.get("ui_mode", "hosted") == "hosted" and not p.get("success_url"):
        raise missing("success_url")
    if p.get("customer") and p.get("customer_email"):
        raise ApiError(
            400,
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    if mode == "subscription" and "payment_intent_data" in p:
        raise ApiError(
            400,
            "You can not pass `payment_intent_data` in `subscription` mode.",
            param="payment_intent_data",
        )
    if mode == "payment" and "subscription_data" in p:
        raise ApiError(
            400,
            "You can not pass `subscription_data` in `payment` mode.",
            param="subscription_data",
        )
    return str(mode)


def build_session(
    shapes: Shapes, p: dict[str, Any], lookup: PriceLookup, base_url: str, now: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A new open session of params ``p`` and its line items; refuses what Stripe refuses."""
    mode = _refuse_conflicts(p)
    items = p.get("line_items")
    if mode != "setup" and not items:
        raise missing("line_items")
    lines = line_items(mode, items if isinstance(items, list) else [], lookup)
    cs_id = new_id("cs_test_a1", 56)
    session = shapes.template("checkout.session")
    total = sum(line["amount_total"] for line in lines) if lines else None
    session.update(
        id=cs_id,
        object="checkout.session",
        after_expiration=None,
        amount_subtotal=total,
        amount_total=total,
        cancel_url=p.get("cancel_url"),
        client_reference_id=p.get("client_reference_id"),
        created=now,
        currency=lines[0]["currency"] if lines else None,
        currency_conversion=None,
        customer=p.get("customer"),
        customer_details=None,
        customer_email=p.get("customer_email"),
        expires_at=now + DAY,
        invoice=None,
        livemode=False,
        locale=p.get("locale"),
        metadata=dict(p.get("metadata") or {}),
        mode=mode,
        payment_intent=None,
        payment_status="no_payment_required" if mode == "setup" else "unpaid",
        setup_intent=None,
        shipping_address_collection=None,
        shipping_cost=None,
        status="open",
        subscription=None,
        success_url=p.get("success_url"),
        total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        ui_mode=p.get("ui_mode", "hosted"),
        url=f"{base_url}/c/pay/{cs_id}",
    )
    return session, lines


def _quantity(item: dict[str, Any], i: int) -> int:
    raw_qty = item.get("quantity", "1")
    try:
        return int(raw_qty)
    except (TypeError, ValueError):
        raise ApiError(
            400,
            f"Invalid integer: {raw_qty}",
            code="parameter_invalid_integer",
            param=f"line_items[{i}][quantity]",
        ) from None


def _line_price(
    item: dict[str, Any], mode: str, param: str, lookup: PriceLookup
) -> tuple[dict[str, Any], str]:
    if "price" in item:
        price, product_name = lookup(item["price"], mode != "payment", param)
        if not price["active"]:
            raise ApiError(
                400,
                "The price specified is inactive. This field only accepts active prices.",
                param=param,
            )
        return copy.deepcopy(price), product_name
    if isinstance(item.get("price_data"), dict):
        data = item["price_data"]
        unit_amount = int(data.get("unit_amount") or 0)
        price = {"id": new_id("price_"), "object": "price", "unit_amount": unit_amount}
        price["currency"] = data.get("currency", "usd")
        price["recurring"] = data.get("recurring")
        price["type"] = "recurring" if data.get("recurring") else "one_time"
        return price, str((data.get("product_data") or {}).get("name", ""))
    raise missing(param)


def line_items(mode: str, items: list[Any], lookup: PriceLookup) -> list[dict[str, Any]]:
    """The session's line items (``item`` objects) of the ``line_items`` params."""
    lines: list[dict[str, Any]] = []
    has_recurring = False
    for i, item in enumerate(items):
        item = item if isinstance(item, dict) else {}
        param = f"line_items[{i}][price]"
        quantity = _quantity(item, i)
        price, description = _line_price(item, mode, param, lookup)
        if price.get("recurring") and mode == "payment":
            raise ApiError(
                400,
                "You specified `payment` mode but passed a recurring price. Either switch "
                "to `subscription` mode or use only one-time prices.",
                param=param,
            )
        has_recurring = has_recurring or bool(price.get("recurring"))
        amount = int(price.get("unit_amount") or 0) * quantity
        lines.append(
            {
                "id": new_id("li_", 24),
                "object": "item",
                "amount_discount": 0,
                "amount_subtotal": amount,
                "amount_tax": 0,
                "amount_total": amount,
                "currency": price.get("currency", "usd"),
                "description": description,
                "price": price,
                "quantity": quantity,
            }
        )
    if mode == "subscription" and not has_recurring:
        raise ApiError(
            400,
            "You must provide at least one recurring price in `subscription` mode when "
            "using prices.",
            param="line_items",
        )
    return lines
