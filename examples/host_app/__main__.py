"""``python -m examples.host_app``: print how to use the service, then serve it.

``PORT`` (default 5000) and ``HOST`` (default 127.0.0.1) choose where it listens. Without
``STRIPE_SECRET_KEY`` the local Stripe runs beside it (a child process, stopped with it).
"""

from __future__ import annotations

import os

from flask import Flask

from flask_paxpar_checkout.local_stripe import BANNER

from . import create_app
from .extensions import checkout
from .local_stripe import LocalStripeProcess
from .models import DEMO_PASSWORD, DEMO_USERS
from .settings import DEFAULT_PORT, DEV_WEBHOOK_SECRET, settings_from_env


def banner(app: Flask) -> str:
    """What a newcomer needs: the URL, the logins, Stripe's state and the webhook."""
    with app.app_context():
        config = checkout.config
    webhook = f"{config.public_url}{config.url_prefix}/webhook"
    secret = config.webhook_secrets[0]
    local = app.config.get("LOCAL_STRIPE_URL")
    if local:
        stripe = f"{BANNER}, at {local}  (test clock and delivery log: {local}/)"
    elif config.secret_key is None:
        stripe = "not configured: set STRIPE_SECRET_KEY (see examples/README.md)"
    elif config.api_base:
        stripe = f"{config.secret_key[:8]}... against {config.api_base}"
    else:
        stripe = f"{config.secret_key[:8]}... against api.stripe.com"
    users = " or ".join(name for name, _ in DEMO_USERS)
    lines = [
        "",
        f"  paxpar auth service (example):  {config.public_url}/",
        f"  sign in as {users}, password {DEMO_PASSWORD}",
        f"  instance:  {config.fqdn}",
        f"  Stripe:    {stripe}",
        f"  webhook:   {webhook}",
        f"  secret:    {secret}"
        + ("  (local default; use `stripe listen`'s)" if secret == DEV_WEBHOOK_SECRET else ""),
        f"  database:  {app.config['SQLALCHEMY_DATABASE_URI']}",
        "  events:    flask --app examples.host_app checkout trigger invoice.paid --user 1",
        "",
    ]
    if local:
        lines.insert(1, f"  {BANNER}: pay with card 4242 4242 4242 4242 (no Stripe account).")
    return "\n".join(lines)


def main() -> None:
    port = int(os.environ.get("PORT") or DEFAULT_PORT)
    host = os.environ.get("HOST") or "127.0.0.1"
    if os.environ.get("STRIPE_SECRET_KEY"):
        app = create_app()
        print(banner(app), flush=True)
        app.run(host=host, port=port, use_reloader=False)
        return
    settings = settings_from_env(os.environ)
    prefix = settings.get("PAXPAR_CHECKOUT_URL_PREFIX") or "/api/checkout"
    webhook = f"{settings['PAXPAR_CHECKOUT_PUBLIC_URL']}{prefix}/webhook"
    secret = str(settings["STRIPE_WEBHOOK_SECRET"]).split(",")[0].strip()
    with LocalStripeProcess(webhook, secret) as local:
        app = create_app(
            {
                "STRIPE_SECRET_KEY": local.api_key,
                "STRIPE_API_BASE": local.url,
                "LOCAL_STRIPE_URL": local.url,
            }
        )
        print(banner(app), flush=True)
        app.run(host=host, port=port, use_reloader=False)


if __name__ == "__main__":
    main()
