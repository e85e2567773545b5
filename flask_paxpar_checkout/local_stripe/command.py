"""Running the local Stripe on its own: ``python -m flask_paxpar_checkout.local_stripe`` and
``flask checkout local-stripe`` share this."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from .pages import BANNER
from .server import LocalStripe

__all__ = ["DEFAULT_PORT", "TEST_KEY", "main", "serve"]

DEFAULT_PORT = 12112
TEST_KEY = "sk_test_local"
PRICE_SPEC = re.compile(r"(once:)?(price_[A-Za-z0-9]+):(\d{1,9})")


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    webhooks: Sequence[str] = (),
    secret: str | None = None,
    api_version: str = "2026-07-29.dahlia",
    prices: Sequence[str] = (),
    out: TextIO = sys.stdout,
    exit_with_stdin: bool = False,
) -> None:
    """Serve until interrupted, sending every event to each of ``webhooks``.

    The first line written is ``Local Stripe listening on URL`` (a parent process waits for
    it); ``prices`` are ``price_id:unit_amount`` (cents), recurring unless ``once:`` leads.
    With ``exit_with_stdin`` it also stops when its standard input closes: a parent that
    started it with a pipe takes it down when it ends, however it ends.
    """
    stripe = LocalStripe(host=host, port=port, api_version=api_version)
    for spec in prices:
        match = PRICE_SPEC.fullmatch(spec)
        if match is None:
            raise ValueError(f"a price is price_id:cents or once:price_id:cents, not {spec!r}")
        once, price_id, amount = match.groups()
        stripe.add_price(price_id, recurring=not once, unit_amount=int(amount))
    stripe.start()
    print(f"Local Stripe listening on {stripe.url}", file=out, flush=True)
    lines = [f"  {BANNER}", f"  API base:  {stripe.url}  (STRIPE_API_BASE)"]
    lines.append(f"  key:       {TEST_KEY} or any sk_test_... (live keys are refused)")
    for url in webhooks:
        endpoint = stripe.add_webhook_endpoint(url=url, enabled_events=["*"], secret=secret)
        lines.append(f"  webhook:   {url}  secret {endpoint['secret']}")
    lines += [f"  clock:     {stripe.url}/", f"  log:       {stripe.url}/deliveries"]
    print("\n".join(lines), file=out, flush=True)
    if exit_with_stdin:
        threading.Thread(target=_stop_at_eof, args=(stripe,), daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        stripe.serve_forever()


def _stop_at_eof(stripe: LocalStripe) -> None:
    while sys.stdin.readline():
        pass
    stripe.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m flask_paxpar_checkout.local_stripe",
        description=f"A local Stripe with Checkout, portal and test clock. {BANNER}.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default: {DEFAULT_PORT}")
    parser.add_argument("--webhook", action="append", default=[], help="a webhook URL to send to")
    parser.add_argument("--secret", help="the webhook endpoint's signing secret, whsec_...")
    parser.add_argument("--api-version", default="2026-07-29.dahlia")
    parser.add_argument(
        "--price", action="append", default=[], help="price_id:cents, or once:price_id:cents"
    )
    parser.add_argument(
        "--exit-with-stdin", action="store_true", help="also stop when standard input closes"
    )
    args = parser.parse_args(argv)
    if args.secret is not None and not args.secret.startswith("whsec_"):
        parser.error("--secret must be a webhook signing secret, whsec_...")
    for spec in args.price:
        if PRICE_SPEC.fullmatch(spec) is None:
            parser.error(f"--price is price_id:cents or once:price_id:cents, not {spec!r}")
    serve(
        host=args.host,
        port=args.port,
        webhooks=args.webhook,
        secret=args.secret,
        api_version=args.api_version,
        prices=args.price,
        exit_with_stdin=args.exit_with_stdin,
    )
