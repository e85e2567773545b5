"""``flask checkout trigger EVENT_TYPE``: send a realistic, signed Stripe event to a webhook.

Offline, unlike ``stripe trigger``: the event is built from the same Stripe-shaped fixtures
the tests use, tagged for this instance (or another one), signed with the webhook secret
exactly as Stripe signs it and POSTed to the webhook (this app's own by default). So anyone
can watch a subscription payment reset credits without a Stripe account or a network.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from .event_factory import ERAS, SUPPORTED_TYPES, Era, EventBuilder, signed
from .events import invoice_subscription
from .state import CheckoutState, current_state
from .users import user_key

SUBSCRIPTION_STATUSES = (
    "active",
    "trialing",
    "past_due",
    "unpaid",
    "paused",
    "incomplete",
    "incomplete_expired",
    "canceled",
)
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
TIMEOUT = 15.0


@dataclass(frozen=True)
class Answer:
    """The webhook's reply to one delivery."""

    status: int
    reason: str
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@click.command("trigger")
@click.argument("event_type", type=click.Choice(SUPPORTED_TYPES))
@click.option("--user", "user_id", required=True, help="The host's user id the event is for.")
@click.option(
    "--price",
    "price_id",
    help="Price id. Default: the user's subscription's, else the first of PAXPAR_CHECKOUT_PRICES.",
)
@click.option(
    "--qty",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Credits bought (checkout.session.* in payment mode).",
)
@click.option(
    "--mode",
    type=click.Choice(["payment", "subscription"]),
    default="payment",
    show_default=True,
    help="checkout.session.*: a credit purchase or a subscription's checkout.",
)
@click.option(
    "--subscription",
    "subscription_id",
    help="Subscription id. Default: the user's known subscription, else sub_local_<user>.",
)
@click.option(
    "--customer",
    "customer_id",
    help="Stripe customer id. Default: the user's known customer, else cus_local_<user>.",
)
@click.option(
    "--status",
    type=click.Choice(SUBSCRIPTION_STATUSES),
    default="active",
    show_default=True,
    help="customer.subscription.updated: the subscription's new status.",
)
@click.option(
    "--url",
    help="Webhook URL. Default: this app's own, PAXPAR_CHECKOUT_PUBLIC_URL + prefix + /webhook.",
)
@click.option("--twice", is_flag=True, help="Deliver the same event twice, as Stripe may.")
@click.option(
    "--era",
    type=click.Choice(ERAS),
    default=ERAS[0],
    show_default=True,
    help="API version of the payload's shape (the webhook endpoint's version).",
)
@click.option("--fqdn", help="Tag the event for another instance (default: this one's).")
@click.option("--secret", help="Signing secret. Default: the first of STRIPE_WEBHOOK_SECRET.")
@with_appcontext
def trigger(
    event_type: str,
    user_id: str,
    price_id: str | None,
    qty: int,
    mode: str,
    subscription_id: str | None,
    customer_id: str | None,
    status: str,
    url: str | None,
    twice: bool,
    era: str,
    fqdn: str | None,
    secret: str | None,
) -> None:
    """Send a signed EVENT_TYPE event to a webhook and print the answer.

    \b
    flask checkout trigger invoice.paid --user 1            # credits reset to the plan's
    flask checkout trigger invoice.payment_failed --user 1  # subscription past due
    flask checkout trigger checkout.session.completed --user 1 --qty 5
    """
    state = current_state()
    config = state.config
    user = _user_key(user_id)
    known = _known(state, user)
    price_id = price_id or known.get("price") or next(iter(config.prices or {}), None)
    _require_price(event_type, mode, price_id)
    url = _webhook_url(url or f"{config.public_url}{config.url_prefix}/webhook")
    builder = EventBuilder(fqdn=fqdn or config.fqdn, era=cast(Era, era))
    event = builder.build(
        event_type,
        **_arguments(
            event_type,
            user=user,
            price_id=price_id or "",
            qty=qty,
            mode=mode,
            subscription_id=subscription_id or known.get("subscription") or f"sub_local_{user}",
            customer_id=customer_id or known.get("customer") or f"cus_local_{user}",
            status=status,
        ),
    )
    click.echo(_describe(event, builder.fqdn, url))
    _deliver(event, url, secret or config.webhook_secrets[0], times=2 if twice else 1)


def _user_key(user_id: str) -> str:
    """The ``--user`` option as the plugin keys users, or a usage error naming the option."""
    try:
        return user_key(user_id)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--user") from None


