"""Marshmallow schemas of the query parameters; each loads into a small frozen value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)
from werkzeug.datastructures import MultiDict

from .config import PRICE_ID, CheckoutConfig
from .errors import ConfigurationError, UnsafeRedirect
from .redirects import resolve_redirect

_DIGITS = re.compile(r"[0-9]{1,100}")
SESSION_ID = re.compile(r"^cs_(test|live)_[A-Za-z0-9]{1,250}\Z")


@dataclass(frozen=True)
class CheckoutRequest:
    """A validated ``/session`` request: exactly one of ``qty`` and ``price_id``."""

    qty: int | None
    price_id: str | None
    redirect_url: str


class _Count(fields.Integer):
    """A whole number written in ASCII digits only (``int()`` would take ' 1_0', '٣')."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not _DIGITS.fullmatch(value):
            raise ValidationError("Must be a whole number of credits, e.g. qty=12.")
        return int(value)


class _Redirect(fields.String):
    def __init__(self, config: CheckoutConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checkout_config = config

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return resolve_redirect(
                text,
                public_url=self.checkout_config.public_url,
                allowed_hosts=self.checkout_config.redirect_hosts,
            )
        except UnsafeRedirect as exc:
            raise ValidationError(f"Unsafe redirect: {exc}.") from None


class _QuerySchema(Schema):
    """Reads a query string, refusing a parameter given twice."""

    class Meta:
        unknown = EXCLUDE

    @pre_load
    def _single_values(self, data: Any, **kwargs: Any) -> Mapping[str, Any]:
        if not isinstance(data, MultiDict):
            return data  # type: ignore[no-any-return]
        repeated = {k: ["Give this parameter once."] for k, v in data.lists() if len(v) > 1}
        if repeated and set(repeated) & set(self.fields):
            raise ValidationError({k: v for k, v in repeated.items() if k in self.fields})
        return data.to_dict()


class _SessionQuery(_QuerySchema):
    checkout_config: CheckoutConfig

    price_id = fields.String(
        validate=validate.Regexp(PRICE_ID, error="Must be a Stripe price id like price_1Kq...")
    )

    @validates_schema
    def _one_of(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("qty" in data) == ("price_id" in data):
            raise ValidationError(
                "Give exactly one of qty (credits to buy) or price_id (a subscription).",
                "_schema",
            )
        prices = self.checkout_config.prices
        price = data.get("price_id")
        if price is not None and prices is not None and price not in prices:
            raise ValidationError("This price is not offered here.", "price_id")

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> CheckoutRequest:
        return CheckoutRequest(data.get("qty"), data.get("price_id"), data["redirect"])


def session_query(config: CheckoutConfig) -> Schema:
    """``GET /session``: ``qty`` (credits) or ``price_id`` (a subscription), and ``redirect``."""

    class SessionQuery(_SessionQuery):
        checkout_config = config
        qty = _Count(
            validate=validate.Range(
                min=1, max=config.max_qty, error=f"Must be between 1 and {config.max_qty}."
            )
        )
        redirect = _Redirect(
            config, load_default=absolute_redirect(config, config.default_redirect)
        )

    return SessionQuery()


def redirect_query(config: CheckoutConfig, default: str) -> Schema:
    """``GET /portal``: an optional ``redirect``, where the portal sends the user back to."""

    class RedirectQuery(_QuerySchema):
        redirect = _Redirect(config, load_default=absolute_redirect(config, default))

        @post_load
        def _make(self, data: dict[str, Any], **kwargs: Any) -> str:
            return str(data["redirect"])

    return RedirectQuery()


class SuccessQuery(_QuerySchema):
    """``GET /success``: Stripe's ``session_id``."""

    session_id = fields.String(
        required=True, validate=validate.Regexp(SESSION_ID, error="Not a Checkout Session id.")
    )

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> str:
        return str(data["session_id"])


def absolute_redirect(config: CheckoutConfig, value: str) -> str:
    """Resolve a configured redirect; a bad one is a configuration error at start-up."""
    try:
        return resolve_redirect(
            value, public_url=config.public_url, allowed_hosts=config.redirect_hosts
        )
    except UnsafeRedirect as exc:
        raise ConfigurationError(f"Redirect setting {value!r} is unsafe: {exc}") from None
