"""The local Stripe as a child of the example, when no ``STRIPE_SECRET_KEY`` is set: started
on a free port with the example's prices, sending its events to the example's webhook, and
stopped with the example (its standard input is a pipe from us: it ends when we end)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from types import TracebackType

from flask_paxpar_checkout.local_stripe.command import TEST_KEY

from .settings import DEMO_CREDIT_PRICE

# What the local Checkout page charges for the example's made-up prices, in cents.
DEMO_AMOUNTS = {"price_basic": 900, "price_pro": 2900}
CREDIT_AMOUNT = 10
START_TIMEOUT = 30.0


class LocalStripeProcess:
    """``python -m flask_paxpar_checkout.local_stripe`` for one webhook; ``url`` once started."""

    def __init__(self, webhook_url: str, webhook_secret: str) -> None:
        prices = [f"{price}:{cents}" for price, cents in DEMO_AMOUNTS.items()]
        prices.append(f"once:{DEMO_CREDIT_PRICE}:{CREDIT_AMOUNT}")
        self.args = [
            sys.executable,
            "-m",
            "flask_paxpar_checkout.local_stripe",
            "--port",
            "0",
            "--webhook",
            webhook_url,
            "--secret",
            webhook_secret,
            "--exit-with-stdin",
            *(arg for price in prices for arg in ("--price", price)),
        ]
        self.url = ""
        self.summary = ""
        self.api_key = TEST_KEY
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> LocalStripeProcess:
        """Start it and wait (bounded) for the line that gives its URL."""
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._process = process
        lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout

        def read() -> None:
            for line in stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=read, daemon=True).start()
        try:
            first = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            first = ""
        if not first.startswith("Local Stripe listening on "):
            self.stop()
            raise RuntimeError(f"the local Stripe did not start: {first.strip() or 'no output'}")
        self.url = first.split()[-1]
        return self

    def stop(self) -> None:
        """Close its standard input (it stops), and make sure it is gone."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> LocalStripeProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
