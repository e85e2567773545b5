"""The example's settings: environment variables, with defaults that run on a fresh machine."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The plugin refuses to start without a webhook signing secret. This one is only good for
# events signed on this machine (`flask checkout trigger`); `stripe listen` prints the one
# to use for events forwarded from Stripe.
DEV_WEBHOOK_SECRET = "whsec_paxparLocalDevelopmentOnly"
# Made-up price ids: enough for the pages, for `trigger` and for stripe-mock. A real Stripe
# test account needs its own price ids in PAXPAR_CHECKOUT_PRICES.
DEMO_PRICES = "price_basic:100,price_pro:500"
DEMO_CREDIT_PRICE = "price_credit"
DEFAULT_PORT = 5000


def settings_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Flask settings from environment variables, with the example's defaults.

    Every ``PAXPAR_*`` and ``STRIPE_*`` variable is passed on to the plugin as is.
    """
    port = environ.get("PORT") or str(DEFAULT_PORT)
    settings: dict[str, Any] = {
        key: value for key, value in environ.items() if key.startswith(("PAXPAR_", "STRIPE_"))
    }
    settings.setdefault("PAXPAR_FQDN", "localhost")
    settings.setdefault("STRIPE_WEBHOOK_SECRET", DEV_WEBHOOK_SECRET)
    settings.setdefault("PAXPAR_CHECKOUT_PUBLIC_URL", f"http://localhost:{port}")
    settings.setdefault("PAXPAR_CHECKOUT_PRICES", DEMO_PRICES)
    settings.setdefault("PAXPAR_CHECKOUT_CREDIT_PRICE_ID", DEMO_CREDIT_PRICE)
    settings.setdefault("PAXPAR_CHECKOUT_LOGIN_URL", "/login")
    settings["SESSION_COOKIE_SAMESITE"] = "Lax"  # sent on the way back from Stripe
    if environ.get("SECRET_KEY"):
        settings["SECRET_KEY"] = environ["SECRET_KEY"]
    if environ.get("DATABASE_URL"):
        settings["SQLALCHEMY_DATABASE_URI"] = database_uri(environ["DATABASE_URL"])
    return settings


def database_uri(url: str) -> str:
    """``DATABASE_URL`` as SQLAlchemy wants it: PostgreSQL through psycopg 3."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url
