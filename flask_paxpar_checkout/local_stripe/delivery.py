"""Webhook delivery as Stripe does it: each event signed with the endpoint's secret and POSTed;
sent again, with backoff, after an answer that is not 2xx, a timeout or a refused connection;
every attempt and the app's answer kept for the delivery log."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Attempt", "Deliverer", "Delivery", "Transport", "sign", "url_transport"]

# (url, body, headers, timeout) -> (HTTP status or None when no answer came, the answer's text)
Transport = Callable[[str, bytes, dict[str, str], float], tuple[int | None, str]]
# Stripe retries for three days; the local Stripe keeps the shape of that schedule, shorter.
DEFAULT_RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
ANSWER_CHARS = 2000


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header of ``body``: ``t=...,v1=HMAC-SHA256``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def url_transport(
    url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int | None, str]:
    """POST over HTTP with the standard library."""
    if not url.startswith(("http://", "https://")):
        return None, f"not an http(s) URL: {url}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            return int(answer.status), answer.read(ANSWER_CHARS).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read(ANSWER_CHARS).decode("utf-8", "replace")
    except (urllib.error.URLError, OSError) as exc:
        return None, f"no answer: {getattr(exc, 'reason', exc)}"


@dataclass(frozen=True)
class Attempt:
    """One POST of an event: when (wall clock), the status (``None``: no answer) and body."""

    at: float
    status: int | None
    answer: str

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Delivery:
    """An event's way to one endpoint: ``pending`` while retries remain, then ``succeeded``
    or ``failed``."""

    event_id: str
    event_type: str
    endpoint_id: str
    url: str
    attempts: list[Attempt] = field(default_factory=list)
    state: str = "pending"


class Deliverer:
    """Sends events and keeps their deliveries; retries run in the caller (``wait``) or in a
    thread of their own."""

    def __init__(
        self, *, retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS, timeout: float = 10.0
    ) -> None:
        self.retry_delays = tuple(retry_delays)
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()

    def send(
        self,
        event: dict[str, Any],
        endpoint: dict[str, Any],
        transport: Transport | None,
        *,
        wait: bool,
    ) -> Delivery:
        """Deliver ``event`` to ``endpoint``: the first attempt now, retries as ``wait`` says."""
        body = json.dumps(event, indent=2).encode("utf-8")
        delivery = Delivery(event["id"], event["type"], endpoint["id"], endpoint["url"])
        with self._changed:
            self.deliveries.append(delivery)
        send, secret, stopping = transport or url_transport, endpoint["secret"], self._stopping
        if self._attempt(delivery, body, secret, send) or not self.retry_delays:
            self._finish(delivery)
        elif wait:
            self._retry(delivery, body, secret, send, stopping)
        else:
            args = (delivery, body, secret, send, stopping)
            threading.Thread(target=self._retry, args=args, daemon=True).start()
        return delivery

    def _attempt(self, delivery: Delivery, body: bytes, secret: str, send: Transport) -> bool:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body, secret),
            "User-Agent": "Stripe/1.0 (local Stripe of flask-paxpar-checkout)",
        }
        status, answer = send(delivery.url, body, headers, self.timeout)
        attempt = Attempt(time.time(), status, answer)
        with self._changed:
            delivery.attempts.append(attempt)
            self._changed.notify_all()
        return attempt.succeeded

    def _retry(
        self,
        delivery: Delivery,
        body: bytes,
        secret: str,
        send: Transport,
        stopping: threading.Event,
    ) -> None:
        for delay in self.retry_delays:
            if stopping.wait(delay):
                break
            if self._attempt(delivery, body, secret, send):
                break
        self._finish(delivery)

    def _finish(self, delivery: Delivery) -> None:
        with self._changed:
            last = delivery.attempts[-1] if delivery.attempts else None
            delivery.state = "succeeded" if last is not None and last.succeeded else "failed"
            self._changed.notify_all()

    def wait_idle(self, timeout: float) -> None:
        """Return once no delivery is pending; ``TimeoutError`` naming them after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                pending = [d for d in self.deliveries if d.state == "pending"]
                left = deadline - time.monotonic()
                if not pending:
                    return
                if left <= 0:
                    names = ", ".join(f"{d.event_type} {d.event_id} -> {d.url}" for d in pending)
                    raise TimeoutError(f"deliveries still pending after {timeout}s: {names}")
                self._changed.wait(left)

    def stop(self) -> None:
        """Give up the pending retries (a stopped server sends nothing more)."""
        self._stopping.set()

    def restart(self) -> None:
        """Forget every delivery and accept new ones."""
        self._stopping.set()
        with self._changed:
            self.deliveries = []
            self._changed.notify_all()
        self._stopping = threading.Event()
