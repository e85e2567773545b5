"""``flask checkout ...``: operate the stored events."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import click
from flask.cli import AppGroup

from .cli_operate import register as register_operations
from .cli_outbox import outbox_cli, show_event_rows
from .clock import utcnow
from .errors import HandlerFailed
from .events import parse_event
from .local_stripe_cli import local_stripe_command
from .state import current_state
from .trigger import trigger

checkout_cli = AppGroup("checkout", help="Stripe Checkout: stored webhook events and test events.")
events_cli = AppGroup("events", help="Inspect, replay and prune the stored webhook events.")
checkout_cli.add_command(events_cli)


@events_cli.command("list")
@click.option("--status", type=click.Choice(["processed", "failed", "ignored"]))
@click.option("--type", "event_type", help="Only events of this type, e.g. invoice.paid.")
@click.option("--limit", default=50, show_default=True)
def list_events(status: str | None, event_type: str | None, limit: int) -> None:
    """List stored events, newest first."""
    state = current_state()
    with state.database.transaction() as tx:
        rows = state.records.listing(tx, status=status, event_type=event_type, limit=limit)
    for row in rows:
        click.echo(
            f"{row.id}  {row.type:<36} {row.status:<9} attempts={row.attempts} "
            f"fqdn={row.fqdn or '-'} received={row.received_at:%Y-%m-%d %H:%M:%S}"
        )


@events_cli.command("show")
@click.argument("event_id")
def show_event(event_id: str) -> None:
    """Show one stored event: its record, last error and payload."""
    row = _event_row(event_id)
    for key in (
        "id",
        "type",
        "status",
        "reason",
        "attempts",
        "fqdn",
        "api_version",
        "created",
        "received_at",
        "processed_at",
    ):
        click.echo(f"{key}: {getattr(row, key)}")
    if row.last_error:
        click.echo("last_error:\n" + row.last_error)
    show_event_rows(event_id)
    click.echo("payload:\n" + json.dumps(json.loads(row.payload), indent=2))


@events_cli.command("replay")
@click.argument("event_id")
def replay_event(event_id: str) -> None:
    """Process a stored event again. The built-in effects are idempotent (credits are
    granted once per session or invoice); the host's own handlers run again."""
    _process(_event_row(event_id), replay=True)


@events_cli.command("retry-failed")
def retry_failed() -> None:
    """Process every failed event again, oldest first."""
    state = current_state()
    with state.database.transaction() as tx:
        ids = state.records.failed_ids(tx)
    failures = 0
    for event_id in ids:
        failures += not _process(_event_row(event_id), replay=False)
    click.echo(f"{len(ids) - failures} processed, {failures} still failing")
    if failures:
        raise SystemExit(1)


@events_cli.command("prune")
@click.option("--older-than", default="90d", show_default=True, help="An age: 90d, 12h, 30m.")
@click.option("--include-failed", is_flag=True, help="Also delete failed events.")
def prune_events(older_than: str, include_failed: bool) -> None:
    """Delete stored events older than an age (failed ones are kept unless asked)."""
    match = re.fullmatch(r"(\d+)([dhm])", older_than.strip())
    if not match:
        raise click.BadParameter("use a number and d, h or m, e.g. 90d", param_hint="--older-than")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
    cutoff = utcnow() - timedelta(**{unit: int(match.group(1))})
    state = current_state()
    with state.database.transaction() as tx:
        deleted = state.records.prune(tx, cutoff, include_failed=include_failed)
        unmatched = state.refunds.prune_unmatched(tx, cutoff)
    click.echo(
        f"deleted {deleted} event(s) and {unmatched} unmatched refund(s) received before "
        f"{cutoff:%Y-%m-%d %H:%M:%S} UTC"
    )


def _event_row(event_id: str) -> Any:
    state = current_state()
    with state.database.transaction() as tx:
        row = state.records.get(tx, event_id)
    if row is None:
        raise click.ClickException(f"no stored event {event_id}")
    return row


def _process(row: Any, *, replay: bool) -> bool:
    state = current_state()
    event = parse_event(row.payload.encode("utf-8"))
    try:
        outcome = state.pipeline.process(event, row.payload, replay=replay)
    except HandlerFailed as exc:
        click.echo(f"{row.id}: failed again: {exc.__cause__!r}", err=True)
        return False
    click.echo(f"{row.id}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else ""))
    return True


checkout_cli.add_command(trigger)
checkout_cli.add_command(local_stripe_command)
checkout_cli.add_command(outbox_cli)
register_operations(checkout_cli)
