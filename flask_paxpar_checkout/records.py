"""The record of every webhook event received: claimed once, ignored, or failed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from .clock import utcnow
from .database import Transaction
from .events import Event
from .models import Tables


def event_row(event: Event, payload_text: str) -> dict[str, Any]:
    """The columns every record of ``event`` has."""
    return {
        "id": event.id,
        "type": event.type,
        "fqdn": event.fqdn,
        "api_version": event.api_version,
        "created": event.created,
        "livemode": event.livemode,
        "payload": payload_text,
    }


class EventRecords:
    """Events by their Stripe id: the exactly-once claim, and what operators look up."""

    def __init__(self, tables: Tables) -> None:
        self.events = tables.events

    def claim(self, tx: Transaction, row: dict[str, Any], *, replay: bool = False) -> bool:
        """Record an event as processed, first statement of its transaction: ``True`` on its
        first delivery or after a failure, ``False`` if it was processed already (or is being
        processed by a concurrent delivery, whose commit this waits for). With ``replay``, a
        processed or ignored event is claimed again."""
        now = utcnow()
        statement = tx.sql.replay_event if replay else tx.sql.claim_event
        params = {**row, "status": "processed", "attempts": 1}
        return tx.first(statement, {**params, "received_at": now, "processed_at": now}) is not None

    def ignore(self, tx: Transaction, row: dict[str, Any], reason: str) -> None:
        params = {**row, "status": "ignored", "reason": reason[:255], "attempts": 1}
        tx.execute(tx.sql.record_ignored, {**params, "received_at": utcnow()})

    def fail(self, tx: Transaction, row: dict[str, Any], error: str) -> None:
        """Store a failed attempt (its effects were rolled back)."""
        params = {**row, "status": "failed", "attempts": 1, "last_error": error}
        tx.execute(tx.sql.record_failure, {**params, "received_at": utcnow()})

    def listing(
        self, tx: Transaction, *, status: str | None, event_type: str | None, limit: int
    ) -> Sequence[Any]:
        """Stored events, newest first, without their payloads."""
        e = self.events
        stmt = select(e.c.id, e.c.type, e.c.status, e.c.attempts, e.c.fqdn, e.c.received_at)
        if status:
            stmt = stmt.where(e.c.status == status)
        if event_type:
            stmt = stmt.where(e.c.type == event_type)
        return tx.execute(stmt.order_by(e.c.received_at.desc()).limit(limit)).all()  # type: ignore[no-any-return]

    def get(self, tx: Transaction, event_id: str) -> Any:
        e = self.events
        return tx.first(select(e).where(e.c.id == event_id))

    def failed_ids(self, tx: Transaction) -> list[str]:
        e = self.events
        stmt = select(e.c.id).where(e.c.status == "failed").order_by(e.c.created)
        return list(tx.execute(stmt).scalars())

    def prune(self, tx: Transaction, cutoff: datetime, *, include_failed: bool) -> int:
        """Delete events received before ``cutoff`` (failed ones only if asked)."""
        e = self.events
        stmt = delete(e).where(e.c.received_at < cutoff)
        if not include_failed:
            stmt = stmt.where(e.c.status != "failed")
        return int(tx.execute(stmt).rowcount)
