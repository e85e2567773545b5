"""The delivery mix: Stripe-shaped events built from Stripe's fixtures, signed as Stripe
signs them, made fast enough to feed a load generator.

Each kind of event is built once by ``EventBuilder`` with sentinel ids, encoded as Stripe
sends it, and then copied with fresh ids and times by byte replacement (a few microseconds
per delivery instead of a deep copy and a JSON encoding).
"""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from flask_paxpar_checkout.testing import EventBuilder, encode, sign_payload

FQDN = "bench.paxpar.tech"
OTHER_FQDN = "prod.paxpar.tech"
WEBHOOK_SECRET = "whsec_benchmark_secret"
PRICE = "price_benchbasic"
PRICES = {PRICE: 100}
CREDIT_PRICE = "price_benchcredit"
QTY = 5

_EVT = "evt_SENTINELEVENTID"
_OBJ = "SENTINELOBJECTID"
_USER = "SENTINELUSERID"
_SUB = "sub_SENTINELSUBID"
_CUS = "cus_SENTINELCUSID"
_CREATED = 1999999999
_PERIOD_END = _CREATED + 30 * 86400

# One cycle of the mix, 20 deliveries: what a paying user base sends, with the duplicates
# Stripe's at-least-once delivery brings and the events of another instance sharing the
# Stripe account.
MIX: tuple[str, ...] = (
    ("purchase",) * 5
    + ("subscribe",) * 2
    + ("invoice_paid",) * 5
    + ("payment_failed",) * 2
    + ("duplicate",) * 3
    + ("other_instance",) * 3
)
MIX_DESCRIPTION = (
    "per 20 deliveries: 5 checkout.session.completed (credits), 2 checkout.session.completed "
    "(subscription), 5 invoice.paid, 2 invoice.payment_failed, 3 redelivered duplicates, "
    "3 events of another instance"
)


@dataclass(frozen=True)
class Delivery:
    """One POST as Stripe makes it, plus what the host had stored before it (a session)."""

    event_id: str
    kind: str
    body: bytes
    signature: str
    session: tuple[str, str, str, int | None, str] | None = None  # id, user, mode, qty, price


class Workload:
    """An endless, reproducible stream of deliveries of ``MIX``, over ``users`` users."""

    def __init__(
        self,
        *,
        users: int = 1000,
        era: str = "2026-07-29.dahlia",
        seed: int = 1,
        prefix: str = "b",
    ) -> None:
        self.users = users
        self.era = era
        self.prefix = prefix  # keeps the ids of several workloads on one database apart
        self._rng = random.Random(seed)
        self._serial = itertools.count(1)
        self._clock = int(time.time()) - 10 * 86400
        self._recent: deque[Delivery] = deque(maxlen=200)
        self._templates = _templates(era)

    def deliveries(self, n: int, *, start: int = 0) -> list[Delivery]:
        """The next ``n`` deliveries of the mix, signed now."""
        out = []
        for i in range(n):
            kind = MIX[(start + i) % len(MIX)]
            out.append(self.next(kind))
        return out

    def next(self, kind: str) -> Delivery:
        """One delivery of ``kind`` (see ``MIX``), signed now."""
        if kind == "duplicate" and self._recent:
            again = self._rng.choice(self._recent)
            return Delivery(again.event_id, "duplicate", again.body, _sign(again.body))
        if kind == "duplicate":
            kind = "purchase"
        serial = next(self._serial)
        self._clock += 1
        user = str(self._rng.randrange(1, self.users + 1))
        event_id = f"evt_{self.prefix}{serial:012d}{self._rng.getrandbits(48):012x}"
        obj_id = f"{self.prefix}{serial:010d}{self._rng.getrandbits(40):010x}"
        sub = f"sub_{self.prefix}{user}"
        body = (
            self._templates[kind]
            .replace(_EVT.encode(), event_id.encode())
            .replace(_OBJ.encode(), obj_id.encode())
            .replace(_USER.encode(), user.encode())
            .replace(_SUB.encode(), sub.encode())
            .replace(_CUS.encode(), f"cus_{self.prefix}{user}".encode())
            .replace(str(_PERIOD_END).encode(), str(self._clock + 30 * 86400).encode())
            .replace(str(_CREATED).encode(), str(self._clock).encode())
        )
        session: tuple[str, str, str, int | None, str] | None = None
        if kind == "purchase":
            session = (f"cs_test_{obj_id}", user, "payment", QTY, CREDIT_PRICE)
        elif kind == "subscribe":
            session = (f"cs_test_{obj_id}", user, "subscription", None, PRICE)
        delivery = Delivery(event_id, kind, body, _sign(body), session)
        if kind != "other_instance":
            self._recent.append(delivery)
        return delivery


def _sign(body: bytes) -> str:
    return sign_payload(body, WEBHOOK_SECRET)


def _templates(era: Any) -> dict[str, bytes]:
    ours = EventBuilder(fqdn=FQDN, era=era)
    theirs = EventBuilder(fqdn=OTHER_FQDN, era=era)
    common: dict[str, Any] = {"user_id": _USER, "customer_id": _CUS}
    invoice: dict[str, Any] = {
        **common,
        "subscription_id": _SUB,
        "price_id": PRICE,
        "invoice_id": f"in_{_OBJ}",
        "created": _CREATED,
        "period_end": _PERIOD_END,
    }
    events = {
        "purchase": ours.checkout_session_completed(
            **common, qty=QTY, session_id=f"cs_test_{_OBJ}", created=_CREATED
        ),
        "subscribe": ours.checkout_session_completed(
            **common,
            mode="subscription",
            price_id=PRICE,
            session_id=f"cs_test_{_OBJ}",
            subscription_id=_SUB,
            created=_CREATED,
        ),
        "invoice_paid": ours.invoice_paid(**invoice),
        "payment_failed": ours.invoice_payment_failed(**invoice),
        "other_instance": theirs.checkout_session_completed(
            **common, qty=QTY, session_id=f"cs_test_{_OBJ}", created=_CREATED
        ),
    }
    out = {}
    for kind, event in events.items():
        event["id"] = _EVT
        event["data"]["object"]["created"] = _CREATED
        out[kind] = encode(event)
    return out


def mean_body_size(era: str = "2026-07-29.dahlia") -> int:
    """The mean size of a delivery's body in the mix, in bytes."""
    work = Workload(era=era)
    sizes = [len(d.body) for d in work.deliveries(len(MIX) * 5)]
    return sum(sizes) // len(sizes)
