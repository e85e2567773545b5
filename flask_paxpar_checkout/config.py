"""The frozen, typed configuration of one app, read and validated once by ``init_app``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import MISSING, dataclass, fields
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from .errors import ConfigurationError

PRICE_ID = re.compile(r"^price_[A-Za-z0-9]+\Z")
_FQDN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_SECRET_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9]+$")
STRIPE_API_HOST = "api.stripe.com"

CreditsOnCancel = Literal["keep", "zero"]


@dataclass(frozen=True)
class CheckoutConfig:
    """Every setting the plugin reads; see the README's configuration table."""

    fqdn: str
    secret_key: str | None = None
    api_base: str | None = None
    public_url: str = ""
    url_prefix: str = "/api/checkout"
    default_redirect: str = "/front/checkout/success"
    cancel_redirect: str = "/front/checkout/cancel"
    allowed_redirect_hosts: frozenset[str] = frozenset()
    login_url: str | None = None
    credit_price_id: str | None = None
    max_qty: int = 10000
    prices: Mapping[str, int] | None = None
    credits_enabled: bool = True
    credits_on_cancel: CreditsOnCancel = "keep"
    webhook_secrets: tuple[str, ...] = ()
    webhook_tolerance: int = 300
    webhook_max_bytes: int = 1024 * 1024
    accept_untagged_events: bool = False
    stripe_max_network_retries: int = 2
    stripe_timeout: float = 30.0
    stripe_api_version: str | None = None
    # Deferred handlers (the outbox): first retry delay, attempts, when a row is sent again.
    deferred_backoff: float = 1.0
    deferred_max_attempts: int = 5
    outbox_resend_after: int = 300

    @property
    def redirect_hosts(self) -> frozenset[str]:
        """Hosts an absolute ``redirect`` may point to: this instance's and the allowed ones."""
        own = {self.fqdn, (urlsplit(self.public_url).netloc or "").lower()}
        return frozenset(h for h in own | self.allowed_redirect_hosts if h)

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any]) -> CheckoutConfig:
        """Read a Flask config; raise ``ConfigurationError`` naming the first bad key."""
        fqdn = _read_fqdn(config)
        return cls(
            fqdn=fqdn,
            **_read_stripe_access(config),
            **_read_urls(config, fqdn),
            **_read_credit_price_and_login(config),
            **_read_credits_and_webhooks(config),
            **_read_redirects_and_limits(config),
        )


def _default(name: str) -> Any:
    """The default of the config field ``name``: the dataclass is the one place it is written."""
    return _DEFAULTS[name]


def _read_fqdn(config: Mapping[str, Any]) -> str:
    """``PAXPAR_FQDN``, required and lower-cased: the tag that recognises this instance."""
    fqdn = _text(config, "PAXPAR_FQDN")
    if not fqdn:
        raise ConfigurationError(
            "PAXPAR_FQDN is required: this instance's host name, e.g. 'dev.paxpar.tech'. "
            "It is tagged on everything sent to Stripe so that each instance "
            "recognises its own events."
        )
    fqdn = fqdn.lower()
    if not _FQDN.match(fqdn):
        raise ConfigurationError(f"PAXPAR_FQDN={fqdn!r} is not a host name")
    return fqdn


def _read_stripe_access(config: Mapping[str, Any]) -> dict[str, Any]:
    """The secret key and the API base, a live key kept to Stripe's own API."""
    secret_key = _text(config, "STRIPE_SECRET_KEY")
    if secret_key is not None and not _SECRET_KEY.match(secret_key):
        raise ConfigurationError(
            "STRIPE_SECRET_KEY must be a Stripe secret key (sk_test_..., sk_live_...) "
            "or a restricted key (rk_...); a publishable key (pk_...) cannot create sessions"
        )
    api_base = _text(config, "STRIPE_API_BASE")
    if api_base is not None:
        api_base = _http_url(api_base, "STRIPE_API_BASE").rstrip("/")
    _refuse_live_key_elsewhere(secret_key, api_base)
    return {"secret_key": secret_key, "api_base": api_base}


