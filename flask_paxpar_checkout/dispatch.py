"""The webhook pipeline: verify, read, route to this instance, record once, run handlers.

One database transaction per event holds the event's "processed" mark and every effect of
its handlers, the host's included: all land, or none.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from blinker import Signal
from flask import current_app

from . import signals
from .config import CheckoutConfig
from .events import Event, parse_event
from .gateway import verify_signature
from .rehearsal import rehearsing
from .store import Store

log = logging.getLogger("flask_paxpar_checkout")

Handler = Callable[[dict[str, Any]], None]
_outbox: ContextVar[list[tuple[Signal, dict[str, Any]]] | None] = ContextVar(
    "paxpar_checkout_outbox", default=None
)


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery."""

    status: str  # "processed", "duplicate" or "ignored"
    event_id: str
    reason: str | None = None


class HandlerFailed(Exception):
    """A handler raised; its effects were rolled back and the failure stored."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"a handler of event {event_id} failed")
        self.event_id = event_id


def defer(signal: Signal, **kwargs: Any) -> None:
    """Send ``signal`` after the current transaction commits (now, outside of one)."""
    pending = _outbox.get()
    if pending is None:
        signal.send(current_app._get_current_object(), **kwargs)  # type: ignore[attr-defined]
    else:
        pending.append((signal, kwargs))


@contextmanager
def unit_of_work(store: Store, *, own: bool = False) -> Iterator[None]:
    """One transaction (``Store.transaction``): commit on success, roll back on error;
    deferred signals go after the commit, and are dropped with a rollback."""
    pending: list[tuple[Signal, dict[str, Any]]] = []
    token = _outbox.set(pending)
    try:
        with store.transaction(own=own):
            yield
    finally:
        _outbox.reset(token)
    for signal, kwargs in pending:
        _send(signal, **kwargs)


class Dispatcher:
    """Verifies deliveries and runs the registered handlers of each event exactly once."""

    def __init__(
        self,
        config: CheckoutConfig,
        store: Store,
        handlers: Mapping[str, Sequence[Handler]],
        builtins: Collection[Handler] = (),
    ) -> None:
        self.config = config
        self.store = store
        self.handlers = handlers  # the extension's live registry
        self.builtins = frozenset(builtins)

    def receive(self, body: bytes, signature: str | None) -> Outcome:
        """Handle one delivery; ``InvalidWebhook`` (400) before anything is recorded."""
        verify_signature(
            body, signature, self.config.webhook_secrets, self.config.webhook_tolerance
        )
        event = parse_event(body)
        _send(signals.webhook_received, event=event.payload)
        return self.process(event, body.decode("utf-8"))

    def process(self, event: Event, payload_text: str, *, replay: bool = False) -> Outcome:
        """Record ``event`` and run its handlers in one transaction."""
        if event.fqdn is not None and event.fqdn.lower() != self.config.fqdn:
            # Not stored: another instance's customers have no place in this database, and
            # there is nothing to deduplicate where nothing happens.
            foreign = f"another instance's event ({event.fqdn})"
            log.debug("Ignored event %s of another instance (%s)", event.id, event.fqdn)
            _send(signals.webhook_ignored, event=event.payload, reason=foreign)
            return Outcome("ignored", event.id, foreign)
        row = {
            "id": event.id,
            "type": event.type,
            "fqdn": event.fqdn,
            "api_version": event.api_version,
            "created": event.created,
            "livemode": event.livemode,
            "payload": payload_text,
        }
        reason = self._reason_to_ignore(event)
        if reason is not None:
            with self.store.transaction(own=True, single_statement=True):
                self.store.record_ignored(row, reason)
            _send(signals.webhook_ignored, event=event.payload, reason=reason)
            return Outcome("ignored", event.id, reason)

        chain = self.handlers[event.type]
        # A host handler writes through db.session: the event is then that transaction's.
        plugin_only = self.builtins.issuperset(chain)
        try:
            with unit_of_work(self.store, own=plugin_only):
                claim = self.store.claim_event(row, replay=replay)
                if claim == "duplicate":
                    return Outcome("duplicate", event.id)
                for handler in chain:
                    handler(event.payload)
        except Exception as exc:
            self._record_failure(row, event.payload, exc)
            raise HandlerFailed(event.id) from exc
        _send(signals.webhook_processed, event=event.payload)
        return Outcome("processed", event.id)

    def _reason_to_ignore(self, event: Event) -> str | None:
        if event.fqdn is None and not self.config.accept_untagged_events:
            return "untagged: the object carries no paxpar_fqdn metadata"
        if not self.handlers.get(event.type):
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
            with self.store.transaction(own=True, single_statement=True):
                self.store.record_failure(row, error)
        except Exception:  # the database itself may be what failed; Stripe will retry
            log.exception("Could not record the failure of event %s", row["id"])
        _send(signals.webhook_failed, event=payload, error=exc)


def _send(signal: Signal, **kwargs: Any) -> None:
    if signal.receivers and not rehearsing():
        signal.send(current_app._get_current_object(), **kwargs)  # type: ignore[attr-defined]
