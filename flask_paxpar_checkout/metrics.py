"""Prometheus metrics (the ``[metrics]`` extra), registered in the host's registry.

Imported only by ``PaxparCheckout.init_metrics``: an app without metrics never imports
``prometheus_client``. Under gunicorn's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``)
the counters and the histogram add up over the workers and the outbox gauges show the most
recent count, which is the database's and the same from every worker.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, CheckoutMetrics] = (
    weakref.WeakKeyDictionary()
)


class CheckoutMetrics:
    """The plugin's metrics in one registry (several apps may share them)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.webhook_events = Counter(
            "paxpar_checkout_webhook_events",
            "Webhook deliveries by event type and outcome "
            "(processed, duplicate, ignored, failed, invalid).",
            ["type", "outcome"],
            registry=registry,
        )
        self.webhook_seconds = Histogram(
            "paxpar_checkout_webhook_seconds",
            "Time spent on one webhook delivery, from its body to its answer.",
            buckets=_BUCKETS,
            registry=registry,
        )
        self.sessions_created = Counter(
            "paxpar_checkout_sessions_created",
            "Checkout Sessions created, by mode (payment, subscription).",
            ["mode"],
            registry=registry,
        )
        self.stripe_requests = Counter(
            "paxpar_checkout_stripe_requests",
            "Calls to Stripe's API by operation and outcome (ok, unavailable, error).",
            ["operation", "outcome"],
            registry=registry,
        )
        self.credits_changes = Counter(
            "paxpar_checkout_credits_changes",
            "Changes of a credit balance, by reason.",
            ["reason"],
            registry=registry,
        )
        self.outbox_pending = Gauge(
            "paxpar_checkout_outbox_pending",
            "Deferred handler runs waiting or running.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )
        self.outbox_failed = Gauge(
            "paxpar_checkout_outbox_failed",
            "Deferred handler runs that failed after their last attempt.",
            registry=registry,
            multiprocess_mode="mostrecent",
        )

    @classmethod
    def of(cls, registry: CollectorRegistry | None = None) -> CheckoutMetrics:
        """The metrics in ``registry`` (the global one by default), made on first use."""
        registry = REGISTRY if registry is None else registry
        found = _by_registry.get(registry)
        if found is None:
            found = _by_registry[registry] = cls(registry)
        return found

    def webhook_event(self, event_type: str, outcome: str, seconds: float) -> None:
        self.webhook_events.labels(type=event_type, outcome=outcome).inc()
        self.webhook_seconds.observe(seconds)

    def session_created(self, mode: str) -> None:
        self.sessions_created.labels(mode=mode).inc()

    def stripe_request(self, operation: str, outcome: str) -> None:
        self.stripe_requests.labels(operation=operation, outcome=outcome).inc()

    def credits_changed(self, sender: Any, *, reason: str, **_: Any) -> None:
        """Receiver of the ``credits_changed`` signal."""
        self.credits_changes.labels(reason=reason).inc()

    def outbox_counts(self, counts: Mapping[str, int]) -> None:
        self.outbox_pending.set(counts.get("pending", 0) + counts.get("running", 0))
        self.outbox_failed.set(counts.get("failed", 0))