def _require_price(event_type: str, mode: str, price_id: str | None) -> None:
    """Refuse to build a subscription's event without a price to put in it."""
    needs_price = event_type.startswith(("invoice.", "customer.subscription.")) or (
        mode == "subscription"
    )
    if needs_price and price_id is None:
        raise click.UsageError(
            "give --price: no subscription of this user is known and PAXPAR_CHECKOUT_PRICES "
            "is not set"
        )


def _webhook_url(url: str) -> str:
    """``url`` if it is an http(s) URL, else a usage error naming ``--url``."""
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="--url")
    return url


def _deliver(event: dict[str, Any], url: str, secret: str, *, times: int) -> None:
    """POST ``event`` to ``url`` ``times`` times, print each answer, fail if one refused it."""
    failed = False
    for attempt in range(times):
        body, headers = signed(event, secret)  # each delivery is signed afresh, as Stripe does
        if attempt == 0:
            stamp = headers["Stripe-Signature"].split(",", 1)[0]
            click.echo(f"  {len(body)} bytes, Stripe-Signature {stamp},v1=...")
        answer = _post(url, body, headers)
        click.echo(f"-> {answer.status} {answer.reason}  {answer.body}".rstrip())
        failed = failed or not answer.ok
    if failed:
        raise click.ClickException("the webhook did not accept the event (see its answer above)")


def _known(state: CheckoutState, user: str) -> dict[str, str]:
    """The user's subscription, price and customer as this app knows them, if it can tell."""
    known: dict[str, str] = {}
    try:
        with state.database.transaction() as tx:
            sub = state.subscriptions.of_user(tx, user)
            customer = state.customers.customer_of(tx, user)
    except SQLAlchemyError:  # no tables yet: the defaults will do
        return known
    if sub is not None:
        known["subscription"] = sub.id
        if sub.price_id:
            known["price"] = sub.price_id
        if sub.customer_id:
            known["customer"] = sub.customer_id
    if customer:
        known["customer"] = customer
    return known


def _arguments(
    event_type: str,
    *,
    user: str,
    price_id: str,
    qty: int,
    mode: str,
    subscription_id: str,
    customer_id: str,
    status: str,
) -> dict[str, Any]:
    """``EventBuilder.build``'s keyword arguments for ``event_type``."""
    if event_type.startswith("checkout.session."):
        args: dict[str, Any] = {"user_id": user, "mode": mode, "customer_id": customer_id}
        if mode == "subscription":
            args.update(price_id=price_id, subscription_id=subscription_id)
        else:
            args["qty"] = qty
        return args
    common = {
        "user_id": user,
        "subscription_id": subscription_id,
        "price_id": price_id,
        "customer_id": customer_id,
    }
    if event_type == "customer.subscription.updated":
        return {**common, "status": status}
    return common


def _describe(event: dict[str, Any], fqdn: str, url: str) -> str:
    obj = event["data"]["object"]
    facts = [f"fqdn={fqdn}", f"api={event['api_version']}", f"{obj['object']}={obj['id']}"]
    if obj["object"] == "checkout.session" and obj.get("mode") == "payment":
        facts.append(f"qty={obj['metadata'].get('paxpar_qty')}")
    elif obj["object"] == "checkout.session":
        facts.append(f"subscription={obj.get('subscription')}")
    elif obj["object"] == "invoice":
        facts.append(f"subscription={invoice_subscription(obj)}")
    elif obj["object"] == "subscription":
        facts.append(f"status={obj.get('status')}")
    return f"{event['type']} {event['id']} -> {url}\n  " + " ".join(facts)


def _post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST with the standard library; a clear error if nothing listens at ``url``."""
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s)
        url, data=body, headers={**headers, "User-Agent": "flask-paxpar-checkout trigger"}
    )
    handlers: list[urllib.request.BaseHandler] = []
    if (urlsplit(url).hostname or "") in _LOCAL_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))  # never send a local call to a proxy
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=TIMEOUT) as response:
            return Answer(response.status, response.reason, _text(response.read()))
    except urllib.error.HTTPError as exc:
        with exc:
            return Answer(exc.code, str(exc.reason), _text(exc.read()))
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, (ConnectionRefusedError, socket.gaierror)):
            raise click.ClickException(
                f"nothing answers at {url} ({reason}). Is the app running there? Start it "
                "(e.g. `flask run`), or set PAXPAR_CHECKOUT_PUBLIC_URL to where it runs, or "
                "give --url."
            ) from None
        raise click.ClickException(f"could not deliver to {url}: {reason}") from None


def _text(raw: bytes) -> str:
    """A one-line rendering of the answer's body (compact JSON if it is JSON)."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        return json.dumps(json.loads(text), separators=(", ", ": "))
    except ValueError:
        return text[:500]
