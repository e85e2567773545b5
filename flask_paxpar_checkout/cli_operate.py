"""``flask checkout sync`` and ``flask checkout doctor``: back to Stripe's truth, and a check
of the setup before money goes missing."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import click
from flask.cli import AppGroup

from .doctor import Finding, run_doctor
from .errors import InvalidSyncWindow, SyncBusy
from .sync import SyncObserver, SyncReport, run_sync
from .sync_window import parse_age

EXIT_BUSY = 75  # EX_TEMPFAIL: another sync is running, try again later


def register(group: AppGroup) -> None:
    """Add ``sync`` and ``doctor`` to the ``flask checkout`` group."""
    group.add_command(sync_command)
    group.add_command(doctor_command)


class _ProgressObserver(SyncObserver):
    """Click's progress bar on a terminal (hidden otherwise) and one line per problem."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def event(self, event_id: str, outcome: str) -> None:
        if self.bar is not None:
            self.bar.update(1, f"{event_id} {outcome}")

    def problem(self, message: str) -> None:
        click.echo(message, err=True)


def _unknown_length() -> Iterator[str]:
    yield from ()  # the Events API says how many there are only at the end


@click.command("sync")
@click.option("--since", help="How far back: an age (3d, 12h, 30m) or an ISO date.")
@click.option("--dry-run", is_flag=True, help="Say what would change, change nothing.")
@click.option("--events-only", is_flag=True, help="Fetch events; no subscription resync.")
@click.option("--subscriptions-only", is_flag=True, help="Resync subscriptions; no events.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def sync_command(
    since: str | None, dry_run: bool, events_only: bool, subscriptions_only: bool, as_json: bool
) -> None:
    """Apply the events Stripe kept that this database missed (exactly once), and resync
    subscriptions when the gap is older than Stripe's 30 days of events."""
    if events_only and subscriptions_only:
        raise click.UsageError("use one of --events-only and --subscriptions-only")
    subscriptions = True if subscriptions_only else (False if events_only else None)
    # On a terminal only: from cron, stderr carries problems alone (cron mails what it gets).
    bar: Any = (
        click.progressbar(_unknown_length(), label="Syncing events", file=sys.stderr, show_pos=True)
        if sys.stderr.isatty()
        else nullcontext(None)
    )
    try:
        with bar as progress:
            report = run_sync(
                since=since,
                dry_run=dry_run,
                events=not subscriptions_only,
                subscriptions=subscriptions,
                observer=_ProgressObserver(progress),
            )
    except InvalidSyncWindow as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    except SyncBusy as exc:
        click.echo(f"another sync is running: {exc}", err=True)
        raise SystemExit(EXIT_BUSY) from None
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    if not report.ok:
        raise SystemExit(1)


def _print_report(report: SyncReport) -> None:
    data = report.to_dict()
    if report.dry_run:
        click.echo("Dry run: nothing was changed.")
    if report.events:
        click.echo(f"Events created from {data['since']} to {data['until']}")
        click.echo(
            f"fetched {report.fetched}, processed {report.processed}, duplicate "
            f"{report.duplicate}, ignored {report.ignored}, failed {report.failed}"
        )
    if report.subscriptions:
        click.echo(f"subscriptions resynced: {report.subscriptions_checked}")
    verb = "would process" if report.dry_run else "processed"
    for event_id in report.processed_events:
        click.echo(f"  {verb} {event_id}")
    for change in report.changes:
        click.echo(
            f"  user {change.user_id}: credits {_shown(change.credits_before)} -> "
            f"{_shown(change.credits_after)}, subscription {_shown(change.status_before)} -> "
            f"{_shown(change.status_after)}"
        )
    if report.checkpoint_moved:
        click.echo(f"checkpoint: {data['until']} (the next sync starts an hour before it)")
    elif not report.dry_run and not report.ok:
        click.echo("not complete: the checkpoint stays; run it again to resume", err=True)


def _shown(value: object) -> str:
    return "none" if value is None else str(value)


@click.command("doctor")
@click.option(
    "--quiet-after",
    default="3d",
    show_default=True,
    help="Warn when no event arrived for this long while subscriptions are active.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def doctor_command(quiet_after: str, as_json: bool) -> None:
    """Check the Stripe key, the webhook endpoint, the prices and the database; exit 1
    when a problem is found, each with how to fix it."""
    try:
        quiet = parse_age(quiet_after)
    except InvalidSyncWindow as exc:
        raise click.BadParameter(str(exc), param_hint="--quiet-after") from None
    findings = run_doctor(quiet_after=quiet)
    problems = [f for f in findings if f.level == "error"]
    if as_json:
        click.echo(
            json.dumps({"ok": not problems, "findings": [f.to_dict() for f in findings]}, indent=2)
        )
    else:
        for finding in findings:
            click.echo(_line(finding))
        click.echo("all is well" if not problems else f"{len(problems)} problem(s) found")
    if problems:
        raise SystemExit(1)


def _line(finding: Finding) -> str:
    mark = {"ok": "ok", "warning": "WARNING", "error": "PROBLEM"}[finding.level]
    text = f"[{mark}] {finding.check}: {finding.message}"
    return text + (f"\n    fix: {finding.fix}" if finding.fix else "")
