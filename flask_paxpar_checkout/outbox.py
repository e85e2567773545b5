"""The outbox of deferred handlers: its rows, written, claimed, marked and listed.

Every function works on a SQLAlchemy ``Connection`` the caller gives, inside the caller's
transaction, with Core statements only: the rows of one event are written in the event's
own transaction, and a worker claims and marks a row in short transactions of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Table, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from .clock import as_utc, utcnow

Status = Literal["pending", "running", "done", "failed"]
STATUSES: tuple[Status, ...] = ("pending", "running", "done", "failed")
MAX_DELAY = 10.0  # seconds between two attempts, at most


@dataclass(frozen=True)
class OutboxKey:
    """One row's key: the idempotency key a deferred handler is told to use."""

    event_id: str
    handler: str


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row as plain data."""

    event_id: str
    handler: str
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime
    claimed_at: datetime | None
    sent_at: datetime | None
    last_error: str | None
    created_at: datetime
    done_at: datetime | None

    @property
    def key(self) -> OutboxKey:
        return OutboxKey(self.event_id, self.handler)


@dataclass(frozen=True)
class Claim:
    """What claiming a row gave: its payload to run, or why not and when to look again."""

    payload: str | None = None
    attempts: int = 0
    wait: float | None = None  # seconds until the row may be claimed; None: nothing to do

    @property
    def claimed(self) -> bool:
        return self.payload is not None


def retry_delay(attempts: int, backoff: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: ``backoff``,
    doubling, at most ``MAX_DELAY``."""
    return float(min(backoff * 2.0 ** max(attempts - 1, 0), MAX_DELAY))


def write_event_rows(
    connection: Connection,
    table: Table,
    event: Mapping[str, Any],
    handler_names: Iterable[str],
    *,
    now: datetime | None = None,
) -> list[OutboxKey]:
    """Write one pending row per deferred handler of ``event`` (its ``id``, ``type`` and
    ``payload`` text); rows already there are left alone. Returns the rows written."""
    now = now or utcnow()
    insert_or_skip = _insert_or_skip(connection, table)
    written = []
    for name in handler_names:
        values = {
            "event_id": event["id"],
            "handler": name,
            "event_type": event["type"],
            "payload": event["payload"],
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "sent_at": now,  # set back to NULL if the hand-off fails
            "created_at": now,
        }
        if connection.execute(insert_or_skip, values).first() is not None:
            written.append(OutboxKey(event["id"], name))
    return written


def claim(
    connection: Connection,
    table: Table,
    key: OutboxKey,
    *,
    lease: float,
    now: datetime | None = None,
) -> Claim:
    """Mark the row running if it is due (pending and past its next attempt, or running
    longer than ``lease`` seconds: its worker died). Only one caller can claim it."""
    now = now or utcnow()
    o = table.c
    claimed = connection.execute(
        update(table)
        .where(_is(table, key), _claimable(table, now, lease))
        .values(status="running", attempts=o.attempts + 1, claimed_at=now)
        .returning(o.payload, o.attempts)
    ).first()
    if claimed is not None:
        return Claim(payload=claimed.payload, attempts=claimed.attempts)
    row = connection.execute(
        select(o.status, o.next_attempt_at, o.claimed_at).where(_is(table, key))
    ).first()
    if row is None or row.status in ("done", "failed"):
        return Claim()
    if row.status == "pending":
        return Claim(wait=max(_seconds_between(now, row.next_attempt_at), 0.0))
    until = as_utc(row.claimed_at) + timedelta(seconds=lease)
    return Claim(wait=max(_seconds_between(now, until), 0.0))


def mark_done(connection: Connection, table: Table, key: OutboxKey) -> None:
    """The handler returned: the row is done."""
    connection.execute(
        update(table)
        .where(_is(table, key), table.c.status == "running")
        .values(status="done", done_at=utcnow(), claimed_at=None)
    )


def mark_failed(
    connection: Connection,
    table: Table,
    key: OutboxKey,
    error: str,
    *,
    backoff: float,
    max_attempts: int,
) -> float | None:
    """The handler raised: pending again after the backoff, or ``failed`` once it has had
    ``max_attempts``. Returns the delay before the next attempt, or None if it failed."""
    o = table.c
    attempts = connection.execute(select(o.attempts).where(_is(table, key))).scalar()
    if attempts is None:
        return None
    now = utcnow()
    if attempts >= max_attempts:
        connection.execute(
            update(table)
            .where(_is(table, key))
            .values(status="failed", last_error=error, claimed_at=None)
        )
        return None
    delay = retry_delay(attempts, backoff)
    connection.execute(
        update(table)
        .where(_is(table, key))
        .values(
            status="pending",
            last_error=error,
            claimed_at=None,
            next_attempt_at=now + timedelta(seconds=delay),
            sent_at=now,
        )
    )
    return delay


