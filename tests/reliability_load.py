"""Serving an app under gunicorn for a test, and delivering signed events to it as Stripe
does: several copies at the same moment, and every 5xx or dropped delivery again until
it is answered with a 2xx."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from flask_paxpar_checkout.testing import signed

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Gunicorn:
    """A running gunicorn master; ``url`` is its base address."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def workers(self) -> list[int]:
        """The pids of the master's current worker processes."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def gunicorn(
    app: str, env: Mapping[str, str], log: Path, *, workers: int = 3, ready_path: str = "/health"
) -> Iterator[Gunicorn]:
    """Serve ``app`` (``module:factory()``) with ``workers`` sync workers and exactly the
    environment ``env`` until the block ends, then stop gunicorn gracefully (SIGTERM), and
    kill it if it lingers."""
    for _ in range(3):  # the free port may be taken again before gunicorn binds it
        port = free_port()
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "--workers",
                    str(workers),
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--timeout",
                    "60",
                    "--graceful-timeout",
                    "10",
                    "--log-level",
                    "info",
                    app,
                ],
                cwd=ROOT,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Gunicorn(proc, f"http://127.0.0.1:{port}", log)
        try:
            if _wait_ready(server, workers, ready_path):
                break
        except BaseException:
            _stop(proc)
            raise
        _stop(proc)
        if "Address already in use" not in server.log_text():
            raise RuntimeError("gunicorn did not start:\n" + server.log_text()[-5000:])
    else:
        raise RuntimeError("gunicorn found no free port:\n" + server.log_text()[-5000:])
    try:
        yield server
    finally:
        _stop(proc)


def _wait_ready(server: Gunicorn, workers: int, path: str) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return False
        if len(server.workers()) == workers:
            try:
                with requests.get(server.url + path, timeout=5) as answer:
                    if answer.status_code == 200:
                        return True
            except requests.ConnectionError:
                pass
        time.sleep(0.1)
    raise RuntimeError("gunicorn was not ready in 60 s:\n" + server.log_text()[-5000:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass(frozen=True)
class Answer:
    """One HTTP attempt of a delivery: ``status`` None when the connection failed."""

    event_id: str
    status: int | None
    outcome: str | None  # the 2xx body's "status": processed, duplicate or ignored
    elapsed: float


@dataclass
class Deliveries:
    """Every attempt made; ``given_up`` stops every delivery once one has failed for good."""

    answers: list[Answer] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    given_up: threading.Event = field(default_factory=threading.Event)

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def of(self, event_id: str) -> list[Answer]:
        return [a for a in self.answers if a.event_id == event_id]


def deliver_once(url: str, event: dict[str, Any], secret: str) -> Answer:
    """POST ``event`` signed now; never raises for a failed connection, nor for a response
    cut short (a worker killed while answering breaks the chunked body)."""
    body, headers = signed(event, secret)
    started = time.monotonic()
    try:
        with requests.post(url, data=body, headers=headers, timeout=60) as response:
            outcome = None
            if response.status_code == 200:
                outcome = response.json().get("status")
            return Answer(event["id"], response.status_code, outcome, time.monotonic() - started)
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        return Answer(event["id"], None, None, time.monotonic() - started)


def deliver_until_accepted(
    url: str, event: dict[str, Any], secret: str, log: Deliveries, *, attempts: int = 12
) -> Answer:
    """Deliver as Stripe does: again after a 5xx or a dropped connection, until a 2xx
    (Stripe keeps trying for days; a dozen attempts over a few seconds do here)."""
    for attempt in range(attempts):
        if log.given_up.is_set():
            raise AssertionError("another delivery failed for good")
        answer = deliver_once(url, event, secret)
        log.add(answer)
        if answer.status is not None and answer.status < 500:
            return answer
        time.sleep(min(0.05 * 2**attempt, 0.8))
    log.given_up.set()
    raise AssertionError(f"event {event['id']} was never accepted in {attempts} attempts")


def deliver_together(
    url: str,
    groups: list[tuple[dict[str, Any], int]],
    secret: str,
    log: Deliveries,
    *,
    threads: int,
    after_each: Any = None,
) -> None:
    """Deliver each ``(event, copies)`` group: its copies leave at the same moment, from
    different threads, and so land on different workers; groups go in the given order."""
    if threads < max((n for _, n in groups), default=1):
        raise ValueError("each group's copies need a thread of their own")

    def copy_of(event: dict[str, Any], barrier: threading.Barrier) -> None:
        with suppress(threading.BrokenBarrierError):
            barrier.wait(30)
        deliver_until_accepted(url, event, secret, log)
        with log.lock:
            log.done += 1
        if after_each is not None:
            after_each()

    barriers: list[threading.Barrier] = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = []
        for event, copies in groups:
            barriers.append(threading.Barrier(copies))
            futures += [pool.submit(copy_of, event, barriers[-1]) for _ in range(copies)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            log.given_up.set()  # stop the others now rather than after their retries
            for barrier in barriers:
                barrier.abort()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
