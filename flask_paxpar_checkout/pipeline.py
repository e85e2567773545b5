"""The webhook pipeline: verify, read, route to this instance, record once, run handlers.

One database transaction per event holds the event's "processed" mark and every effect of
its handlers, the host's included: all land, or none.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from sqlalchemy import Table

from . import deferred, outbox, signals, telemetry
from .config import CheckoutConfig
from .database import Database
from .errors import HandlerFailed
from .events import Event, object_id, parse_event
from .gateway import verify_signature
from .handlers import BuiltinHandler
from .records import EventRecords, event_row
from .registry import HandlerRegistry

log = logging.getLogger("flask_paxpar_checkout")

ROUTED_BY_LOOKUP = frozenset({"charge.refunded"})
"""Types whose object carries none of our metadata: the handler finds its purchase."""


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery."""

    status: str  # "processed", "duplicate" or "ignored"
    event_id: str
    reason: str | None = None


class Pipeline:
    """Verifies deliveries and runs the handlers of each event exactly once."""

    def __init__(
        self,
        config: CheckoutConfig,
        database: Database,
        records: EventRecords,
        builtins: Mapping[str, BuiltinHandler],
        registry: HandlerRegistry,
        *,
        deferred: Mapping[str, Sequence[str]],
        outbox: Table,
    ) -> None:
        self.config = config
        self.database = database
        self.records = records
        self.builtins = builtins
        self.registry = registry
        self.deferred = deferred  # event type -> the names of its deferred handlers
        self.outbox = outbox

    def receive(self, body: bytes, signature: str | None) -> Outcome:
        """Handle one delivery; ``InvalidWebhook`` (400) before anything is recorded. Each
        delivery is counted and logged once, with its outcome."""
        started = perf_counter()
        event: Event | None = None
        outcome = "invalid"
        try:
            verify_signature(
                body, signature, self.config.webhook_secrets, self.config.webhook_tolerance
            )
            event = parse_event(body)
            outcome = "failed"
            signals.send(signals.webhook_received, event=event.payload)
            result = self.process(event, body.decode("utf-8"))
            outcome = result.status
            return result
        finally:
            event_id, event_type = (event.id, event.type) if event else (None, None)
            telemetry.webhook_event(event_id, event_type, outcome, started)

    def process(self, event: Event, payload_text: str, *, replay: bool = False) -> Outcome:
        """Record ``event`` and run its handlers in one transaction; ``HandlerFailed`` if
        one raised (its effects rolled back, the failure recorded)."""
        if event.fqdn is not None and event.fqdn.lower() != self.config.fqdn:
            # Not stored: another instance's customers have no place in this database.
            foreign = f"another instance's event ({event.fqdn})"
            signals.send(signals.webhook_ignored, event=event.payload, reason=foreign)
            return Outcome("ignored", event.id, foreign)
        row = event_row(event, payload_text)
        reason = self._reason_to_ignore(event)
        if reason is not None:
            with self.database.transaction() as tx:
                self.records.ignore(tx, row, reason)
            signals.send(signals.webhook_ignored, event=event.payload, reason=reason)
            return Outcome("ignored", event.id, reason)

        builtin = self.builtins.get(event.type)
        host_handlers = self.registry.handlers_of(event.type)
        later = self.deferred.get(event.type, ())
        try:
            # A host handler writes through db.session: the event is then its transaction.
            with self.database.transaction(with_session=bool(host_handlers)) as tx:
                if not self.records.claim(tx, row, replay=replay):
                    return Outcome("duplicate", event.id)
                if builtin is not None:
                    builtin(tx, event)
                for handler in host_handlers:
                    handler(event.payload)
                if later:  # rows of the same transaction, worked off after its commit
                    rows = outbox.write_event_rows(tx.connection, self.outbox, row, later)
                    tx.after_commit(lambda: deferred.hand_off(rows))
        except Exception as exc:
            self._record_failure(row, event.payload, exc)
            raise HandlerFailed(event.id) from exc
        signals.send(signals.webhook_processed, event=event.payload)
        return Outcome("processed", event.id)

    def handled_types(self) -> list[str]:
        """Every event type something handles here: what the webhook endpoint must send."""
        deferred = {event_type for event_type, names in self.deferred.items() if names}
        return sorted(set(self.builtins) | self.registry.types() | deferred)

    def _reason_to_ignore(self, event: Event) -> str | None:
        if event.type in ROUTED_BY_LOOKUP:
            if object_id(event.object.get("payment_intent")) is None:
                return "not a refund of a payment intent"
        elif event.fqdn is None and not self.config.accept_untagged_events:
            return "untagged: the object carries no paxpar_fqdn metadata"
        handled = event.type in self.builtins or self.deferred.get(event.type)
        if not handled and not self.registry.handlers_of(event.type):
            return f"no handler for {event.type}"
        return None

    def _record_failure(self, row: dict[str, Any], payload: dict[str, Any], exc: Exception) -> None:
        error = "".join(traceback.format_exception(exc))[-20000:]
        # The error's text, never its SQL parameters: those hold the payload's customer data.
        cause = getattr(exc, "orig", None) or exc
        log.error(
            "Webhook event %s (%s) failed: %s: %.200s",
            row["id"],
            row["type"],
            type(exc).__name__,
            cause,
        )
        try:
            with self.database.transaction() as tx:
                self.records.fail(tx, row, error)
        except Exception:  # the database itself may be what failed; Stripe will retry
            log.exception("Could not record the failure of event %s", row["id"])
        signals.send(signals.webhook_failed, event=payload, error=exc)
