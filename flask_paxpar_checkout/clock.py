"""The plugin's times: now in UTC, Stripe's timestamps, and times read back from SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def stripe_time(epoch_seconds: int) -> datetime:
    """A Stripe timestamp (seconds since the epoch) as an aware datetime."""
    return EPOCH + timedelta(seconds=epoch_seconds)


def as_utc(value: datetime) -> datetime:
    """SQLite gives datetimes back without their zone: every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
