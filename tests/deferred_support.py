"""Real processes for the deferred-handler tests: Celery workers, a Redis server of the
test's own, the host app served over HTTP; bounded waits that fail saying what they waited for."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from flask import Flask
from werkzeug.serving import make_server

from flask_paxpar_checkout.testing import signed
from tests.deferred_host import WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
WAIT = 60.0  # seconds any wait gives up after


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Deliver ``event`` over HTTP, signed as Stripe signs it."""
    body, headers = signed(event, WEBHOOK_SECRET)
    answer = requests.post(url, data=body, headers=headers, timeout=WAIT)
    return answer.status_code, answer.json()


class Processes:
    """Every process a test started; all are ended at the end of the test."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env={**os.environ, **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def worker(self, settings: dict[str, Any], name: str) -> subprocess.Popen[bytes]:
        """A Celery worker of the test host (one process: ``--pool=solo``), once ready."""
        argv = [
            str(VENV_BIN / "celery"),
            "-A",
            "tests.celery_app",
            "worker",
            "--pool=solo",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
            f"--hostname={name}@%h",
        ]
        process = self.start(name, argv, {"DEFERRED_HOST": json.dumps(settings)})
        log = self.logs / f"{name}.log"
        wait_until(
            lambda: _alive(process, log) and " ready." in log.read_text(),
            f"Celery worker {name} to be ready (see {log})",
        )
        return process

    def redis(self, port: int) -> subprocess.Popen[bytes]:
        """A Redis server of this test's own on ``port``, once it answers."""
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1"]
        process = self.start(f"redis-{port}", [*argv, "--save", "", "--appendonly", "no"])
        wait_until(lambda: _answers(port), f"redis-server on port {port}")
        return process

    def web(self, settings: dict[str, Any], port: int) -> subprocess.Popen[bytes]:
        """The test host served by another process on ``port``."""
        argv = [sys.executable, "-m", "tests.deferred_host", str(port)]
        process = self.start(f"web-{port}", argv, {"DEFERRED_HOST": json.dumps(settings)})
        wait_until(lambda: _alive(process, None) and _answers(port), f"the host on {port}")
        return process

    def stop(self, process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
        """End ``process`` (SIGKILL if ``kill``, else SIGTERM then SIGKILL) and reap it."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            try:
                self.stop(process)
            except ProcessLookupError:
                process.wait(timeout=15)


def _alive(process: subprocess.Popen[bytes], log: Path | None) -> bool:
    if process.poll() is not None:
        text = log.read_text()[-3000:] if log else ""
        raise AssertionError(f"process {process.args!r} exited with {process.returncode}\n{text}")
    return True


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def served(app: Flask) -> Iterator[str]:
    """``app`` served over HTTP by threads of this process, as a WSGI server does; its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=WAIT)


def payment_failed(behaviour: str = "ok") -> dict[str, Any]:
    """An ``invoice.payment_failed`` event of this instance whose deferred handler does
    ``behaviour`` (see ``deferred_host.email_the_user``)."""
    from flask_paxpar_checkout.testing import EventBuilder, new_id
    from tests.deferred_host import FQDN

    event = EventBuilder(fqdn=FQDN).invoice_payment_failed(
        user_id="1", subscription_id=new_id("sub"), price_id="price_basic1"
    )
    event["data"]["object"]["metadata"] = {"test_behaviour": behaviour}
    return event


def outbox_rows(app: Flask, event_id: str) -> list[Any]:
    """The outbox rows of ``event_id``, read with a plain SELECT."""
    from sqlalchemy import select

    db = app.extensions["test_db"]
    table = db.metadata.tables["paxpar_checkout_outbox"]
    with app.app_context(), db.engine.connect() as connection:
        return list(connection.execute(select(table).where(table.c.event_id == event_id)))


def row_status(app: Flask, event_id: str) -> str | None:
    found = outbox_rows(app, event_id)
    return found[0].status if found else None


@contextmanager
def host(settings: dict[str, Any]) -> Iterator[Flask]:
    """The test host on a fresh schema; dropped at the end."""
    from tests.deferred_host import create_app

    app = create_app(settings)
    db = app.extensions["test_db"]
    with app.app_context():
        db.drop_all()
        db.create_all()
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


def cli(app: Flask, *args: str) -> Any:
    """``flask checkout ARGS`` on ``app``; the click result."""
    return app.test_cli_runner().invoke(args=["checkout", *args])