def _read_urls(config: Mapping[str, Any], fqdn: str) -> dict[str, Any]:
    """The public base URL and the blueprint's prefix."""
    public_url = _text(config, "PAXPAR_CHECKOUT_PUBLIC_URL") or f"https://{fqdn}"
    public_url = _http_url(public_url, "PAXPAR_CHECKOUT_PUBLIC_URL").rstrip("/")
    if urlsplit(public_url).path not in ("", "/"):
        raise ConfigurationError(
            f"PAXPAR_CHECKOUT_PUBLIC_URL must be a base URL without a path, e.g. 'https://{fqdn}'"
        )
    prefix = _text(config, "PAXPAR_CHECKOUT_URL_PREFIX") or _default("url_prefix")
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ConfigurationError(
            "PAXPAR_CHECKOUT_URL_PREFIX must start with '/' and not end with one"
        )
    return {"public_url": public_url, "url_prefix": prefix}


def _read_credit_price_and_login(config: Mapping[str, Any]) -> dict[str, Any]:
    """The price of one-off credits and where an anonymous buyer is sent to log in."""
    credit_price_id = _text(config, "PAXPAR_CHECKOUT_CREDIT_PRICE_ID")
    if credit_price_id is not None and not PRICE_ID.match(credit_price_id):
        raise ConfigurationError(
            f"PAXPAR_CHECKOUT_CREDIT_PRICE_ID={credit_price_id!r} is not a Stripe price id "
            "(price_...)"
        )
    login_url = _text(config, "PAXPAR_CHECKOUT_LOGIN_URL")
    if login_url is not None and not (
        login_url.startswith("/") or urlsplit(login_url).scheme in ("http", "https")
    ):
        raise ConfigurationError(
            "PAXPAR_CHECKOUT_LOGIN_URL must be a path ('/login') or an http(s) URL"
        )
    return {"credit_price_id": credit_price_id, "login_url": login_url}


def _read_credits_and_webhooks(config: Mapping[str, Any]) -> dict[str, Any]:
    """What a cancellation does to credits, the API version and the webhook secrets."""
    on_cancel = _text(config, "PAXPAR_CHECKOUT_CREDITS_ON_CANCEL") or _default("credits_on_cancel")
    if on_cancel not in ("keep", "zero"):
        raise ConfigurationError("PAXPAR_CHECKOUT_CREDITS_ON_CANCEL must be 'keep' or 'zero'")
    api_version = _text(config, "STRIPE_API_VERSION")
    webhook_secrets = _webhook_secrets(config)
    if not webhook_secrets:
        raise ConfigurationError(
            "STRIPE_WEBHOOK_SECRET is required: the signing secret (whsec_...) of this "
            "instance's webhook endpoint, as the Stripe dashboard or `stripe listen` shows it"
        )
    return {
        "credits_on_cancel": "zero" if on_cancel == "zero" else "keep",
        "stripe_api_version": api_version,
        "webhook_secrets": webhook_secrets,
    }


def _read_redirects_and_limits(config: Mapping[str, Any]) -> dict[str, Any]:
    """The redirects, the switches and the numeric limits, each with its dataclass default."""
    return {
        "default_redirect": _text(config, "PAXPAR_CHECKOUT_DEFAULT_REDIRECT")
        or _default("default_redirect"),
        "cancel_redirect": _text(config, "PAXPAR_CHECKOUT_CANCEL_REDIRECT")
        or _default("cancel_redirect"),
        "allowed_redirect_hosts": frozenset(
            h.lower() for h in _strings(config, "PAXPAR_CHECKOUT_ALLOWED_REDIRECT_HOSTS")
        ),
        "max_qty": _int(config, "PAXPAR_CHECKOUT_MAX_QTY", _default("max_qty"), minimum=1),
        "prices": _prices(config.get("PAXPAR_CHECKOUT_PRICES")),
        "credits_enabled": _bool(
            config, "PAXPAR_CHECKOUT_CREDITS_ENABLED", _default("credits_enabled")
        ),
        "webhook_tolerance": _int(
            config, "PAXPAR_CHECKOUT_WEBHOOK_TOLERANCE", _default("webhook_tolerance"), minimum=1
        ),
        "webhook_max_bytes": _int(
            config,
            "PAXPAR_CHECKOUT_WEBHOOK_MAX_BYTES",
            _default("webhook_max_bytes"),
            minimum=1024,
        ),
        "accept_untagged_events": _bool(
            config, "PAXPAR_CHECKOUT_ACCEPT_UNTAGGED_EVENTS", _default("accept_untagged_events")
        ),
        "stripe_max_network_retries": _int(
            config,
            "PAXPAR_CHECKOUT_STRIPE_MAX_NETWORK_RETRIES",
            _default("stripe_max_network_retries"),
            minimum=0,
        ),
        # The timeout is read as whole seconds, as before; the field holds it as a float.
        "stripe_timeout": float(
            _int(
                config,
                "PAXPAR_CHECKOUT_STRIPE_TIMEOUT",
                int(_default("stripe_timeout")),
                minimum=1,
            )
        ),
        "deferred_backoff": _seconds(
            config, "PAXPAR_CHECKOUT_DEFERRED_BACKOFF", _default("deferred_backoff")
        ),
        "deferred_max_attempts": _int(
            config,
            "PAXPAR_CHECKOUT_DEFERRED_MAX_ATTEMPTS",
            _default("deferred_max_attempts"),
            minimum=1,
        ),
        "outbox_resend_after": _int(
            config,
            "PAXPAR_CHECKOUT_OUTBOX_RESEND_AFTER",
            _default("outbox_resend_after"),
            minimum=1,
        ),
    }


