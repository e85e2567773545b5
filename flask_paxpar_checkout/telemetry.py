"""What operators see: one log record per webhook event, and the metrics when enabled.

The metrics themselves live in ``metrics`` (``prometheus_client``, the ``[metrics]`` extra),
imported only by ``PaxparCheckout.init_metrics``; here they are reached through the current
app, so that an app without them pays a dictionary look-up and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from time import perf_counter
from typing import Any, Protocol

from flask import current_app, has_app_context

from .errors import StripeServiceError, StripeUnavailable

log = logging.getLogger("flask_paxpar_checkout")
METRICS_KEY = "paxpar_checkout_metrics"


class MetricsSink(Protocol):
    """What ``metrics.CheckoutMetrics`` records; the hooks call only this."""

    def webhook_event(self, event_type: str, outcome: str, seconds: float) -> None: ...

    def session_created(self, mode: str) -> None: ...

    def stripe_request(self, operation: str, outcome: str) -> None: ...

    def outbox_counts(self, counts: Mapping[str, int]) -> None: ...


def _sink() -> MetricsSink | None:
    if not has_app_context():
        return None
    sink: MetricsSink | None = current_app.extensions.get(METRICS_KEY)
    return sink


def metrics_enabled() -> bool:
    """Whether the current app records metrics."""
    return _sink() is not None


def webhook_event(
    event_id: str | None, event_type: str | None, outcome: str, started: float
) -> None:
    """One webhook delivery is over: its log record (no payload, no secret) and metrics.

    ``outcome`` is processed, duplicate, ignored, failed or invalid; ``started`` is the
    ``perf_counter()`` reading taken when the delivery arrived.
    """
    seconds = perf_counter() - started
    if log.isEnabledFor(logging.INFO):
        log.info(
            "Webhook event %s (%s): %s in %.1f ms",
            event_id or "-",
            event_type or "-",
            outcome,
            seconds * 1000,
            extra={
                "event_id": event_id,
                "event_type": event_type,
                "outcome": outcome,
                "duration_ms": round(seconds * 1000, 3),
            },
        )
    sink = _sink()
    if sink is not None:
        sink.webhook_event(event_type or "unknown", outcome, seconds)


@contextmanager
def stripe_request(operation: str) -> Iterator[None]:
    """Count one call to Stripe's API by its outcome: ok, unavailable (rate limit or no
    answer) or error (refused)."""
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except StripeUnavailable:
        outcome = "unavailable"
        raise
    except StripeServiceError:
        raise
    finally:
        sink = _sink()
        if sink is not None:
            sink.stripe_request(operation, outcome)


def session_created(params: Mapping[str, Any]) -> None:
    """A Checkout Session was created with ``params``."""
    sink = _sink()
    if sink is not None:
        sink.session_created(str(params.get("mode") or "unknown"))


def outbox_counts(counts: Mapping[str, int]) -> None:
    """The outbox rows of each status, as just counted."""
    sink = _sink()
    if sink is not None:
        sink.outbox_counts(counts)
