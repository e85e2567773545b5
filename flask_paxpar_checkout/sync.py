"""``flask checkout sync``: fetch the events Stripe kept and apply those this database missed.

Each fetched event goes through the webhook's own pipeline (exactly once by event id, routed
to this instance, the same handlers and transaction), so a sync and live deliveries may
overlap in any order. Subscriptions whose news may be older than Stripe's 30 days of events
are fetched and applied as snapshots. A dry run does all of it inside one transaction that
is rolled back, and reports what would have changed.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select

from .errors import CheckoutError, HandlerFailed, StripeServiceError, StripeUnavailable, SyncBusy
from .events import USER_KEY, parse_event
from .rehearsal import rehearsal
from .state import CheckoutState, current_state
from .subscriptions import TERMINAL
from .sync_lease import Lease, read_checkpoint, sync_state_table
from .sync_window import RETENTION, Window, choose_window

log = logging.getLogger("flask_paxpar_checkout")

PAGE_SIZE = 100
BACKOFF = (5.0, 20.0, 60.0)  # seconds to wait when Stripe rate-limits, after its retries


@dataclass(frozen=True)
class UserChange:
    """What a sync changed (or, in a dry run, would change) for one user."""

    user_id: str
    credits_before: int | None
    credits_after: int | None
    status_before: str | None
    status_after: str | None


@dataclass
class SyncReport:
    """The outcome of one sync: counts, the time span covered, problems and per-user changes.

    ``since`` and ``until`` are Unix times of the window of events fetched; ``complete`` is
    true when every page was fetched and every event and subscription was applied.
    """

    since: int
    until: int
    dry_run: bool
    events: bool
    subscriptions: bool
    fetched: int = 0
    processed: int = 0
    duplicate: int = 0
    ignored: int = 0
    failed: int = 0
    subscriptions_checked: int = 0
    complete: bool = True
    checkpoint_moved: bool = False
    processed_events: list[str] = field(default_factory=list)
    failed_events: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    changes: list[UserChange] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing failed: the exit code of ``flask checkout sync`` is 0 then."""
        return self.complete and self.failed == 0

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data, times as ISO 8601 in UTC."""
        data = asdict(self)
        data["since"] = _iso(self.since)
        data["until"] = _iso(self.until)
        data["ok"] = self.ok
        return data


class SyncObserver:
    """Told of each event's outcome and of each problem as they happen (the CLI's progress
    bar and its one line per problem); by default, problems are logged."""

    def event(self, event_id: str, outcome: str) -> None:
        """One fetched event went through the pipeline: processed, duplicate, ignored, failed."""

    def problem(self, message: str) -> None:
        """Something the operator should read: logged as a warning by default."""
        log.warning("checkout sync: %s", message)


def run_sync(
    *,
    since: str | int | datetime | None = None,
    dry_run: bool = False,
    events: bool = True,
    subscriptions: bool | None = None,
    observer: SyncObserver | None = None,
) -> SyncReport:
    """Sync the current app with Stripe; see ``PaxparCheckout.sync``.

    ``subscriptions=None`` resyncs subscriptions only when the window had to be cut at
    Stripe's 30 days of retention (a first sync, or a gap longer than that).
    """
    state = current_state()
    observer = observer or SyncObserver()
    engine = state.database.db.engine
    table = sync_state_table(state.database.db.metadata)
    now = int(time.time())
    with engine.begin() as conn:
        checkpoint = read_checkpoint(conn, table)
    window = choose_window(now, since, checkpoint)
    resync = window.truncated if subscriptions is None else subscriptions
    report = SyncReport(window.start, now, dry_run, events, resync)
    if dry_run:
        return _rehearse(state, report, window, observer)
    lease = Lease(engine, table, owner=uuid.uuid4().hex)
    if not lease.acquire(now):
        raise SyncBusy(
            "Another sync is running on this database; it will have applied the same "
            "events. Try again when it has finished."
        )
    moved = False
    try:
        before = _snapshot(state)
        _run(state, report, window, observer, lease)
        report.changes = _changes(before, _snapshot(state))
        moved = events and report.ok and window.covers_checkpoint
    finally:
        state.database.commit_session()
        lease.release(checkpoint=now if moved else None)
    report.checkpoint_moved = moved
    return report


def _run(
    state: CheckoutState,
    report: SyncReport,
    window: Window,
    observer: SyncObserver,
    lease: Lease | None,
) -> None:
    if report.events:
        _sync_events(state, report, window, observer, lease)
    if report.subscriptions and report.complete:
        # After the events, only subscriptions with no news since before the window need it.
        news_before = window.start if report.events else None
        _resync_subscriptions(state, report, observer, lease, news_before)


def _rehearse(
    state: CheckoutState, report: SyncReport, window: Window, observer: SyncObserver
) -> SyncReport:
    """The sync in one transaction of its own session, rolled back: nothing lands, and no
    lease is taken (a rehearsal may run beside a real sync: the pipeline dedups)."""
    scoped = state.database.db.session
    hosts = scoped.registry() if scoped.registry.has() else None
    session = scoped.session_factory()
    scoped.registry.set(session)
    try:
        connection = session.connection()
        dbapi_connection = connection.connection.dbapi_connection
        if connection.dialect.name == "sqlite" and not dbapi_connection.in_transaction:  # type: ignore[union-attr]
            # pysqlite starts no transaction for a SAVEPOINT: releasing the outermost one
            # would commit it. An explicit BEGIN makes every savepoint nested.
            connection.exec_driver_sql("BEGIN")
        with rehearsal():
            before = _snapshot(state)
            _run(state, report, window, observer, None)
            report.changes = _changes(before, _snapshot(state))
    finally:
        session.rollback()
        session.close()
        if hosts is not None:
            scoped.registry.set(hosts)
        else:
            scoped.registry.clear()
    return report


def _sync_events(
    state: CheckoutState,
    report: SyncReport,
    window: Window,
    observer: SyncObserver,
    lease: Lease | None,
) -> None:
    types = state.pipeline.handled_types()
    cursor: str | None = None
    while True:
        if not report.dry_run:
            state.database.commit_session()  # no transaction held across a call to Stripe
        page = _fetch_page(state, report, observer, types, window.start, cursor)
        if page is None:
            return
        data: list[dict[str, Any]] = page.get("data") or []
        report.fetched += len(data)
        for event in reversed(data):  # a page comes newest first
            _apply_event(event, report, observer)
        if lease is not None and not lease.renew(int(time.time())):
            _problem(report, observer, "The sync's lease was lost to another sync; stopped.")
            report.complete = False
            return
        if not page.get("has_more") or not data:
            return
        cursor = data[-1]["id"]


def _fetch_page(
    state: CheckoutState,
    report: SyncReport,
    observer: SyncObserver,
    types: list[str],
    created_gte: int,
    cursor: str | None,
) -> dict[str, Any] | None:
    """One page of events, backing off when Stripe rate-limits or cannot be reached; None
    (the sync incomplete, its checkpoint left) when Stripe keeps failing."""
    for delay in (*BACKOFF, None):
        try:
            return state.gateway.list_events(
                types=types, created_gte=created_gte, limit=PAGE_SIZE, starting_after=cursor
            )
        except StripeUnavailable as exc:
            if delay is None:
                error: StripeServiceError = exc
                break
            _problem(report, observer, f"{exc.description} Waiting {delay:g}s, then again.")
            time.sleep(delay)
        except StripeServiceError as exc:
            error = exc
            break
    where = f"after {cursor}" if cursor else "the first page"
    _problem(
        report, observer, f"Could not list events ({where}): {error.description} Run it again."
    )
    report.complete = False
    return None


def _apply_event(event: dict[str, Any], report: SyncReport, observer: SyncObserver) -> None:
    event_id = str(event.get("id"))
    try:
        outcome = process_fetched_event(event)
    except HandlerFailed as exc:
        outcome = "failed"
        report.failed_events.append(event_id)
        _problem(report, observer, f"{event_id} ({event.get('type')}) failed: {exc.__cause__!r}")
    except CheckoutError as exc:
        outcome = "failed"
        report.failed_events.append(event_id)
        _problem(report, observer, f"{event_id} is not a readable event: {exc}")
    setattr(report, outcome, getattr(report, outcome) + 1)
    if outcome == "processed":
        report.processed_events.append(event_id)
    observer.event(event_id, outcome)


def process_fetched_event(event: dict[str, Any]) -> str:
    """Send an event fetched over the authenticated API (no signature to check) through the
    webhook's pipeline; ``processed``, ``duplicate`` or ``ignored``, or ``HandlerFailed``."""
    body = json.dumps(event)
    outcome = current_state().pipeline.process(parse_event(body.encode("utf-8")), body)
    return outcome.status


