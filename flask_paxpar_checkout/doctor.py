"""``flask checkout doctor``: what is wrong with the Stripe key, the webhook endpoint, the
prices or the database, each finding with how to fix it, before money goes missing."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, inspect, select

from .doctor_stripe import LIVE_STATUSES, check_endpoints, check_prices, handled_types
from .errors import StripeServiceError
from .findings import Finding, Level
from .models import SYNC_STATE
from .state import CheckoutState, current_state
from .sync_lease import read_checkpoint, sync_state_table

__all__ = ["Finding", "Level", "handled_types", "run_doctor"]


def run_doctor(*, quiet_after: int = 3 * 86400) -> list[Finding]:
    """Every check of the current app, in order: database, key, webhook endpoint, prices."""
    state = current_state()
    findings = check_database(state, quiet_after=quiet_after, now=int(time.time()))
    key = check_key(state)
    findings += key.findings
    if key.endpoints is not None:
        findings += check_endpoints(state, key.endpoints)
        findings += check_prices(state, live=key.live)
    return findings


@dataclass
class _KeyCheck:
    findings: list[Finding]
    live: bool
    endpoints: list[dict[str, Any]] | None


def check_key(state: CheckoutState) -> _KeyCheck:
    """Whether the secret key is set and answers (listing the webhook endpoints), and its mode."""
    key = state.config.secret_key
    if key is None:
        fix = "Set STRIPE_SECRET_KEY to this account's secret key (sk_test_... to try it)."
        return _KeyCheck(
            [Finding("error", "secret key", "STRIPE_SECRET_KEY is not set", fix)], False, None
        )
    live = "_live_" in key
    mode = "live" if live else "test"
    try:
        listed = state.gateway.list_webhook_endpoints()
    except StripeServiceError as exc:
        fix = (
            "Check STRIPE_SECRET_KEY (and STRIPE_API_BASE); a restricted key needs read "
            "access to webhook endpoints and prices."
        )
        return _KeyCheck([Finding("error", "secret key", str(exc.description), fix)], live, None)
    found = Finding("ok", "secret key", f"the {mode} mode key answers")
    return _KeyCheck([found], live, list(listed.get("data") or []))


def check_database(state: CheckoutState, *, quiet_after: int, now: int) -> list[Finding]:
    """The tables exist; failed events; when the last event came, while subscriptions live."""
    engine = state.database.db.engine
    names = [getattr(state.tables, f.name).name for f in fields(state.tables)] + [SYNC_STATE]
    inspector = inspect(engine)
    missing = [n for n in names if not inspector.has_table(n)]
    if missing:
        return [
            Finding(
                "error",
                "database",
                f"missing table(s): {', '.join(missing)}",
                "Create them: db.create_all(), or the Alembic migration of this release.",
            )
        ]
    findings = [Finding("ok", "database", "the plugin's tables exist")]
    e, s = state.tables.events, state.tables.subscriptions
    session = state.database.session
    failed = session.execute(select(func.count()).where(e.c.status == "failed")).scalar_one()
    if failed:
        findings.append(
            Finding(
                "warning",
                "database",
                f"{failed} event(s) failed, waiting for Stripe's retry",
                "See `flask checkout events list --status failed`, fix the cause, then `flask "
                "checkout events retry-failed`.",
            )
        )
    last = session.execute(select(func.max(e.c.received_at))).scalar()
    live = session.execute(select(func.count()).where(s.c.status.in_(LIVE_STATUSES))).scalar_one()
    last_at = (
        None
        if last is None
        else int((last if last.tzinfo else last.replace(tzinfo=timezone.utc)).timestamp())
    )
    if live and (last_at is None or now - last_at > quiet_after):
        since = "yet" if last_at is None else f"since {_iso(last_at)}"
        findings.append(
            Finding(
                "warning",
                "database",
                f"no event received {since} while {live} subscription(s) are live",
                "Check the webhook endpoint (above), then run `flask checkout sync`.",
            )
        )
    elif last_at is not None:
        findings.append(Finding("ok", "database", f"last event received {_iso(last_at)}"))
    with engine.connect() as conn:
        checkpoint = read_checkpoint(conn, sync_state_table(state.database.db.metadata))
    if checkpoint is not None:
        findings.append(
            Finding("ok", "database", f"last completed sync started {_iso(checkpoint)}")
        )
    state.database.commit_session()
    return findings


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
