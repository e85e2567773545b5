"""Deferred handlers without Celery: run in the same process once the webhook has
answered, retried by ``flask checkout outbox run``, recovered after a crash."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from tests.conftest import database_url
from tests.deferred_host import runs_of
from tests.deferred_support import (
    Processes,
    cli,
    free_port,
    host,
    outbox_rows,
    payment_failed,
    post,
    row_status,
    served,
    wait_until,
)


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def settings(tmp_path: Path, runs: Path) -> dict[str, Any]:
    return {"database": database_url(tmp_path), "runs": str(runs)}


@pytest.fixture
def app(settings: dict[str, Any]) -> Iterator[Flask]:
    with host(settings) as app:
        yield app


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop_all()


def webhook(url: str) -> str:
    return url + "/api/checkout/webhook"


def test_the_webhook_answers_before_the_handler_runs_then_it_runs_once(
    app: Flask, runs: Path
) -> None:
    event = payment_failed("gated")
    with served(app) as url:
        status, body = post(webhook(url), event)
        assert (status, body["status"]) == (200, "processed")
        assert runs_of(runs, event["id"]) == []  # the handler waits for the gate
        assert row_status(app, event["id"]) in ("pending", "running")
        (runs / "go").touch()
        wait_until(lambda: row_status(app, event["id"]) == "done", "the row to be done")
    assert [line.split()[0] for line in runs_of(runs, event["id"])] == ["start", "end"]
    assert outbox_rows(app, event["id"])[0].attempts == 1


def test_three_concurrent_deliveries_make_one_run(app: Flask, runs: Path) -> None:
    event = payment_failed()
    with served(app) as url, ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: post(webhook(url), event), range(3)))
        for status, _ in answers:
            if status != 200:  # SQLite's lock refused a copy: Stripe delivers it again
                assert post(webhook(url), event)[0] == 200
        wait_until(lambda: row_status(app, event["id"]) == "done", "the row to be done")
    assert [b.get("status") for s, b in answers if s == 200].count("processed") <= 1
    assert len(outbox_rows(app, event["id"])) == 1
    assert runs_of(runs, event["id"]) == [runs_of(runs, event["id"])[0], "end 1"]


def test_a_handler_failing_twice_runs_three_times_and_ends_done(app: Flask, runs: Path) -> None:
    event = payment_failed("fail:2")
    with served(app) as url:
        assert post(webhook(url), event)[0] == 200
        wait_until(lambda: outbox_rows(app, event["id"])[0].attempts == 1, "the first run")
    wait_until(lambda: row_status(app, event["id"]) == "pending", "the first failure")
    assert "SMTP server down (attempt 1)" in outbox_rows(app, event["id"])[0].last_error
    first = cli(app, "outbox", "run")
    assert first.exit_code == 1
    assert "1 row(s) run, 0 done, 1 not done" in first.output
    assert cli(app, "outbox", "run").exit_code == 0
    row = outbox_rows(app, event["id"])[0]
    assert (row.status, row.attempts) == ("done", 3)
    starts = [line for line in runs_of(runs, event["id"]) if line.startswith("start")]
    assert len(starts) == 3
    assert runs_of(runs, event["id"])[-1] == "end 3"


def test_a_handler_always_failing_ends_failed_is_listed_and_runs_again_on_retry(
    app: Flask, runs: Path
) -> None:
    event = payment_failed("always")
    with served(app) as url:
        assert post(webhook(url), event)[0] == 200
        wait_until(lambda: row_status(app, event["id"]) == "pending", "the first failure")
    cli(app, "outbox", "run")
    cli(app, "outbox", "run")
    row = outbox_rows(app, event["id"])[0]
    assert (row.status, row.attempts) == ("failed", 3)  # MAX_ATTEMPTS is 3 in this host
    assert cli(app, "outbox", "run").output.startswith("0 row(s) run")

    listed = cli(app, "outbox", "list", "--status", "failed").output
    assert event["id"] in listed
    assert "tests.deferred_host.email_the_user" in listed
    shown = cli(app, "events", "show", event["id"]).output
    assert "failed   attempts=3" in shown
    assert "RuntimeError: SMTP server refuses the address" in shown
    assert "Traceback" in shown

    (runs / "fixed").touch()
    retried = cli(app, "outbox", "retry")
    assert retried.exit_code == 0
    assert "1 failed row(s) retried" in retried.output
    row = outbox_rows(app, event["id"])[0]
    assert (row.status, row.attempts) == ("done", 1)  # attempts start again from 1
    assert runs_of(runs, event["id"])[-1] == "end 4"  # the fourth run of the handler


def test_a_crash_between_commit_and_run_is_recovered_by_outbox_run(
    settings: dict[str, Any], app: Flask, runs: Path, processes: Processes
) -> None:
    port = free_port()
    server = processes.web({**settings, "crash_after_commit": True}, port)
    event = payment_failed()
    with pytest.raises(requests.ConnectionError):  # the server died before answering
        post(f"http://127.0.0.1:{port}/api/checkout/webhook", event)
    server.wait(timeout=30)
    assert server.returncode == -9
    assert runs_of(runs, event["id"]) == []
    assert row_status(app, event["id"]) == "pending"  # committed with the event

    result = cli(app, "outbox", "run")
    assert result.exit_code == 0, result.output
    assert "1 row(s) run, 1 done" in result.output
    assert row_status(app, event["id"]) == "done"
    assert [line.split()[0] for line in runs_of(runs, event["id"])] == ["start", "end"]
    assert f"pid={os.getpid()}" in runs_of(runs, event["id"])[0]


def test_a_duplicate_or_a_replay_adds_no_run(app: Flask, runs: Path) -> None:
    event = payment_failed()
    with served(app) as url:
        assert post(webhook(url), event)[1]["status"] == "processed"
        wait_until(lambda: row_status(app, event["id"]) == "done", "the row to be done")
        assert post(webhook(url), event)[1]["status"] == "duplicate"
    assert cli(app, "events", "replay", event["id"]).exit_code == 0
    assert len(outbox_rows(app, event["id"])) == 1
    assert runs_of(runs, event["id"]) == [runs_of(runs, event["id"])[0], "end 1"]