def mark_sent(
    connection: Connection, table: Table, keys: Iterable[OutboxKey], *, sent: bool
) -> None:
    """Record that ``keys`` were handed to the queue now, or that the hand-off failed."""
    at = utcnow() if sent else None
    for key in keys:
        connection.execute(update(table).where(_is(table, key)).values(sent_at=at))


def due(connection: Connection, table: Table, *, lease: float, limit: int = 100) -> list[OutboxKey]:
    """Rows to run now, oldest first: pending and due, or abandoned by a dead worker."""
    o = table.c
    rows = connection.execute(
        select(o.event_id, o.handler)
        .where(_claimable(table, utcnow(), lease))
        .order_by(o.created_at)
        .limit(limit)
    )
    return [OutboxKey(r.event_id, r.handler) for r in rows]


def unsent(
    connection: Connection, table: Table, *, resend_after: float, limit: int = 100
) -> list[OutboxKey]:
    """Rows the queue may have lost: pending and not handed to it for ``resend_after``
    seconds (or never), or running that long."""
    o = table.c
    before = utcnow() - timedelta(seconds=resend_after)
    lost = or_(
        and_(o.status == "pending", or_(o.sent_at.is_(None), o.sent_at <= before)),
        and_(o.status == "running", o.claimed_at <= before),
    )
    rows = connection.execute(
        select(o.event_id, o.handler).where(lost).order_by(o.created_at).limit(limit)
    )
    return [OutboxKey(r.event_id, r.handler) for r in rows]


def retry(
    connection: Connection, table: Table, keys: Sequence[OutboxKey] | None = None
) -> list[OutboxKey]:
    """Make failed rows (``keys``, or every failed one) pending again with their attempts
    reset; their last error stays until the next attempt. Returns the rows made pending."""
    o = table.c
    condition: Any = o.status == "failed"
    if keys is not None:
        if not keys:
            return []
        condition = and_(condition, or_(*(_is(table, k) for k in keys)))
    rows = connection.execute(
        update(table)
        .where(condition)
        .values(status="pending", attempts=0, next_attempt_at=utcnow(), sent_at=utcnow())
        .returning(o.event_id, o.handler)
    )
    return [OutboxKey(r.event_id, r.handler) for r in rows]


def list_rows(
    connection: Connection,
    table: Table,
    *,
    status: str | None = None,
    event_id: str | None = None,
    limit: int = 50,
) -> list[OutboxRow]:
    """Rows newest first, of one status or one event if asked."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"an outbox status is one of {', '.join(STATUSES)}, not {status!r}")
    o = table.c
    stmt = select(*(c for c in table.c if c.name != "payload"))
    if status is not None:
        stmt = stmt.where(o.status == status)
    if event_id is not None:
        stmt = stmt.where(o.event_id == event_id)
    rows = connection.execute(stmt.order_by(o.created_at.desc(), o.handler).limit(limit))
    return [OutboxRow(**r._mapping) for r in rows]


def payload_of(connection: Connection, table: Table, key: OutboxKey) -> str | None:
    """The event payload stored with a row."""
    return connection.execute(select(table.c.payload).where(_is(table, key))).scalar()


def counts(connection: Connection, table: Table) -> dict[str, int]:
    """How many rows there are of each status."""
    o = table.c
    found: dict[str, int] = dict.fromkeys(STATUSES, 0)
    for status, n in connection.execute(select(o.status, func.count()).group_by(o.status)):
        found[status] = int(n)
    return found


def _is(table: Table, key: OutboxKey) -> Any:
    return and_(table.c.event_id == key.event_id, table.c.handler == key.handler)


def _claimable(table: Table, now: datetime, lease: float) -> Any:
    o = table.c
    abandoned = now - timedelta(seconds=lease)
    return or_(
        and_(o.status == "pending", o.next_attempt_at <= now),
        and_(o.status == "running", o.claimed_at <= abandoned),
    )


def _insert_or_skip(connection: Connection, table: Table) -> Any:
    name = connection.dialect.name
    dml: Any = {"postgresql": postgresql, "sqlite": sqlite}.get(name)
    if dml is None:
        raise NotImplementedError(f"the outbox supports SQLite and PostgreSQL, not {name}")
    return (
        dml.insert(table)
        .on_conflict_do_nothing(index_elements=["event_id", "handler"])
        .returning(table.c.event_id)
    )


def _seconds_between(start: datetime, end: datetime) -> float:
    return (as_utc(end) - as_utc(start)).total_seconds()


__all__ = [
    "Claim",
    "OutboxKey",
    "OutboxRow",
    "claim",
    "counts",
    "due",
    "list_rows",
    "mark_done",
    "mark_failed",
    "mark_sent",
    "retry",
    "retry_delay",
    "unsent",
    "write_event_rows",
]
