"""``flask checkout sync`` and ``doctor`` as real processes: a progress bar on a terminal,
a quiet stderr and JSON on stdout from cron."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flask_paxpar_checkout.testing import EventBuilder, StripeStub

ROOT = Path(__file__).resolve().parent.parent
WAIT = 60  # seconds: a bound on each process


@pytest.fixture
def environment(stripe: StripeStub, tmp_path: Path) -> dict[str, str]:
    """The example host app, pointed at the local Stripe and a database of this test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAXPAR_", "STRIPE_"))}
    db_url = os.environ.get("PAXPAR_TEST_DATABASE_URL") or f"sqlite:///{tmp_path}/cli.db"
    env.update(
        FLASK_APP="examples.host_app",
        STRIPE_SECRET_KEY="sk_test_cli",
        STRIPE_API_BASE=stripe.url,
        DATABASE_URL=db_url,
        PAXPAR_FQDN="localhost",
        PAXPAR_CHECKOUT_STRIPE_MAX_NETWORK_RETRIES="0",
    )
    return env


@pytest.fixture(autouse=True)
def clean_tables(environment: dict[str, str]) -> Any:
    yield
    script = (
        "from examples.host_app import create_app\nfrom examples.host_app.extensions import db\n"
        "app = create_app()\nwith app.app_context():\n    db.drop_all()\n"
    )
    subprocess.run([sys.executable, "-c", script], env=environment, cwd=ROOT, timeout=WAIT)


def flask(environment: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "checkout", *args],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT,
    )


def on_a_terminal(environment: dict[str, str], *args: str) -> tuple[int, str]:
    """Run on a pseudo-terminal; its exit code and everything it wrote there."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "checkout", *args],
        env={**environment, "COLUMNS": "100"},
        cwd=ROOT,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process has ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(WAIT), b"".join(chunks).decode("utf-8", "replace")


def test_from_cron_stdout_is_json_and_stderr_is_quiet(
    environment: dict[str, str], stripe: StripeStub
) -> None:
    events = EventBuilder(fqdn="localhost")
    stripe.add_event(events.checkout_session_completed(user_id="1", qty=3))

    result = flask(environment, "sync", "--json")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    summary = json.loads(result.stdout)
    assert (summary["fetched"], summary["processed"], summary["ok"]) == (1, 1, True)


def test_on_a_terminal_a_progress_bar_then_the_summary(
    environment: dict[str, str], stripe: StripeStub
) -> None:
    events = EventBuilder(fqdn="localhost")
    for _ in range(3):
        stripe.add_event(events.checkout_session_completed(user_id="1", qty=1))

    code, screen = on_a_terminal(environment, "sync")

    assert code == 0, screen
    assert "Syncing events" in screen
    assert "fetched 3, processed 3, duplicate 0, ignored 0, failed 0" in screen


def test_a_stripe_outage_fails_the_process_with_one_line_per_problem(
    environment: dict[str, str], stripe: StripeStub
) -> None:
    stripe.fail_next("GET", "/v1/events", status=500, times=1)

    result = flask(environment, "sync")

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    said = (
        "Could not list events (the first page): Stripe failed to list events; try again "
        "later. Run it again."
    )
    assert lines.count(said) == 1
    assert lines[-1] == "not complete: the checkpoint stays; run it again to resume"


def test_doctor_exits_one_on_a_problem(environment: dict[str, str], stripe: StripeStub) -> None:
    result = flask(environment, "doctor", "--json")

    assert result.returncode == 1
    findings = json.loads(result.stdout)["findings"]
    assert "no enabled endpoint sends events to http://localhost:5000/api/checkout/webhook" in [
        f["message"] for f in findings
    ]
