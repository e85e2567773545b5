"""``python -m examples.host_app``: print how to use the service, then serve it.

``PORT`` (default 5000) and ``HOST`` (default 127.0.0.1) choose where it listens.
"""

from __future__ import annotations

import os

from flask import Flask

from . import create_app
from .extensions import checkout
from .models import DEMO_PASSWORD, DEMO_USERS
from .settings import DEFAULT_PORT, DEV_WEBHOOK_SECRET


def banner(app: Flask) -> str:
    """What a newcomer needs: the URL, the logins, Stripe's state and the webhook."""
    with app.app_context():
        config = checkout.config
    webhook = f"{config.public_url}{config.url_prefix}/webhook"
    secret = config.webhook_secrets[0]
    if config.secret_key is None:
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
    return "\n".join(lines)


def main() -> None:
    port = int(os.environ.get("PORT") or DEFAULT_PORT)
    host = os.environ.get("HOST") or "127.0.0.1"
    app = create_app()
    print(banner(app), flush=True)
    app.run(host=host, port=port, use_reloader=False)


if __name__ == "__main__":
    main()
