"""``flask checkout trigger``: signed events over real HTTP to the app's own webhook."""

from __future__ import annotations

import ast
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import Result
from flask import Flask
from werkzeug.serving import make_server

from flask_paxpar_checkout import PaxparCheckout
from flask_paxpar_checkout.testing import ERAS, StripeStub

from .conftest import FQDN, PRICE_BASIC, PRICE_PRO, base_config, database_url, make_app
from .helpers import rows

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

TRIGGER_SOURCE = Path(__file__).resolve().parent.parent / "flask_paxpar_checkout" / "trigger.py"


class LiveServer:
    """The app over real HTTP on 127.0.0.1; the port exists before the app is configured."""

    def __init__(self) -> None:
        self.app: WSGIApplication | None = None
        self.server = make_server("127.0.0.1", 0, self.dispatch, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def dispatch(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        assert self.app is not None
        return self.app(environ, start_response)


@pytest.fixture
def live() -> Iterator[LiveServer]:
    server = LiveServer()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()
    server.thread.join(5)


@pytest.fixture
def config(stripe: StripeStub, tmp_path: Any, live: LiveServer) -> dict[str, Any]:
    """The app's public URL is the live server's: ``trigger``'s default webhook."""
    return {
        **base_config(stripe.url, database_url(tmp_path)),
        "PAXPAR_CHECKOUT_PUBLIC_URL": live.url,
    }


@pytest.fixture
def served(app: Flask, live: LiveServer) -> LiveServer:
    live.app = app
    return live


def trigger(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=["checkout", "trigger", *args])


def answers(result: Result) -> list[str]:
    """The webhook's answers, in order: processed, duplicate, ignored..."""
    return [line for line in result.output.splitlines() if line.startswith("-> ")]


def next_second() -> None:
    """Wait for the next whole second: a triggered event is stamped with the second it is
    made in, and two events of one second are ordered by their ids, not by when they were
    sent."""
    time.sleep(1 - time.time() % 1 + 0.01)


def reset_rows() -> list[Any]:
    return [r for r in rows("ledger") if r.reason == "subscription_reset"]


pytestmark = pytest.mark.usefixtures("served")


@pytest.mark.parametrize("era", ERAS)
def test_invoice_paid_resets_credits_to_the_plan(
    app: Flask, checkout: PaxparCheckout, served: LiveServer, era: str
) -> None:
    checkout.add_credits(1, 7)
    next_second()

    result = trigger(app, "invoice.paid", "--user", "1", "--era", era)

    assert result.exit_code == 0, result.output
    assert "invoice.paid evt_" in result.output
    assert f"-> {served.url}/api/checkout/webhook" in result.output
    assert f"fqdn={FQDN} api={era}" in result.output
    [answer] = answers(result)
    assert answer.startswith("-> 200 OK") and '"status": "processed"' in answer
    assert checkout.credits(1) == 100  # PRICE_BASIC's, the first configured price
    sub = checkout.subscription(1)
    assert sub is not None
    assert (sub.id, sub.price_id, sub.status) == ("sub_local_1", PRICE_BASIC, "active")
    assert sub.current_period_end is not None
    [event] = rows("events")
    assert (event.type, event.status, event.api_version) == ("invoice.paid", "processed", era)


@pytest.mark.parametrize("era", ERAS)
def test_payment_failed_marks_the_subscription_past_due(
    app: Flask, checkout: PaxparCheckout, era: str
) -> None:
    assert trigger(app, "invoice.paid", "--user", "1", "--era", era).exit_code == 0
    next_second()

    result = trigger(app, "invoice.payment_failed", "--user", "1", "--era", era)

    assert result.exit_code == 0, result.output
    assert '"status": "processed"' in answers(result)[0]
    sub = checkout.subscription(1)
    assert sub is not None
    assert (sub.id, sub.status, sub.is_active) == ("sub_local_1", "past_due", False)
    assert checkout.credits(1) == 100  # credits stay


@pytest.mark.parametrize("era", ERAS)
def test_twice_the_second_delivery_is_a_duplicate(
    app: Flask, checkout: PaxparCheckout, era: str
) -> None:
    checkout.add_credits(1, 3)
    next_second()

    result = trigger(app, "invoice.paid", "--user", "1", "--twice", "--era", era)

    assert result.exit_code == 0, result.output
    first, second = answers(result)
    assert '"status": "processed"' in first
    assert '"status": "duplicate"' in second
    assert first.split('"event": ')[1][:30] == second.split('"event": ')[1][:30]
    assert checkout.credits(1) == 100
    assert len(reset_rows()) == 1
    assert len(rows("events")) == 1


@pytest.mark.parametrize("era", ERAS)
def test_another_instances_event_changes_nothing(
    app: Flask, checkout: PaxparCheckout, era: str
) -> None:
    checkout.add_credits(1, 3)

    result = trigger(app, "invoice.paid", "--user", "1", "--fqdn", "prod.paxpar.tech", "--era", era)

    assert result.exit_code == 0, result.output
    assert "fqdn=prod.paxpar.tech" in result.output
    [answer] = answers(result)
    assert '"status": "ignored"' in answer and "prod.paxpar.tech" in answer
    assert checkout.credits(1) == 3
    assert checkout.subscription(1) is None
    assert rows("events") == []


def test_price_option_picks_the_plan(app: Flask, checkout: PaxparCheckout) -> None:
    result = trigger(app, "invoice.paid", "--user", "2", "--price", PRICE_PRO)

    assert result.exit_code == 0, result.output
    assert checkout.credits(2) == 500
    sub = checkout.subscription(2)
    assert sub is not None and sub.price_id == PRICE_PRO


def test_defaults_follow_the_users_known_subscription(app: Flask, checkout: PaxparCheckout) -> None:
    args = ["--mode", "subscription", "--price", PRICE_PRO, "--subscription", "sub_real1"]
    result = trigger(app, "checkout.session.completed", "--user", "4", *args)
    assert result.exit_code == 0, result.output
    assert "subscription=sub_real1" in result.output
    sub = checkout.subscription(4)
    assert sub is not None and (sub.id, sub.status) == ("sub_real1", "active")

    result = trigger(app, "invoice.paid", "--user", "4")

    assert result.exit_code == 0, result.output
    assert "subscription=sub_real1" in result.output
    assert checkout.credits(4) == 500  # the subscription's price, not the first configured
    assert [s.id for s in rows("subscriptions")] == ["sub_real1"]
    [reset] = reset_rows()
    assert reset.user_id == "4"


def test_repeated_triggers_hit_the_same_subscription(app: Flask, checkout: PaxparCheckout) -> None:
    for _ in range(3):
        assert trigger(app, "invoice.paid", "--user", "5").exit_code == 0
    assert [s.id for s in rows("subscriptions")] == ["sub_local_5"]
    assert len(reset_rows()) == 3  # three invoices, three resets
    assert checkout.credits(5) == 100


def test_credit_purchase(app: Flask, checkout: PaxparCheckout) -> None:
    result = trigger(app, "checkout.session.completed", "--user", "3", "--qty", "12")

    assert result.exit_code == 0, result.output
    assert "qty=12" in result.output
    assert checkout.credits(3) == 12
    [purchase] = rows("ledger")
    assert (purchase.reason, purchase.delta) == ("purchase", 12)


@pytest.mark.parametrize(("status", "active"), [("past_due", False), ("trialing", True)])
def test_subscription_updated_status(
    app: Flask, checkout: PaxparCheckout, status: str, active: bool
) -> None:
    assert trigger(app, "invoice.paid", "--user", "1").exit_code == 0
    next_second()

    result = trigger(app, "customer.subscription.updated", "--user", "1", "--status", status)

    assert result.exit_code == 0, result.output
    assert f"status={status}" in result.output
    sub = checkout.subscription(1)
    assert sub is not None and (sub.status, sub.is_active) == (status, active)


def test_subscription_deleted(app: Flask, checkout: PaxparCheckout) -> None:
    assert trigger(app, "invoice.paid", "--user", "1").exit_code == 0
    next_second()

    result = trigger(app, "customer.subscription.deleted", "--user", "1")

    assert result.exit_code == 0, result.output
    sub = checkout.subscription(1)
    assert sub is not None and sub.status == "canceled"
    assert checkout.credits(1) == 100  # PAXPAR_CHECKOUT_CREDITS_ON_CANCEL=keep


def test_a_wrong_secret_is_refused(app: Flask, checkout: PaxparCheckout) -> None:
    result = trigger(app, "invoice.paid", "--user", "1", "--secret", "whsec_not_this_one")

    assert result.exit_code == 1
    [answer] = answers(result)
    assert answer.startswith("-> 400 BAD REQUEST") and "signing secret" in answer
    assert "did not accept the event" in result.output
    assert checkout.credits(1) == 0
    assert rows("events") == []


def test_without_prices_a_price_is_asked_for(
    stripe: StripeStub, tmp_path: Path, live: LiveServer
) -> None:
    config = base_config(stripe.url, f"sqlite:///{tmp_path}/no-tables.db")
    config.pop("PAXPAR_CHECKOUT_PRICES")
    other, other_db, _ = make_app(config)  # its tables are never created: nothing is known

    with other.app_context():  # else `with_appcontext` keeps the current app's
        result = trigger(other, "invoice.paid", "--user", "1", "--url", live.url + "/nowhere")
        other_db.engine.dispose()

    assert result.exit_code == 2
    assert "give --price" in result.output


def test_nothing_listening_says_so(app: Flask) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api/checkout/webhook"

    result = trigger(app, "invoice.paid", "--user", "1", "--url", url)

    assert result.exit_code == 1
    assert f"nothing answers at {url}" in result.output
    assert "Is the app running there?" in result.output


def test_url_option(app: Flask, served: LiveServer, checkout: PaxparCheckout) -> None:
    url = f"{served.url}/api/checkout/webhook"
    result = trigger(app, "invoice.paid", "--user", "1", "--url", url)
    assert result.exit_code == 0, result.output
    assert checkout.credits(1) == 100

    result = trigger(app, "invoice.paid", "--user", "1", "--url", "ftp://example.com/hook")
    assert result.exit_code == 2
    assert "is not an http(s) URL" in result.output


def test_bad_arguments(app: Flask) -> None:
    result = trigger(app, "invoice.finalized", "--user", "1")
    assert result.exit_code == 2
    assert "invoice.paid" in result.output  # the choices are listed

    result = trigger(app, "invoice.paid")
    assert result.exit_code == 2
    assert "--user" in result.output

    result = trigger(app, "invoice.paid", "--user", "x" * 65)
    assert result.exit_code == 2

    result = trigger(app, "checkout.session.completed", "--user", "1", "--qty", "0")
    assert result.exit_code == 2


def test_listed_under_checkout(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["checkout", "--help"])
    assert result.exit_code == 0
    assert "trigger" in result.output


def test_trigger_does_not_import_stripe() -> None:
    tree = ast.parse(TRIGGER_SOURCE.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    assert "stripe" not in imported
    assert "requests" not in imported
