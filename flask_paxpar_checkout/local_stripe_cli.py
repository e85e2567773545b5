"""``flask checkout local-stripe``: the local Stripe, sending its events to this app's webhook."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .local_stripe.command import DEFAULT_PORT, PRICE_SPEC, serve
from .state import current_state


@click.command("local-stripe")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int)
@click.option("--webhook", help="Where to send the events. [default: this app's webhook]")
@click.option("--price", "prices", multiple=True, help="price_id:cents, or once:price_id:cents.")
@with_appcontext
def local_stripe_command(
    host: str, port: int, webhook: str | None, prices: tuple[str, ...]
) -> None:
    """Run a local Stripe (Checkout, portal, test clock; no real payment) until Ctrl-C.

    Its events are signed with this app's first STRIPE_WEBHOOK_SECRET. Point the app at it
    with STRIPE_API_BASE=http://HOST:PORT and a test key (sk_test_...).
    """
    for spec in prices:
        if PRICE_SPEC.fullmatch(spec) is None:
            raise click.BadParameter("price_id:cents or once:price_id:cents", param_hint="--price")
    config = current_state().config
    url = webhook or f"{config.public_url}{config.url_prefix}/webhook"
    serve(host=host, port=port, webhooks=[url], secret=config.webhook_secrets[0], prices=prices)