def _resync_subscriptions(
    state: CheckoutState,
    report: SyncReport,
    observer: SyncObserver,
    lease: Lease | None,
    news_before: int | None,
) -> None:
    s = state.tables.subscriptions
    stmt = select(s.c.id, s.c.user_id).where(s.c.status.not_in(sorted(TERMINAL)))
    if news_before is not None:
        stmt = stmt.where(s.c.status_at < news_before)
    known = list(state.database.session.execute(stmt.order_by(s.c.id)))
    for row in known:
        if not report.dry_run:
            state.database.commit_session()
        try:
            subscription = state.gateway.retrieve_subscription(row.id)
        except StripeServiceError as exc:
            report.complete = False
            _problem(report, observer, f"Could not fetch subscription {row.id}: {exc.description}")
            continue
        metadata = dict(subscription.get("metadata") or {})
        if not metadata.get(USER_KEY):  # ours, by the stored row: say whose it is
            subscription = {**subscription, "metadata": {**metadata, USER_KEY: row.user_id}}
        apply_subscription_snapshot(subscription, int(time.time()))
        report.subscriptions_checked += 1
        if lease is not None and not lease.renew(int(time.time())):
            _problem(report, observer, "The sync's lease was lost to another sync; stopped.")
            report.complete = False
            return