_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {field.name: field.default for field in fields(CheckoutConfig) if field.default is not MISSING}
)


def _refuse_live_key_elsewhere(secret_key: str | None, api_base: str | None) -> None:
    """A live key goes to Stripe's own API only: a local or other server is never trusted
    with it (a local Stripe takes test keys)."""
    if (
        secret_key is None
        or api_base is None
        or not secret_key.startswith(("sk_live_", "rk_live_"))
    ):
        return
    if urlsplit(api_base).hostname == STRIPE_API_HOST and api_base.startswith("https://"):
        return
    raise ConfigurationError(
        f"STRIPE_SECRET_KEY is a live key but STRIPE_API_BASE={api_base!r} is not Stripe's API: "
        "use a test key (sk_test_...) there, or unset STRIPE_API_BASE to reach Stripe"
    )


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"{key} must be a string, not {type(value).__name__}")
    value = value.strip()
    return value or None


def _strings(config: Mapping[str, Any], key: str) -> list[str]:
    value = config.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ConfigurationError(f"{key} must be a comma-separated string or a list of strings")


def _int(config: Mapping[str, Any], key: str, default: int, *, minimum: int) -> int:
    value = config.get(key, default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value


def _seconds(config: Mapping[str, Any], key: str, default: float) -> float:
    """A number of seconds >= 0 (0 retries at once, for tests), at most an hour."""
    value = config.get(key, default)
    if isinstance(value, str):
        with suppress(ValueError):
            value = float(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 3600:
        raise ConfigurationError(f"{key} must be a number of seconds from 0 to 3600, got {value!r}")
    return float(value)


def _bool(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = config.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise ConfigurationError(f"{key} must be a boolean, got {value!r}")


def _http_url(value: str, key: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{key} must be an http(s) URL, got {value!r}")
    return value


def _prices(value: Any) -> Mapping[str, int] | None:
    if value is None:
        return None
    if isinstance(value, str):
        # "price_a:100,price_b:500", convenient in an environment variable
        pairs: dict[str, Any] = {}
        for item in filter(None, (v.strip() for v in value.split(","))):
            price, sep, credits = item.partition(":")
            if not sep or not credits.strip().isdigit():
                raise ConfigurationError(
                    "PAXPAR_CHECKOUT_PRICES as a string must read 'price_a:100,price_b:500'"
                )
            pairs[price.strip()] = int(credits)
        value = pairs
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            "PAXPAR_CHECKOUT_PRICES must map price ids to credits per period, "
            "e.g. {'price_1KqDAWK0npsJqs8Ma6zyHflo': 100}"
        )
    for price, credits in value.items():
        if not isinstance(price, str) or not PRICE_ID.match(price):
            raise ConfigurationError(f"PAXPAR_CHECKOUT_PRICES: {price!r} is not a price id")
        if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
            raise ConfigurationError(
                f"PAXPAR_CHECKOUT_PRICES[{price!r}] must be a whole number of credits >= 0"
            )
    return MappingProxyType(dict(value))


def _webhook_secrets(config: Mapping[str, Any]) -> tuple[str, ...]:
    secrets = tuple(_strings(config, "STRIPE_WEBHOOK_SECRET"))
    for secret in secrets:
        if not secret.startswith("whsec_"):
            raise ConfigurationError(
                "STRIPE_WEBHOOK_SECRET must hold webhook signing secrets (whsec_...), "
                "comma-separated or as a list"
            )
    return secrets
