"""The window of events a sync fetches: from its checkpoint, or from ``--since``, never
further back than Stripe keeps events."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timezone

from .errors import InvalidSyncWindow

RETENTION = 30 * 86400  # Stripe lists the events of the last 30 days
MARGIN = 3600  # events created just before a sync may be listed a little after it
_AGE = re.compile(r"(\d+)([dhm])")
_UNIT = {"d": 86400, "h": 3600, "m": 60}


@dataclass(frozen=True)
class Window:
    """From when events are fetched (``created[gte]``), and what that window means."""

    start: int
    truncated: bool  # cut at the retention: news older than it needs a subscription resync
    covers_checkpoint: bool  # starts no later than the checkpoint's window: it may move it


def choose_window(now: int, since: str | int | datetime | None, checkpoint: int | None) -> Window:
    """The default window starts an hour before the last completed sync began (the whole
    retention for a first sync); ``since`` overrides it."""
    oldest = now - RETENTION
    default = oldest if checkpoint is None else max(oldest, checkpoint - MARGIN)
    wanted = default if since is None else parse_since(since, now)
    if wanted > now:
        raise InvalidSyncWindow(f"--since {since} is in the future")
    start = max(oldest, wanted)
    truncated = wanted < oldest or checkpoint is None or checkpoint - MARGIN < oldest
    return Window(start=start, truncated=truncated, covers_checkpoint=start <= default)


def parse_since(since: str | int | datetime, now: int) -> int:
    """A Unix time from an age (``3d``, ``12h``, ``30m``), an ISO date or date-time (UTC
    unless it says otherwise), a ``datetime`` or a Unix time."""
    if isinstance(since, datetime):
        aware = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        return int(aware.timestamp())
    if isinstance(since, int) and not isinstance(since, bool):
        return since
    if not isinstance(since, str):
        raise InvalidSyncWindow(f"since must be an age, a date or a time, not {since!r}")
    text = since.strip()
    if _AGE.fullmatch(text):
        return now - parse_age(text)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())
        return parse_since(datetime.fromisoformat(text), now)
    except ValueError:
        raise InvalidSyncWindow(
            f"--since {since!r} is neither an age (3d, 12h, 30m) nor an ISO date "
            "(2026-11-30 or 2026-11-30T08:00:00+00:00)"
        ) from None


def parse_age(text: str) -> int:
    """Seconds in an age: ``3d``, ``12h``, ``30m``."""
    age = _AGE.fullmatch(text.strip())
    if age is None:
        raise InvalidSyncWindow(f"{text!r} is not an age: use a number and d, h or m (3d)")
    return int(age.group(1)) * _UNIT[age.group(2)]
