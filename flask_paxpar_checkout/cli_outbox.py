"""``flask checkout outbox ...``: the runs of deferred handlers, for operators and cron."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from . import deferred, outbox
from .outbox import OutboxKey, OutboxRow

outbox_cli = AppGroup("outbox", help="Deferred handlers: list their runs, run or retry them.")


@outbox_cli.command("list")
@click.option("--status", type=click.Choice(outbox.STATUSES))
@click.option("--event", "event_id", help="Only the rows of this event.")
@click.option("--limit", default=50, show_default=True)
def list_rows(status: str | None, event_id: str | None, limit: int) -> None:
    """List outbox rows, newest first."""
    rt = deferred.runtime()
    with rt.db.engine.connect() as connection:
        found = outbox.list_rows(
            connection, rt.table, status=status, event_id=event_id, limit=limit
        )
    for row in found:
        click.echo(describe(row))


@outbox_cli.command("run")
@click.option("--limit", default=100, show_default=True, help="Rows at most in one run.")
def run_rows(limit: int) -> None:
    """Work off what is due: with Celery, send again the rows pending longer than
    PAXPAR_CHECKOUT_OUTBOX_RESEND_AFTER; without it, run the due rows here. For cron."""
    if deferred.uses_celery():
        found, sent = deferred.resend(limit)
        click.echo(f"{found} row(s) to send again, {sent} sent to the queue")
        if sent < found:
            raise SystemExit(1)
        return
    ran, unfinished = deferred.run_due(limit)
    click.echo(f"{ran} row(s) run, {ran - unfinished} done, {unfinished} not done")
    if unfinished:
        raise SystemExit(1)


@outbox_cli.command("retry")
@click.argument("event_id", required=False)
@click.argument("handler", required=False)
def retry_rows(event_id: str | None, handler: str | None) -> None:
    """Run failed rows again with fresh attempts: every failed row, an event's, or one
    (EVENT_ID HANDLER)."""
    keys = None
    if event_id is not None:
        rt = deferred.runtime()
        with rt.db.engine.connect() as connection:
            rows = outbox.list_rows(connection, rt.table, event_id=event_id, limit=1000)
        keys = [r.key for r in rows if handler is None or r.handler == handler]
        if not keys:
            raise click.ClickException(
                f"no outbox row of event {event_id}"
                + (f" and handler {handler}" if handler else "")
            )
    again = deferred.retry(keys)
    click.echo(f"{len(again)} failed row(s) retried")
    for key in again:
        click.echo(f"  {key.event_id}  {key.handler}")


def describe(row: OutboxRow) -> str:
    """One line per row: key, status, attempts, times."""
    when = row.done_at or row.next_attempt_at
    return (
        f"{row.event_id}  {row.handler}  {row.status:<8} attempts={row.attempts} "
        f"{'done' if row.done_at else 'due'}={when:%Y-%m-%d %H:%M:%S}"
    )


def show_event_rows(event_id: str) -> None:
    """The outbox rows of one event with their last error: for ``events show``."""
    rt = deferred.runtime()
    with rt.db.engine.connect() as connection:
        rows = outbox.list_rows(connection, rt.table, event_id=event_id, limit=1000)
    if not rows:
        return
    click.echo("deferred handlers:")
    for row in rows:
        click.echo("  " + describe(row))
        if row.last_error:
            click.echo("  last_error:\n" + row.last_error)


__all__ = ["OutboxKey", "outbox_cli", "show_event_rows"]
