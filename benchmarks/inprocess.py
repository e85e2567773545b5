"""In process: the receivers side by side through Flask's test client, in interleaved rounds
(the order shuffled each round), so that the machine's noise falls on all of them.

Besides the three compared by the targets, ``floor + writes`` (``same_writes``) shows what
the effects' rows alone cost a durable receiver, for reference, and ``floor + writes
(Core)`` the same rows written through SQLAlchemy Core, as the plugin writes its own."""

from __future__ import annotations

import gc
import random
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy

from . import hosts, same_writes
from .report import Section, Target, median
from .workload import MIX_DESCRIPTION, Delivery, Workload


@dataclass
class Receiver:
    """A receiver under test and how to post to it."""

    name: str
    app: Flask
    client: FlaskClient
    path: str
    seed: Any = None  # stores the sessions its deliveries complete (the plugin's host)


def receivers(db: hosts.Database, *, with_writes: bool = False) -> list[Receiver]:
    """The floor, the usual handler and the plugin; with ``with_writes``, ``floor + writes``
    and ``floor + writes (Core)`` too, writing into the plugin's tables."""
    papp, psqla = hosts.plugin_app(db)
    fapp, _ = hosts.floor_app(db)
    uapp = hosts.usual_app()

    def seed(deliveries: list[Delivery]) -> None:
        hosts.seed_sessions(papp, psqla, [d.session for d in deliveries if d.session])

    every = [
        Receiver("floor", fapp, fapp.test_client(), hosts.WEBHOOK_PATH["floor"]),
        Receiver("usual", uapp, uapp.test_client(), hosts.WEBHOOK_PATH["usual"]),
        Receiver("plugin", papp, papp.test_client(), hosts.WEBHOOK_PATH["plugin"], seed),
    ]
    if with_writes:
        wapp, _ = same_writes.writes_app(db)
        every.insert(1, Receiver("floor + writes", wapp, wapp.test_client(), "/webhook", seed))
        capp, _ = same_writes.writes_app(db, core=True)
        core = Receiver("floor + writes (Core)", capp, capp.test_client(), "/webhook", seed)
        every.insert(2, core)
    return every


def post_all(receiver: Receiver, deliveries: list[Delivery]) -> float:
    """Post every delivery; the seconds it took. Anything but 200 stops the benchmark."""
    client, path = receiver.client, receiver.path
    start = time.perf_counter()
    for d in deliveries:
        answer = client.post(
            path,
            data=d.body,
            headers={"Stripe-Signature": d.signature, "Content-Type": "application/json"},
        )
        if answer.status_code != 200:
            raise RuntimeError(f"{receiver.name} answered {answer.status_code}: {answer.data!r}")
    return time.perf_counter() - start


def run(db: hosts.Database, *, rounds: int, per_round: int, seed: int = 7) -> Section:
    """Interleaved rounds of the three receivers on ``db``; medians and per-round ratios."""
    hosts.reset_tables(db)
    every = receivers(db, with_writes=True)
    work = Workload(seed=seed)
    rng = random.Random(seed)
    timings: dict[str, list[float]] = {r.name: [] for r in every}
    for n in range(rounds + 1):  # the first round warms up and is not counted
        order = every[:]
        rng.shuffle(order)
        for receiver in order:
            deliveries = work.deliveries(per_round)
            if receiver.seed is not None:
                receiver.seed(deliveries)
            gc.collect()
            seconds = post_all(receiver, deliveries)
            if n:
                timings[receiver.name].append(seconds / per_round * 1e6)
    plugin_usual = [p / u for p, u in zip(timings["plugin"], timings["usual"], strict=True)]
    plugin_floor = [p / f for p, f in zip(timings["plugin"], timings["floor"], strict=True)]

    section = Section(
        title=f"In process (Flask test client), {db.label}",
        header=("receiver", "events/s", "us/event", "min", "max"),
    )
    for name, values in timings.items():
        us = median(values)
        section.rows.append((name, 1e6 / us, us, min(values), max(values)))
    section.rows.append(("plugin/usual (median of rounds)", None, median(plugin_usual), None, None))
    section.rows.append(("plugin/floor (median of rounds)", None, median(plugin_floor), None, None))
    writes = [p / w for p, w in zip(timings["plugin"], timings["floor + writes"], strict=True)]
    floor_writes = [w / f for w, f in zip(timings["floor + writes"], timings["floor"], strict=True)]
    section.rows.append(("(floor + writes)/floor", None, median(floor_writes), None, None))
    section.rows.append(("plugin/(floor + writes)", None, median(writes), None, None))
    by_core = [
        p / c for p, c in zip(timings["plugin"], timings["floor + writes (Core)"], strict=True)
    ]
    core_writes = [
        c / w
        for c, w in zip(timings["floor + writes (Core)"], timings["floor + writes"], strict=True)
    ]
    section.rows.append(
        ("(floor + writes (Core))/(floor + writes)", None, median(core_writes), None, None)
    )
    section.rows.append(("plugin/(floor + writes (Core))", None, median(by_core), None, None))
    section.notes.append(
        f"{rounds} interleaved rounds of {per_round} deliveries per receiver; {MIX_DESCRIPTION}"
    )
    section.notes.append(
        "floor + writes (for reference): the floor's route writing the rows the built-in "
        "effects write, into the plugin's tables, in its one transaction, by hand; "
        "(Core): the same statements as SQLAlchemy Core constructs, run by Connection.execute"
    )
    for receiver in every:
        if receiver.name != "usual":
            with receiver.app.app_context():
                sqla: SQLAlchemy = receiver.app.extensions["sqlalchemy"]
                sqla.engine.dispose()
    if db.kind == "sqlite":
        section.targets.append(
            Target(f"in process, {db.kind}: plugin/usual", median(plugin_usual), 0.7)
        )
    section.targets.append(
        Target(f"in process, {db.kind}: plugin/(floor + writes)", median(writes), 1.2)
    )
    return section
