"""The load generator: a process of its own posting deliveries over loopback, several at a
time, timing each from connect to the last byte of the answer."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any


@dataclass(frozen=True)
class Batch:
    """Deliveries to post to ``port``/``path`` with ``concurrency`` connections at a time."""

    port: int
    path: str
    deliveries: list[tuple[bytes, str]]  # body, Stripe-Signature
    concurrency: int


@dataclass(frozen=True)
class Outcome:
    """Seconds from the first request to the last answer; per delivery: latency, status."""

    seconds: float
    latencies: list[float]
    statuses: list[int]  # 0: no answer (connection refused, reset, timed out)


def post(batch: Batch) -> Outcome:
    """Post every delivery of ``batch``; ``concurrency`` threads take the next one in turn."""
    n = len(batch.deliveries)
    latencies = [0.0] * n
    statuses = [0] * n
    lock = threading.Lock()
    cursor = iter(range(n))

    def worker() -> None:
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                return
            body, signature = batch.deliveries[i]
            start = time.perf_counter()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", batch.port, timeout=60)
                conn.request(
                    "POST",
                    batch.path,
                    body=body,
                    headers={
                        "Stripe-Signature": signature,
                        "Content-Type": "application/json; charset=utf-8",
                        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                    },
                )
                answer = conn.getresponse()
                answer.read()
                statuses[i] = answer.status
                conn.close()
            except (OSError, http.client.HTTPException):
                statuses[i] = 0
            latencies[i] = time.perf_counter() - start

    threads = [threading.Thread(target=worker) for _ in range(batch.concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Outcome(time.perf_counter() - start, latencies, statuses)


def serve(conn: Connection) -> None:
    """Post each ``Batch`` received on ``conn`` and send back its ``Outcome``; ``None`` ends."""
    while True:
        batch: Any = conn.recv()
        if batch is None:
            return
        conn.send(post(batch))
