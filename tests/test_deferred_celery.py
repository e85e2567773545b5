"""Deferred handlers on Celery: a real Redis broker (database 5) and real worker processes,
started and ended by each test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
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

redis = pytest.importorskip("redis")
pytest.importorskip("celery")
BROKER = "redis://127.0.0.1:6379/5"  # the tests' own database of the machine's Redis


@pytest.fixture(autouse=True)
def broker_db() -> None:
    """Database 5 of the machine's Redis, emptied (that one only)."""
    try:
        redis.Redis.from_url(BROKER, socket_timeout=5).flushdb()
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379 (bash .ci/run starts one)")


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def settings(tmp_path: Path, runs: Path) -> dict[str, Any]:
    return {
        "database": database_url(tmp_path),
        "runs": str(runs),
        "broker": BROKER,
        "queue": f"deferred-{uuid.uuid4().hex[:8]}",
        "config": {"PAXPAR_CHECKOUT_DEFERRED_BACKOFF": 0.2},
    }


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop_all()


@pytest.fixture
def app(settings: dict[str, Any], processes: Processes) -> Iterator[Flask]:
    with host(settings) as app:
        yield app
        processes.stop_all()  # before the schema goes


def webhook(url: str) -> str:
    return url + "/api/checkout/webhook"


def done(app: Flask, event: dict[str, Any]) -> None:
    wait_until(lambda: row_status(app, event["id"]) == "done", f"event {event['id']} done")


def test_the_webhook_answers_before_the_handler_runs_then_it_runs_once(
    app: Flask, settings: dict[str, Any], processes: Processes, runs: Path
) -> None:
    processes.worker(settings, "w1")
    event = payment_failed("gated")
    with served(app) as url:
        status, body = post(webhook(url), event)
    assert (status, body["status"]) == (200, "processed")
    assert runs_of(runs, event["id"]) == []  # the worker's handler waits for the gate
    (runs / "go").touch()
    done(app, event)
    assert [line.split()[0] for line in runs_of(runs, event["id"])] == ["start", "end"]
    assert f"pid={processes.started[0].pid}" in runs_of(runs, event["id"])[0]
    assert outbox_rows(app, event["id"])[0].attempts == 1


def test_three_concurrent_deliveries_make_one_run(
    app: Flask, settings: dict[str, Any], processes: Processes, runs: Path
) -> None:
    processes.worker(settings, "w1")
    event = payment_failed()
    with served(app) as url, ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: post(webhook(url), event), range(3)))
        for status, _ in answers:
            if status != 200:  # SQLite's lock refused a copy: Stripe delivers it again
                assert post(webhook(url), event)[0] == 200
    done(app, event)
    assert [b.get("status") for s, b in answers if s == 200].count("processed") <= 1
    assert len(outbox_rows(app, event["id"])) == 1
    assert [line.split()[0] for line in runs_of(runs, event["id"])] == ["start", "end"]


def test_a_handler_failing_twice_runs_three_times_and_ends_done(
    app: Flask, settings: dict[str, Any], processes: Processes, runs: Path
) -> None:
    processes.worker(settings, "w1")
    event = payment_failed("fail:2")
    with served(app) as url:
        assert post(webhook(url), event)[0] == 200
    done(app, event)
    row = outbox_rows(app, event["id"])[0]
    assert row.attempts == 3
    assert "SMTP server down (attempt 2)" in row.last_error  # the last failure is kept
    starts = [line.split()[1] for line in runs_of(runs, event["id"]) if line.startswith("start")]
    assert starts == ["1", "2", "3"]
    assert runs_of(runs, event["id"])[-1] == "end 3"


def test_a_handler_always_failing_ends_failed_is_listed_and_runs_again_on_retry(
    app: Flask, settings: dict[str, Any], processes: Processes, runs: Path
) -> None:
    processes.worker(settings, "w1")
    event = payment_failed("always")
    with served(app) as url:
        assert post(webhook(url), event)[0] == 200
    wait_until(lambda: row_status(app, event["id"]) == "failed", "the row to fail")
    assert outbox_rows(app, event["id"])[0].attempts == 3
    assert len(runs_of(runs, event["id"])) == 3  # three starts, no end
    listed = cli(app, "outbox", "list", "--status", "failed").output
    assert event["id"] in listed
    assert (
        "RuntimeError: SMTP server refuses the address"
        in cli(app, "events", "show", event["id"]).output
    )

    (runs / "fixed").touch()
    retried = cli(app, "outbox", "retry", event["id"])
    assert "1 failed row(s) retried" in retried.output
    done(app, event)
    assert runs_of(runs, event["id"])[-1] == "end 4"
    assert cli(app, "outbox", "list", "--status", "failed").output == ""


def test_a_worker_killed_mid_handler_has_the_handler_run_again_to_the_end(
    app: Flask, settings: dict[str, Any], processes: Processes, runs: Path
) -> None:
    settings["config"]["PAXPAR_CHECKOUT_OUTBOX_RESEND_AFTER"] = 1  # the dead worker's lease
    first = processes.worker(settings, "w1")
    event = payment_failed("hang_first")
    with served(app) as url:
        assert post(webhook(url), event)[0] == 200
    wait_until(lambda: runs_of(runs, event["id"]), "the first run to start")
    processes.stop(first, kill=True)
    assert first.returncode == -9
    assert row_status(app, event["id"]) == "running"

    second = processes.worker(settings, "w2")
    done(app, event)
    lines = runs_of(runs, event["id"])
    assert [line.split()[:2] for line in lines] == [["start", "1"], ["start", "2"], ["end", "2"]]
    assert f"pid={first.pid}" in lines[0]
    assert f"pid={second.pid}" in lines[1]


def test_the_broker_down_at_commit_time_the_webhook_answers_and_outbox_run_sends_it_again(
    settings: dict[str, Any], processes: Processes, runs: Path
) -> None:
    port = free_port()
    own_broker = f"redis://127.0.0.1:{port}/5"
    broker = processes.redis(port)
    processes.stop(broker)  # stopped: nothing answers on the port any more
    with host({**settings, "broker": own_broker}) as down_app, served(down_app) as url:
        status, body = post(webhook(url), event := payment_failed())
        assert (status, body["status"]) == (200, "processed")
        row = outbox_rows(down_app, event["id"])[0]
        assert (row.status, row.sent_at) == ("pending", None)  # durable, known unsent

        processes.redis(port)
        processes.worker({**settings, "broker": own_broker}, "w1")
        assert runs_of(runs, event["id"]) == []  # nothing was queued
        result = cli(down_app, "outbox", "run")
        assert result.exit_code == 0, result.output
        assert "1 row(s) to send again, 1 sent to the queue" in result.output
        done(down_app, event)
        assert [line.split()[0] for line in runs_of(runs, event["id"])] == ["start", "end"]
        processes.stop_all()
