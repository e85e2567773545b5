"""``python -m benchmarks.local_stripe``: what one purchase costs on the local Stripe.

A host app with the plugin on SQLite (durable, as the other benchmarks run it) is served over
HTTP in a thread; the local Stripe delivers to its webhook over HTTP. Each round: a
subscription's Checkout Session made through the app, then paid (three events delivered and
acknowledged). Then one advance of the test clock renews every subscription (two events
each). Prints the median and the 95th percentile of each step, and the renewals per second.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable

from werkzeug.serving import WSGIRequestHandler, make_server

from flask_paxpar_checkout.local_stripe import LocalStripe

from .hosts import app_config, plugin_app, reset_plugin_tables, sqlite_database
from .workload import PRICE, WEBHOOK_SECRET


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log."""


def _timed(step: Callable[[], object]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def run(rounds: int) -> dict[str, list[float]]:
    """Time each step of ``rounds`` journeys, each by a user of its own."""
    stripe = LocalStripe().start()
    stripe.add_price(PRICE, unit_amount=900)
    db = sqlite_database("local_stripe")
    app, sqla = plugin_app(
        db, **app_config(db, STRIPE_API_BASE=stripe.url, STRIPE_SECRET_KEY="sk_test_local")
    )
    reset_plugin_tables(app, sqla)
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stripe.add_webhook_endpoint(
        url=f"http://127.0.0.1:{server.server_port}/api/checkout/webhook",
        enabled_events=["*"],
        secret=WEBHOOK_SECRET,
    )
    client = app.test_client()
    times: dict[str, list[float]] = {"session": [], "pay": [], "advance": []}
    session_ids: list[str] = []
    try:
        for user in range(1, rounds + 1):
            headers = {"X-User": str(user), "Accept": "application/json"}

            def create(headers: dict[str, str] = headers) -> None:
                answer = client.get(f"/api/checkout/session?price_id={PRICE}", headers=headers)
                session_ids.append(answer.get_json()["id"])

            times["session"].append(_timed(create))
            times["pay"].append(_timed(lambda: stripe.pay(session_ids[-1])))
        times["advance"].append(_timed(stripe.advance_clock))
        failed = [d for d in stripe.deliveries if d.state != "succeeded"]
        if failed:
            raise SystemExit(f"{len(failed)} deliveries failed: {failed[0]}")
    finally:
        server.shutdown()
        stripe.stop()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.local_stripe", description=__doc__)
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args()
    times = run(args.rounds)
    print(f"{args.rounds} journeys on the local Stripe, SQLite (WAL, synchronous=FULL)")
    for step in ("session", "pay"):
        values = times[step]
        cuts = statistics.quantiles(values, n=20)
        median, p95 = statistics.median(values) * 1000, cuts[18] * 1000
        print(f"  {step:<8} median {median:7.2f} ms   p95 {p95:7.2f} ms")
    [advance] = times["advance"]
    print(
        f"  advance  {advance * 1000:7.1f} ms for {args.rounds} renewals: "
        f"{args.rounds / advance:.0f} renewals per second"
    )


if __name__ == "__main__":
    main()
