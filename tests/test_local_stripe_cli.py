"""Starting the local Stripe on its own (``python -m``, ``flask checkout local-stripe``), and
the live-key safety: a live key never goes to anything but Stripe's own API."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
import stripe
from flask import Flask

from flask_paxpar_checkout.config import CheckoutConfig
from flask_paxpar_checkout.errors import ConfigurationError
from flask_paxpar_checkout.testing import TestStripe

ROOT = Path(__file__).resolve().parent.parent
BASE = {"PAXPAR_FQDN": "dev.paxpar.tech", "STRIPE_WEBHOOK_SECRET": "whsec_x"}


def _reader(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """Every line the process prints, as it prints it ("" at the end)."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return lines


def _next_line(lines: queue.Queue[str], timeout: float = 20) -> str:
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"no line of output within {timeout}s")


def test_python_dash_m_serves_until_interrupted(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask_paxpar_checkout.local_stripe",
            "--port",
            "0",
            "--webhook",
            "http://127.0.0.1:9/hook",
            "--secret",
            "whsec_cli",
            "--price",
            "price_basic:1500",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines = _reader(process)
    try:
        first = _next_line(lines)
        assert first.startswith("Local Stripe listening on http://127.0.0.1:")
        url = first.split()[-1]
        client = stripe.StripeClient("sk_test_local", base_addresses={"api": url})
        assert client.v1.prices.retrieve("price_basic").unit_amount == 1500
        with urlopen(url + "/", timeout=10) as page:  # noqa: S310
            assert "Local Stripe: no real payment" in page.read().decode()
    finally:
        process.send_signal(signal.SIGINT)
        returncode = process.wait(timeout=20)
    out = "".join(iter(lambda: _next_line(lines), ""))
    assert process.stdout is not None
    process.stdout.close()
    assert returncode == 0
    assert "whsec_cli" in out and "http://127.0.0.1:9/hook" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secret", "nope"], "--secret must be a webhook signing secret"),
        (["--price", "basic"], "--price is price_id:cents"),
    ],
)
def test_bad_arguments_are_refused(args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "flask_paxpar_checkout.testing", "--port", "0", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and message in done.stderr


def test_flask_command(app: Flask) -> None:
    runner = app.test_cli_runner()
    helped = runner.invoke(args=["checkout", "local-stripe", "--help"])
    assert helped.exit_code == 0 and "no real payment" in helped.output
    refused = runner.invoke(args=["checkout", "local-stripe", "--price", "x:1"])
    assert refused.exit_code == 2 and "price_id:cents" in refused.output


@pytest.mark.parametrize("key", ["sk_live_abc123", "rk_live_abc123"])
@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:12112", "https://stripe.example.org", "http://api.stripe.com"]
)
def test_a_live_key_is_refused_anywhere_but_stripe(key: str, base: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        CheckoutConfig.from_mapping({**BASE, "STRIPE_SECRET_KEY": key, "STRIPE_API_BASE": base})
    assert "STRIPE_SECRET_KEY" in str(err.value) and "STRIPE_API_BASE" in str(err.value)


@pytest.mark.parametrize(
    "config",
    [
        {"STRIPE_SECRET_KEY": "sk_live_abc", "STRIPE_API_BASE": "https://api.stripe.com"},
        {"STRIPE_SECRET_KEY": "sk_live_abc"},
        {"STRIPE_SECRET_KEY": "sk_test_abc", "STRIPE_API_BASE": "http://127.0.0.1:12112"},
    ],
)
def test_keys_where_they_belong_are_accepted(config: dict[str, Any]) -> None:
    assert CheckoutConfig.from_mapping({**BASE, **config}).secret_key == config["STRIPE_SECRET_KEY"]


def test_the_local_stripe_refuses_a_live_key(local_stripe: TestStripe) -> None:
    client = stripe.StripeClient(
        "sk_live_abc", base_addresses={"api": local_stripe.url}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError):
        client.v1.customers.create()
    assert local_stripe.requests_to("POST", "/v1/customers")


def test_flask_checkout_local_stripe_sends_to_the_apps_webhook(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAXPAR_"))}
    env.update(
        PYTHONUNBUFFERED="1",
        DATABASE_URL=f"sqlite:///{tmp_path / 'host.db'}",
        SECRET_KEY="test",
        PAXPAR_CHECKOUT_PUBLIC_URL="http://127.0.0.1:5999",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "examples.host_app",
            "checkout",
            "local-stripe",
            "--port",
            "0",
            "--price",
            "once:price_credit:10",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = _reader(process)
    try:
        first = _next_line(lines)
        assert first.startswith("Local Stripe listening on http://127.0.0.1:"), first
        summary = "".join(_next_line(lines) for _ in range(6))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
        assert process.stdout is not None
        process.stdout.close()
    assert "webhook:   http://127.0.0.1:5999/api/checkout/webhook" in summary
    assert "secret whsec_paxparLocalDevelopmentOnly" in summary