def apply_subscription_snapshot(subscription: dict[str, Any], at: int) -> None:
    """Apply a subscription fetched from Stripe as its state at ``at``: newest wins, and an
    ended subscription stays ended, exactly as for an event."""
    event = {
        "id": f"evt_snapshot_{subscription['id']}_{at}",
        "object": "event",
        "type": "customer.subscription.updated",
        "created": at,
        "livemode": bool(subscription.get("livemode")),
        "data": {"object": subscription},
    }
    state = current_state()
    body = json.dumps(event, default=str).encode("utf-8")  # stripe's Decimal amounts
    with state.database.transaction() as tx:
        state.pipeline.builtins["customer.subscription.updated"](tx, parse_event(body))


def _snapshot(state: CheckoutState) -> dict[str, tuple[int | None, str | None]]:
    """Every user's credits and current subscription status, to compare before and after."""
    b, s = state.tables.balances, state.tables.subscriptions
    session = state.database.session
    credits = {r.user_id: r.credits for r in session.execute(select(b.c.user_id, b.c.credits))}
    statuses: dict[str, tuple[bool, int, str]] = {}
    for r in session.execute(select(s.c.user_id, s.c.status, s.c.status_at)):
        rank = (r.status not in TERMINAL and r.status_at > 0, r.status_at, r.status)
        if r.user_id not in statuses or rank > statuses[r.user_id]:
            statuses[r.user_id] = rank  # a live one first, else the latest, as `subscription`
    users = credits.keys() | statuses.keys()
    return {u: (credits.get(u), statuses[u][2] if u in statuses else None) for u in sorted(users)}


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[UserChange]:
    changed = []
    for user in sorted(before.keys() | after.keys()):
        old, new = before.get(user, (None, None)), after.get(user, (None, None))
        if old != new:
            changed.append(UserChange(user, old[0], new[0], old[1], new[1]))
    return changed


def _problem(report: SyncReport, observer: SyncObserver, message: str) -> None:
    report.problems.append(message)
    observer.problem(message)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


__all__ = [
    "RETENTION",
    "SyncObserver",
    "SyncReport",
    "UserChange",
    "apply_subscription_snapshot",
    "process_fetched_event",
    "run_sync",
]
